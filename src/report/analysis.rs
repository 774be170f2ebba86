//! The study's numbers from tested runs: per-run scores on seen and unseen generators,
//! the ablation table over seeds, bootstrap intervals, branch weights and scale selection
//! (significance against the baseline: `significance.rs`). Pure functions of the runs;
//! writing is in `tables.rs`.
use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::runs::Run;
use crate::eval::metrics;
use crate::eval::scale_selection::WeightedImage;
use crate::progress::Progress;
use crate::stats;

/// The perturbation level of the main table (the unperturbed test images).
pub const CLEAN: &str = "none";

/// Sort key of perturbation levels: clean first, then by kind, each kind in numeric order
/// (`jpeg=75` before `jpeg=100`).
pub fn level_order(level: &str) -> (bool, String, i64) {
    let digits: String = level.chars().filter(|c| c.is_ascii_digit()).collect();
    let kind: String = level.chars().filter(|c| !c.is_ascii_digit()).collect();
    (level != CLEAN, kind, digits.parse().unwrap_or(0))
}

/// One run's scores on one (perturbation, set): the mean over seen generators, over
/// unseen ones, and the set's mean row.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Scores {
    pub acc_seen: Option<f64>,
    pub acc_unseen: Option<f64>,
    pub acc_all: Option<f64>,
    pub ap_seen: Option<f64>,
    pub ap_unseen: Option<f64>,
    pub ap_all: Option<f64>,
    pub auc_seen: Option<f64>,
    pub auc_unseen: Option<f64>,
    pub auc_all: Option<f64>,
    /// acc_seen − acc_unseen.
    pub gap: Option<f64>,
}

/// The quantities of [`Scores`] by name, in table order.
pub const QUANTITIES: [&str; 10] = [
    "acc_seen",
    "acc_unseen",
    "acc_all",
    "ap_seen",
    "ap_unseen",
    "ap_all",
    "auc_seen",
    "auc_unseen",
    "auc_all",
    "gap",
];

impl Scores {
    pub fn get(&self, name: &str) -> Option<f64> {
        match name {
            "acc_seen" => self.acc_seen,
            "acc_unseen" => self.acc_unseen,
            "acc_all" => self.acc_all,
            "ap_seen" => self.ap_seen,
            "ap_unseen" => self.ap_unseen,
            "ap_all" => self.ap_all,
            "auc_seen" => self.auc_seen,
            "auc_unseen" => self.auc_unseen,
            "auc_all" => self.auc_all,
            "gap" => self.gap,
            _ => None,
        }
    }
}

/// A run's [`Scores`] per (perturbation, set).
pub fn scores(run: &Run) -> BTreeMap<(String, String), Scores> {
    let keys: BTreeSet<(String, String)> = run
        .metrics
        .iter()
        .map(|m| (m.perturbation.clone(), m.set.clone()))
        .collect();
    keys.into_iter()
        .map(|key| {
            let rows: Vec<_> = run
                .metrics
                .iter()
                .filter(|m| {
                    (m.perturbation.as_str(), m.set.as_str()) == (key.0.as_str(), key.1.as_str())
                })
                .collect();
            let over = |seen: bool, f: &dyn Fn(&super::runs::MetricRow) -> Option<f64>| {
                crate::stats::mean(
                    rows.iter()
                        .filter(|m| m.seen == Some(seen))
                        .filter_map(|m| f(m)),
                )
            };
            let all = |f: &dyn Fn(&super::runs::MetricRow) -> Option<f64>| {
                rows.iter()
                    .find(|m| m.generator == "mean")
                    .and_then(|m| f(m))
            };
            let acc = |m: &super::runs::MetricRow| Some(m.acc);
            let ap = |m: &super::runs::MetricRow| m.ap;
            let auc = |m: &super::runs::MetricRow| m.auc;
            let s = Scores {
                acc_seen: over(true, &acc),
                acc_unseen: over(false, &acc),
                acc_all: all(&acc),
                ap_seen: over(true, &ap),
                ap_unseen: over(false, &ap),
                ap_all: all(&ap),
                auc_seen: over(true, &auc),
                auc_unseen: over(false, &auc),
                auc_all: all(&auc),
                gap: None,
            };
            let gap = s.acc_seen.zip(s.acc_unseen).map(|(a, b)| a - b);
            (key, Scores { gap, ..s })
        })
        .collect()
}

