//! `npr synth --reals` end to end (issue 29): a tiny photo benchmark from three photographs of
//! the scikit-image wheel, its option checks, and the split-by-photograph guard of `npr train`
//! on a benchmark whose source list says a training crop comes from a test photograph.
//! The photographs and esrgan-slim come from `scripts/get_photos.sh --small` (run by
//! `scripts/test.sh`); where absent the tests say "skipped", unless `NPR_REQUIRE_UPSAMPLERS`.
use std::path::{Path, PathBuf};

use crate::cli::{npr, ok, train, usage_error};

const PHOTOS: [&str; 3] = ["chelsea.png", "coffee.png", "rocket.jpg"];

/// A folder holding the three photographs, or None (said on stderr) when not fetched.
fn reals(dir: &Path) -> Option<PathBuf> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let from = repo.join("datasets/photos/scikit-image");
    let nets = repo.join("datasets/upsamplers/esrgan-slim/x2/model.json");
    if !PHOTOS.iter().all(|p| from.join(p).is_file()) || !nets.is_file() {
        let why = "skipped: the scikit-image photographs or esrgan-slim are not fetched (scripts/get_photos.sh --small)";
        assert!(
            std::env::var_os("NPR_REQUIRE_UPSAMPLERS").is_none(),
            "{why}"
        );
        eprintln!("{why}");
        return None;
    }
    let reals = dir.join("reals");
    std::fs::create_dir_all(&reals).unwrap();
    for p in PHOTOS {
        std::fs::copy(from.join(p), reals.join(p)).unwrap();
    }
    Some(reals)
}

fn synth(reals: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "synth",
        "--reals",
        reals.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--size",
        "24",
        "--train-per-photo",
        "8",
        "--val-per-photo",
        "4",
        "--test-per-photo",
        "4",
        "--families",
        "nearest_x2,nearest_x4,esrgan_slim_x2,esrgan_slim_x3",
        "--seen",
        "esrgan_slim_x2,nearest_x4",
    ];
    args.extend(extra);
    npr(&args, &[])
}

#[test]
fn a_photo_benchmark_trains_and_a_shared_photograph_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let Some(reals) = reals(dir.path()) else {
        return;
    };
    let bench = dir.path().join("bench");
    let said = ok(&synth(&reals, &bench, &[]));
    assert!(
        said.contains("from 3 photographs (train 1, val 1, test 1; 0 skipped)"),
        "{said}"
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(bench.join("synth.json")).unwrap()).unwrap();
    let fams = manifest["families"].as_array().unwrap();
    let scale = |name: &str| fams.iter().find(|f| f["name"] == name).unwrap()["npr_scale"].as_f64();
    assert_eq!(scale("esrgan_slim_x3"), Some(1.0 / 3.0));
    assert_eq!(scale("nearest_x4"), Some(0.25));

    let config = dir.path().join("photos.yaml");
    std::fs::write(
        &config,
        format!(
            "name: photos\n\
             model: {{ backbone: resnet18, fusion: single, scales: [0.5] }}\n\
             data: {{ dataroot: {d}, load_size: 24, crop_size: 24, workers: 1 }}\n\
             train: {{ epochs: 1, batch_size: 8, log_every: 100 }}\n\
             test: {{ batch_size: 16, sets: [ {{ name: photos, dataroot: {d}/test, resize: false, crop: none }} ] }}\n",
            d = bench.display()
        ),
    )
    .unwrap();
    ok(&train(&config, &dir.path().join("run"), &[], &[]));

    // The source list now says the first training crop comes from the test photograph.
    let sources = bench.join("sources.csv");
    let text = std::fs::read_to_string(&sources).unwrap();
    let test_scene = text
        .lines()
        .find(|l| l.contains(",test,"))
        .and_then(|l| l.split(',').nth(6))
        .unwrap()
        .to_string();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let first_train = lines.iter().position(|l| l.contains(",train,")).unwrap();
    let mut cells: Vec<String> = lines[first_train].split(',').map(String::from).collect();
    cells[6] = test_scene.clone();
    lines[first_train] = cells.join(",");
    std::fs::write(&sources, lines.join("\n") + "\n").unwrap();
    let refused = train(&config, &dir.path().join("run2"), &[], &[]);
    usage_error(&refused, &format!("scene `{test_scene}`"));
    usage_error(&refused, "the training set and the test set \"photos\"");
}

#[test]
fn photo_and_procedural_options_do_not_mix() {
    let dir = tempfile::tempdir().unwrap();
    let Some(reals) = reals(dir.path()) else {
        return;
    };
    let out = dir.path().join("bench");
    usage_error(
        &synth(&reals, &out, &["--preset", "multiscale"]),
        "--preset applies to the procedural benchmark",
    );
    usage_error(
        &npr(
            &[
                "synth",
                "--out",
                out.to_str().unwrap(),
                "--test-per-photo",
                "3",
            ],
            &[],
        ),
        "--test-per-photo applies to a photo benchmark: add --reals DIR",
    );
    let (r, o) = (reals.to_str().unwrap(), out.to_str().unwrap());
    usage_error(
        &npr(&["synth", "--reals", r, "--out", o, "--size", "40"], &[]),
        "multiple of 24",
    );
    usage_error(
        &synth(&reals, &out, &["--seen", "esrgan_huge_x2"]),
        "unknown family `esrgan_huge_x2`",
    );
    assert!(!out.join("synth.json").exists());
}

/// Broken files among the photographs are skipped, each named with why, before anything is
/// written; input errors found by a `--force` run leave the earlier benchmark in place.
#[test]
fn broken_photographs_are_skipped_and_a_failed_run_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let Some(reals) = reals(dir.path()) else {
        return;
    };
    std::fs::write(reals.join("broken.jpg"), b"not a JPEG at all").unwrap();
    // A readable header with its pixel data cut off: only a full decode finds it.
    let png = std::fs::read(reals.join("chelsea.png")).unwrap();
    std::fs::write(reals.join("truncated.png"), &png[..png.len() / 3]).unwrap();
    let bench = dir.path().join("bench");
    let run = synth(&reals, &bench, &[]);
    let said = ok(&run);
    assert!(said.contains("from 5 photographs"), "{said}");
    assert!(said.contains("2 skipped"), "{said}");
    let err = String::from_utf8_lossy(&run.stderr);
    for name in [
        "broken.jpg: skipped, not decodable",
        "truncated.png: skipped, not decodable",
    ] {
        assert!(err.contains(name), "{name}: {err}");
    }
    let manifest = std::fs::read(bench.join("synth.json")).unwrap();

    // --force, but only two usable photographs: refused before --out is touched.
    for p in ["coffee.png", "rocket.jpg"] {
        std::fs::remove_file(reals.join(p)).unwrap();
    }
    std::fs::copy(reals.join("chelsea.png"), reals.join("chelsea_again.png")).unwrap();
    usage_error(&synth(&reals, &bench, &["--force"]), "at least 3");
    assert_eq!(std::fs::read(bench.join("synth.json")).unwrap(), manifest);
    assert!(bench.join("sources.csv").is_file() && bench.join("train").is_dir());

    let inside = reals.join("bench");
    usage_error(&synth(&reals, &inside, &[]), "is inside --reals");
    usage_error(
        &synth(&reals, &bench, &["--force", "--families", "nearest_x5"]),
        "unknown family `nearest_x5` in `families`",
    );
    assert_eq!(std::fs::read(bench.join("synth.json")).unwrap(), manifest);
}
