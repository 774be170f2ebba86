//! Fake families: the up-sampler a "generator" uses to bring its low-resolution
//! render to full size, and the NPR scale at which that up-sampler leaves its trace.
//!
//! Index and weight rules follow PyTorch's `F.interpolate` (`align_corners=False`),
//! so a family's trace is exactly what the NPR branch (which down- and up-samples with
//! PyTorch's `nearest`) sees:
//! - nearest: `src = min(⌊dst · (in/out)⌋, in − 1)` with the ratio in f32 (ATen
//!   `nearest_idx`, exact for the integer factors used here);
//! - bilinear: `src = max((dst + ½)·in/out − ½, 0)`, edge index clamped;
//! - bicubic: `src = (dst + ½)·in/out − ½` (not clamped), Keys kernel with A = −0.75,
//!   taps clamped to the border;
//! - transposed convolution ×2: `ConvTranspose2d(k=4, stride=2, padding=1)`, one
//!   depthwise 4×4 kernel per channel, applied in the generator's `[−1, 1]` range with
//!   the input replicated at the border (no dark frame). The kernel is the bilinear
//!   kernel `b ⊗ b`, `b = [¼, ¾, ¾, ¼]`, plus a fixed seeded jitter: each of the four
//!   output phases then has its own 2×2 sub-kernel and gain — the checkerboard of
//!   Odena et al., "Deconvolution and Checkerboard Artifacts" (Distill, 2016).

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::content::Planes;

/// Amplitude of the uniform jitter added to each tap of the transposed-convolution
/// kernel (the bilinear taps are ¼·¼ … ¾·¾). The kernel is then rescaled so the mean
/// of its four phase gains is 1 (no overall brightness change); what remains is the
/// phase-to-phase difference, i.e. the checkerboard.
pub const TCONV_JITTER: f32 = 0.06;

/// Seed of the transposed-convolution kernels. Fixed, not the benchmark's seed: like a
/// trained generator's layer, the kernel is part of the family's definition, and the
/// family keeps the same checkerboard strength whatever `--seed` draws.
pub const TCONV_KERNEL_SEED: u64 = 0x7C0_2016;

/// Kernel taps are multiples of `1/KERNEL_UNIT`.
const KERNEL_UNIT: f32 = 4096.0;

/// How a family brings its low-resolution render to full size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Upsampler {
    /// Nearest neighbour (pixel replication for integer factors).
    Nearest,
    /// Bilinear, `align_corners=False`.
    Bilinear,
    /// Bicubic (A = −0.75), `align_corners=False`.
    Bicubic,
    /// Transposed convolution, kernel 4, stride 2, padding 1.
    TransposedConv,
    /// A super-resolution network (the photo benchmark's neural families; `network` in
    /// the manifest names it).
    Esrgan,
}

/// A fake family. See DATASET_DETAILS.md for what each imitates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// Nearest ×2 — GAN-like, trace at NPR scale 0.5.
    NearestX2,
    /// Transposed convolution ×2 — GAN-like, checkerboard, scale 0.5.
    TconvX2,
    /// Bilinear ×2 — scale 0.5.
    BilinearX2,
    /// Nearest ×4 — latent-diffusion-like (8× latents decoded in steps), scale 0.25.
    NearestX4,
    /// Bilinear ×4 — latent-diffusion-like, scale 0.25.
    BilinearX4,
    /// Bicubic ×4/3 — scale 0.75.
    BicubicX4by3,
    /// Nearest ×8 — scale 0.125, which no NPR branch has.
    NearestX8,
}

impl Family {
    /// Every family, in manifest and test-folder order.
    pub const ALL: [Family; 7] = [
        Family::NearestX2,
        Family::TconvX2,
        Family::BilinearX2,
        Family::NearestX4,
        Family::BilinearX4,
        Family::BicubicX4by3,
        Family::NearestX8,
    ];

