//! The study plan's hypotheses as verdicts: pure functions from estimates (an effect with
//! its 95 % interval and where the interval came from) to **met**, **not met** or
//! **inconclusive**, each with the line `report.md` prints. Nothing here reads files; the
//! estimates are made in `analysis.rs` and `image_bootstrap.rs`.
//!
//! The rules (README_ATTENTION.md, "How the report decides"):
//! - H2 is the study plan's primary test and is decided as pre-specified, uncorrected:
//!   **met** when the mean paired gain over seeds is ≥ 2 points and the two-sided paired
//!   t-test gives p < 0.05; **not met** when the 95 % interval of the gain lies below 2
//!   points (the data rule out the gain the plan asks for); otherwise **inconclusive**,
//!   with the smallest gain that could have reached p < 0.05 at this n and spread.
//! - H3, robustness and efficiency have no pre-specified test: they are decided by where
//!   the 95 % interval lies against the plan's threshold — on the right side: met; on the
//!   wrong side: not met; across it: inconclusive. Efficiency from `npr test`'s
//!   end-to-end timing is never decided: those timings share the machine with whatever
//!   else ran ([`Timing`]).
use std::fmt;

use crate::stats;

/// H2: the attention model must be this much more accurate (seen generators).
pub const H2_MIN_GAIN: f64 = 0.02;
/// H3: the attention model's generalization gap must be below this.
pub const H3_MAX_GAP: f64 = 0.05;
/// Significance level of the pre-specified tests.
pub const ALPHA: f64 = 0.05;
/// Efficiency: the attention model's inference time at most this many times the baseline's.
pub const MAX_TIME_RATIO: f64 = 1.3;
/// Robustness: "at least as accurate" allows the attention model to be this much less
/// accurate at a perturbation level (a non-inferiority margin; the study plan names none).
pub const ROBUSTNESS_MARGIN: f64 = 0.01;

/// What the data say about a hypothesis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Met,
    NotMet,
    /// The interval contains outcomes on both sides of the criterion.
    Inconclusive,
    /// The runs lack what the hypothesis needs (a variant, seen and unseen generators).
    CannotEvaluate,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Met => "**met**",
            Verdict::NotMet => "**not met**",
            Verdict::Inconclusive => "**inconclusive**",
            Verdict::CannotEvaluate => "**cannot be evaluated**",
        })
    }
}

/// Where an interval came from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum IntervalMethod {
    /// Student's t over `n` seeds (one value per seed).
    Seeds,
    /// Percentile bootstrap over test images (stratified by generator, the same resampled
    /// images for every run), of the mean over `n` seeds: it measures the test set's
    /// sampling error only, not the spread between trained models.
    ImageBootstrap { resamples: usize },
}

/// An effect with its 95 % interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub value: f64,
    pub lo: f64,
    pub hi: f64,
    /// Seeds behind the value.
    pub n: usize,
    pub method: IntervalMethod,
}

impl Estimate {
    /// A t interval over per-seed values; None below 2 seeds.
    pub fn over_seeds(xs: &[f64]) -> Option<Estimate> {
        let (value, lo, hi) = stats::t_interval(xs, 0.95)?;
        Some(Estimate {
            value,
            lo,
            hi,
            n: xs.len(),
            method: IntervalMethod::Seeds,
        })
    }

    /// `value [lo, hi]` in points (×100), with how the interval was made.
    fn points(&self) -> String {
        format!(
            "{:+.2} points (95 % CI [{:+.2}, {:+.2}], {})",
            self.value * 100.0,
            self.lo * 100.0,
            self.hi * 100.0,
            self.how()
        )
    }

    fn how(&self) -> String {
        match self.method {
            IntervalMethod::Seeds => format!("t over n = {} seeds", self.n),
            IntervalMethod::ImageBootstrap { resamples } => format!(
                "bootstrap over test images, {resamples} resamples, mean of n = {} seeds; image sampling error only",
                self.n
            ),
        }
    }
}

/// A verdict and the sentence that states it with its numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub verdict: Verdict,
    pub line: String,
}

impl Finding {
    fn new(verdict: Verdict, line: String) -> Finding {
        Finding { verdict, line }
    }
}

