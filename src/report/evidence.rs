//! The hypotheses' evidence from tested runs: the paired per-seed values and, where fewer
//! than 3 seeds give no useful interval over seeds, a bootstrap over test images; then the
//! verdicts of `hypotheses.rs`, one line each for `report.md`.
use std::collections::BTreeMap;

use anyhow::Result;

use super::analysis::{self, Scores, WeightRow, CLEAN};
use super::hypotheses::{self, Estimate, IntervalMethod, ALPHA};
use super::image_bootstrap::{Accuracies, PairedImages};
use super::runs::Run;

/// Branch weights whose means span less than this are called uniform.
const UNIFORM_SPREAD: f64 = 0.05;

/// Below this many paired seeds, intervals come from the image bootstrap.
const MIN_SEEDS_FOR_T: usize = 3;

/// What the lines are made from.
pub struct Evidence<'a> {
    pub runs: &'a [Run],
    pub per_run: &'a [BTreeMap<(String, String), Scores>],
    pub baseline: &'a str,
    pub attention: &'a str,
    pub resamples: usize,
    pub seed: u64,
}

/// A run with its scores per (perturbation, set).
type RunScores<'a> = (&'a Run, &'a BTreeMap<(String, String), Scores>);

/// A seed both variants have: (seed, attention, baseline).
type Pair<'a> = (u64, RunScores<'a>, RunScores<'a>);

impl<'a> Evidence<'a> {
    fn pairs(&self) -> Vec<Pair<'a>> {
        let of = |variant: &str| -> BTreeMap<u64, RunScores<'a>> {
            self.runs
                .iter()
                .zip(self.per_run)
                .filter(|(r, _)| r.variant == variant)
                .map(|(r, s)| (r.seed, (r, s)))
                .collect()
        };
        let (att, base) = (of(self.attention), of(self.baseline));
        att.into_iter()
            .filter_map(|(seed, a)| Some((seed, a, *base.get(&seed)?)))
            .collect()
    }

    /// Per paired seed, `f(attention scores, baseline scores)` at `key`, where defined.
    fn paired(
        &self,
        pairs: &[Pair],
        key: &(String, String),
        f: impl Fn(&Scores, &Scores) -> Option<f64>,
    ) -> Vec<f64> {
        pairs
            .iter()
            .filter_map(|(_, (_, a), (_, b))| f(a.get(key)?, b.get(key)?))
            .collect()
    }

    /// An estimate over seeds (n ≥ 3), else from the image bootstrap of `statistic` over
    /// the attention runs followed by the baseline runs of the paired seeds.
    fn estimate(
        &self,
        pairs: &[Pair],
        key: &(String, String),
        per_seed: &[f64],
        statistic: impl Fn(&[Accuracies], usize) -> Option<f64>,
    ) -> Result<Option<Estimate>> {
        if per_seed.len() >= MIN_SEEDS_FOR_T {
            return Ok(Estimate::over_seeds(per_seed));
        }
        let pairs: Vec<&Pair> = pairs
            .iter()
            .filter(|p| p.1 .1.contains_key(key) && p.2 .1.contains_key(key))
            .collect();
        if per_seed.is_empty() || pairs.is_empty() {
            return Ok(None);
        }
        let runs: Vec<&Run> = pairs
            .iter()
            .map(|p| p.1 .0)
            .chain(pairs.iter().map(|p| p.2 .0))
            .collect();
        let images = PairedImages::new(&runs, &key.0, &key.1)?;
        let n = pairs.len();
        Ok(images
            .interval(self.resamples, self.seed, |acc| statistic(acc, n))
            .map(|(value, lo, hi)| Estimate {
                value,
                lo,
                hi,
                n,
                method: IntervalMethod::ImageBootstrap {
                    resamples: self.resamples,
                },
            }))
    }

    /// The hypotheses' lines, one per hypothesis and clean test set.
    pub fn lines(&self) -> Result<Vec<String>> {
        let (base, att) = (self.baseline, self.attention);
        let have = |v: &str| self.runs.iter().any(|r| r.variant == v);
        if !have(base) || !have(att) {
            return Ok(vec![format!(
                "H2, H3, robustness, efficiency: {} — the runs need variants `{base}` and `{att}` (found {})",
                hypotheses::Verdict::CannotEvaluate,
                analysis::variants(self.runs).join(", ")
            )]);
        }
        let pairs = self.pairs();
        let mut lines = Vec::new();
        for set in clean_sets(self.per_run) {
            let key = (CLEAN.to_string(), set.clone());
            let gains = self.paired(&pairs, &key, |a, b| Some(a.acc_seen? - b.acc_seen?));
            let h2 = hypotheses::h2(&gains);
            lines.push(format!(
                "H2 on `{set}` (`{att}` − `{base}` accuracy on seen generators; primary, pre-specified, uncorrected): {} — {}",
                h2.verdict, h2.line
            ));

            let gaps = self.paired(&pairs, &key, |a, _| a.gap);
            let diffs = self.paired(&pairs, &key, |a, b| Some(a.gap? - b.gap?));
            let mean_gap =
                |acc: &[Accuracies], n: usize| mean(acc[..n].iter().map(Accuracies::gap));
            let gap = self.estimate(&pairs, &key, &gaps, mean_gap)?;
            let diff = self.estimate(&pairs, &key, &diffs, |acc, n| {
                Some(
                    mean(acc[..n].iter().map(Accuracies::gap))?
                        - mean(acc[n..].iter().map(Accuracies::gap))?,
                )
            })?;
            let h3 = hypotheses::h3(gap, diff);
            lines.push(format!(
                "H3 on `{set}` (`{att}` generalization gap < {:.0} points and smaller than `{base}`'s): {} — {}",
                hypotheses::H3_MAX_GAP * 100.0,
                h3.verdict,
                h3.line
            ));

            let mut levels = Vec::new();
            for level in perturbed_levels(self.per_run, &set) {
                let key = (level.clone(), set.clone());
                let diffs = self.paired(&pairs, &key, |a, b| Some(a.acc_all? - b.acc_all?));
                let est = self.estimate(&pairs, &key, &diffs, |acc, n| {
                    Some(
                        mean(acc[..n].iter().map(|a| a.all))?
                            - mean(acc[n..].iter().map(|a| a.all))?,
                    )
                })?;
                if let Some(e) = est {
                    levels.push((level, e));
                }
            }
            let robust = hypotheses::robustness(&levels);
            lines.push(format!(
                "Robustness on `{set}` (`{att}` − `{base}` accuracy, all generators, at every perturbation level, non-inferiority margin {:.0} point: met when every level's interval lies above −{0:.0}, not met when one lies below it): {} — {}",
                hypotheses::ROBUSTNESS_MARGIN * 100.0,
                robust.verdict,
                robust.line
            ));

            let ratios: Vec<f64> = pairs
                .iter()
                .filter_map(|(_, (a, _), (b, _))| {
                    Some(b.images_per_s.get(&key)? / a.images_per_s.get(&key)?)
                })
                .collect();
            let eff = hypotheses::efficiency(&ratios, hypotheses::Timing::EndToEndTest);
            lines.push(format!(
                "Efficiency on `{set}` (`{att}` inference time ≤ {}× `{base}`'s): {} — {}. Peak memory ≤ 2×: not measured by `npr test` (BENCHMARKS.md measures it)",
                hypotheses::MAX_TIME_RATIO,
                eff.verdict,
                eff.line
            ));
        }
        lines.push(interpretability(self.runs, att));
        Ok(lines)
    }
}

