//! The study's figures. Each is drawn once as SVG with plotters, then written as a vector
//! PDF with real, selectable text (svg2pdf) and a PNG (resvg) from that same SVG, so the
//! two never disagree. Text is DejaVu Sans: usvg would map `sans-serif` to Arial, which a
//! Debian machine lacks, and every label would silently vanish.
//!
//! ```text
//! roc_curves           ROC per test set, one line per variant (its first seed)
//! attention_heatmaps   generator × scale mean branch weight on fakes, per multi-branch variant
//! generalization_plot  seen vs unseen accuracy per variant, mean ± std over seeds
//! tsne_embeddings      pooled features, baseline vs the proposal's model, by generator and label
//! robustness           accuracy per perturbation level and variant (when sweeps exist)
//! training_curves      validation loss and accuracy per epoch, per variant (mean over seeds)
//! ```
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::colors::colormaps::ViridisRGB;

use super::analysis::{self, Aggregate, CLEAN};
use super::runs::Run;
use crate::eval::metrics;

/// Fonts figures are set in: the first that exists is loaded.
const FONT_FILES: [&str; 2] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];
const FAMILY: &str = "DejaVu Sans";
/// Pixel size of one panel; PNGs are rendered at twice this.
const PANEL: (u32, u32) = (640, 440);
const PNG_SCALE: f32 = 2.0;

/// usvg options with DejaVu Sans as the sans-serif family, or an error that says how to
/// install it.
pub fn svg_options() -> Result<usvg::Options<'static>> {
    let mut opt = usvg::Options::default();
    let db = opt.fontdb_mut();
    for f in FONT_FILES.iter().filter(|f| Path::new(f).is_file()) {
        db.load_font_file(f)
            .with_context(|| format!("loading the font {f}"))?;
    }
    db.load_system_fonts();
    let found = db
        .faces()
        .any(|face| face.families.iter().any(|(name, _)| name == FAMILY));
    if !found {
        return Err(crate::usage!(
            "figures need the {FAMILY} font (looked for {}; Debian: apt install fonts-dejavu-core, which scripts/bootstrap.sh does)",
            FONT_FILES.join(", ")
        ));
    }
    db.set_sans_serif_family(FAMILY);
    opt.font_family = FAMILY.into();
    Ok(opt)
}

/// Writes `stem.svg`, `stem.pdf` and `stem.png` from one SVG document.
fn save(svg: &str, stem: &Path, opt: &usvg::Options) -> Result<()> {
    let tree = usvg::Tree::from_str(svg, opt)
        .with_context(|| format!("parsing the SVG of {}", stem.display()))?;
    let pdf = svg2pdf::to_pdf(
        &tree,
        svg2pdf::ConversionOptions::default(),
        svg2pdf::PageOptions::default(),
    )
    .map_err(|e| anyhow!("writing {}.pdf: {e}", stem.display()))?;
    let size = tree.size().to_int_size();
    let (w, h) = (
        (size.width() as f32 * PNG_SCALE) as u32,
        (size.height() as f32 * PNG_SCALE) as u32,
    );
    let mut pixmap = resvg::tiny_skia::Pixmap::new(w, h).context("allocating the PNG")?;
    pixmap.fill(resvg::tiny_skia::Color::WHITE);
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::from_scale(PNG_SCALE, PNG_SCALE),
        &mut pixmap.as_mut(),
    );
    // Opaque (white background), so the premultiplied RGBA equals straight RGBA.
    let image = image::RgbaImage::from_raw(w, h, pixmap.take()).context("PNG buffer size")?;
    let mut png = Vec::new();
    image.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
    crate::atomic::write(&stem.with_extension("svg"), svg.as_bytes())?;
    crate::atomic::write(&stem.with_extension("pdf"), &pdf)?;
    crate::atomic::write(&stem.with_extension("png"), &png)
}

