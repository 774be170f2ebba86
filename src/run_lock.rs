//! One writer per run folder (README "Running on shared machines").
//!
//! `npr train` holds an exclusive advisory lock (`flock(2)`) on `RUN/.npr.lock` for its whole
//! life, and `npr ablate` holds the same lock while it tests a cell. The kernel drops the lock
//! when the process ends in any way, kill -9 included, so a lock is never stale; the file
//! only records who holds it (pid, host, start time, command) for the message a second
//! process prints. On NFS, Linux maps `flock` to POSIX locks, which the server arbitrates
//! across hosts; file systems without locking are reported, not ignored.
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The lock file inside a run folder (hidden; never part of the run's outputs).
pub const LOCK: &str = ".npr.lock";

/// The run folder is locked by another live process: exit code 2, nothing was touched.
#[derive(Debug, thiserror::Error)]
#[error("{} is in use by another npr process ({holder}); wait for it to end or stop it. Nothing was changed", dir.display())]
pub struct RunInUse {
    pub dir: PathBuf,
    pub holder: String,
}

/// A held lock; dropping it removes the lock file (and the folder, if this process created
/// it and nothing else was written there), then releases the lock.
#[derive(Debug)]
pub struct RunLock {
    file: File,
    path: PathBuf,
    created_dir: Option<PathBuf>,
}

impl RunLock {
    /// Takes the lock of `dir` (created if missing) or fails at once with [`RunInUse`].
    pub fn acquire(dir: &Path) -> Result<RunLock> {
        let created_dir = (!dir.exists()).then(|| dir.to_path_buf());
        // A path under a file, a read-only mount, a full disk: the user's to fix (exit 2).
        std::fs::create_dir_all(dir)
            .map_err(|e| crate::usage!("cannot create the run folder {}: {e}", dir.display()))?;
        let path = dir.join(LOCK);
        // A holder that ends removes the file; a process that opened the old file before may
        // then lock an unlinked inode. Locking is only valid while the path still names the
        // locked file, so check that and retry otherwise.
        for _ in 0..100 {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(|e| {
                    crate::usage!("cannot create the lock file {}: {e}", path.display())
                })?;
            if !try_lock(&file).with_context(|| lock_failure(&path))? {
                return Err(RunInUse {
                    dir: dir.to_path_buf(),
                    holder: describe_holder(&mut file),
                }
                .into());
            }
            let same = match (file.metadata(), std::fs::metadata(&path)) {
                (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
                _ => false,
            };
            if !same {
                continue;
            }
            file.set_len(0)
                .and_then(|()| file.write_all(holder_line().as_bytes()))
                .and_then(|()| file.sync_all())
                .with_context(|| format!("writing {} (is the folder writable?)", path.display()))?;
            return Ok(RunLock {
                file,
                path,
                created_dir,
            });
        }
        anyhow::bail!(
            "{}: the lock file keeps being replaced by other processes",
            path.display()
        )
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The folder, when this lock created it (it is removed again if left empty).
    pub fn created_dir(&self) -> Option<&Path> {
        self.created_dir.as_deref()
    }

    /// Who holds the lock of `dir` right now, without taking it (None: nobody).
    pub fn holder(dir: &Path) -> Result<Option<String>> {
        let path = dir.join(LOCK);
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
        };
        if try_lock(&file).with_context(|| lock_failure(&path))? {
            // Free: closing the file releases the probe's lock; the file stays as it was.
            return Ok(None);
        }
        Ok(Some(describe_holder(&mut file)))
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Best effort, in this order: remove while still holding, then release on close.
        let _ = std::fs::remove_file(&self.path);
        if let Some(dir) = &self.created_dir {
            let _ = std::fs::remove_dir(dir); // only succeeds when empty
        }
        let _ = self.file.flush();
    }
}

/// `flock(LOCK_EX | LOCK_NB)`: Ok(true) when taken, Ok(false) when another process holds it.
fn try_lock(file: &File) -> std::io::Result<bool> {
    // SAFETY: flock on a file descriptor this `File` owns for the duration of the call.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(err)
    }
}

fn lock_failure(path: &Path) -> String {
    format!(
        "locking {} (does this file system support file locks?)",
        path.display()
    )
}

fn describe_holder(file: &mut File) -> String {
    let mut text = String::new();
    let _ = file.read_to_string(&mut text);
    match text.trim() {
        "" => "a process that is just starting".into(),
        holder => holder.to_string(),
    }
}

/// `pid 123 on host gpu7, since 2026-12-02T18:50:01Z: npr train --config …`
fn holder_line() -> String {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| utc_timestamp(d.as_secs()))
        .unwrap_or_else(|_| "an unknown time".into());
    let command: Vec<String> = std::env::args().collect();
    format!(
        "pid {} on host {}, since {since}: {}\n",
        std::process::id(),
        hostname(),
        command.join(" ")
    )
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into `buf`.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Seconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ` (proleptic Gregorian calendar,
/// H. Hinnant's days-to-civil algorithm).
fn utc_timestamp(secs: u64) -> String {
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_match_known_dates() {
        for (secs, want) in [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (1_709_251_199, "2024-02-29T23:59:59Z"),
            (1_796_256_000, "2026-12-03T00:00:00Z"),
            (4_107_546_123, "2100-03-01T01:02:03Z"),
        ] {
            assert_eq!(utc_timestamp(secs), want, "{secs}");
        }
    }

    #[test]
    fn a_second_lock_names_the_holder_and_the_lock_is_freed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        let first = RunLock::acquire(&run).unwrap();
        assert!(RunLock::holder(&run)
            .unwrap()
            .unwrap()
            .contains(&format!("pid {}", std::process::id())));
        // flock conflicts between open files, so a second acquire in one process is refused.
        let err = RunLock::acquire(&run).unwrap_err();
        let in_use = err.downcast_ref::<RunInUse>().expect("RunInUse");
        assert!(in_use.holder.contains("on host"), "{}", in_use.holder);
        drop(first);
        // The folder was created for the lock and holds nothing else: it is gone again.
        assert!(!run.exists());
        assert!(RunLock::holder(&run).unwrap().is_none());
        let again = RunLock::acquire(&run).unwrap();
        std::fs::write(run.join("config.yaml"), "x").unwrap();
        drop(again);
        assert!(run.join("config.yaml").is_file() && !run.join(LOCK).exists());
    }
}