/// Interpretability (exploratory): are the attention's branch weights non-uniform, and do
/// they differ between generators (ANOVA on per-run means, Holm over branches)?
fn interpretability(runs: &[Run], att: &str) -> String {
    let rows: Vec<WeightRow> = analysis::branch_weights(runs, att);
    if rows.is_empty() {
        return format!("Interpretability (exploratory): cannot be evaluated (`{att}` runs have no attention_weights.npz)");
    }
    let mut by_scale: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for r in &rows {
        by_scale
            .entry(format!("{}", r.scale))
            .or_default()
            .push(r.mean);
    }
    let means: Vec<f64> = by_scale
        .values()
        .filter_map(|v| mean(v.iter().map(|&x| Some(x))))
        .collect();
    let spread = means.iter().cloned().fold(f64::MIN, f64::max)
        - means.iter().cloned().fold(f64::MAX, f64::min);
    let anova = analysis::weights_differ_between_generators(runs, att);
    if anova.is_empty() {
        return format!("Interpretability (`{att}`, exploratory): branch means span {spread:.3}; between generators: no test (fewer than 2 generators with fakes, or one run per generator and no spread)");
    }
    let adjusted = crate::stats::holm(&anova.iter().map(|a| a.2).collect::<Vec<_>>());
    let max_between = anova.iter().map(|a| a.3).fold(0.0, f64::max);
    let differ = adjusted.iter().any(|&p| p < ALPHA);
    format!(
        "Interpretability (`{att}`, exploratory): branch means span {spread:.3} ({}); between generators (fakes; one-way ANOVA per branch on the per-run mean weight of each generator, n = {} runs; Holm over branches) the weights {} (largest difference of generator means {max_between:.3}; {})",
        if spread >= UNIFORM_SPREAD { "non-uniform" } else { "close to uniform" },
        anova.first().map_or(0, |a| a.4),
        if differ { "differ significantly" } else { "do not differ significantly" },
        anova
            .iter()
            .zip(&adjusted)
            .map(|(a, p)| format!("scale {}: F = {:.2}, p_holm = {p:.3}", a.0, a.1))
            .collect::<Vec<_>>()
            .join("; ")
    )
}

/// The mean, None when any value is undefined.
fn mean(xs: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    crate::stats::mean(xs.collect::<Option<Vec<f64>>>()?)
}

/// The sets with clean scores, sorted.
fn clean_sets(per_run: &[BTreeMap<(String, String), Scores>]) -> Vec<String> {
    let mut s: Vec<String> = per_run
        .iter()
        .flat_map(|m| m.keys())
        .filter(|k| k.0 == CLEAN)
        .map(|k| k.1.clone())
        .collect();
    s.sort();
    s.dedup();
    s
}

/// The perturbation levels of `set`, in sweep order.
fn perturbed_levels(per_run: &[BTreeMap<(String, String), Scores>], set: &str) -> Vec<String> {
    let mut levels: Vec<String> = per_run
        .iter()
        .flat_map(|m| m.keys())
        .filter(|k| k.0 != CLEAN && k.1 == set)
        .map(|k| k.0.clone())
        .collect();
    levels.sort_by_key(|l| analysis::level_order(l));
    levels.dedup();
    levels
}
