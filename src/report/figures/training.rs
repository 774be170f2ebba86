//! `training_curves`: validation loss and accuracy per epoch.
use std::collections::BTreeMap;

use anyhow::Result;
use plotters::prelude::*;
use SeriesLabelPosition::{LowerRight, UpperRight};

use super::render::{axes, chart, colour, dotted_line, legend, panels};
use super::Figure;
use crate::report::analysis;
use crate::report::runs::{EpochRow, Run};

/// Two panels, loss and accuracy; one line per variant, the mean over its seeds.
pub(super) fn draw(runs: &[Run]) -> Result<Figure> {
    let variants = analysis::variants(runs);
    let curve = |v: &str, f: fn(&EpochRow) -> f64| -> Vec<(f64, f64)> {
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
            .filter_map(|(e, ys)| Some((e as f64, crate::stats::mean(ys)?)))
            .collect()
    };
    let loss: Vec<Vec<(f64, f64)>> = variants.iter().map(|v| curve(v, |e| e.val_loss)).collect();
    let acc: Vec<Vec<(f64, f64)>> = variants.iter().map(|v| curve(v, |e| e.val_acc)).collect();
    if loss.iter().all(Vec::is_empty) {
        return Ok(Err("no epoch rows in the runs' train_log.csv"));
    }
    let max_epoch = loss.iter().flatten().map(|p| p.0).fold(1.0, f64::max);
    let max_loss = (loss.iter().flatten().map(|p| p.1).fold(0.0, f64::max) * 1.1).max(1e-3);
    let whole = |x: &f64| {
        if x.fract() == 0.0 {
            format!("{x:.0}")
        } else {
            String::new()
        }
    };
    panels(2, |i, area| {
        let (data, title, y_desc, y_max, corner) = [
            (&loss, "validation loss", "BCE loss", max_loss, UpperRight),
            (&acc, "validation accuracy", "accuracy", 1.05, LowerRight),
        ][i]
            .clone();
        let y_desc = format!("{y_desc} (mean over seeds)");
        let ranges = (0.5..max_epoch + 0.5, 0.0..y_max);
        let mut chart = chart(area, (title, 18), (45, 60), ranges)?;
        axes(&mut chart, ("epoch", &y_desc), (12, 15), |mesh| {
            mesh.x_label_formatter(&whole);
        })?;
        for (j, (v, points)) in variants.iter().zip(data.iter()).enumerate() {
            dotted_line(&mut chart, points, colour(j), 3, v.clone())?;
        }
        legend(&mut chart, corner, 0.9, 13)?;
        Ok(())
    })
    .map(Ok)
}
