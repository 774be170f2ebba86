//! The exploratory significance families of `npr report`, each against the baseline:
//! McNemar per seed on the same images, Cochran–Mantel–Haenszel over seeds, paired t-tests
//! over seeds; Holm's correction within each family.
use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::analysis::{variants, Scores, CLEAN};
use super::runs::Run;
use crate::stats::{self, McNemar};

/// McNemar of a variant against the baseline on one seed and set (clean images): exact
/// binomial at every size (`stats::mcnemar_from_counts`).
#[derive(Debug, Clone, Serialize)]
pub struct McNemarRow {
    pub variant: String,
    pub seed: u64,
    pub set: String,
    /// Images both runs scored (joined by path).
    pub n: usize,
    /// Only the baseline right.
    pub b: u64,
    /// Only the variant right.
    pub c: u64,
    /// Both right (with `n`, `b` and `c` it rebuilds the seed's CMH stratum).
    pub both_right: u64,
    /// `min(b, c)`: the exact binomial test's statistic.
    pub statistic: f64,
    pub p: f64,
    /// Holm-adjusted over every McNemar row of the report.
    pub p_holm: f64,
}

/// Cochran–Mantel–Haenszel test of a variant against the baseline on one set, over every
/// seed both have (strata = seeds, the same clean images): the configurations compared,
/// not two trained model instances.
#[derive(Debug, Clone, Serialize)]
pub struct CmhRow {
    pub variant: String,
    pub set: String,
    /// Seeds (strata) with both variants.
    pub seeds: usize,
    /// Images per seed.
    pub images: usize,
    /// Accuracy of the variant and of the baseline, pooled over the seeds.
    pub acc_variant: f64,
    pub acc_baseline: f64,
    /// Mantel–Haenszel common odds ratio of being right (> 1: the variant is right more often).
    pub odds_ratio: Option<f64>,
    pub statistic: Option<f64>,
    pub p: Option<f64>,
    /// Holm-adjusted over every CMH row of the report that has a p-value.
    pub p_holm: Option<f64>,
    pub note: String,
}

/// Paired t-test over seeds of a variant against the baseline on one quantity and set.
#[derive(Debug, Clone, Serialize)]
pub struct TTestRow {
    pub variant: String,
    pub set: String,
    pub quantity: String,
    pub n: usize,
    /// variant − baseline.
    pub mean_diff: Option<f64>,
    pub t: Option<f64>,
    pub p: Option<f64>,
    /// Holm-adjusted over every t-test row of the report that has a p-value.
    pub p_holm: Option<f64>,
    /// Why there is no p-value (one seed, identical differences).
    pub note: String,
}

/// The quantities compared by paired t-tests.
pub const TESTED: [&str; 4] = ["acc_seen", "acc_unseen", "acc_all", "gap"];

/// The significance families of a report, each Holm-corrected on its own.
pub struct Significance {
    pub mcnemar: Vec<McNemarRow>,
    pub cmh: Vec<CmhRow>,
    pub ttests: Vec<TTestRow>,
}

/// McNemar per seed and set, CMH over seeds per set, and paired t-tests over seeds, of
/// every variant against `baseline`; Holm within each family.
pub fn significance(
    runs: &[Run],
    per_run: &[BTreeMap<(String, String), Scores>],
    baseline: &str,
) -> Significance {
    let (mut mcnemar, mut cmh, mut ttests) = (Vec::new(), Vec::new(), Vec::new());
    let sets: BTreeSet<String> = runs
        .iter()
        .flat_map(|r| {
            r.metrics
                .iter()
                .filter(|m| m.perturbation == CLEAN)
                .map(|m| m.set.clone())
        })
        .collect();
    for variant in variants(runs).into_iter().filter(|v| v != baseline) {
        for set in &sets {
            let (rows, strata) = mcnemar_per_seed(runs, baseline, &variant, set);
            if let Some(last) = rows.last() {
                cmh.push(cmh_row(&variant, set, &strata, last.n));
            }
            mcnemar.extend(rows);
            let tested = TESTED.iter();
            ttests.extend(tested.map(|q| t_test(runs, per_run, baseline, &variant, set, q)));
        }
    }
    let adjusted = stats::holm(&mcnemar.iter().map(|m| m.p).collect::<Vec<_>>());
    for (m, p) in mcnemar.iter_mut().zip(adjusted) {
        m.p_holm = p;
    }
    let adjusted = holm_where_defined(ttests.iter().map(|t| t.p));
    for (t, p) in ttests.iter_mut().zip(adjusted) {
        t.p_holm = p;
    }
    let adjusted = holm_where_defined(cmh.iter().map(|c| c.p));
    for (c, p) in cmh.iter_mut().zip(adjusted) {
        c.p_holm = p;
    }
    Significance {
        mcnemar,
        cmh,
        ttests,
    }
}

/// Holm over the defined p-values only; None where there is none.
fn holm_where_defined(ps: impl Iterator<Item = Option<f64>>) -> Vec<Option<f64>> {
    let ps: Vec<Option<f64>> = ps.collect();
    let mut adjusted = stats::holm(&ps.iter().flatten().copied().collect::<Vec<_>>()).into_iter();
    ps.iter().map(|p| p.and_then(|_| adjusted.next())).collect()
}

