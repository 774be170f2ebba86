//! Checkpoints: our own safetensors files (weights + optimizer state + metadata, written
//! atomically) and official NPR PyTorch checkpoints (`.pth`, flat or `{'model': …}` with
//! `module.` prefixes).
pub mod official;
pub mod safetensors_io;

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use tch::{nn, Device, Tensor};

use crate::config::Config;
use crate::model::Detector;

pub use official::{official_npr_config, read_official};
pub use safetensors_io::{read_safetensors, write_safetensors_atomic};

/// Metadata keys stored in our checkpoints.
pub const META_CONFIG: &str = "config_yaml";
pub const META_FORMAT: &str = "npr_format";
pub const FORMAT_VERSION: &str = "1";

/// What loading weights into a model found.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Model variables the file did not have.
    pub missing: Vec<String>,
    /// File tensors the model has no variable for (ignored).
    pub unexpected: Vec<String>,
}

impl LoadReport {
    pub fn is_clean(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty()
    }
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |v: &[String]| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.join(", ")
            }
        };
        let (missing, unexpected) = (list(&self.missing), list(&self.unexpected));
        write!(f, "missing keys: {missing}; unexpected keys: {unexpected}")
    }
}

/// Copies `tensors` into the variables of `vs` with the same names. Shape mismatches are
/// errors; BatchNorm's `num_batches_tracked` (PyTorch bookkeeping tch does not keep) is
/// ignored silently because it never affects the output.
pub fn load_into(vs: &nn::VarStore, tensors: &HashMap<String, Tensor>) -> Result<LoadReport> {
    let mut report = LoadReport::default();
    let vars = vs.variables();
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort();
    tch::no_grad(|| -> Result<()> {
        for name in names {
            let var = &vars[name];
            match tensors.get(name) {
                Some(src) => {
                    if src.size() != var.size() {
                        bail!(
                            "{name}: the checkpoint has shape {:?}, the model expects {:?}",
                            src.size(),
                            var.size()
                        );
                    }
                    let mut var = var.shallow_clone();
                    var.copy_(&src.to_kind(var.kind()).to_device(var.device()));
                }
                None => report.missing.push(name.clone()),
            }
        }
        Ok(())
    })?;
    report.unexpected = tensors
        .keys()
        .filter(|k| {
            !vars.contains_key(*k)
                && !k.ends_with("num_batches_tracked")
                && !k.starts_with("optim.")
        })
        .cloned()
        .collect();
    report.unexpected.sort();
    Ok(report)
}

/// The model's variables (on CPU), sorted by name, ready to be written.
pub fn model_tensors(vs: &nn::VarStore) -> Vec<(String, Tensor)> {
    let mut named: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(k, v)| (k, v.detach().to_device(Device::Cpu)))
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    named
}

/// A model ready for inference, with the config it was built from.
pub struct LoadedModel {
    pub vs: nn::VarStore,
    pub detector: Detector,
    pub config: Config,
    pub report: LoadReport,
}

/// The weights file a run folder stands for: what its recipe evaluates (`last.safetensors`
/// under the official recipe, `best.safetensors` under the study plan's). A file is itself.
pub fn resolve(path: &Path) -> Result<std::path::PathBuf> {
    use crate::train::run_dir;
    if !path.is_dir() {
        return Ok(path.to_path_buf());
    }
    let config_file = path.join(run_dir::CONFIG);
    if !config_file.is_file() {
        return Err(crate::usage!(
            "{} is a folder but not a run folder (no {}): pass a checkpoint file",
            path.display(),
            run_dir::CONFIG
        ));
    }
    let config = Config::load(&config_file, &[])?;
    let name = if config.train.evaluates_best() {
        run_dir::BEST
    } else {
        run_dir::LAST
    };
    Ok(path.join(name))
}

/// An official NPR PyTorch checkpoint (`.pth`, `.pt`, `.bin`, `.tar`): no config, no
/// training data list inside; anything else is ours (`.safetensors`, or a run folder).
pub fn is_official(path: &Path) -> bool {
    let ext = path.extension().and_then(|e| e.to_str());
    ext.is_some_and(|e| ["pth", "pt", "bin", "tar"].contains(&e.to_ascii_lowercase().as_str()))
}

/// Rebuilds the model of a checkpoint: ours (`.safetensors`, config inside; a run folder
/// stands for its recipe's weights, see [`resolve`]) or an official NPR `.pth` (the
/// single-scale baseline). Missing model weights are an error.
pub fn load_model(path: &Path, device: Device) -> Result<LoadedModel> {
    let path = &resolve(path)?;
    if !path.is_file() {
        return Err(crate::usage!(
            "checkpoint {} does not exist or is not a file",
            path.display()
        ));
    }
    let (tensors, config) = if is_official(path) {
        (read_official(path)?, official_npr_config())
    } else {
        let (tensors, meta) = read_safetensors(path)?;
        let yaml = meta.get(META_CONFIG).with_context(|| {
            format!(
                "{} has no embedded config: not a checkpoint written by `npr train`",
                path.display()
            )
        })?;
        let config = Config::from_yaml(yaml, &[])
            .with_context(|| format!("the config embedded in {}", path.display()))?;
        (tensors, config)
    };
    let vs = nn::VarStore::new(device);
    let mut detector = Detector::new(&vs.root(), &config.model);
    let report = load_into(&vs, &tensors)?;
    if !report.missing.is_empty() {
        return Err(crate::usage!(
            "{} does not fit the model ({}, {}): {report}",
            path.display(),
            config.model.backbone,
            config.model.fusion
        ));
    }
    if !report.unexpected.is_empty() {
        eprintln!(
            "note: {} holds tensors the model does not use ({report}); they are ignored",
            path.display()
        );
    }
    // Loaded models only score images: fold and re-lay them out for speed.
    detector.prepare_for_inference(&vs);
    Ok(LoadedModel {
        vs,
        detector,
        config,
        report,
    })
}
