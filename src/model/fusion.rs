//! How the k NPR branches become one 3-channel map for the backbone (ARCHITECTURE.md, Model).
//!
//! Every mode produces weights w ∈ [b, k, 3] and `fused = Σ_k w[:, k, c] · branch_k[:, c]`
//! (`combine: sum`) or the weighted branches side by side (`combine: concat`, 3k channels),
//! so the attention, the fixed and the learned weights are compared on equal terms.
use tch::{nn, Kind, Tensor};

use super::scale_attention::ScaleAttention;
use crate::config::{Combine, Fusion, ModelConfig};

/// Each branch of each image and channel divided by its mean |·| (`branch_norm: energy`):
/// the identity branch is several times larger than the residuals, and would otherwise
/// dominate any weighted sum whatever the weights say. [b, k, 3, h, w] → same shape.
pub fn energy_normalise(branches: &Tensor) -> Tensor {
    let energy = branches
        .abs()
        .mean_dim([3i64, 4].as_slice(), true, None::<Kind>);
    branches / (energy + 1e-6)
}

/// Variable-store names of the fusion parameters (the official state_dict has none).
pub const ATTENTION_PREFIX: &str = "scale_attention";
pub const LEARNED_WEIGHTS: &str = "scale_weights";

#[derive(Debug)]
pub enum ScaleFusion {
    /// Per-image weights from the scale attention.
    Attention(ScaleAttention),
    /// Fixed 1/k.
    Equal { branches: i64 },
    /// σ(θ), θ ∈ [k, 3] learnable and input-independent, initialised at `bias_init` so it
    /// starts where the attention starts.
    Learned { logits: Tensor },
    /// One branch, weight 1: the NPR baseline.
    Single,
}

impl ScaleFusion {
    pub fn new(vs: &nn::Path, config: &ModelConfig) -> Self {
        let (k, attention) = (config.scales.len(), &config.attention);
        match config.fusion {
            Fusion::Attention => {
                ScaleFusion::Attention(ScaleAttention::new(vs / ATTENTION_PREFIX, k, attention))
            }
            Fusion::Equal => ScaleFusion::Equal { branches: k as i64 },
            Fusion::Learned => {
                let init = nn::Init::Const(attention.bias_init);
                let logits = vs.var(LEARNED_WEIGHTS, &[k as i64, 3], init);
                ScaleFusion::Learned { logits }
            }
            Fusion::Single => ScaleFusion::Single,
        }
    }

    /// branches: [b, k, 3, h, w] → (fused [b, 3, h, w], or [b, 3k, h, w] for
    /// `Combine::Concat`; weights [b, k, 3]).
    pub fn fuse(&self, branches: &Tensor, combine: Combine) -> (Tensor, Tensor) {
        let (b, k, c, h, w) = branches.size5().expect("fusion takes [b, k, 3, h, w]");
        let opts = (branches.kind(), branches.device());
        let weights = match self {
            ScaleFusion::Attention(att) => att.weights(&branches.view([b, k * c, h, w])),
            ScaleFusion::Equal { branches: n } => Tensor::full([b, *n, c], 1.0 / *n as f64, opts),
            ScaleFusion::Learned { logits } => {
                logits.sigmoid().unsqueeze(0).expand([b, k, c], true)
            }
            ScaleFusion::Single => {
                assert_eq!(k, 1, "single fusion takes one branch");
                return (branches.select(1, 0), Tensor::ones([b, 1, c], opts));
            }
        };
        let weights = weights.to_kind(branches.kind());
        let weighted = branches * weights.view([b, k, c, 1, 1]);
        let fused = match combine {
            Combine::Sum => weighted.sum_dim_intlist(1, false, None::<Kind>),
            Combine::Concat => weighted.view([b, k * c, h, w]),
        };
        (fused, weights)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn energy_normalised_branches_have_unit_mean_magnitude() {
        let x = Tensor::randn([2, 4, 3, 8, 8], (Kind::Float, Device::Cpu));
        // Branches of very different size, like the identity branch against residuals.
        let scale = Tensor::from_slice(&[0.1f32, 0.2, 0.15, 3.0]).view([1, 4, 1, 1, 1]);
        let n = energy_normalise(&(x * scale));
        assert_eq!(n.size(), vec![2, 4, 3, 8, 8]);
        let energy = n.abs().mean_dim([3i64, 4].as_slice(), false, None::<Kind>);
        let err = (energy - 1.0).abs().max().double_value(&[]);
        assert!(err < 1e-4, "mean |branch| differs from 1 by {err}");
    }

    #[test]
    fn every_fusion_gives_one_weight_per_branch_and_channel() {
        use crate::config::{Fusion, Gate, ModelConfig};
        let branches = Tensor::randn([2, 4, 3, 6, 6], (Kind::Float, Device::Cpu));
        for (fusion, gate) in [
            (Fusion::Attention, Gate::Sigmoid),
            (Fusion::Attention, Gate::Softmax),
            (Fusion::Equal, Gate::Sigmoid),
            (Fusion::Learned, Gate::Sigmoid),
        ] {
            let vs = nn::VarStore::new(Device::Cpu);
            let mut config = ModelConfig {
                fusion,
                ..ModelConfig::default()
            };
            config.attention.gate = gate;
            let f = ScaleFusion::new(&vs.root(), &config);
            let (fused, w) = f.fuse(&branches, Combine::Sum);
            assert_eq!((fused.size(), w.size()), (vec![2, 3, 6, 6], vec![2, 4, 3]));
            let (stacked, w2) = f.fuse(&branches, Combine::Concat);
            assert_eq!(stacked.size(), vec![2, 12, 6, 6]);
            // The concatenation holds each weighted branch; summing its groups is the sum.
            let regrouped = stacked
                .view([2, 4, 3, 6, 6])
                .sum_dim_intlist(1, false, None::<Kind>);
            let err = (regrouped - &fused).abs().max().double_value(&[]);
            assert!(
                err < 1e-5,
                "{fusion:?}: concat groups sum to the sum, error {err}"
            );
            assert!(w2.equal(&w));
            let (lo, hi) = (w.min().double_value(&[]), w.max().double_value(&[]));
            assert!(
                lo > 0.0 && hi < 1.0,
                "{fusion:?}/{gate:?}: weights in ({lo}, {hi})"
            );
        }
    }
}
