//! The training state in a checkpoint: what every save writes, and how `--resume` checks
//! that a checkpoint belongs to this run (same config, same data) and continues from it.
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use tch::{nn, Tensor};

use super::adam::Adam;
use super::run_dir::{self, RunDir, Start};
use super::trainer::{TrainOutcome, Trainer};
use crate::checkpoint::{self, model_tensors, read_safetensors, write_safetensors_atomic};
use crate::config::Config;
use crate::data::Splits;

/// Checkpoint metadata keys of the training and validation file lists' fingerprints.
const META_TRAIN_FILES: &str = "train_files";
const META_VAL_FILES: &str = "val_files";

/// Progress saved in every checkpoint's metadata.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Progress {
    /// Next epoch to run (0-based).
    pub epoch: usize,
    /// Batches of `epoch` already done (non-zero after a mid-epoch interrupt).
    pub batch_in_epoch: usize,
    pub step: i64,
    pub best: Option<f64>,
    pub bad_epochs: usize,
}

impl Progress {
    /// All epochs done, or stopped early by patience.
    fn finished(&self, config: &Config) -> bool {
        self.epoch >= config.train.epochs || self.stopped_early(config)
    }

    fn stopped_early(&self, config: &Config) -> bool {
        let patience = config.train.patience();
        patience > 0 && self.bad_epochs >= patience
    }

    fn from_meta(meta: &HashMap<String, String>) -> Result<Progress> {
        let get =
            |k: &str| (meta.get(k)).with_context(|| format!("checkpoint metadata has no {k:?}"));
        let best = get("best").ok().filter(|s| !s.is_empty());
        Ok(Progress {
            epoch: get("epoch")?.parse()?,
            batch_in_epoch: get("batch_in_epoch")?.parse()?,
            step: get("step")?.parse()?,
            best: best.map(|s| s.parse()).transpose()?,
            bad_epochs: get("bad_epochs")?.parse()?,
        })
    }
}

/// Header room per tensor (name, dtype, shape, offsets in the safetensors JSON header).
const HEADER_PER_TENSOR: u64 = 256;

impl Trainer<'_> {
    /// Weights, BN statistics, Adam moments, progress, the resolved config and the data's
    /// fingerprints, atomically.
    pub(super) fn save(&self, name: &str) -> Result<()> {
        let mut tensors = model_tensors(&self.vs);
        tensors.extend(self.adam.state_tensors());
        let (p, config, splits) = (&self.progress, &self.opts.config, self.splits);
        let meta: BTreeMap<String, String> = [
            ("epoch", p.epoch.to_string()),
            ("batch_in_epoch", p.batch_in_epoch.to_string()),
            ("step", p.step.to_string()),
            ("best", p.best.map(|b| format!("{b:e}")).unwrap_or_default()),
            ("bad_epochs", p.bad_epochs.to_string()),
            (checkpoint::META_CONFIG, config.to_yaml()),
            (checkpoint::META_FORMAT, checkpoint::FORMAT_VERSION.into()),
            ("seed", config.train.seed.to_string()),
            (META_TRAIN_FILES, splits.train_fingerprint.clone()),
            (META_VAL_FILES, splits.val_fingerprint.clone()),
        ]
        .map(|(k, v)| (k.to_string(), v))
        .into();
        write_safetensors_atomic(&self.run.file(name), &tensors, &meta)
    }

    /// About the bytes of one checkpoint, before any is written: what [`Trainer::save`]
    /// writes, from the tensors' sizes (no copy) plus the header and the config.
    pub(super) fn checkpoint_bytes(&self) -> u64 {
        let variables = self.vs.variables();
        let model: u64 = (variables.values())
            .map(|t| (t.numel() * t.kind().elt_size_in_bytes()) as u64)
            .sum();
        let tensors = 3 * variables.len() as u64; // weights and, at most, two moments each
        let meta = self.opts.config.to_yaml().len() as u64 + 4096;
        model + self.adam.state_bytes() + tensors * HEADER_PER_TENSOR + meta
    }

    /// Before the first epoch: room for the checkpoints the run keeps (`best` where the
    /// recipe evaluates it, and `last`) and the temporary copy written while one of them is
    /// replaced (src/atomic.rs). Checkpoints already there count as room: they are replaced.
    pub(super) fn check_room(&self) -> Result<()> {
        let size = self.checkpoint_bytes();
        let kept = 1 + u64::from(self.opts.config.train.evaluates_best());
        let held: u64 = [run_dir::BEST, run_dir::LAST]
            .iter()
            .filter_map(|name| std::fs::metadata(self.run.file(name)).ok())
            .map(|m| m.len())
            .sum();
        let needed = ((kept + 1) * size).saturating_sub(held);
        let what = format!(
            "{kept} checkpoint(s) of {} and the temporary copy written while one is replaced",
            crate::free_space::human_bytes(size)
        );
        crate::free_space::ensure_room(&self.run.path, needed, &what).context("nothing was trained")
    }
}