/// A ROC curve: legend, (FPR, TPR) points, AUC.
type Curve = (String, Vec<(f64, f64)>, f64);
/// A heat map: variant, generators (rows), scales (columns), mean weights [row][column].
type HeatMap = (String, Vec<String>, Vec<f64>, Vec<Vec<f64>>);
/// A t-SNE panel: title, generator names, points (x, y, generator index, label).
type Embedding = (String, Vec<String>, Vec<(f64, f64, usize, u8)>);

/// A distinct colour per series.
fn colour(i: usize) -> RGBColor {
    let (r, g, b) = Palette99::pick(i).to_rgba().rgb();
    RGBColor(r, g, b)
}

/// Draws every figure the runs allow into `out`; returns the stems written and, for each
/// figure left out, why.
pub fn draw_all(
    out: &Path,
    runs: &[Run],
    table: &[Aggregate],
    weights: &[analysis::WeightRow],
    baseline: &str,
    attention: &str,
    seed: u64,
) -> Result<(Vec<PathBuf>, Vec<String>)> {
    let opt = svg_options()?;
    let mut written = Vec::new();
    let mut skipped = Vec::new();
    let mut emit = |name: &str, svg: Option<String>, why: &str| -> Result<()> {
        match svg {
            Some(svg) => {
                let stem = out.join(name);
                save(&svg, &stem, &opt)?;
                written.push(stem);
            }
            None => skipped.push(format!("{name}: {why}")),
        }
        Ok(())
    };
    emit(
        "roc_curves",
        roc_curves(runs)?,
        "no test set with both labels",
    )?;
    emit(
        "attention_heatmaps",
        attention_heatmaps(runs, weights)?,
        "no multi-branch run with attention_weights.npz",
    )?;
    emit(
        "generalization_plot",
        generalization_plot(runs, table)?,
        "no run with both seen and unseen generators",
    )?;
    emit(
        "tsne_embeddings",
        tsne_embeddings(runs, baseline, attention, seed)?,
        "no pooled features in the runs' attention_weights.npz",
    )?;
    emit(
        "robustness",
        robustness(runs, table)?,
        "no perturbation sweep in the runs (npr test --sweep jpeg=75,90,100)",
    )?;
    emit(
        "training_curves",
        training_curves(runs)?,
        "no epoch rows in the runs' train_log.csv",
    )?;
    Ok((written, skipped))
}

/// One SVG of `n` panels side by side; `draw` fills panel i.
fn panels(
    n: usize,
    draw: impl Fn(usize, &DrawingArea<SVGBackend, plotters::coord::Shift>) -> Result<()>,
) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (PANEL.0 * n.max(1) as u32, PANEL.1))
            .into_drawing_area();
        root.fill(&WHITE)?;
        for (i, area) in root.split_evenly((1, n.max(1))).iter().enumerate() {
            draw(i, area)?;
        }
        root.present()?;
    }
    Ok(svg)
}

/// Axis labels for categories drawn at 0, 1, 2, …: the name at an integer tick, nothing
/// elsewhere.
fn category_label(names: &[String]) -> impl Fn(&f64) -> String + '_ {
    move |x: &f64| {
        let j = x.round();
        if (x - j).abs() < 1e-6 && j >= 0.0 && (j as usize) < names.len() {
            names[j as usize].clone()
        } else {
            String::new()
        }
    }
}

/// The 2-D chart every figure panel draws on.
type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The legend box of a panel: bordered, on a translucent white background.
fn legend<'a, 'b: 'a>(
    chart: &mut Chart<'a, 'b>,
    position: SeriesLabelPosition,
    opacity: f64,
    size: u32,
) -> Result<()> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(opacity))
        .border_style(BLACK)
        .label_font(font(size))
        .draw()?;
    Ok(())
}

/// A legend key for a line series: a short stroke in its colour.
fn line_key(c: RGBColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
}

fn font(size: u32) -> TextStyle<'static> {
    ("sans-serif", size).into_font().into()
}

