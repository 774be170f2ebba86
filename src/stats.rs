//! Significance tests and summaries for comparing detectors (ARCHITECTURE.md, Metrics).
//!
//! - [`mean_std`]: mean ± sample standard deviation over seeds, for the ablation table.
//! - [`mcnemar`]: do two models differ on the *same images*? Uses only the images
//!   where exactly one of them is right, so it has far more power than comparing two
//!   accuracies as if they came from independent samples.
//! - [`paired_t_test`]: do two configurations differ *across seeds*? Pairs run `i` of
//!   one with run `i` of the other (same seed, same data order), two-sided.
//! - [`holm`]: Holm's step-down correction over a family of comparisons, so that running
//!   many tests does not manufacture a "significant" one.
//! - [`bootstrap_ci`]: a seeded percentile bootstrap interval for any per-image metric.
//! - [`cochran_mantel_haenszel`]: McNemar's question over several seeds at once (strata).
//! - [`t_interval`], [`t_critical`], [`t_test_greater`]: intervals and the one-sided test
//!   against a margin that the report's verdicts use (`report/hypotheses.rs`).
//!
//! The comparisons are two-sided (we ask whether the models differ, not whether the one we
//! hoped for wins); the one exception is [`t_test_greater`], which tests a stated margin.
//! p-values come from `statrs` survival functions (`sf`), which keep their precision in the
//! tail where `1 − cdf` would round to 0.
//!
//! Pure functions on slices; invalid input is a [`StatsError`], never a panic.

use serde::Serialize;
use statrs::distribution::{Binomial, ChiSquared, ContinuousCDF, DiscreteCDF, StudentsT};

/// Why a test could not be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StatsError {
    /// The two samples must be paired element by element.
    #[error(
        "paired samples differ in length ({left} vs {right}): pair runs with the same seeds, \
         predictions over the same images"
    )]
    LengthMismatch { left: usize, right: usize },
    /// A paired t-test needs at least two pairs (one degree of freedom).
    #[error("a paired t-test needs at least 2 pairs, got {n}: run more seeds")]
    TooFewPairs { n: usize },
    /// Every paired difference is the same, so the t statistic is `0/0` (no difference)
    /// or `±d/0` (a constant, non-zero difference). Either way a p-value from the
    /// t distribution is meaningless; report the constant difference instead.
    #[error(
        "every paired difference equals {mean_diff}: the t-test is undefined without variance"
    )]
    ZeroVariance { mean_diff: f64 },
    /// A NaN or infinite value at this index.
    #[error("value {value} at index {index} is not finite")]
    NonFinite { index: usize, value: f64 },
}

/// The arithmetic mean; None for no values. The one mean of the crate's tables.
pub fn mean(xs: impl IntoIterator<Item = f64>) -> Option<f64> {
    let v: Vec<f64> = xs.into_iter().collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// Mean and sample standard deviation (divisor n − 1, as `np.std(xs, ddof=1)`), for
/// "mean ± std over seeds".
///
/// None if `xs` is empty or holds a NaN/infinite value. A single value gives a std of
/// 0.0: one seed shows no spread rather than an undefined one, so tables still print;
/// callers that report `n` make the difference visible.
pub fn mean_std(xs: &[f64]) -> Option<(f64, f64)> {
    if xs.is_empty() || xs.iter().any(|x| !x.is_finite()) {
        return None;
    }
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    if xs.len() == 1 {
        return Some((mean, 0.0));
    }
    // Two-pass: summing squared deviations from the mean avoids the cancellation of
    // `Σx² − n·mean²` when the values are close together (accuracies over seeds are).
    let ss: f64 = xs.iter().map(|x| (x - mean).powi(2)).sum();
    Some((mean, (ss / (n - 1.0)).sqrt()))
}

/// McNemar's test on the paired correctness of models A and B.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct McNemar {
    /// Images that A gets right and B gets wrong.
    pub b: u64,
    /// Images that A gets wrong and B gets right.
    pub c: u64,
    /// `min(b, c)`, as statsmodels' `mcnemar(exact=True)` reports it.
    pub statistic: f64,
    pub p_value: f64,
}

