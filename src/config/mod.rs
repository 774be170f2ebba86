//! One YAML file describes one run (ARCHITECTURE.md, Config).
//!
//! The flow is one way (schema and defaults here, `--set` in `overrides.rs`, ranges in
//! `validate.rs`): YAML text → generic tree → `--set` overrides → typed [`Config`]
//! (unknown keys and wrong types are errors naming the key path) → [`Config::validate`]
//! (every out-of-range value at once, each with its key and the allowed range). The rest
//! of the code takes the validated `Config` by reference.
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::data::{BlurAug, JpegAug};
pub use overrides::apply_override;
pub use suites::Suites;

mod overrides;
pub mod suites;
mod validate;

/// A config problem: bad YAML, unknown key, wrong type or out-of-range value.
/// Commands map it to exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("invalid configuration:\n  {}", .0.join("\n  "))]
    Invalid(Vec<String>),
    #[error("--set {0:?}: expected KEY.PATH=VALUE, e.g. train.epochs=5")]
    BadOverride(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub name: String,
    pub model: ModelConfig,
    pub data: DataConfig,
    pub train: TrainConfig,
    pub test: TestConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backbone {
    /// The official NPR network: ResNet-50 stem, layer1 and layer2 only, fc1 512→1.
    NprResnet50,
    Resnet50,
    Resnet34,
    Resnet18,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fusion {
    /// SENet-style per-image weights for every branch and channel.
    Attention,
    /// Fixed 1/k per branch.
    Equal,
    /// One learnable, input-independent weight per branch and channel.
    Learned,
    /// One scale, no fusion: the NPR baseline with `scales: [0.5]`.
    Single,
}

/// How the attention squeezes each residual channel to one number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Squeeze {
    /// Global average pooling (the study plan's choice; the mean of a residual is near zero).
    Avg,
    /// Mean absolute value: the residual's energy.
    AbsAvg,
    /// Root mean square.
    Rms,
}

/// How the attention turns its scores into branch weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gate {
    /// Independent sigmoid per branch and channel (SENet; the study plan's design).
    Sigmoid,
    /// Softmax over the branches per channel, with `temperature`: the scales compete, so
    /// raising one branch's weight lowers the others'.
    Softmax,
}

/// What the branches are scaled by before fusion (and before the attention sees them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BranchNorm {
    /// As computed (the study plan's design): the identity branch is several times larger
    /// than the residuals.
    None,
    /// Each branch of each image and channel divided by its mean |·|, so every branch
    /// enters the sum with comparable energy and the weights alone set the mix.
    Energy,
}