/// ROC per clean test set; one curve per variant (its first seed), AUC in the legend.
fn roc_curves(runs: &[Run]) -> Result<Option<String>> {
    let variants = analysis::variants(runs);
    let sets: Vec<String> = {
        let mut s: Vec<String> = runs
            .iter()
            .flat_map(|r| {
                r.predictions
                    .iter()
                    .filter(|p| p.perturbation == CLEAN)
                    .map(|p| p.set.clone())
            })
            .collect();
        s.sort();
        s.dedup();
        s
    };
    let mut curves: Vec<Vec<Curve>> = Vec::new();
    for set in &sets {
        let mut per_set = Vec::new();
        for v in &variants {
            let Some(run) = runs
                .iter()
                .filter(|r| &r.variant == v)
                .min_by_key(|r| r.seed)
            else {
                continue;
            };
            let preds: Vec<_> = run
                .predictions
                .iter()
                .filter(|p| p.perturbation == CLEAN && &p.set == set)
                .collect();
            let labels: Vec<u8> = preds.iter().map(|p| p.label).collect();
            let logits: Vec<f64> = preds.iter().map(|p| p.logit).collect();
            if let (Ok(Some(roc)), Ok(Some(auc))) = (
                metrics::roc_curve(&labels, &logits),
                metrics::roc_auc(&labels, &logits),
            ) {
                let points = roc
                    .fpr
                    .iter()
                    .copied()
                    .zip(roc.tpr.iter().copied())
                    .collect();
                per_set.push((
                    format!("{v} (seed {}, AUC {auc:.3})", run.seed),
                    points,
                    auc,
                ));
            }
        }
        curves.push(per_set);
    }
    if curves.iter().all(Vec::is_empty) {
        return Ok(None);
    }
    panels(sets.len(), |i, area| {
        let mut chart = ChartBuilder::on(area)
            .caption(format!("ROC — test set {}", sets[i]), font(20))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(55)
            .build_cartesian_2d(0f64..1f64, 0f64..1f64)?;
        chart
            .configure_mesh()
            .x_desc("false positive rate")
            .y_desc("true positive rate")
            .label_style(font(13))
            .axis_desc_style(font(15))
            .draw()?;
        chart.draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], BLACK.mix(0.3)))?;
        for (j, (name, points, _)) in curves[i].iter().enumerate() {
            let c = colour(j);
            chart
                .draw_series(LineSeries::new(points.iter().copied(), c.stroke_width(2)))?
                .label(name.clone())
                .legend(line_key(c));
        }
        legend(&mut chart, SeriesLabelPosition::LowerRight, 0.9, 13)?;
        Ok(())
    })
    .map(Some)
}

