//! A test folder is complete when it holds `complete.json`, and current when the checkpoint
//! it names still has the SHA-256 recorded there. `npr test` writes the marker last, inside
//! a staging folder that is then swapped into place (see [`publish`]), so a reader sees the
//! old complete folder or the new one, never a mix. `npr report` refuses a test folder
//! without a marker or whose checkpoint has changed since; `npr ablate` re-tests such a cell.
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// The marker's file name inside a test folder.
pub const MARKER: &str = "complete.json";

/// What a complete test folder records about how it was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    /// The checkpoint file that was scored, as given (resolved from a run folder).
    pub checkpoint: PathBuf,
    /// SHA-256 of that file's bytes, hex.
    pub checkpoint_sha256: String,
    /// The perturbation levels scored, in order (`none` for clean images).
    pub levels: Vec<String>,
    /// True when every test set came from `npr synth` (a `synth.json` manifest beside it).
    pub synthetic: bool,
    /// True when every test set is a photo benchmark (`npr synth --reals`: real photographs,
    /// fakes made by up-samplers). Absent in folders written before it existed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub photos: bool,
    /// The npr version that wrote the folder.
    pub npr: String,
}

/// SHA-256 of a file, hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    let mut file =
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
    }
    Ok(hash.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// The marker of `test_dir`; None when there is none (an interrupted or pre-marker test).
pub fn read(test_dir: &Path) -> Result<Option<Completion>> {
    let path = test_dir.join(MARKER);
    if !path.is_file() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text)
        .map(Some)
        .with_context(|| format!("{} is not a valid completion marker", path.display()))
}

/// Why a test folder cannot stand for its checkpoint now; None when it can.
pub fn stale_reason(test_dir: &Path, checkpoint: &Path) -> Result<Option<String>> {
    Ok(current(
        test_dir,
        checkpoint,
        checkpoint_sha256(checkpoint)?.as_deref(),
    )?
    .err())
}

/// SHA-256 of a checkpoint file, None when it no longer exists: hash it once, then ask
/// [`current`] about each of its test folders.
pub fn checkpoint_sha256(checkpoint: &Path) -> Result<Option<String>> {
    checkpoint
        .is_file()
        .then(|| sha256_file(checkpoint))
        .transpose()
}

/// The marker of `test_dir` if it stands for `checkpoint`, whose SHA-256 is `now` (None:
/// the file is gone); otherwise why it does not.
pub fn current(
    test_dir: &Path,
    checkpoint: &Path,
    now: Option<&str>,
) -> Result<std::result::Result<Completion, String>> {
    let Some(done) = read(test_dir)? else {
        return Ok(Err(format!(
            "{} has no {MARKER}: the test was interrupted or made by an older npr",
            test_dir.display()
        )));
    };
    let Some(now) = now else {
        return Ok(Err(format!(
            "{} scored {}, which no longer exists",
            test_dir.display(),
            checkpoint.display()
        )));
    };
    if now != done.checkpoint_sha256 {
        return Ok(Err(format!(
            "{} scored other weights than {} holds now (SHA-256 {} then, {} now): the run trained on after the test",
            test_dir.display(),
            checkpoint.display(),
            &done.checkpoint_sha256[..12.min(done.checkpoint_sha256.len())],
            &now[..12.min(now.len())]
        )));
    }
    Ok(Ok(done))
}

/// The staging folder for `out`: a hidden sibling, unique to this process.
pub fn staging_dir(out: &Path) -> Result<PathBuf> {
    crate::atomic::hidden_sibling(out, "staging")
}

/// Removes staging folders of `out` that killed processes left behind: those whose PID is
/// no longer alive (a live one belongs to another `npr test` writing to the same `out`).
pub fn remove_stale_staging(out: &Path) -> Result<()> {
    let (Some(name), Some(parent)) = (out.file_name(), out.parent()) else {
        return Ok(());
    };
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    let prefix = format!(".{}.staging-", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let file = e.file_name().to_string_lossy().to_string();
        let Some(pid) = file
            .strip_prefix(&prefix)
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && process_alive(pid) {
            continue;
        }
        std::fs::remove_dir_all(e.path())
            .with_context(|| format!("removing debris {}", e.path().display()))?;
    }
    Ok(())
}

/// Whether a process with this PID exists (signal 0 probes without sending anything).
fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill with signal 0 only checks that the process exists and may be signalled.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Refuses an `--out` that `npr test` must not replace: one that holds the run folder, the
/// checkpoint or a test set (replacing it would delete them), or an existing folder that
/// is neither empty nor a test folder (`complete.json` or `metrics.csv` inside).
pub fn check_replaceable(out: &Path, keep: &[&Path]) -> Result<()> {
    if !out.exists() {
        return Ok(());
    }
    let canonical = out
        .canonicalize()
        .with_context(|| format!("resolving --out {}", out.display()))?;
    if !canonical.is_dir() {
        return Err(crate::usage!(
            "--out {} exists and is not a folder",
            out.display()
        ));
    }
    for k in keep {
        if k.canonicalize().is_ok_and(|k| k.starts_with(&canonical)) {
            return Err(crate::usage!(
                "--out {} holds {}: npr test replaces its --out folder whole, so it must be a folder of its own (e.g. RUN/test_NAME)",
                out.display(),
                k.display()
            ));
        }
    }
    let empty = std::fs::read_dir(&canonical)
        .with_context(|| format!("listing --out {}", out.display()))?
        .next()
        .is_none();
    if !empty && !out.join(MARKER).is_file() && !out.join("metrics.csv").is_file() {
        return Err(crate::usage!(
            "--out {} is a folder that npr test did not write (no {MARKER} or metrics.csv): npr test replaces its --out folder whole; choose a new or empty folder",
            out.display()
        ));
    }
    Ok(())
}