/// How the weighted branches reach the backbone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Combine {
    /// `Σ_k w_k · branch_k`: one 3-channel map (the study plan's design); the backbone
    /// cannot tell which branch a pattern came from.
    Sum,
    /// `[w_1 · branch_1, …, w_k · branch_k]`: 3k channels into the first convolution, so
    /// every scale keeps its own filters and the weights gate whole inputs.
    Concat,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AttentionConfig {
    pub reduction: usize,
    pub squeeze: Squeeze,
    pub bias_init: f64,
    pub gate: Gate,
    /// Softmax temperature (`gate: softmax`): below 1 sharper, above 1 flatter.
    pub temperature: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    pub backbone: Backbone,
    /// NPR scales in (0, 1]; 1.0 is the identity branch.
    pub scales: Vec<f64>,
    pub fusion: Fusion,
    pub attention: AttentionConfig,
    /// Per-branch normalisation before fusion (multi-branch fusions only).
    pub branch_norm: BranchNorm,
    /// Weighted sum (3 channels) or weighted concatenation (3k channels) into the backbone.
    pub combine: Combine,
    /// Multiplies the fused residual; the official NPR uses 2/3.
    pub npr_gain: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    pub dataroot: PathBuf,
    pub train_split: String,
    /// Validation folder under `dataroot`; ignored when `val_fraction` is set.
    pub val_split: Option<String>,
    /// Hold out this fraction of the training set (stratified, by seed) instead.
    pub val_fraction: Option<f64>,
    /// Class folders to use (empty: all).
    pub classes: Vec<String>,
    pub load_size: u32,
    pub crop_size: u32,
    pub flip: bool,
    pub blur: BlurAug,
    pub jpeg: JpegAug,
    pub workers: usize,
    /// Oversample the minority label so that batches are balanced.
    pub balance: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerName {
    Adam,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimizerConfig {
    pub name: OptimizerName,
    pub lr: f64,
    pub betas: [f64; 2],
    pub eps: f64,
    pub weight_decay: f64,
    /// Learning-rate multiplier for the fusion parameters (attention or learned weights).
    /// 1.0 is both recipes' value (one learning rate for every parameter); larger values
    /// help the attention weights move (measured in DATASET_DETAILS.md).
    pub fusion_lr_mult: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LrDecay {
    pub factor: f64,
    pub every_epochs: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Monitor {
    ValLoss,
    ValAcc,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EarlyStopping {
    /// Epochs without improvement before stopping; 0 disables early stopping.
    pub patience: usize,
    pub monitor: Monitor,
}

/// The training recipe: which published protocol a run follows (README, "Recipes").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Recipe {
    /// The official NPR `train.py`: the learning rate decays at the end of epochs
    /// `every`, `2·every`, … (0-based), no early stopping, the `last` weights are evaluated.
    Official,
    /// The study plan: the same decay, early stopping on validation (`early_stopping`,
    /// patience 10 on validation loss by default), the `best` weights are evaluated.
    Proposal,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub recipe: Recipe,
    pub epochs: usize,
    pub batch_size: usize,
    pub optimizer: OptimizerConfig,
    pub lr_decay: LrDecay,
    /// Only with `recipe: proposal` (the official recipe has none); absent = patience 10 on
    /// validation loss.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub early_stopping: Option<EarlyStopping>,
    /// On CUDA: deterministic cuDNN/cuBLAS algorithms and no cuDNN benchmarking, so that a
    /// seed gives the same weights on the same GPU (slower convolutions). CPU runs are
    /// deterministic anyway.
    pub deterministic: bool,
    /// bf16 autocast on CUDA (ignored on CPU, with a note in the log).
    pub amp: bool,
    /// Channels-last layout for the backbone (fastest with cuDNN and bf16 on CUDA).
    pub channels_last: bool,
    pub seed: u64,
    /// Log a line (and a CSV row) every this many steps.
    pub log_every: usize,
    /// An auxiliary loss that teaches the attention the true scale of each fake (the
    /// positive control of the scale-selection experiment, README_ATTENTION.md); absent =
    /// off, as in every variant of the study plan.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale_supervision: Option<ScaleSupervision>,
}

/// `train.scale_supervision`: `weight · CE(branch weights, true branch)` added to the loss.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaleSupervision {
    /// λ, the auxiliary loss's weight against the detection loss.
    pub weight: f64,
    /// Where the true scale comes from: `true_scale`, each fake family's NPR scale in the
    /// training data's `synth.json` (the only source there is).
    pub target: ScaleTarget,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScaleTarget {
    TrueScale,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum CropPolicy {
    Center,
    #[default]
    None,
    Tile,
}

/// One test set and its preprocessing protocol (ARCHITECTURE.md, Data).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestSet {
    pub name: String,
    pub dataroot: PathBuf,
    /// Resize to `data.load_size` (ForenSynths protocol) or feed full size.
    #[serde(default = "yes")]
    pub resize: bool,
    #[serde(default)]
    pub crop: CropPolicy,
    /// Generators of this set seen in training (for the generalization gap).
    #[serde(default)]
    pub seen: bool,
    /// Per-generator seen flags, overriding `seen` (e.g. [progan]).
    #[serde(default)]
    pub seen_generators: Vec<String>,
}

impl CropPolicy {
    /// The data layer's crop; `center` and `tile` use `crop_size`.
    pub fn to_crop(self, crop_size: u32) -> crate::data::Crop {
        match self {
            CropPolicy::Center => crate::data::Crop::Center(crop_size),
            CropPolicy::None => crate::data::Crop::None,
            CropPolicy::Tile => crate::data::Crop::Tile(crop_size),
        }
    }
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TestConfig {
    pub sets: Vec<TestSet>,
    pub batch_size: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            name: "attention_npr".into(),
            model: ModelConfig::default(),
            data: DataConfig::default(),
            train: TrainConfig::default(),
            test: TestConfig::default(),
        }
    }
}

impl Default for AttentionConfig {
    fn default() -> Self {
        AttentionConfig {
            reduction: 2,
            squeeze: Squeeze::Avg,
            bias_init: 0.25,
            gate: Gate::Sigmoid,
            temperature: 1.0,
        }
    }
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            backbone: Backbone::NprResnet50,
            scales: vec![0.25, 0.5, 0.75, 1.0],
            fusion: Fusion::Attention,
            attention: AttentionConfig::default(),
            branch_norm: BranchNorm::None,
            combine: Combine::Sum,
            npr_gain: crate::model::npr::OFFICIAL_NPR_GAIN,
        }
    }
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            dataroot: "datasets/ForenSynths_train_val".into(),
            train_split: "train".into(),
            val_split: Some("val".into()),
            val_fraction: None,
            classes: Vec::new(),
            load_size: 256,
            crop_size: 224,
            flip: true,
            blur: BlurAug::default(),
            jpeg: JpegAug::default(),
            workers: 8,
            balance: false,
        }
    }
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig {
            name: OptimizerName::Adam,
            lr: 2.0e-4,
            betas: [0.9, 0.999],
            eps: 1e-8,
            weight_decay: 0.0,
            fusion_lr_mult: 1.0,
        }
    }
}