/// Generator × scale mean branch weight on fake images, one panel per multi-branch variant
/// that saved weights.
fn attention_heatmaps(runs: &[Run], weights: &[analysis::WeightRow]) -> Result<Option<String>> {
    let mut maps: Vec<HeatMap> = Vec::new();
    for v in analysis::variants(runs) {
        let rows: Vec<&analysis::WeightRow> = weights.iter().filter(|w| w.variant == v).collect();
        let scales: Vec<f64> = {
            let mut s: Vec<f64> = rows.iter().map(|r| r.scale).collect();
            s.sort_by(f64::total_cmp);
            s.dedup();
            s
        };
        if scales.len() < 2 {
            continue;
        }
        let mut gens: Vec<String> = rows
            .iter()
            .filter(|r| r.label == 1)
            .map(|r| r.generator.clone())
            .collect();
        gens.sort();
        gens.dedup();
        let grid: Vec<Vec<f64>> = gens
            .iter()
            .map(|g| {
                scales
                    .iter()
                    .map(|s| {
                        rows.iter()
                            .find(|r| r.label == 1 && &r.generator == g && r.scale == *s)
                            .map_or(f64::NAN, |r| r.mean)
                    })
                    .collect()
            })
            .collect();
        maps.push((v, gens, scales, grid));
    }
    if maps.is_empty() {
        return Ok(None);
    }
    panels(maps.len(), |i, area| {
        let (v, gens, scales, grid) = &maps[i];
        let (k, g) = (scales.len(), gens.len());
        let values: Vec<f64> = grid
            .iter()
            .flatten()
            .copied()
            .filter(|x| x.is_finite())
            .collect();
        let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mut chart = ChartBuilder::on(area)
            .caption(
                format!("mean branch weight on fakes — {v} (colour {lo:.3}–{hi:.3})"),
                font(17),
            )
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(110)
            .build_cartesian_2d(-0.5f64..k as f64 - 0.5, -0.5f64..g as f64 - 0.5)?;
        let scale_names: Vec<String> = scales
            .iter()
            .map(|&s| {
                if s == 1.0 {
                    "identity".into()
                } else {
                    format!("{s}")
                }
            })
            .collect();
        let scale_label = category_label(&scale_names);
        let gen_label = category_label(gens);
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(k)
            .y_labels(g)
            .x_label_formatter(&scale_label)
            .y_label_formatter(&gen_label)
            .x_desc("NPR scale")
            .y_desc("generator")
            .label_style(font(13))
            .axis_desc_style(font(15))
            .draw()?;
        for (y, row) in grid.iter().enumerate() {
            for (x, &w) in row.iter().enumerate() {
                let t = if hi > lo { (w - lo) / (hi - lo) } else { 0.5 };
                let c = ViridisRGB::get_color(t.clamp(0.0, 1.0));
                let (xf, yf) = (x as f64, y as f64);
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(xf - 0.5, yf - 0.5), (xf + 0.5, yf + 0.5)],
                    c.filled(),
                )))?;
                let ink = if t > 0.6 { BLACK } else { WHITE };
                chart.draw_series(std::iter::once(Text::new(
                    format!("{w:.3}"),
                    (xf - 0.2, yf + 0.1),
                    font(13).color(&ink),
                )))?;
            }
        }
        Ok(())
    })
    .map(Some)
}

/// Seen and unseen accuracy per variant on each clean set, mean ± std over seeds.
fn generalization_plot(runs: &[Run], table: &[Aggregate]) -> Result<Option<String>> {
    let variants = analysis::variants(runs);
    let get = |v: &str, set: &str, q: &str| {
        table
            .iter()
            .find(|a| a.variant == v && a.set == set && a.perturbation == CLEAN && a.quantity == q)
            .and_then(|a| Some((a.mean?, a.std?)))
    };
    let mut sets: Vec<String> = table
        .iter()
        .filter(|a| a.perturbation == CLEAN)
        .map(|a| a.set.clone())
        .collect();
    sets.sort();
    sets.dedup();
    sets.retain(|s| {
        variants
            .iter()
            .any(|v| get(v, s, "acc_seen").is_some() && get(v, s, "acc_unseen").is_some())
    });
    if sets.is_empty() {
        return Ok(None);
    }
    panels(sets.len(), |i, area| {
        let set = &sets[i];
        let n = variants.len();
        let mut chart = ChartBuilder::on(area)
            .caption(format!("seen vs unseen generators — {set}"), font(18))
            .margin(12)
            .x_label_area_size(60)
            .y_label_area_size(55)
            .build_cartesian_2d(-0.5f64..n as f64 - 0.5, 0f64..1.05f64)?;
        let name = category_label(&variants);
        chart
            .configure_mesh()
            .x_labels(n)
            .x_label_formatter(&name)
            .x_desc("variant")
            .y_desc("accuracy (mean ± std over seeds)")
            .label_style(font(12))
            .axis_desc_style(font(15))
            .draw()?;
        for (s, (q, label)) in [
            ("acc_seen", "seen generators"),
            ("acc_unseen", "unseen generators"),
        ]
        .iter()
        .enumerate()
        {
            let c = colour(s);
            let offset = if s == 0 { -0.12 } else { 0.12 };
            let points: Vec<(f64, f64, f64)> = variants
                .iter()
                .enumerate()
                .filter_map(|(j, v)| get(v, set, q).map(|(m, sd)| (j as f64 + offset, m, sd)))
                .collect();
            chart.draw_series(points.iter().map(|&(x, m, sd)| {
                ErrorBar::new_vertical(
                    x,
                    (m - sd).max(0.0),
                    m,
                    (m + sd).min(1.05),
                    c.stroke_width(2),
                    10,
                )
            }))?;
            chart
                .draw_series(
                    points
                        .iter()
                        .map(|&(x, m, _)| Circle::new((x, m), 5, c.filled())),
                )?
                .label(*label)
                .legend(move |(x, y)| Circle::new((x + 10, y), 5, c.filled()));
        }
        legend(&mut chart, SeriesLabelPosition::LowerLeft, 0.9, 13)?;
        Ok(())
    })
    .map(Some)
}

