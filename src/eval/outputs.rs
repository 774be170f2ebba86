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
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use super::metrics::{self, fmt_opt, BinaryMetrics};
use super::scale_selection::SelectionRow;

/// One scored image, flattened for the files.
#[derive(Debug, Clone)]
pub struct Scored {
    pub path: String,
    pub set: String,
    pub generator: String,
    pub label: u8,
    pub logit: f64,
    pub score: f64,
}

impl Scored {
    /// Predicted fake: `logit > 0`, i.e. `score > 0.5`.
    pub fn pred(&self) -> u8 {
        u8::from(self.logit > 0.0)
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

/// Quotes a CSV field when it holds a comma, quote or newline (RFC 4180).
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn write_file(path: &Path, text: &str) -> Result<()> {
    crate::atomic::write(path, text.as_bytes())
}

pub const METRICS_HEADER: &str = "perturbation,set,generator,seen,policy,n_real,n_fake,acc,ap,auc,f1,precision,recall,r_acc,f_acc,eer,best_acc_oracle,best_threshold_oracle,tpr_at_fpr_1pct,tpr_at_fpr_5pct";

pub fn write_metrics_csv(path: &Path, rows: &[GeneratorRow]) -> Result<()> {
    let mut out = String::from(METRICS_HEADER);
    out.push('\n');
    for r in rows {
        let m = &r.metrics;
        let seen = match r.seen {
            Some(true) => "seen",
            Some(false) => "unseen",
            None => "n/a",
        };
        let values = [
            m.acc,
            m.ap,
            m.auc,
            m.f1,
            m.precision,
            m.recall,
            m.r_acc,
            m.f_acc,
            m.eer,
            m.best_acc,
            m.best_threshold,
            m.tpr_at_fpr_1pct,
            m.tpr_at_fpr_5pct,
        ];
        let _ = write!(
            out,
            "{},{},{},{seen},{},{},{}",
            csv_field(&r.perturbation),
            csv_field(&r.set),
            csv_field(&r.generator),
            csv_field(&r.policy),
            m.n_real,
            m.n_fake
        );
        for v in values {
            let _ = write!(out, ",{}", fmt_opt(v));
        }
        out.push('\n');
    }
    write_file(path, &out)
}

/// Mean of the defined values; None when none is defined.
pub fn mean_defined(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let v: Vec<f64> = values.flatten().collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
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

/// One row per image and perturbation level, the level in the last column; `logit` is
/// what the ranking metrics use (scores of confident images round to 1), `pred` is
/// `logit > 0` (= `score > 0.5`).
pub fn write_predictions_csv(path: &Path, levels: &[(String, Vec<Scored>)]) -> Result<()> {
    let mut out = String::from("path,set,generator,label,logit,score,pred,perturbation\n");
    for (perturbation, items) in levels {
        for s in items {
            let _ = writeln!(
                out,
                "{},{},{},{},{},{:.8},{},{}",
                csv_field(&s.path),
                csv_field(&s.set),
                csv_field(&s.generator),
                s.label,
                s.logit,
                s.score,
                s.pred(),
                csv_field(perturbation)
            );
        }
    }
    write_file(path, &out)
}

/// `scale_selection.csv`: per set and generator, the share of fakes whose top NPR branch is
/// the true scale and the mean weight of every branch for reals and fakes (empty where a
/// class is absent or the manifest names no scale).
pub fn write_scale_selection_csv(
    path: &Path,
    scales: &[f64],
    rows: &[(String, Option<bool>, SelectionRow)],
) -> Result<()> {
    let mut out =
        String::from("set,generator,seen,true_scale,reals,fakes,share_top_is_true,chance");
    for class in ["real", "fake"] {
        for s in scales {
            let _ = write!(out, ",weight_{class}_{s}");
        }
    }
    out.push('\n');
    let opt = |x: Option<f64>| {
        x.filter(|v| v.is_finite())
            .map(|v| format!("{v:.6}"))
            .unwrap_or_default()
    };
    for (set, seen, r) in rows {
        let _ = write!(
            out,
            "{},{},{},{},{},{},{},{:.6}",
            csv_field(set),
            csv_field(&r.generator),
            seen.map(|b| b.to_string()).unwrap_or_default(),
            r.true_scale.map(|t| t.to_string()).unwrap_or_default(),
            r.reals,
            r.fakes,
            opt(r.share_top_is_true),
            r.chance
        );
        for w in r.mean_weight_real.iter().chain(&r.mean_weight_fake) {
            let _ = write!(out, ",{}", opt(Some(*w)));
        }
        out.push('\n');
    }
    write_file(path, &out)
}

pub fn write_confusion_csv(path: &Path, rows: &[GeneratorRow]) -> Result<()> {
    let mut out = String::from("perturbation,set,generator,tn,fp,fn,tp\n");
    for r in rows {
        let c = r.metrics.confusion;
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{}",
            csv_field(&r.perturbation),
            csv_field(&r.set),
            csv_field(&r.generator),
            c[0][0],
            c[0][1],
            c[1][0],
            c[1][1]
        );
    }
    write_file(path, &out)
}

/// ROC and PR curve points of every generator with both classes, from logits (one point
/// per distinct logit); each threshold is given as a logit and as a score.
pub fn write_curves(
    roc_path: &Path,
    pr_path: &Path,
    groups: &[(String, String, Vec<u8>, Vec<f64>)],
) -> Result<()> {
    let mut roc = String::from("set,generator,fpr,tpr,threshold_logit,threshold\n");
    let mut pr = String::from("set,generator,recall,precision,threshold_logit,threshold\n");
    for (set, generator, labels, logits) in groups {
        let (set, generator) = (csv_field(set), csv_field(generator));
        if let Some(c) = metrics::roc_curve(labels, logits)? {
            for i in 0..c.fpr.len() {
                let t = c.thresholds[i];
                let _ = writeln!(
                    roc,
                    "{set},{generator},{},{},{t},{}",
                    c.fpr[i],
                    c.tpr[i],
                    metrics::sigmoid(t)
                );
            }
        }
        if let Some(c) = metrics::pr_curve(labels, logits)? {
            for i in 0..c.precision.len() {
                let (t, s) = match c.thresholds.get(i) {
                    Some(&t) => (t.to_string(), metrics::sigmoid(t).to_string()),
                    None => (String::new(), String::new()),
                };
                let _ = writeln!(
                    pr,
                    "{set},{generator},{},{},{t},{s}",
                    c.recall[i], c.precision[i]
                );
            }
        }
    }
    write_file(roc_path, &roc)?;
    write_file(pr_path, &pr)
}

/// Wrongly classified images, per perturbation level (in sweep order) and generator, most
/// confident mistakes first (largest |logit|, which keeps ordering where scores round to 0
/// or 1).
pub fn write_misclassified_csv(path: &Path, levels: &[(String, Vec<Scored>)]) -> Result<()> {
    let mut out = String::from("perturbation,set,generator,path,label,logit,score,confidence\n");
    for (perturbation, items) in levels {
        let mut wrong: Vec<&Scored> = items.iter().filter(|s| s.pred() != s.label).collect();
        wrong.sort_by(|a, b| {
            (a.set.as_str(), a.generator.as_str())
                .cmp(&(b.set.as_str(), b.generator.as_str()))
                .then(b.logit.abs().total_cmp(&a.logit.abs()))
        });
        for s in wrong {
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{:.8},{:.6}",
                csv_field(perturbation),
                csv_field(&s.set),
                csv_field(&s.generator),
                csv_field(&s.path),
                s.label,
                s.logit,
                s.score,
                (s.score - 0.5).abs() / 0.5
            );
        }
    }
    write_file(path, &out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        for (input, want) in [
            ("a", "a"),
            ("a,b", "\"a,b\""),
            ("say \"x\"", "\"say \"\"x\"\"\""),
            ("", ""),
        ] {
            assert_eq!(csv_field(input), want);
        }
    }

    #[test]
    fn means_skip_undefined_values() {
        assert_eq!(
            mean_defined([Some(1.0), None, Some(0.5)].into_iter()),
            Some(0.75)
        );
        assert_eq!(mean_defined([None, None].into_iter()), None);
    }
}