/// Where a run folder stands, for sweeps that must skip or continue finished cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// No `last.safetensors`: start from scratch.
    Absent,
    /// Stopped before its last epoch (interrupted): continue with `--resume`.
    Partial,
    /// All epochs done, or stopped early.
    Finished,
}

/// Reads the progress stored in `RUN/last.safetensors` against the run's config.
pub fn run_status(run: &Path, config: &Config) -> Result<RunStatus> {
    let last = run.join(run_dir::LAST);
    if !last.is_file() {
        return Ok(RunStatus::Absent);
    }
    let (_, meta) = read_safetensors(&last)?;
    let progress = Progress::from_meta(&meta)?;
    Ok(if progress.finished(config) {
        RunStatus::Finished
    } else {
        RunStatus::Partial
    })
}

/// Where a run starts.
pub(super) enum Resume {
    Fresh,
    From(Saved),
    /// Nothing to do: `--resume auto` on a finished run.
    Finished(TrainOutcome),
}

/// The state in `last.safetensors`: its tensors and progress.
pub(super) struct Saved {
    last: PathBuf,
    tensors: HashMap<String, Tensor>,
    progress: Progress,
}

impl Saved {
    /// Loads the weights, BN statistics and Adam moments; returns the position in the
    /// schedule.
    pub(super) fn restore(self, vs: &nn::VarStore, adam: &mut Adam) -> Result<Progress> {
        let report = checkpoint::load_into(vs, &self.tensors)?;
        if !report.missing.is_empty() {
            bail!("{}: {report}", self.last.display());
        }
        let p = self.progress;
        adam.load_state(&self.tensors, p.step)?;
        let (epoch, batch, step) = (p.epoch + 1, p.batch_in_epoch, p.step);
        eprintln!("resuming at epoch {epoch} (batch {batch}), step {step}");
        Ok(p)
    }
}

/// On `--resume`, the state to continue from, after checking that it is the same run and
/// that it has epochs left to run.
pub(super) fn resume_point(
    run: &RunDir,
    config: &Config,
    splits: &Splits,
    start: Start,
) -> Result<Resume> {
    if !run.resuming {
        return Ok(Resume::Fresh);
    }
    let last = run.file(run_dir::LAST);
    let (tensors, meta) = read_safetensors(&last)?;
    check_same_run(run, &meta, config, splits)?;
    let progress = Progress::from_meta(&meta)?;
    if progress.finished(config) && start == Start::Auto {
        // A requeued job whose run is complete: nothing to do, and that is success.
        eprintln!(
            "--resume auto: {} is finished ({} epochs); nothing to do",
            run.path.display(),
            progress.epoch
        );
        let mut outcome = TrainOutcome::at(&run.path, &progress);
        outcome.stopped_early = progress.stopped_early(config);
        return Ok(Resume::Finished(outcome));
    }
    if progress.epoch >= config.train.epochs {
        return Err(crate::usage!(
            "--resume: {} already ran all {} epochs; continue with --set train.epochs=N (N > {})",
            run.path.display(),
            progress.epoch,
            progress.epoch
        ));
    }
    if progress.stopped_early(config) {
        return Err(crate::usage!(
            "--resume: {} was stopped early ({} epochs without improvement, patience {}); nothing to continue",
            run.path.display(),
            progress.bad_epochs,
            config.train.patience()
        ));
    }
    Ok(Resume::From(Saved {
        last,
        tensors,
        progress,
    }))
}

/// The same config (only `train.epochs` may grow) and the same training and validation
/// files as the checkpoint was trained with.
fn check_same_run(
    run: &RunDir,
    meta: &HashMap<String, String>,
    config: &Config,
    splits: &Splits,
) -> Result<()> {
    let last = run.file(run_dir::LAST);
    let saved = meta.get(checkpoint::META_CONFIG).with_context(|| {
        format!(
            "--resume: {} has no embedded config, so it cannot be checked against this run; start a new run",
            last.display()
        )
    })?;
    let mut prev = Config::from_yaml(saved, &[])
        .with_context(|| format!("the config embedded in {}", last.display()))?;
    prev.train.epochs = config.train.epochs;
    if prev != *config {
        return Err(crate::usage!(
            "--resume: the config differs from the one {} was trained with (only train.epochs may change on resume); see {}",
            last.display(),
            run.file(run_dir::CONFIG).display()
        ));
    }
    for (key, now, what) in [
        (META_TRAIN_FILES, &splits.train_fingerprint, "training"),
        (META_VAL_FILES, &splits.val_fingerprint, "validation"),
    ] {
        let before = meta.get(key).map(String::as_str).unwrap_or("none recorded");
        if before != now {
            return Err(crate::usage!(
                "--resume: the {what} files differ from those {} was trained on (fingerprint then {before}, now {now}; `count:hash` of the file list); resume on the same data, or start a new run",
                last.display()
            ));
        }
    }
    Ok(())
}