/// McNemar's test from per-image correctness (`a_correct[i]`: model A classified
/// image `i` correctly). Images both models get right or both get wrong carry no
/// information about which is better and are ignored.
pub fn mcnemar(a_correct: &[bool], b_correct: &[bool]) -> Result<McNemar, StatsError> {
    paired(a_correct.len(), b_correct.len())?;
    let count = |pair: (bool, bool)| {
        a_correct
            .iter()
            .zip(b_correct)
            .filter(|&(&a, &b)| (a, b) == pair)
            .count() as u64
    };
    let (b, c) = (count((true, false)), count((false, true)));
    Ok(mcnemar_from_counts(b, c))
}

/// [`StatsError::LengthMismatch`] unless the two samples pair element by element.
fn paired(left: usize, right: usize) -> Result<(), StatsError> {
    (left == right)
        .then_some(())
        .ok_or(StatsError::LengthMismatch { left, right })
}

/// McNemar's test from the discordant counts `b` (only A right) and `c` (only B right):
/// the two-sided exact binomial test of `min(b, c)` in `Binomial(b + c, 1/2)`, at every
/// size (as statsmodels' `mcnemar(exact=True)` and scipy's `binomtest`). One method for
/// every count keeps rows comparable; the χ² approximation with continuity correction that
/// papers often quote differs from it by a few percent of p near 25 discordant pairs and by
/// less as they grow (README_ATTENTION.md, "Statistics"). With no discordant pair the
/// models are indistinguishable: p = 1; b = c gives p = 1 as well.
pub fn mcnemar_from_counts(b: u64, c: u64) -> McNemar {
    let n = b + c;
    let k = b.min(c);
    // Binomial(n, 1/2) is symmetric, so the two-sided p is twice the lower tail
    // P(X ≤ min(b, c)), capped at 1 when b = c. The lower tail is computed directly
    // (no subtraction), so it keeps full precision.
    let lower_tail = match Binomial::new(0.5, n) {
        Ok(dist) if n > 0 => dist.cdf(k),
        _ => 1.0,
    };
    McNemar {
        b,
        c,
        statistic: k as f64,
        p_value: (2.0 * lower_tail).min(1.0),
    }
}

/// One stratum of a [`cochran_mantel_haenszel`] test: `[[a, b], [c, d]]` with rows the
/// two models (variant, baseline) and columns (right, wrong).
pub type Table2x2 = [[u64; 2]; 2];

/// Result of a Cochran–Mantel–Haenszel test over strata.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Cmh {
    /// Strata that carry information (at least 2 images and both margins varied).
    pub strata: usize,
    /// `(|Σ a − Σ E[a]| − ½·correction)² / Σ Var[a]`, χ² with 1 degree of freedom.
    pub statistic: f64,
    pub p_value: f64,
    /// The Mantel–Haenszel common odds ratio `Σ(ad/n) / Σ(bc/n)`: above 1 when the first
    /// row (the variant) is right more often than the second within strata.
    pub odds_ratio: f64,
}