impl Default for LrDecay {
    fn default() -> Self {
        LrDecay {
            factor: 0.9,
            every_epochs: 10,
        }
    }
}

impl Default for EarlyStopping {
    fn default() -> Self {
        EarlyStopping {
            patience: 10,
            monitor: Monitor::ValLoss,
        }
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            recipe: Recipe::Proposal,
            epochs: 50,
            batch_size: 32,
            optimizer: OptimizerConfig::default(),
            lr_decay: LrDecay::default(),
            early_stopping: None,
            deterministic: false,
            amp: false,
            channels_last: false,
            seed: 0,
            log_every: 50,
            scale_supervision: None,
        }
    }
}

impl TrainConfig {
    /// The early stopping this run uses: none under the official recipe.
    pub fn early_stopping(&self) -> Option<EarlyStopping> {
        match self.recipe {
            Recipe::Official => None,
            Recipe::Proposal => Some(self.early_stopping.clone().unwrap_or_default()),
        }
    }

    /// Epochs without improvement before stopping; 0 = never.
    pub fn patience(&self) -> usize {
        self.early_stopping().map_or(0, |e| e.patience)
    }

    /// Whether `best` (chosen on validation) rather than `last` is the run's result.
    pub fn evaluates_best(&self) -> bool {
        self.recipe == Recipe::Proposal
    }
}

impl Default for TestConfig {
    fn default() -> Self {
        TestConfig {
            sets: Vec::new(),
            batch_size: 64,
        }
    }
}

impl Config {
    /// Reads a YAML file, applies `--set` overrides and validates.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Parse {
            path: path.display().to_string(),
            message: format!("cannot read the config file: {e}"),
        })?;
        Self::from_yaml(&text, overrides).map_err(|e| match e {
            ConfigError::Parse { path: key, message } => ConfigError::Parse {
                path: format!("{} ({key})", path.display()),
                message,
            },
            other => other,
        })
    }

    /// Parses YAML text (see [`Config::load`]).
    pub fn from_yaml(text: &str, overrides: &[String]) -> Result<Config, ConfigError> {
        let mut tree: Value = if text.trim().is_empty() {
            Value::Object(Default::default())
        } else {
            serde_saphyr::from_str(text).map_err(|e| ConfigError::Parse {
                path: "yaml".into(),
                message: e.to_string(),
            })?
        };
        for item in overrides {
            apply_override(&mut tree, item)?;
        }
        let config: Config = serde_path_to_error::deserialize(&tree).map_err(|e| {
            let key = e.path().to_string();
            ConfigError::Parse {
                path: if key == "." { "config".into() } else { key },
                message: e.into_inner().to_string(),
            }
        })?;
        config.validate()?;
        Ok(config)
    }

    /// The resolved config as YAML (written into every run folder and checkpoint).
    pub fn to_yaml(&self) -> String {
        serde_saphyr::to_string(self).expect("a Config always serialises")
    }
}

/// Writes a unit variant as the config spells it, its serde name (`attention`,
/// `npr_resnet50`, …).
fn config_spelling(value: &impl Serialize, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match serde_json::to_value(value) {
        Ok(Value::String(name)) => f.write_str(&name),
        _ => Err(fmt::Error),
    }
}

