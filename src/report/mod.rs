//! `npr report`: tested runs → the study plan's answers. Tables over seeds, significance
//! against the baseline (McNemar per seed on the same images, paired t-tests over seeds,
//! Holm within each family), bootstrap intervals, branch-weight analysis, failure cases, and
//! the hypotheses stated with their numbers ("not met" is an answer). It reads only the run
//! folders' files (see `runs.rs`).
//!
//! ```text
//! OUT/report.md                     the page to open first
//! OUT/ablation_table.csv, .md       mean ± std over seeds per variant, set, perturbation
//! OUT/runs.csv                      every run's scores per perturbation and set
//! OUT/significance_mcnemar.csv      per variant, seed and set, against the baseline
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
pub mod figures;
pub mod runs;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use analysis::{Aggregate, TTestRow, CLEAN};
use runs::Run;

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

/// The proposal's thresholds (the study plan's success criteria).
const H2_MIN_GAIN: f64 = 0.02;
const H3_MAX_GAP: f64 = 0.05;
const ALPHA: f64 = 0.05;
/// The study plan's efficiency bar, stated in the report (no verdict from uncontrolled timing).
const MAX_TIME_RATIO: f64 = 1.3;
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
    runs::check_same_protocol(&runs)?;
    std::fs::create_dir_all(&req.out).with_context(|| format!("creating {}", req.out.display()))?;
    let per_run: Vec<_> = runs.iter().map(analysis::scores).collect();
    let table = analysis::ablation_table(&runs, &per_run);
    let has_baseline = runs.iter().any(|r| r.variant == req.baseline);
    let (mcnemar, ttests) = if has_baseline {
        analysis::significance(&runs, &per_run, &req.baseline)
    } else {
        (Vec::new(), Vec::new())
    };
    eprintln!(
        "report: {} runs; bootstrap ({} resamples per metric)…",
        runs.len(),
        req.bootstrap_resamples
    );
    let boot = analysis::bootstrap(&runs, req.bootstrap_resamples, req.seed);
    let truth = true_scales(&runs);
    let selection: Vec<_> = analysis::variants(&runs)
        .iter()
        .flat_map(|v| analysis::scale_selection(&runs, v, &truth))
        .collect();
    let weights: Vec<_> = analysis::variants(&runs)
        .iter()
        .flat_map(|v| analysis::branch_weights(&runs, v))
        .collect();

    let out = &req.out;
    write_csv(&out.join("ablation_table.csv"), &table)?;
    write_csv(&out.join("runs.csv"), &run_rows(&runs, &per_run))?;
    write_csv(&out.join("significance_mcnemar.csv"), &mcnemar)?;
    write_csv(&out.join("significance_ttest.csv"), &ttests)?;
    write_csv(&out.join("bootstrap.csv"), &boot)?;
    write_csv(&out.join("branch_weights.csv"), &weights)?;
    write_csv(&out.join("failure_cases.csv"), &failure_cases(&runs, 5))?;
    write_csv(&out.join("scale_selection.csv"), &selection)?;
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
    let synthetic = runs
        .iter()
        .any(|r| r.config.data.dataroot.join("synth.json").is_file());
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
    for line in hypotheses(req, &runs, &per_run, &table, &ttests, &weights) {
        writeln!(page, "- {line}")?;
    }
    writeln!(
        page,
        "\n## Ablation (clean test images; mean ± sample std over seeds, n seeds)\n\n{md_table}"
    )?;
    writeln!(page, "Full table with every quantity and perturbation: [ablation_table.csv](ablation_table.csv).\n")?;
    writeln!(page, "## Significance\n")?;
    writeln!(page, "McNemar's test compares each variant with `{}` on the same images (joined by path), per seed and test set: exact binomial below 25 discordant pairs, else χ² with continuity correction. Paired t-tests compare them over seeds. Holm's correction is applied within each family (all McNemar rows; all t-test rows that have a p-value); `p_holm` < {ALPHA} is significant.\n", req.baseline)?;
    let significant = mcnemar.iter().filter(|m| m.p_holm < ALPHA).count();
    writeln!(page, "- McNemar: {} comparisons, {significant} significant after Holm — [significance_mcnemar.csv](significance_mcnemar.csv)", mcnemar.len())?;
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
fn true_scales(runs: &[Run]) -> BTreeMap<String, f64> {
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
    for dir in dirs {
        if let Ok(m) = crate::synth::read_manifest(&dir) {
            for f in m.families {
                out.insert(f.name, f.npr_scale);
            }
        }
    }
    out
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

/// The hypotheses of the study plan, each stated with its numbers and a verdict.
fn hypotheses(
    req: &ReportRequest,
    runs: &[Run],
    per_run: &[BTreeMap<(String, String), analysis::Scores>],
    table: &[Aggregate],
    ttests: &[TTestRow],
    weights: &[analysis::WeightRow],
) -> Vec<String> {
    let (base, att) = (req.baseline.as_str(), req.attention.as_str());
    let have = |v: &str| runs.iter().any(|r| r.variant == v);
    if !have(base) || !have(att) {
        return vec![format!("H2, H3, efficiency: cannot be evaluated — the runs need variants `{base}` and `{att}` (found {})", analysis::variants(runs).join(", "))];
    }
    let sets: Vec<String> = {
        let mut s: Vec<String> = per_run
            .iter()
            .flat_map(|m| m.keys())
            .filter(|k| k.0 == CLEAN)
            .map(|k| k.1.clone())
            .collect();
        s.sort();
        s.dedup();
        s
    };
    let mut lines = Vec::new();
    for set in &sets {
        // H2: accuracy gain on seen generators ≥ 2 points and significant over seeds.
        let (a, b) = (
            cell(table, att, set, "acc_seen"),
            cell(table, base, set, "acc_seen"),
        );
        let gain = a
            .and_then(|a| a.mean)
            .zip(b.and_then(|b| b.mean))
            .map(|(x, y)| x - y);
        let t = ttests
            .iter()
            .find(|t| t.variant == att && &t.set == set && t.quantity == "acc_seen");
        let verdict = match (gain, t.and_then(|t| t.p)) {
            (None, _) => "cannot be evaluated (no seen generators)".to_string(),
            (Some(g), Some(p)) => format!(
                "{} (gain {:+.2} points, paired t-test p = {p:.3}, n = {})",
                if g >= H2_MIN_GAIN && p < ALPHA {
                    "**met**"
                } else {
                    "**not met**"
                },
                g * 100.0,
                t.map_or(0, |t| t.n)
            ),
            (Some(g), None) => format!(
                "**not met** (gain {:+.2} points; no p-value: {})",
                g * 100.0,
                t.map_or("no paired seeds".into(), |t| t.note.clone())
            ),
        };
        lines.push(format!("H2 on `{set}` (`{att}` − `{base}` accuracy on seen generators ≥ {:.0} points, p < {ALPHA}): {verdict}", H2_MIN_GAIN * 100.0));
        // H3: the attention model's gap is below 5 points and below the baseline's.
        let (ga, gb) = (
            cell(table, att, set, "gap").and_then(|a| a.mean),
            cell(table, base, set, "gap").and_then(|a| a.mean),
        );
        let verdict = match (ga, gb) {
            (Some(x), Some(y)) => format!(
                "{} (gap {:+.2} vs baseline {:+.2} points)",
                if x < H3_MAX_GAP && x < y {
                    "**met**"
                } else {
                    "**not met**"
                },
                x * 100.0,
                y * 100.0
            ),
            _ => "cannot be evaluated (needs seen and unseen generators)".into(),
        };
        lines.push(format!("H3 on `{set}` (`{att}` generalization gap < {:.0} points and smaller than `{base}`'s): {verdict}", H3_MAX_GAP * 100.0));
        // Efficiency: test throughput from the runs' own timing.
        let ips = |v: &str| {
            let xs: Vec<f64> = runs
                .iter()
                .filter(|r| r.variant == v)
                .filter_map(|r| {
                    r.images_per_s
                        .get(&(CLEAN.to_string(), set.clone()))
                        .copied()
                })
                .collect();
            crate::stats::mean_std(&xs).map(|m| m.0)
        };
        lines.push(match (ips(att), ips(base)) {
            // End-to-end test timing includes decoding and shares the machine with whatever
            // else ran: identical runs gave ratios 1.15–1.41. Not evidence either way.
            (Some(a), Some(b)) => format!("Efficiency on `{set}` (inference time ≤ {MAX_TIME_RATIO}× the baseline's): **not established** — `npr test`'s end-to-end timing gives a ratio of {:.2} ({a:.0} vs {b:.0} images/s), but it includes the loader and varies between identical runs, so it is no verdict; measure with `npr bench` on the same machine. Peak memory ≤ 2×: not measured (no peak-memory figure in the runs)", b / a),
            _ => format!("Efficiency on `{set}`: not measured (no throughput in the runs' summary.json)"),
        });
    }
    // Interpretability: non-uniform weights that differ between generators.
    let rows: Vec<&analysis::WeightRow> = weights.iter().filter(|w| w.variant == att).collect();
    if rows.is_empty() {
        lines.push(format!(
            "Interpretability: cannot be evaluated (`{att}` runs have no attention_weights.npz)"
        ));
    } else {
        let mut by_scale: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for r in &rows {
            by_scale
                .entry(format!("{}", r.scale))
                .or_default()
                .push(r.mean);
        }
        let means: Vec<f64> = by_scale
            .values()
            .map(|v| v.iter().sum::<f64>() / v.len() as f64)
            .collect();
        let spread = means.iter().cloned().fold(f64::MIN, f64::max)
            - means.iter().cloned().fold(f64::MAX, f64::min);
        let anova = analysis::weights_differ_between_generators(runs, att);
        let adjusted = crate::stats::holm(&anova.iter().map(|a| a.2).collect::<Vec<_>>());
        let max_between = anova.iter().map(|a| a.3).fold(0.0, f64::max);
        let differ = adjusted.iter().any(|&p| p < ALPHA);
        lines.push(format!(
            "Interpretability (`{att}`): branch means span {spread:.3} ({}); between generators (fakes, one-way ANOVA per branch, Holm) the weights {} (largest difference of generator means {max_between:.3}; {})",
            if spread >= UNIFORM_SPREAD { "non-uniform" } else { "**close to uniform**" },
            if differ { "differ significantly" } else { "do **not** differ significantly" },
            anova.iter().zip(&adjusted).map(|(a, p)| format!("scale {}: F = {:.2}, p_holm = {p:.3}", a.0, a.1)).collect::<Vec<_>>().join("; ")
        ));
    }
    // Robustness: perturbed rows, attention against baseline.
    let mut levels: Vec<&Aggregate> = table
        .iter()
        .filter(|a| a.perturbation != CLEAN && a.quantity == "acc_all" && a.variant == att)
        .collect();
    levels.sort_by_key(|a| (a.set.clone(), analysis::level_order(&a.perturbation)));
    if levels.is_empty() {
        lines.push("Robustness: not measured (no perturbation sweep in the runs; `npr test --checkpoint RUN --sweep jpeg=75,90,100 --out RUN/test_jpeg`)".into());
    } else {
        let mut holds = true;
        let parts: Vec<String> = levels
            .iter()
            .map(|a| {
                let b = table
                    .iter()
                    .find(|x| {
                        x.variant == base
                            && x.perturbation == a.perturbation
                            && x.set == a.set
                            && x.quantity == "acc_all"
                    })
                    .and_then(|b| b.mean);
                holds &= matches!((a.mean, b), (Some(x), Some(y)) if x >= y);
                format!(
                    "{} on `{}`: {} vs {}",
                    a.perturbation,
                    a.set,
                    fmt(a.mean),
                    fmt(b)
                )
            })
            .collect();
        lines.push(format!(
            "Robustness (`{att}` at least as accurate as `{base}` at every perturbation level, all generators, mean over seeds): {} — {}",
            if holds { "**met**" } else { "**not met**" },
            parts.join("; ")
        ));
    }
    lines
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
    #[serde(flatten)]
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

/// Writes serialisable rows as CSV (header from the first row's fields), atomically.
fn write_csv<T: Serialize>(path: &Path, rows: &[T]) -> Result<()> {
    let mut s = String::new();
    let values: Vec<serde_json::Value> = rows
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<_, _>>()?;
    if let Some(serde_json::Value::Object(first)) = values.first() {
        let keys: Vec<&String> = first.keys().collect();
        s.push_str(
            &keys
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(","),
        );
        s.push('\n');
        for v in &values {
            let fields: Vec<String> = keys
                .iter()
                .map(|k| match &v[k.as_str()] {
                    serde_json::Value::Null => String::new(),
                    serde_json::Value::String(t) if t.contains([',', '"']) => {
                        format!("\"{}\"", t.replace('"', "\"\""))
                    }
                    serde_json::Value::String(t) => t.clone(),
                    other => other.to_string(),
                })
                .collect();
            s.push_str(&fields.join(","));
            s.push('\n');
        }
    }
    crate::atomic::write(path, s.as_bytes())
}
