//! The study's figures, each drawn once as SVG and written as SVG, PDF and PNG
//! (`render.rs`), one file per figure:
//!
//! ```text
//! roc_curves           roc.rs             ROC per test set, one line per variant (its first seed)
//! attention_heatmaps   heatmap.rs         generator × scale mean branch weight on fakes, per multi-branch variant
//! generalization_plot  generalization.rs  seen vs unseen accuracy per variant, mean ± std over seeds
//! tsne_embeddings      tsne.rs            pooled features, baseline vs the proposal's model, by generator and label
//! robustness           robustness.rs      accuracy per perturbation level and variant (when sweeps exist)
//! training_curves      training.rs        validation loss and accuracy per epoch, per variant (mean over seeds)
//! ```
//!
//! `pages.rs` writes the SVG built by hand: the ablation table's page and the contact
//! sheets of failure cases.
mod generalization;
mod heatmap;
mod pages;
mod render;
mod robustness;
mod roc;
mod training;
mod tsne;

use std::path::PathBuf;

use anyhow::Result;

use super::analysis::{self, Aggregate};
use super::runs::Run;
use super::ReportRequest;
use crate::progress::Progress;

pub use pages::{contact_sheet, table_page};

/// A figure's SVG, or why the runs do not allow it.
type Figure = std::result::Result<String, &'static str>;

/// How many figures [`draw_all`] draws (a step each in `npr report`'s progress).
pub const COUNT: u64 = 6;

/// Draws every figure the runs allow into `req.out`; returns the stems written and, for
/// each figure left out, why.
pub fn draw_all(
    req: &ReportRequest,
    runs: &[Run],
    table: &[Aggregate],
    weights: &[analysis::WeightRow],
    progress: &Progress,
) -> Result<(Vec<PathBuf>, Vec<String>)> {
    let (baseline, attention) = (req.baseline.as_str(), req.attention.as_str());
    let figures: [_; COUNT as usize] = [
        ("roc_curves", roc::draw(runs)?),
        ("attention_heatmaps", heatmap::draw(runs, weights)?),
        ("generalization_plot", generalization::draw(runs, table)?),
        (
            "tsne_embeddings",
            tsne::draw(runs, baseline, attention, req.seed)?,
        ),
        ("robustness", robustness::draw(runs, table)?),
        ("training_curves", training::draw(runs)?),
    ];
    let opt = render::svg_options()?;
    let (mut written, mut skipped) = (Vec::new(), Vec::new());
    for (name, figure) in figures {
        match figure {
            Ok(svg) => {
                let stem = req.out.join(name);
                render::save(&svg, &stem, &opt)?;
                written.push(stem);
            }
            Err(why) => skipped.push(format!("{name}: {why}")),
        }
        progress.inc(1);
    }
    Ok((written, skipped))
}

/// The run of `variant` with the lowest seed: the one a figure shows when it shows one.
pub fn first_seed<'r>(runs: &'r [Run], variant: &str) -> Option<&'r Run> {
    runs.iter()
        .filter(|r| r.variant == variant)
        .min_by_key(|r| r.seed)
}

/// The distinct values, sorted.
fn distinct<T: Ord>(values: impl IntoIterator<Item = T>) -> Vec<T> {
    let set: std::collections::BTreeSet<T> = values.into_iter().collect();
    set.into_iter().collect()
}
