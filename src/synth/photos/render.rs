//! Pixels of the photo benchmark: a photograph's ÷2 area down-scale, and from it a real
//! crop or a fake brought back from a lower resolution by a family's up-sampler.
//!
//! - Why ÷2 first: a camera photograph carries its own periodic traces — colour-filter-array
//!   demosaicking (period 2), JPEG's 8×8 blocks and chroma subsampling, and whatever
//!   resizing the publisher applied. NPR sees period-2 structure as an up-sampling trace,
//!   so a raw photo crop would be a "real" with a fake's signature. Averaging each 2×2
//!   block folds a period-2 pattern into a constant and halves every other period; the
//!   reals are then as free of grid traces as a natural image can be, and the fakes'
//!   traces are the only grid-locked ones.
//! - A fake of factor f takes a region of the down-scaled photograph, area-down-scales it
//!   by f (PyTorch's `area`: the mean over each output pixel's window), rounds it to 8
//!   bits as a saved low-resolution image would be, up-samples it by f and keeps the centre
//!   crop. The region is the crop plus [`MARGIN`] pixels of context on each side, so a
//!   network's border effects (its zero padding) fall outside the crop; the margin is a
//!   multiple of every factor's period, so the up-sampler's grid stays locked to the crop's
//!   pixel grid — where NPR's grid is (README_ATTENTION.md, "What the control found").
//! - A real is the centre crop of a region drawn the same way, rounded to 8 bits.
use anyhow::{Context, Result};
use image::RgbImage;
use tch::{Kind, Tensor};

use super::family::PhotoFamily;
use crate::synth::content::Planes;
use crate::synth::family::{upsample, TconvKernel};
use crate::synth::quantize;
use crate::upsample::Esrgan;

/// Context around each crop, pixels of the down-scaled photograph: a multiple of 24, so of
/// every factor's grid period (2, 3, 4, 8, and 4 for ×4/3), and at ×4 still 12 pixels of
/// the network's input — deeper than the 8–9 pixels at which esrgan-slim's and -medium's
/// zero padding changes an 8-bit output value (measured by
/// `tests/it/upsample.rs::esrgan_border_effects_stay_inside_the_margin`; 24 left ×4 fakes
/// with padding traces along their borders).
pub const MARGIN: usize = 48;

/// Side of the region a crop of `size` pixels is made from: the crop and its margins.
pub fn region_side(size: u32) -> usize {
    size as usize + 2 * MARGIN
}

/// A photograph after the ÷2 area down-scale: planar `[c][y][x]`, values in `[0, 1]`.
pub struct Halved {
    pub width: usize,
    pub height: usize,
    data: Vec<f32>,
}

impl Halved {
    /// The mean of each 2×2 block (an odd last row or column is dropped).
    pub fn of(img: &RgbImage) -> Halved {
        let (w, h) = (img.width() as usize / 2, img.height() as usize / 2);
        let raw = img.as_raw();
        let stride = img.width() as usize * 3;
        let mut data = vec![0f32; 3 * w * h];
        for c in 0..3 {
            for y in 0..h {
                for x in 0..w {
                    let at = |dy: usize, dx: usize| {
                        raw[(2 * y + dy) * stride + (2 * x + dx) * 3 + c] as f32
                    };
                    let sum = at(0, 0) + at(0, 1) + at(1, 0) + at(1, 1);
                    data[c * w * h + y * w + x] = sum / (4.0 * 255.0);
                }
            }
        }
        Halved {
            width: w,
            height: h,
            data,
        }
    }

    /// The `side × side` square at `(x, y)`.
    pub fn region(&self, x: usize, y: usize, side: usize) -> Planes {
        let mut out = Planes::zeros(side);
        let plane = self.width * self.height;
        for c in 0..3 {
            let dst = out.plane_mut(c);
            for r in 0..side {
                let from = c * plane + (y + r) * self.width + x;
                dst[r * side..(r + 1) * side].copy_from_slice(&self.data[from..from + side]);
            }
        }
        out
    }
}

/// PyTorch's `area` down-scale (`adaptive_avg_pool2d`) of a square to `out × out`: output
/// pixel `i` averages input rows `⌊i·n/out⌋ .. ⌈(i+1)·n/out⌉`, and the same for columns.
pub fn area(img: &Planes, out: usize) -> Planes {
    let n = img.n;
    let window = |i: usize| (i * n / out, ((i + 1) * n).div_ceil(out));
    let mut res = Planes::zeros(out);
    for c in 0..3 {
        let src = img.plane(c);
        let dst = res.plane_mut(c);
        for oy in 0..out {
            let (y0, y1) = window(oy);
            for ox in 0..out {
                let (x0, x1) = window(ox);
                let mut sum = 0f32;
                for y in y0..y1 {
                    sum += src[y * n + x0..y * n + x1].iter().sum::<f32>();
                }
                dst[oy * out + ox] = sum / ((y1 - y0) * (x1 - x0)) as f32;
            }
        }
    }
    res
}

/// Rounds to 8-bit levels, staying in `[0, 1]` units.
fn to_8bit(mut img: Planes) -> Planes {
    for v in img.data.iter_mut() {
        *v = (v.clamp(0.0, 1.0) * 255.0).round() / 255.0;
    }
    img
}