impl fmt::Display for Fusion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        config_spelling(self, f)
    }
}

impl fmt::Display for Backbone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        config_spelling(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_study_plan_recipe_and_valid() {
        let c = Config::from_yaml("", &[]).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.train.optimizer.lr, 2.0e-4);
        assert_eq!(c.model.scales, vec![0.25, 0.5, 0.75, 1.0]);
        assert_eq!((c.train.recipe, c.train.patience()), (Recipe::Proposal, 10));
        assert!(c.train.evaluates_best());
        let official = Config::from_yaml("train: {recipe: official}", &[]).unwrap();
        assert_eq!(official.train.patience(), 0);
        assert!(!official.train.evaluates_best());
        let err = Config::from_yaml(
            "train: {recipe: official, early_stopping: {patience: 3}}",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("train.early_stopping"), "{err}");
    }

    #[test]
    fn shipped_configs_parse() {
        for f in [
            "configs/attention_npr.yaml",
            "configs/baseline_npr.yaml",
            "configs/quick.yaml",
            "configs/multiscale_quick.yaml",
        ] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(f);
            if path.exists() {
                Config::load(&path, &[]).unwrap_or_else(|e| panic!("{f}: {e}"));
            }
        }
    }

    /// Each bad config names the offending key.
    #[test]
    fn bad_configs_name_the_key() {
        let cases: &[(&str, &[&str], &str)] = &[
            ("model: {scales: [0.5, 1.5]}", &[], "model.scales[1]"),
            ("model: {fusion: single}", &[], "model.fusion"),
            ("model: {backbone: vgg16}", &[], "model.backbone"),
            ("model: {fusion: attn}", &[], "model.fusion"),
            ("train: {optimizer: {lr: -0.1}}", &[], "train.optimizer.lr"),
            ("data: {crop_size: 300}", &[], "data.crop_size"),
            ("data: {load_sise: 300}", &[], "load_sise"),
            ("train: {epochs: many}", &[], "train.epochs"),
            (
                "",
                &["model.attention.squeeze=max"],
                "model.attention.squeeze",
            ),
            ("", &["train.batch_size=0"], "train.batch_size"),
            ("", &["model.nope=1"], "nope"),
            ("", &["train.epochs"], "train.epochs"),
        ];
        for (yaml, sets, key) in cases {
            let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
            let err = Config::from_yaml(yaml, &sets).expect_err(yaml).to_string();
            assert!(
                err.contains(key),
                "{yaml:?} {sets:?}: error {err:?} does not name {key}"
            );
        }
    }

    #[test]
    fn names_print_as_the_config_spells_them() {
        for f in [
            Fusion::Attention,
            Fusion::Equal,
            Fusion::Learned,
            Fusion::Single,
        ] {
            assert_eq!(serde_json::to_value(f).unwrap(), f.to_string());
        }
        for b in [
            Backbone::NprResnet50,
            Backbone::Resnet50,
            Backbone::Resnet34,
            Backbone::Resnet18,
        ] {
            assert_eq!(serde_json::to_value(b).unwrap(), b.to_string());
        }
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let err = Config::from_yaml(
            "model: {scales: [2.0]}\ntrain: {epochs: 0}\ndata: {jpeg: {quality: [95, 90]}, blur: {prob: 2}}",
            &[],
        )
        .unwrap_err();
        let text = err.to_string();
        for key in [
            "model.scales[0]",
            "train.epochs",
            "data.jpeg.quality",
            "data.blur.prob",
        ] {
            assert!(text.contains(key), "{key} missing from {text}");
        }
    }

    #[test]
    fn overrides_apply_and_round_trip() {
        let sets = [
            "model.fusion=single".to_string(),
            "model.scales=[0.5]".to_string(),
            "train.epochs=3".to_string(),
            "data.val_fraction=0.2".to_string(),
        ];
        let c = Config::from_yaml("name: x", &sets).unwrap();
        assert_eq!(c.model.fusion, Fusion::Single);
        assert_eq!(c.model.scales, vec![0.5]);
        assert_eq!(c.train.epochs, 3);
        assert_eq!(c.data.val_fraction, Some(0.2));
        let again = Config::from_yaml(&c.to_yaml(), &[]).unwrap();
        assert_eq!(again, c);
    }
}