    /// Folder and manifest name.
    pub fn name(self) -> &'static str {
        match self {
            Family::NearestX2 => "nearest_x2",
            Family::TconvX2 => "tconv_x2",
            Family::BilinearX2 => "bilinear_x2",
            Family::NearestX4 => "nearest_x4",
            Family::BilinearX4 => "bilinear_x4",
            Family::BicubicX4by3 => "bicubic_x4_3",
            Family::NearestX8 => "nearest_x8",
        }
    }

    /// The family called `name`, if any.
    pub fn from_name(name: &str) -> Option<Family> {
        Family::ALL.into_iter().find(|f| f.name() == name)
    }

    pub fn upsampler(self) -> Upsampler {
        match self {
            Family::NearestX2 | Family::NearestX4 | Family::NearestX8 => Upsampler::Nearest,
            Family::TconvX2 => Upsampler::TransposedConv,
            Family::BilinearX2 | Family::BilinearX4 => Upsampler::Bilinear,
            Family::BicubicX4by3 => Upsampler::Bicubic,
        }
    }

    /// Up-sampling factor as a fraction `(numerator, denominator)`.
    pub fn factor(self) -> (u32, u32) {
        match self {
            Family::NearestX2 | Family::TconvX2 | Family::BilinearX2 => (2, 1),
            Family::NearestX4 | Family::BilinearX4 => (4, 1),
            Family::BicubicX4by3 => (4, 3),
            Family::NearestX8 => (8, 1),
        }
    }

    /// The NPR scale at which the trace lives: the inverse of the factor.
    pub fn npr_scale(self) -> f64 {
        let (num, den) = self.factor();
        den as f64 / num as f64
    }

    /// Side of the low-resolution render for images of `size` pixels (`size` is a
    /// multiple of 8, so this is exact for every family).
    pub fn low_res(self, size: usize) -> usize {
        let (num, den) = self.factor();
        size * den as usize / num as usize
    }
}

/// The fixed per-channel transposed-convolution kernels, `[c][ky][kx]`.
pub type TconvKernel = [[[f32; 4]; 4]; 3];

/// The transposed-convolution family's kernels: drawn from [`TCONV_KERNEL_SEED`], the same
/// for every benchmark (procedural or from photographs).
pub fn family_tconv_kernel() -> TconvKernel {
    tconv_kernel(&mut crate::synth::derived_rng(
        TCONV_KERNEL_SEED,
        "tconv_kernel",
    ))
}

/// Draws the transposed-convolution kernels: bilinear taps plus jitter, rescaled so the
/// mean phase gain is 1 (see [`TCONV_JITTER`]), then rounded to multiples of 1/4096
/// (exact in the manifest) with the rounding error put on a centre tap so the four
/// phase gains still sum to exactly 4.
pub fn tconv_kernel<R: Rng + ?Sized>(rng: &mut R) -> TconvKernel {
    const B: [f32; 4] = [0.25, 0.75, 0.75, 0.25];
    let mut k = [[[0.0f32; 4]; 4]; 3];
    for kc in k.iter_mut() {
        let mut sum = 0.0;
        for (ky, row) in kc.iter_mut().enumerate() {
            for (kx, w) in row.iter_mut().enumerate() {
                *w = B[ky] * B[kx] + TCONV_JITTER * (2.0 * rng.gen::<f32>() - 1.0);
                sum += *w;
            }
        }
        // The four phases together sum to 4 when each has gain 1.
        let s = 4.0 / sum;
        let mut units = 0i64;
        for w in kc.iter_mut().flatten() {
            *w = (*w * s * KERNEL_UNIT).round() / KERNEL_UNIT;
            units += (*w * KERNEL_UNIT) as i64;
        }
        kc[1][1] += (4 * KERNEL_UNIT as i64 - units) as f32 / KERNEL_UNIT;
    }
    k
}

/// Up-samples `low` to `size × size` with `family`'s up-sampler.
pub(crate) fn upsample(family: Family, low: &Planes, size: usize, kernel: &TconvKernel) -> Planes {
    match family.upsampler() {
        Upsampler::Nearest => resample_separable(low, size, nearest_taps),
        Upsampler::Bilinear => resample_separable(low, size, bilinear_taps),
        Upsampler::Bicubic => resample_separable(low, size, bicubic_taps),
        Upsampler::TransposedConv => {
            assert_eq!(size, 2 * low.n, "transposed convolution is ×2");
            transposed_conv_x2(low, kernel)
        }
        Upsampler::Esrgan => unreachable!("a classical family's up-sampler is never a network"),
    }
}