/// The centre `size × size` crop of a square.
fn centre(img: &Planes, size: usize) -> Planes {
    let o = (img.n - size) / 2;
    let mut out = Planes::zeros(size);
    for c in 0..3 {
        let (src, dst) = (img.plane(c), out.plane_mut(c));
        for y in 0..size {
            let from = (y + o) * img.n + o;
            dst[y * size..(y + 1) * size].copy_from_slice(&src[from..from + size]);
        }
    }
    out
}

/// A real: the region's centre crop.
pub fn real(region: &Planes, size: usize) -> RgbImage {
    quantize(&centre(region, size))
}

/// An 8-bit image's bytes, planar (lossless for the output of [`low_res`]).
pub fn pack(img: &Planes) -> Vec<u8> {
    img.data.iter().map(|v| (v * 255.0).round() as u8).collect()
}

/// The inverse of [`pack`] for an `n × n` image.
pub fn unpack(n: usize, bytes: &[u8]) -> Planes {
    debug_assert_eq!(bytes.len(), 3 * n * n);
    Planes {
        n,
        data: bytes.iter().map(|&b| b as f32 / 255.0).collect(),
    }
}

/// The 8-bit low-resolution input a fake of `family` starts from.
pub fn low_res(region: &Planes, family: PhotoFamily) -> Planes {
    to_8bit(area(region, family.low_res(region.n)))
}

/// A classical fake: `low` up-sampled to the region's side, then the centre crop.
pub fn classical(
    family: crate::synth::Family,
    low: &Planes,
    side: usize,
    size: usize,
    kernel: &TconvKernel,
) -> RgbImage {
    quantize(&centre(&upsample(family, low, side, kernel), size))
}

/// Neural fakes of one batch: each low-resolution input through the network, rounded and
/// clamped as UpscalerJS returns it, then the centre crop.
pub fn neural(net: &Esrgan, lows: &[Planes], size: usize) -> Result<Vec<RgbImage>> {
    let n = lows[0].n as i64;
    let flat: Vec<f32> = lows
        .iter()
        .flat_map(|p| p.data.iter().map(|v| v * 255.0))
        .collect();
    let x = Tensor::from_slice(&flat).view([lows.len() as i64, 3, n, n]);
    let y = tch::no_grad(|| net.forward(&x))?;
    let side = n * net.scale();
    let o = (side - size as i64) / 2;
    let y = y
        .round()
        .clamp(0.0, 255.0)
        .narrow(2, o, size as i64)
        .narrow(3, o, size as i64)
        .permute([0, 2, 3, 1]) // [b, size, size, 3]
        .to_kind(Kind::Uint8)
        .contiguous();
    (0..lows.len() as i64)
        .map(|i| {
            let bytes: Vec<u8> = y.get(i).reshape([-1]).try_into()?;
            RgbImage::from_raw(size as u32, size as u32, bytes).context("a crop of size² pixels")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(n: usize) -> Planes {
        let mut p = Planes::zeros(n);
        for (i, v) in p.data.iter_mut().enumerate() {
            *v = i as f32;
        }
        p
    }

    #[test]
    fn area_averages_each_window_like_adaptive_avg_pool() {
        // 4 → 2: 2×2 blocks. 4 → 3: windows [0,2), [1,3), [2,4) (overlapping, as PyTorch).
        let img = ramp(4);
        let half = area(&img, 2);
        assert_eq!(half.plane(0), [2.5, 4.5, 10.5, 12.5]);
        let three = area(&img, 3);
        assert_eq!(
            three.plane(0),
            [2.5, 3.5, 4.5, 6.5, 7.5, 8.5, 10.5, 11.5, 12.5]
        );
        // Identity when the side does not change.
        assert_eq!(area(&img, 4), img);
    }

    #[test]
    fn halving_averages_2x2_blocks_and_drops_an_odd_edge() {
        let img = RgbImage::from_fn(5, 3, |x, y| image::Rgb([(10 * x + y) as u8, 0, 255]));
        let h = Halved::of(&img);
        assert_eq!((h.width, h.height), (2, 1));
        let r = h.region(0, 0, 1);
        assert!((r.plane(0)[0] * 255.0 - 5.5).abs() < 1e-4); // (0 + 1 + 10 + 11) / 4
        assert_eq!(r.plane(2)[0], 1.0);
        let r = h.region(1, 0, 1);
        assert!((r.plane(0)[0] * 255.0 - 25.5).abs() < 1e-4);
    }

    #[test]
    fn a_nearest_fake_is_constant_on_its_blocks_in_the_crop() {
        // The margin keeps the ×2, ×3, ×4 and ×8 blocks aligned to the crop's origin.
        let mut region = Planes::zeros(96);
        for (i, v) in region.data.iter_mut().enumerate() {
            *v = ((i * 7919) % 251) as f32 / 255.0;
        }
        let kernel = [[[0.0; 4]; 4]; 3];
        for fam in [
            crate::synth::Family::NearestX2,
            crate::synth::Family::NearestX4,
            crate::synth::Family::NearestX8,
        ] {
            let low = low_res(&region, PhotoFamily::Classical(fam));
            let img = classical(fam, &low, 96, 48, &kernel);
            let b = fam.factor().0;
            for y in 0..48 {
                for x in 0..48 {
                    assert_eq!(img.get_pixel(x, y), img.get_pixel(x - x % b, y - y % b));
                }
            }
        }
    }
}
