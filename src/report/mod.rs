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
//! OUT/<figure>.{pdf,png,svg}        see `figures.rs`
//! ```
pub mod analysis;
pub mod evidence;
pub mod figures;
pub mod hypotheses;
pub mod image_bootstrap;
pub mod runs;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::Serialize;

use analysis::{Aggregate, CLEAN};
use hypotheses::ALPHA;
use runs::Run;

use crate::table;

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

/// Branch weights whose means span less than this are called uniform.
const UNIFORM_SPREAD: f64 = 0.05;

/// Writes the report; returns the path of `report.md`.
pub fn run(req: &ReportRequest) -> Result<PathBuf> {
    let dirs = runs::find_runs(&req.runs)?;
    let mut runs: Vec<Run> = dirs
        .iter()
        .map(|d| runs::read_run(d).with_context(|| format!("run folder {}", d.display())))
        .collect::<Result<_>>()?;
    // The baseline first in every table and figure, the rest in folder order.
    runs.sort_by_key(|r| r.variant != req.baseline);
    runs::check_independent(&runs)?;
    runs::check_same_protocol(&runs)?;
    std::fs::create_dir_all(&req.out).with_context(|| format!("creating {}", req.out.display()))?;
    let per_run: Vec<_> = runs.iter().map(analysis::scores).collect();
    let table = analysis::ablation_table(&runs, &per_run);
    let has_baseline = runs.iter().any(|r| r.variant == req.baseline);
    let analysis::Significance {
        mcnemar,
        cmh,
        ttests,
    } = if has_baseline {
        analysis::significance(&runs, &per_run, &req.baseline)
    } else {
        analysis::Significance {
            mcnemar: Vec::new(),
            cmh: Vec::new(),
            ttests: Vec::new(),
        }
    };
    eprintln!(
        "report: {} runs; bootstrap ({} resamples per metric)…",
        runs.len(),
        req.bootstrap_resamples
    );
    let boot = analysis::bootstrap(&runs, req.bootstrap_resamples, req.seed);
    let truth = true_scales(&runs)?;
    // Only per-image weights can select a scale per image: `equal` and `learned` weights
    // are the same for every input, and their "top branch" is a tie-break.
    let (adaptive, fixed): (Vec<String>, Vec<String>) =
        analysis::variants(&runs).into_iter().partition(|v| {
            runs.iter()
                .filter(|r| &r.variant == v)
                .all(|r| r.config.model.fusion == crate::config::Fusion::Attention)
        });
    let selection: Vec<_> = adaptive
        .iter()
        .flat_map(|v| analysis::scale_selection(&runs, v, &truth))
        .collect();
    let weights: Vec<_> = analysis::variants(&runs)
        .iter()
        .flat_map(|v| analysis::branch_weights(&runs, v))
        .collect();

    let out = &req.out;
    table::write(&out.join("ablation_table.csv"), &table)?;
    let header = ["run", "variant", "seed", "perturbation", "set"].into_iter();
    let header: Vec<String> = header
        .chain(analysis::QUANTITIES)
        .map(String::from)
        .collect();
    table::write_with_header(&out.join("runs.csv"), &header, &run_rows(&runs, &per_run))?;
    table::write(&out.join("significance_mcnemar.csv"), &mcnemar)?;
    table::write(&out.join("significance_cmh.csv"), &cmh)?;
    table::write(&out.join("significance_ttest.csv"), &ttests)?;
    table::write(&out.join("bootstrap.csv"), &boot)?;
    table::write(&out.join("branch_weights.csv"), &weights)?;
    table::write(&out.join("failure_cases.csv"), &failure_cases(&runs, 5))?;
    table::write(&out.join("scale_selection.csv"), &selection)?;
    eprintln!("report: figures…");
    let (figures, not_drawn) = figures::draw_all(
        out,
        &runs,
        &table,
        &weights,
        &req.baseline,
        &req.attention,
        req.seed,
    )?;
    let (header, rows) = ablation_rows(&table);
    figures::table_page(
        "Ablation study: clean test images, mean ± sample std over seeds (n)",
        &header,
        &rows,
        &out.join("ablation_study"),
    )?;
    let mut sheets = Vec::new();
    for v in analysis::variants(&runs) {
        if let Some(run) = runs
            .iter()
            .filter(|r| r.variant == v)
            .min_by_key(|r| r.seed)
        {
            let path = out.join(format!("failure_cases_{v}_seed{}.png", run.seed));
            if figures::contact_sheet(run, 5, &path)? {
                sheets.push(path);
            }
        }
    }
    let md_table = ablation_markdown(&table);
    crate::atomic::write(&out.join("ablation_table.md"), md_table.as_bytes())?;

    let mut page = String::new();
    // From the runs' own test records (complete.json), not from what the current
    // directory happens to hold.
    let synthetic = runs.iter().any(|r| r.synthetic);
    writeln!(page, "# Study report\n")?;
    if synthetic {
        writeln!(page, "**Synthetic benchmark** (`npr synth`): these numbers describe the embedded synthetic data, not real generators.\n")?;
    }
    writeln!(
        page,
        "{} tested runs; variants {}; baseline `{}`.\n",
        runs.len(),
        analysis::variants(&runs).join(", "),
        req.baseline
    )?;
    writeln!(page, "## Hypotheses\n")?;
    writeln!(page, "Each line gives the verdict (**met**, **not met** or **inconclusive**), the effect with its 95 % interval, the test, its p and n. H2 is the study plan's primary test and is decided as pre-specified (gain ≥ {:.0} points and paired t-test p < {ALPHA} over the same paired seeds), uncorrected; H3, robustness and efficiency are decided by where their 95 % intervals lie against the plan's thresholds (over seeds from 3 seeds on, else a bootstrap over test images, which holds the test set's sampling error only). The significance families below are exploratory, Holm-corrected within each. How each rule works: README_ATTENTION.md, \"How the report decides\".\n", hypotheses::H2_MIN_GAIN * 100.0)?;
    let evidence = evidence::Evidence {
        runs: &runs,
        per_run: &per_run,
        baseline: &req.baseline,
        attention: &req.attention,
        resamples: req.bootstrap_resamples,
        seed: req.seed,
    };
    for line in evidence.lines()? {
        writeln!(page, "- {line}")?;
    }
    writeln!(
        page,
        "\n## Ablation (clean test images; mean ± sample std over seeds, n seeds)\n\n{md_table}"
    )?;
    writeln!(page, "Full table with every quantity and perturbation: [ablation_table.csv](ablation_table.csv).\n")?;
    writeln!(page, "## Significance\n")?;
    writeln!(page, "Exploratory. McNemar's test compares each variant with `{}` on the same images (joined by path), per seed and test set, exact binomial at every size: it speaks of two trained model instances. The Cochran–Mantel–Haenszel test pools the seeds (strata = seeds, the same images; conservative, as it ignores the pairing by image) and speaks of the configurations. Paired t-tests compare the variants over seeds. Holm's correction is applied within each family; `p_holm` < {ALPHA} is significant.\n", req.baseline)?;
    let significant = mcnemar.iter().filter(|m| m.p_holm < ALPHA).count();
    writeln!(page, "- McNemar (per seed): {} comparisons, {significant} significant after Holm — [significance_mcnemar.csv](significance_mcnemar.csv)", mcnemar.len())?;
    writeln!(page, "- Cochran–Mantel–Haenszel (seeds pooled): {} comparisons, {} significant after Holm — [significance_cmh.csv](significance_cmh.csv)", cmh.len(), cmh.iter().filter(|c| c.p_holm.is_some_and(|p| p < ALPHA)).count())?;
    for c in &cmh {
        writeln!(
            page,
            "  - `{}` vs `{}` on `{}`: accuracy {:.4} vs {:.4} pooled over {} seeds × {} images; common odds ratio of being right {}, p = {}, p_holm = {}",
            c.variant,
            req.baseline,
            c.set,
            c.acc_variant,
            c.acc_baseline,
            c.seeds,
            c.images,
            c.odds_ratio.map_or("n/a".into(), |x| format!("{x:.3}")),
            fmt(c.p),
            fmt(c.p_holm)
        )?;
    }
    let tested = ttests.iter().filter(|t| t.p.is_some()).count();
    writeln!(page, "- paired t-tests: {} comparisons, {tested} with a p-value, {} significant after Holm — [significance_ttest.csv](significance_ttest.csv)", ttests.len(), ttests.iter().filter(|t| t.p_holm.is_some_and(|p| p < ALPHA)).count())?;
    writeln!(page, "- bootstrap: 95 % percentile intervals of acc, AP and AUC per run and set, {} resamples, seed {} — [bootstrap.csv](bootstrap.csv)\n", req.bootstrap_resamples, req.seed)?;
    writeln!(
        page,
        "## Figures\n\nEach as PDF (vector, real text), PNG and SVG.\n"
    )?;
    for f in &figures {
        let name = f
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        writeln!(
            page,
            "- `{name}`: [PDF]({name}.pdf), [PNG]({name}.png)\n\n  ![{name}]({name}.png)\n"
        )?;
    }
    for why in &not_drawn {
        writeln!(page, "- not drawn — {why}")?;
    }
    writeln!(page)?;
    writeln!(page, "## Attention\n\nMean ± std branch weight per generator, label and scale: [branch_weights.csv](branch_weights.csv).\n")?;
    if truth.is_empty() {
        writeln!(page, "Scale selection: not measured (no `synth.json` beside the test sets: true scales are known only on the synthetic benchmark).\n")?;
    } else {
        writeln!(page, "Scale selection on the synthetic benchmark (share of fakes whose highest-weighted NPR branch, identity excluded, is the family's true scale; pooled over seeds) — [scale_selection.csv](scale_selection.csv):\n\n| variant | family | true scale | fakes | share | chance |\n| --- | --- | ---: | ---: | ---: | ---: |")?;
        for s in &selection {
            writeln!(
                page,
                "| {} | {} | {} | {} | {} | {:.2} |",
                s.variant,
                s.generator,
                s.true_scale,
                s.fakes,
                s.share_top_is_true
                    .map_or("n/a (not a branch)".into(), |x| format!("{x:.3}")),
                s.chance
            )?;
        }
        for v in &fixed {
            writeln!(
                page,
                "| {v} | all | | | n/a (weights do not depend on the image) | |"
            )?;
        }
        writeln!(page)?;
    }
    writeln!(page, "## Failure cases\n\nThe 5 most confident mistakes per run and generator: [failure_cases.csv](failure_cases.csv). Contact sheets (each variant's first seed):\n")?;
    for p in &sheets {
        let name = p.file_name().unwrap_or_default().to_string_lossy();
        writeln!(page, "- [{name}]({name})")?;
    }
    writeln!(page)?;
    writeln!(
        page,
        "## Runs\n\n| run | variant | seed | revision | command |\n| --- | --- | ---: | --- | --- |"
    )?;
    for r in &runs {
        writeln!(
            page,
            "| `{}` | {} | {} | {} | `{}` |",
            r.dir.display(),
            r.variant,
            r.seed,
            r.revision,
            r.command.replace('|', "\\|")
        )?;
    }
    writeln!(
        page,
        "\nMade by `npr report --runs {} --out {}` (npr {}).",
        req.runs
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(" "),
        out.display(),
        env!("CARGO_PKG_VERSION")
    )?;
    let path = out.join("report.md");
    crate::atomic::write(&path, page.as_bytes())?;
    Ok(path)
}

