//! Adam (Kingma & Ba, 2015) exactly as `torch.optim.Adam` (no amsgrad, L2 weight decay
//! added to the gradient), with parameter groups and a state that checkpoints can hold.
//!
//! Per parameter, at step t:  m ← β₁m + (1−β₁)g,  v ← β₂v + (1−β₂)g²,
//! p ← p − (lr / (1−β₁ᵗ)) · m / (√v / √(1−β₂ᵗ) + ε).
//!
//! Our own rather than tch's `nn::Adam`, whose moment buffers cannot be read or restored,
//! which `--resume` needs for an exact continuation.
use std::collections::HashMap;

use anyhow::{bail, Result};
use tch::Tensor;

/// One trainable tensor with its moments.
struct Slot {
    name: String,
    param: Tensor,
    group: usize,
    m: Tensor,
    v: Tensor,
}

pub struct Adam {
    slots: Vec<Slot>,
    /// Learning-rate multiplier per group (e.g. the fusion parameters).
    pub group_lr_mult: Vec<f64>,
    pub lr: f64,
    pub betas: (f64, f64),
    pub eps: f64,
    pub weight_decay: f64,
    pub step: i64,
}

impl Adam {
    /// `params`: (name, tensor, group); `group_lr_mult[group]` scales `lr`.
    pub fn new(
        params: Vec<(String, Tensor, usize)>,
        lr: f64,
        betas: (f64, f64),
        eps: f64,
        weight_decay: f64,
        group_lr_mult: Vec<f64>,
    ) -> Self {
        let slots = params
            .into_iter()
            .map(|(name, param, group)| Slot {
                m: param.zeros_like(),
                v: param.zeros_like(),
                name,
                param,
                group,
            })
            .collect();
        Adam {
            slots,
            group_lr_mult,
            lr,
            betas,
            eps,
            weight_decay,
            step: 0,
        }
    }

    pub fn zero_grad(&mut self) {
        for s in &self.slots {
            let mut g = s.param.grad();
            if g.defined() {
                let _ = g.detach_();
                let _ = g.zero_();
            }
        }
    }

    /// One update from the gradients currently held by the parameters.
    pub fn step(&mut self) {
        self.step += 1;
        let (b1, b2) = self.betas;
        let bias1 = 1.0 - b1.powi(self.step as i32);
        let bias2_sqrt = (1.0 - b2.powi(self.step as i32)).sqrt();
        tch::no_grad(|| {
            for s in &mut self.slots {
                let g = s.param.grad();
                if !g.defined() {
                    continue;
                }
                let g = if self.weight_decay != 0.0 {
                    &g + &s.param * self.weight_decay
                } else {
                    g
                };
                let _ = s.m.lerp_(&g, 1.0 - b1); // torch: exp_avg.lerp_(grad, 1 − β₁)
                let _ = s.v.g_mul_scalar_(b2).g_add_(&(&g * &g * (1.0 - b2)));
                let lr = self.lr * self.group_lr_mult[s.group];
                let denom = s.v.sqrt() / bias2_sqrt + self.eps;
                let update = (&s.m / denom) * (lr / bias1);
                let _ = s.param.g_sub_(&update);
            }
        });
    }

    /// Moments as named tensors (`optim.m.<name>`, `optim.v.<name>`) for a checkpoint.
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let cpu = |t: &Tensor| t.detach().to_device(tch::Device::Cpu);
        let moments = |s: &Slot| {
            [("m", cpu(&s.m)), ("v", cpu(&s.v))].map(|(k, t)| (format!("optim.{k}.{}", s.name), t))
        };
        self.slots.iter().flat_map(moments).collect()
    }

    /// The bytes [`Adam::state_tensors`] hold, without copying them.
    pub fn state_bytes(&self) -> u64 {
        let bytes = |t: &Tensor| (t.numel() * t.kind().elt_size_in_bytes()) as u64;
        self.slots.iter().map(|s| bytes(&s.m) + bytes(&s.v)).sum()
    }

    /// Restores the moments written by [`Adam::state_tensors`] and the step count.
    pub fn load_state(&mut self, tensors: &HashMap<String, Tensor>, step: i64) -> Result<()> {
        tch::no_grad(|| {
            for s in &mut self.slots {
                for (prefix, dst) in [("optim.m.", &mut s.m), ("optim.v.", &mut s.v)] {
                    let key = format!("{prefix}{}", s.name);
                    let Some(src) = tensors.get(&key) else {
                        bail!("the checkpoint has no optimizer state {key}")
                    };
                    if src.size() != dst.size() {
                        bail!(
                            "{key}: shape {:?} in the checkpoint, {:?} in the model",
                            src.size(),
                            dst.size()
                        );
                    }
                    dst.copy_(&src.to_device(dst.device()));
                }
            }
            Ok(())
        })?;
        self.step = step;
        Ok(())
    }
}