/// 2-D t-SNE of pooled features (the first images `npr test` kept), baseline and the
/// proposal's model side by side: colour = generator, filled = fake, hollow = real. The
/// start is drawn from ChaCha8 seeded by `seed` and the fit runs on one thread, so the
/// picture is reproducible.
fn tsne_embeddings(
    runs: &[Run],
    baseline: &str,
    attention: &str,
    seed: u64,
) -> Result<Option<String>> {
    let mut panels_data: Vec<Embedding> = Vec::new();
    for v in [baseline, attention] {
        let Some(run) = runs
            .iter()
            .filter(|r| r.variant == v)
            .min_by_key(|r| r.seed)
        else {
            continue;
        };
        let Some(w) = &run.weights else { continue };
        if w.features.len() < 10 {
            continue;
        }
        let embedded = tsne(
            &w.features
                .iter()
                .map(|(_, f)| f.clone())
                .collect::<Vec<_>>(),
            seed,
        )?;
        let points = w
            .features
            .iter()
            .zip(embedded)
            .map(|((i, _), (x, y))| {
                let (g, label, _) = &w.images[*i];
                (x, y, *g, *label)
            })
            .collect();
        panels_data.push((
            format!("{v}, seed {}, {} images", run.seed, w.features.len()),
            w.generators.clone(),
            points,
        ));
    }
    if panels_data.is_empty() {
        return Ok(None);
    }
    panels(panels_data.len(), |i, area| {
        let (title, gens, points) = &panels_data[i];
        let range = |f: fn(&(f64, f64, usize, u8)) -> f64| {
            let lo = points.iter().map(f).fold(f64::INFINITY, f64::min);
            let hi = points.iter().map(f).fold(f64::NEG_INFINITY, f64::max);
            let pad = (hi - lo).max(1e-9) * 0.05;
            (lo - pad)..(hi + pad)
        };
        let mut chart = ChartBuilder::on(area)
            .caption(
                format!("t-SNE of pooled features — {title}; filled fake, hollow real"),
                font(16),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(range(|p| p.0), range(|p| p.1))?;
        chart
            .configure_mesh()
            .x_desc("t-SNE 1")
            .y_desc("t-SNE 2")
            .label_style(font(12))
            .axis_desc_style(font(15))
            .draw()?;
        for (g, name) in gens.iter().enumerate() {
            let c = colour(g);
            let mine: Vec<_> = points.iter().filter(|p| p.2 == g).collect();
            if mine.is_empty() {
                continue;
            }
            chart
                .draw_series(mine.iter().map(|p| {
                    let style = if p.3 == 1 {
                        c.filled()
                    } else {
                        c.stroke_width(1)
                    };
                    Circle::new((p.0, p.1), 3, style)
                }))?
                .label(name.clone())
                .legend(move |(x, y)| Circle::new((x + 10, y), 4, c.filled()));
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight, 0.85, 11)?;
        Ok(())
    })
    .map(Some)
}

/// Barnes–Hut t-SNE to 2-D, seeded and single-threaded (bhtsne gives different results on
/// several threads from the same start).
fn tsne(features: &[Vec<f32>], seed: u64) -> Result<Vec<(f64, f64)>> {
    use rand::{Rng, SeedableRng};
    let n = features.len();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let start: Vec<f32> = (0..2 * n).map(|_| rng.gen_range(-1e-4f32..1e-4)).collect();
    let perplexity = ((n - 1) as f32 / 3.0).min(30.0);
    let samples: Vec<&[f32]> = features.iter().map(Vec::as_slice).collect();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let flat = pool.install(|| {
        bhtsne::tSNE::<f32, &[f32], 2>::new(&samples)
            .perplexity(perplexity)
            .epochs(1000)
            .initial_embedding(start)
            .barnes_hut(0.5, |a, b| {
                a.iter()
                    .zip(b.iter())
                    .map(|(x, y)| (x - y).powi(2))
                    .sum::<f32>()
                    .sqrt()
            })
            .embedding()
    });
    Ok(flat
        .chunks_exact(2)
        .map(|p| (p[0] as f64, p[1] as f64))
        .collect())
}

/// Accuracy per perturbation level (clean first), one line per variant and set.
fn robustness(runs: &[Run], table: &[Aggregate]) -> Result<Option<String>> {
    let mut levels: Vec<String> = table.iter().map(|a| a.perturbation.clone()).collect();
    levels.sort_by_key(|l| analysis::level_order(l));
    levels.dedup();
    if levels.len() < 2 {
        return Ok(None);
    }
    let variants = analysis::variants(runs);
    let mut sets: Vec<String> = table.iter().map(|a| a.set.clone()).collect();
    sets.sort();
    sets.dedup();
    let n = levels.len();
    panels(1, |_, area| {
        let mut chart = ChartBuilder::on(area)
            .caption("robustness: accuracy per perturbation", font(18))
            .margin(12)
            .x_label_area_size(50)
            .y_label_area_size(55)
            .build_cartesian_2d(-0.3f64..n as f64 - 0.7, 0f64..1.05f64)?;
        let name = category_label(&levels);
        chart
            .configure_mesh()
            .x_labels(n)
            .x_label_formatter(&name)
            .x_desc("perturbation (none = clean)")
            .y_desc("accuracy, all generators (mean over seeds)")
            .label_style(font(12))
            .axis_desc_style(font(14))
            .draw()?;
        let mut series = 0;
        for v in &variants {
            for set in &sets {
                let points: Vec<(f64, f64)> = levels
                    .iter()
                    .enumerate()
                    .filter_map(|(j, l)| {
                        table
                            .iter()
                            .find(|a| {
                                &a.variant == v
                                    && &a.set == set
                                    && &a.perturbation == l
                                    && a.quantity == "acc_all"
                            })
                            .and_then(|a| a.mean)
                            .map(|m| (j as f64, m))
                    })
                    .collect();
                if points.is_empty() {
                    continue;
                }
                let c = colour(series);
                series += 1;
                let label = if sets.len() > 1 {
                    format!("{v} / {set}")
                } else {
                    v.clone()
                };
                chart
                    .draw_series(LineSeries::new(points.clone(), c.stroke_width(2)))?
                    .label(label)
                    .legend(line_key(c));
                chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, c.filled())))?;
            }
        }
        legend(&mut chart, SeriesLabelPosition::LowerLeft, 0.9, 13)?;
        Ok(())
    })
    .map(Some)
}