/// The baseline run with the same seed as `run`, and its index.
fn partner<'a>(runs: &'a [Run], baseline: &str, run: &Run) -> Option<(usize, &'a Run)> {
    runs.iter()
        .enumerate()
        .find(|(_, b)| b.variant == baseline && b.seed == run.seed)
}

/// McNemar per seed on the clean images of `set` both runs scored (joined by path), and
/// each seed's table `[[variant right, wrong], [baseline right, wrong]]` for CMH.
fn mcnemar_per_seed(
    runs: &[Run],
    baseline: &str,
    variant: &str,
    set: &str,
) -> (Vec<McNemarRow>, Vec<stats::Table2x2>) {
    let correct = |run: &Run| -> BTreeMap<String, bool> {
        run.predictions
            .iter()
            .filter(|p| p.perturbation == CLEAN && p.set == set)
            .map(|p| (p.path.clone(), p.correct()))
            .collect()
    };
    let (mut rows, mut strata) = (Vec::new(), Vec::new());
    for r in runs.iter().filter(|r| r.variant == variant) {
        let Some((_, base)) = partner(runs, baseline, r) else {
            continue;
        };
        let (a, b) = (correct(base), correct(r));
        let pairs: Vec<(bool, bool)> = a
            .iter()
            .filter_map(|(k, &x)| Some((x, *b.get(k)?)))
            .collect();
        let (xa, xb): (Vec<bool>, Vec<bool>) = pairs.iter().copied().unzip();
        let m: McNemar = stats::mcnemar(&xa, &xb).expect("paired by construction");
        let right = |xs: &[bool]| xs.iter().filter(|&&x| x).count() as u64;
        let n = pairs.len() as u64;
        strata.push([[right(&xb), n - right(&xb)], [right(&xa), n - right(&xa)]]);
        rows.push(McNemarRow {
            variant: variant.into(),
            seed: r.seed,
            set: set.into(),
            n: pairs.len(),
            b: m.b,
            c: m.c,
            both_right: pairs.iter().filter(|&&(x, y)| x && y).count() as u64,
            statistic: m.statistic,
            p: m.p_value,
            p_holm: f64::NAN,
        });
    }
    (rows, strata)
}

/// The paired t-test of quantity `q` on the clean images of `set`, over the seeds both
/// variants have.
fn t_test(
    runs: &[Run],
    per_run: &[BTreeMap<(String, String), Scores>],
    baseline: &str,
    variant: &str,
    set: &str,
    q: &str,
) -> TTestRow {
    let key = (CLEAN.to_string(), set.to_string());
    let value = |i: usize| per_run[i].get(&key).and_then(|s| s.get(q));
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for (i, r) in runs
        .iter()
        .enumerate()
        .filter(|(_, r)| r.variant == variant)
    {
        let base = partner(runs, baseline, r).and_then(|(j, _)| value(j));
        if let (Some(v), Some(bv)) = (value(i), base) {
            a.push(v);
            b.push(bv);
        }
    }
    let row = TTestRow {
        variant: variant.into(),
        set: set.into(),
        quantity: q.into(),
        n: a.len(),
        mean_diff: None,
        t: None,
        p: None,
        p_holm: None,
        note: String::new(),
    };
    match stats::paired_t_test(&a, &b) {
        Ok(t) => TTestRow {
            n: t.n,
            mean_diff: Some(t.mean_diff),
            t: Some(t.t),
            p: Some(t.p_value),
            ..row
        },
        Err(e) => TTestRow {
            mean_diff: stats::mean_std(&a.iter().zip(&b).map(|(x, y)| x - y).collect::<Vec<_>>())
                .map(|m| m.0),
            note: e.to_string(),
            ..row
        },
    }
}

/// One CMH row from the per-seed tables `[[variant right, wrong], [baseline right, wrong]]`
/// (no continuity correction, statsmodels' default).
fn cmh_row(variant: &str, set: &str, strata: &[stats::Table2x2], images: usize) -> CmhRow {
    let total = |row: usize| -> (u64, u64) {
        strata.iter().fold((0, 0), |(r, n), t| {
            (r + t[row][0], n + t[row][0] + t[row][1])
        })
    };
    let acc = |(r, n): (u64, u64)| {
        if n == 0 {
            f64::NAN
        } else {
            r as f64 / n as f64
        }
    };
    let test = stats::cochran_mantel_haenszel(strata, false);
    CmhRow {
        variant: variant.into(),
        set: set.into(),
        seeds: strata.len(),
        images,
        acc_variant: acc(total(0)),
        acc_baseline: acc(total(1)),
        odds_ratio: test
            .as_ref()
            .ok()
            .map(|t| t.odds_ratio)
            .filter(|x| x.is_finite()),
        statistic: test.as_ref().ok().map(|t| t.statistic),
        p: test.as_ref().ok().map(|t| t.p_value),
        p_holm: None,
        note: match test {
            Ok(_) => String::new(),
            Err(_) => "no stratum with variance (every image right, or no images)".into(),
        },
    }
}
