//! `npr report` end to end: a 2-variant × 2-seed ablation on the tiny synthetic set, then
//! the report on its folder.
use crate::cli::{npr, ok, tiny_config, usage_error};
use crate::common::{python, run_python};

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
    // A JPEG sweep beside each run's clean test, as a robustness study writes it.
    for cell in [
        "baseline_seed0",
        "baseline_seed1",
        "attention_seed0",
        "attention_seed1",
    ] {
        let run = sweep.join(cell);
        ok(&npr(
            &[
                "test",
                "--checkpoint",
                run.to_str().unwrap(),
                "--sweep",
                "jpeg=75,100",
                "--out",
                run.join("test_jpeg").to_str().unwrap(),
            ],
            &[],
        ));
    }
    let out = dir.path().join("report");
    // A progress line at every step (plain lines: stderr is a pipe here).
    let reported = npr(
        &[
            "report",
            "--runs",
            sweep.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--bootstrap",
            "50",
        ],
        &[("NPR_PROGRESS_EVERY", "0")],
    );
    let printed = ok(&reported);
    assert!(printed.contains("report.md"), "{printed}");
    let err = String::from_utf8_lossy(&reported.stderr);
    assert!(
        err.contains("report: 1/") && err.contains(" steps ("),
        "{err}"
    );
    for file in [
        "report.md",
        "ablation_table.csv",
        "ablation_table.md",
        "significance_mcnemar.csv",
        "significance_cmh.csv",
        "significance_ttest.csv",
        "bootstrap.csv",
        "branch_weights.csv",
        "failure_cases.csv",
        "scale_selection.csv",
    ] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    // Every figure as PDF with real text (its axis labels extract), PNG that decodes, SVG.
    let figures: [(&str, &[&str]); 7] = [
        ("ablation_study", &["acc_seen", "gap", "attention"]),
        ("roc_curves", &["false positive rate", "true positive rate"]),
        ("attention_heatmaps", &["NPR scale", "generator"]),
        (
            "generalization_plot",
            &["variant", "accuracy", "unseen generators"],
        ),
        ("tsne_embeddings", &["t-SNE 1", "t-SNE 2"]),
        ("robustness", &["perturbation", "jpeg=75"]),
        ("training_curves", &["epoch", "validation loss"]),
    ];
    let pdfs: Vec<String> = figures
        .iter()
        .map(|(f, _)| out.join(format!("{f}.pdf")).display().to_string())
        .collect();
    let text = run_python(
        "tests/report/pdf_text.py",
        &pdfs.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let per_file: Vec<&str> = text.split("== ").skip(1).collect();
    assert_eq!(per_file.len(), figures.len(), "{text}");
    for ((name, labels), extracted) in figures.iter().zip(per_file) {
        for label in *labels {
            assert!(
                extracted.contains(label),
                "{name}.pdf lacks {label:?}: {extracted}"
            );
        }
        let png = image::open(out.join(format!("{name}.png"))).unwrap();
        assert!(png.width() >= 400 && png.height() >= 100, "{name}.png");
        assert!(out.join(format!("{name}.svg")).is_file());
    }
    for sheet in [
        "failure_cases_baseline_seed0.png",
        "failure_cases_attention_seed0.png",
    ] {
        image::open(out.join(sheet)).unwrap_or_else(|e| panic!("{sheet}: {e}"));
    }
    let page = std::fs::read_to_string(out.join("report.md")).unwrap();
    for line in [
        "H2 on `synth`",
        "H3 on `synth`",
        "Efficiency on `synth`",
        "Interpretability (`attention`, exploratory)",
        "Robustness on `synth`",
        "Holm",
        "Cochran–Mantel–Haenszel",
        "**Synthetic benchmark**",
        "Scale selection on the synthetic benchmark",
    ] {
        assert!(
            page.contains(line),
            "{line:?} missing from report.md:\n{page}"
        );
    }
    // Every verdict line carries its verdict, interval and n; with 2 seeds H2 cannot be
    // met by the accident of a point estimate (critical t = 12.7).
    for prefix in ["- H2 on", "- H3 on", "- Robustness on", "- Efficiency on"] {
        let line = page
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line:\n{page}"));
        assert!(line.contains("95 % CI") && line.contains("n = 2"), "{line}");
        assert!(
            ["**met**", "**not met**", "**inconclusive**"]
                .iter()
                .any(|v| line.contains(v)),
            "{line}"
        );
    }
    let h2 = page.lines().find(|l| l.starts_with("- H2 on")).unwrap();
    assert!(!h2.contains("**met**"), "{h2}");
    // Fixed fusions have no per-image selection to report.
    assert!(!page.contains("| baseline | nearest"), "{page}");
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

    // The notebook recomputes McNemar, the t-tests and Holm from the CSVs with scipy.
    let nb = std::process::Command::new(python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/report/run_notebook.py"
        ))
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/analysis/significance_tests.ipynb"
        ))
        .env("REPORT_DIR", &out)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&nb.stdout);
    assert!(
        nb.status.success() && said.contains("agree with the report"),
        "{said}\n{}",
        String::from_utf8_lossy(&nb.stderr)
    );

    // The CMH rows: one per variant and set, over both seeds.
    let cmh = std::fs::read_to_string(out.join("significance_cmh.csv")).unwrap();
    assert_eq!(cmh.lines().count(), 1 + 1, "{cmh}");
    assert!(
        cmh.lines()
            .nth(1)
            .unwrap()
            .starts_with("attention,synth,2,"),
        "{cmh}"
    );

    // Inputs that would bias the report are refused with exit 2, naming the folders.
    let report = |runs: &[&std::path::Path]| {
        let mut args = vec!["report".to_string(), "--runs".into()];
        args.extend(runs.iter().map(|p| p.display().to_string()));
        args.extend([
            "--out".into(),
            dir.path().join("refused").display().to_string(),
        ]);
        npr(&args.iter().map(String::as_str).collect::<Vec<_>>(), &[])
    };
    usage_error(&report(&[&sweep, &sweep]), "reached twice");
    let copy = dir.path().join("copy");
    assert!(std::process::Command::new("cp")
        .args(["-r", sweep.to_str().unwrap(), copy.to_str().unwrap()])
        .status()
        .unwrap()
        .success());
    usage_error(&report(&[&sweep, &copy]), "appears twice");
    // A test folder of weights the run no longer holds, and one without its marker.
    let cell = copy.join("attention_seed0");
    let weights = npr::checkpoint::resolve(&cell).unwrap();
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, [&bytes[..], b" "].concat()).unwrap();
    usage_error(&report(&[&copy]), "trained on after the test");
    std::fs::write(&weights, &bytes).unwrap();
    std::fs::remove_file(cell.join("test/complete.json")).unwrap();
    usage_error(&report(&[&copy]), "no complete.json");
    // A corrupt sweep summary is an error, not a silent change of variant names.
    std::fs::write(copy.join("ablation.json"), "{not json").unwrap();
    let refused = report(&[&copy.join("baseline_seed0")]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("ablation.json"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

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
