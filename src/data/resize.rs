//! Pillow's antialiased bilinear resampling (`Image.resize(size, Image.BILINEAR)`, which
//! is what torchvision's `Resize` runs on PIL images), reproduced bit for bit.
//!
//! Port of Pillow's `libImaging/Resample.c`: a triangle filter of support 1 stretched by
//! the scale factor when shrinking (so shrinking averages, it does not alias), weights
//! normalised in `f64` and rounded to 22-bit fixed point (`PRECISION_BITS = 32 − 8 − 2`),
//! a horizontal pass into a `u8` image, then a vertical pass. The result equals PIL's
//! exactly (tested against literals produced by Pillow), not merely within ±1.

use image::RgbImage;

/// `32 − 8 − 2`: Pillow's fixed-point precision for 8-bit images.
const PRECISION_BITS: u32 = 22;

/// Pillow's `bilinear_filter`: the triangle `max(0, 1 − |x|)`, support 1.
fn triangle(x: f64) -> f64 {
    (1.0 - x.abs()).max(0.0)
}

/// For each output position: the first input index and the fixed-point weights.
struct Coeffs {
    starts: Vec<usize>,
    weights: Vec<Vec<i32>>,
}

/// Pillow's `precompute_coeffs` followed by `normalize_coeffs_8bpc`, for the box
/// `[0, in_size)`.
fn precompute(in_size: usize, out_size: usize) -> Coeffs {
    // Pillow keeps the box in `float`; integer sizes below 2^24 are exact in f32.
    let (in0, in1) = (0.0f32, in_size as f32);
    let scale = f64::from(in1 - in0) / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filterscale; // bilinear support 1.0 × filterscale
    let ss = 1.0 / filterscale;
    let mut starts = Vec::with_capacity(out_size);
    let mut weights = Vec::with_capacity(out_size);
    for xx in 0..out_size {
        let center = f64::from(in0) + (xx as f64 + 0.5) * scale;
        // C's `(int)` truncates toward zero.
        let xmin = ((center - support + 0.5) as i64).max(0);
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64);
        let n = (xmax - xmin).max(0) as usize;
        let mut k: Vec<f64> = (0..n)
            .map(|x| triangle((x as f64 + xmin as f64 - center + 0.5) * ss))
            .collect();
        let ww: f64 = k.iter().sum();
        if ww != 0.0 {
            k.iter_mut().for_each(|v| *v /= ww);
        }
        let one = f64::from(1u32 << PRECISION_BITS);
        // Pillow rounds half away from zero: `(int)(±0.5 + v · one)`.
        let half = |v: f64| if v < 0.0 { -0.5 } else { 0.5 };
        let fixed = k.iter().map(|&v| (half(v) + v * one) as i32).collect();
        starts.push(xmin as usize);
        weights.push(fixed);
    }
    Coeffs { starts, weights }
}

/// Pillow's `clip8`: round-half-up is already in the `1 << 21` start value.
fn clip8(acc: i32) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

const HALF: i32 = 1 << (PRECISION_BITS - 1);

fn horizontal(src: &RgbImage, out_w: usize, rows: std::ops::Range<usize>) -> RgbImage {
    let c = precompute(src.width() as usize, out_w);
    let in_w = src.width() as usize;
    let raw = src.as_raw();
    let mut out = vec![0u8; out_w * rows.len() * 3];
    for (oy, y) in rows.enumerate() {
        let row = &raw[y * in_w * 3..(y + 1) * in_w * 3];
        for xx in 0..out_w {
            let (start, k) = (c.starts[xx], &c.weights[xx]);
            let taps = &row[start * 3..(start + k.len()) * 3];
            let (mut r, mut g, mut b) = (HALF, HALF, HALF);
            for (p, &w) in taps.chunks_exact(3).zip(k) {
                r += i32::from(p[0]) * w;
                g += i32::from(p[1]) * w;
                b += i32::from(p[2]) * w;
            }
            let o = (oy * out_w + xx) * 3;
            out[o..o + 3].copy_from_slice(&[clip8(r), clip8(g), clip8(b)]);
        }
    }
    RgbImage::from_raw(out_w as u32, out.len() as u32 / (out_w as u32 * 3), out)
        .expect("buffer sized for the image")
}

/// `src` rows `[offset, offset + src rows)` stand for rows starting at `offset` of the
/// full-height image the vertical coefficients were computed for.
fn vertical(src: &RgbImage, c: &Coeffs, offset: usize) -> RgbImage {
    let w = src.width() as usize;
    let out_h = c.starts.len();
    let raw = src.as_raw();
    let mut out = vec![0u8; w * out_h * 3];
    let mut acc = vec![0i32; w * 3];
    for yy in 0..out_h {
        acc.iter_mut().for_each(|a| *a = HALF);
        for (i, &k) in c.weights[yy].iter().enumerate() {
            let y = c.starts[yy] + i - offset;
            let row = &raw[y * w * 3..(y + 1) * w * 3];
            for (a, &p) in acc.iter_mut().zip(row) {
                *a += i32::from(p) * k;
            }
        }
        for (o, &a) in out[yy * w * 3..(yy + 1) * w * 3].iter_mut().zip(&acc) {
            *o = clip8(a);
        }
    }
    RgbImage::from_raw(w as u32, out_h as u32, out).expect("buffer sized for the image")
}

