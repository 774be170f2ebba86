//! The run folder (DESIGN.md §7): everything needed to understand and reuse a run.
//!
//! ```text
//! RUN/config.yaml        the resolved config
//! RUN/meta.json          seed, git revision, device, library versions, dataset summary
//! RUN/train_log.csv      one row per log interval and per epoch
//! RUN/skipped.tsv        files the loader skipped, with the reason
//! RUN/best.safetensors   lowest validation loss (weights + optimizer + state + config)
//! RUN/last.safetensors   the latest state, for --resume
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

pub struct RunDir {
    pub path: PathBuf,
}

impl RunDir {
    /// Creates the folder. An existing run is refused unless `resume` (it must then hold
    /// `last.safetensors`) or `overwrite` (its files are removed first).
    pub fn prepare(path: &Path, resume: bool, overwrite: bool) -> Result<RunDir> {
        let exists = path.exists()
            && std::fs::read_dir(path)
                .map(|mut d| d.next().is_some())
                .unwrap_or(false);
        if resume {
            if !path.join(LAST).is_file() {
                return Err(usage!(
                    "--resume: {} has no {LAST}; start the run without --resume",
                    path.display()
                ));
            }
        } else if exists {
            if !overwrite {
                return Err(usage!(
                    "run folder {} already exists; pass --resume to continue it, --overwrite to replace it, or --out to pick another",
                    path.display()
                ));
            }
            // Only a run folder is ever deleted: `--out . --overwrite` must not wipe a repo.
            if !path.join(CONFIG).is_file() && !path.join(LAST).is_file() {
                return Err(usage!(
                    "--overwrite: {} is not empty and is not a run folder (no {CONFIG} or {LAST}); refusing to delete it",
                    path.display()
                ));
            }
            std::fs::remove_dir_all(path)
                .with_context(|| format!("removing {}", path.display()))?;
        }
        std::fs::create_dir_all(path)
            .with_context(|| format!("creating run folder {}", path.display()))?;
        Ok(RunDir {
            path: path.to_path_buf(),
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

    pub fn row(&mut self, values: &[String]) -> Result<()> {
        debug_assert_eq!(values.len(), self.columns);
        writeln!(self.file, "{}", values.join(","))?;
        self.file.flush()?;
        Ok(())
    }
}

/// The git revision this binary was built from (`unknown` outside a checkout).
pub fn git_revision() -> &'static str {
    option_env!("NPR_GIT_REVISION").unwrap_or("unknown")
}
