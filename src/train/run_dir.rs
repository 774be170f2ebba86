//! The run folder (ARCHITECTURE.md, Outputs): everything needed to understand and reuse a run.
//!
//! ```text
//! RUN/config.yaml        the resolved config
//! RUN/meta.json          seed, git revision, device, library versions, dataset summary
//! RUN/train_log.csv      one row per log interval and per epoch
//! RUN/skipped.tsv        files the loader skipped, with the reason
//! RUN/best.safetensors   lowest validation loss (weights + optimizer + state + config)
//! RUN/last.safetensors   the latest state, for --resume
//! RUN/.npr.lock          while a process holds the folder: who (see `crate::run_lock`)
//! ```
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tch::{nn, Device};

use crate::usage;

pub const CONFIG: &str = "config.yaml";
pub const META: &str = "meta.json";
pub const LOG: &str = "train_log.csv";
pub const SKIPPED: &str = "skipped.tsv";
pub const BEST: &str = "best.safetensors";
pub const LAST: &str = "last.safetensors";

/// How `npr train` treats its run folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// A new run; an existing run folder is refused.
    New,
    /// A new run replacing an existing run folder (`--overwrite`).
    Overwrite,
    /// Continue from `last.safetensors`, which must exist (`--resume`).
    Resume,
    /// Continue when `last.safetensors` exists, else start anew, replacing a run folder that
    /// died before its first checkpoint (`--resume auto`: one command for the first launch
    /// and every requeue).
    Auto,
}

pub struct RunDir {
    pub path: PathBuf,
    /// True when the run continues from `last.safetensors`.
    pub resuming: bool,
}

impl RunDir {
    /// Readies the folder for `start`; the caller holds its [`crate::run_lock::RunLock`],
    /// whose file is never counted or removed here.
    pub fn prepare(path: &Path, start: Start) -> Result<RunDir> {
        let has_last = path.join(LAST).is_file();
        let has_files = std::fs::read_dir(path)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .any(|e| e.file_name() != crate::run_lock::LOCK)
            })
            .unwrap_or(false);
        let resuming = match start {
            Start::Resume if !has_last => {
                return Err(usage!(
                    "--resume: {} has no {LAST}; start the run without --resume (or with --resume auto)",
                    path.display()
                ))
            }
            Start::Resume | Start::Auto if has_last => {
                for temp in remove_entries(path, crate::atomic::is_temp_name)? {
                    eprintln!("removed {} (left by a process killed mid-write)", temp.display());
                }
                true
            }
            Start::New if has_files => {
                return Err(usage!(
                    "run folder {} already exists; pass --resume to continue it, --overwrite to replace it, or --out to pick another",
                    path.display()
                ))
            }
            Start::Overwrite | Start::Auto if has_files => {
                // Only a run folder is ever emptied: `--out . --overwrite` must not wipe a repo.
                if !path.join(CONFIG).is_file() && !has_last {
                    return Err(usage!(
                        "{}: {} is not empty and is not a run folder (no {CONFIG} or {LAST}); refusing to delete it",
                        if start == Start::Auto { "--resume auto" } else { "--overwrite" },
                        path.display()
                    ));
                }
                remove_entries(path, |name| name != crate::run_lock::LOCK)?;
                false
            }
            _ => false,
        };
        std::fs::create_dir_all(path)
            .with_context(|| format!("creating run folder {}", path.display()))?;
        Ok(RunDir {
            path: path.to_path_buf(),
            resuming,
        })
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    pub fn write(&self, name: &str, text: &str) -> Result<()> {
        crate::atomic::write(&self.file(name), text.as_bytes())
    }
}

/// Removes the entries of a run folder whose names `pick` selects (folders whole); returns
/// their paths. The caller holds the lock, so no live writer owns them.
fn remove_entries(dir: &Path, pick: impl Fn(&str) -> bool) -> Result<Vec<PathBuf>> {
    let listing = || format!("listing {}", dir.display());
    let mut removed = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(listing)? {
        let entry = entry.with_context(listing)?;
        if pick(&entry.file_name().to_string_lossy()) {
            let path = entry.path();
            let result = match entry.file_type().is_ok_and(|t| t.is_dir()) {
                true => std::fs::remove_dir_all(&path),
                false => std::fs::remove_file(&path),
            };
            result.with_context(|| format!("removing {}", path.display()))?;
            removed.push(path);
        }
    }
    Ok(removed)
}

/// The git revision this binary was built from (`unknown` outside a checkout).
pub fn git_revision() -> &'static str {
    option_env!("NPR_GIT_REVISION").unwrap_or("unknown")
}

/// What `meta.json` records about a run: enough to reproduce and to compare runs.
pub fn run_meta(
    config: &crate::config::Config,
    device: Device,
    vs: &nn::VarStore,
    threads: crate::threads::ThreadBudget,
    dataset: serde_json::Value,
) -> serde_json::Value {
    serde_json::json!({
        "name": config.name,
        "seed": config.train.seed,
        "git_revision": git_revision(),
        "npr_version": env!("CARGO_PKG_VERSION"),
        "tch_version": "0.24.0",
        "libtorch_version": "2.11.0",
        "device": format!("{device:?}"),
        "cuda_devices": tch::Cuda::device_count(),
        "cpu_threads": tch::get_num_threads(),
        "loader_threads": threads.loader,
        // How libgomp waits (src/threads.rs): null where it runs with its own defaults.
        "openmp_spin": std::env::var(crate::threads::SPIN_ENV).ok(),
        "omp_wait_policy": std::env::var(crate::threads::WAIT_POLICY_ENV).ok(),
        "trainable_parameters": crate::model::detector::trainable_parameters(vs),
        "dataset": dataset,
        "started": chrono_like_now(),
        // The exact command line, so a report can say what produced the run.
        "command": std::env::args().collect::<Vec<_>>(),
    })
}

/// Seconds since the Unix epoch (no date crate needed for a timestamp in meta.json).
fn chrono_like_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
