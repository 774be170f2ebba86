//! The files `npr test` writes (ARCHITECTURE.md, Outputs). Metrics are computed elsewhere; this module
//! only groups, formats and writes.
//!
//! ```text
//! OUT/metrics.csv            one row per (perturbation, set, generator) + a mean row per set
//! OUT/summary.json           the same, plus the generalization gap and throughput
//! OUT/predictions.csv        path, set, generator, label, score, pred (+ perturbation)
//! OUT/confusion.csv          tn, fp, fn, tp per generator
//! OUT/roc.csv, OUT/pr.csv    curve points per generator
//! OUT/misclassified.csv      failure cases per generator, most confident first
//! OUT/attention_weights.npz  per-image branch weights, labels, scores, generators, features
//! OUT/scale_selection.csv    top NPR branch vs the true scale, mean weights (synth.json data)
//! ```
use std::path::Path;

use anyhow::Result;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::metrics::{self, BinaryMetrics};
use super::scale_selection::SelectionRow;
use crate::table::{self, fixed, fixed_columns, fixed_or_empty, or_na, plain, plain_or_empty};

/// One row of `predictions.csv`: one image at one perturbation level. `logit` is what the
/// ranking metrics use (scores of confident images round to 1); `pred` is the call,
/// `eval::score::is_fake(logit)`. The report reads the file back into this type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub path: String,
    pub set: String,
    pub generator: String,
    pub label: u8,
    #[serde(serialize_with = "plain")]
    pub logit: f64,
    #[serde(serialize_with = "fixed::<8, _>")]
    pub score: f64,
    pub pred: u8,
    /// Absent in files written before sweeps shared one folder: the clean level.
    #[serde(default = "clean_level")]
    pub perturbation: String,
}

fn clean_level() -> String {
    "none".into()
}

impl Prediction {
    pub fn correct(&self) -> bool {
        self.pred == self.label
    }
}

/// Metrics of one generator (or the mean over a set's generators).
#[derive(Debug, Clone, Serialize)]
pub struct GeneratorRow {
    pub perturbation: String,
    pub set: String,
    pub generator: String,
    /// Seen in training; None when unknown.
    pub seen: Option<bool>,
    /// The preprocessing used, e.g. `resize=256,crop=none`.
    pub policy: String,
    pub metrics: BinaryMetrics,
}

/// One row of `metrics.csv`; the report reads the file back into this type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsLine {
    pub perturbation: String,
    pub set: String,
    /// A generator, or `mean` (the set's mean row).
    pub generator: String,
    /// `seen`, `unseen`, or `n/a` (unknown, and the mean row).
    #[serde(with = "seen_column")]
    pub seen: Option<bool>,
    pub policy: String,
    pub n_real: u64,
    pub n_fake: u64,
    #[serde(with = "or_na")]
    pub acc: Option<f64>,
    #[serde(with = "or_na")]
    pub ap: Option<f64>,
    #[serde(with = "or_na")]
    pub auc: Option<f64>,
    #[serde(with = "or_na")]
    pub f1: Option<f64>,
    #[serde(with = "or_na")]
    pub precision: Option<f64>,
    #[serde(with = "or_na")]
    pub recall: Option<f64>,
    #[serde(with = "or_na")]
    pub r_acc: Option<f64>,
    #[serde(with = "or_na")]
    pub f_acc: Option<f64>,
    #[serde(with = "or_na")]
    pub eer: Option<f64>,
    #[serde(with = "or_na")]
    pub best_acc_oracle: Option<f64>,
    #[serde(with = "or_na")]
    pub best_threshold_oracle: Option<f64>,
    #[serde(with = "or_na")]
    pub tpr_at_fpr_1pct: Option<f64>,
    #[serde(with = "or_na")]
    pub tpr_at_fpr_5pct: Option<f64>,
}

impl From<&GeneratorRow> for MetricsLine {
    fn from(r: &GeneratorRow) -> Self {
        let m = &r.metrics;
        MetricsLine {
            perturbation: r.perturbation.clone(),
            set: r.set.clone(),
            generator: r.generator.clone(),
            seen: r.seen,
            policy: r.policy.clone(),
            n_real: m.n_real,
            n_fake: m.n_fake,
            acc: m.acc,
            ap: m.ap,
            auc: m.auc,
            f1: m.f1,
            precision: m.precision,
            recall: m.recall,
            r_acc: m.r_acc,
            f_acc: m.f_acc,
            eer: m.eer,
            best_acc_oracle: m.best_acc,
            best_threshold_oracle: m.best_threshold,
            tpr_at_fpr_1pct: m.tpr_at_fpr_1pct,
            tpr_at_fpr_5pct: m.tpr_at_fpr_5pct,
        }
    }
}

/// The `seen` column of `metrics.csv`.
mod seen_column {
    use super::*;

