//! Disk and path errors found before the work, with the exit codes README.md promises: an
//! unwritable `--out` is exit 2 naming it (train, test, predict --maps, ablate, report,
//! synth), a disk too small for the checkpoints or the test's results stops before the
//! first epoch or image, a full disk mid-run is exit 2, a stop whose save fails still exits
//! 128 + signal, and a signal during a start leaves no folder that looks like a run.
//!
//! Tests may run as root, where permissions do not stop writes: the unwritable folder is a
//! path under a regular file, and a small disk is the `NPR_TEST_FREE_BYTES` hook.
use std::path::{Path, PathBuf};

use crate::cli::{npr, ok, tiny_config, tiny_synth, train, usage_error};

/// The shared tiny checkpoint, copied out of its run folder so that `npr test` takes no
/// lock another test could be holding.
fn standalone_checkpoint(dir: &Path) -> PathBuf {
    let copy = dir.join("model.safetensors");
    std::fs::copy(crate::serve::checkpoint(), &copy).unwrap();
    copy
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn an_unwritable_out_is_exit_2_naming_it_for_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a_file");
    std::fs::write(&file, "not a folder").unwrap();
    let bad = file.join("sub");
    let bad = bad.to_str().unwrap();
    let ckpt = standalone_checkpoint(dir.path());
    let ckpt = ckpt.to_str().unwrap();
    let data = tiny_synth().join("synth/test");
    let image = data.join("nearest_x2/1_fake/00000_landscape.png");
    assert!(image.is_file(), "{}", image.display());
    let config = tiny_config(dir.path(), "attention");
    let runs = dir.path().join("runs");
    std::fs::create_dir(&runs).unwrap();
    let commands: [Vec<&str>; 6] = [
        vec!["train", "--config", config.to_str().unwrap(), "--out", bad],
        vec![
            "test",
            "--checkpoint",
            ckpt,
            "--dataroot",
            data.to_str().unwrap(),
            "--out",
            bad,
        ],
        vec![
            "predict",
            "--checkpoint",
            ckpt,
            image.to_str().unwrap(),
            "--maps",
            bad,
        ],
        vec!["ablate", "--config", config.to_str().unwrap(), "--out", bad],
        vec!["report", "--runs", runs.to_str().unwrap(), "--out", bad],
        vec![
            "synth",
            "--out",
            bad,
            "--size",
            "32",
            "--classes",
            "1",
            "--train-per-class",
            "1",
        ],
    ];
    for args in commands {
        let out = npr(&args, &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "npr {}: {err}", args[0]);
        // `npr test` names its hidden staging folder beside --out, after --out itself.
        assert!(
            err.contains(bad),
            "npr {} does not name {bad}: {err}",
            args[0]
        );
    }
    assert_eq!(
        names(dir.path()),
        ["a_file", "model.safetensors", "runs", "tiny_attention.yaml"]
    );
}

#[test]
fn a_disk_too_small_for_the_checkpoints_stops_before_the_first_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), "attention");
    let run = dir.path().join("run");
    let small = [("NPR_TEST_FREE_BYTES", "100000")];
    let args = [
        "train",
        "--config",
        config.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
    ];
    let out = npr(&args, &small);
    usage_error(&out, "nothing was trained");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(run.to_str().unwrap()) && err.contains("100.0 kB free"),
        "{err}"
    );
    assert!(!err.contains("epoch 1"), "an epoch ran: {err}");
    // The start created the folder; it leaves none behind.
    assert!(!run.exists(), "{:?}", names(&run));
    // `npr test`: its results do not fit either, so nothing is scored.
    let ckpt = standalone_checkpoint(dir.path());
    let data = tiny_synth().join("synth/test");
    let test_out = dir.path().join("test");
    let out = npr(
        &[
            "test",
            "--checkpoint",
            ckpt.to_str().unwrap(),
            "--dataroot",
            data.to_str().unwrap(),
            "--out",
            test_out.to_str().unwrap(),
        ],
        &small,
    );
    usage_error(&out, "nothing was scored");
    assert!(!test_out.exists());
}

#[test]
fn a_full_disk_mid_run_is_exit_2_and_a_stop_whose_save_fails_is_still_a_stop() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), "attention");
    let (cfg, run) = (config.to_str().unwrap(), dir.path().join("run"));
    let args = ["train", "--config", cfg, "--out", run.to_str().unwrap()];
    // The first checkpoint write fails half-way, as on a full disk: exit 2, naming it.
    let out = npr(&args, &[("NPR_TEST_FAIL_WRITE", "best.safetensors")]);
    usage_error(&out, "best.safetensors: No space left on device");
    // SIGTERM at step 1, and saving `last` fails: still 143, so a job script requeues
    // from the last whole checkpoint (here: none, the run starts again).
    let again = [args.as_slice(), &["--overwrite"]].concat();
    let env = [
        ("NPR_TEST_SIGTERM_AT_STEP", "1"),
        ("NPR_TEST_FAIL_WRITE", "last.safetensors"),
    ];
    let out = npr(&again, &env);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "{err}");
    assert!(
        err.contains("last.safetensors: No space left on device"),
        "{err}"
    );
    assert!(!run.join("last.safetensors").exists());
}

#[test]
fn a_signal_during_start_up_exits_130_and_leaves_no_run_folder() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), "attention");
    let cfg = config.to_str().unwrap();
    // After the data and its checks (only the lock file in the folder), and after the
    // run folder's files and the room check (config, meta, log).
    for stage in ["data", "run"] {
        let run = dir.path().join(format!("new_{stage}"));
        let out = npr(
            &["train", "--config", cfg, "--out", run.to_str().unwrap()],
            &[("NPR_TEST_SIGINT_AT", stage)],
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(130), "{stage}: {err}");
        assert!(err.contains("stopped during start-up"), "{err}");
        assert!(!run.exists(), "{stage}: left {:?}", names(&run));
    }
    // A run that exists keeps everything it had; only the lock file goes.
    let run = dir.path().join("existing");
    ok(&train(&config, &run, &["train.epochs=1"], &[]));
    let before = names(&run);
    let resume = [
        "train",
        "--config",
        cfg,
        "--out",
        run.to_str().unwrap(),
        "--resume",
        "--set",
        "train.epochs=2",
    ];
    let out = npr(&resume, &[("NPR_TEST_SIGINT_AT", "run")]);
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(names(&run), before);
}
