//! `scripts/reproduce_results.sh --full --dry-run` on fixture trees in the official layouts:
//! a complete tree prints the plan with the images per set; a broken one exits 2 and names
//! what is missing and where it is expected.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use npr::config::Suites;

use crate::common::npr_bin;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A 16-px PNG whose pixels depend on `seed`, so no two fixture files share their bytes.
fn png(path: &Path, seed: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let img = image::RgbImage::from_fn(16, 16, |x, y| {
        let v = (x * 31 + y * 17 + seed * 101) ^ (seed * 7919);
        image::Rgb([v as u8, (v >> 3) as u8, (v >> 5) as u8])
    });
    img.save(path).unwrap();
}

/// Every folder of configs/test_suites.yaml under `root`, two images per label folder.
fn official_tree(root: &Path) {
    let suites = Suites::load(&repo().join("configs/test_suites.yaml")).unwrap();
    let mut seed = 0;
    let mut put = |dir: PathBuf| {
        for label in ["0_real", "1_fake"] {
            for i in 0..2 {
                seed += 1;
                png(&dir.join(label).join(format!("{i}.png")), seed);
            }
        }
    };
    for split in ["train", "val"] {
        for class in &suites.train.classes {
            put(root.join(&suites.train.dataroot).join(split).join(class));
        }
    }
    for set in &suites.sets {
        let generators = if set.generators.is_empty() {
            vec!["some_generator".to_string()]
        } else {
            set.generators.clone()
        };
        for g in generators {
            put(root.join(&set.dataroot).join(g));
        }
    }
}

fn dry_run(data: &Path, out: &Path) -> Output {
    Command::new("bash")
        .arg(repo().join("scripts/reproduce_results.sh"))
        .args([
            "--full",
            "--dry-run",
            "--seeds",
            "0",
            "--device",
            "cpu",
            "--data",
        ])
        .arg(data)
        .arg("--out")
        .arg(out)
        // Small timing steps for the estimate.
        .args([
            "--set",
            "data.load_size=16",
            "--set",
            "data.crop_size=16",
            "--set",
            "train.batch_size=4",
        ])
        .env("NPR", npr_bin())
        .current_dir(repo())
        .output()
        .unwrap()
}

#[test]
fn full_dry_run_prints_the_plan_on_an_official_tree_and_names_what_a_broken_one_lacks() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    official_tree(&data);

    let out = dry_run(&data, &dir.path().join("runs"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    for needle in [
        "training ",
        "32 images (16 real, 16 fake)", // 4 classes × 2 labels × 2 images, train and val
        "test \"GANGen-Detection\"",
        "36 images (18 real, 18 fake)", // 9 generators × 4
        "[resize=no, crop=none]",
        "progan ",
        "baseline_seed0",
        "attention_seed0",
        "estimated time:",
    ] {
        assert!(
            stdout.contains(needle),
            "{needle:?} missing from:\n{stdout}"
        );
    }
    assert!(
        !dir.path().join("runs/baseline_seed0").exists(),
        "a dry run trains nothing"
    );

    // Break it: no validation split, one GANGen generator gone, one suite absent.
    std::fs::remove_dir_all(data.join("ForenSynths_train_val/val")).unwrap();
    std::fs::remove_dir_all(data.join("GANGen-Detection/STGAN")).unwrap();
    std::fs::remove_dir_all(data.join("UniversalFakeDetect")).unwrap();
    let out = dry_run(&data, &dir.path().join("runs"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{stderr}");
    let gangen = data.join("GANGen-Detection");
    for needle in [
        "3 problem(s)".to_string(),
        "ForenSynths_train_val".to_string(),
        "val".to_string(),
        format!("{}/STGAN/0_real", gangen.display()),
        format!(
            "{} is not a folder",
            data.join("UniversalFakeDetect").display()
        ),
        "glide_100_10".to_string(),
    ] {
        assert!(
            stderr.contains(&needle),
            "{needle:?} missing from:\n{stderr}"
        );
    }
}
