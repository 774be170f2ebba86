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
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

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
                remove_stale_temp_files(path)?;
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
                remove_contents(path)?;
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

/// Appends rows to `train_log.csv`, writing the header when the file is new.
pub struct CsvLog {
    file: File,
    columns: usize,
}

/// The column of `train_log.csv` that holds the optimizer step (see `log_header`).
const STEP_COLUMN: usize = 2;

impl CsvLog {
    /// Opens the log for appending. Rows of steps after `through_step` (the checkpoint being
    /// resumed) are removed first, since those steps run again: a resumed log never holds a
    /// step twice. A new run passes 0 and gets a fresh file with `header`.
    pub fn open(path: &Path, header: &[String], through_step: i64) -> Result<CsvLog> {
        let old = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let mut lines = old.lines();
        let _old_header = lines.next();
        let kept: Vec<&str> = lines
            .filter(|row| {
                let step = row
                    .split(',')
                    .nth(STEP_COLUMN)
                    .and_then(|v| v.parse::<i64>().ok());
                step.is_some_and(|s| s <= through_step)
            })
            .collect();
        let mut text = header.join(",");
        text.push('\n');
        for row in &kept {
            text.push_str(row);
            text.push('\n');
        }
        if text != old {
            crate::atomic::write(path, text.as_bytes())?;
        }
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        Ok(CsvLog {
            file,
            columns: header.len(),
        })
    }

    /// Appends a row; a short row (a step row) leaves the remaining columns empty.
    pub fn row(&mut self, values: &[String]) -> Result<()> {
        debug_assert!(values.len() <= self.columns);
        let blanks = self.columns.saturating_sub(values.len());
        writeln!(self.file, "{}{}", values.join(","), ",".repeat(blanks))?;
        self.file.flush()?;
        Ok(())
    }
}

/// Removes the temporary files a process killed mid-write left (the caller holds the lock,
/// so no live writer owns them).
fn remove_stale_temp_files(dir: &Path) -> Result<()> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))?;
    for entry in entries.filter_map(|e| e.ok()) {
        if crate::atomic::is_temp_name(&entry.file_name().to_string_lossy()) {
            let path = entry.path();
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
            eprintln!(
                "removed {} (left by a process killed mid-write)",
                path.display()
            );
        }
    }
    Ok(())
}

/// Removes everything in a run folder except its lock file.
fn remove_contents(dir: &Path) -> Result<()> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        if entry.file_name() == crate::run_lock::LOCK {
            continue;
        }
        let path = entry.path();
        let removed = if entry.file_type().is_ok_and(|t| t.is_dir()) {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed.with_context(|| format!("removing {}", path.display()))?;
    }
    Ok(())
}

/// The git revision this binary was built from (`unknown` outside a checkout).
pub fn git_revision() -> &'static str {
    option_env!("NPR_GIT_REVISION").unwrap_or("unknown")
}
