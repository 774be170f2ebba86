//! Helpers shared by the integration tests.
use std::path::PathBuf;
use std::process::Command;

/// The venv's Python (torch, numpy): `NPR_PYTHON` or `.venv/bin/python` in the repo.
pub fn python() -> PathBuf {
    std::env::var_os("NPR_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python")))
}

/// Runs a Python script from the repo with arguments; panics with its stderr on failure.
pub fn run_python(script: &str, args: &[&str]) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(script);
    let out = Command::new(python())
        .arg(&path)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}); run scripts/bootstrap.sh first",
                python().display()
            )
        });
    assert!(
        out.status.success(),
        "{script} {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The release binary built alongside the tests.
pub fn npr_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_npr"))
}
