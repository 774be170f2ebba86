//! End to end through the binary on a tiny synthetic benchmark: synth → train → test →
//! predict, exact resume, determinism, and the exit codes of bad input.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use npr::checkpoint::read_safetensors;
use tch::Tensor;

use crate::common::{npr_bin, run_python};

pub fn npr(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(npr_bin());
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("running npr")
}

pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "npr failed ({:?}):\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `npr train --config CONFIG --out OUT [--set S]... [EXTRA]...`
pub fn train(config: &Path, out: &Path, sets: &[&str], extra: &[&str]) -> Output {
    let mut args = vec![
        "train",
        "--config",
        config.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    for s in sets {
        args.extend(["--set", s]);
    }
    args.extend(extra);
    npr(&args, &[])
}

/// Exit code 2 with a message that mentions `needle`.
pub fn usage_error(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "expected exit 2, stderr: {err}");
    assert!(
        err.contains(needle),
        "stderr does not mention {needle:?}: {err}"
    );
}

/// One tiny benchmark shared by the tests (32 px, 2 classes).
pub fn tiny_synth() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("synth");
        ok(&npr(
            &[
                "synth",
                "--out",
                root.to_str().unwrap(),
                "--seed",
                "3",
                "--size",
                "32",
                "--classes",
                "2",
                "--train-per-class",
                "12",
                "--val-per-class",
                "6",
                "--test-per-family",
                "5",
            ],
            &[],
        ));
        dir
    })
    .path()
}

/// A tiny config on the tiny benchmark.
pub fn tiny_config(dir: &Path, fusion: &str) -> PathBuf {
    let data = tiny_synth().join("synth");
    let scales = if fusion == "single" {
        "[0.5]"
    } else {
        "[0.25, 0.5, 1.0]"
    };
    let yaml = format!(
        "name: tiny\nmodel: {{ backbone: resnet18, fusion: {fusion}, scales: {scales} }}\n\
         data: {{ dataroot: {d}, load_size: 32, crop_size: 24, workers: 2 }}\n\
         train: {{ epochs: 2, batch_size: 8, log_every: 3, seed: 5 }}\n\
         test: {{ batch_size: 16, sets: [ {{ name: synth, dataroot: {d}/test, resize: false, crop: none }} ] }}\n",
        d = data.display()
    );
    let path = dir.join(format!("tiny_{fusion}.yaml"));
    std::fs::write(&path, yaml).unwrap();
    path
}

/// The model tensors of a checkpoint (optimizer state excluded).
pub fn model_weights(path: &Path) -> HashMap<String, Tensor> {
    let (t, _) = read_safetensors(path).unwrap();
    t.into_iter()
        .filter(|(k, _)| !k.starts_with("optim."))
        .collect()
}

