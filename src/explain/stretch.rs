//! The contrast stretch of residual maps. A residual is signed and mostly tiny (a few grey
//! levels), so it is shown around mid-grey: `level = 127.5 + 127.5 · clamp(v / L, −1, 1)`.
//!
//! `L` is one number per image: the [`STRETCH_PERCENTILE`]-th percentile of |v| over all
//! residual maps of that image (every non-identity scale, every channel). Sharing `L`
//! keeps the scales comparable — a scale whose residual is near zero (the trace a
//! generator left there) stays grey instead of being blown up to the same contrast as
//! the others. A percentile rather than the maximum, so that a few strong edges do not
//! flatten everything else.

/// Percentile of |v| that maps to black/white (values beyond it clip).
pub const STRETCH_PERCENTILE: f64 = 99.0;

/// The stretch limit `L` of `values`: the `percentile`-th percentile of |v| (nearest
/// rank). 1.0 when every value is 0 (or there are none), so that a map of zeros is
/// mid-grey rather than a division by zero; non-finite values are ignored.
pub fn symmetric_limit(values: &[f32], percentile: f64) -> f32 {
    let mut mags: Vec<f32> = values
        .iter()
        .filter(|v| v.is_finite())
        .map(|v| v.abs())
        .collect();
    if mags.is_empty() {
        return 1.0;
    }
    // Nearest rank: the smallest value with at least p % of the values at or below it.
    let rank = ((percentile / 100.0) * mags.len() as f64).ceil() as usize;
    let k = rank.clamp(1, mags.len()) - 1;
    let (_, kth, _) = mags.select_nth_unstable_by(k, |a, b| a.total_cmp(b));
    if *kth > 0.0 {
        *kth
    } else {
        1.0
    }
}

/// A signed value as a grey level around 127.5 under the limit `limit` (> 0).
pub fn to_level(v: f32, limit: f32) -> u8 {
    let t = if v.is_finite() {
        (v / limit).clamp(-1.0, 1.0)
    } else {
        0.0
    };
    (127.5 + 127.5 * t).round().clamp(0.0, 255.0) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        // (values, percentile, want)
        let hundred: Vec<f32> = (1..=100).map(|i| i as f32).collect();
        let negative: Vec<f32> = hundred.iter().map(|v| -v).collect();
        let cases: [(&[f32], f64, f32); 7] = [
            (&hundred, 99.0, 99.0),
            (&negative, 99.0, 99.0), // symmetric: |v|
            (&hundred, 100.0, 100.0),
            (&hundred, 50.0, 50.0),
            (&[0.0, 0.0], 99.0, 1.0), // all zero: mid-grey, no division by zero
            (&[], 99.0, 1.0),
            (&[f32::NAN, 2.0, -4.0], 100.0, 4.0),
        ];
        for (values, p, want) in cases {
            assert_eq!(symmetric_limit(values, p), want, "{values:?} at {p}");
        }
    }

    #[test]
    fn levels() {
        // (value, limit, level)
        for (v, l, want) in [
            (0.0, 1.0, 128), // 127.5 rounds up
            (1.0, 1.0, 255),
            (-1.0, 1.0, 0),
            (5.0, 1.0, 255), // clipped
            (-0.5, 2.0, 96), // 127.5 − 31.875
            (f32::NAN, 1.0, 128),
        ] {
            assert_eq!(to_level(v, l), want, "{v} / {l}");
        }
    }
}
