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
/// index rule in both directions (ARCHITECTURE.md, Model).
pub(crate) fn npr(img: &Planes, s: f64) -> Planes {
    let n = img.n;
    let m = ((n as f64 * s).floor() as usize).max(1);
    // Output index → the input pixel that down-then-up copies into it.
    let idx: Vec<usize> = (0..n)
        .map(|i| nearest_index(nearest_index(i, m, n), n, m))
        .collect();
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

/// Period of the NPR_s grid in pixels: the least `p` with `p·s` whole (2 for 0.5,
/// 4 for 0.25 and 0.75, 8 for 0.125).
pub(crate) fn grid_period(s: f64) -> usize {
    (1..=64)
        .find(|&p| (p as f64 * s).fract() == 0.0)
        .expect("a dyadic scale")
}

/// The `m × m` crop of `img` at `(o, o)`.
fn crop(img: &Planes, o: usize, m: usize) -> Planes {
    let n = img.n;
    let mut out = Planes::zeros(m);
    for c in 0..3 {
        let (src, dst) = (img.plane(c), out.plane_mut(c));
        for y in 0..m {
            dst[y * m..(y + 1) * m].copy_from_slice(&src[(y + o) * n + o..(y + o) * n + o + m]);
        }
    }
    out
}

/// Grid-alignment ratio of NPR_s: mean |NPR_s| on the image's own grid over mean
/// |NPR_s| on the grid shifted diagonally by half its period P (both on `n − P` crops,
/// so both grids are regular). Real content is stationary, so the ratio is ≈ 1
/// whatever its contrast or sharpness; an up-sampling trace locked to the pixel grid
/// with period P moves it away from 1 (below 1 for nearest: its blocks vanish on the
/// aligned grid only). Blur and global contrast cancel, unlike in the raw mean
/// |NPR_s|; a trace whose period divides P/2 (a ×2 trace seen on the period-4 grid of
/// 0.25) looks the same on both grids and cancels too: the ratio isolates the part of
/// the trace with the grid's own period.
pub(crate) fn grid_ratio(img: &Planes, s: f64) -> f64 {
    let p = grid_period(s);
    let m = img.n - p;
    let aligned = mean_abs_npr(&crop(img, 0, m), s);
    let shifted = mean_abs_npr(&crop(img, p / 2, m), s);
    aligned.max(1e-12) / shifted.max(1e-12)
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

/// Per-image measurements at every scale of [`SCALES`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct ScaleMeasures {
    /// Mean |NPR_s|, `[0, 1]` units.
    pub mean: [f64; 4],
    /// [`grid_ratio`].
    pub ratio: [f64; 4],
}

/// Per-image mean |NPR_s| at every scale of [`SCALES`] for `count` pairs: image `i`
/// of the fake family and a real rendered from the same scene (same RNG up to the
/// scene; noise and detail differ), classes cycling. RNGs derive from `seed` and
/// `key`, so sets are independent.
pub(crate) fn paired_scores(
    recipe: &Recipe,
    seed: u64,
    fam: Family,
    count: usize,
    key: &str,
) -> Vec<(ScaleMeasures, ScaleMeasures)> {
    (0..count)
        .into_par_iter()
        .map(|i| {
            let rng = derived_rng(seed, &format!("calibration/{key}/{i}"));
            let class = CLASSES[i % CLASSES.len()];
            let score = |kind| {
                let rgb = recipe
                    .render(class, kind, &mut rng.clone())
                    .expect("in-memory render");
                let img = to_planes(&rgb);
                ScaleMeasures {
                    mean: SCALES.map(|s| mean_abs_npr(&img, s)),
                    ratio: SCALES.map(|s| grid_ratio(&img, s)),
                }
            };
            (score(Kind::Real), score(Kind::Fake(fam)))
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

/// One row of the calibration table: a family against reals of the same scenes.
pub(crate) struct Row {
    pub family: Family,
    /// Mean over images of mean |NPR_s| of the reals, 0–255 units, per scale.
    pub real: [f64; 4],
    /// The same for the fakes.
    pub fake: [f64; 4],
    /// Paired change of mean |NPR_s|, fake vs real of the same scene:
    /// `exp(mean ln(fake/real)) − 1`, per scale (negative: the fake's residual is weaker).
    pub change: [f64; 4],
    /// Unpaired AUC of the fakes' mean |NPR_s| being below the reals' (0.5: none): how
    /// well a one-number "energy" detector would do.
    pub raw_auc: [f64; 4],
    /// Geometric mean of the fakes' [`grid_ratio`] (reals ≈ 1).
    pub ratio: [f64; 4],
    /// Reals' geometric-mean [`grid_ratio`].
    pub real_ratio: [f64; 4],
    /// Effect size of ln [`grid_ratio`], reals minus fakes over the pooled sd
    /// (Cohen's d; positive: fakes' NPR_s weaker on their own grid).
    pub d: [f64; 4],
    /// AUC of ln [`grid_ratio`] separating fakes from reals, two-sided:
    /// `max(A, 1 − A)` with `A` = P(fake ratio < real ratio).
    pub auc: [f64; 4],
}

fn mean(v: &[f64]) -> f64 {
    crate::stats::mean(v.iter().copied()).unwrap_or(f64::NAN)
}

fn var(v: &[f64]) -> f64 {
    let m = mean(v);
    v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1).max(1) as f64
}

/// Measures every family on `count` pairs each, RNGs derived from `seed`.
pub(crate) fn measure(recipe: &Recipe, seed: u64, count: usize) -> Vec<Row> {
    Family::ALL
        .into_iter()
        .map(|family| {
            let pairs = paired_scores(recipe, seed, family, count, family.name());
            let raw = |k: usize, fake: bool| -> Vec<f64> {
                pairs
                    .iter()
                    .map(|(r, f)| if fake { f.mean[k] } else { r.mean[k] })
                    .collect()
            };
            let ln_ratio = |k: usize, fake: bool| -> Vec<f64> {
                pairs
                    .iter()
                    .map(|(r, f)| {
                        if fake {
                            f.ratio[k].ln()
                        } else {
                            r.ratio[k].ln()
                        }
                    })
                    .collect()
            };
            let ln_change = |k: usize| -> Vec<f64> {
                pairs
                    .iter()
                    .map(|(r, f)| (f.mean[k].max(1e-12) / r.mean[k].max(1e-12)).ln())
                    .collect()
            };
            Row {
                family,
                real: std::array::from_fn(|k| 255.0 * mean(&raw(k, false))),
                fake: std::array::from_fn(|k| 255.0 * mean(&raw(k, true))),
                change: std::array::from_fn(|k| mean(&ln_change(k)).exp() - 1.0),
                raw_auc: std::array::from_fn(|k| auc_below(&raw(k, true), &raw(k, false))),
                ratio: std::array::from_fn(|k| mean(&ln_ratio(k, true)).exp()),
                real_ratio: std::array::from_fn(|k| mean(&ln_ratio(k, false)).exp()),
                d: std::array::from_fn(|k| {
                    let (r, f) = (ln_ratio(k, false), ln_ratio(k, true));
                    (mean(&r) - mean(&f)) / ((var(&r) + var(&f)) / 2.0).sqrt().max(1e-12)
                }),
                auc: std::array::from_fn(|k| {
                    let a = auc_below(&ln_ratio(k, true), &ln_ratio(k, false));
                    a.max(1.0 - a)
                }),
            }
        })
        .collect()
}

/// The rows as Markdown tables: raw mean |NPR_s|, then the grid-alignment ratio.
pub(crate) fn markdown(rows: &[Row]) -> String {
    let scales = SCALES.map(|v| v.to_string());
    let head = |s: &mut String, title: &str, cols: &[&str]| {
        s.push_str(&format!("| {title} | trace at |"));
        for c in cols {
            for sc in &scales {
                s.push_str(&format!(" {c} {sc} |"));
            }
        }
        s.push_str("\n| --- | --- |");
        s.push_str(&" ---: |".repeat(4 * cols.len()));
        s.push('\n');
    };
    let cells = |s: &mut String, vals: &[f64], fmt: &dyn Fn(f64) -> String| {
        for &v in vals {
            s.push_str(&format!(" {} |", fmt(v)));
        }
    };
    let avg = |f: &dyn Fn(&Row) -> [f64; 4]| -> [f64; 4] {
        std::array::from_fn(|k| rows.iter().map(|r| f(r)[k]).sum::<f64>() / rows.len() as f64)
    };
    // One table: a reals row, then one row per family, each with three groups of columns.
    type Column<'a> = (&'a dyn Fn(&Row) -> [f64; 4], &'a dyn Fn(f64) -> String);
    let table = |s: &mut String, titles: &[&str], reals: Column, columns: [Column; 3]| {
        head(s, "images", titles);
        s.push_str("| reals | — |");
        cells(s, &avg(reals.0), reals.1);
        s.push_str(&" — |".repeat(8));
        s.push('\n');
        for r in rows {
            s.push_str(&format!(
                "| {} | {} |",
                r.family.name(),
                r.family.npr_scale()
            ));
            for (values, fmt) in columns {
                cells(s, &values(r), fmt);
            }
            s.push('\n');
        }
    };
    let (two, three) = (&|v: f64| format!("{v:.2}"), &|v: f64| format!("{v:.3}"));
    let percent = &|v: f64| format!("{:+.0} %", 100.0 * v);
    let mut s = String::new();
    table(
        &mut s,
        &["mean abs NPR", "paired change", "AUC"],
        (&|r| r.real, two),
        [
            (&|r| r.fake, two),
            (&|r| r.change, percent),
            (&|r| r.raw_auc, two),
        ],
    );
    s.push('\n');
    table(
        &mut s,
        &["grid ratio", "d", "AUC"],
        (&|r| r.real_ratio, three),
        [(&|r| r.ratio, three), (&|r| r.d, two), (&|r| r.auc, two)],
    );
    s
}