/// H2 from the paired per-seed gains (attention − baseline accuracy on seen generators,
/// one value per seed both variants have): see the module docs for the rule.
pub fn h2(gains: &[f64]) -> Finding {
    let n = gains.len();
    let criterion = format!(
        "gain ≥ {:.0} points and paired t-test p < {ALPHA}",
        H2_MIN_GAIN * 100.0
    );
    let Some((mean, sd)) = stats::mean_std(gains) else {
        return Finding::new(
            Verdict::CannotEvaluate,
            format!("no seed has both variants ({criterion})"),
        );
    };
    if n == 1 {
        return Finding::new(
            Verdict::Inconclusive,
            format!(
                "gain {:+.2} points from n = 1 seed: no interval or test is possible ({criterion}; run at least 2 seeds, the study plan asks for 3)",
                mean * 100.0
            ),
        );
    }
    let est = Estimate::over_seeds(gains).expect("n ≥ 2 finite values");
    let crit = stats::t_critical((n - 1) as f64, 1.0 - ALPHA).unwrap_or(f64::NAN);
    let detectable = crit * sd / (n as f64).sqrt();
    let zero = vec![0.0; n];
    let test = stats::paired_t_test(gains, &zero);
    let p = test.as_ref().ok().map(|t| t.p_value);
    let p_margin = stats::t_test_greater(gains, H2_MIN_GAIN);
    let tests = match (p, p_margin) {
        (Some(p), Some(pm)) => format!(
            "paired t-test p = {p:.3}; one-sided test of gain > {:.0} points p = {pm:.3}",
            H2_MIN_GAIN * 100.0
        ),
        _ => "paired t-test undefined: every seed gives the same gain".to_string(),
    };
    let verdict = if mean >= H2_MIN_GAIN && p.is_some_and(|p| p < ALPHA) {
        Verdict::Met
    } else if est.hi < H2_MIN_GAIN {
        Verdict::NotMet
    } else {
        Verdict::Inconclusive
    };
    let why = match verdict {
        Verdict::Met => String::new(),
        Verdict::NotMet => format!(
            "; the interval lies below {:.0} points",
            H2_MIN_GAIN * 100.0
        ),
        _ if p.is_none() => String::new(),
        _ => format!(
            "; the interval holds gains on both sides of {:.0} points — with n = {n} seeds and this spread only a mean gain above {:.2} points could reach p < {ALPHA}",
            H2_MIN_GAIN * 100.0,
            detectable * 100.0
        ),
    };
    Finding::new(
        verdict,
        format!("gain {}; {tests}{why} ({criterion})", est.points()),
    )
}

/// H3 from the attention model's gap and the difference of gaps (attention − baseline):
/// met when the gap's interval lies below 5 points and the difference's below 0; not met
/// when the gap's lies at or above 5 points or the difference's at or above 0.
pub fn h3(gap: Option<Estimate>, gap_difference: Option<Estimate>) -> Finding {
    let (Some(gap), Some(diff)) = (gap, gap_difference) else {
        return Finding::new(
            Verdict::CannotEvaluate,
            "needs seen and unseen generators in both variants' runs".into(),
        );
    };
    let verdict = if gap.hi < H3_MAX_GAP && diff.hi < 0.0 {
        Verdict::Met
    } else if gap.lo >= H3_MAX_GAP || diff.lo >= 0.0 {
        Verdict::NotMet
    } else {
        Verdict::Inconclusive
    };
    Finding::new(
        verdict,
        format!(
            "gap {}; gap minus the baseline's {}",
            gap.points(),
            diff.points()
        ),
    )
}

/// Robustness from the accuracy difference (attention − baseline, all generators) at each
/// perturbation level, as a non-inferiority test with margin [`ROBUSTNESS_MARGIN`]: not
/// met when some level's interval lies below −margin (worse by more than the margin), met
/// when every level's interval lies above −margin, inconclusive otherwise.
pub fn robustness(levels: &[(String, Estimate)]) -> Finding {
    if levels.is_empty() {
        return Finding::new(
            Verdict::CannotEvaluate,
            "no perturbation level that both variants were tested at (`npr test --checkpoint RUN --sweep jpeg=75,90,100`)".into(),
        );
    }
    let worse: Vec<&str> = levels
        .iter()
        .filter(|(_, e)| e.hi < -ROBUSTNESS_MARGIN)
        .map(|(l, _)| l.as_str())
        .collect();
    let verdict = if !worse.is_empty() {
        Verdict::NotMet
    } else if levels.iter().all(|(_, e)| e.lo >= -ROBUSTNESS_MARGIN) {
        Verdict::Met
    } else {
        Verdict::Inconclusive
    };
    let parts: Vec<String> = levels
        .iter()
        .map(|(level, e)| format!("{level}: {}", e.points()))
        .collect();
    let why = if worse.is_empty() {
        String::new()
    } else {
        format!(
            "; less accurate by more than {:.0} point at {}",
            ROBUSTNESS_MARGIN * 100.0,
            worse.join(", ")
        )
    };
    Finding::new(verdict, format!("{}{why}", parts.join("; ")))
}