/// The Cochran–Mantel–Haenszel test of a common odds ratio of 1 across 2×2 strata (as
/// statsmodels' `StratifiedTable(tables).test_null_odds(correction)` and
/// `.oddsratio_pooled`). In `npr report` a stratum is one seed: it asks whether the
/// variant's configuration is right more often than the baseline's over every seed at
/// once, where McNemar speaks of one pair of trained models. A stratum treats the two
/// models' answers as independent samples, which ignores the pairing by image: with
/// positively correlated answers that makes the test conservative, never anti-conservative.
///
/// Errors when no stratum has variance (every image right, or no strata).
pub fn cochran_mantel_haenszel(tables: &[Table2x2], correction: bool) -> Result<Cmh, StatsError> {
    let (mut sum_a, mut sum_e, mut sum_v, mut num, mut den) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let mut strata = 0;
    for t in tables {
        let [[a, b], [c, d]] = t.map(|row| row.map(|x| x as f64));
        let n = a + b + c + d;
        let (row1, row2, col1, col2) = (a + b, c + d, a + c, b + d);
        if n < 2.0 {
            continue;
        }
        let var = row1 * row2 * col1 * col2 / (n * n * (n - 1.0));
        if var > 0.0 {
            strata += 1;
        }
        sum_a += a;
        sum_e += row1 * col1 / n;
        sum_v += var;
        num += a * d / n;
        den += b * c / n;
    }
    if sum_v <= 0.0 {
        return Err(StatsError::ZeroVariance { mean_diff: 0.0 });
    }
    let deviation = (sum_a - sum_e).abs() - if correction { 0.5 } else { 0.0 };
    let statistic = deviation.powi(2) / sum_v;
    let p_value = ChiSquared::new(1.0).map_or(f64::NAN, |chi2| chi2.sf(statistic));
    Ok(Cmh {
        strata,
        statistic,
        p_value,
        odds_ratio: num / den,
    })
}

/// Result of a two-sided paired t-test of `a − b`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PairedTTest {
    pub n: usize,
    /// Degrees of freedom, `n − 1`.
    pub df: f64,
    /// Mean of `a[i] − b[i]`: positive when `a` scores higher.
    pub mean_diff: f64,
    /// Sample standard deviation of the differences.
    pub std_diff: f64,
    pub t: f64,
    pub p_value: f64,
}

/// Two-sided paired t-test (as `scipy.stats.ttest_rel(a, b)`) over runs paired by
/// seed: `t = mean(d) / (sd(d) / √n)` with `d = a − b`, `n − 1` degrees of freedom.
///
/// Errors rather than NaN: fewer than 2 pairs ([`StatsError::TooFewPairs`]), and
/// differences that are all equal up to rounding ([`StatsError::ZeroVariance`], where scipy
/// returns NaN or ±inf).
pub fn paired_t_test(a: &[f64], b: &[f64]) -> Result<PairedTTest, StatsError> {
    paired(a.len(), b.len())?;
    let finite = |i: usize| a[i].is_finite() && b[i].is_finite();
    if let Some(index) = (0..a.len()).find(|&i| !finite(i)) {
        let value = if a[index].is_finite() {
            b[index]
        } else {
            a[index]
        };
        return Err(StatsError::NonFinite { index, value });
    }
    let n = a.len();
    if n < 2 {
        return Err(StatsError::TooFewPairs { n });
    }
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let (mean_diff, std_diff) = mean_std(&d).ok_or(StatsError::TooFewPairs { n })?;
    // Differences that agree up to rounding (0.9 − 0.8 vs 0.7 − 0.6) have a standard
    // deviation of ~1e-17, not 0, and would give t ≈ 1e15, p ≈ 0: treat a spread below a
    // few hundred ulps of the values' magnitude as no variance at all.
    let scale = a.iter().chain(b).fold(0.0f64, |m, x| m.max(x.abs()));
    if std_diff <= 256.0 * f64::EPSILON * scale {
        return Err(StatsError::ZeroVariance { mean_diff });
    }
    let df = (n - 1) as f64;
    let t = mean_diff / (std_diff / (n as f64).sqrt());
    // Two-sided: P(|T| ≥ |t|) = 2 · sf(|t|). sf(|t|) ≤ 1/2, so no cap is needed.
    let p_value = student_t(df).map_or(f64::NAN, |dist| 2.0 * dist.sf(t.abs()));
    Ok(PairedTTest {
        n,
        df,
        mean_diff,
        std_diff,
        t,
        p_value,
    })
}

/// Student's t with `df` degrees of freedom (None for a df it cannot take).
fn student_t(df: f64) -> Option<StudentsT> {
    StudentsT::new(0.0, 1.0, df).ok()
}

