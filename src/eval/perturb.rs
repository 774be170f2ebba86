//! Robustness perturbations applied before the model: JPEG re-encoding, Gaussian blur,
//! resizing — one at a time, or swept over levels (`--sweep jpeg=75,80,90,100`).
use std::fmt;

use anyhow::Result;

use crate::usage;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Perturbation {
    pub jpeg_quality: Option<u8>,
    /// Gaussian blur σ; `Some(0.0)` (a sweep's `blur=0`) blurs nothing.
    pub blur_sigma: Option<f64>,
    /// Resize the image to N×N before the set's protocol.
    pub resize: Option<u32>,
}

impl Perturbation {
    /// From `--jpeg-quality` / `--blur-sigma`, with the same ranges as `--sweep`.
    pub fn from_flags(jpeg_quality: Option<u8>, blur_sigma: Option<f64>) -> Result<Self> {
        if let Some(q) = jpeg_quality.filter(|q| !(1..=100).contains(q)) {
            return Err(usage!("--jpeg-quality {q}: expected 1–100"));
        }
        if let Some(s) = blur_sigma.filter(|s| !(s.is_finite() && *s >= 0.0)) {
            return Err(usage!("--blur-sigma {s}: expected a finite σ ≥ 0"));
        }
        Ok(Perturbation {
            jpeg_quality,
            blur_sigma: blur_sigma.filter(|s| *s > 0.0),
            resize: None,
        })
    }
}

impl fmt::Display for Perturbation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(q) = self.jpeg_quality {
            parts.push(format!("jpeg={q}"));
        }
        if let Some(s) = self.blur_sigma {
            parts.push(format!("blur={s}"));
        }
        if let Some(n) = self.resize {
            parts.push(format!("resize={n}"));
        }
        if parts.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&parts.join(";"))
        }
    }
}

/// Parses `KIND=v1,v2,…` with KIND `jpeg` (quality 1–100), `blur` (σ ≥ 0; 0 = none) or
/// `resize` (side ≥ 8 px). Each value becomes one level.
pub fn parse_sweep(spec: &str) -> Result<Vec<Perturbation>> {
    let (kind, values) = spec.split_once('=').ok_or_else(|| {
        usage!("--sweep {spec:?}: expected KIND=v1,v2,… with KIND jpeg, blur or resize")
    })?;
    let mut levels = Vec::new();
    for v in values.split(',').map(str::trim).filter(|v| !v.is_empty()) {
        let bad = |what: &str| usage!("--sweep {spec:?}: {v:?} is not {what}");
        let level = match kind.trim() {
            "jpeg" => match v.parse::<u8>() {
                Ok(q) if (1..=100).contains(&q) => Perturbation {
                    jpeg_quality: Some(q),
                    ..Default::default()
                },
                _ => return Err(bad("a JPEG quality in 1–100")),
            },
            "blur" => match v.parse::<f64>() {
                // σ = 0 blurs nothing but keeps its name (`blur=0`), so a sweep's
                // unblurred level is never confused with the clean run's `none`.
                Ok(s) if s.is_finite() && s >= 0.0 => Perturbation {
                    blur_sigma: Some(s),
                    ..Default::default()
                },
                _ => return Err(bad("a blur σ ≥ 0")),
            },
            "resize" => match v.parse::<u32>() {
                Ok(n) if n >= 8 => Perturbation {
                    resize: Some(n),
                    ..Default::default()
                },
                _ => return Err(bad("a side of at least 8 pixels")),
            },
            other => {
                return Err(usage!(
                    "--sweep {spec:?}: unknown kind {other:?}; expected jpeg, blur or resize"
                ))
            }
        };
        levels.push(level);
    }
    if levels.is_empty() {
        return Err(usage!("--sweep {spec:?}: no values"));
    }
    Ok(levels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweeps_parse() {
        let cases: &[(&str, Option<Vec<&str>>)] = &[
            (
                "jpeg=75,80,90,100",
                Some(vec!["jpeg=75", "jpeg=80", "jpeg=90", "jpeg=100"]),
            ),
            ("blur=0,1.5", Some(vec!["blur=0", "blur=1.5"])),
            ("resize=128, 512", Some(vec!["resize=128", "resize=512"])),
            ("jpeg=0", None),
            ("jpeg=101", None),
            ("blur=-1", None),
            ("sharpen=1", None),
            ("jpeg", None),
            ("jpeg=", None),
        ];
        for (spec, want) in cases {
            let got = parse_sweep(spec)
                .ok()
                .map(|v| v.iter().map(|p| p.to_string()).collect::<Vec<_>>());
            let want = want
                .as_ref()
                .map(|w| w.iter().map(|s| s.to_string()).collect::<Vec<_>>());
            assert_eq!(got, want, "{spec}");
        }
    }
}
