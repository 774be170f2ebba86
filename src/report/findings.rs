//! Everything `npr report` computes from the runs, before anything is written.
use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;

use super::analysis::{self, Aggregate, BootstrapRow, ScaleSelection, Scores, WeightRow};
use super::runs::Run;
use super::significance::{self, Significance};
use super::ReportRequest;
use crate::config::Fusion;
use crate::progress::Progress;

pub struct Findings {
    pub runs: Vec<Run>,
    /// Each run's scores per (perturbation, set), in `runs` order.
    pub per_run: Vec<BTreeMap<(String, String), Scores>>,
    pub table: Vec<Aggregate>,
    /// Against the baseline; empty when no run is the baseline.
    pub significance: Significance,
    pub boot: Vec<BootstrapRow>,
    /// Each synthetic family's true NPR scale (empty off the synthetic benchmark).
    pub truth: BTreeMap<String, f64>,
    /// Scale selection of the variants whose weights depend on the image.
    pub selection: Vec<ScaleSelection>,
    /// Variants whose weights are the same for every image (`equal`, `learned`).
    pub fixed: Vec<String>,
    pub weights: Vec<WeightRow>,
}

impl Findings {
    pub fn compute(runs: Vec<Run>, req: &ReportRequest, progress: &Progress) -> Result<Findings> {
        let per_run: Vec<_> = runs.iter().map(analysis::scores).collect();
        let table = analysis::ablation_table(&runs, &per_run);
        let significance = match runs.iter().any(|r| r.variant == req.baseline) {
            true => significance::significance(&runs, &per_run, &req.baseline),
            false => Significance {
                mcnemar: Vec::new(),
                cmh: Vec::new(),
                ttests: Vec::new(),
            },
        };
        progress.println(format!(
            "report: {} runs; bootstrap ({} resamples per metric)…",
            runs.len(),
            req.bootstrap_resamples
        ));
        let boot = analysis::bootstrap(&runs, req.bootstrap_resamples, req.seed, progress);
        let truth = true_scales(&runs)?;
        // Only per-image weights can select a scale per image: `equal` and `learned` weights
        // are the same for every input, and their "top branch" is a tie-break.
        let (adaptive, fixed): (Vec<String>, Vec<String>) =
            analysis::variants(&runs).into_iter().partition(|v| {
                runs.iter()
                    .filter(|r| &r.variant == v)
                    .all(|r| r.config.model.fusion == Fusion::Attention)
            });
        let selection = adaptive
            .iter()
            .flat_map(|v| analysis::scale_selection(&runs, v, &truth))
            .collect();
        let weights = analysis::variants(&runs)
            .iter()
            .flat_map(|v| analysis::branch_weights(&runs, v))
            .collect();
        Ok(Findings {
            runs,
            per_run,
            table,
            significance,
            boot,
            truth,
            selection,
            fixed,
            weights,
        })
    }
}

/// Each synthetic family's true NPR scale, from the `synth.json` of the runs' test sets
/// (beside a test set, or one folder up) or training data.
fn true_scales(runs: &[Run]) -> Result<BTreeMap<String, f64>> {
    // Every run of a sweep names the same folders: read each one once.
    let dirs: std::collections::BTreeSet<PathBuf> = runs
        .iter()
        .flat_map(|r| {
            r.config
                .test
                .sets
                .iter()
                .flat_map(|t| [t.dataroot.clone(), t.dataroot.join("..")])
                .chain([r.config.data.dataroot.clone()])
        })
        .collect();
    let mut out = BTreeMap::new();
    for dir in dirs.iter().filter(|d| d.join("synth.json").is_file()) {
        // A manifest that is there but unreadable is an error, not "no ground truth".
        for f in crate::synth::read_manifest(dir)?.families {
            out.insert(f.name, f.npr_scale);
        }
    }
    Ok(out)
}
