//! `attention_heatmaps`: generator × scale mean branch weight on fake images.
use anyhow::Result;
use plotters::prelude::*;
use plotters::style::colors::colormaps::ViridisRGB;

use super::render::{axes, category_label, chart, font, panels};
use super::{distinct, Figure};
use crate::report::analysis::{self, WeightRow};
use crate::report::runs::Run;

/// A heat map: variant, generators (rows), scales (columns), mean weights [row][column].
type HeatMap = (String, Vec<String>, Vec<f64>, Vec<Vec<f64>>);

/// One panel per multi-branch variant that saved weights.
pub(super) fn draw(runs: &[Run], weights: &[WeightRow]) -> Result<Figure> {
    let maps: Vec<HeatMap> = analysis::variants(runs)
        .into_iter()
        .filter_map(|v| heat_map(v, weights))
        .collect();
    if maps.is_empty() {
        return Ok(Err("no multi-branch run with attention_weights.npz"));
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
        let caption = format!("mean branch weight on fakes — {v} (colour {lo:.3}–{hi:.3})");
        let ranges = (-0.5..k as f64 - 0.5, -0.5..g as f64 - 0.5);
        let mut chart = chart(area, (&caption, 17), (45, 110), ranges)?;
        axes(&mut chart, ("NPR scale", "generator"), (13, 15), |mesh| {
            mesh.disable_mesh()
                .x_labels(k)
                .y_labels(g)
                .x_label_formatter(&scale_label)
                .y_label_formatter(&gen_label);
        })?;
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
    .map(Ok)
}

/// The heat map of `variant` (fakes only), if it has two branches or more.
fn heat_map(variant: String, weights: &[WeightRow]) -> Option<HeatMap> {
    let rows: Vec<&WeightRow> = weights.iter().filter(|w| w.variant == variant).collect();
    let mut scales: Vec<f64> = rows.iter().map(|r| r.scale).collect();
    scales.sort_by(f64::total_cmp);
    scales.dedup();
    if scales.len() < 2 {
        return None;
    }
    let fakes = || rows.iter().filter(|r| r.label == 1);
    let gens = distinct(fakes().map(|r| r.generator.clone()));
    let grid: Vec<Vec<f64>> = gens
        .iter()
        .map(|g| {
            scales
                .iter()
                .map(|s| {
                    fakes()
                        .find(|r| &r.generator == g && r.scale == *s)
                        .map_or(f64::NAN, |r| r.mean)
                })
                .collect()
        })
        .collect();
    Some((variant, gens, scales, grid))
}
