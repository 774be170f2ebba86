//! Gaussian blur with the semantics of CNNDetection's augmentation,
//! `scipy.ndimage.gaussian_filter(img[:, :, c], output=img[:, :, c], sigma=σ)`:
//!
//! - kernel `exp(−x²/2σ²)` for `x ∈ [−r, r]`, `r = int(4σ + 0.5)` (`truncate = 4`),
//!   divided by its sum (numpy's pairwise summation, reproduced here);
//! - boundary mode `reflect` (`d c b a | a b c d | d c b a`);
//! - axis 0 (down the columns) first, then axis 1, and because the output array is the
//!   `uint8` image itself, each pass is stored as `u8` by C's truncating cast — so a flat
//!   region of 100 blurred with σ = 0.3 becomes 98, exactly as in scipy;
//! - the symmetric-kernel accumulation order of `NI_Correlate1D`;
//! - σ ≤ 1e-15 leaves the image unchanged (scipy drops such axes).
//!
//! Parity: identical to scipy 1.17 whenever numpy's `exp` returns what Rust's (libm's)
//! `exp` returns, which is numpy's own behaviour on CPUs without AVX-512. With AVX-512,
//! numpy calls Intel SVML's `exp`, which is one ulp off for some kernel entries; values
//! that land on an integer boundary then truncate differently. Measured on a 97×71 test
//! image against scipy with SVML: 198 of 205 random σ ∈ [0, 3] identical; for the other
//! 7, at most 5 % of values differ, by 1 (once 2).

use image::RgbImage;

/// scipy's default `truncate`.
const TRUNCATE: f64 = 4.0;

/// numpy's `pairwise_sum` for float64 (`n ≤ 128` covers every kernel here).
fn numpy_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        return a.iter().fold(0.0, |s, &v| s + v);
    }
    if n > 128 {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        return numpy_sum(&a[..n2]) + numpy_sum(&a[n2..]);
    }
    let mut r = [0.0f64; 8];
    r.copy_from_slice(&a[..8]);
    let tail = n - n % 8;
    for block in a[8..tail].chunks_exact(8) {
        r.iter_mut().zip(block).for_each(|(r, v)| *r += v);
    }
    let res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    a[tail..].iter().fold(res, |s, &v| s + v)
}

/// scipy's `_gaussian_kernel1d(sigma, 0, radius)`: weights for offsets `−r..=r`.
pub fn gaussian_kernel(sigma: f64) -> Vec<f64> {
    let radius = (TRUNCATE * sigma + 0.5) as i64;
    let a = -0.5 / (sigma * sigma);
    let phi: Vec<f64> = (-radius..=radius)
        .map(|x| (a * (x * x) as f64).exp())
        .collect();
    let sum = numpy_sum(&phi);
    phi.iter().map(|v| v / sum).collect()
}

/// scipy's `reflect` extension: index `i` of a line of length `n`, any integer `i`.
fn reflect(i: i64, n: i64) -> usize {
    let period = 2 * n;
    let m = i.rem_euclid(period);
    (if m < n { m } else { period - 1 - m }) as usize
}

/// One `correlate1d` pass over a line, symmetric kernel, truncating cast to `u8`.
fn filter_line(line: &[f64], out: &mut [u8], w: &[f64], ext: &mut Vec<f64>) {
    let n = line.len() as i64;
    let r = (w.len() / 2) as i64;
    ext.clear();
    ext.extend((-r..n + r).map(|i| line[reflect(i, n)]));
    let center = r as usize;
    for (k, o) in out.iter_mut().enumerate() {
        let c = k + center;
        // NI_Correlate1D, symmetric case: centre term, then pairs from the outside in.
        let mut acc = ext[c] * w[center];
        for j in (1..=center).rev() {
            acc += (ext[c - j] + ext[c + j]) * w[center - j];
        }
        *o = acc as u8; // C cast: truncation (values stay within [0, 255])
    }
}

