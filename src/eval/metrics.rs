//! Binary detection metrics on per-image scores (ARCHITECTURE.md, Metrics).
//!
//! Conventions, shared with the rest of `npr`:
//! - fake is the positive class (label `1`), real is the negative class (label `0`);
//! - a score is `sigmoid(logit)`, so it lies in `[0, 1]`, but nothing here relies on it;
//! - the tool ranks by **logit** ([`from_logits`]): in fp32 every logit above ≈ 17 has the
//!   score 1.0 exactly, which would manufacture ties in AP, AUC, EER and TPR@FPR. Ranking
//!   metrics depend only on the order, and `score > 0.5 ⇔ logit > 0`, so nothing else changes;
//! - an image is predicted fake iff `score > threshold` (strictly greater), with
//!   [`DEFAULT_THRESHOLD`] = 0.5.
//!
//! Ranking metrics (AP, ROC AUC, the curves) reproduce scikit-learn 1.9 exactly: tied
//! scores form one threshold, AP is the step-wise sum `Σ (R_n − R_{n−1})·P_n` without
//! interpolation, and AUC is the trapezoidal area, which counts a tied (fake, real)
//! pair as half a correctly ordered pair.
//!
//! Undefined is not NaN: a value that the input cannot define (AUC on a set with only
//! reals, precision with no predicted fakes, …) is `None`, which serialises as `null`
//! and prints as [`NA`] through [`fmt_opt`]. Invalid input (length mismatch, a label
//! other than 0/1, a NaN or infinite score) is a [`MetricsError`], never a panic and
//! never a silently wrong number.
//!
//! Everything is a pure function on slices, O(n log n) for one sort.

use serde::Serialize;
use std::fmt;

/// The decision threshold (ARCHITECTURE.md, Metrics): predicted fake iff `score > 0.5`.
pub const DEFAULT_THRESHOLD: f64 = 0.5;

/// What [`fmt_opt`] writes for an undefined value, in CSV and Markdown tables.
pub const NA: &str = "n/a";

/// Why a metric could not be computed from the given labels and scores.
///
/// These are caller or data errors (a corrupt predictions file, a model that
/// produced NaN logits); the message names the first offending index so it can be
/// looked up in `predictions.csv`.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricsError {
    /// `labels` and `scores` (or `preds`) differ in length.
    LengthMismatch { labels: usize, scores: usize },
    /// A label other than 0 (real) or 1 (fake).
    InvalidLabel { index: usize, value: u8 },
    /// A NaN or infinite score; ranking it would be arbitrary.
    NonFiniteScore { index: usize, value: f64 },
    /// A NaN decision threshold (or, for [`tpr_at_fpr`], a bound outside `[0, 1]`).
    InvalidThreshold { value: f64 },
}

impl fmt::Display for MetricsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LengthMismatch { labels, scores } => write!(
                f,
                "{labels} labels but {scores} scores: every image needs exactly one label and one score"
            ),
            Self::InvalidLabel { index, value } => write!(
                f,
                "label {value} at index {index}: labels must be 0 (real) or 1 (fake)"
            ),
            Self::NonFiniteScore { index, value } => write!(
                f,
                "score {value} at index {index} is not finite: the model produced NaN/inf \
                 (check for diverged training or corrupt inputs)"
            ),
            Self::InvalidThreshold { value } => write!(
                f,
                "threshold {value} is invalid: use a number (FPR bounds must lie in [0, 1])"
            ),
        }
    }
}

impl std::error::Error for MetricsError {}

/// Formats an optional metric for CSV and tables: the shortest decimal that
/// round-trips (`0.8125`), or [`NA`] when the metric is undefined for that set.
///
/// Shortest round-trip rather than fixed decimals so that `metrics.csv` loses nothing;
/// rounding for display is the report's job.
pub fn fmt_opt(value: Option<f64>) -> String {
    match value {
        Some(v) => format!("{v}"),
        None => NA.to_string(),
    }
}

/// All metrics of one evaluation set (or one generator within it), as written to
/// `metrics.csv` and consumed by the report.
///
/// `recall` and `f_acc` are the same number (accuracy on fakes); both are kept because
/// the detection literature reports r_acc/f_acc while the ML side reads recall.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BinaryMetrics {
    pub n_real: u64,
    pub n_fake: u64,
    /// The decision threshold that `acc` … `f_acc` and `confusion` use.
    pub threshold: f64,
    /// Accuracy at `threshold`; None on an empty set.
    pub acc: Option<f64>,
    /// Average precision (scikit-learn); None without fakes.
    pub ap: Option<f64>,
    /// ROC AUC, ties counted half; None unless both classes are present.
    pub auc: Option<f64>,
    /// `2TP / (2TP + FP + FN)`; None when there are no fakes and none predicted.
    pub f1: Option<f64>,
    /// `TP / (TP + FP)`; None when nothing is predicted fake.
    pub precision: Option<f64>,
    /// `TP / (TP + FN)`; None without fakes.
    pub recall: Option<f64>,
    /// Accuracy on reals, `TN / n_real`; None without reals.
    pub r_acc: Option<f64>,
    /// Accuracy on fakes, `TP / n_fake`; None without fakes.
    pub f_acc: Option<f64>,
    /// Equal error rate (FPR = FNR), interpolated on the ROC; None unless both classes.
    pub eer: Option<f64>,
    /// Oracle: the best accuracy over all thresholds, chosen on the test labels
    /// themselves. An upper bound for calibration, never a fair result.
    pub best_acc: Option<f64>,
    /// The threshold that attains `best_acc` under `score > best_threshold`.
    pub best_threshold: Option<f64>,
    /// Largest TPR among ROC points with FPR ≤ 1 %; None unless both classes.
    pub tpr_at_fpr_1pct: Option<f64>,
    /// Largest TPR among ROC points with FPR ≤ 5 %; None unless both classes.
    pub tpr_at_fpr_5pct: Option<f64>,
    /// Counts at `threshold`, see [`confusion_matrix`] for the layout.
    pub confusion: [[u64; 2]; 2],
}

