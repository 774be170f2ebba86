//! The ablation matrix (the seed's study): model variants × seeds, each cell one run.
//!
//! Variants: `baseline` (official single-scale NPR at 0.5), and the multi-scale model with
//! `equal` weights, `learned` input-independent weights, or per-image `attention`. A cell is
//! a set of `--set` overrides on the base config, so it is an ordinary `npr train` run that
//! a shell loop or a scheduler could also launch by hand.
use std::fmt;

use anyhow::Result;

use crate::config::Config;
use crate::usage;

/// The study's model variants, in table order.
pub const VARIANTS: [&str; 4] = ["baseline", "equal", "learned", "attention"];

/// Scales of the multi-scale variants when the base config has a single scale.
const DEFAULT_SCALES: &str = "[0.25, 0.5, 0.75, 1.0]";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    pub variant: String,
    pub seed: u64,
}

impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_seed{}", self.variant, self.seed)
    }
}

impl Cell {
    /// The `--set` overrides that turn the base config into this cell's config.
    pub fn overrides(&self, base: &Config) -> Vec<String> {
        let scales = if base.model.scales.len() > 1 {
            format!("{:?}", base.model.scales)
        } else {
            DEFAULT_SCALES.to_string()
        };
        let (fusion, scales) = match self.variant.as_str() {
            "baseline" => ("single", "[0.5]".to_string()),
            other => (other, scales),
        };
        vec![
            format!("name={}_{self}", base.name),
            format!("model.fusion={fusion}"),
            format!("model.scales={scales}"),
            format!("train.seed={}", self.seed),
        ]
    }
}

/// Every cell, variant-major, for the chosen variants and seeds.
pub fn cells(variants: &[String], seeds: &[u64]) -> Result<Vec<Cell>> {
    for v in variants {
        if !VARIANTS.contains(&v.as_str()) {
            return Err(usage!(
                "--variants: unknown variant {v:?}; expected some of {}",
                VARIANTS.join(", ")
            ));
        }
    }
    if variants.is_empty() || seeds.is_empty() {
        return Err(usage!(
            "the ablation needs at least one variant and one seed"
        ));
    }
    Ok(variants
        .iter()
        .flat_map(|v| {
            seeds.iter().map(move |&seed| Cell {
                variant: v.clone(),
                seed,
            })
        })
        .collect())
}

/// Parses `--shard i/n` (0 ≤ i < n).
pub fn parse_shard(spec: &str) -> Result<(usize, usize)> {
    let parsed = spec.split_once('/').and_then(|(i, n)| {
        Some((
            i.trim().parse::<usize>().ok()?,
            n.trim().parse::<usize>().ok()?,
        ))
    });
    match parsed {
        Some((i, n)) if n > 0 && i < n => Ok((i, n)),
        _ => Err(usage!(
            "--shard {spec:?}: expected i/n with 0 ≤ i < n, e.g. 0/4"
        )),
    }
}

/// The cells of shard `i` of `n`: every n-th cell starting at i, so shards stay balanced
/// across variants.
pub fn shard(cells: Vec<Cell>, i: usize, n: usize) -> Vec<Cell> {
    cells
        .into_iter()
        .enumerate()
        .filter(|(k, _)| k % n == i)
        .map(|(_, c)| c)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse() {
        let cases = [
            ("0/4", Some((0, 4))),
            ("3/4", Some((3, 4))),
            ("4/4", None),
            ("1/0", None),
            ("a/2", None),
            ("2", None),
        ];
        for (spec, want) in cases {
            assert_eq!(parse_shard(spec).ok(), want, "{spec}");
        }
    }

    #[test]
    fn shards_partition_the_matrix() {
        let all = cells(&VARIANTS.map(String::from), &[0, 1, 2]).unwrap();
        assert_eq!(all.len(), 12);
        let mut seen: Vec<String> = (0..5)
            .flat_map(|i| shard(all.clone(), i, 5))
            .map(|c| c.to_string())
            .collect();
        seen.sort();
        let mut want: Vec<String> = all.iter().map(|c| c.to_string()).collect();
        want.sort();
        assert_eq!(seen, want);
    }

    #[test]
    fn cells_override_fusion_scales_and_seed() {
        let base = Config::default();
        let sets = Cell {
            variant: "baseline".into(),
            seed: 2,
        }
        .overrides(&base);
        let c = Config::from_yaml("", &sets).unwrap();
        assert_eq!(
            (c.model.fusion, c.model.scales.clone(), c.train.seed),
            (crate::config::Fusion::Single, vec![0.5], 2)
        );
        let sets = Cell {
            variant: "learned".into(),
            seed: 1,
        }
        .overrides(&c);
        let c = Config::from_yaml("", &sets).unwrap();
        assert_eq!(c.model.scales, vec![0.25, 0.5, 0.75, 1.0]);
        assert!(cells(&["attn".into()], &[0]).is_err());
    }
}
