//! `train.scale_supervision`: the positive control of the scale-selection experiment
//! (README_ATTENTION.md). A model taught each fake's true scale must show selection
//! through the same `npr test` → `npr report` chain that reports none for the proposal's
//! designs; if it does not, the chain is wrong, not the models.
//!
//! The loss is a cross-entropy between the attention's branch weights (mean over colour
//! channels, identity branch excluded, normalised over the NPR branches) and the branch of
//! the fake's true scale. Reals, and fakes whose family's scale is not a branch, add
//! nothing. The true scale comes from the training data's `synth.json`; a training fake's
//! family is in its file name, `{index}_{family}.png` (DATASET_DETAILS.md, layout).
use std::path::Path;

use anyhow::{bail, Context, Result};
use tch::{Kind, Tensor};

use crate::config::Config;
use crate::data::{Sample, FAKE};
use crate::model::detector::DetectorOutput;

/// The supervision of one run: per training sample, the index of its true branch among
/// the NPR branches (−1: none).
pub struct ScaleTargets {
    weight: f64,
    /// Positions of the NPR branches (scale < 1) in `model.scales`.
    npr_branches: Vec<i64>,
    per_sample: Vec<i64>,
}

impl ScaleTargets {
    /// The targets of `samples` (the training list the loader indexes), or None when the
    /// option is off. A data set without true scales, or with no fake whose scale is a
    /// branch, is an error naming the option: never a silent no-op.
    pub fn for_training(config: &Config, samples: &[Sample]) -> Result<Option<ScaleTargets>> {
        let Some(sup) = &config.train.scale_supervision else {
            return Ok(None);
        };
        let root = &config.data.dataroot;
        let manifest = crate::synth::read_manifest(root).with_context(|| {
            format!(
                "train.scale_supervision needs each fake family's true scale, from the synth.json of data.dataroot {}",
                root.display()
            )
        })?;
        let scales = &config.model.scales;
        let npr: Vec<f64> = scales.iter().copied().filter(|&s| s < 1.0).collect();
        let branch_of = |family: &str| {
            let f = manifest.families.iter().find(|f| f.name == family)?;
            npr.iter().position(|&s| (s - f.npr_scale).abs() < 1e-9)
        };
        let per_sample: Vec<i64> = samples
            .iter()
            .map(|s| match s.label == FAKE {
                true => family_of(&s.path)
                    .and_then(branch_of)
                    .map_or(-1, |b| b as i64),
                false => -1,
            })
            .collect();
        if per_sample.iter().all(|&t| t < 0) {
            bail!(
                "train.scale_supervision: no training fake of {} belongs to a family whose true scale is one of the NPR branches {npr:?} (families: {})",
                root.display(),
                manifest.families.iter().map(|f| format!("{} at {}", f.name, f.npr_scale)).collect::<Vec<_>>().join(", ")
            );
        }
        let npr_branches = (0..scales.len())
            .filter(|&i| scales[i] < 1.0)
            .map(|i| i as i64);
        Ok(Some(ScaleTargets {
            weight: sup.weight,
            npr_branches: npr_branches.collect(),
            per_sample,
        }))
    }

    /// `weight ·` [`scale_loss`] of one batch (`indices` into the training list).
    pub fn loss(&self, out: &DetectorOutput, indices: &[usize]) -> Tensor {
        let device = out.weights.device();
        let targets: Vec<i64> = indices.iter().map(|&i| self.per_sample[i]).collect();
        let targets = Tensor::from_slice(&targets).to_device(device);
        let branches = Tensor::from_slice(&self.npr_branches).to_device(device);
        scale_loss(&out.weights, &branches, &targets) * self.weight
    }
}

/// The family of a training fake, from its file name `{index}_{family}.png`.
fn family_of(path: &Path) -> Option<&str> {
    let stem = path.file_stem()?.to_str()?;
    stem.split_once('_').map(|(_, family)| family)
}