/// A ROC curve as scikit-learn's `roc_curve(..., drop_intermediate=False)` returns it:
/// one point per distinct score, in decreasing threshold order, preceded by the
/// point (0, 0) at threshold `+inf`. Point `k` predicts fake iff `score >= thresholds[k]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RocCurve {
    pub fpr: Vec<f64>,
    pub tpr: Vec<f64>,
    pub thresholds: Vec<f64>,
}

/// A precision–recall curve as scikit-learn's `precision_recall_curve` returns it:
/// increasing thresholds (the distinct scores), then a final point (precision 1,
/// recall 0) that has no threshold, so `thresholds.len() == precision.len() − 1`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PrCurve {
    pub precision: Vec<f64>,
    pub recall: Vec<f64>,
    pub thresholds: Vec<f64>,
}

/// The oracle operating point of [`best_accuracy`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BestThreshold {
    pub acc: f64,
    /// `score > threshold` reproduces the best predictions exactly: it is the highest
    /// score among images predicted real, or just below the lowest score when
    /// predicting everything fake is best.
    pub threshold: f64,
}

/// Checks that the two slices describe the same images, that labels are 0/1 and
/// that scores are finite. Every public function calls it first.
pub fn check_scores(labels: &[u8], scores: &[f64]) -> Result<(), MetricsError> {
    if labels.len() != scores.len() {
        return Err(MetricsError::LengthMismatch {
            labels: labels.len(),
            scores: scores.len(),
        });
    }
    validate_labels(labels)?;
    match scores.iter().position(|s| !s.is_finite()) {
        Some(index) => Err(MetricsError::NonFiniteScore {
            index,
            value: scores[index],
        }),
        None => Ok(()),
    }
}

fn validate_labels(labels: &[u8]) -> Result<(), MetricsError> {
    match labels.iter().position(|&l| l > 1) {
        Some(index) => Err(MetricsError::InvalidLabel {
            index,
            value: labels[index],
        }),
        None => Ok(()),
    }
}

/// The fake probability of a logit, in f64 (`1 / (1 + e^−x)`).
pub fn sigmoid(logit: f64) -> f64 {
    1.0 / (1.0 + (-logit).exp())
}

/// Binary cross-entropy of one logit against its label, in the stable form PyTorch's
/// `binary_cross_entropy_with_logits` uses: `max(z, 0) − z·y + ln(1 + e^−|z|)`.
pub fn bce_with_logit(logit: f64, label: u8) -> f64 {
    logit.max(0.0) - logit * f64::from(label) + (-logit.abs()).exp().ln_1p()
}

/// Every metric from per-image logits: ranked by logit (tie-free where the scores would
/// saturate), decided at logit > 0 (= score > 0.5). `threshold` and `best_threshold` are
/// reported on the score scale, as everywhere else.
pub fn from_logits(labels: &[u8], logits: &[f64]) -> Result<BinaryMetrics, MetricsError> {
    let mut m = binary_metrics(labels, logits, 0.0)?;
    m.threshold = DEFAULT_THRESHOLD;
    m.best_threshold = m.best_threshold.map(sigmoid);
    Ok(m)
}

/// Computes every metric of [`BinaryMetrics`] with a single sort.
///
/// `threshold` applies to acc, F1, precision, recall, r_acc, f_acc and the confusion
/// matrix; the ranking metrics do not depend on it. A NaN threshold is an error.
pub fn binary_metrics(
    labels: &[u8],
    scores: &[f64],
    threshold: f64,
) -> Result<BinaryMetrics, MetricsError> {
    check_scores(labels, scores)?;
    if threshold.is_nan() {
        return Err(MetricsError::InvalidThreshold { value: threshold });
    }
    let preds: Vec<u8> = scores.iter().map(|&s| u8::from(s > threshold)).collect();
    let confusion = confusion_matrix(labels, &preds)?;
    let [[tn, fp], [fn_, tp]] = confusion;
    let ranked = Ranked::new(labels, scores);
    let best = ranked.best_accuracy();
    Ok(BinaryMetrics {
        n_real: tn + fp,
        n_fake: fn_ + tp,
        threshold,
        acc: ratio(tp + tn, tp + tn + fp + fn_),
        ap: ranked.average_precision(),
        auc: ranked.roc_auc(),
        f1: ratio(2 * tp, 2 * tp + fp + fn_),
        precision: ratio(tp, tp + fp),
        recall: ratio(tp, tp + fn_),
        r_acc: ratio(tn, tn + fp),
        f_acc: ratio(tp, tp + fn_),
        eer: ranked.eer(),
        best_acc: best.map(|b| b.acc),
        best_threshold: best.map(|b| b.threshold),
        tpr_at_fpr_1pct: ranked.tpr_at_fpr(0.01),
        tpr_at_fpr_5pct: ranked.tpr_at_fpr(0.05),
        confusion,
    })
}

/// Average precision exactly as scikit-learn's `average_precision_score`:
/// `Σ_n (R_n − R_{n−1}) · P_n` over distinct thresholds in decreasing order, with
/// `R_0 = 0`. Unlike the 11-point or interpolated AP of object detection, it is not
/// optimistic. None when there are no fakes (recall is undefined; scikit-learn warns
/// and returns 0 there).
pub fn average_precision(labels: &[u8], scores: &[f64]) -> Result<Option<f64>, MetricsError> {
    check_scores(labels, scores)?;
    Ok(Ranked::new(labels, scores).average_precision())
}

/// ROC AUC as scikit-learn's `roc_auc_score`: the probability that a random fake
/// scores above a random real, a tie counting one half. None unless both classes
/// are present (scikit-learn raises there).
pub fn roc_auc(labels: &[u8], scores: &[f64]) -> Result<Option<f64>, MetricsError> {
    check_scores(labels, scores)?;
    Ok(Ranked::new(labels, scores).roc_auc())
}

/// The ROC curve for CSV export and figures; None unless both classes are present
/// (one of FPR, TPR would divide by zero).
pub fn roc_curve(labels: &[u8], scores: &[f64]) -> Result<Option<RocCurve>, MetricsError> {
    check_scores(labels, scores)?;
    Ok(Ranked::new(labels, scores).roc_curve())
}