/// PyTorch's `nearest` source index (ATen `nearest_idx`).
pub(crate) fn nearest_index(dst: usize, input: usize, output: usize) -> usize {
    if output == input {
        dst
    } else if output == 2 * input {
        dst >> 1
    } else {
        let scale = input as f32 / output as f32;
        ((dst as f32 * scale).floor() as usize).min(input - 1)
    }
}

/// Taps `(source index, weight)` of one output index.
type Taps = Vec<(usize, f32)>;

fn nearest_taps(dst: usize, input: usize, output: usize) -> Taps {
    vec![(nearest_index(dst, input, output), 1.0)]
}

fn bilinear_taps(dst: usize, input: usize, output: usize) -> Taps {
    let scale = input as f32 / output as f32;
    let src = ((dst as f32 + 0.5) * scale - 0.5).max(0.0);
    let i0 = (src.floor() as usize).min(input - 1);
    let i1 = if i0 < input - 1 { i0 + 1 } else { i0 };
    let l1 = src - i0 as f32;
    vec![(i0, 1.0 - l1), (i1, l1)]
}

fn bicubic_taps(dst: usize, input: usize, output: usize) -> Taps {
    const A: f32 = -0.75;
    let cc1 = |x: f32| ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0; // |x| ≤ 1
    let cc2 = |x: f32| ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A; // 1 < |x| < 2
    let scale = input as f32 / output as f32;
    let src = (dst as f32 + 0.5) * scale - 0.5;
    let i = src.floor();
    let t = src - i;
    let w = [cc2(t + 1.0), cc1(t), cc1(1.0 - t), cc2(2.0 - t)];
    (0..4)
        .map(|k| {
            let idx = (i as i64 - 1 + k as i64).clamp(0, input as i64 - 1) as usize;
            (idx, w[k])
        })
        .collect()
}

/// Separable resampling: rows then columns with the same tap rule.
fn resample_separable(low: &Planes, size: usize, taps: fn(usize, usize, usize) -> Taps) -> Planes {
    let n = low.n;
    let t: Vec<Taps> = (0..size).map(|d| taps(d, n, size)).collect();
    let mut out = Planes::zeros(size);
    let mut tmp = vec![0.0f32; n * size]; // [y_low][x_out]
    for c in 0..3 {
        let src = low.plane(c);
        for y in 0..n {
            for (x, tx) in t.iter().enumerate() {
                tmp[y * size + x] = tx.iter().map(|&(i, w)| w * src[y * n + i]).sum();
            }
        }
        let dst = out.plane_mut(c);
        for (y, ty) in t.iter().enumerate() {
            for x in 0..size {
                dst[y * size + x] = ty.iter().map(|&(i, w)| w * tmp[i * size + x]).sum();
            }
        }
    }
    out
}

/// `ConvTranspose2d(k=4, s=2, p=1)`, depthwise: `out[y] = Σ_k K[k]·in[(y + 1 − k)/2]`
/// over the taps with `y + 1 − k` even, the input replicated beyond its border.
fn transposed_conv_x2(low: &Planes, kernel: &TconvKernel) -> Planes {
    let n = low.n;
    let size = 2 * n;
    // For each output index: its two (input index, kernel tap) pairs.
    let taps: Vec<[(usize, usize); 2]> = (0..size)
        .map(|y| {
            let first = if y % 2 == 0 { 1 } else { 0 };
            let pair = |k: usize| {
                let a = (y as i64 + 1 - k as i64) / 2;
                (a.clamp(0, n as i64 - 1) as usize, k)
            };
            [pair(first), pair(first + 2)]
        })
        .collect();
    let mut out = Planes::zeros(size);
    for (c, kc) in kernel.iter().enumerate() {
        let src = low.plane(c);
        let dst = out.plane_mut(c);
        for (y, ty) in taps.iter().enumerate() {
            for (x, tx) in taps.iter().enumerate() {
                let mut acc = 0.0;
                for &(iy, ky) in ty {
                    for &(ix, kx) in tx {
                        // Into and out of the generator's [−1, 1] range.
                        acc += kc[ky][kx] * (2.0 * src[iy * n + ix] - 1.0);
                    }
                }
                dst[y * size + x] = 0.5 * (acc + 1.0);
            }
        }
    }
    out
}
