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
/// or a run folder that another process holds.
pub fn is_usage_error(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.is::<UsageError>() || e.is::<ConfigError>() || e.is::<DataError>() || e.is::<RunInUse>()
    })
}