/// Each synthetic family's true NPR scale, from the `synth.json` of the runs' test sets
/// (beside a test set, or one folder up) or training data.
fn true_scales(runs: &[Run]) -> Result<BTreeMap<String, f64>> {
    // Every run of a sweep names the same folders: read each one once.
    let dirs: std::collections::BTreeSet<PathBuf> = runs
        .iter()
        .flat_map(|r| {
            r.config
                .test
                .sets
                .iter()
                .flat_map(|t| [t.dataroot.clone(), t.dataroot.join("..")])
                .chain([r.config.data.dataroot.clone()])
        })
        .collect();
    let mut out = BTreeMap::new();
    for dir in dirs.iter().filter(|d| d.join("synth.json").is_file()) {
        // A manifest that is there but unreadable is an error, not "no ground truth".
        for f in crate::synth::read_manifest(dir)?.families {
            out.insert(f.name, f.npr_scale);
        }
    }
    Ok(out)
}

fn fmt(x: Option<f64>) -> String {
    x.map_or_else(|| "n/a".into(), |v| format!("{v:.4}"))
}

/// The mean ± std of a quantity for a variant on a clean set.
fn cell<'a>(table: &'a [Aggregate], variant: &str, set: &str, q: &str) -> Option<&'a Aggregate> {
    table.iter().find(|a| {
        a.variant == variant && a.set == set && a.perturbation == CLEAN && a.quantity == q
    })
}

/// The ablation table's header and rows: per variant and clean set, acc/AP/AUC on seen
/// and unseen generators and the gap, as mean ± std (n).
fn ablation_rows(table: &[Aggregate]) -> (Vec<String>, Vec<Vec<String>>) {
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
fn ablation_markdown(table: &[Aggregate]) -> String {
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
