//! `roc_curves`: ROC per clean test set, one curve per variant (its first seed).
use anyhow::Result;
use plotters::prelude::*;

use super::render::{axes, chart, colour, legend, line_key, panels};
use super::{distinct, first_seed, Figure};
use crate::eval::metrics;
use crate::report::analysis::{self, CLEAN};
use crate::report::runs::Run;

/// A ROC curve: legend, (FPR, TPR) points.
type Curve = (String, Vec<(f64, f64)>);

/// ROC per clean test set; one curve per variant (its first seed), AUC in the legend.
pub(super) fn draw(runs: &[Run]) -> Result<Figure> {
    let sets = distinct(runs.iter().flat_map(|r| {
        r.predictions
            .iter()
            .filter(|p| p.perturbation == CLEAN)
            .map(|p| p.set.clone())
    }));
    let curves: Vec<Vec<Curve>> = sets.iter().map(|set| set_curves(runs, set)).collect();
    if curves.iter().all(Vec::is_empty) {
        return Ok(Err("no test set with both labels"));
    }
    panels(sets.len(), |i, area| {
        let caption = format!("ROC — test set {}", sets[i]);
        let mut chart = chart(area, (&caption, 20), (45, 55), (0.0..1.0, 0.0..1.0))?;
        let titles = ("false positive rate", "true positive rate");
        axes(&mut chart, titles, (13, 15), |_| {})?;
        chart.draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], BLACK.mix(0.3)))?;
        for (j, (name, points)) in curves[i].iter().enumerate() {
            let c = colour(j);
            chart
                .draw_series(LineSeries::new(points.iter().copied(), c.stroke_width(2)))?
                .label(name.clone())
                .legend(line_key(c));
        }
        legend(&mut chart, SeriesLabelPosition::LowerRight, 0.9, 13)?;
        Ok(())
    })
    .map(Ok)
}

/// One curve per variant with both labels among its clean predictions on `set`.
fn set_curves(runs: &[Run], set: &str) -> Vec<Curve> {
    let mut curves = Vec::new();
    for v in analysis::variants(runs) {
        let Some(run) = first_seed(runs, &v) else {
            continue;
        };
        let (labels, logits) = run.clean_scores(set);
        if let (Ok(Some(roc)), Ok(Some(auc))) = (
            metrics::roc_curve(&labels, &logits),
            metrics::roc_auc(&labels, &logits),
        ) {
            let points = roc.fpr.iter().copied().zip(roc.tpr.iter().copied());
            let name = format!("{v} (seed {}, AUC {auc:.3})", run.seed);
            curves.push((name, points.collect()));
        }
    }
    curves
}
