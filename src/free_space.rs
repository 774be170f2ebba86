//! Room on disk, checked before the work: a run that cannot hold its checkpoints, or a test
//! whose outputs would not fit, stops at once with exit 2 instead of failing at its first
//! large write, an epoch or a whole scoring pass later.
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::{Context, Result};

/// Test hook: the free bytes every check sees, as on a tiny file system (tests cannot mount
/// one; never set outside tests).
const FREE_ENV: &str = "NPR_TEST_FREE_BYTES";

/// Bytes available to this user on the file system holding `dir` (the nearest existing
/// folder above it when it does not exist yet).
pub fn available(dir: &Path) -> Result<u64> {
    if let Ok(v) = std::env::var(FREE_ENV) {
        return v
            .trim()
            .parse()
            .map_err(|_| crate::usage!("environment variable {FREE_ENV}={v:?}: expected bytes"));
    }
    let existing = dir
        .ancestors()
        .find(|d| d.exists())
        .unwrap_or(Path::new("."));
    let path = CString::new(existing.as_os_str().as_bytes())
        .with_context(|| format!("{} holds a NUL byte", existing.display()))?;
    // SAFETY: statvfs fills the zeroed struct it is given; `path` is NUL-terminated.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(e).with_context(|| format!("free space of {}", existing.display()));
    }
    Ok(stat.f_bavail as u64 * stat.f_frsize as u64)
}

/// Fails with exit 2 naming `dir` when its file system has less than `needed` bytes free;
/// `what` says what they are for ("2 checkpoints of 17 MB each …").
pub fn ensure_room(dir: &Path, needed: u64, what: &str) -> Result<()> {
    check_room(dir, available(dir)?, needed, what)
}

/// [`ensure_room`] with the free bytes given.
fn check_room(dir: &Path, free: u64, needed: u64, what: &str) -> Result<()> {
    if free >= needed {
        return Ok(());
    }
    Err(crate::usage!(
        "{} has {} free, but {what} need about {}; free some space or choose another folder",
        dir.display(),
        human_bytes(free),
        human_bytes(needed)
    ))
}

/// `512 B`, `17.3 MB`, `2.1 GB` (powers of 1000, as `df -H`).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_little_room_is_a_usage_error_naming_the_folder_and_both_figures() {
        let dir = Path::new("runs/big");
        check_room(dir, 3_000_000, 3_000_000, "x").unwrap();
        let err = check_room(dir, 2_000_000, 51_000_000, "3 checkpoints").unwrap_err();
        assert!(crate::error::is_usage_error(&err));
        let msg = format!("{err:#}");
        for part in [
            "runs/big",
            "2.0 MB free",
            "3 checkpoints need about 51.0 MB",
        ] {
            assert!(msg.contains(part), "{part:?} not in {msg}");
        }
    }

    #[test]
    fn a_folder_yet_to_be_made_is_measured_on_its_nearest_parent() {
        let dir = tempfile::tempdir().unwrap();
        assert!(available(&dir.path().join("not/yet")).unwrap() > 0);
    }

    #[test]
    fn sizes_read_like_df() {
        for (n, want) in [
            (0, "0 B"),
            (999, "999 B"),
            (1_000, "1.0 kB"),
            (17_300_000, "17.3 MB"),
            (2_100_000_000, "2.1 GB"),
        ] {
            assert_eq!(human_bytes(n), want);
        }
    }
}