pub fn assert_identical(a: &Path, b: &Path) {
    let (wa, wb) = (model_weights(a), model_weights(b));
    assert_eq!(wa.len(), wb.len());
    for (k, t) in &wa {
        assert!(
            t.equal(&wb[k]),
            "{k} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
}

fn csv_header(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn train_then_test_writes_every_output() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), "attention");
    let run = dir.path().join("run");
    let stdout = ok(&train(&config, &run, &[], &[]));
    assert!(stdout.contains("done: 2 epochs"), "{stdout}");
    for f in [
        "config.yaml",
        "meta.json",
        "train_log.csv",
        "skipped.tsv",
        "best.safetensors",
        "last.safetensors",
    ] {
        assert!(run.join(f).is_file(), "run folder lacks {f}");
    }
    assert_eq!(
        csv_header(&run.join("train_log.csv")),
        "kind,epoch,step,loss,lr,images_per_s,val_loss,val_acc,val_ap,w_real_0.25,w_fake_0.25,w_real_0.5,w_fake_0.5,w_real_1,w_fake_1"
    );
    let log = std::fs::read_to_string(run.join("train_log.csv")).unwrap();
    assert_eq!(log.lines().filter(|l| l.starts_with("epoch,")).count(), 2);
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("meta.json")).unwrap()).unwrap();
    for key in [
        "seed",
        "git_revision",
        "device",
        "libtorch_version",
        "dataset",
    ] {
        assert!(meta.get(key).is_some(), "meta.json lacks {key}");
    }

    // A refused overwrite, then the test command from the run folder alone.
    usage_error(&train(&config, &run, &[], &[]), "already exists");
    let out = dir.path().join("test");
    let ckpt = run.join("best.safetensors");
    let stdout = ok(&npr(
        &[
            "test",
            "--checkpoint",
            ckpt.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--workers",
            "2",
        ],
        &[],
    ));
    assert!(stdout.contains("generalization gap"), "{stdout}");
    // (file, header) of every CSV `npr test` writes (ARCHITECTURE.md, Outputs).
    let headers = [
        ("metrics.csv", "perturbation,set,generator,seen,policy,n_real,n_fake,acc,ap,auc,f1,precision,recall,r_acc,f_acc,eer,best_acc_oracle,best_threshold_oracle,tpr_at_fpr_1pct,tpr_at_fpr_5pct"),
        (
            "predictions.csv",
            "path,set,generator,label,logit,score,pred,perturbation",
        ),
        ("confusion.csv", "perturbation,set,generator,tn,fp,fn,tp"),
        ("roc.csv", "set,generator,fpr,tpr,threshold_logit,threshold"),
        (
            "pr.csv",
            "set,generator,recall,precision,threshold_logit,threshold",
        ),
        (
            "misclassified.csv",
            "perturbation,set,generator,path,label,logit,score,confidence",
        ),
    ];
    for (file, header) in headers {
        assert_eq!(csv_header(&out.join(file)), header, "{file}");
    }
    let metrics = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert_eq!(
        metrics.lines().count(),
        1 + 7 + 1,
        "7 families and the mean:\n{metrics}"
    );
    assert!(!metrics.to_lowercase().contains("nan"), "{metrics}");
    assert!(
        metrics.contains(",seen,") && metrics.contains(",unseen,"),
        "seen flags from synth.json:\n{metrics}"
    );
    let predictions = std::fs::read_to_string(out.join("predictions.csv")).unwrap();
    assert_eq!(predictions.lines().count(), 1 + 7 * 10);
    // The folder is complete and names the weights it scored.
    let done: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("complete.json")).unwrap()).unwrap();
    assert_eq!(done["levels"], serde_json::json!(["none"]));
    assert_eq!(done["synthetic"], true);
    assert_eq!(done["checkpoint_sha256"].as_str().unwrap().len(), 64);

    // numpy reads the NPZ with the documented arrays and shapes.
    let check = r#"