/// Validation loss and accuracy per epoch, mean over each variant's seeds.
fn training_curves(runs: &[Run]) -> Result<Option<String>> {
    let variants = analysis::variants(runs);
    let curve = |v: &str, f: fn(&super::runs::EpochRow) -> f64| -> Vec<(f64, f64)> {
        let mut by_epoch: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
        for r in runs.iter().filter(|r| r.variant == v) {
            for e in &r.epochs {
                let y = f(e);
                if y.is_finite() {
                    by_epoch.entry(e.epoch).or_default().push(y);
                }
            }
        }
        by_epoch
            .into_iter()
            .map(|(e, ys)| (e as f64, ys.iter().sum::<f64>() / ys.len() as f64))
            .collect()
    };
    let loss: Vec<Vec<(f64, f64)>> = variants.iter().map(|v| curve(v, |e| e.val_loss)).collect();
    let acc: Vec<Vec<(f64, f64)>> = variants.iter().map(|v| curve(v, |e| e.val_acc)).collect();
    if loss.iter().all(Vec::is_empty) {
        return Ok(None);
    }
    let max_epoch = loss.iter().flatten().map(|p| p.0).fold(1.0, f64::max);
    let max_loss = loss.iter().flatten().map(|p| p.1).fold(0.0, f64::max) * 1.1;
    panels(2, |i, area| {
        let (data, title, y_desc, y_max) = if i == 0 {
            (
                &loss,
                "validation loss",
                "BCE loss (mean over seeds)",
                max_loss.max(1e-3),
            )
        } else {
            (
                &acc,
                "validation accuracy",
                "accuracy (mean over seeds)",
                1.05,
            )
        };
        let mut chart = ChartBuilder::on(area)
            .caption(title, font(18))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(0.5f64..max_epoch + 0.5, 0f64..y_max)?;
        let whole = |x: &f64| {
            if x.fract() == 0.0 {
                format!("{x:.0}")
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .x_label_formatter(&whole)
            .x_desc("epoch")
            .y_desc(y_desc)
            .label_style(font(12))
            .axis_desc_style(font(15))
            .draw()?;
        for (j, (v, points)) in variants.iter().zip(data.iter()).enumerate() {
            let c = colour(j);
            chart
                .draw_series(LineSeries::new(points.clone(), c.stroke_width(2)))?
                .label(v.clone())
                .legend(line_key(c));
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, c.filled())))?;
        }
        legend(
            &mut chart,
            if i == 0 {
                SeriesLabelPosition::UpperRight
            } else {
                SeriesLabelPosition::LowerRight
            },
            0.9,
            13,
        )?;
        Ok(())
    })
    .map(Some)
}