/// The precision–recall curve; None without fakes (recall undefined; scikit-learn
/// warns and sets recall to 1). Defined on a set with only fakes (precision 1).
pub fn pr_curve(labels: &[u8], scores: &[f64]) -> Result<Option<PrCurve>, MetricsError> {
    check_scores(labels, scores)?;
    Ok(Ranked::new(labels, scores).pr_curve())
}

/// Equal error rate: the FPR where FPR = FNR (= 1 − TPR), found by linear
/// interpolation along the ROC polyline. The polyline runs from FPR − FNR = −1 at
/// (0, 0) to +1 at (1, 1), so the crossing always exists with both classes present.
/// Interpolating (rather than taking the nearest ROC point) makes the EER independent
/// of how finely the scores happen to be quantised.
pub fn equal_error_rate(labels: &[u8], scores: &[f64]) -> Result<Option<f64>, MetricsError> {
    check_scores(labels, scores)?;
    Ok(Ranked::new(labels, scores).eer())
}

/// Oracle best accuracy over every distinct threshold (including predicting all real
/// and all fake) and the threshold that attains it. Ties go to the highest threshold.
/// None unless both classes are present: with one class the oracle is trivially 1.
pub fn best_accuracy(labels: &[u8], scores: &[f64]) -> Result<Option<BestThreshold>, MetricsError> {
    check_scores(labels, scores)?;
    Ok(Ranked::new(labels, scores).best_accuracy())
}

/// The largest TPR among ROC points whose FPR does not exceed `max_fpr` (no
/// interpolation, so the value is attainable with a real threshold). The point (0, 0)
/// always qualifies, so the result is defined whenever both classes are present.
pub fn tpr_at_fpr(
    labels: &[u8],
    scores: &[f64],
    max_fpr: f64,
) -> Result<Option<f64>, MetricsError> {
    check_scores(labels, scores)?;
    if !(0.0..=1.0).contains(&max_fpr) {
        return Err(MetricsError::InvalidThreshold { value: max_fpr });
    }
    Ok(Ranked::new(labels, scores).tpr_at_fpr(max_fpr))
}

/// The 2 × 2 confusion matrix `[[TN, FP], [FN, TP]]`: rows are the true class
/// (real, fake), columns the predicted class (real, fake), as scikit-learn's
/// `confusion_matrix(labels, preds)` with labels [0, 1].
pub fn confusion_matrix(labels: &[u8], preds: &[u8]) -> Result<[[u64; 2]; 2], MetricsError> {
    if labels.len() != preds.len() {
        return Err(MetricsError::LengthMismatch {
            labels: labels.len(),
            scores: preds.len(),
        });
    }
    validate_labels(labels)?;
    validate_labels(preds)?;
    let mut m = [[0u64; 2]; 2];
    for (&l, &p) in labels.iter().zip(preds) {
        m[usize::from(l)][usize::from(p)] += 1;
    }
    Ok(m)
}

/// Generalisation gap (ARCHITECTURE.md, Metrics): mean accuracy on the generators seen in
/// training minus mean accuracy on unseen ones (positive = the detector overfits its
/// training generators). Unweighted means, so every generator counts once whatever
/// its image count. None if either list is empty.
pub fn generalization_gap(seen_accs: &[f64], unseen_accs: &[f64]) -> Option<f64> {
    let mean = |xs: &[f64]| crate::stats::mean(xs.iter().copied());
    Some(mean(seen_accs)? - mean(unseen_accs)?)
}

/// `num / den`, or None for `0 / 0`-style undefined ratios.
fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

/// Scores sorted once, in decreasing order, grouped by distinct value: the
/// `_binary_clf_curve` of scikit-learn. `tps[k]` and `fps[k]` count the fakes and
/// reals with `score >= thresholds[k]`; every ranking metric is a pass over these.
struct Ranked {
    thresholds: Vec<f64>,
    tps: Vec<u64>,
    fps: Vec<u64>,
    n_pos: u64,
    n_neg: u64,
}

impl Ranked {
    /// Input must have passed [`validate`] (finite scores make `total_cmp` a plain
    /// numeric order; labels 0/1 make the counts exact).
    fn new(labels: &[u8], scores: &[f64]) -> Self {
        let mut order: Vec<usize> = (0..scores.len()).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
        let (mut thresholds, mut tps, mut fps) = (Vec::new(), Vec::new(), Vec::new());
        let (mut tp, mut fp) = (0u64, 0u64);
        for (rank, &i) in order.iter().enumerate() {
            if labels[i] == 1 {
                tp += 1;
            } else {
                fp += 1;
            }
            // Close a group at the last occurrence of each distinct score. `==`
            // rather than total_cmp so that 0.0 and -0.0 form one threshold.
            let last_of_group = order.get(rank + 1).is_none_or(|&j| scores[j] != scores[i]);
            if last_of_group {
                thresholds.push(scores[i]);
                tps.push(tp);
                fps.push(fp);
            }
        }
        Self {
            thresholds,
            tps,
            fps,
            n_pos: tp,
            n_neg: fp,
        }
    }

    fn both_classes(&self) -> bool {
        self.n_pos > 0 && self.n_neg > 0
    }

    fn average_precision(&self) -> Option<f64> {
        if self.n_pos == 0 {
            return None;
        }
        let p = self.n_pos as f64;
        let mut ap = 0.0;
        let mut prev_tp = 0u64;
        for (&tp, &fp) in self.tps.iter().zip(&self.fps) {
            ap += (tp - prev_tp) as f64 / p * (tp as f64 / (tp + fp) as f64);
            prev_tp = tp;
        }
        Some(ap)
    }

    /// Trapezoidal area in integer arithmetic: twice the area times `P·N` is
    /// `Σ ΔFP_k · (TP_k + TP_{k−1})`, exact in u128, so the only rounding is the
    /// final division.
    fn roc_auc(&self) -> Option<f64> {
        if !self.both_classes() {
            return None;
        }
        let (mut twice_area, mut prev_tp, mut prev_fp) = (0u128, 0u64, 0u64);
        for (&tp, &fp) in self.tps.iter().zip(&self.fps) {
            twice_area += u128::from(fp - prev_fp) * u128::from(tp + prev_tp);
            (prev_tp, prev_fp) = (tp, fp);
        }
        Some(twice_area as f64 / (2 * u128::from(self.n_pos) * u128::from(self.n_neg)) as f64)
    }