/// `img.resize((width, height), Image.BILINEAR)` in Pillow, exactly.
pub fn resize_bilinear(img: &RgbImage, width: u32, height: u32) -> RgbImage {
    let (in_w, in_h) = (img.width() as usize, img.height() as usize);
    let (out_w, out_h) = (width as usize, height as usize);
    if (in_w, in_h) == (out_w, out_h) {
        return img.clone(); // as Pillow, which returns a copy for the same size
    }
    if in_w == 0 || in_h == 0 || out_w == 0 || out_h == 0 {
        return RgbImage::new(width, height); // an empty side has nothing to sample
    }
    if out_h == in_h {
        return horizontal(img, out_w, 0..in_h);
    }
    let vc = precompute(in_h, out_h);
    if out_w == in_w {
        return vertical(img, &vc, 0);
    }
    // Like Pillow, the horizontal pass covers only the rows the vertical pass reads.
    let first = vc.starts[0];
    let last = vc.starts[out_h - 1] + vc.weights[out_h - 1].len();
    let tmp = horizontal(img, out_w, first..last);
    vertical(&tmp, &vc, first)
}

/// torchvision's `Resize(n)` with an int: the shorter side becomes `n`, the longer
/// `int(n · long / short)`, aspect ratio kept.
pub fn shorter_side_size(width: u32, height: u32, n: u32) -> (u32, u32) {
    let (short, long) = (width.min(height), width.max(height));
    if short == 0 {
        return (width, height);
    }
    let new_long = ((u64::from(n) * u64::from(long)) as f64 / f64::from(short)) as u32;
    if width <= height {
        (n, new_long)
    } else {
        (new_long, n)
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::fnv1a;
    use super::*;

    fn gradient(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([
                ((x * 37 + y * 11) % 256) as u8,
                ((x * x + 3 * y) % 256) as u8,
                ((y * 53 + x * 7 + x * y) % 256) as u8,
            ])
        })
    }

    /// Golden values from Pillow 13.0.0 (`.venv`), produced by:
    /// ```python
    /// import numpy as np; from PIL import Image
    /// def gradient(w, h):
    ///     y, x = np.mgrid[0:h, 0:w]
    ///     return Image.fromarray(np.stack([(x*37 + y*11) % 256, (x*x + 3*y) % 256,
    ///                                      (y*53 + x*7 + x*y) % 256], -1).astype(np.uint8))
    /// def fnv1a(b):
    ///     h = 0xcbf29ce484222325
    ///     for c in b: h = ((h ^ c) * 0x100000001b3) % 2**64
    ///     return h
    /// CASES = [((32, 24), (16, 16)), ((32, 32), (17, 9)), ((7, 5), (16, 16)), ((16, 16), (16, 8)),
    ///          ((16, 16), (9, 16)), ((40, 30), (32, 32)), ((3, 3), (1, 1)), ((1, 1), (4, 4)),
    ///          ((25, 17), (16, 16)), ((31, 29), (29, 31))]
    /// for (w, h), (ow, oh) in CASES:
    ///     out = np.asarray(gradient(w, h).resize((ow, oh), Image.BILINEAR))
    ///     print(hex(fnv1a(out.tobytes())), out[0, 0].tolist(), out[-1, -1].tolist())
    /// ```
    #[test]
    #[allow(clippy::type_complexity)] // a golden table
    fn matches_pillow_bilinear() {
        // (input w×h, output w×h, fnv1a of the output bytes, first pixel, last pixel)
        #[rustfmt::skip]
        let cases: &[((u32, u32), (u32, u32), u64, [u8; 3], [u8; 3])] = &[
            ((32, 24), (16, 16), 0xed00d20dec625f18, [30, 2, 25], [90, 108, 104]),
            ((32, 32), (17, 9), 0x2803e1c12757172b, [42, 6, 91], [166, 123, 120]),
            ((7, 5), (16, 16), 0xa022d5ffca9d26b9, [0, 0, 0], [10, 48, 22]),
            ((16, 16), (16, 8), 0x13d80931e6292d, [8, 2, 38], [200, 12, 89]),
            ((16, 16), (9, 16), 0xbc31d40b0a633a5d, [20, 1, 4], [188, 124, 89]),
            ((40, 30), (32, 32), 0x1924e552f359dfeb, [9, 0, 2], [217, 117, 116]),
            ((3, 3), (1, 1), 0x4ea469181d80ddb9, [48, 5, 61], [48, 5, 61]),
            ((1, 1), (4, 4), 0xa09d945a1cd8d6e5, [0, 0, 0], [0, 0, 0]),
            ((25, 17), (16, 16), 0x84d058a61318c043, [16, 0, 7], [33, 93, 105]),
            ((31, 29), (29, 31), 0x5b9db7ba1814c7e5, [3, 0, 1], [135, 211, 227]),
        ];
        for &((w, h), (ow, oh), hash, first, last) in cases {
            let out = resize_bilinear(&gradient(w, h), ow, oh);
            assert_eq!((out.width(), out.height()), (ow, oh));
            assert_eq!(out.get_pixel(0, 0).0, first, "{w}×{h} → {ow}×{oh}");
            assert_eq!(out.get_pixel(ow - 1, oh - 1).0, last, "{w}×{h} → {ow}×{oh}");
            assert_eq!(fnv1a(out.as_raw()), hash, "{w}×{h} → {ow}×{oh}");
        }
    }

    #[test]
    fn shorter_side_matches_torchvision() {
        // torchvision.transforms.functional._compute_resized_output_size
        let cases = [
            ((256, 256), 224, (224, 224)),
            ((300, 200), 256, (384, 256)),
            ((200, 333), 256, (256, 426)),
            ((1, 5), 3, (3, 15)),
        ];
        for ((w, h), n, want) in cases {
            assert_eq!(shorter_side_size(w, h, n), want, "{w}×{h} → {n}");
        }
    }
}
