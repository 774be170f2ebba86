//! One scoring policy (issue 27): for one checkpoint and one file, `npr test`, `npr
//! predict` and `npr serve` give the same logit by default — the checkpoint's test
//! transform — and each names the policy it used. The checkpoint trains at load_size 32
//! and tests at full size; the image is 64 px, so a command that resized would differ.
use std::path::Path;

use serde_json::Value;

use crate::cli::{npr, ok};
use crate::serve::{checkpoint, image, predict_json, Server};

/// A 64-px copy of a 32-px test image.
fn upscaled(from: &str, to: &Path) {
    let img = npr::data::decode_file(&image(from), &Default::default()).unwrap();
    let big = image::imageops::resize(&img, 64, 64, image::imageops::FilterType::Nearest);
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    big.save(to).unwrap();
}

/// The logit `npr test` wrote for the file named `name`, and its stderr.
fn test_logit(root: &Path, out: &Path, name: &str, extra: &[&str]) -> (f64, String) {
    let mut args = vec![
        "test",
        "--checkpoint",
        checkpoint().to_str().unwrap(),
        "--device",
        "cpu",
    ];
    args.extend([
        "--dataroot",
        root.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    args.extend(extra);
    let output = npr(&args, &[]);
    ok(&output);
    let csv = std::fs::read_to_string(out.join("predictions.csv")).unwrap();
    let mut lines = csv.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |key: &str| head.iter().position(|h| *h == key).unwrap();
    let row: Vec<&str> = lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .find(|r| r[col("path")].ends_with(name))
        .unwrap_or_else(|| panic!("{name} not in {csv}"));
    let logit = row[col("logit")].parse().unwrap();
    (logit, String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn test_predict_and_serve_give_one_logit_and_name_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("agree");
    let file = root.join("gen/1_fake/big.png");
    upscaled("nearest_x2/1_fake/00000_landscape.png", &file);
    upscaled(
        "nearest_x2/0_real/00000_landscape.png",
        &root.join("gen/0_real/big_real.png"),
    );
    let policy = "full size, no crop (the checkpoint's test transform)";

    let (tested, stderr) = test_logit(&root, &dir.path().join("t"), "1_fake/big.png", &[]);
    assert!(
        stderr.contains(&format!("preprocessing {policy}")),
        "{stderr}"
    );

    let predicted = predict_json(&file);
    assert_eq!(predicted["preprocessing"], policy);

    let server = Server::start(&[]);
    let (status, served) = server.request("POST", "/api/predict", &std::fs::read(&file).unwrap());
    assert_eq!(status, 200, "{served}");
    assert_eq!(served["preprocessing"], policy);
    let (_, health) = server.request("GET", "/api/health", b"");
    assert_eq!(health["preprocessing"], policy);

    let logit = |v: &Value| v["logit"].as_f64().unwrap();
    for (what, other) in [("predict", logit(&predicted)), ("serve", logit(&served))] {
        assert!(
            (tested - other).abs() < 1e-5,
            "npr test {tested} vs npr {what} {other}"
        );
    }
    // Another policy, asked for on the command line, is named as such and differs here.
    let (resized, stderr) = test_logit(
        &root,
        &dir.path().join("r"),
        "1_fake/big.png",
        &["--resize", "32"],
    );
    assert!(
        stderr.contains("preprocessing resize to 32×32, no crop (asked on the command line"),
        "{stderr}"
    );
    assert!(
        (resized - tested).abs() > 1e-6,
        "resizing changed nothing: {resized}"
    );
}
