//! The ablation (the study plan's): model variants × seeds, each cell one run.
//!
//! A study file (`configs/ablation.yaml`) names a base config and each variant as `--set`
//! overrides of it, so a variant is a few lines and every cell is an ordinary `npr train`
//! run that a shell loop or a scheduler could also launch by hand. A plain config given to
//! `npr ablate` gets the four built-in variants: `baseline` (official single-scale NPR at
//! 0.5), and the multi-scale model with `equal` weights, `learned` input-independent
//! weights, or per-image `attention`.
pub mod dry_run;
pub mod sweep;

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::config::{Config, ConfigError};
use crate::usage;

/// The built-in variants, in table order (a plain config given to `npr ablate`).
pub const VARIANTS: [&str; 4] = ["baseline", "equal", "learned", "attention"];

/// Scales of the multi-scale variants when the base config has a single scale.
const DEFAULT_SCALES: &str = "[0.25, 0.5, 0.75, 1.0]";

/// Seeds when neither the study file nor `--seeds` names any.
pub const DEFAULT_SEEDS: [u64; 3] = [0, 1, 2];

/// One model variant: a name (a folder-name-safe word) and its `--set` overrides.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    pub name: String,
    #[serde(default)]
    pub set: Vec<String>,
}

/// A study: the base config every cell starts from, its variants and seeds.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Study {
    /// The base config (in a study file: relative to the file).
    pub base: PathBuf,
    #[serde(default)]
    pub seeds: Vec<u64>,
    pub variants: Vec<Variant>,
}

impl Study {
    /// A study file (top-level `variants:`), or a plain config with the built-in variants.
    pub fn load(path: &Path) -> Result<Study> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let tree: serde_json::Value = serde_saphyr::from_str(&text).unwrap_or_default();
        if tree.get("variants").is_none() {
            let base = Config::load(path, &[])?;
            return Ok(Study::builtin(path, &base));
        }
        let mut study: Study =
            serde_path_to_error::deserialize(&tree).map_err(|e| ConfigError::Parse {
                path: format!("{} ({})", path.display(), e.path()),
                message: e.into_inner().to_string(),
            })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        study.base = dir.join(&study.base);
        study
            .check()
            .with_context(|| format!("study file {}", path.display()))?;
        Ok(study)
    }

    /// The built-in variants on `base` (the multi-scale ones keep its scales when it has
    /// several).
    pub fn builtin(path: &Path, base: &Config) -> Study {
        let scales = if base.model.scales.len() > 1 {
            format!("{:?}", base.model.scales)
        } else {
            DEFAULT_SCALES.to_string()
        };
        let variant = |name: &str, fusion: &str, scales: &str| Variant {
            name: name.into(),
            set: vec![
                format!("model.fusion={fusion}"),
                format!("model.scales={scales}"),
            ],
        };
        Study {
            base: path.to_path_buf(),
            seeds: Vec::new(),
            variants: std::iter::once(variant("baseline", "single", "[0.5]"))
                .chain(VARIANTS[1..].iter().map(|v| variant(v, v, &scales)))
                .collect(),
        }
    }

    /// Variant names are unique words that make folder names.
    fn check(&self) -> Result<()> {
        if self.variants.is_empty() {
            return Err(usage!("variants: at least one variant is required"));
        }
        for (i, v) in self.variants.iter().enumerate() {
            let word = !v.name.is_empty()
                && v.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !word {
                return Err(usage!(
                    "variants[{i}].name: {:?} must be letters, digits, `_` or `-` (it names run folders)",
                    v.name
                ));
            }
            if self.variants[..i].iter().any(|w| w.name == v.name) {
                return Err(usage!("variants[{i}].name: {:?} appears twice", v.name));
            }
        }
        Ok(())
    }

    /// Every cell, variant-major, for the chosen variants (all when empty) and seeds (the
    /// study's, else [`DEFAULT_SEEDS`], when empty).
    pub fn cells(&self, variants: &[String], seeds: &[u64]) -> Result<Vec<Cell>> {
        let names: Vec<&str> = self.variants.iter().map(|v| v.name.as_str()).collect();
        for v in variants {
            if !names.contains(&v.as_str()) {
                return Err(usage!(
                    "--variants: unknown variant {v:?}; expected some of {}",
                    names.join(", ")
                ));
            }
        }
        let seeds: Vec<u64> = match (seeds.is_empty(), self.seeds.is_empty()) {
            (false, _) => seeds.to_vec(),
            (true, false) => self.seeds.clone(),
            (true, true) => DEFAULT_SEEDS.to_vec(),
        };
        Ok(self
            .variants
            .iter()
            .filter(|v| variants.is_empty() || variants.contains(&v.name))
            .flat_map(|v| {
                seeds.iter().map(move |&seed| Cell {
                    variant: v.clone(),
                    seed,
                })
            })
            .collect())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    pub variant: Variant,
    pub seed: u64,
}

impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_seed{}", self.variant.name, self.seed)
    }
}

impl Cell {
    /// The `--set` overrides that turn the base config into this cell's config.
    pub fn overrides(&self, base: &Config) -> Vec<String> {
        let mut sets = self.variant.set.clone();
        sets.push(format!("name={}_{self}", base.name));
        sets.push(format!("train.seed={}", self.seed));
        sets
    }
}

/// Parses `--shard i/n` (0 ≤ i < n).
pub fn parse_shard(spec: &str) -> Result<(usize, usize)> {
    let number = |s: &str| s.trim().parse::<usize>().ok();
    let parsed = spec
        .split_once('/')
        .and_then(|(i, n)| Some((number(i)?, number(n)?)));
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

    fn builtin() -> Study {
        Study::builtin(Path::new("base.yaml"), &Config::default())
    }

    #[test]
    fn shards_partition_the_matrix() {
        let all = builtin().cells(&[], &[]).unwrap();
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
        let study = builtin();
        let base = Config::default();
        let cell = |variant: &str, seed| {
            let cells = study.cells(&[variant.to_string()], &[seed]).unwrap();
            Config::from_yaml("", &cells[0].overrides(&base)).unwrap()
        };
        let c = cell("baseline", 2);
        assert_eq!(
            (c.model.fusion, c.model.scales.clone(), c.train.seed),
            (crate::config::Fusion::Single, vec![0.5], 2)
        );
        let c = cell("learned", 1);
        assert_eq!(c.model.scales, vec![0.25, 0.5, 0.75, 1.0]);
        assert!(study.cells(&["attn".into()], &[0]).is_err());
    }

    #[test]
    fn the_shipped_study_file_names_every_variant_and_each_cell_config_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/ablation.yaml");
        let study = Study::load(&path).unwrap();
        let names: Vec<&str> = study.variants.iter().map(|v| v.name.as_str()).collect();
        for want in [
            "baseline",
            "equal",
            "learned",
            "attention",
            "attention_no_identity",
            "attention_abs",
        ] {
            assert!(names.contains(&want), "{want} missing from {names:?}");
        }
        let base = Config::load(&study.base, &[]).unwrap();
        for cell in study.cells(&[], &[]).unwrap() {
            Config::load(&study.base, &cell.overrides(&base))
                .unwrap_or_else(|e| panic!("{cell}: {e}"));
        }
    }

    #[test]
    fn the_multiscale_study_file_gives_valid_cell_configs() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/ablation_multiscale.yaml");
        let study = Study::load(&path).unwrap();
        let base = Config::load(&study.base, &[]).unwrap();
        assert_eq!(study.cells(&[], &[]).unwrap().len(), 15 * 3);
        for cell in study.cells(&[], &[0]).unwrap() {
            let config = Config::load(&study.base, &cell.overrides(&base))
                .unwrap_or_else(|e| panic!("{cell}: {e}"));
            // The positive controls, and only they, are taught the true scale.
            let taught = cell.variant.name.contains("_scale_supervised");
            assert_eq!(config.train.scale_supervision.is_some(), taught, "{cell}");
        }
    }

    #[test]
    fn study_files_with_bad_variants_are_refused_by_name() {
        let dir = std::env::temp_dir().join(format!("npr_study_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cases = [
            ("base: x.yaml\nvariants: []\n", "at least one variant"),
            (
                "base: x.yaml\nvariants: [{name: a b}]\n",
                "variants[0].name",
            ),
            (
                "base: x.yaml\nvariants: [{name: a}, {name: a}]\n",
                "appears twice",
            ),
            ("base: x.yaml\nvariants: [{name: a, sett: []}]\n", "sett"),
        ];
        for (text, want) in cases {
            let path = dir.join("study.yaml");
            std::fs::write(&path, text).unwrap();
            let err = format!("{:#}", Study::load(&path).unwrap_err());
            assert!(err.contains(want), "{text:?}: {err}");
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
