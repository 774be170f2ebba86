//! `npr report`: tested runs → the study plan's answers. The hypotheses as verdicts with
//! their intervals (`hypotheses.rs`, `evidence.rs`: "not met" and "inconclusive" are
//! answers), tables over seeds, exploratory significance against the baseline (McNemar per
//! seed on the same images, CMH over seeds, paired t-tests over seeds, Holm within each
//! family), bootstrap intervals, branch-weight analysis and failure cases. It reads only the
//! run folders' files and refuses inputs that would bias it (see `runs.rs`).
//!
//! ```text
//! OUT/report.md                     the page to open first
//! OUT/ablation_table.csv, .md       mean ± std over seeds per variant, set, perturbation
//! OUT/runs.csv                      every run's scores per perturbation and set
//! OUT/significance_mcnemar.csv      per variant, seed and set, against the baseline
//! OUT/significance_cmh.csv          per variant and set, over seeds, against the baseline
//! OUT/significance_ttest.csv        per variant, set and quantity, over seeds
//! OUT/bootstrap.csv                 95 % intervals of acc, AP, AUC per run and set
//! OUT/branch_weights.csv            mean ± std weight per variant, generator, label, scale
//! OUT/failure_cases.csv             the most confident mistakes per run and generator
//! OUT/ablation_study.{pdf,png,svg}  the ablation table as a page
//! OUT/scale_selection.csv           top-weighted branch vs the true scale (synthetic data)
//! OUT/failure_cases_<variant>_seed<n>.png   contact sheets of the worst mistakes
//! OUT/<figure>.{pdf,png,svg}        see `figures/`
//! ```
pub mod analysis;
pub mod evidence;
pub mod figures;
mod findings;
pub mod hypotheses;
pub mod image_bootstrap;
mod page;
pub mod runs;
pub mod significance;
mod tables;

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::progress::Progress;
use findings::Findings;

/// What to report on.
pub struct ReportRequest {
    pub runs: Vec<PathBuf>,
    pub out: PathBuf,
    /// The variant everything is compared against.
    pub baseline: String,
    /// The proposal's model, named in the hypotheses.
    pub attention: String,
    pub bootstrap_resamples: usize,
    pub seed: u64,
}

/// Writes the report; returns the path of `report.md`. `--out` is checked first: reading
/// a large study takes a while, and an unwritable folder is known at once. A report that is
/// refused leaves no empty `--out` it created.
pub fn run(req: &ReportRequest) -> Result<PathBuf> {
    let created = !req.out.exists();
    crate::atomic::check_writable(&req.out).context("--out")?;
    write_report(req).inspect_err(|_| {
        if created {
            let _ = std::fs::remove_dir(&req.out); // only when still empty
        }
    })
}

fn write_report(req: &ReportRequest) -> Result<PathBuf> {
    let dirs = runs::find_runs(&req.runs)?;
    // Steps: read each run, bootstrap each run, the figures, the table page, the contact
    // sheets and report.md.
    let steps = 2 * dirs.len() as u64 + figures::COUNT + 3;
    let progress = Progress::new("report", steps, "steps");
    let mut runs: Vec<runs::Run> = dirs
        .iter()
        .map(|d| {
            progress.inc(1);
            runs::read_run(d).with_context(|| format!("run folder {}", d.display()))
        })
        .collect::<Result<_>>()?;
    // The baseline first in every table and figure, the rest in folder order.
    runs.sort_by_key(|r| r.variant != req.baseline);
    runs::check_independent(&runs)?;
    runs::check_same_protocol(&runs)?;
    let found = Findings::compute(runs, req, &progress)?;
    tables::write_all(&req.out, &found)?;
    progress.println("report: figures…".into());
    let drawn = figures::draw_all(req, &found.runs, &found.table, &found.weights, &progress)?;
    let (header, rows) = tables::ablation_rows(&found.table);
    figures::table_page(
        "Ablation study: clean test images, mean ± sample std over seeds (n)",
        &header,
        &rows,
        &req.out.join("ablation_study"),
    )?;
    progress.inc(1);
    let sheets = contact_sheets(&found.runs, &req.out)?;
    progress.inc(1);
    let path = req.out.join("report.md");
    let text = page::render(req, &found, &drawn, &sheets)?;
    crate::atomic::write(&path, text.as_bytes())?;
    progress.inc(1);
    progress.finish();
    Ok(path)
}

/// Each variant's first seed: a contact sheet of its most confident mistakes.
fn contact_sheets(runs: &[runs::Run], out: &std::path::Path) -> Result<Vec<PathBuf>> {
    let mut sheets = Vec::new();
    for v in analysis::variants(runs) {
        if let Some(run) = figures::first_seed(runs, &v) {
            let path = out.join(format!("failure_cases_{v}_seed{}.png", run.seed));
            if figures::contact_sheet(run, 5, &path)? {
                sheets.push(path);
            }
        }
    }
    Ok(sheets)
}