import sys, numpy as np
z = np.load(sys.argv[1])
n = len(z["labels"])
assert z["weights"].shape == (n, 3, 3), z["weights"].shape
assert z["scores"].shape == (n,) and z["generator_index"].shape == (n,)
assert z["logits"].shape == (n,) and ((z["logits"] > 0) == (z["scores"] > 0.5)).all()
assert len(z["generator_names"]) == 7 and z["generator_names"].dtype.kind == "U"
assert z["features"].shape[0] == len(z["feature_index"]) and z["features"].shape[1] == 512
assert list(z["scales"]) == [0.25, 0.5, 1.0]
assert ((z["weights"] > 0) & (z["weights"] < 1)).all()
assert (z["weights"].dtype, z["labels"].dtype, z["generator_index"].dtype) == ("<f4", "|u1", "<i8")
assert len(z["paths"]) == n and z["paths"].dtype.kind == "U" and list(z["perturbation"]) == ["none"]
print(n)
"#;
    let script = dir.path().join("check_npz.py");
    std::fs::write(&script, check).unwrap();
    let n = run_python(
        script.to_str().unwrap(),
        &[out.join("attention_weights.npz").to_str().unwrap()],
    );
    assert_eq!(n.trim(), "70");

    // A sweep writes one block per level; predict scores a folder as JSON lines.
    let sweep = dir.path().join("sweep");
    ok(&npr(
        &[
            "test",
            "--checkpoint",
            ckpt.to_str().unwrap(),
            "--out",
            sweep.to_str().unwrap(),
            "--sweep",
            "jpeg=50,95",
        ],
        &[],
    ));
    let metrics = std::fs::read_to_string(sweep.join("metrics.csv")).unwrap();
    assert_eq!(
        metrics
            .lines()
            .filter(|l| l.starts_with("jpeg=50,"))
            .count(),
        8
    );
    assert_eq!(
        metrics
            .lines()
            .filter(|l| l.starts_with("jpeg=95,"))
            .count(),
        8
    );
    // Per-image files carry their level: every level's predictions, named.
    let per_image = std::fs::read_to_string(sweep.join("predictions.csv")).unwrap();
    for level in ["jpeg=50", "jpeg=95"] {
        let rows = per_image
            .lines()
            .filter(|l| l.ends_with(&format!(",{level}")))
            .count();
        assert_eq!(rows, 7 * 10, "{level} rows in the sweep's predictions.csv");
    }
    let folder = tiny_synth().join("synth/test/nearest_x2/1_fake");
    let stdout = ok(&npr(
        &[
            "predict",
            "--checkpoint",
            ckpt.to_str().unwrap(),
            "--json",
            folder.to_str().unwrap(),
        ],
        &[],
    ));
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[0]["weights"].as_array().unwrap().len(), 3);
    // One scorer: predict gives an image the logit `npr test` gave it.
    let first = lines[0]["path"].as_str().unwrap();
    let row = predictions
        .lines()
        .find(|l| l.starts_with(&format!("{first},")))
        .unwrap_or_else(|| panic!("{first} not in predictions.csv"));
    let logit: f64 = row.split(',').nth(4).unwrap().parse().unwrap();
    let predicted = lines[0]["logit"].as_f64().unwrap();
    // float32 through a ResNet: the batch's size picks oneDNN's kernels, and a batch of
    // one (predict) and a batch of many (test) differ by ~1e-6 on some CPUs. Any real
    // divergence in preprocessing or weights moves a logit by far more than 1e-5.
    assert!(
        (logit - predicted).abs() < 1e-5,
        "test {logit} vs predict {predicted}"
    );
}

#[test]
fn resume_after_interruption_reaches_the_uninterrupted_weights() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), "learned");
    let cfg = config.to_str().unwrap();
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    ok(&train(&config, &a, &[], &[]));
    // Same seed, same weights, bit for bit (CPU).
    ok(&train(&config, &c, &[], &[]));
    assert_identical(&a.join("last.safetensors"), &c.join("last.safetensors"));

    // Interrupted after epoch 1 (the SIGINT path: save last, exit 130), then resumed.
    let out = npr(
        &["train", "--config", cfg, "--out", b.to_str().unwrap()],
        &[("NPR_INTERRUPT_AFTER_EPOCHS", "1")],
    );
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--resume"));
    ok(&train(&config, &b, &[], &["--resume"]));
    assert_identical(&a.join("last.safetensors"), &b.join("last.safetensors"));
    let log = std::fs::read_to_string(b.join("train_log.csv")).unwrap();
    assert_eq!(
        log.lines().filter(|l| l.starts_with("epoch,")).count(),
        2,
        "{log}"
    );
}

