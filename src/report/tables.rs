//! The report's CSV tables and the ablation table as rows and Markdown.
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use super::analysis::{self, Aggregate, CLEAN};
use super::findings::Findings;
use super::runs::{self, Run};
use crate::table;

/// Every CSV of the report (README_ATTENTION.md lists the columns) and `ablation_table.md`.
pub fn write_all(out: &Path, f: &Findings) -> Result<()> {
    let sig = &f.significance;
    table::write(&out.join("ablation_table.csv"), &f.table)?;
    let header = ["run", "variant", "seed", "perturbation", "set"].into_iter();
    let header: Vec<String> = header
        .chain(analysis::QUANTITIES)
        .map(String::from)
        .collect();
    let rows = run_rows(&f.runs, &f.per_run);
    table::write_with_header(&out.join("runs.csv"), &header, &rows)?;
    table::write(&out.join("significance_mcnemar.csv"), &sig.mcnemar)?;
    table::write(&out.join("significance_cmh.csv"), &sig.cmh)?;
    table::write(&out.join("significance_ttest.csv"), &sig.ttests)?;
    table::write(&out.join("bootstrap.csv"), &f.boot)?;
    table::write(&out.join("branch_weights.csv"), &f.weights)?;
    table::write(&out.join("failure_cases.csv"), &failure_cases(&f.runs, 5))?;
    table::write(&out.join("scale_selection.csv"), &f.selection)?;
    let md = ablation_markdown(&f.table);
    crate::atomic::write(&out.join("ablation_table.md"), md.as_bytes())
}

/// The mean ± std of a quantity for a variant on a clean set.
fn cell<'a>(table: &'a [Aggregate], variant: &str, set: &str, q: &str) -> Option<&'a Aggregate> {
    table.iter().find(|a| {
        a.variant == variant && a.set == set && a.perturbation == CLEAN && a.quantity == q
    })
}

/// The ablation table's header and rows: per variant and clean set, acc/AP/AUC on seen
/// and unseen generators and the gap, as mean ± std (n).
pub fn ablation_rows(table: &[Aggregate]) -> (Vec<String>, Vec<Vec<String>>) {
    let cols = [
        "acc_seen",
        "acc_unseen",
        "ap_seen",
        "ap_unseen",
        "auc_seen",
        "auc_unseen",
        "gap",
    ];
    let header: Vec<String> = ["variant", "set"]
        .iter()
        .chain(cols.iter())
        .map(|s| s.to_string())
        .collect();
    let mut keys: Vec<(String, String)> = Vec::new();
    for a in table.iter().filter(|a| a.perturbation == CLEAN) {
        let k = (a.variant.clone(), a.set.clone());
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    let rows = keys
        .into_iter()
        .map(|(v, set)| {
            let cells = cols.iter().map(|q| match cell(table, &v, &set, q) {
                Some(Aggregate {
                    mean: Some(m),
                    std: Some(sd),
                    n,
                    ..
                }) => format!("{m:.4} ± {sd:.4} ({n})"),
                _ => "n/a".into(),
            });
            [v.clone(), set.clone()].into_iter().chain(cells).collect()
        })
        .collect();
    (header, rows)
}

/// The ablation table in Markdown.
pub fn ablation_markdown(table: &[Aggregate]) -> String {
    let (header, rows) = ablation_rows(table);
    let mut s = format!(
        "| {} |\n| --- | --- |{}\n",
        header.join(" | "),
        " ---: |".repeat(header.len() - 2)
    );
    for r in rows {
        let _ = writeln!(s, "| {} |", r.join(" | "));
    }
    s
}

/// One run's scores on one (perturbation, set): the rows the tables and t-tests are made
/// from (`runs.csv`, read by analysis/significance_tests.ipynb).
#[derive(Debug, Clone, Serialize)]
struct RunRow {
    run: String,
    variant: String,
    seed: u64,
    perturbation: String,
    set: String,
    /// One column per quantity, named by `analysis::QUANTITIES`.
    scores: analysis::Scores,
}

fn run_rows(runs: &[Run], per_run: &[BTreeMap<(String, String), analysis::Scores>]) -> Vec<RunRow> {
    runs.iter()
        .zip(per_run)
        .flat_map(|(r, scores)| {
            scores.iter().map(move |((perturbation, set), s)| RunRow {
                run: r.dir.display().to_string(),
                variant: r.variant.clone(),
                seed: r.seed,
                perturbation: perturbation.clone(),
                set: set.clone(),
                scores: s.clone(),
            })
        })
        .collect()
}

/// A failure case: a confident mistake.
#[derive(Debug, Clone, Serialize)]
struct Failure {
    variant: String,
    seed: u64,
    set: String,
    generator: String,
    path: String,
    label: u8,
    score: f64,
}

/// Per run and generator, the `k` misclassified clean images with the most confident score.
fn failure_cases(runs: &[Run], k: usize) -> Vec<Failure> {
    let mut out = Vec::new();
    for r in runs {
        let mut groups: BTreeMap<(&str, &str), Vec<&runs::Prediction>> = BTreeMap::new();
        for p in r
            .predictions
            .iter()
            .filter(|p| p.perturbation == CLEAN && !p.correct())
        {
            groups
                .entry((p.set.as_str(), p.generator.as_str()))
                .or_default()
                .push(p);
        }
        for ((set, generator), mut wrong) in groups {
            // Confidence in the wrong answer: |logit|.
            wrong.sort_by(|a, b| b.logit.abs().total_cmp(&a.logit.abs()));
            out.extend(wrong.into_iter().take(k).map(|p| Failure {
                variant: r.variant.clone(),
                seed: r.seed,
                set: set.into(),
                generator: generator.into(),
                path: p.path.clone(),
                label: p.label,
                score: p.score,
            }));
        }
    }
    out
}