/// `gaussian_filter` applied to each channel in place, as CNNDetection does.
pub fn gaussian_blur(img: &RgbImage, sigma: f64) -> RgbImage {
    let mut out = img.clone();
    if sigma.is_nan() || sigma <= 1e-15 || img.width() == 0 || img.height() == 0 {
        return out;
    }
    let w = gaussian_kernel(sigma);
    let (width, height) = (img.width() as usize, img.height() as usize);
    let buf: &mut [u8] = &mut out;
    let (mut line, mut ext, mut res) = (Vec::new(), Vec::new(), Vec::new());
    // Axis 0 (each column: `width` lines of `height` values, a step of one row between
    // values), then axis 1 (each row), which reads the already-truncated first pass.
    let axes = [(width, height, 3, width * 3), (height, width, width * 3, 3)];
    for ch in 0..3 {
        for (lines, len, line_step, value_step) in axes {
            for l in 0..lines {
                let at = |i: usize| l * line_step + i * value_step + ch;
                line.clear();
                line.extend((0..len).map(|i| f64::from(buf[at(i)])));
                res.resize(len, 0u8);
                filter_line(&line, &mut res, &w, &mut ext);
                for (i, &v) in res.iter().enumerate() {
                    buf[at(i)] = v;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflect_is_half_sample_symmetric() {
        let idx: Vec<usize> = (-5..9).map(|i| reflect(i, 4)).collect();
        assert_eq!(idx, [3, 3, 2, 1, 0, 0, 1, 2, 3, 3, 2, 1, 0, 0]);
        assert!((-3..4).all(|i| reflect(i, 1) == 0));
    }

    #[test]
    fn kernel_sums_like_numpy() {
        for sigma in [0.3, 1.0, 2.5, 3.0] {
            let k = gaussian_kernel(sigma);
            assert_eq!(k.len(), 2 * (4.0 * sigma + 0.5) as usize + 1);
            assert!((k.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            let n = k.len();
            assert!((0..n).all(|i| k[i] == k[n - 1 - i]), "symmetric");
        }
    }

    /// Golden values from scipy 1.17.1 / numpy 2.4.6, produced by:
    /// ```python
    /// import numpy as np; from scipy.ndimage import gaussian_filter
    /// def image(w, h):  # same formula as `textured` below
    ///     y, x = np.mgrid[0:h, 0:w]
    ///     return np.stack([(x*37 + y*11) % 256, (x*x + 3*y) % 256,
    ///                      np.where((x//4 + y//4) % 2 == 0, 100, 180)], -1).astype(np.uint8)
    /// def fnv1a(b):  # 64-bit FNV-1a
    ///     h = 0xcbf29ce484222325
    ///     for c in b: h = ((h ^ c) * 0x100000001b3) % 2**64
    ///     return h
    /// for sigma in [0.3, 0.5, 1.0, 1.7, 2.3, 3.0]:
    ///     img = image(20, 12)
    ///     for c in range(3):
    ///         gaussian_filter(img[:, :, c], output=img[:, :, c], sigma=sigma)
    ///     print(sigma, hex(fnv1a(img.tobytes())), img[5, 7].tolist(), img[0, 19].tolist())
    /// flat = np.full((6, 6, 3), 100, np.uint8); gaussian_filter(flat[:, :, 0], output=flat[:, :, 0], sigma=0.3)
    /// ```
    /// σ = 0.8125 is left out on purpose: there numpy (SVML `exp` on this AVX-512 machine)
    /// returns exp(−0.757…) one ulp below glibc's, and the hash differs (see module docs).
    #[test]
    fn matches_scipy_gaussian_filter() {
        let textured = RgbImage::from_fn(20, 12, |x, y| {
            image::Rgb([
                ((x * 37 + y * 11) % 256) as u8,
                ((x * x + 3 * y) % 256) as u8,
                if (x / 4 + y / 4) % 2 == 0 { 100 } else { 180 },
            ])
        });
        #[rustfmt::skip]
        let cases: &[(f64, u64, [u8; 3], [u8; 3])] = &[
            (0.3, 0xb61eb5f6132bde94, [56, 63, 99], [190, 104, 98]),
            (0.5, 0xe1890f8c2182cbe5, [58, 64, 108], [188, 101, 100]),
            (1.0, 0xc545fcbe17c1e6b0, [75, 64, 125], [179, 90, 100]),
            (1.7, 0x41397dd6e212d502, [108, 66, 135], [166, 79, 102]),
            (2.3, 0x6105088f6518ee73, [122, 69, 138], [155, 82, 111]),
            (3.0, 0x44a8b0a98916ec6f, [126, 72, 139], [147, 91, 123]),
        ];
        for &(sigma, hash, p57, p019) in cases {
            let out = gaussian_blur(&textured, sigma);
            assert_eq!(out.get_pixel(7, 5).0, p57, "σ = {sigma}");
            assert_eq!(out.get_pixel(19, 0).0, p019, "σ = {sigma}");
            assert_eq!(
                super::super::fixtures::fnv1a(out.as_raw()),
                hash,
                "σ = {sigma}"
            );
        }
        // scipy truncates each pass: a flat 100 with σ = 0.3 becomes 98.
        let flat = RgbImage::from_pixel(6, 6, image::Rgb([100, 100, 100]));
        assert!(gaussian_blur(&flat, 0.3)
            .pixels()
            .all(|p| p.0 == [98, 98, 98]));
        assert_eq!(gaussian_blur(&flat, 0.0), flat);
    }
}