/// The two-sided critical value `t_{(1+level)/2, df}` of Student's t (as
/// `scipy.stats.t.ppf((1 + level) / 2, df)`): 12.706 for 1 degree of freedom at 95 %.
pub fn t_critical(df: f64, level: f64) -> Option<f64> {
    if !(df > 0.0 && (0.0..1.0).contains(&level)) {
        return None;
    }
    student_t(df).map(|d| d.inverse_cdf((1.0 + level) / 2.0))
}

/// A mean with its two-sided t interval at `level`: `(mean, lo, hi)` with
/// `mean ± t_critical(n − 1) · sd / √n` (as `scipy.stats.t.interval(level, n − 1, mean,
/// sem)`). None below 2 values; values without spread give the degenerate `[mean, mean]`.
pub fn t_interval(xs: &[f64], level: f64) -> Option<(f64, f64, f64)> {
    let n = xs.len();
    if n < 2 {
        return None;
    }
    let (mean, sd) = mean_std(xs)?;
    let half = t_critical((n - 1) as f64, level)? * sd / (n as f64).sqrt();
    Some((mean, mean - half, mean + half))
}

/// One-sided t-test that the mean of `xs` exceeds `margin`: `P(T ≥ (mean − margin) / (sd /
/// √n))` with `n − 1` degrees of freedom (as `scipy.stats.ttest_1samp(xs, margin,
/// alternative="greater")`). None below 2 values or without spread.
pub fn t_test_greater(xs: &[f64], margin: f64) -> Option<f64> {
    let n = xs.len();
    let (mean, sd) = mean_std(xs)?;
    if n < 2 || sd <= 0.0 {
        return None;
    }
    let t = (mean - margin) / (sd / (n as f64).sqrt());
    student_t((n - 1) as f64).map(|d| d.sf(t))
}

/// Holm–Bonferroni adjusted p-values, in the input order (as statsmodels
/// `multipletests(p, method="holm")[1]`): sorted ascending, the i-th smallest (1-based) is
/// multiplied by `m − i + 1`, made monotone with a running maximum and capped at 1. A
/// comparison is significant at level α when its adjusted p < α; this controls the chance
/// of any false positive in the family at α.
pub fn holm(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut adjusted = vec![0.0; m];
    let mut running = 0.0f64;
    for (rank, &i) in order.iter().enumerate() {
        running = running.max(((m - rank) as f64 * p[i]).min(1.0));
        adjusted[i] = running;
    }
    adjusted
}

/// The `q`-quantile (0 ≤ q ≤ 1) of sorted values with linear interpolation between
/// neighbours (numpy's default `np.percentile(x, 100 q)`).
pub fn quantile_sorted(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() || !(0.0..=1.0).contains(&q) {
        return None;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, frac) = (pos.floor() as usize, pos - pos.floor());
    let hi = (lo + 1).min(sorted.len() - 1);
    Some(sorted[lo] + frac * (sorted[hi] - sorted[lo]))
}