/// Escapes text for SVG.
fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A table as one SVG page (header row bold): the PDF form of the ablation table.
pub fn table_page(title: &str, header: &[String], rows: &[Vec<String>], out: &Path) -> Result<()> {
    const CHAR: f64 = 7.4;
    const ROW: f64 = 22.0;
    let cols = header.len();
    let widths: Vec<f64> = (0..cols)
        .map(|c| {
            let longest = std::iter::once(&header[c])
                .chain(rows.iter().filter_map(|r| r.get(c)))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(1);
            longest as f64 * CHAR + 16.0
        })
        .collect();
    let width = widths.iter().sum::<f64>() + 20.0;
    let height = ROW * (rows.len() as f64 + 1.0) + 60.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" font-family=\"sans-serif\" font-size=\"13\">\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\
         <text x=\"10\" y=\"24\" font-size=\"16\">{}</text>",
        xml(title)
    );
    for (r, row) in std::iter::once(header)
        .chain(rows.iter().map(Vec::as_slice))
        .enumerate()
    {
        let y = 50.0 + ROW * r as f64;
        if r % 2 == 1 {
            svg.push_str(&format!(
                "<rect x=\"10\" y=\"{:.1}\" width=\"{:.1}\" height=\"{ROW}\" fill=\"#f0f0f0\"/>",
                y - 15.0,
                width - 20.0
            ));
        }
        let mut x = 18.0;
        for (c, cell) in row.iter().enumerate() {
            let weight = if r == 0 { " font-weight=\"bold\"" } else { "" };
            svg.push_str(&format!(
                "<text x=\"{x:.1}\" y=\"{y:.1}\"{weight}>{}</text>",
                xml(cell)
            ));
            x += widths[c];
        }
    }
    let y = 50.0 + ROW * 0.0 + 6.0;
    svg.push_str(&format!(
        "<line x1=\"10\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"black\"/></svg>",
        width - 10.0
    ));
    save(&svg, out, &svg_options()?)
}

