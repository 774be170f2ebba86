//! `report.md`: the page to open first, one function per section.
use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Result;

use super::findings::Findings;
use super::hypotheses::{self, ALPHA};
use super::{analysis, evidence, tables, ReportRequest};

/// The page: hypotheses, ablation, significance, figures, attention, failure cases, runs.
/// `drawn` is what `figures::draw_all` drew and why the rest was not drawn.
pub fn render(
    req: &ReportRequest,
    f: &Findings,
    drawn: &(Vec<PathBuf>, Vec<String>),
    sheets: &[PathBuf],
) -> Result<String> {
    let mut page = String::new();
    hypotheses_section(&mut page, req, f)?;
    ablation_section(&mut page, f)?;
    significance_section(&mut page, req, f)?;
    figures_section(&mut page, &drawn.0, &drawn.1)?;
    attention_section(&mut page, f)?;
    failures_section(&mut page, sheets)?;
    runs_section(&mut page, req, f)?;
    Ok(page)
}

/// Which benchmark the report's banner names.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Benchmark {
    /// `npr synth`'s procedural images.
    Procedural,
    /// `npr synth --reals`: photographs and up-sampled fakes.
    Photos,
}

/// The photo benchmark when every run was tested on one; else the synthetic label as soon
/// as one run was tested on `npr synth` data (a mixed report is labelled by its weakest
/// part); else none (real data only).
fn benchmark(f: &Findings) -> Option<Benchmark> {
    let flags: Vec<(bool, bool)> = f.runs.iter().map(|r| (r.synthetic, r.photos)).collect();
    benchmark_of(&flags)
}

/// [`benchmark`] from each run's (synthetic, photos) flags.
fn benchmark_of(runs: &[(bool, bool)]) -> Option<Benchmark> {
    if !runs.is_empty() && runs.iter().all(|&(_, photos)| photos) {
        Some(Benchmark::Photos)
    } else if runs.iter().any(|&(synthetic, _)| synthetic) {
        Some(Benchmark::Procedural)
    } else {
        None
    }
}

/// The benchmark's banner, what was tested, and the hypotheses as verdicts.
fn hypotheses_section(page: &mut String, req: &ReportRequest, f: &Findings) -> Result<()> {
    // From the runs' own test records (complete.json), not from what the current
    // directory happens to hold.
    writeln!(page, "# Study report\n")?;
    let bench = benchmark(f);
    if bench == Some(Benchmark::Photos) {
        writeln!(page, "**Photo benchmark** (`npr synth --reals`): the reals are crops of real photographs; the fakes are crops of the same photographs brought back from a lower resolution by up-samplers (ESRGAN networks, classical interpolation), not images of generative models. These numbers describe that benchmark.\n")?;
    } else if bench == Some(Benchmark::Procedural) {
        writeln!(page, "**Synthetic benchmark** (`npr synth`): these numbers describe the embedded synthetic data, not real generators.\n")?;
    }
    writeln!(
        page,
        "{} tested runs; variants {}; baseline `{}`.\n",
        f.runs.len(),
        analysis::variants(&f.runs).join(", "),
        req.baseline
    )?;
    writeln!(page, "## Hypotheses\n")?;
    writeln!(page, "Each line gives the verdict (**met**, **not met** or **inconclusive**), the effect with its 95 % interval, the test, its p and n. H2 is the study plan's primary test and is decided as pre-specified (gain ≥ {:.0} points and paired t-test p < {ALPHA} over the same paired seeds), uncorrected; H3, robustness and efficiency are decided by where their 95 % intervals lie against the plan's thresholds (over seeds from 3 seeds on, else a bootstrap over test images, which holds the test set's sampling error only). The significance families below are exploratory, Holm-corrected within each. How each rule works: README_ATTENTION.md, \"How the report decides\".\n", hypotheses::H2_MIN_GAIN * 100.0)?;
    let evidence = evidence::Evidence {
        runs: &f.runs,
        per_run: &f.per_run,
        baseline: &req.baseline,
        attention: &req.attention,
        resamples: req.bootstrap_resamples,
        seed: req.seed,
    };
    for line in evidence.lines()? {
        writeln!(page, "- {line}")?;
    }
    Ok(())
}

/// The ablation table (clean images).
fn ablation_section(page: &mut String, f: &Findings) -> Result<()> {
    writeln!(
        page,
        "\n## Ablation (clean test images; mean ± sample std over seeds, n seeds)\n\n{}",
        tables::ablation_markdown(&f.table)
    )?;
    writeln!(page, "Full table with every quantity and perturbation: [ablation_table.csv](ablation_table.csv).\n")?;
    Ok(())
}

