//! Pure-Rust measurements of the traces: NPR residuals of generated images and how
//! well their mean magnitude separates each family's fakes from reals, per scale.
//! Used by the tests and by the `#[ignore]`d calibration test whose output is the
//! table in DATASET_DETAILS.md.

use rayon::prelude::*;

use super::content::{Planes, CLASSES};
use super::family::{nearest_index, Family};
use super::{derived_rng, Kind, Recipe};

/// NPR scales measured: the three branches' scales plus 0.125, which no branch has.
pub(crate) const SCALES: [f64; 4] = [0.125, 0.25, 0.5, 0.75];

/// `NPR_s(x) = x − up_nearest(down_nearest(x, ⌊n·s⌋), n)` with PyTorch's `nearest`
/// index rule in both directions (DESIGN.md §4).
pub(crate) fn npr(img: &Planes, s: f64) -> Planes {
    let n = img.n;
    let m = ((n as f64 * s).floor() as usize).max(1);
    // Output index → the input pixel that down-then-up copies into it.
    let idx: Vec<usize> = (0..n).map(|i| nearest_index(nearest_index(i, m, n), n, m)).collect();
    let mut out = Planes::zeros(n);
    for c in 0..3 {
        let src = img.plane(c);
        let dst = out.plane_mut(c);
        for y in 0..n {
            for x in 0..n {
                dst[y * n + x] = src[y * n + x] - src[idx[y] * n + idx[x]];
            }
        }
    }
    out
}

/// Mean |NPR_s| over pixels and channels.
pub(crate) fn mean_abs_npr(img: &Planes, s: f64) -> f64 {
    let r = npr(img, s);
    r.data.iter().map(|v| v.abs() as f64).sum::<f64>() / r.data.len() as f64
}

/// ROC AUC of `lower` being below `higher` (ties count half): 1 means every value of
/// `lower` is smaller than every value of `higher`, 0.5 no separation.
pub(crate) fn auc_below(lower: &[f64], higher: &[f64]) -> f64 {
    let mut wins = 0.0;
    for &a in lower {
        for &b in higher {
            wins += if a < b {
                1.0
            } else if a == b {
                0.5
            } else {
                0.0
            };
        }
    }
    wins / (lower.len() * higher.len()) as f64
}

/// Cohen's d of `ln(mean|NPR|)` between reals and fakes (positive: fakes lower).
pub(crate) fn log_effect_size(reals: &[f64], fakes: &[f64]) -> f64 {
    let stats = |v: &[f64]| {
        let l: Vec<f64> = v.iter().map(|x| x.max(1e-12).ln()).collect();
        let m = l.iter().sum::<f64>() / l.len() as f64;
        let var = l.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (l.len() - 1).max(1) as f64;
        (m, var)
    };
    let (mr, vr) = stats(reals);
    let (mf, vf) = stats(fakes);
    (mr - mf) / ((vr + vf) / 2.0).sqrt().max(1e-12)
}

/// Per-image mean |NPR_s| at every scale of [`SCALES`]: `count` images of `kind`,
/// classes cycling, each from its own RNG (`key` keeps sets independent).
pub(crate) fn npr_scores(recipe: &Recipe, seed: u64, kind: Kind, count: usize, key: &str) -> Vec<[f64; 4]> {
    (0..count)
        .into_par_iter()
        .map(|i| {
            let mut rng = derived_rng(seed, &format!("calibration/{key}/{i}"));
            let class = CLASSES[i % CLASSES.len()];
            let rgb = recipe.render(class, kind, &mut rng).expect("in-memory render");
            let img = to_planes(&rgb);
            SCALES.map(|s| mean_abs_npr(&img, s))
        })
        .collect()
}

/// RGB8 → `[0, 1]` planes.
pub(crate) fn to_planes(rgb: &image::RgbImage) -> Planes {
    let n = rgb.width() as usize;
    let nn = n * n;
    let mut p = Planes::zeros(n);
    for (i, px) in rgb.pixels().enumerate() {
        for c in 0..3 {
            p.data[c * nn + i] = px.0[c] as f32 / 255.0;
        }
    }
    p
}

/// One row of the calibration table.
pub(crate) struct Row {
    pub family: Option<Family>,
    /// Mean over images of mean |NPR_s|, in 0–255 units, per scale.
    pub mean: [f64; 4],
    /// AUC of fakes' mean |NPR_s| being below the reals', per scale (reals: 0.5).
    pub auc: [f64; 4],
    /// Cohen's d of ln mean |NPR_s|, reals minus fakes, per scale (reals: 0).
    pub d: [f64; 4],
}

/// Measures reals and every family: `count` images each, RNGs derived from `seed`.
pub(crate) fn measure(recipe: &Recipe, seed: u64, count: usize) -> Vec<Row> {
    let column = |scores: &[[f64; 4]], k: usize| scores.iter().map(|s| s[k]).collect::<Vec<f64>>();
    let reals = npr_scores(recipe, seed, Kind::Real, count, "real");
    let mean = |scores: &[[f64; 4]]| {
        std::array::from_fn(|k| 255.0 * column(scores, k).iter().sum::<f64>() / scores.len() as f64)
    };
    let mut rows = vec![Row { family: None, mean: mean(&reals), auc: [0.5; 4], d: [0.0; 4] }];
    for fam in Family::ALL {
        let fakes = npr_scores(recipe, seed, Kind::Fake(fam), count, fam.name());
        rows.push(Row {
            family: Some(fam),
            mean: mean(&fakes),
            auc: std::array::from_fn(|k| auc_below(&column(&fakes, k), &column(&reals, k))),
            d: std::array::from_fn(|k| log_effect_size(&column(&reals, k), &column(&fakes, k))),
        });
    }
    rows
}

/// The rows as a Markdown table.
pub(crate) fn markdown(rows: &[Row]) -> String {
    let mut s = String::from(
        "| images | trace scale | mean abs NPR 0.125 | 0.25 | 0.5 | 0.75 | AUC 0.125 | 0.25 | 0.5 | 0.75 | d 0.125 | 0.25 | 0.5 | 0.75 |\n",
    );
    s.push_str("| --- | --- |");
    s.push_str(&" ---: |".repeat(12));
    s.push('\n');
    for r in rows {
        let (name, scale) = match r.family {
            None => ("real".to_string(), "—".to_string()),
            Some(f) => (f.name().to_string(), format!("{}", f.npr_scale())),
        };
        s.push_str(&format!("| {name} | {scale} |"));
        for v in r.mean {
            s.push_str(&format!(" {v:.2} |"));
        }
        for v in r.auc {
            s.push_str(&format!(" {v:.2} |"));
        }
        for v in r.d {
            s.push_str(&format!(" {v:.2} |"));
        }
        s.push('\n');
    }
    s
}