    pub fn serialize<S: Serializer>(seen: &Option<bool>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match seen {
            Some(true) => "seen",
            Some(false) => "unseen",
            None => table::NA,
        })
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        Ok(match String::deserialize(d)?.as_str() {
            "seen" => Some(true),
            "unseen" => Some(false),
            _ => None,
        })
    }
}

pub fn write_metrics_csv(path: &Path, rows: &[GeneratorRow]) -> Result<()> {
    table::write(path, rows.iter().map(MetricsLine::from))
}

/// Mean of the defined values; None when none is defined.
pub fn mean_defined(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    crate::stats::mean(values.flatten())
}

/// The mean over generators of every metric (the field's "mean" row); counts are summed.
pub fn mean_row(rows: &[&GeneratorRow], perturbation: &str, set: &str) -> GeneratorRow {
    let pick =
        |f: fn(&BinaryMetrics) -> Option<f64>| mean_defined(rows.iter().map(|r| f(&r.metrics)));
    let first = rows[0];
    let mut m = first.metrics.clone();
    m.n_real = rows.iter().map(|r| r.metrics.n_real).sum();
    m.n_fake = rows.iter().map(|r| r.metrics.n_fake).sum();
    m.acc = pick(|m| m.acc);
    m.ap = pick(|m| m.ap);
    m.auc = pick(|m| m.auc);
    m.f1 = pick(|m| m.f1);
    m.precision = pick(|m| m.precision);
    m.recall = pick(|m| m.recall);
    m.r_acc = pick(|m| m.r_acc);
    m.f_acc = pick(|m| m.f_acc);
    m.eer = pick(|m| m.eer);
    m.best_acc = pick(|m| m.best_acc);
    m.best_threshold = None;
    m.tpr_at_fpr_1pct = pick(|m| m.tpr_at_fpr_1pct);
    m.tpr_at_fpr_5pct = pick(|m| m.tpr_at_fpr_5pct);
    let mut confusion = [[0u64; 2]; 2];
    for r in rows {
        for (i, row) in r.metrics.confusion.iter().enumerate() {
            for (j, v) in row.iter().enumerate() {
                confusion[i][j] += v;
            }
        }
    }
    m.confusion = confusion;
    GeneratorRow {
        perturbation: perturbation.into(),
        set: set.into(),
        generator: "mean".into(),
        seen: None,
        policy: first.policy.clone(),
        metrics: m,
    }
}

/// Mean accuracy on seen minus mean accuracy on unseen generators.
pub fn generalization_gap(rows: &[&GeneratorRow]) -> Option<f64> {
    let accs = |seen: bool| -> Vec<f64> {
        rows.iter()
            .filter(|r| r.seen == Some(seen))
            .filter_map(|r| r.metrics.acc)
            .collect()
    };
    metrics::generalization_gap(&accs(true), &accs(false))
}

/// `predictions.csv`: every image at every level, levels in sweep order.
pub fn write_predictions_csv(path: &Path, predictions: &[Prediction]) -> Result<()> {
    table::write(path, predictions)
}

/// One row of `scale_selection.csv`, then one column per branch weight (reals, then fakes).
#[derive(Serialize)]
struct SelectionLine<'a> {
    set: &'a str,
    generator: &'a str,
    seen: Option<bool>,
    #[serde(serialize_with = "plain_or_empty")]
    true_scale: Option<f64>,
    reals: usize,
    fakes: usize,
    #[serde(serialize_with = "fixed_or_empty::<6, _>")]
    share_top_is_true: Option<f64>,
    #[serde(serialize_with = "fixed::<6, _>")]
    chance: f64,
    #[serde(serialize_with = "fixed_columns::<6, _>")]
    weights: Vec<f64>,
}

/// `scale_selection.csv`: per set and generator, the share of fakes whose top NPR branch is
/// the true scale and the mean weight of every branch for reals and fakes (empty where a
/// class is absent or the manifest names no scale).
pub fn write_scale_selection_csv(
    path: &Path,
    scales: &[f64],
    rows: &[(String, Option<bool>, SelectionRow)],
) -> Result<()> {
    let mut header: Vec<String> = [
        "set",
        "generator",
        "seen",
        "true_scale",
        "reals",
        "fakes",
        "share_top_is_true",
        "chance",
    ]
    .map(String::from)
    .to_vec();
    for class in ["real", "fake"] {
        header.extend(scales.iter().map(|s| format!("weight_{class}_{s}")));
    }
    let lines = rows.iter().map(|(set, seen, r)| SelectionLine {
        set,
        generator: &r.generator,
        seen: *seen,
        true_scale: r.true_scale,
        reals: r.reals,
        fakes: r.fakes,
        share_top_is_true: r.share_top_is_true,
        chance: r.chance,
        weights: r
            .mean_weight_real
            .iter()
            .chain(&r.mean_weight_fake)
            .copied()
            .collect(),
    });
    table::write_with_header(path, &header, lines)
}