/// Writes the marker into `staging`, then puts `staging` in the place of `out` in one
/// step: `renameat2(RENAME_EXCHANGE)` swaps a previous folder out atomically (it is then
/// removed); with no previous folder a plain rename suffices. File systems without the
/// exchange (NFS, many FUSE mounts) get two renames under the run's lock: a kill between
/// them leaves the previous results at `.NAME.old-PID` and no `out`, which readers see as
/// "not tested" rather than as a mix. Returns a warning when the previous results could not
/// be removed after the new ones were in place.
pub fn publish(staging: &Path, out: &Path, done: &Completion) -> Result<Option<String>> {
    crate::atomic::write(
        &staging.join(MARKER),
        serde_json::to_string_pretty(done)?.as_bytes(),
    )?;
    if !out.exists() {
        std::fs::rename(staging, out)
            .with_context(|| format!("moving {} to {}", staging.display(), out.display()))?;
        return Ok(None);
    }
    let old = match exchange(staging, out) {
        // `staging` now holds the previous results.
        Ok(()) => staging.to_path_buf(),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP)
            ) =>
        {
            let old = crate::atomic::hidden_sibling(out, "old")?;
            std::fs::rename(out, &old)
                .with_context(|| format!("moving {} aside to {}", out.display(), old.display()))?;
            std::fs::rename(staging, out)
                .with_context(|| format!("moving {} to {}", staging.display(), out.display()))?;
            old
        }
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!(
                "replacing {} with {}",
                out.display(),
                staging.display()
            )))
        }
    };
    // The new results are in place: failing to remove the old ones is worth a warning only.
    Ok(std::fs::remove_dir_all(&old).err().map(|e| {
        format!(
            "the new results are in {}, but the previous ones at {} could not be removed: {e}",
            out.display(),
            old.display()
        )
    }))
}

/// Atomically swaps two paths (Linux `renameat2` with `RENAME_EXCHANGE`).
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
    };
    let (ca, cb) = (c(a)?, c(b)?);
    // SAFETY: two valid NUL-terminated paths; renameat2 only reads them.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marker(sha: &str) -> Completion {
        Completion {
            checkpoint: "ckpt".into(),
            checkpoint_sha256: sha.into(),
            levels: vec!["none".into()],
            synthetic: true,
            photos: false,
            npr: "test".into(),
        }
    }

    #[test]
    fn publish_swaps_whole_folders() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("test");
        for round in ["old", "new"] {
            let staging = staging_dir(&out).unwrap();
            std::fs::create_dir_all(&staging).unwrap();
            std::fs::write(staging.join("metrics.csv"), round).unwrap();
            assert_eq!(publish(&staging, &out, &marker(round)).unwrap(), None);
            assert!(!staging.exists());
            assert_eq!(
                std::fs::read_to_string(out.join("metrics.csv")).unwrap(),
                round
            );
            assert_eq!(read(&out).unwrap().unwrap().checkpoint_sha256, round);
        }
        // Only the published folder is left.
        let names: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("test")]);
    }

    #[test]
    fn only_test_folders_of_their_own_are_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let run = tmp.path().join("run");
        let ckpt = run.join("best.safetensors");
        std::fs::create_dir_all(run.join("test")).unwrap();
        std::fs::write(&ckpt, b"w").unwrap();
        let ok = |out: &Path| check_replaceable(out, &[&run, &ckpt]).is_ok();
        // New, empty, or an earlier test folder: fine.
        assert!(ok(&run.join("test_new")));
        assert!(ok(&run.join("test")));
        std::fs::write(run.join("test/metrics.csv"), "x").unwrap();
        assert!(ok(&run.join("test")));
        // The run folder itself, a folder holding it, a foreign folder: refused.
        assert!(!ok(&run));
        assert!(!ok(tmp.path()));
        let data = tmp.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join("img.png"), "x").unwrap();
        assert!(!ok(&data));
    }

    #[test]
    fn staging_of_live_processes_is_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("test");
        // PID 1 is alive; a PID above the kernel's maximum is not.
        for pid in [1u32, 99_999_999] {
            std::fs::create_dir_all(tmp.path().join(format!(".test.staging-{pid}"))).unwrap();
        }
        remove_stale_staging(&out).unwrap();
        assert!(tmp.path().join(".test.staging-1").exists());
        assert!(!tmp.path().join(".test.staging-99999999").exists());
    }

    #[test]
    fn stale_when_unmarked_or_the_checkpoint_changed() {
        let tmp = tempfile::tempdir().unwrap();
        let (test, ckpt) = (tmp.path().join("test"), tmp.path().join("best.safetensors"));
        std::fs::create_dir_all(&test).unwrap();
        std::fs::write(&ckpt, b"weights v1").unwrap();
        assert!(stale_reason(&test, &ckpt)
            .unwrap()
            .unwrap()
            .contains("no complete.json"));
        let sha = sha256_file(&ckpt).unwrap();
        std::fs::write(
            test.join(MARKER),
            serde_json::to_string(&marker(&sha)).unwrap(),
        )
        .unwrap();
        assert_eq!(stale_reason(&test, &ckpt).unwrap(), None);
        std::fs::write(&ckpt, b"weights v2").unwrap();
        assert!(stale_reason(&test, &ckpt)
            .unwrap()
            .unwrap()
            .contains("trained on after the test"));
        std::fs::write(test.join(MARKER), "{not json").unwrap();
        assert!(stale_reason(&test, &ckpt).is_err());
    }
}
