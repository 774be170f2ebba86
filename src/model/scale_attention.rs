//! SENet-style scale attention (Hu et al., "Squeeze-and-Excitation Networks", CVPR 2018),
//! applied across NPR branches instead of feature channels.
//!
//! For k branches of 3 channels each, concatenated to [b, 3k, h, w]:
//! squeeze each channel to one number z ∈ R^{3k} (average, mean |·| or RMS), then
//! `w = σ(W₂ · ReLU(W₁ z + b₁) + b₂)` with W₁: 3k → 3k/r and W₂: 3k/r → 3k, reshaped to
//! per-image weights [b, k, 3]. With `gate: softmax` the scores compete instead:
//! `w = softmax_k(s / τ)` per channel.
use tch::{nn, Tensor};

use crate::config::{AttentionConfig, Gate, Squeeze};

#[derive(Debug)]
pub struct ScaleAttention {
    fc1: nn::Linear,
    fc2: nn::Linear,
    squeeze: Squeeze,
    gate: Gate,
    temperature: f64,
    branches: i64,
}

/// Kaiming-normal weights (fan in, ReLU gain), biases `bias_init`: with zero weights every
/// branch starts at σ(bias_init).
fn linear(vs: nn::Path, inp: i64, out: i64, bias_init: f64) -> nn::Linear {
    let config = nn::LinearConfig {
        ws_init: nn::init::DEFAULT_KAIMING_NORMAL,
        bs_init: Some(nn::Init::Const(bias_init)),
        bias: true,
    };
    nn::linear(vs, inp, out, config)
}

impl ScaleAttention {
    pub fn new(vs: nn::Path, branches: usize, config: &AttentionConfig) -> Self {
        let channels = 3 * branches as i64;
        let hidden = (channels / config.reduction as i64).max(1);
        ScaleAttention {
            fc1: linear(&vs / "fc1", channels, hidden, config.bias_init),
            fc2: linear(&vs / "fc2", hidden, channels, config.bias_init),
            squeeze: config.squeeze,
            gate: config.gate,
            temperature: config.temperature,
            branches: branches as i64,
        }
    }

    /// x: [b, 3k, h, w] → weights [b, k, 3] in (0, 1).
    pub fn weights(&self, x: &Tensor) -> Tensor {
        let (b, c, _, _) = x.size4().expect("attention takes [b, 3k, h, w]");
        assert_eq!(c, 3 * self.branches, "attention expects 3·k channels");
        let z = match self.squeeze {
            Squeeze::Avg => x.mean_dim([2i64, 3].as_slice(), false, None),
            Squeeze::AbsAvg => x.abs().mean_dim([2i64, 3].as_slice(), false, None),
            Squeeze::Rms => (x.square().mean_dim([2i64, 3].as_slice(), false, None) + 1e-12).sqrt(),
        }; // [b, 3k]
        let e = z
            .apply(&self.fc1)
            .relu()
            .apply(&self.fc2)
            .view([b, self.branches, 3]);
        match self.gate {
            Gate::Sigmoid => e.sigmoid(),
            // Over the branches (dim 1), per channel: the weights of one channel sum to 1.
            Gate::Softmax => (e / self.temperature).softmax(1, None::<tch::Kind>),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn zero_weights_give_sigmoid_of_the_bias() {
        for (bias, squeeze) in [
            (0.25, Squeeze::Avg),
            (1.5, Squeeze::AbsAvg),
            (0.0, Squeeze::Rms),
        ] {
            let vs = nn::VarStore::new(Device::Cpu);
            let config = AttentionConfig {
                reduction: 2,
                squeeze,
                bias_init: bias,
                ..AttentionConfig::default()
            };
            let mut att = ScaleAttention::new(vs.root() / "scale_attention", 4, &config);
            tch::no_grad(|| {
                let _ = att.fc1.ws.zero_();
                let _ = att.fc2.ws.zero_();
            });
            let x = Tensor::randn([2, 12, 5, 6], (Kind::Float, Device::Cpu));
            let w = att.weights(&x);
            assert_eq!(w.size(), vec![2, 4, 3]);
            let want = 1.0 / (1.0 + (-bias).exp());
            let err = (w - want).abs().max().double_value(&[]);
            assert!(err < 1e-6, "bias {bias}: max error {err}");
        }
    }

    #[test]
    fn softmax_weights_are_positive_and_sum_to_one_over_branches() {
        for temperature in [0.1, 1.0, 5.0] {
            let vs = nn::VarStore::new(Device::Cpu);
            let config = AttentionConfig {
                gate: Gate::Softmax,
                temperature,
                squeeze: Squeeze::AbsAvg,
                ..AttentionConfig::default()
            };
            let att = ScaleAttention::new(vs.root() / "scale_attention", 4, &config);
            let x = Tensor::randn([3, 12, 5, 6], (Kind::Float, Device::Cpu));
            let w = att.weights(&x);
            assert_eq!(w.size(), vec![3, 4, 3]);
            assert!(w.min().double_value(&[]) > 0.0);
            let sums = w.sum_dim_intlist(1, false, None::<Kind>);
            let err = (sums - 1.0).abs().max().double_value(&[]);
            assert!(err < 1e-6, "τ {temperature}: sums differ from 1 by {err}");
        }
    }
}
