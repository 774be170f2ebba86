//! Output files are complete or absent: every file npr writes goes to a temporary file in
//! the same folder (`.NAME.tmp-PID`), is flushed to disk, and is renamed over `NAME`. On any
//! error (a full disk, a folder that vanished) the temporary file is removed and the error
//! names the file. A reader (or a later `--resume`) therefore never sees a half-written
//! checkpoint, log or table, and a failed run leaves no debris.
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Test hook: writes to files with this name fail half-way, as on a full disk (tests of
/// the cleanup; never set outside tests).
const FAIL_ENV: &str = "NPR_TEST_FAIL_WRITE";

/// A hidden sibling of `path` unique to this process: `.NAME.TAG-PID` in the same folder
/// (the same file system, so a rename into place is atomic).
pub fn hidden_sibling(path: &Path, tag: &str) -> Result<PathBuf> {
    let name = path
        .file_name()
        .with_context(|| format!("{} has no file name", path.display()))?
        .to_string_lossy();
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    Ok(dir.join(format!(".{name}.{tag}-{}", std::process::id())))
}

/// The temporary sibling of `path`.
fn temp_path(path: &Path) -> Result<PathBuf> {
    hidden_sibling(path, "tmp")
}

/// True for a temporary file of [`write`] (`.NAME.tmp-PID`): debris only a process killed
/// mid-write (kill -9, power loss) leaves, removable by whoever holds the folder's lock.
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with('.')
        && name.rsplit_once(".tmp-").is_some_and(|(head, pid)| {
            head.len() > 1 && !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit())
        })
}

/// Writes `bytes` to `path` atomically (see the module docs).
pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_path(path)?;
    let injected =
        std::env::var_os(FAIL_ENV).is_some_and(|name| path.file_name() == Some(name.as_os_str()));
    let attempt = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        if injected {
            f.write_all(&bytes[..bytes.len() / 2])?;
            return Err(std::io::Error::from_raw_os_error(libc::ENOSPC));
        }
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    attempt().map_err(|e| {
        // The write failed: the temporary file is debris. If even removing it fails, say so.
        let cleanup = match std::fs::remove_file(&tmp) {
            Err(r) if r.kind() != std::io::ErrorKind::NotFound => {
                format!(" (and {} could not be removed: {r})", tmp.display())
            }
            _ => String::new(),
        };
        anyhow::Error::new(e).context(format!("writing {}{cleanup}", path.display()))
    })
}

/// Fails early, before any work, when `dir` cannot be created or written (a path under a
/// file, a read-only mount, a full disk or quota): better than finding out after hours of
/// training or testing. Both failures are the user's to fix (exit 2) and name `dir`.
pub fn check_writable(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| crate::usage!("{} cannot be created: {e}", dir.display()))?;
    let probe = dir.join(format!(".npr-write-check-{}", std::process::id()));
    let result = std::fs::write(&probe, b"npr");
    let _ = std::fs::remove_file(&probe); // best effort: it may not exist
    result.map_err(|e| crate::usage!("{} is not writable: {e}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_write_replaces_the_file_whole() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.csv");
        write(&p, b"old").unwrap();
        write(&p, b"new contents").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new contents");
        assert_eq!(names(dir.path()), ["a.csv"]);
    }

    #[test]
    fn a_failed_write_leaves_neither_a_temp_file_nor_a_partial_file() {
        let dir = tempfile::tempdir().unwrap();
        // A folder in the file's place: the rename fails after the temp file is written.
        let p = dir.path().join("taken");
        std::fs::create_dir(&p).unwrap();
        std::fs::write(p.join("inside"), b"x").unwrap();
        let err = format!("{:#}", write(&p, b"data").unwrap_err());
        assert!(err.contains("taken"), "{err}");
        assert_eq!(names(dir.path()), ["taken"]);
        // A missing parent folder: the message names the path.
        let err = format!(
            "{:#}",
            write(&dir.path().join("no/such.csv"), b"x").unwrap_err()
        );
        assert!(err.contains("no/such.csv"), "{err}");
    }

    #[test]
    fn temp_names_are_recognised() {
        for (name, temp) in [
            (".last.safetensors.tmp-123", true),
            (".train_log.csv.tmp-9", true),
            ("last.safetensors", false),
            (".npr.lock", false),
            (".x.tmp-", false),
            (".x.tmp-12a", false),
            (".tmp-12", false),
        ] {
            assert_eq!(is_temp_name(name), temp, "{name}");
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.csv");
        let tmp = temp_path(&p).unwrap();
        assert!(is_temp_name(&tmp.file_name().unwrap().to_string_lossy()));
    }

    #[test]
    fn unwritable_folders_are_found_before_work_starts() {
        let dir = tempfile::tempdir().unwrap();
        check_writable(&dir.path().join("new/out")).unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        let err = check_writable(&file.join("sub")).unwrap_err();
        assert!(crate::error::is_usage_error(&err), "{err:#}");
        assert!(format!("{err:#}").contains("file/sub"), "{err:#}");
    }
}