#[test]
fn bad_input_is_exit_2_with_a_message_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), "single");
    let cfg = config.to_str().unwrap();
    let out_path = dir.path().join("x");
    let out = out_path.to_str().unwrap();
    // (override, what the message must name)
    let bad_overrides = [
        ("model.scales=[0.5,2.0]", "model.scales[1]"),
        ("model.fusion=attn", "model.fusion"),
        ("data.crop_size=64", "data.crop_size"),
        ("data.dataroot=/nonexistent", "/nonexistent"),
    ];
    for (set, needle) in bad_overrides {
        usage_error(&train(&config, &out_path, &[set], &[]), needle);
    }
    usage_error(
        &npr(&["train", "--config", "/nonexistent.yaml"], &[]),
        "/nonexistent.yaml",
    );

    usage_error(
        &npr(&["train", "--config", cfg, "--out", out, "--resume"], &[]),
        "--resume",
    );
    usage_error(
        &npr(
            &[
                "test",
                "--checkpoint",
                "/nonexistent.safetensors",
                "--dataroot",
                ".",
            ],
            &[],
        ),
        "/nonexistent.safetensors",
    );
    usage_error(
        &npr(&["test", "--checkpoint", cfg, "--sweep", "jpeg=0"], &[]),
        "JPEG quality",
    );
    usage_error(
        &npr(&["report", "--runs", out, "--out", out], &[]),
        "--runs",
    );
    usage_error(
        &npr(&["ablate", "--config", cfg, "--shard", "2/2"], &[]),
        "--shard",
    );
    usage_error(
        &npr(&["ablate", "--config", cfg, "--variants", "attn"], &[]),
        "attn",
    );
    usage_error(
        &npr(
            &[
                "synth",
                "--out",
                tiny_synth().join("synth").to_str().unwrap(),
            ],
            &[],
        ),
        "--force",
    );
    // A training set with one class only is refused, naming what was found (its images are
    // copies of test images, so the config's test set is left out here).
    let one_class = dir.path().join("oneclass/train/cls/0_real");
    std::fs::create_dir_all(&one_class).unwrap();
    for e in std::fs::read_dir(tiny_synth().join("synth/test/nearest_x2/0_real")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, one_class.join(p.file_name().unwrap())).unwrap();
    }
    let root = format!("data.dataroot={}", dir.path().join("oneclass").display());
    usage_error(
        &train(
            &config,
            &out_path,
            &[&root, "data.val_fraction=0.5", "test.sets=[]"],
            &[],
        ),
        "0 fake",
    );
    // A folder without label folders says what it found.
    let empty = dir.path().join("nolabels/a");
    std::fs::create_dir_all(&empty).unwrap();
    usage_error(
        &npr(
            &[
                "train",
                "--config",
                cfg,
                "--out",
                out,
                "--set",
                &format!("data.dataroot={}", dir.path().join("nolabels").display()),
                "--set",
                "data.train_split=a",
            ],
            &[],
        ),
        "0_real",
    );
}

#[test]
fn one_class_sets_give_na_not_nan() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), "single");
    let run = dir.path().join("run");
    ok(&train(&config, &run, &["train.epochs=1"], &[]));
    // Only the reals of one family.
    let reals = dir.path().join("reals_only/onlyreal");
    std::fs::create_dir_all(reals.join("0_real")).unwrap();
    for e in std::fs::read_dir(tiny_synth().join("synth/test/nearest_x2/0_real")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, reals.join("0_real").join(p.file_name().unwrap())).unwrap();
    }
    let out = dir.path().join("t");
    let ckpt = run.join("best.safetensors");
    ok(&npr(
        &[
            "test",
            "--checkpoint",
            ckpt.to_str().unwrap(),
            "--dataroot",
            dir.path().join("reals_only").to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--no-resize",
        ],
        &[],
    ));
    let metrics = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert!(
        metrics.contains("n/a") && !metrics.to_lowercase().contains("nan"),
        "{metrics}"
    );
}

