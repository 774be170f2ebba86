//! Neighbouring Pixel Relationships (Tan et al., "Rethinking the Up-Sampling Operations in
//! CNN-based Generative Network for Generalizable Deepfake Detection", CVPR 2024).
//!
//! Up-sampling in a generator makes neighbouring pixels depend on each other; the residual
//! of an image against its own nearest-neighbour down/up-sampled copy exposes that trace:
//!
//! `NPR_s(x) = x − up_nearest(down_nearest(x, ⌊H·s⌋×⌊W·s⌋), H×W)`        x: [b, c, h, w]
//!
//! Output sizes are explicit, so any H×W works (the official code needs even sizes); for even
//! sizes and s = 0.5 this equals the official `interpolate(x, 0.5)` then `interpolate(…, 2)`.
//! Scale 1.0 is the identity branch: the image itself (a literal NPR at 1.0 is zero).
use tch::Tensor;

/// The official NPR feeds `NPR · 2/3` to the backbone (`self.conv1(NPR*2.0/3.0)` in the
/// reference code); kept as the default gain so that official checkpoints see the same input.
pub const OFFICIAL_NPR_GAIN: f64 = 2.0 / 3.0;

/// True for the identity branch (scale 1.0).
pub fn is_identity(scale: f64) -> bool {
    scale >= 1.0
}

/// The side length of the down-sampled image: ⌊n·s⌋, at least 1.
pub fn down_size(n: i64, scale: f64) -> i64 {
    // A tiny epsilon so that 0.75·224 = 168 exactly, not 167.999…
    ((n as f64 * scale + 1e-9).floor() as i64).max(1)
}

/// `NPR_s(x)` for one scale; the identity branch returns `x` itself.
pub fn npr(x: &Tensor, scale: f64) -> Tensor {
    if is_identity(scale) {
        return x.shallow_clone();
    }
    let (_, _, h, w) = x.size4().expect("NPR takes [b, c, h, w]");
    let down = x.upsample_nearest2d([down_size(h, scale), down_size(w, scale)], None, None);
    let up = down.upsample_nearest2d([h, w], None, None); // [b, c, h, w]
    x - up
}

/// All branches stacked: [b, k, c, h, w] (branch-major, so a view as [b, k·c, h, w] is the
/// channel concatenation of the paper).
pub fn npr_branches(x: &Tensor, scales: &[f64]) -> Tensor {
    let branches: Vec<Tensor> = scales.iter().map(|&s| npr(x, s)).collect();
    Tensor::stack(&branches, 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn constant_2x2_blocks_have_zero_npr_at_half_scale() {
        let small = Tensor::randn([2, 3, 8, 8], (Kind::Float, Device::Cpu));
        let blocks = small
            .repeat_interleave_self_int(2, Some(2), None)
            .repeat_interleave_self_int(2, Some(3), None); // [2, 3, 16, 16] of constant 2×2 blocks
        let r = npr(&blocks, 0.5);
        assert_eq!(r.abs().max().double_value(&[]), 0.0);
        // …but not at 0.25, where 4×4 blocks would be needed.
        assert!(npr(&blocks, 0.25).abs().max().double_value(&[]) > 0.0);
    }

    #[test]
    fn identity_branch_returns_the_input() {
        let x = Tensor::randn([1, 3, 9, 7], (Kind::Float, Device::Cpu));
        assert!(npr(&x, 1.0).equal(&x));
    }

    #[test]
    fn odd_sizes_keep_the_shape() {
        let x = Tensor::randn([2, 3, 33, 35], (Kind::Float, Device::Cpu));
        for s in [0.25, 0.5, 0.75, 1.0] {
            assert_eq!(npr(&x, s).size(), vec![2, 3, 33, 35], "scale {s}");
        }
        assert_eq!(npr_branches(&x, &[0.5, 1.0]).size(), vec![2, 2, 3, 33, 35]);
    }

    #[test]
    fn down_sizes() {
        for (n, s, want) in [
            (224, 0.75, 168),
            (224, 0.5, 112),
            (33, 0.5, 16),
            (3, 0.25, 1),
            (256, 0.25, 64),
        ] {
            assert_eq!(down_size(n, s), want, "{n}·{s}");
        }
    }
}
