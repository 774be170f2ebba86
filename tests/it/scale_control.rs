//! The positive control of the scale-selection experiment (README_ATTENTION.md, "Positive
//! control"), end to end through the commands users run: `npr synth --preset multiscale`
//! → `npr ablate` (train and test) → each cell's `test/scale_selection.csv`. An attention
//! taught the true scale (`train.scale_supervision`) must be reported as selecting more
//! often than the same attention untaught, on the same data and seed; if the chain lost
//! or mixed up per-image weights anywhere, both would read alike.
use std::path::Path;

use crate::cli::{npr, ok};

/// Sum over the seen families of the share of fakes whose top NPR branch is the true scale.
fn seen_share(scale_selection: &Path) -> f64 {
    let mut reader = csv::Reader::from_path(scale_selection).unwrap();
    let header = reader.headers().unwrap().clone();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (seen, share) = (col("seen"), col("share_top_is_true"));
    reader
        .records()
        .map(|r| r.unwrap())
        .filter(|r| &r[seen] == "true")
        .map(|r| r[share].parse::<f64>().unwrap())
        .sum()
}

#[test]
fn the_attention_taught_the_true_scale_is_reported_selecting_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // 16 px, one class; no fresh detail or noise after up-sampling, so the scale is plainly
    // in the branch energies and a few hundred steps can learn it.
    ok(&npr(
        &[
            "synth",
            "--preset",
            "multiscale",
            "--out",
            data.to_str().unwrap(),
            "--seed",
            "3",
            "--size",
            "16",
            "--classes",
            "1",
            "--train-per-class",
            "128",
            "--val-per-class",
            "4",
            "--test-per-family",
            "16",
            "--detail-weight",
            "0",
            "--noise-sigma",
            "0",
        ],
        &[],
    ));
    // Whole-image crops keep every up-sampling block on NPR's grid; the fusion's learning
    // rate ×100 lets the attention's weights grow to the size the energies need
    // (configs/ablation_multiscale.yaml, the `_aligned` variants).
    let config = dir.path().join("control.yaml");
    std::fs::write(
        &config,
        format!(
            "name: control\n\
             model: {{ backbone: resnet18, fusion: attention, scales: [0.25, 0.5, 0.75, 1.0], \
             attention: {{ reduction: 2, squeeze: abs_avg, bias_init: 0.25 }} }}\n\
             data: {{ dataroot: {d}, load_size: 16, crop_size: 16, workers: 1 }}\n\
             train: {{ epochs: 16, batch_size: 16, log_every: 100, seed: 5, \
             optimizer: {{ lr: 2.0e-4, fusion_lr_mult: 100 }} }}\n\
             test: {{ batch_size: 64, sets: [ {{ name: synth, dataroot: {d}/test, resize: false, crop: none }} ] }}\n",
            d = data.display()
        ),
    )
    .unwrap();
    let study = dir.path().join("study.yaml");
    std::fs::write(
        &study,
        format!(
            "base: {}\nseeds: [5]\nvariants:\n  - name: untaught\n    set: []\n  - name: taught\n    set: [\"train.scale_supervision={{weight: 1.0, target: true_scale}}\"]\n",
            config.display()
        ),
    )
    .unwrap();
    let out = dir.path().join("ablation");
    ok(&npr(
        &[
            "ablate",
            "--config",
            study.to_str().unwrap(),
            "--devices",
            "cpu",
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    ));
    let share = |cell: &str| seen_share(&out.join(cell).join("test/scale_selection.csv"));
    let (taught, untaught) = (share("taught_seed5"), share("untaught_seed5"));
    // Two seen families: 2.0 is every fake of both on its true branch.
    eprintln!("summed share of the seen families: taught {taught:.3}, untaught {untaught:.3}");
    assert!(
        taught > untaught,
        "taught attention: summed share {taught:.3}, untaught: {untaught:.3}"
    );
}