    fn roc_curve(&self) -> Option<RocCurve> {
        if !self.both_classes() {
            return None;
        }
        let (p, n) = (self.n_pos as f64, self.n_neg as f64);
        let fpr = std::iter::once(0.0)
            .chain(self.fps.iter().map(|&fp| fp as f64 / n))
            .collect();
        let tpr = std::iter::once(0.0)
            .chain(self.tps.iter().map(|&tp| tp as f64 / p))
            .collect();
        let thresholds = std::iter::once(f64::INFINITY)
            .chain(self.thresholds.iter().copied())
            .collect();
        Some(RocCurve {
            fpr,
            tpr,
            thresholds,
        })
    }

    fn pr_curve(&self) -> Option<PrCurve> {
        if self.n_pos == 0 {
            return None;
        }
        let p = self.n_pos as f64;
        let points = self.tps.iter().zip(&self.fps).rev();
        let precision = points
            .clone()
            .map(|(&tp, &fp)| tp as f64 / (tp + fp) as f64)
            .chain([1.0]);
        let recall = points.map(|(&tp, _)| tp as f64 / p).chain([0.0]);
        Some(PrCurve {
            precision: precision.collect(),
            recall: recall.collect(),
            thresholds: self.thresholds.iter().rev().copied().collect(),
        })
    }

    /// ROC points with their FPR − FNR, starting at (0, 0) where it is −1.
    fn eer(&self) -> Option<f64> {
        if !self.both_classes() {
            return None;
        }
        let (p, n) = (self.n_pos as f64, self.n_neg as f64);
        let (mut prev_fpr, mut prev_d) = (0.0, -1.0);
        for (&tp, &fp) in self.tps.iter().zip(&self.fps) {
            let fpr = fp as f64 / n;
            let d = fpr - (1.0 - tp as f64 / p);
            if d >= 0.0 {
                // prev_d < 0 <= d, so the denominator is positive.
                let t = -prev_d / (d - prev_d);
                return Some(prev_fpr + t * (fpr - prev_fpr));
            }
            (prev_fpr, prev_d) = (fpr, d);
        }
        // Unreachable with both classes: the last point is (1, 1) where d = 1.
        None
    }

    /// Candidate k = 0 predicts all real; candidate k ≥ 1 predicts fake iff
    /// `score >= thresholds[k − 1]`, i.e. `score > thresholds[k]` (the next lower
    /// distinct score).
    fn best_accuracy(&self) -> Option<BestThreshold> {
        if !self.both_classes() {
            return None;
        }
        let total = (self.n_pos + self.n_neg) as f64;
        let correct = |tp: u64, fp: u64| tp + (self.n_neg - fp);
        let (mut best_correct, mut best_k) = (correct(0, 0), 0);
        for (k, (&tp, &fp)) in self.tps.iter().zip(&self.fps).enumerate() {
            if correct(tp, fp) > best_correct {
                (best_correct, best_k) = (correct(tp, fp), k + 1);
            }
        }
        let threshold = match self.thresholds.get(best_k) {
            Some(&next_lower) => next_lower,
            // Everything fake: any value below the lowest score.
            None => self
                .thresholds
                .last()
                .map_or(f64::NEG_INFINITY, |&lo| lo.next_down()),
        };
        Some(BestThreshold {
            acc: best_correct as f64 / total,
            threshold,
        })
    }

