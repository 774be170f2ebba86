//! Progress of the long steps: plain lines on stderr when it is not a terminal (here, a
//! pipe), and nothing else changes: the files written are byte-identical with and without.
//! `NPR_PROGRESS_EVERY=0` prints a line at every update, so no test waits for a clock.
use std::path::Path;

use crate::cli::{npr, ok, tiny_synth};

const EVERY_UPDATE: [(&str, &str); 1] = [("NPR_PROGRESS_EVERY", "0")];

/// Every file below `dir` with its bytes, by relative path (`skip`: names left out).
fn tree(dir: &Path, skip: &[&str]) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if e.path().is_dir() {
                stack.push(e.path());
            } else if !skip.contains(&name.as_str()) {
                let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
                files.push((rel, std::fs::read(e.path()).unwrap()));
            }
        }
    }
    files.sort();
    files
}

#[test]
fn synth_and_test_report_progress_on_stderr_and_write_the_same_files() {
    let dir = tempfile::tempdir().unwrap();
    let synth = |out: &Path, env: &[(&str, &str)]| {
        let args = [
            "synth",
            "--out",
            out.to_str().unwrap(),
            "--size",
            "32",
            "--classes",
            "1",
        ];
        let more = [
            "--train-per-class",
            "2",
            "--val-per-class",
            "1",
            "--test-per-family",
            "2",
        ];
        npr(&[args.as_slice(), &more].concat(), env)
    };
    let (quiet, loud) = (dir.path().join("quiet"), dir.path().join("loud"));
    ok(&synth(&quiet, &[]));
    let shown = synth(&loud, &EVERY_UPDATE);
    ok(&shown);
    let err = String::from_utf8_lossy(&shown.stderr);
    assert!(
        err.contains("images (") && err.contains("images/s, ETA"),
        "{err}"
    );
    assert_eq!(tree(&quiet, &[]), tree(&loud, &[]));

    // `npr test`: discovery and scoring report; results identical (summary.json and
    // complete.json hold the rate and the checkpoint's path).
    let ckpt = dir.path().join("model.safetensors");
    std::fs::copy(crate::serve::checkpoint(), &ckpt).unwrap();
    let data = tiny_synth().join("synth/test");
    let test = |out: &Path, env: &[(&str, &str)]| {
        let (c, d, o) = (
            ckpt.to_str().unwrap(),
            data.to_str().unwrap(),
            out.to_str().unwrap(),
        );
        npr(
            &["test", "--checkpoint", c, "--dataroot", d, "--out", o],
            env,
        )
    };
    let (quiet, loud) = (dir.path().join("test_quiet"), dir.path().join("test_loud"));
    ok(&test(&quiet, &[]));
    let shown = test(&loud, &EVERY_UPDATE);
    ok(&shown);
    let err = String::from_utf8_lossy(&shown.stderr);
    assert!(
        err.contains("listing images under") && err.contains(" files, "),
        "{err}"
    );
    assert!(
        err.contains("test [none]: ") && err.contains(" images ("),
        "{err}"
    );
    let skip = ["summary.json", "complete.json"];
    assert_eq!(tree(&quiet, &skip), tree(&loud, &skip));
}
