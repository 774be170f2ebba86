//! `npr report` end to end: a 2-variant × 2-seed ablation on the tiny synthetic set, then
//! the report on its folder.
use crate::cli::{npr, ok, tiny_config, usage_error};

#[test]
fn a_two_by_two_ablation_reports_tables_significance_and_hypotheses() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), "attention");
    let sweep = dir.path().join("ablation");
    ok(&npr(
        &[
            "ablate",
            "--config",
            config.to_str().unwrap(),
            "--variants",
            "baseline,attention",
            "--seeds",
            "0,1",
            "--set",
            "train.epochs=1",
            "--out",
            sweep.to_str().unwrap(),
        ],
        &[],
    ));
    let out = dir.path().join("report");
    let printed = ok(&npr(
        &[
            "report",
            "--runs",
            sweep.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--bootstrap",
            "50",
        ],
        &[],
    ));
    assert!(printed.contains("report.md"), "{printed}");
    for file in [
        "report.md",
        "ablation_table.csv",
        "ablation_table.md",
        "significance_mcnemar.csv",
        "significance_ttest.csv",
        "bootstrap.csv",
        "branch_weights.csv",
        "failure_cases.csv",
    ] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    let page = std::fs::read_to_string(out.join("report.md")).unwrap();
    for line in [
        "H2 on `synth`",
        "H3 on `synth`",
        "Efficiency on `synth`",
        "Interpretability (`attention`)",
        "Robustness",
        "Holm",
        "**Synthetic benchmark**",
    ] {
        assert!(
            page.contains(line),
            "{line:?} missing from report.md:\n{page}"
        );
    }
    // Two seeds per variant: the table says n = 2 and the t-tests have p-values.
    let table = std::fs::read_to_string(out.join("ablation_table.md")).unwrap();
    assert!(
        table.contains("| attention | synth |") && table.contains("(2)"),
        "{table}"
    );
    let ttests = std::fs::read_to_string(out.join("significance_ttest.csv")).unwrap();
    assert_eq!(ttests.lines().count(), 1 + 4, "{ttests}");
    // One McNemar row per seed, on every test image of the set.
    let mcnemar = std::fs::read_to_string(out.join("significance_mcnemar.csv")).unwrap();
    assert_eq!(mcnemar.lines().count(), 1 + 2, "{mcnemar}");

    // Runs tested differently are refused, naming the difference.
    let odd = sweep.join("attention_seed1/test/metrics.csv");
    let text = std::fs::read_to_string(&odd).unwrap();
    std::fs::write(&odd, text.replace("resize=no", "resize=yes")).unwrap();
    usage_error(
        &npr(
            &[
                "report",
                "--runs",
                sweep.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ],
            &[],
        ),
        "tested differently",
    );
}