/// One row of `confusion.csv`.
#[derive(Serialize)]
struct ConfusionLine<'a> {
    perturbation: &'a str,
    set: &'a str,
    generator: &'a str,
    tn: u64,
    fp: u64,
    #[serde(rename = "fn")]
    fn_: u64,
    tp: u64,
}

pub fn write_confusion_csv(path: &Path, rows: &[GeneratorRow]) -> Result<()> {
    table::write(
        path,
        rows.iter().map(|r| {
            let c = r.metrics.confusion;
            ConfusionLine {
                perturbation: &r.perturbation,
                set: &r.set,
                generator: &r.generator,
                tn: c[0][0],
                fp: c[0][1],
                fn_: c[1][0],
                tp: c[1][1],
            }
        }),
    )
}

/// One point of a ROC (`x` = fpr, `y` = tpr) or PR (`x` = recall, `y` = precision) curve;
/// the threshold as a logit and as a score (empty at the PR curve's end point).
#[derive(Serialize)]
struct CurvePoint<'a> {
    set: &'a str,
    generator: &'a str,
    #[serde(serialize_with = "plain")]
    x: f64,
    #[serde(serialize_with = "plain")]
    y: f64,
    #[serde(serialize_with = "plain_or_empty")]
    threshold_logit: Option<f64>,
    #[serde(serialize_with = "plain_or_empty")]
    threshold: Option<f64>,
}

/// ROC and PR curve points of every generator with both classes, from logits (one point
/// per distinct logit); each threshold is given as a logit and as a score.
pub fn write_curves(
    roc_path: &Path,
    pr_path: &Path,
    groups: &[(String, String, Vec<u8>, Vec<f64>)],
) -> Result<()> {
    let (mut roc, mut pr) = (Vec::new(), Vec::new());
    for (set, generator, labels, logits) in groups {
        let point = |x: f64, y: f64, t: Option<f64>| CurvePoint {
            set,
            generator,
            x,
            y,
            threshold_logit: t,
            threshold: t.map(metrics::sigmoid),
        };
        if let Some(c) = metrics::roc_curve(labels, logits)? {
            roc.extend((0..c.fpr.len()).map(|i| point(c.fpr[i], c.tpr[i], Some(c.thresholds[i]))));
        }
        if let Some(c) = metrics::pr_curve(labels, logits)? {
            pr.extend(
                (0..c.precision.len())
                    .map(|i| point(c.recall[i], c.precision[i], c.thresholds.get(i).copied())),
            );
        }
    }
    let header = |x: &str, y: &str| {
        ["set", "generator", x, y, "threshold_logit", "threshold"].map(String::from)
    };
    table::write_with_header(roc_path, &header("fpr", "tpr"), roc)?;
    table::write_with_header(pr_path, &header("recall", "precision"), pr)
}

/// One row of `misclassified.csv`.
#[derive(Serialize)]
struct Mistake<'a> {
    perturbation: &'a str,
    set: &'a str,
    generator: &'a str,
    path: &'a str,
    label: u8,
    #[serde(serialize_with = "plain")]
    logit: f64,
    #[serde(serialize_with = "fixed::<8, _>")]
    score: f64,
    #[serde(serialize_with = "fixed::<6, _>")]
    confidence: f64,
}

/// Wrongly classified images, per perturbation level (in sweep order) and generator, most
/// confident mistakes first (largest |logit|, which keeps ordering where scores round to 0
/// or 1).
pub fn write_misclassified_csv(path: &Path, predictions: &[Prediction]) -> Result<()> {
    let mut rows = Vec::new();
    for level in predictions.chunk_by(|a, b| a.perturbation == b.perturbation) {
        let mut wrong: Vec<&Prediction> = level.iter().filter(|p| !p.correct()).collect();
        wrong.sort_by(|a, b| {
            (a.set.as_str(), a.generator.as_str())
                .cmp(&(b.set.as_str(), b.generator.as_str()))
                .then(b.logit.abs().total_cmp(&a.logit.abs()))
        });
        rows.extend(wrong.into_iter().map(|p| Mistake {
            perturbation: &p.perturbation,
            set: &p.set,
            generator: &p.generator,
            path: &p.path,
            label: p.label,
            logit: p.logit,
            score: p.score,
            confidence: (p.score - 0.5).abs() / 0.5,
        }));
    }
    let header = [
        "perturbation",
        "set",
        "generator",
        "path",
        "label",
        "logit",
        "score",
        "confidence",
    ];
    table::write_with_header(path, &header.map(String::from), rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn means_skip_undefined_values() {
        assert_eq!(
            mean_defined([Some(1.0), None, Some(0.5)].into_iter()),
            Some(0.75)
        );
        assert_eq!(mean_defined([None, None].into_iter()), None);
    }
}
