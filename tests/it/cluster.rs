//! Safe on shared machines and clusters: one writer per run folder (freed by kill -9),
//! `--resume auto` for requeues, a sweep that leaves a held cell alone and passes SIGTERM
//! on, and a failed write in `npr test` that leaves no temporary file.
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use npr::run_lock::RunLock;

use crate::cli::{npr, ok, tiny_config, train, usage_error};
use crate::common::npr_bin;

/// A long `npr train` in the background, returned once its first step is logged.
fn start_long_run(config: &Path, run: &Path) -> Child {
    let mut child = Command::new(npr_bin())
        .args(["train", "--config", config.to_str().unwrap()])
        .args(["--out", run.to_str().unwrap()])
        .args(["--set", "train.epochs=1000", "--set", "train.log_every=1"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    assert!(
        lines.any(|l| l.unwrap().contains(" step ")),
        "training never logged a step"
    );
    // Keep draining stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    child
}

/// Files in `dir` (recursively) whose name marks a temporary file of an atomic write.
fn temp_files(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type().unwrap().is_dir() {
            found.extend(temp_files(&entry.path()));
        } else if name.contains(".tmp-") {
            found.push(entry.path().display().to_string());
        }
    }
    found
}

#[test]
fn a_second_writer_is_refused_with_the_holder_and_kill_9_frees_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), "single");
    let run = dir.path().join("run");
    let mut first = start_long_run(&config, &run);
    let pid = first.id();

    for extra in [&[][..], &["--resume"][..], &["--resume", "auto"][..]] {
        let second = train(&config, &run, &[], extra);
        usage_error(&second, &format!("pid {pid} on host"));
        usage_error(&second, "since 20");
    }
    let holder = RunLock::holder(&run).unwrap().expect("held");
    assert!(holder.contains(&format!("pid {pid}")), "{holder}");

    first.kill().unwrap(); // SIGKILL: no handler, no cleanup
    first.wait().unwrap();
    assert_eq!(
        RunLock::holder(&run).unwrap(),
        None,
        "the kernel frees the lock"
    );
    // The killed run's folder is usable at once: resumed from its last checkpoint, or
    // started anew if it died before the first one.
    ok(&train(
        &config,
        &run,
        &["train.epochs=1", "train.log_every=1"],
        &["--resume", "auto"],
    ));
    assert!(run.join("last.safetensors").is_file());
}

#[test]
fn resume_auto_starts_resumes_and_then_has_nothing_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), "single");
    let run = dir.path().join("run");
    let cfg = config.to_str().unwrap();
    let auto = [
        "train",
        "--config",
        cfg,
        "--out",
        run.to_str().unwrap(),
        "--resume",
        "auto",
    ];
    // Empty folder: a new run (stopped after epoch 1 of 2, as a preemption would).
    let first = npr(&auto, &[("NPR_INTERRUPT_AFTER_EPOCHS", "1")]);
    assert_eq!(first.status.code(), Some(130));
    // Half-finished folder: resumed.
    let second = npr(&auto, &[]);
    let err = String::from_utf8_lossy(&second.stderr);
    ok(&second);
    assert!(err.contains("resuming at epoch 2"), "{err}");
    // Finished folder: left alone, exit 0 (a requeue after the end is not a failure).
    let third = npr(&auto, &[]);
    ok(&third);
    assert!(String::from_utf8_lossy(&third.stderr).contains("nothing to do"));
    // Plain --resume still insists on a checkpoint.
    let fresh = dir.path().join("fresh");
    usage_error(
        &train(&config, &fresh, &[], &["--resume"]),
        "has no last.safetensors",
    );
    assert!(!fresh.exists(), "a refused start leaves no folder behind");
}

#[test]
fn a_sweep_leaves_a_held_cell_alone_and_passes_sigterm_on() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), "attention");
    let out = dir.path().join("ablation");
    let cfg = config.to_str().unwrap();
    let sweep = |variants: &str, sets: &[&str]| {
        let mut args = vec!["ablate", "--config", cfg, "--seeds", "0", "--no-test"];
        args.extend(["--variants", variants, "--out", out.to_str().unwrap()]);
        for s in sets {
            args.extend(["--set", s]);
        }
        args.into_iter().map(String::from).collect::<Vec<_>>()
    };

    // A cell held by another process (here: this test) is reported, not trained or failed.
    let held = RunLock::acquire(&out.join("baseline_seed0")).unwrap();
    let args = sweep("baseline", &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(&npr(&args, &[]));
    let summary = std::fs::read_to_string(out.join("ablation.json")).unwrap();
    assert!(
        summary.contains(&format!("running elsewhere (pid {}", std::process::id())),
        "{summary}"
    );
    assert!(!out.join("baseline_seed0/last.safetensors").exists());
    drop(held);

    // SIGTERM to the sweep alone: the running cell saves and the sweep exits 143.
    let mut child = Command::new(npr_bin())
        .args(sweep(
            "learned",
            &["train.epochs=1000", "train.log_every=1"],
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let log = out.join("logs/learned_seed0.log");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !std::fs::read_to_string(&log).is_ok_and(|t| t.contains(" step ")) {
        assert!(Instant::now() < deadline, "the cell never started training");
        std::thread::sleep(Duration::from_millis(100));
    }
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143));
    assert!(out.join("learned_seed0/last.safetensors").is_file());
    let summary = std::fs::read_to_string(out.join("ablation.json")).unwrap();
    assert!(summary.contains("interrupted"), "{summary}");
    assert!(temp_files(&out).is_empty(), "{:?}", temp_files(&out));
}

#[test]
fn a_failed_write_in_npr_test_leaves_no_temp_file_and_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), "attention");
    let run = dir.path().join("run");
    ok(&train(&config, &run, &["train.epochs=1"], &[]));
    let test_out = dir.path().join("test");
    let out = npr(
        &[
            "test",
            "--checkpoint",
            run.to_str().unwrap(),
            "--out",
            test_out.to_str().unwrap(),
        ],
        &[("NPR_TEST_FAIL_WRITE", "attention_weights.npz")],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    // A full disk is the user's to fix: exit 2.
    assert_eq!(out.status.code(), Some(2), "{err}");
    // The message names the file that failed and the folder that was left alone.
    assert!(
        err.contains("attention_weights.npz: No space left")
            && err.contains(&format!("nothing was written to {}", test_out.display())),
        "{err}"
    );
    assert!(!err.contains("drop"), "no drop-time noise: {err}");
    // Nothing at all: no half folder, no staging folder, no temporary file.
    assert!(!test_out.exists());
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().contains("staging"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(
        temp_files(dir.path()).is_empty(),
        "{:?}",
        temp_files(dir.path())
    );
}