#[test]
fn sigterm_saves_last_and_exits_143() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), "single");
    let run = dir.path().join("run");
    let mut child = Command::new(npr_bin())
        .args([
            "train",
            "--config",
            config.to_str().unwrap(),
            "--out",
            run.to_str().unwrap(),
        ])
        .args(["--set", "train.epochs=1000", "--set", "train.log_every=1"])
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    // Wait until training steps are running, then ask it to stop as a scheduler would.
    for line in lines.by_ref() {
        if line.unwrap().contains(" step ") {
            break;
        }
    }
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143), "{rest:?}");
    assert!(rest.iter().any(|l| l.contains("--resume")), "{rest:?}");
    let (_, meta) = read_safetensors(&run.join("last.safetensors")).unwrap();
    assert!(meta["step"].parse::<u64>().unwrap() >= 1);
}

#[test]
fn a_diverging_loss_stops_with_a_clear_error_and_no_bad_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), "single");
    // An absurd learning rate makes the loss NaN within a few steps.
    let diverging = dir.path().join("diverging");
    let out = train(
        &config,
        &diverging,
        &["train.optimizer.lr=1.0e+30", "train.log_every=1"],
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("training loss became"), "{err}");
    assert!(
        !diverging.join("last.safetensors").exists()
            && !diverging.join("best.safetensors").exists()
    );
}

#[test]
fn ablation_runs_resumes_and_skips_its_cells() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), "attention");
    let out = dir.path().join("ablation");
    let args = [
        "ablate",
        "--config",
        config.to_str().unwrap(),
        "--seeds",
        "0",
        "--variants",
        "baseline,learned",
        "--out",
        out.to_str().unwrap(),
        // The official recipe evaluates `last`, so training on always changes the weights
        // `npr test` scores (checked at the end).
        "--set",
        "train.recipe=official",
    ];
    // Every child is interrupted after its first epoch: the sweep reports the cells as failed…
    let first = npr(&args, &[("NPR_INTERRUPT_AFTER_EPOCHS", "1")]);
    assert_eq!(
        first.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    // …and the same command continues them, then tests them.
    ok(&npr(&args, &[]));
    let summary: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(out.join("ablation.json")).unwrap()).unwrap();
    let statuses: Vec<&str> = summary
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["resumed, tested", "resumed, tested"],
        "{summary:?}"
    );
    for cell in ["baseline_seed0", "learned_seed0"] {
        assert!(
            out.join(cell).join("test/metrics.csv").is_file(),
            "{cell} was not tested"
        );
    }
    let baseline = std::fs::read_to_string(out.join("baseline_seed0/config.yaml")).unwrap();
    assert!(baseline.contains("fusion: single"), "{baseline}");
    // A finished sweep is left alone.
    ok(&npr(&args, &[]));
    let summary = std::fs::read_to_string(out.join("ablation.json")).unwrap();
    assert_eq!(summary.matches("done before").count(), 2, "{summary}");
    // More epochs: the cells train on and are tested again (their `last` weights changed),
    // so the test folder scores the weights the run holds now (complete.json names their
    // SHA-256), never the old scores beside new weights.
    let sha = |run: &std::path::Path| {
        npr::eval::completion::sha256_file(&npr::checkpoint::resolve(run).unwrap()).unwrap()
    };
    let before: Vec<String> = ["baseline_seed0", "learned_seed0"]
        .iter()
        .map(|c| sha(&out.join(c)))
        .collect();
    let longer: Vec<&str> = args
        .iter()
        .copied()
        .chain(["--set", "train.epochs=3"])
        .collect();
    ok(&npr(&longer, &[]));
    let summary: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(out.join("ablation.json")).unwrap()).unwrap();
    for (i, cell) in ["baseline_seed0", "learned_seed0"].iter().enumerate() {
        let run = out.join(cell);
        let status = summary[i]["status"].as_str().unwrap();
        let changed = sha(&run) != before[i];
        assert!(
            changed && status == "resumed, tested",
            "{cell}: {status}, weights changed: {changed}"
        );
        let log = std::fs::read_to_string(run.join("train_log.csv")).unwrap();
        assert_eq!(
            log.lines().filter(|l| l.starts_with("epoch,")).count(),
            3,
            "{cell}"
        );
        let done: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(run.join("test/complete.json")).unwrap())
                .unwrap();
        let weights = npr::checkpoint::resolve(&run).unwrap();
        assert_eq!(
            done["checkpoint_sha256"].as_str().unwrap(),
            npr::eval::completion::sha256_file(&weights).unwrap(),
            "{cell}: the test folder is not of the current weights"
        );
    }
}