    /// Largest TPR with `FP / N <= max_fpr`. FP/N is a correctly rounded division, so
    /// `1 / 100` compares equal to the literal 0.01 and the bound is inclusive as stated.
    fn tpr_at_fpr(&self, max_fpr: f64) -> Option<f64> {
        if !self.both_classes() {
            return None;
        }
        let (p, n) = (self.n_pos as f64, self.n_neg as f64);
        // FPR is non-decreasing along the curve and TPR too, so the last qualifying
        // point carries the largest TPR.
        let best_tp = self
            .tps
            .iter()
            .zip(&self.fps)
            .take_while(|&(_, &fp)| fp as f64 / n <= max_fpr)
            .last()
            .map_or(0, |(&tp, _)| tp);
        Some(best_tp as f64 / p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values from `torch.nn.functional.binary_cross_entropy_with_logits` in float64.
    #[test]
    fn bce_matches_pytorch_and_never_overflows() {
        let cases = [
            (0.0, 0, std::f64::consts::LN_2),
            (0.0, 1, std::f64::consts::LN_2),
            (2.0, 1, 0.126_928_011_042_972_6),
            (2.0, 0, 2.126_928_011_042_972_6),
            (-3.0, 1, 3.048_587_351_573_742),
            (800.0, 1, 0.0),
            (-800.0, 1, 800.0),
        ];
        for (logit, label, want) in cases {
            let got = bce_with_logit(logit, label);
            assert!(
                (got - want).abs() < 1e-12,
                "bce({logit}, {label}) = {got}, want {want}"
            );
        }
    }

    /// Fakes at logits 20, 25, 30 and a real at 18: every fp32 score is 1.0 (ties), but the
    /// order is perfect, so AUC and AP are 1.
    #[test]
    fn saturated_scores_are_ranked_by_logit() {
        let labels = [1, 1, 1, 0];
        let logits = [20.0, 25.0, 30.0, 18.0];
        let fp32_scores: Vec<f64> = logits
            .iter()
            .map(|&l: &f64| f64::from(1.0 / (1.0 + (-l as f32).exp())))
            .collect();
        assert!(fp32_scores.iter().all(|&s| s == 1.0), "{fp32_scores:?}");
        let tied = binary_metrics(&labels, &fp32_scores, DEFAULT_THRESHOLD).unwrap();
        assert_eq!(tied.auc, Some(0.5), "ties count half");
        let m = from_logits(&labels, &logits).unwrap();
        assert_eq!((m.auc, m.ap, m.eer), (Some(1.0), Some(1.0), Some(0.0)));
        assert_eq!(m.tpr_at_fpr_1pct, Some(1.0));
        // The decision is unchanged (score > 0.5 ⇔ logit > 0): the real at 18 is called fake.
        assert_eq!(m.threshold, DEFAULT_THRESHOLD);
        assert_eq!((m.acc, m.r_acc), (Some(0.75), Some(0.0)));
        let best = m.best_threshold.unwrap();
        assert!(best > 0.5 && best < 1.0, "{best}");
    }

    const TOL: f64 = 1e-12;

    fn close(x: f64, expected: f64) -> bool {
        (x - expected).abs() < TOL
    }

    fn close_opt(x: Option<f64>, expected: Option<f64>) -> bool {
        match (x, expected) {
            (Some(a), Some(b)) => close(a, b),
            (None, None) => true,
            _ => false,
        }
    }

    fn assert_vec_close(name: &str, got: &[f64], expected: &[f64]) {
        assert_eq!(got.len(), expected.len(), "{name}: {got:?} vs {expected:?}");
        for (g, e) in got.iter().zip(expected) {
            assert!(g == e || close(*g, *e), "{name}: {got:?} vs {expected:?}");
        }
    }

    // Hand-checkable set with a three-way tie at 0.4 (one fake, two reals).
    const TIED_LABELS: [u8; 8] = [0, 0, 1, 1, 0, 1, 1, 0];
    const TIED_SCORES: [f64; 8] = [0.1, 0.4, 0.35, 0.8, 0.4, 0.4, 0.9, 0.2];

    // 40 images, scores quantised to one decimal so that most thresholds are ties:
    //   rng = np.random.default_rng(7)
    //   y = rng.integers(0, 2, 40)
    //   s = np.round(np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0, 1), 1)
    const RAND_LABELS: [u8; 40] = [
        1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, //
        1, 0, 0, 0, 1, 0, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1,
    ];
    const RAND_SCORES: [f64; 40] = [
        0.3, 0.6, 0.4, 0.7, 0.7, 0.6, 0.1, 0.2, 0.3, 0.4, 0.0, 0.6, 0.5, 0.2, 0.6, 0.5, 0.3, 0.8,
        0.2, 0.3, 0.7, 0.4, 0.1, 0.4, 0.9, 0.0, 0.8, 0.4, 0.2, 1.0, 0.8, 0.4, 0.7, 0.8, 0.6, 0.8,
        0.6, 0.8, 0.6, 0.5,
    ];

    #[test]
    fn ranking_metrics_match_sklearn_and_hand_cases() {
        struct Case {
            name: &'static str,
            labels: &'static [u8],
            scores: &'static [f64],
            ap: Option<f64>,
            auc: Option<f64>,
        }
        let cases = [
            // from sklearn.metrics import average_precision_score as aps, roc_auc_score as auc
            // aps(TIED_LABELS, TIED_SCORES), auc(TIED_LABELS, TIED_SCORES)
            Case {
                name: "tied",
                labels: &TIED_LABELS,
                scores: &TIED_SCORES,
                ap: Some(0.8166666666666667),
                auc: Some(0.8125),
            },
            // aps(RAND_LABELS, RAND_SCORES), auc(RAND_LABELS, RAND_SCORES)
            Case {
                name: "rand",
                labels: &RAND_LABELS,
                scores: &RAND_SCORES,
                ap: Some(0.9217797690248347),
                auc: Some(0.8958333333333334),
            },
            // Hand-derived below.
            Case {
                name: "perfect",
                labels: &[0, 0, 1, 1],
                scores: &[0.1, 0.2, 0.8, 0.9],
                ap: Some(1.0),
                auc: Some(1.0),
            },
            // Inverted: fakes ranked last. AP = 1/2·1/3 + 1/2·2/4 = 5/12.
            Case {
                name: "inverted",
                labels: &[1, 1, 0, 0],
                scores: &[0.1, 0.2, 0.8, 0.9],
                ap: Some(5.0 / 12.0),
                auc: Some(0.0),
            },
            // All scores tied: one threshold, AP = prevalence, AUC = 1/2.
            Case {
                name: "all tied",
                labels: &[0, 1, 1, 0, 1],
                scores: &[0.5; 5],
                ap: Some(0.6),
                auc: Some(0.5),
            },
            // A single (fake, real) tie among otherwise perfect pairs: AUC = (3 + 1/2) / 4.
            Case {
                name: "one tie",
                labels: &[0, 0, 1, 1],
                scores: &[0.1, 0.5, 0.5, 0.9],
                ap: Some(0.5 * 1.0 + 0.5 * 2.0 / 3.0),
                auc: Some(0.875),
            },
            Case {
                name: "only reals",
                labels: &[0, 0],
                scores: &[0.3, 0.7],
                ap: None,
                auc: None,
            },
            Case {
                name: "only fakes",
                labels: &[1, 1],
                scores: &[0.3, 0.7],
                ap: Some(1.0),
                auc: None,
            },
            Case {
                name: "empty",
                labels: &[],
                scores: &[],
                ap: None,
                auc: None,
            },
        ];
        for c in &cases {
            let ap = average_precision(c.labels, c.scores).unwrap();
            let auc = roc_auc(c.labels, c.scores).unwrap();
            assert!(
                close_opt(ap, c.ap),
                "{}: ap {ap:?}, expected {:?}",
                c.name,
                c.ap
            );
            assert!(
                close_opt(auc, c.auc),
                "{}: auc {auc:?}, expected {:?}",
                c.name,
                c.auc
            );
        }
    }

    #[test]
    fn curves_match_sklearn() {
        struct Case {
            name: &'static str,
            labels: &'static [u8],
            scores: &'static [f64],
            roc: RocCurve,
            pr: PrCurve,
        }
        // from sklearn.metrics import roc_curve, precision_recall_curve
        // roc_curve(y, s, drop_intermediate=False); precision_recall_curve(y, s)
        let cases = [
            Case {
                name: "tied",
                labels: &TIED_LABELS,
                scores: &TIED_SCORES,
                roc: RocCurve {
                    fpr: vec![0.0, 0.0, 0.0, 0.5, 0.5, 0.75, 1.0],
                    tpr: vec![0.0, 0.25, 0.5, 0.75, 1.0, 1.0, 1.0],
                    thresholds: vec![f64::INFINITY, 0.9, 0.8, 0.4, 0.35, 0.2, 0.1],
                },
                pr: PrCurve {
                    precision: vec![
                        0.5,
                        0.5714285714285714,
                        0.6666666666666666,
                        0.6,
                        1.0,
                        1.0,
                        1.0,
                    ],
                    recall: vec![1.0, 1.0, 1.0, 0.75, 0.5, 0.25, 0.0],
                    thresholds: vec![0.1, 0.2, 0.35, 0.4, 0.8, 0.9],
                },
            },
            Case {
                name: "rand",
                labels: &RAND_LABELS,
                scores: &RAND_SCORES,
                roc: RocCurve {
                    fpr: vec![
                        0.0, 0.0, 0.0, 0.0, 0.0, 0.125, 0.125, 0.375, 0.5625, 0.8125, 0.875, 1.0,
                    ],
                    tpr: vec![
                        0.0,
                        0.041666666666666664,
                        0.08333333333333333,
                        0.3333333333333333,
                        0.5,
                        0.7083333333333334,
                        0.8333333333333334,
                        0.9166666666666666,
                        0.9583333333333334,
                        0.9583333333333334,
                        1.0,
                        1.0,
                    ],
                    thresholds: vec![
                        f64::INFINITY,
                        1.0,
                        0.9,
                        0.8,
                        0.7,
                        0.6,
                        0.5,
                        0.4,
                        0.3,
                        0.2,
                        0.1,
                        0.0,
                    ],
                },
                pr: PrCurve {
                    precision: vec![
                        0.6,
                        0.631578947368421,
                        0.6388888888888888,
                        0.71875,
                        0.7857142857142857,
                        0.9090909090909091,
                        0.8947368421052632,
                        1.0,
                        1.0,
                        1.0,
                        1.0,
                        1.0,
                    ],
                    recall: vec![
                        1.0,
                        1.0,
                        0.9583333333333334,
                        0.9583333333333334,
                        0.9166666666666666,
                        0.8333333333333334,
                        0.7083333333333334,
                        0.5,
                        0.3333333333333333,
                        0.08333333333333333,
                        0.041666666666666664,
                        0.0,
                    ],
                    thresholds: vec![0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0],
                },
            },
        ];
        for c in &cases {
            let roc = roc_curve(c.labels, c.scores).unwrap().unwrap();
            assert_vec_close(&format!("{} fpr", c.name), &roc.fpr, &c.roc.fpr);
            assert_vec_close(&format!("{} tpr", c.name), &roc.tpr, &c.roc.tpr);
            assert_vec_close(
                &format!("{} roc thr", c.name),
                &roc.thresholds,
                &c.roc.thresholds,
            );
            let pr = pr_curve(c.labels, c.scores).unwrap().unwrap();
            assert_vec_close(
                &format!("{} precision", c.name),
                &pr.precision,
                &c.pr.precision,
            );
            assert_vec_close(&format!("{} recall", c.name), &pr.recall, &c.pr.recall);
            assert_vec_close(
                &format!("{} pr thr", c.name),
                &pr.thresholds,
                &c.pr.thresholds,
            );
        }
    }

    #[test]
    fn curves_are_none_when_undefined() {
        assert_eq!(roc_curve(&[0, 0], &[0.1, 0.2]).unwrap(), None);
        assert_eq!(roc_curve(&[1, 1], &[0.1, 0.2]).unwrap(), None);
        assert_eq!(pr_curve(&[0, 0], &[0.1, 0.2]).unwrap(), None);
        assert_eq!(roc_curve(&[], &[]).unwrap(), None);
        // Only fakes: precision is 1 at every threshold.
        let pr = pr_curve(&[1, 1], &[0.1, 0.2]).unwrap().unwrap();
        assert_eq!(pr.precision, vec![1.0, 1.0, 1.0]);
        assert_eq!(pr.recall, vec![1.0, 0.5, 0.0]);
        assert_eq!(pr.thresholds, vec![0.1, 0.2]);
    }

    #[test]
    fn operating_point_metrics() {
        struct Case {
            name: &'static str,
            labels: &'static [u8],
            scores: &'static [f64],
            eer: Option<f64>,
            best: Option<(f64, f64)>,
            tpr_1: Option<f64>,
            tpr_5: Option<f64>,
        }
        // EER: linear interpolation along the ROC polyline where FPR − FNR changes sign.
        //   f, t, th = roc_curve(y, s, drop_intermediate=False)
        //   d = f - (1 - t); k = np.argmax(d >= 0)
        //   eer = f[k - 1] + (-d[k - 1] / (d[k] - d[k - 1])) * (f[k] - f[k - 1])
        // For "rand" the usual
        //   brentq(lambda x: 1 - x - interp1d(f, t)(x), 0, 1) = 0.15624999999964573
        // agrees within brentq's default xtol (2e-12).
        // TPR at FPR: t[f <= 0.01].max(), t[f <= 0.05].max().
        // Best accuracy: accs = (t * P + (1 - f) * N) / n; k = np.argmax(accs);
        //   threshold = th[k + 1] (the next lower distinct score).
        let cases = [
            // Tied: ROC points (0,0) (0,.25) (0,.5) (.5,.75) (.5,1) ...; d goes
            // -0.5 → 0.25 between (0,.5) and (.5,.75): EER = 0 + (2/3)·0.5 = 1/3.
            // Best: predict fake iff score >= 0.8 → 2 fakes + 4 reals = 6/8.
            Case {
                name: "tied",
                labels: &TIED_LABELS,
                scores: &TIED_SCORES,
                eer: Some(0.3333333333333333),
                best: Some((0.75, 0.4)),
                tpr_1: Some(0.5),
                tpr_5: Some(0.5),
            },
            Case {
                name: "rand",
                labels: &RAND_LABELS,
                scores: &RAND_SCORES,
                eer: Some(0.15624999999999997),
                best: Some((0.85, 0.4)),
                tpr_1: Some(0.5),
                tpr_5: Some(0.5),
            },
            // Perfect: (0,0) (0,.5) (0,1): d = 0 at (0,1), EER 0; best cut between 0.2 and 0.8.
            Case {
                name: "perfect",
                labels: &[0, 0, 1, 1],
                scores: &[0.1, 0.2, 0.8, 0.9],
                eer: Some(0.0),
                best: Some((1.0, 0.2)),
                tpr_1: Some(1.0),
                tpr_5: Some(1.0),
            },
            // Inverted: (0,0) (.5,0) (1,0) (1,.5) (1,1): d = −1, −.5, 0 → EER = 1 at
            // (1, 0), where every real is flagged and every fake missed.
            // Best: all real and all fake both give 1/2; the highest threshold wins.
            Case {
                name: "inverted",
                labels: &[1, 1, 0, 0],
                scores: &[0.1, 0.2, 0.8, 0.9],
                eer: Some(1.0),
                best: Some((0.5, 0.9)),
                tpr_1: Some(0.0),
                tpr_5: Some(0.0),
            },
            // All tied: ROC is the diagonal (0,0) → (1,1), EER 1/2; predicting all fake
            // (3/5) beats all real (2/5), threshold just below 0.5.
            Case {
                name: "all tied",
                labels: &[0, 1, 1, 0, 1],
                scores: &[0.5; 5],
                eer: Some(0.5),
                best: Some((0.6, 0.5f64.next_down())),
                tpr_1: Some(0.0),
                tpr_5: Some(0.0),
            },
            Case {
                name: "only reals",
                labels: &[0, 0],
                scores: &[0.3, 0.7],
                eer: None,
                best: None,
                tpr_1: None,
                tpr_5: None,
            },
            Case {
                name: "empty",
                labels: &[],
                scores: &[],
                eer: None,
                best: None,
                tpr_1: None,
                tpr_5: None,
            },
        ];
        for c in &cases {
            let eer = equal_error_rate(c.labels, c.scores).unwrap();
            assert!(
                close_opt(eer, c.eer),
                "{}: eer {eer:?}, expected {:?}",
                c.name,
                c.eer
            );
            let best = best_accuracy(c.labels, c.scores)
                .unwrap()
                .map(|b| (b.acc, b.threshold));
            assert_eq!(
                best.is_some(),
                c.best.is_some(),
                "{}: best {best:?}",
                c.name
            );
            if let (Some((acc, thr)), Some((e_acc, e_thr))) = (best, c.best) {
                assert!(
                    close(acc, e_acc) && thr == e_thr,
                    "{}: best {best:?}",
                    c.name
                );
                // The reported threshold reproduces the oracle accuracy under `>`.
                let m = binary_metrics(c.labels, c.scores, thr).unwrap();
                assert!(
                    close_opt(m.acc, Some(acc)),
                    "{}: acc at best threshold {:?}",
                    c.name,
                    m.acc
                );
            }
            let t1 = tpr_at_fpr(c.labels, c.scores, 0.01).unwrap();
            let t5 = tpr_at_fpr(c.labels, c.scores, 0.05).unwrap();
            assert!(close_opt(t1, c.tpr_1), "{}: tpr@1% {t1:?}", c.name);
            assert!(close_opt(t5, c.tpr_5), "{}: tpr@5% {t5:?}", c.name);
        }
    }

    #[test]
    fn tpr_at_fpr_bound_is_inclusive() {
        // 100 reals, one of which outscores every fake: FPR 1/100 must count as ≤ 1 %.
        let mut labels = vec![0u8; 100];
        let mut scores: Vec<f64> = (0..100).map(|i| i as f64 / 1000.0).collect();
        scores[99] = 0.99;
        labels.extend([1, 1]);
        scores.extend([0.9, 0.95]);
        assert_eq!(tpr_at_fpr(&labels, &scores, 0.01).unwrap(), Some(1.0));
        assert_eq!(tpr_at_fpr(&labels, &scores, 0.009).unwrap(), Some(0.0));
        assert!(matches!(
            tpr_at_fpr(&labels, &scores, 1.5),
            Err(MetricsError::InvalidThreshold { .. })
        ));
    }

    #[test]
    fn threshold_metrics_match_sklearn() {
        struct Case {
            name: &'static str,
            labels: &'static [u8],
            scores: &'static [f64],
            threshold: f64,
            confusion: [[u64; 2]; 2],
            acc: Option<f64>,
            precision: Option<f64>,
            recall: Option<f64>,
            f1: Option<f64>,
            r_acc: Option<f64>,
        }
        // from sklearn.metrics import (accuracy_score, precision_score, recall_score,
        //                              f1_score, confusion_matrix)
        // p = (s > 0.5).astype(int)
        // accuracy_score(y, p), precision_score(y, p), recall_score(y, p), f1_score(y, p),
        // confusion_matrix(y, p, labels=[0, 1]), recall_score(y, p, pos_label=0)
        let cases = [
            Case {
                name: "rand",
                labels: &RAND_LABELS,
                scores: &RAND_SCORES,
                threshold: 0.5,
                confusion: [[14, 2], [7, 17]],
                acc: Some(0.775),
                precision: Some(0.8947368421052632),
                recall: Some(0.7083333333333334),
                f1: Some(0.7906976744186046),
                r_acc: Some(0.875),
            },
            // A score equal to the threshold is predicted real (strictly greater).
            Case {
                name: "at threshold",
                labels: &[1, 0],
                scores: &[0.5, 0.5],
                threshold: 0.5,
                confusion: [[1, 0], [1, 0]],
                acc: Some(0.5),
                precision: None,
                recall: Some(0.0),
                f1: Some(0.0),
                r_acc: Some(1.0),
            },
            // Only reals, none predicted fake: precision, recall and F1 undefined.
            Case {
                name: "only reals",
                labels: &[0, 0],
                scores: &[0.1, 0.2],
                threshold: 0.5,
                confusion: [[2, 0], [0, 0]],
                acc: Some(1.0),
                precision: None,
                recall: None,
                f1: None,
                r_acc: Some(1.0),
            },
            // Only fakes: r_acc undefined.
            Case {
                name: "only fakes",
                labels: &[1, 1],
                scores: &[0.1, 0.9],
                threshold: 0.5,
                confusion: [[0, 0], [1, 1]],
                acc: Some(0.5),
                precision: Some(1.0),
                recall: Some(0.5),
                f1: Some(2.0 / 3.0),
                r_acc: None,
            },
            Case {
                name: "empty",
                labels: &[],
                scores: &[],
                threshold: 0.5,
                confusion: [[0, 0], [0, 0]],
                acc: None,
                precision: None,
                recall: None,
                f1: None,
                r_acc: None,
            },
        ];
        for c in &cases {
            let m = binary_metrics(c.labels, c.scores, c.threshold).unwrap();
            let [[tn, fp], [fn_, tp]] = c.confusion;
            assert_eq!(m.confusion, c.confusion, "{}", c.name);
            assert_eq!((m.n_real, m.n_fake), (tn + fp, fn_ + tp), "{}", c.name);
            assert!(close_opt(m.acc, c.acc), "{}: acc {:?}", c.name, m.acc);
            assert!(
                close_opt(m.precision, c.precision),
                "{}: precision {:?}",
                c.name,
                m.precision
            );
            assert!(
                close_opt(m.recall, c.recall),
                "{}: recall {:?}",
                c.name,
                m.recall
            );
            assert!(
                close_opt(m.f_acc, c.recall),
                "{}: f_acc {:?}",
                c.name,
                m.f_acc
            );
            assert!(close_opt(m.f1, c.f1), "{}: f1 {:?}", c.name, m.f1);
            assert!(
                close_opt(m.r_acc, c.r_acc),
                "{}: r_acc {:?}",
                c.name,
                m.r_acc
            );
        }
    }

    #[test]
    fn binary_metrics_agrees_with_the_single_metric_functions() {
        let m = binary_metrics(&RAND_LABELS, &RAND_SCORES, DEFAULT_THRESHOLD).unwrap();
        assert_eq!(m.ap, average_precision(&RAND_LABELS, &RAND_SCORES).unwrap());
        assert_eq!(m.auc, roc_auc(&RAND_LABELS, &RAND_SCORES).unwrap());
        assert_eq!(m.eer, equal_error_rate(&RAND_LABELS, &RAND_SCORES).unwrap());
        assert_eq!(
            m.tpr_at_fpr_5pct,
            tpr_at_fpr(&RAND_LABELS, &RAND_SCORES, 0.05).unwrap()
        );
        assert_eq!(m.best_acc, Some(0.85));
    }

    #[test]
    fn ranking_ignores_input_order_and_signed_zero() {
        // Reversing the input must not change any ranking metric (ties are grouped,
        // not broken by position), and 0.0 / -0.0 are one threshold.
        let labels: Vec<u8> = RAND_LABELS.iter().rev().copied().collect();
        let scores: Vec<f64> = RAND_SCORES.iter().rev().copied().collect();
        let a = binary_metrics(&RAND_LABELS, &RAND_SCORES, 0.5).unwrap();
        let b = binary_metrics(&labels, &scores, 0.5).unwrap();
        assert_eq!(a, b);
        assert_eq!(roc_auc(&[0, 1], &[0.0, -0.0]).unwrap(), Some(0.5));
    }

    #[test]
    fn invalid_input_is_an_error_not_a_panic() {
        let cases: [(&str, &[u8], &[f64], MetricsError); 4] = [
            (
                "length",
                &[0, 1],
                &[0.1],
                MetricsError::LengthMismatch {
                    labels: 2,
                    scores: 1,
                },
            ),
            (
                "label",
                &[0, 2],
                &[0.1, 0.2],
                MetricsError::InvalidLabel { index: 1, value: 2 },
            ),
            (
                "inf",
                &[0, 1],
                &[f64::INFINITY, 0.2],
                MetricsError::NonFiniteScore {
                    index: 0,
                    value: f64::INFINITY,
                },
            ),
            (
                "neg inf",
                &[0, 1],
                &[0.1, f64::NEG_INFINITY],
                MetricsError::NonFiniteScore {
                    index: 1,
                    value: f64::NEG_INFINITY,
                },
            ),
        ];
        for (name, labels, scores, expected) in &cases {
            assert_eq!(
                binary_metrics(labels, scores, 0.5).unwrap_err(),
                *expected,
                "{name}"
            );
            assert_eq!(
                average_precision(labels, scores).unwrap_err(),
                *expected,
                "{name}"
            );
        }
        // NaN is not equal to itself, so match on the variant.
        let nan = average_precision(&[0, 1], &[0.1, f64::NAN]).unwrap_err();
        assert!(
            matches!(nan, MetricsError::NonFiniteScore { index: 1, .. }),
            "{nan:?}"
        );
        assert!(nan.to_string().contains("index 1"), "{nan}");
        assert!(matches!(
            binary_metrics(&[0], &[0.1], f64::NAN),
            Err(MetricsError::InvalidThreshold { .. })
        ));
        assert!(matches!(
            confusion_matrix(&[0, 1], &[1, 3]),
            Err(MetricsError::InvalidLabel { index: 1, value: 3 })
        ));
    }

    #[test]
    fn confusion_matrix_layout() {
        // from sklearn.metrics import confusion_matrix
        // confusion_matrix([0, 0, 0, 1, 1], [0, 1, 1, 0, 1]) -> [[1, 2], [1, 1]]
        assert_eq!(
            confusion_matrix(&[0, 0, 0, 1, 1], &[0, 1, 1, 0, 1]).unwrap(),
            [[1, 2], [1, 1]]
        );
        assert_eq!(confusion_matrix(&[], &[]).unwrap(), [[0, 0], [0, 0]]);
    }

    #[test]
    fn generalization_gap_cases() {
        let cases: [(&[f64], &[f64], Option<f64>); 4] = [
            (&[0.99, 0.97], &[0.80, 0.70, 0.75], Some(0.98 - 0.75)),
            (&[0.9], &[0.95], Some(-0.05)),
            (&[], &[0.9], None),
            (&[0.9], &[], None),
        ];
        for (seen, unseen, expected) in cases {
            let gap = generalization_gap(seen, unseen);
            assert!(close_opt(gap, expected), "{seen:?} {unseen:?}: {gap:?}");
        }
    }

    #[test]
    fn fmt_opt_writes_number_or_na() {
        assert_eq!(fmt_opt(Some(0.8125)), "0.8125");
        assert_eq!(fmt_opt(Some(1.0)), "1");
        assert_eq!(fmt_opt(None), "n/a");
    }
}
