//! Does the attention pick the scale the artifact is at? On data whose manifest gives every
//! generator's true NPR scale (the synthetic benchmark's `synth.json`), the share of fakes
//! whose highest-weighted NPR branch — the identity branch (scale 1.0) excluded — is the
//! generator's true scale, next to the mean weight of every branch for its reals and fakes.
use std::collections::BTreeMap;

/// One scored image: its generator, label and per-branch weight (colour channels averaged).
#[derive(Debug, Clone, Copy)]
pub struct WeightedImage<'a> {
    pub generator: &'a str,
    pub label: u8,
    pub weights: &'a [f64],
}

/// Scale selection for one generator.
#[derive(Debug, Clone, PartialEq)]
pub struct SelectionRow {
    pub generator: String,
    /// From the manifest; None when it names no scale for this generator.
    pub true_scale: Option<f64>,
    pub reals: usize,
    pub fakes: usize,
    /// Share of fakes whose top NPR branch is the true scale; None without a true scale,
    /// when the true scale is not one of the model's branches, or without fakes.
    pub share_top_is_true: Option<f64>,
    /// What picking an NPR branch at random scores: 1 / (number of NPR branches).
    pub chance: f64,
    /// Mean weight per branch (in `scales` order) over the reals and over the fakes;
    /// NaN where there are none.
    pub mean_weight_real: Vec<f64>,
    pub mean_weight_fake: Vec<f64>,
}

/// The NPR branches (scale < 1) of a model; selection needs at least two.
fn npr_branches(scales: &[f64]) -> Vec<usize> {
    (0..scales.len()).filter(|&b| scales[b] < 1.0).collect()
}

/// Rows per generator (sorted by name) for a model with branches at `scales`; empty when
/// the model has fewer than two NPR branches, as there is nothing to select.
pub fn scale_selection<'a>(
    scales: &[f64],
    true_scale: &BTreeMap<String, f64>,
    images: impl IntoIterator<Item = WeightedImage<'a>>,
) -> Vec<SelectionRow> {
    let npr = npr_branches(scales);
    if npr.len() < 2 {
        return Vec::new();
    }
    let k = scales.len();
    // generator → (reals, fakes, hits, Σ weights of reals, Σ weights of fakes)
    let mut acc: BTreeMap<&str, (usize, usize, usize, Vec<f64>, Vec<f64>)> = BTreeMap::new();
    for im in images {
        assert_eq!(im.weights.len(), k, "one weight per branch");
        let e = acc
            .entry(im.generator)
            .or_insert_with(|| (0, 0, 0, vec![0.0; k], vec![0.0; k]));
        let sums = if im.label == 1 {
            e.1 += 1;
            let top = npr
                .iter()
                .copied()
                .max_by(|&a, &b| im.weights[a].total_cmp(&im.weights[b]))
                .expect("two NPR branches");
            let truth = true_scale.get(im.generator);
            e.2 += usize::from(truth.is_some_and(|&t| (scales[top] - t).abs() < 1e-9));
            &mut e.4
        } else {
            e.0 += 1;
            &mut e.3
        };
        for (s, w) in sums.iter_mut().zip(im.weights) {
            *s += w;
        }
    }
    acc.into_iter()
        .map(|(generator, (reals, fakes, hits, real_sum, fake_sum))| {
            let truth = true_scale.get(generator).copied();
            let is_branch =
                truth.is_some_and(|t| npr.iter().any(|&b| (scales[b] - t).abs() < 1e-9));
            let mean = |sum: Vec<f64>, n: usize| -> Vec<f64> {
                sum.into_iter().map(|s| s / n as f64).collect()
            };
            SelectionRow {
                generator: generator.to_string(),
                true_scale: truth,
                reals,
                fakes,
                share_top_is_true: (is_branch && fakes > 0).then(|| hits as f64 / fakes as f64),
                chance: 1.0 / npr.len() as f64,
                mean_weight_real: mean(real_sum, reals),
                mean_weight_fake: mean(fake_sum, fakes),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCALES: [f64; 4] = [0.25, 0.5, 0.75, 1.0];

    fn truth() -> BTreeMap<String, f64> {
        [
            ("x2".to_string(), 0.5),
            ("x4".to_string(), 0.25),
            ("odd".to_string(), 0.125),
        ]
        .into_iter()
        .collect()
    }

    #[test]
    fn share_counts_the_top_npr_branch_of_fakes_only() {
        // (generator, label, weights) → the x2 row's share and the x4 row's share.
        let images: Vec<(&str, u8, [f64; 4])> = vec![
            // x2 fakes: top NPR branch 0.5, 0.5, 0.25 → 2/3. The identity weight 0.99 is
            // ignored: it is no NPR scale.
            ("x2", 1, [0.1, 0.8, 0.2, 0.99]),
            ("x2", 1, [0.3, 0.4, 0.1, 0.0]),
            ("x2", 1, [0.9, 0.4, 0.1, 0.0]),
            // A real whose top is 0.5 is not counted.
            ("x2", 0, [0.0, 1.0, 0.0, 0.0]),
            // x4 fakes: top 0.25, then 0.75 → 1/2.
            ("x4", 1, [0.7, 0.1, 0.1, 0.1]),
            ("x4", 1, [0.1, 0.1, 0.7, 0.1]),
        ];
        let rows = scale_selection(
            &SCALES,
            &truth(),
            images.iter().map(|(g, l, w)| WeightedImage {
                generator: g,
                label: *l,
                weights: w,
            }),
        );
        let names: Vec<&str> = rows.iter().map(|r| r.generator.as_str()).collect();
        assert_eq!(names, ["x2", "x4"]);
        let (x2, x4) = (&rows[0], &rows[1]);
        assert_eq!((x2.reals, x2.fakes, x4.reals, x4.fakes), (1, 3, 0, 2));
        assert!((x2.share_top_is_true.unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(x4.share_top_is_true, Some(0.5));
        assert!((x2.chance - 1.0 / 3.0).abs() < 1e-12);
        let want_fake = [
            (0.1 + 0.3 + 0.9) / 3.0,
            (0.8 + 0.4 + 0.4) / 3.0,
            0.4 / 3.0,
            0.99 / 3.0,
        ];
        for (got, want) in x2.mean_weight_fake.iter().zip(want_fake) {
            assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        }
        assert_eq!(x2.mean_weight_real, vec![0.0, 1.0, 0.0, 0.0]);
        assert!(
            x4.mean_weight_real.iter().all(|w| w.is_nan()),
            "no reals: NaN"
        );
    }

    #[test]
    fn no_share_without_a_true_branch_and_no_rows_without_two_npr_branches() {
        let w = [0.5, 0.2, 0.1, 0.9];
        let cases: [(&str, &[f64], usize, Option<f64>); 4] = [
            // A generator the manifest does not know.
            ("unknown", &SCALES, 1, None),
            // A true scale that is no branch of the model.
            ("odd", &SCALES, 1, None),
            // One NPR branch plus identity: nothing to select.
            ("x2", &[0.5, 1.0], 0, None),
            ("x4", &SCALES, 1, Some(1.0)),
        ];
        for (generator, scales, n_rows, share) in cases {
            let rows = scale_selection(
                scales,
                &truth(),
                [WeightedImage {
                    generator,
                    label: 1,
                    weights: &w[..scales.len()],
                }],
            );
            assert_eq!(rows.len(), n_rows, "{generator} with {scales:?}");
            if let Some(r) = rows.first() {
                assert_eq!(r.share_top_is_true, share, "{generator}");
            }
        }
    }
}
