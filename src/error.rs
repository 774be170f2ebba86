//! Errors that callers branch on. Anything that is the user's to fix (a bad flag, config,
//! path or dataset layout) is a [`UsageError`] somewhere in the chain: exit code 2.
use crate::config::ConfigError;
use crate::data::DataError;
use crate::run_lock::RunInUse;

/// A problem the user fixes by changing the command, the config or the files.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Shorthand: `return Err(usage!("…"))`.
#[macro_export]
macro_rules! usage {
    ($($arg:tt)*) => { anyhow::Error::new($crate::error::UsageError(format!($($arg)*))) };
}

/// True when the error (or any cause) is the user's to fix: a usage, config or dataset
/// error (a dataset that cannot be used at all; single bad images are skipped, not errors),
/// a run folder that another process holds, or a file system that is full or read-only
/// (the context names the file: README, "unwritable or full `--out` is exit 2").
pub fn is_usage_error(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.is::<UsageError>()
            || e.is::<ConfigError>()
            || e.is::<DataError>()
            || e.is::<RunInUse>()
            || e.downcast_ref::<std::io::Error>()
                .is_some_and(is_full_or_read_only)
    })
}

/// No space, no quota or a read-only file system: no retry helps, the user frees space
/// or points the output elsewhere.
pub fn is_full_or_read_only(err: &std::io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::ENOSPC | libc::EDQUOT | libc::EROFS)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_or_read_only_disk_is_the_users_to_fix_anywhere_in_the_chain() {
        for (errno, users) in [
            (libc::ENOSPC, true),
            (libc::EDQUOT, true),
            (libc::EROFS, true),
            (libc::EIO, false),
        ] {
            let io = std::io::Error::from_raw_os_error(errno);
            let err = anyhow::Error::new(io).context("writing runs/x/last.safetensors");
            assert_eq!(is_usage_error(&err), users, "errno {errno}");
        }
        assert!(is_usage_error(&crate::usage!("bad flag")));
        assert!(!is_usage_error(&anyhow::anyhow!("a bug")));
    }
}