/// The most confident mistakes of `run`, `k` per generator, as a PNG contact sheet: one row
/// per generator, each thumbnail captioned with its label and score.
pub fn contact_sheet(run: &Run, k: usize, out: &Path) -> Result<bool> {
    const THUMB: u32 = 96;
    const LEFT: u32 = 170;
    const CELL_W: u32 = THUMB + 16;
    const CELL_H: u32 = THUMB + 30;
    let mut rows: BTreeMap<&str, Vec<&super::runs::Prediction>> = BTreeMap::new();
    for p in run
        .predictions
        .iter()
        .filter(|p| p.perturbation == CLEAN && !p.correct())
    {
        rows.entry(p.generator.as_str()).or_default().push(p);
    }
    if rows.is_empty() {
        return Ok(false);
    }
    for wrong in rows.values_mut() {
        wrong.sort_by(|a, b| b.logit.abs().total_cmp(&a.logit.abs()));
        wrong.truncate(k);
    }
    let (w, h) = (
        LEFT + CELL_W * k as u32 + 10,
        50 + CELL_H * rows.len() as u32,
    );
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\
         <text x=\"10\" y=\"26\" font-size=\"16\">most confident mistakes — {} (seed {}), clean test images</text>",
        xml(&run.variant),
        run.seed
    );
    for (r, (generator, wrong)) in rows.iter().enumerate() {
        let y = 50 + CELL_H * r as u32;
        svg.push_str(&format!(
            "<text x=\"10\" y=\"{}\">{}</text>",
            y + THUMB / 2,
            xml(generator)
        ));
        for (c, p) in wrong.iter().enumerate() {
            let x = LEFT + CELL_W * c as u32;
            let truth = if p.label == 1 { "fake" } else { "real" };
            svg.push_str(&format!(
                "<text x=\"{x}\" y=\"{}\">{truth}, score {:.3}</text>",
                y + THUMB + 16,
                p.score
            ));
        }
    }
    svg.push_str("</svg>");
    let opt = svg_options()?;
    let tree = usvg::Tree::from_str(&svg, &opt)?;
    let mut pixmap = resvg::tiny_skia::Pixmap::new(w, h).context("allocating the contact sheet")?;
    pixmap.fill(resvg::tiny_skia::Color::WHITE);
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::identity(),
        &mut pixmap.as_mut(),
    );
    let mut sheet =
        image::RgbaImage::from_raw(w, h, pixmap.take()).context("contact sheet buffer")?;
    for (r, wrong) in rows.values().enumerate() {
        for (c, p) in wrong.iter().enumerate() {
            let (x, y) = (LEFT + CELL_W * c as u32, 50 + CELL_H * r as u32);
            let thumb = match crate::data::decode_file(
                Path::new(&p.path),
                &crate::data::DecodeLimits::default(),
            ) {
                Ok(img) => image::imageops::resize(
                    &image::DynamicImage::ImageRgb8(img).to_rgba8(),
                    THUMB,
                    THUMB,
                    image::imageops::FilterType::Triangle,
                ),
                // A file moved since the test: a grey square keeps the grid honest.
                Err(_) => {
                    image::RgbaImage::from_pixel(THUMB, THUMB, image::Rgba([200, 200, 200, 255]))
                }
            };
            image::imageops::overlay(&mut sheet, &thumb, x as i64, y as i64);
        }
    }
    let mut png = Vec::new();
    sheet.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
    crate::atomic::write(out, &png)?;
    Ok(true)
}