/// A seeded percentile bootstrap interval at `level` (0.95: the 2.5 % and 97.5 %
/// quantiles) of `statistic` over `n` items: `resamples` times, draw `n` indices with
/// replacement (ChaCha8 seeded by `seed`, so the interval is reproducible) and evaluate
/// `statistic` on them. Resamples where the statistic is undefined (one class only, for
/// AP or AUC) are left out; None when fewer than half of them are defined.
pub fn bootstrap_ci(
    n: usize,
    resamples: usize,
    level: f64,
    seed: u64,
    statistic: impl Fn(&[usize]) -> Option<f64>,
) -> Option<(f64, f64)> {
    use rand::{Rng, SeedableRng};
    if n == 0 || resamples == 0 || !(0.0..1.0).contains(&level) {
        return None;
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut idx = vec![0usize; n];
    let mut values = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        idx.iter_mut().for_each(|i| *i = rng.gen_range(0..n));
        values.extend(statistic(&idx).filter(|v| v.is_finite()));
    }
    if values.len() * 2 < resamples {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let tail = (1.0 - level) / 2.0;
    Some((
        quantile_sorted(&values, tail)?,
        quantile_sorted(&values, 1.0 - tail)?,
    ))
}

/// One-way ANOVA (as `scipy.stats.f_oneway`): do the group means differ? Returns
/// `(F, p)`; None with fewer than 2 non-empty groups or no residual degree of freedom.
/// Identical values within every group give F = ∞, p = 0 when the means differ.
pub fn one_way_anova(groups: &[Vec<f64>]) -> Option<(f64, f64)> {
    use statrs::distribution::FisherSnedecor;
    let groups: Vec<&Vec<f64>> = groups.iter().filter(|g| !g.is_empty()).collect();
    let n: usize = groups.iter().map(|g| g.len()).sum();
    let k = groups.len();
    if k < 2 || n <= k {
        return None;
    }
    let grand = groups.iter().flat_map(|g| g.iter()).sum::<f64>() / n as f64;
    let means: Vec<f64> = groups
        .iter()
        .map(|g| g.iter().sum::<f64>() / g.len() as f64)
        .collect();
    let between: f64 = groups
        .iter()
        .zip(&means)
        .map(|(g, m)| g.len() as f64 * (m - grand).powi(2))
        .sum();
    let within: f64 = groups
        .iter()
        .zip(&means)
        .map(|(g, m)| g.iter().map(|v| (v - m).powi(2)).sum::<f64>())
        .sum();
    let (df1, df2) = ((k - 1) as f64, (n - k) as f64);
    if within == 0.0 {
        return Some(if between == 0.0 {
            (f64::NAN, f64::NAN)
        } else {
            (f64::INFINITY, 0.0)
        });
    }
    let f = (between / df1) / (within / df2);
    let p = FisherSnedecor::new(df1, df2).map_or(f64::NAN, |d| d.sf(f));
    Some((f, p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(x: f64, expected: f64, tol: f64) -> bool {
        (x - expected).abs() < tol
    }

    #[test]
    fn mean_std_matches_numpy() {
        type Case = (&'static [f64], Option<(f64, f64)>);
        // np.mean(xs), np.std(xs, ddof=1)
        let cases: [Case; 6] = [
            (&[0.91, 0.93, 0.92], Some((0.92, 0.010000000000000009))),
            (
                &[0.812, 0.799, 0.845, 0.830, 0.801],
                Some((0.8174000000000001, 0.01973068675946173)),
            ),
            // One seed: std 0 by convention (numpy gives NaN).
            (&[0.5], Some((0.5, 0.0))),
            (&[0.7, 0.7], Some((0.7, 0.0))),
            (&[], None),
            (&[0.5, f64::NAN], None),
        ];
        for (xs, expected) in cases {
            let got = mean_std(xs);
            match (got, expected) {
                (Some((m, s)), Some((em, es))) => {
                    assert!(
                        close(m, em, 1e-12) && close(s, es, 1e-12),
                        "{xs:?}: {got:?}"
                    )
                }
                (None, None) => {}
                _ => panic!("{xs:?}: {got:?}, expected {expected:?}"),
            }
        }
    }

    /// Reference values from statsmodels and scipy, made by
    /// `scripts/fixtures/significance_statsmodels.py`.
    fn fixture() -> serde_json::Value {
        serde_json::from_str(include_str!(
            "../tests/fixtures/significance_statsmodels.json"
        ))
        .unwrap()
    }

    #[test]
    fn mcnemar_is_exact_at_every_size_as_statsmodels() {
        let cases = fixture()["mcnemar_exact"].as_array().unwrap().clone();
        assert!(cases.len() >= 10);
        for case in cases {
            let (b, c) = (case["b"].as_u64().unwrap(), case["c"].as_u64().unwrap());
            let r = mcnemar_from_counts(b, c);
            let (statistic, p) = (
                case["statistic"].as_f64().unwrap(),
                case["p"].as_f64().unwrap(),
            );
            assert_eq!((r.b, r.c), (b, c));
            assert!(close(r.statistic, statistic, 1e-12), "({b}, {c}): {r:?}");
            assert!(
                close(r.p_value, p, 1e-10),
                "({b}, {c}): p {} vs {p}",
                r.p_value
            );
            // scipy's binomtest agrees (the notebook recomputes with it).
            let scipy = case["p_scipy_binomtest"].as_f64().unwrap();
            assert!(close(r.p_value, scipy, 1e-10), "({b}, {c}): scipy {scipy}");
        }
    }

    #[test]
    fn cmh_matches_statsmodels_stratified_table() {
        let cases = fixture()["cmh"].as_array().unwrap().clone();
        assert!(cases.len() >= 10);
        for case in cases {
            let tables: Vec<Table2x2> = serde_json::from_value(case["tables"].clone()).unwrap();
            let correction = case["correction"].as_bool().unwrap();
            let r = cochran_mantel_haenszel(&tables, correction).unwrap();
            let want = |k: &str| case[k].as_f64().unwrap();
            assert!(
                close(r.statistic, want("statistic"), 1e-10),
                "{tables:?}: {r:?}"
            );
            assert!(close(r.p_value, want("p"), 1e-10), "{tables:?}: {r:?}");
            assert!(
                close(r.odds_ratio, want("odds_ratio_pooled"), 1e-10),
                "{tables:?}: {r:?}"
            );
            // Swapping the models flips the odds ratio and keeps the test.
            let swapped: Vec<Table2x2> = tables.iter().map(|t| [t[1], t[0]]).collect();
            let s = cochran_mantel_haenszel(&swapped, correction).unwrap();
            assert!(
                close(s.p_value, r.p_value, 1e-12) && close(s.odds_ratio, 1.0 / r.odds_ratio, 1e-9)
            );
        }
        // No stratum with variance: every image right for both models.
        assert!(cochran_mantel_haenszel(&[[[5, 0], [5, 0]]], false).is_err());
        assert!(cochran_mantel_haenszel(&[], false).is_err());
    }

    #[test]
    fn t_intervals_and_one_sided_tests_match_scipy() {
        // scipy.stats.t.ppf(0.975, df)
        for (df, want) in [
            (1.0, 12.706204736174694),
            (2.0, 4.302652729749462),
            (9.0, 2.262157162798205),
        ] {
            assert!(close(t_critical(df, 0.95).unwrap(), want, 1e-9), "df {df}");
        }
        // scipy.stats.t.interval(0.95, 2, loc=mean, scale=stats.sem(xs))
        let (m, lo, hi) = t_interval(&[0.01, 0.03, 0.02], 0.95).unwrap();
        assert!(close(m, 0.02, 1e-12));
        assert!(
            close(lo, -0.0048413771175033, 1e-9) && close(hi, 0.0448413771175033, 1e-9),
            "{lo} {hi}"
        );
        assert_eq!(t_interval(&[0.5], 0.95), None);
        assert_eq!(t_interval(&[0.5, 0.5], 0.95), Some((0.5, 0.5, 0.5)));
        // scipy.stats.ttest_1samp([0.01, 0.03, 0.02], 0.02, alternative="greater").pvalue = 0.5
        // and ttest_1samp([0.03, 0.05, 0.04], 0.02, alternative="greater").pvalue
        assert!(close(
            t_test_greater(&[0.01, 0.03, 0.02], 0.02).unwrap(),
            0.5,
            1e-12
        ));
        assert!(close(
            t_test_greater(&[0.03, 0.05, 0.04], 0.02).unwrap(),
            0.03708995011372428,
            1e-9
        ));
        assert_eq!(t_test_greater(&[0.03], 0.02), None);
    }

    #[test]
    fn mcnemar_counts_discordant_pairs() {
        // A right on 0,1,2,4; B right on 2,3,4,5 → b = 2 (images 0, 1), c = 2 (3, 5).
        let a = [true, true, true, false, true, false];
        let b = [false, false, true, true, true, true];
        let r = mcnemar(&a, &b).unwrap();
        assert_eq!((r.b, r.c), (2, 2));
        assert_eq!(
            mcnemar(&a, &b[..3]).unwrap_err(),
            StatsError::LengthMismatch { left: 6, right: 3 }
        );
    }

    #[test]
    fn paired_t_test_matches_scipy() {
        /// (a, b, t, df, p, mean_diff)
        type Case = (&'static [f64], &'static [f64], f64, f64, f64, f64);
        // r = scipy.stats.ttest_rel(a, b); r.statistic, r.df, r.pvalue, np.mean(a - b)
        let cases: [Case; 3] = [
            (
                &[0.91, 0.93, 0.92],
                &[0.89, 0.90, 0.91],
                3.4641016151377544,
                2.0,
                0.07417990022744855,
                0.020000000000000018,
            ),
            (
                &[0.812, 0.799, 0.845, 0.830, 0.801],
                &[0.820, 0.805, 0.840, 0.842, 0.815],
                -2.1105794120443404,
                4.0,
                0.10242353305592279,
                -0.006999999999999962,
            ),
            (
                &[0.7, 0.8],
                &[0.6, 0.65],
                4.999999999999996,
                1.0,
                0.12566591637800248,
                0.125,
            ),
        ];
        for (a, b, t, df, p, mean_diff) in cases {
            let r = paired_t_test(a, b).unwrap();
            assert_eq!((r.n, r.df), (a.len(), df), "{a:?}");
            assert!(close(r.t, t, 1e-9), "{a:?}: t {} vs {t}", r.t);
            assert!(close(r.p_value, p, 1e-12), "{a:?}: p {} vs {p}", r.p_value);
            assert!(
                close(r.mean_diff, mean_diff, 1e-12),
                "{a:?}: mean {}",
                r.mean_diff
            );
            // Swapping the arguments flips the sign and keeps the two-sided p.
            let s = paired_t_test(b, a).unwrap();
            assert!(
                close(s.t, -t, 1e-9) && close(s.p_value, p, 1e-12),
                "{a:?} swapped: {s:?}"
            );
        }
    }

    #[test]
    fn paired_t_test_rejects_degenerate_input() {
        let cases: [(&[f64], &[f64], StatsError); 5] = [
            (&[], &[], StatsError::TooFewPairs { n: 0 }),
            (&[0.9], &[0.8], StatsError::TooFewPairs { n: 1 }),
            (
                &[0.9, 0.8],
                &[0.8],
                StatsError::LengthMismatch { left: 2, right: 1 },
            ),
            // Identical runs, and a constant difference of exactly 0.5.
            (
                &[0.9, 0.8],
                &[0.9, 0.8],
                StatsError::ZeroVariance { mean_diff: 0.0 },
            ),
            (
                &[1.0, 0.75],
                &[0.5, 0.25],
                StatsError::ZeroVariance { mean_diff: 0.5 },
            ),
        ];
        // A constant difference of 0.1 up to rounding: no variance, not t ≈ 1e15.
        let rounding = paired_t_test(&[0.9, 0.8, 0.7], &[0.8, 0.7, 0.6]).unwrap_err();
        assert!(
            matches!(rounding, StatsError::ZeroVariance { mean_diff } if (mean_diff - 0.1).abs() < 1e-12),
            "{rounding:?}"
        );
        // A real but small spread is still tested.
        let small = paired_t_test(&[0.9, 0.8, 0.7], &[0.8, 0.7, 0.6001]).unwrap();
        assert!(small.t.is_finite() && small.t.abs() < 1e6, "{small:?}");
        for (a, b, expected) in cases {
            assert_eq!(paired_t_test(a, b).unwrap_err(), expected, "{a:?} {b:?}");
        }
        let nan = paired_t_test(&[0.9, 0.8], &[0.7, f64::NAN]).unwrap_err();
        assert!(
            matches!(nan, StatsError::NonFinite { index: 1, .. }),
            "{nan:?}"
        );
    }

    #[test]
    fn holm_matches_statsmodels() {
        // from statsmodels.stats.multitest import multipletests
        // multipletests(p, method="holm")[1]   (statsmodels 0.14.5)
        let cases: [(&[f64], &[f64]); 5] = [
            (&[0.01, 0.04, 0.03, 0.005], &[0.03, 0.06, 0.06, 0.02]),
            (&[0.2, 0.5, 0.01], &[0.4, 0.5, 0.03]),
            (&[0.04], &[0.04]),
            (
                &[0.001, 0.001, 0.9, 0.02, 0.3],
                &[0.005, 0.005, 0.9, 0.06, 0.6],
            ),
            (&[], &[]),
        ];
        for (p, want) in cases {
            let got = holm(p);
            assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(want.iter()) {
                assert!(close(*g, *w, 1e-10), "{p:?}: {got:?}");
            }
        }
    }

    #[test]
    fn quantiles_match_numpy() {
        // np.percentile([0.3, 0.1, 0.9, 0.5, 0.7, 0.2, 0.8], q)
        let mut x = vec![0.3, 0.1, 0.9, 0.5, 0.7, 0.2, 0.8];
        x.sort_by(f64::total_cmp);
        for (q, want) in [
            (2.5, 0.115),
            (97.5, 0.885),
            (50.0, 0.5),
            (0.0, 0.1),
            (100.0, 0.9),
        ] {
            let got = quantile_sorted(&x, q / 100.0).unwrap();
            assert!(close(got, want, 1e-10), "{q}: {got}");
        }
        assert_eq!(quantile_sorted(&[], 0.5), None);
    }

    #[test]
    fn the_bootstrap_is_a_function_of_its_seed_and_covers_the_estimate() {
        let correct: Vec<f64> = (0..200).map(|i| f64::from(i % 4 != 0)).collect();
        let acc =
            |idx: &[usize]| Some(idx.iter().map(|&i| correct[i]).sum::<f64>() / idx.len() as f64);
        let a = bootstrap_ci(200, 500, 0.95, 7, acc).unwrap();
        assert_eq!(a, bootstrap_ci(200, 500, 0.95, 7, acc).unwrap());
        assert_ne!(a, bootstrap_ci(200, 500, 0.95, 8, acc).unwrap());
        // The accuracy is 0.75; its binomial standard error is ≈ 0.031.
        assert!(
            a.0 < 0.75 && 0.75 < a.1 && a.1 - a.0 > 0.08 && a.1 - a.0 < 0.16,
            "{a:?}"
        );
        // A statistic that is never defined gives no interval.
        assert_eq!(bootstrap_ci(200, 50, 0.95, 7, |_| None), None);
    }

    #[test]
    fn one_way_anova_matches_scipy() {
        // from scipy import stats; r = stats.f_oneway(*groups); r.statistic, r.pvalue
        let cases: [(Vec<Vec<f64>>, f64, f64); 2] = [
            (
                vec![
                    vec![0.61, 0.62, 0.60, 0.63],
                    vec![0.58, 0.59, 0.57],
                    vec![0.65, 0.66, 0.64, 0.67, 0.66],
                ],
                41.48360655737705,
                2.869080107725554e-05,
            ),
            (
                vec![vec![1.0, 2.0, 3.0], vec![1.5, 2.5, 3.5]],
                0.375,
                0.5733922538253555,
            ),
        ];
        for (groups, f, p) in cases {
            let (gf, gp) = one_way_anova(&groups).unwrap();
            assert!(
                close(gf, f, 1e-10) && close(gp, p, 1e-10),
                "{groups:?}: {gf} {gp}"
            );
        }
        assert_eq!(one_way_anova(&[vec![1.0, 2.0]]), None);
    }
}
