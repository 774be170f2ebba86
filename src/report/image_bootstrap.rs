//! Intervals over test images for quantities averaged over seeds, where too few seeds give
//! no useful interval over seeds (README_ATTENTION.md, "How the report decides"): every
//! run's per-image correctness on one (perturbation, set), joined by path, resampled
//! within each generator with the same indices for every run (the runs saw the same
//! images, so the pairing is kept). The accuracy per generator, the means over seen and
//! unseen generators and the gap are computed as `npr test` computes them.
use std::collections::BTreeMap;

use anyhow::{bail, Result};
use rand::{Rng, SeedableRng};

use super::runs::Run;

/// Per generator: whether it was seen in training, and per run the correctness of each
/// image (the same images, in the same order, for every run).
#[derive(Debug, Clone, PartialEq)]
pub struct PairedImages {
    pub generators: Vec<(String, Option<bool>)>,
    /// `correct[g][run][image]`.
    pub correct: Vec<Vec<Vec<bool>>>,
}

/// Accuracy means of one run on one resample (each None where no generator qualifies).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Accuracies {
    pub seen: Option<f64>,
    pub unseen: Option<f64>,
    /// Mean over every generator (the set's `mean` row).
    pub all: Option<f64>,
}

impl Accuracies {
    pub fn gap(&self) -> Option<f64> {
        Some(self.seen? - self.unseen?)
    }
}

impl PairedImages {
    /// The clean or perturbed predictions of `runs` on `set`, joined by path. Errors when
    /// the runs did not score the same images (the report refuses such runs earlier; this
    /// keeps the function honest on its own).
    pub fn new(runs: &[&Run], perturbation: &str, set: &str) -> Result<PairedImages> {
        let mut per_run: Vec<BTreeMap<(&str, &str), bool>> = Vec::new();
        for r in runs {
            per_run.push(
                r.predictions
                    .iter()
                    .filter(|p| p.perturbation == perturbation && p.set == set)
                    .map(|p| ((p.generator.as_str(), p.path.as_str()), p.correct()))
                    .collect(),
            );
        }
        let Some(first) = per_run.first() else {
            bail!("no runs to pair");
        };
        if let Some(i) = per_run
            .iter()
            .position(|m| m.len() != first.len() || !m.keys().eq(first.keys()))
        {
            bail!(
                "{} and {} scored different images on {set} [{perturbation}]",
                runs[0].dir.display(),
                runs[i].dir.display()
            );
        }
        let seen: BTreeMap<&str, Option<bool>> = runs[0]
            .metrics
            .iter()
            .filter(|m| m.perturbation == perturbation && m.set == set)
            .map(|m| (m.generator.as_str(), m.seen))
            .collect();
        let mut generators: Vec<(String, Option<bool>)> = Vec::new();
        let mut correct: Vec<Vec<Vec<bool>>> = Vec::new();
        for &(g, path) in first.keys() {
            if generators.last().map(|x| x.0.as_str()) != Some(g) {
                generators.push((g.to_string(), seen.get(g).copied().flatten()));
                correct.push(vec![Vec::new(); runs.len()]);
            }
            let slot = correct.last_mut().expect("pushed above");
            for (run, m) in per_run.iter().enumerate() {
                slot[run].push(m[&(g, path)]);
            }
        }
        Ok(PairedImages {
            generators,
            correct,
        })
    }

    /// Each run's accuracies on the images `pick[g]` of every generator `g`.
    pub fn accuracies(&self, pick: &[Vec<usize>]) -> Vec<Accuracies> {
        let runs = self.correct.first().map_or(0, Vec::len);
        (0..runs)
            .map(|run| {
                let acc: Vec<(Option<bool>, f64)> = self
                    .generators
                    .iter()
                    .zip(&self.correct)
                    .zip(pick)
                    .filter(|(_, idx)| !idx.is_empty())
                    .map(|(((_, seen), c), idx)| {
                        let right = idx.iter().filter(|&&i| c[run][i]).count();
                        (*seen, right as f64 / idx.len() as f64)
                    })
                    .collect();
                let mean = |keep: &dyn Fn(Option<bool>) -> bool| {
                    crate::stats::mean(acc.iter().filter(|a| keep(a.0)).map(|a| a.1))
                };
                Accuracies {
                    seen: mean(&|s| s == Some(true)),
                    unseen: mean(&|s| s == Some(false)),
                    all: mean(&|_| true),
                }
            })
            .collect()
    }

    /// Every image of every generator.
    pub fn all(&self) -> Vec<Vec<usize>> {
        self.correct
            .iter()
            .map(|c| (0..c.first().map_or(0, Vec::len)).collect())
            .collect()
    }

    /// `(estimate, lo, hi)`: `statistic` on every image and its 95 % percentile interval
    /// over `resamples` stratified resamples (seeded: the same interval every time). None
    /// when the statistic is undefined on the full set or on half of the resamples.
    pub fn interval(
        &self,
        resamples: usize,
        seed: u64,
        statistic: impl Fn(&[Accuracies]) -> Option<f64>,
    ) -> Option<(f64, f64, f64)> {
        let estimate = statistic(&self.accuracies(&self.all()))?;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let sizes: Vec<usize> = self.all().iter().map(Vec::len).collect();
        let mut values = Vec::with_capacity(resamples);
        for _ in 0..resamples {
            let pick: Vec<Vec<usize>> = sizes
                .iter()
                .map(|&n| (0..n).map(|_| rng.gen_range(0..n)).collect())
                .collect();
            values.extend(statistic(&self.accuracies(&pick)).filter(|v| v.is_finite()));
        }
        if values.len() * 2 < resamples.max(1) {
            return None;
        }
        values.sort_by(f64::total_cmp);
        Some((
            estimate,
            crate::stats::quantile_sorted(&values, 0.025)?,
            crate::stats::quantile_sorted(&values, 0.975)?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two generators (seen, unseen) and two runs.
    fn images() -> PairedImages {
        PairedImages {
            generators: vec![("gan".into(), Some(true)), ("diff".into(), Some(false))],
            correct: vec![
                vec![
                    vec![true, true, true, false],
                    vec![true, true, false, false],
                ],
                vec![vec![true, false], vec![false, false]],
            ],
        }
    }

    #[test]
    fn accuracies_follow_npr_test() {
        let acc = images().accuracies(&images().all());
        assert_eq!(
            acc[0],
            Accuracies {
                seen: Some(0.75),
                unseen: Some(0.5),
                all: Some(0.625)
            }
        );
        assert_eq!(
            acc[1],
            Accuracies {
                seen: Some(0.5),
                unseen: Some(0.0),
                all: Some(0.25)
            }
        );
        assert_eq!(acc[0].gap(), Some(0.25));
    }

    #[test]
    fn intervals_hold_the_estimate_and_repeat() {
        let x = images();
        let gap_diff = |a: &[Accuracies]| Some(a[0].gap()? - a[1].gap()?);
        let (e, lo, hi) = x.interval(500, 7, gap_diff).unwrap();
        assert_eq!(e, 0.25 - 0.5);
        assert!(lo <= e && e <= hi && lo < hi, "{lo} {e} {hi}");
        assert_eq!(x.interval(500, 7, gap_diff), Some((e, lo, hi)));
        // A statistic that is never defined gives no interval.
        assert_eq!(x.interval(100, 7, |_| None), None);
    }
}
