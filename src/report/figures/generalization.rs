//! `generalization_plot`: seen and unseen accuracy per variant, mean ± std over seeds.
use anyhow::Result;
use plotters::prelude::*;

use super::render::{axes, category_label, chart, colour, legend, panels};
use super::{distinct, Figure};
use crate::report::analysis::{self, Aggregate, CLEAN};
use crate::report::runs::Run;

/// One panel per clean set where some variant has both seen and unseen accuracy.
pub(super) fn draw(runs: &[Run], table: &[Aggregate]) -> Result<Figure> {
    let variants = analysis::variants(runs);
    let get = |v: &str, set: &str, q: &str| {
        table
            .iter()
            .find(|a| a.variant == v && a.set == set && a.perturbation == CLEAN && a.quantity == q)
            .and_then(|a| Some((a.mean?, a.std?)))
    };
    let mut sets = distinct(
        table
            .iter()
            .filter(|a| a.perturbation == CLEAN)
            .map(|a| a.set.clone()),
    );
    sets.retain(|s| {
        variants
            .iter()
            .any(|v| get(v, s, "acc_seen").is_some() && get(v, s, "acc_unseen").is_some())
    });
    if sets.is_empty() {
        return Ok(Err("no run with both seen and unseen generators"));
    }
    panels(sets.len(), |i, area| {
        let set = &sets[i];
        let n = variants.len();
        let caption = format!("seen vs unseen generators — {set}");
        let ranges = (-0.5..n as f64 - 0.5, 0.0..1.05);
        let mut chart = chart(area, (&caption, 18), (60, 55), ranges)?;
        let name = category_label(&variants);
        let titles = ("variant", "accuracy (mean ± std over seeds)");
        axes(&mut chart, titles, (12, 15), |mesh| {
            mesh.x_labels(n).x_label_formatter(&name);
        })?;
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
    .map(Ok)
}