/// Where inference times come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    /// `npr test`'s end-to-end throughput: the loader included, and whatever else the
    /// machine ran at the time, which differs between the runs compared (a concurrent job
    /// once made the attention model look twice as fast as the baseline). Never a verdict.
    EndToEndTest,
    /// Both models timed on the same machine in one sitting (`npr bench`).
    Controlled,
}

/// Efficiency from the per-seed ratios of inference times (attention ÷ baseline), with a
/// t interval on the log scale (a ratio's interval stays positive): met when it lies at or
/// below 1.3, not met when above — for controlled timings only; end-to-end test timings
/// are reported with their interval and called inconclusive.
pub fn efficiency(ratios: &[f64], timing: Timing) -> Finding {
    let bar = format!("time ratio ≤ {MAX_TIME_RATIO}");
    let source = match timing {
        Timing::EndToEndTest => "`npr test`'s end-to-end throughput, loader included, timed while the machine ran whatever else it ran: not a controlled comparison, so no verdict (BENCHMARKS.md compares the models with `npr bench`)",
        Timing::Controlled => "controlled timing",
    };
    let logs: Vec<f64> = ratios.iter().map(|r| r.ln()).collect();
    let Some(log) = Estimate::over_seeds(&logs).filter(|_| ratios.iter().all(|r| *r > 0.0)) else {
        let single = ratios
            .first()
            .map_or(String::new(), |r| format!("ratio {r:.2} from "));
        return Finding::new(
            Verdict::Inconclusive,
            format!(
                "{single}n = {} seed pair(s): no interval ({bar}; {source})",
                ratios.len()
            ),
        );
    };
    let (value, lo, hi) = (log.value.exp(), log.lo.exp(), log.hi.exp());
    let verdict = match timing {
        Timing::EndToEndTest => Verdict::Inconclusive,
        Timing::Controlled if hi <= MAX_TIME_RATIO => Verdict::Met,
        Timing::Controlled if lo > MAX_TIME_RATIO => Verdict::NotMet,
        Timing::Controlled => Verdict::Inconclusive,
    };
    Finding::new(
        verdict,
        format!(
            "time ratio {value:.2} (geometric mean; 95 % CI [{lo:.2}, {hi:.2}], {}) from {source} ({bar})",
            log.how()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn est(value: f64, lo: f64, hi: f64) -> Estimate {
        Estimate {
            value,
            lo,
            hi,
            n: 3,
            method: IntervalMethod::Seeds,
        }
    }

    #[test]
    fn h2_verdicts() {
        use Verdict::*;
        let cases: [(&str, &[f64], Verdict); 9] = [
            ("no seeds", &[], CannotEvaluate),
            ("n = 1, large gain", &[0.10], Inconclusive),
            // n = 2: critical t = 12.7, so a consistent +5 points is still undecided.
            ("n = 2, gain 5 ± 1", &[0.04, 0.06], Inconclusive),
            ("n = 2, tight but below 2 points", &[0.001, 0.002], NotMet),
            ("n = 3, clear gain", &[0.050, 0.052, 0.054], Met),
            (
                "n = 3, significant but below 2 points",
                &[0.010, 0.011, 0.012],
                NotMet,
            ),
            // A reversed comparison: the attention model is worse.
            ("n = 3, reversed", &[-0.050, -0.052, -0.054], NotMet),
            ("n = 3, noisy", &[-0.05, 0.02, 0.10], Inconclusive),
            // Ties: identical accuracies in every seed.
            ("n = 3, ties", &[0.0, 0.0, 0.0], NotMet),
        ];
        for (name, gains, want) in cases {
            let f = h2(gains);
            assert_eq!(f.verdict, want, "{name}: {}", f.line);
        }
    }

    #[test]
    fn h2_states_the_detectable_gain_when_inconclusive() {
        let f = h2(&[0.04, 0.06]);
        // sd = 0.01414, t(0.975, 1) = 12.706: detectable = 12.706 · 0.01414 / √2 = 12.71 points.
        assert!(
            f.line.contains("only a mean gain above 12.71 points"),
            "{}",
            f.line
        );
        assert!(f.line.contains("n = 2 seeds"), "{}", f.line);
        assert!(f.line.contains("95 % CI"), "{}", f.line);
    }

    #[test]
    fn h2_met_needs_both_the_margin_and_p() {
        // Gain 5 points but p > 0.05: the plan's criterion is not reached, nor ruled out.
        assert_eq!(h2(&[0.01, 0.05, 0.09]).verdict, Verdict::Inconclusive);
        // Gain 2.5 points with p < 0.05: met (the margin is on the point estimate, as the
        // plan states it; the one-sided test against the margin is printed beside it).
        let f = h2(&[0.024, 0.025, 0.026]);
        assert_eq!(f.verdict, Verdict::Met, "{}", f.line);
        assert!(
            f.line.contains("one-sided test of gain > 2 points"),
            "{}",
            f.line
        );
    }

    #[test]
    fn h3_verdicts() {
        use Verdict::*;
        let cases = [
            (
                "small gap, smaller than the baseline's",
                Some(est(0.02, 0.01, 0.03)),
                Some(est(-0.05, -0.07, -0.03)),
                Met,
            ),
            (
                "gap surely above 5 points",
                Some(est(0.08, 0.06, 0.10)),
                Some(est(-0.05, -0.07, -0.03)),
                NotMet,
            ),
            (
                "gap surely larger than the baseline's (reversed)",
                Some(est(0.02, 0.01, 0.03)),
                Some(est(0.03, 0.01, 0.05)),
                NotMet,
            ),
            (
                "gap interval across 5 points",
                Some(est(0.04, 0.01, 0.07)),
                Some(est(-0.05, -0.07, -0.03)),
                Inconclusive,
            ),
            (
                "difference across 0",
                Some(est(0.02, 0.01, 0.03)),
                Some(est(-0.01, -0.03, 0.01)),
                Inconclusive,
            ),
            (
                "tie with the baseline",
                Some(est(0.02, 0.02, 0.02)),
                Some(est(0.0, 0.0, 0.0)),
                NotMet,
            ),
            (
                "missing baseline",
                Some(est(0.02, 0.01, 0.03)),
                None,
                CannotEvaluate,
            ),
        ];
        for (name, gap, diff, want) in cases {
            assert_eq!(h3(gap, diff).verdict, want, "{name}");
        }
    }

    #[test]
    fn robustness_verdicts() {
        use Verdict::*;
        let l = |name: &str, e| (name.to_string(), e);
        let cases = [
            (
                "every level non-inferior",
                vec![
                    l("jpeg=75", est(0.0, -0.005, 0.005)),
                    l("jpeg=90", est(0.01, 0.0, 0.02)),
                ],
                Met,
            ),
            (
                "one level surely worse",
                vec![
                    l("jpeg=75", est(-0.03, -0.04, -0.02)),
                    l("jpeg=90", est(0.01, 0.0, 0.02)),
                ],
                NotMet,
            ),
            (
                "one level undecided",
                vec![l("jpeg=75", est(-0.01, -0.05, 0.03))],
                Inconclusive,
            ),
            // Surely worse, but by less than the 1-point margin: non-inferior.
            (
                "worse within the margin",
                vec![l("jpeg=75", est(-0.005, -0.009, -0.001))],
                Met,
            ),
            // The same effect measured less precisely stays undecided, never "better".
            (
                "across the margin",
                vec![l("jpeg=75", est(-0.005, -0.015, 0.005))],
                Inconclusive,
            ),
            ("no levels", vec![], CannotEvaluate),
        ];
        for (name, levels, want) in cases {
            let f = robustness(&levels);
            assert_eq!(f.verdict, want, "{name}: {}", f.line);
        }
        assert!(robustness(&[l("jpeg=75", est(-0.03, -0.04, -0.02))])
            .line
            .contains("less accurate by more than 1 point at jpeg=75"));
    }

    #[test]
    fn efficiency_verdicts() {
        use Timing::*;
        use Verdict::*;
        let cases: [(&[f64], Timing, Verdict); 8] = [
            (&[1.05, 1.08, 1.10], Controlled, Met),
            (&[1.60, 1.65, 1.70], Controlled, NotMet),
            (&[1.0, 1.6, 1.3], Controlled, Inconclusive),
            // n = 2 gives an interval with 1 degree of freedom; n = 1 none at all.
            (&[1.10, 1.40], Controlled, Inconclusive),
            (&[1.10], Controlled, Inconclusive),
            // Uncontrolled end-to-end timing is never a verdict, however tight.
            (&[1.05, 1.08, 1.10], EndToEndTest, Inconclusive),
            (&[1.60, 1.65, 1.70], EndToEndTest, Inconclusive),
            (&[0.44, 0.56], EndToEndTest, Inconclusive),
        ];
        for (ratios, timing, want) in cases {
            let f = efficiency(ratios, timing);
            assert_eq!(f.verdict, want, "{ratios:?} {timing:?}: {}", f.line);
        }
        // The interval of a ratio stays positive (log scale).
        let f = efficiency(&[0.44, 0.56], EndToEndTest);
        assert!(f.line.contains("95 % CI [0.11, 2.30]"), "{}", f.line);
    }
}