/// The exploratory significance families, Holm within each.
fn significance_section(page: &mut String, req: &ReportRequest, f: &Findings) -> Result<()> {
    let sig = &f.significance;
    writeln!(page, "## Significance\n")?;
    writeln!(page, "Exploratory. McNemar's test compares each variant with `{}` on the same images (joined by path), per seed and test set, exact binomial at every size: it speaks of two trained model instances. The Cochran–Mantel–Haenszel test pools the seeds (strata = seeds, the same images; conservative, as it ignores the pairing by image) and speaks of the configurations. Paired t-tests compare the variants over seeds. Holm's correction is applied within each family; `p_holm` < {ALPHA} is significant.\n", req.baseline)?;
    let significant = sig.mcnemar.iter().filter(|m| m.p_holm < ALPHA).count();
    writeln!(page, "- McNemar (per seed): {} comparisons, {significant} significant after Holm — [significance_mcnemar.csv](significance_mcnemar.csv)", sig.mcnemar.len())?;
    writeln!(page, "- Cochran–Mantel–Haenszel (seeds pooled): {} comparisons, {} significant after Holm — [significance_cmh.csv](significance_cmh.csv)", sig.cmh.len(), sig.cmh.iter().filter(|c| c.p_holm.is_some_and(|p| p < ALPHA)).count())?;
    for c in &sig.cmh {
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
    let tested = sig.ttests.iter().filter(|t| t.p.is_some()).count();
    writeln!(page, "- paired t-tests: {} comparisons, {tested} with a p-value, {} significant after Holm — [significance_ttest.csv](significance_ttest.csv)", sig.ttests.len(), sig.ttests.iter().filter(|t| t.p_holm.is_some_and(|p| p < ALPHA)).count())?;
    writeln!(page, "- bootstrap: 95 % percentile intervals of acc, AP and AUC per run and set, {} resamples, seed {} — [bootstrap.csv](bootstrap.csv)\n", req.bootstrap_resamples, req.seed)?;
    Ok(())
}

/// Every figure drawn, and why any was not.
fn figures_section(page: &mut String, figures: &[PathBuf], not_drawn: &[String]) -> Result<()> {
    writeln!(
        page,
        "## Figures\n\nEach as PDF (vector, real text), PNG and SVG.\n"
    )?;
    for f in figures {
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
    for why in not_drawn {
        writeln!(page, "- not drawn — {why}")?;
    }
    writeln!(page)?;
    Ok(())
}

/// Branch weights and, on the synthetic benchmark, scale selection.
fn attention_section(page: &mut String, f: &Findings) -> Result<()> {
    writeln!(page, "## Attention\n\nMean ± std branch weight per generator, label and scale: [branch_weights.csv](branch_weights.csv).\n")?;
    if f.truth.is_empty() {
        writeln!(page, "Scale selection: not measured (no `synth.json` beside the test sets: true scales are known only on the synthetic benchmark).\n")?;
    } else {
        let bench = match benchmark(f) {
            Some(Benchmark::Photos) => "photo benchmark",
            _ => "synthetic benchmark",
        };
        writeln!(page, "Scale selection on the {bench} (share of fakes whose highest-weighted NPR branch, identity excluded, is the family's true scale; pooled over seeds) — [scale_selection.csv](scale_selection.csv):\n\n| variant | family | true scale | fakes | share | chance |\n| --- | --- | ---: | ---: | ---: | ---: |")?;
        for s in &f.selection {
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
        for v in &f.fixed {
            writeln!(
                page,
                "| {v} | all | | | n/a (weights do not depend on the image) | |"
            )?;
        }
        writeln!(page)?;
    }
    Ok(())
}

/// The failure-case table and contact sheets.
fn failures_section(page: &mut String, sheets: &[PathBuf]) -> Result<()> {
    writeln!(page, "## Failure cases\n\nThe 5 most confident mistakes per run and generator: [failure_cases.csv](failure_cases.csv). Contact sheets (each variant's first seed):\n")?;
    for p in sheets {
        let name = p.file_name().unwrap_or_default().to_string_lossy();
        writeln!(page, "- [{name}]({name})")?;
    }
    writeln!(page)?;
    Ok(())
}

/// Every run and the command that made the page.
fn runs_section(page: &mut String, req: &ReportRequest, f: &Findings) -> Result<()> {
    writeln!(
        page,
        "## Runs\n\n| run | variant | seed | revision | command |\n| --- | --- | ---: | --- | --- |"
    )?;
    for r in &f.runs {
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
        req.out.display(),
        env!("CARGO_PKG_VERSION")
    )?;
    Ok(())
}

fn fmt(x: Option<f64>) -> String {
    x.map_or_else(|| "n/a".into(), |v| format!("{v:.4}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_banner_names_the_photo_benchmark_only_when_every_run_used_one() {
        use Benchmark::*;
        let (real, procedural, photos) = ((false, false), (true, false), (true, true));
        for (runs, want) in [
            (vec![photos, photos], Some(Photos)),
            (vec![procedural, procedural], Some(Procedural)),
            (vec![photos, procedural], Some(Procedural)),
            (vec![photos, real], Some(Procedural)),
            (vec![real, procedural], Some(Procedural)),
            (vec![real, real], None),
            (vec![], None),
        ] {
            assert_eq!(benchmark_of(&runs), want, "{runs:?}");
        }
    }
}
