//! A training start that does not reach its first step leaves no folder that looks like a
//! run. From the lock to the first epoch (data, the split checks, the run folder, the model,
//! the room check) a signal stops the process at once (src/interrupt.rs) and an error
//! returns; either way a run folder this process created loses the files the start wrote
//! and, once empty, the folder itself. A folder that existed keeps what it had.
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::run_dir;
use crate::run_lock::RunLock;

/// The files a start writes into the run folder before the first step.
const START_FILES: [&str; 4] = [
    run_dir::CONFIG,
    run_dir::META,
    run_dir::LOG,
    run_dir::SKIPPED,
];

/// Test hook: raises SIGINT at this stage of the start (`data`: after the data and its
/// checks; `run`: after the run folder's files and the room check).
const SIGNAL_ENV: &str = "NPR_TEST_SIGINT_AT";

/// The run folder's lock during start-up; [`StartUp::done`] hands it over for the run.
pub(super) struct StartUp {
    lock: Option<RunLock>,
    /// The start's files, when this process created the folder (else nothing to remove).
    files: Vec<PathBuf>,
}

impl StartUp {
    /// Takes the run folder's lock (a second process stops here, exit 2) with start-up
    /// signal handling in place before it.
    pub(super) fn begin(out: &Path) -> Result<StartUp> {
        crate::interrupt::starting(&[], None)?;
        let lock = RunLock::acquire(out)?;
        let files = match lock.created_dir() {
            Some(dir) => start_files(dir),
            None => Vec::new(),
        };
        // The lock file goes last: it is held until the process ends.
        let mut removed = files.clone();
        removed.push(lock.path().to_path_buf());
        crate::interrupt::starting(&removed, lock.created_dir())?;
        Ok(StartUp {
            lock: Some(lock),
            files,
        })
    }

    /// The run starts: signals ask it to save and stop again; the lock stays held.
    pub(super) fn done(mut self) -> RunLock {
        crate::interrupt::started();
        self.lock.take().expect("held until done")
    }
}

impl Drop for StartUp {
    /// A start that failed: its files go while the lock is still held (no other process can
    /// have written them), then the lock, and with it the folder if now empty.
    fn drop(&mut self) {
        let Some(lock) = self.lock.take() else { return };
        crate::interrupt::started();
        for file in &self.files {
            let _ = std::fs::remove_file(file); // most were never written
        }
        drop(lock);
    }
}

/// The files a start may write into `dir`, and their temporary siblings (src/atomic.rs).
fn start_files(dir: &Path) -> Vec<PathBuf> {
    let pid = std::process::id();
    START_FILES
        .iter()
        .flat_map(|name| [dir.join(name), dir.join(format!(".{name}.tmp-{pid}"))])
        .collect()
}

/// Raises SIGINT when [`SIGNAL_ENV`] names `stage` (tests of a signal during start-up).
pub(super) fn test_signal_at(stage: &str) {
    if std::env::var(SIGNAL_ENV).is_ok_and(|s| s == stage) {
        // SAFETY: raising a signal for which a handler is installed.
        unsafe { libc::raise(libc::SIGINT) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_start_removes_the_folder_it_created_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let new = dir.path().join("new_run");
        let start = StartUp::begin(&new).unwrap();
        for name in [run_dir::CONFIG, run_dir::META, run_dir::LOG] {
            std::fs::write(new.join(name), "x").unwrap();
        }
        drop(start); // as on an error before the first epoch
        assert!(!new.exists(), "the new run folder is left behind");

        // A folder that existed keeps its files; only the lock file goes.
        let old = dir.path().join("old_run");
        std::fs::create_dir(&old).unwrap();
        std::fs::write(old.join(run_dir::CONFIG), "x").unwrap();
        drop(StartUp::begin(&old).unwrap());
        let left: Vec<_> = std::fs::read_dir(&old)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left, [run_dir::CONFIG]);

        // A start that reached its first step keeps everything.
        let kept = dir.path().join("kept");
        let lock = StartUp::begin(&kept).unwrap().done();
        std::fs::write(kept.join(run_dir::CONFIG), "x").unwrap();
        drop(lock);
        assert!(kept.join(run_dir::CONFIG).is_file());
    }
}