/// One cell of the ablation table: a quantity over the seeds of a variant.
#[derive(Debug, Clone, Serialize)]
pub struct Aggregate {
    pub variant: String,
    pub perturbation: String,
    pub set: String,
    pub quantity: String,
    pub n: usize,
    pub mean: Option<f64>,
    /// Sample standard deviation (n − 1); 0 for one seed.
    pub std: Option<f64>,
}

/// Variants in first-seen order (the sweep's order when the runs come from one).
pub fn variants(runs: &[Run]) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for r in runs {
        if !v.contains(&r.variant) {
            v.push(r.variant.clone());
        }
    }
    v
}

/// Mean ± std over seeds of every quantity, per variant, perturbation and set.
pub fn ablation_table(
    runs: &[Run],
    per_run: &[BTreeMap<(String, String), Scores>],
) -> Vec<Aggregate> {
    let keys: BTreeSet<(String, String)> = per_run.iter().flat_map(|s| s.keys().cloned()).collect();
    let mut out = Vec::new();
    for variant in variants(runs) {
        for key in &keys {
            for q in QUANTITIES {
                let xs: Vec<f64> = runs
                    .iter()
                    .zip(per_run)
                    .filter(|(r, _)| r.variant == variant)
                    .filter_map(|(_, s)| s.get(key)?.get(q))
                    .collect();
                let ms = stats::mean_std(&xs);
                out.push(Aggregate {
                    variant: variant.clone(),
                    perturbation: key.0.clone(),
                    set: key.1.clone(),
                    quantity: q.to_string(),
                    n: xs.len(),
                    mean: ms.map(|m| m.0),
                    std: ms.map(|m| m.1),
                });
            }
        }
    }
    out
}

/// A bootstrap interval of one run on one set (clean images).
#[derive(Debug, Clone, Serialize)]
pub struct BootstrapRow {
    pub variant: String,
    pub seed: u64,
    pub set: String,
    pub metric: String,
    pub estimate: Option<f64>,
    pub lo: Option<f64>,
    pub hi: Option<f64>,
}

/// Seeded 95 % percentile bootstrap intervals of accuracy, AP and AUC per run and set.
pub fn bootstrap(
    runs: &[Run],
    resamples: usize,
    seed: u64,
    progress: &Progress,
) -> Vec<BootstrapRow> {
    let mut out = Vec::new();
    for r in runs {
        progress.inc(1);
        let sets: BTreeSet<&str> = r
            .predictions
            .iter()
            .filter(|p| p.perturbation == CLEAN)
            .map(|p| p.set.as_str())
            .collect();
        for set in sets {
            let (labels, logits) = r.clean_scores(set);
            let metric = |name: &str, idx: &[usize]| -> Option<f64> {
                let l: Vec<u8> = idx.iter().map(|&i| labels[i]).collect();
                let x: Vec<f64> = idx.iter().map(|&i| logits[i]).collect();
                let m = metrics::from_logits(&l, &x).ok()?;
                match name {
                    "acc" => m.acc,
                    "ap" => m.ap,
                    _ => m.auc,
                }
            };
            let all: Vec<usize> = (0..labels.len()).collect();
            for name in ["acc", "ap", "auc"] {
                let ci = stats::bootstrap_ci(labels.len(), resamples, 0.95, seed, |idx| {
                    metric(name, idx)
                });
                out.push(BootstrapRow {
                    variant: r.variant.clone(),
                    seed: r.seed,
                    set: set.to_string(),
                    metric: name.into(),
                    estimate: metric(name, &all),
                    lo: ci.map(|c| c.0),
                    hi: ci.map(|c| c.1),
                });
            }
        }
    }
    out
}

/// Mean ± std of each branch's weight per generator and label, over the images of every
/// run of `variant` (from `attention_weights.npz`).
#[derive(Debug, Clone, Serialize)]
pub struct WeightRow {
    pub variant: String,
    pub generator: String,
    pub label: u8,
    pub scale: f64,
    pub n: usize,
    pub mean: f64,
    pub std: f64,
}

