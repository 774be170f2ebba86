//! The real data sets of the study (`configs/test_suites.yaml`): the training set and the
//! test suites with their official per-set policies, every path relative to one data
//! folder (`--data DIR`). A suites file becomes ordinary `--set` overrides of a config, so
//! a run on the real data is checked and recorded like any other run.
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{ConfigError, CropPolicy, TestSet};

/// The training and validation data (`data.*` of the config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainData {
    /// Folder holding `train_split/` and `val_split/`, relative to the data folder.
    pub dataroot: PathBuf,
    #[serde(default = "train")]
    pub train_split: String,
    #[serde(default = "val")]
    pub val_split: String,
    /// Class folders to train on (empty: all).
    #[serde(default)]
    pub classes: Vec<String>,
}

fn train() -> String {
    "train".into()
}
fn val() -> String {
    "val".into()
}

/// One test suite: a [`TestSet`] plus the generator folders it must hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suite {
    pub name: String,
    /// Relative to the data folder.
    pub dataroot: PathBuf,
    #[serde(default = "super::yes")]
    pub resize: bool,
    #[serde(default)]
    pub crop: CropPolicy,
    #[serde(default)]
    pub seen: bool,
    #[serde(default)]
    pub seen_generators: Vec<String>,
    /// Generator folders that must exist under `dataroot` (others found there are tested
    /// too); empty: any, as long as the suite holds images.
    #[serde(default)]
    pub generators: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suites {
    pub train: TrainData,
    pub sets: Vec<Suite>,
}

impl Suites {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let error = |message: String| ConfigError::Parse {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| error(format!("cannot read the test-suites file: {e}")))?;
        let suites: Suites = serde_saphyr::from_str(&text).map_err(|e| error(e.to_string()))?;
        if suites.sets.is_empty() {
            return Err(error(
                "`sets` is empty: name at least one test suite".into(),
            ));
        }
        Ok(suites)
    }

    /// The test sets with their paths under `data`.
    pub fn test_sets(&self, data: &Path) -> Vec<TestSet> {
        self.sets
            .iter()
            .map(|s| TestSet {
                name: s.name.clone(),
                dataroot: data.join(&s.dataroot),
                resize: s.resize,
                crop: s.crop,
                seen: s.seen,
                seen_generators: s.seen_generators.clone(),
            })
            .collect()
    }

    /// `--set` overrides that point a config at these data under `data`.
    pub fn overrides(&self, data: &Path) -> Vec<String> {
        let t = &self.train;
        let json = |v: serde_json::Value| v.to_string();
        let root = data.join(&t.dataroot).display().to_string();
        let sets = serde_json::to_value(self.test_sets(data)).expect("test sets serialise");
        vec![
            format!("data.dataroot={}", json(root.into())),
            format!("data.train_split={}", json(t.train_split.clone().into())),
            format!("data.val_split={}", json(t.val_split.clone().into())),
            format!("data.classes={}", json(serde_json::json!(t.classes))),
            format!("test.sets={}", json(sets)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn the_shipped_suites_become_a_valid_config_under_any_data_folder() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let suites = Suites::load(&root.join("configs/test_suites.yaml")).unwrap();
        let data = Path::new("/data/with space");
        let config = Config::load(
            &root.join("configs/attention_npr.yaml"),
            &suites.overrides(data),
        )
        .unwrap();
        assert_eq!(config.data.dataroot, data.join("ForenSynths_train_val"));
        assert_eq!(config.data.classes, ["car", "cat", "chair", "horse"]);
        assert_eq!(config.test.sets, suites.test_sets(data));
        let gangen = config
            .test
            .sets
            .iter()
            .find(|s| s.name == "GANGen-Detection")
            .unwrap();
        assert!(!gangen.resize, "GANGen-Detection is tested at full size");
        let forensynths = &config.test.sets[0];
        assert_eq!(
            (forensynths.resize, forensynths.seen_generators.as_slice()),
            (true, &["progan".to_string()][..])
        );
    }

    #[test]
    fn unknown_keys_and_empty_suites_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for (text, needle) in [
            ("train: {dataroot: x}\nsets: []\n", "empty"),
            (
                "train: {dataroot: x, clases: [a]}\nsets: [{name: a, dataroot: b}]\n",
                "clases",
            ),
            (
                "train: {dataroot: x}\nsets: [{name: a, dataroot: b, crop: square}]\n",
                "square",
            ),
        ] {
            let p = dir.path().join("s.yaml");
            std::fs::write(&p, text).unwrap();
            let err = Suites::load(&p).unwrap_err().to_string();
            assert!(err.contains(needle), "{text:?}: {err}");
        }
    }
}