#[test]
fn a_killed_or_failed_test_leaves_the_previous_complete_folder_or_the_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), "attention");
    let run = dir.path().join("run");
    ok(&train(&config, &run, &["train.epochs=1"], &[]));
    let test = |env: &[(&str, &str)]| npr(&["test", "--checkpoint", run.to_str().unwrap()], env);
    ok(&test(&[]));
    let out = run.join("test");
    let marker = || std::fs::read_to_string(out.join("complete.json")).unwrap();
    let metrics = || std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    let (first_marker, first_metrics) = (marker(), metrics());
    // A write that fails half-way (a full disk) in the last file: the old folder stays,
    // whole, and the staging folder is gone.
    let failed = test(&[("NPR_TEST_FAIL_WRITE", "summary.json")]);
    assert_eq!(
        failed.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&failed.stderr)
    );
    assert_eq!(
        (marker(), metrics()),
        (first_marker.clone(), first_metrics.clone())
    );
    let debris = || -> Vec<String> {
        std::fs::read_dir(&run)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n.contains(".staging-"))
            .collect()
    };
    assert_eq!(debris(), Vec::<String>::new());
    // kill -9 at several moments: whatever the moment, `test/` is a complete folder.
    for delay_ms in [150, 400, 800, 1500] {
        let mut child = std::process::Command::new(crate::common::npr_bin())
            .args(["test", "--checkpoint", run.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        let done: serde_json::Value = serde_json::from_str(&marker()).unwrap();
        assert!(done["checkpoint_sha256"].is_string(), "after {delay_ms} ms");
        assert_eq!(
            metrics().lines().count(),
            first_metrics.lines().count(),
            "after {delay_ms} ms"
        );
    }
    // The next test clears what the killed ones left and publishes a new folder.
    ok(&test(&[]));
    assert_eq!(debris(), Vec::<String>::new());
    assert_eq!(metrics(), first_metrics, "the same weights score the same");
    // A single perturbation never replaces the clean results: it gets a folder of its own.
    ok(&npr(
        &[
            "test",
            "--checkpoint",
            run.to_str().unwrap(),
            "--jpeg-quality",
            "75",
        ],
        &[],
    ));
    assert_eq!(metrics(), first_metrics);
    let jpeg = std::fs::read_to_string(run.join("test_jpeg_75/metrics.csv")).unwrap();
    assert!(
        jpeg.lines().skip(1).all(|l| l.starts_with("jpeg=75,")),
        "{jpeg}"
    );
    // An --out that would replace the run itself, or a folder npr test did not write, is
    // refused before any work, and nothing is touched.
    let run_s = run.to_str().unwrap();
    usage_error(
        &npr(&["test", "--checkpoint", run_s, "--out", run_s], &[]),
        "holds",
    );
    let foreign = dir.path().join("notes");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(foreign.join("todo.txt"), "keep me").unwrap();
    usage_error(
        &npr(
            &[
                "test",
                "--checkpoint",
                run_s,
                "--out",
                foreign.to_str().unwrap(),
            ],
            &[],
        ),
        "did not write",
    );
    assert_eq!(
        std::fs::read_to_string(foreign.join("todo.txt")).unwrap(),
        "keep me"
    );
    assert!(run.join("best.safetensors").is_file() || run.join("last.safetensors").is_file());
}
