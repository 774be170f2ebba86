//! `robustness`: accuracy per perturbation level, one line per variant and set.
use anyhow::Result;
use plotters::prelude::*;

use super::render::{axes, category_label, chart, colour, dotted_line, legend, panels};
use super::{distinct, Figure};
use crate::report::analysis::{self, Aggregate};
use crate::report::runs::Run;

/// One panel, clean first, when the runs were swept over two levels or more.
pub(super) fn draw(runs: &[Run], table: &[Aggregate]) -> Result<Figure> {
    let mut levels: Vec<String> = table.iter().map(|a| a.perturbation.clone()).collect();
    levels.sort_by_key(|l| analysis::level_order(l));
    levels.dedup();
    if levels.len() < 2 {
        return Ok(Err(
            "no perturbation sweep in the runs (npr test --sweep jpeg=75,90,100)",
        ));
    }
    let variants = analysis::variants(runs);
    let sets = distinct(table.iter().map(|a| a.set.clone()));
    let n = levels.len();
    // Mean accuracy over all generators at each level that has it.
    let points = |v: &str, set: &str| -> Vec<(f64, f64)> {
        let at = |l: &str| {
            table.iter().find(|a| {
                a.variant == v && a.set == set && a.perturbation == l && a.quantity == "acc_all"
            })
        };
        let mean = |(j, l): (usize, &String)| at(l).and_then(|a| a.mean).map(|m| (j as f64, m));
        levels.iter().enumerate().filter_map(mean).collect()
    };
    panels(1, |_, area| {
        let caption = ("robustness: accuracy per perturbation", 18);
        let mut chart = chart(area, caption, (50, 55), (-0.3..n as f64 - 0.7, 0.0..1.05))?;
        let name = category_label(&levels);
        let titles = (
            "perturbation (none = clean)",
            "accuracy, all generators (mean over seeds)",
        );
        axes(&mut chart, titles, (12, 14), |mesh| {
            mesh.x_labels(n).x_label_formatter(&name);
        })?;
        let mut series = 0;
        for v in &variants {
            for set in &sets {
                let points = points(v, set);
                if points.is_empty() {
                    continue;
                }
                let label = if sets.len() > 1 {
                    format!("{v} / {set}")
                } else {
                    v.clone()
                };
                dotted_line(&mut chart, &points, colour(series), 4, label)?;
                series += 1;
            }
        }
        legend(&mut chart, SeriesLabelPosition::LowerLeft, 0.9, 13)?;
        Ok(())
    })
    .map(Ok)
}