/// Mean over the images with a target (`targets[i] ≥ 0`) of `−log p[target]`, where
/// `p` is each image's weights [b, k, 3] averaged over channels, restricted to `branches`
/// and normalised to sum to 1. Zero (and no gradient) for a batch without a target.
pub fn scale_loss(weights: &Tensor, branches: &Tensor, targets: &Tensor) -> Tensor {
    let w = weights.to_kind(Kind::Float).mean_dim(2, false, None);
    let w = w.index_select(1, branches);
    let p = &w / w.sum_dim_intlist(1, true, None);
    let mask = targets.ge(0);
    let picked = p
        .gather(1, &targets.clamp_min(0).unsqueeze(1), false)
        .squeeze_dim(1);
    let nll = -picked.clamp_min(1e-12).log() * mask.to_kind(Kind::Float);
    nll.sum(Kind::Float) / mask.sum(Kind::Float).clamp_min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Weights [b, k, 3] from per-branch values (the same on every channel).
    fn weights(rows: &[&[f32]]) -> Tensor {
        let k = rows[0].len() as i64;
        let flat: Vec<f32> = rows
            .iter()
            .flat_map(|r| r.iter().flat_map(|&w| [w; 3]))
            .collect();
        Tensor::from_slice(&flat).view([rows.len() as i64, k, 3])
    }

    #[test]
    fn the_loss_is_the_cross_entropy_of_the_normalised_npr_weights() {
        // Branches 0.25, 0.5, 1.0 (identity last): only the first two count.
        let w = weights(&[&[0.2, 0.6, 0.9], &[0.5, 0.5, 0.1], &[0.3, 0.1, 0.9]]);
        let branches = Tensor::from_slice(&[0i64, 1]);
        for (targets, want) in [
            // p = (0.25, 0.75) for image 0: −ln 0.75; image 1: −ln 0.5.
            ([1i64, 0, -1], (-(0.75f64).ln() - (0.5f64).ln()) / 2.0),
            ([0, -1, -1], -(0.25f64).ln()),
            // Reals and branch-less families only: nothing to learn.
            ([-1, -1, -1], 0.0),
        ] {
            let got = scale_loss(&w, &branches, &Tensor::from_slice(&targets)).double_value(&[]);
            assert!((got - want).abs() < 1e-6, "{targets:?}: {got} vs {want}");
        }
    }

    #[test]
    fn the_gradient_raises_the_true_branch_and_lowers_the_others() {
        let w = weights(&[&[0.4, 0.4, 0.4, 0.9]]).set_requires_grad(true);
        let branches = Tensor::from_slice(&[0i64, 1, 2]);
        scale_loss(&w, &branches, &Tensor::from_slice(&[1i64])).backward();
        let g: Vec<f64> =
            Vec::try_from(w.grad().sum_dim_intlist(2, false, None).view([-1])).unwrap();
        // Gradient descent moves against the gradient: up for the true branch (1),
        // down for the other NPR branches, untouched for the identity branch.
        assert!(
            g[1] < 0.0 && g[0] > 0.0 && g[2] > 0.0 && g[3] == 0.0,
            "{g:?}"
        );
        // A masked image contributes no gradient at all.
        let w = weights(&[&[0.4, 0.4, 0.4, 0.9]]).set_requires_grad(true);
        scale_loss(&w, &branches, &Tensor::from_slice(&[-1i64])).backward();
        assert_eq!(w.grad().abs().sum(Kind::Float).double_value(&[]), 0.0);
    }

    #[test]
    fn a_data_set_without_true_scales_is_an_error_naming_the_option() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.data.dataroot = dir.path().to_path_buf();
        config.model.scales = vec![0.25, 0.5, 1.0];
        config.train.scale_supervision = Some(crate::config::ScaleSupervision {
            weight: 1.0,
            target: crate::config::ScaleTarget::TrueScale,
        });
        let err = format!(
            "{:#}",
            ScaleTargets::for_training(&config, &[]).err().unwrap()
        );
        assert!(
            err.contains("train.scale_supervision") && err.contains("synth.json"),
            "{err}"
        );
        config.train.scale_supervision = None;
        assert!(ScaleTargets::for_training(&config, &[]).unwrap().is_none());
    }

    #[test]
    fn families_come_from_the_training_file_names() {
        for (name, want) in [
            (
                "train/clouds/1_fake/00000_nearest_x2.png",
                Some("nearest_x2"),
            ),
            (
                "train/clouds/1_fake/00013_bicubic_x4_3.png",
                Some("bicubic_x4_3"),
            ),
            ("train/clouds/0_real/00000.png", None),
        ] {
            assert_eq!(family_of(Path::new(name)), want, "{name}");
        }
    }
}
