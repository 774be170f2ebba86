//! How the k NPR branches become one 3-channel map for the backbone (ARCHITECTURE.md, Model).
//!
//! Every mode produces weights w ∈ [b, k, 3] and `fused = Σ_k w[:, k, c] · branch_k[:, c]`,
//! so the attention, the fixed and the learned weights are compared on equal terms.
use tch::{nn, Kind, Tensor};

use super::scale_attention::ScaleAttention;
use crate::config::{Fusion, ModelConfig};

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
        let k = config.scales.len();
        match config.fusion {
            Fusion::Attention => ScaleFusion::Attention(ScaleAttention::new(
                vs / ATTENTION_PREFIX,
                k,
                &config.attention,
            )),
            Fusion::Equal => ScaleFusion::Equal { branches: k as i64 },
            Fusion::Learned => ScaleFusion::Learned {
                logits: vs.var(
                    LEARNED_WEIGHTS,
                    &[k as i64, 3],
                    nn::Init::Const(config.attention.bias_init),
                ),
            },
            Fusion::Single => ScaleFusion::Single,
        }
    }

    /// branches: [b, k, 3, h, w] → (fused [b, 3, h, w], weights [b, k, 3]).
    pub fn fuse(&self, branches: &Tensor) -> (Tensor, Tensor) {
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
        let fused =
            (branches * weights.view([b, k, c, 1, 1])).sum_dim_intlist(1, false, None::<Kind>);
        (fused, weights)
    }
}