pub fn branch_weights(runs: &[Run], variant: &str) -> Vec<WeightRow> {
    let mut groups: BTreeMap<(String, u8, usize), (f64, Vec<f64>)> = BTreeMap::new();
    for r in runs.iter().filter(|r| r.variant == variant) {
        let Some(w) = &r.weights else { continue };
        for (g, label, per_branch) in &w.images {
            for (b, &x) in per_branch.iter().enumerate() {
                let name = w.generators.get(*g).cloned().unwrap_or_default();
                groups
                    .entry((name, *label, b))
                    .or_insert((w.scales[b], Vec::new()))
                    .1
                    .push(x);
            }
        }
    }
    groups
        .into_iter()
        .filter_map(|((generator, label, _), (scale, xs))| {
            let (mean, std) = stats::mean_std(&xs)?;
            Some(WeightRow {
                variant: variant.into(),
                generator,
                label,
                scale,
                n: xs.len(),
                mean,
                std,
            })
        })
        .collect()
}

/// Does a branch's weight differ between generators? One-way ANOVA per branch whose
/// observations are the per-run mean weights of each generator's fakes (one value per
/// generator and seed): the images of one trained model are not independent replicates,
/// so pooling them would inflate the degrees of freedom. Returns (scale, F, p, largest
/// difference of generator means, runs).
pub fn weights_differ_between_generators(
    runs: &[Run],
    variant: &str,
) -> Vec<(f64, f64, f64, f64, usize)> {
    let weighted: Vec<&super::runs::BranchWeights> = runs
        .iter()
        .filter(|r| r.variant == variant)
        .filter_map(|r| r.weights.as_ref())
        .collect();
    let Some(first) = weighted.first() else {
        return Vec::new();
    };
    let k = first.scales.len();
    (0..k)
        .filter_map(|b| {
            let mut groups: BTreeMap<String, Vec<f64>> = BTreeMap::new();
            for w in &weighted {
                let mut per_gen: BTreeMap<String, Vec<f64>> = BTreeMap::new();
                for (g, label, per_branch) in &w.images {
                    if *label == 1 {
                        per_gen
                            .entry(w.generators.get(*g).cloned().unwrap_or_default())
                            .or_default()
                            .push(per_branch[b]);
                    }
                }
                for (g, xs) in per_gen {
                    groups.entry(g).or_default().extend(stats::mean(xs));
                }
            }
            let groups: Vec<Vec<f64>> = groups.into_values().filter(|g| !g.is_empty()).collect();
            let (f, p) = stats::one_way_anova(&groups)?;
            let means: Vec<f64> = groups
                .iter()
                .filter_map(|g| stats::mean(g.clone()))
                .collect();
            let spread = means.iter().cloned().fold(f64::MIN, f64::max)
                - means.iter().cloned().fold(f64::MAX, f64::min);
            Some((first.scales[b], f, p, spread, weighted.len()))
        })
        .collect()
}

/// Scale selection against the synthetic benchmark's ground truth: per family, the share of
/// fakes whose highest-weighted NPR branch (the identity branch excluded) is the family's
/// true scale, pooled over the variant's seeds.
#[derive(Debug, Clone, Serialize)]
pub struct ScaleSelection {
    pub variant: String,
    pub generator: String,
    pub true_scale: f64,
    pub fakes: usize,
    /// None when the true scale is not one of the model's branches.
    pub share_top_is_true: Option<f64>,
    /// What picking a branch at random would score: 1 / (number of NPR branches).
    pub chance: f64,
}

/// [`ScaleSelection`] rows for `variant`, given each family's true NPR scale: the measure
/// `npr test` writes per run (`eval::scale_selection`), here over the images of every seed.
pub fn scale_selection(
    runs: &[Run],
    variant: &str,
    true_scale: &BTreeMap<String, f64>,
) -> Vec<ScaleSelection> {
    let weighted: Vec<_> = runs
        .iter()
        .filter(|r| r.variant == variant)
        .filter_map(|r| r.weights.as_ref())
        .collect();
    let Some(scales) = weighted.first().map(|w| &w.scales) else {
        return Vec::new();
    };
    let images = weighted.iter().flat_map(|w| {
        w.images.iter().map(|(g, label, per_branch)| {
            // Several test sets name generators `set/generator`.
            let name = w.generators.get(*g).map_or("", String::as_str);
            WeightedImage {
                generator: name.rsplit('/').next().unwrap_or(name),
                label: *label,
                weights: per_branch,
            }
        })
    });
    crate::eval::scale_selection::scale_selection(scales, true_scale, images)
        .into_iter()
        .filter_map(|r| {
            Some(ScaleSelection {
                variant: variant.into(),
                true_scale: r.true_scale?,
                generator: r.generator,
                fakes: r.fakes,
                share_top_is_true: r.share_top_is_true,
                chance: r.chance,
            })
        })
        .filter(|r| r.fakes > 0)
        .collect()
}
