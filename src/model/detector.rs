//! The whole detector: `logit = head(backbone(gain · fuse(NPR_{s₁}(x), …, NPR_{s_k}(x))))`,
//! where `fuse` sums or concatenates the weighted branches (`model.combine`).
use anyhow::Result;
use tch::{nn, Device, Tensor};

use super::backbone::ResNet;
use super::fusion::{energy_normalise, ScaleFusion};
use super::input::to_channels_last;
use super::npr::npr_branches;
use crate::config::{BranchNorm, Combine, ModelConfig};

#[derive(Debug)]
pub struct Detector {
    pub config: ModelConfig,
    fusion: ScaleFusion,
    backbone: ResNet,
    /// Feed the backbone channels-last tensors (`train.channels_last`).
    channels_last: bool,
}

/// What one forward pass gives.
#[derive(Debug)]
pub struct DetectorOutput {
    /// [b] — fake if sigmoid(logit) > 0.5.
    pub logit: Tensor,
    /// [b, k, 3] — per-image weight of every branch and colour channel.
    pub weights: Tensor,
    /// [b, d] — pooled backbone features (for t-SNE).
    pub features: Tensor,
}

impl Detector {
    /// Switches the backbone to channels-last: every 4-D weight is re-laid out in place
    /// (values unchanged) and the fused input is converted before the backbone.
    pub fn use_channels_last(&mut self, vs: &nn::VarStore) {
        tch::no_grad(|| {
            for (_, mut var) in vs.variables() {
                if var.dim() == 4 {
                    let relaid = to_channels_last(&var);
                    var.set_data(&relaid);
                }
            }
        });
        self.channels_last = true;
    }

    /// Turns a model whose weights are final into its inference form: on CPU the
    /// backbone runs channels-last (on CUDA the layout stays what `train.channels_last`
    /// says), and every batch norm is folded into its convolution. Scores change only by
    /// float rounding (README.md, "Inference speed"). Never train the model afterwards.
    pub fn prepare_for_inference(&mut self, vs: &nn::VarStore) {
        if vs.device() == Device::Cpu && !self.channels_last {
            self.use_channels_last(vs);
        }
        self.backbone.fold_batch_norm();
    }

    pub fn new(vs: &nn::Path, config: &ModelConfig) -> Self {
        // The 3-channel groups the fusion hands the backbone.
        let groups = match config.combine {
            Combine::Sum => 1,
            Combine::Concat => config.scales.len() as i64,
        };
        Detector {
            config: config.clone(),
            fusion: ScaleFusion::new(vs, config),
            backbone: ResNet::new(vs, config.backbone, 3 * groups),
            channels_last: false,
        }
    }

    /// x: normalised images [b, 3, h, w].
    pub fn forward_t(&self, x: &Tensor, train: bool) -> DetectorOutput {
        self.forward_with_maps(x, train).0
    }

    /// The forward pass that also returns what the backbone's input is made of (for
    /// `npr predict --maps` and `npr serve`): the raw NPR branches and the fused map.
    pub fn forward_with_maps(&self, x: &Tensor, train: bool) -> (DetectorOutput, InputMaps) {
        let c = &self.config;
        let branches = npr_branches(x, &c.scales); // [b, k, 3, h, w]
        let normalised = if c.branch_norm == BranchNorm::Energy && c.scales.len() > 1 {
            energy_normalise(&branches)
        } else {
            branches.shallow_clone()
        };
        let (fused, weights) = self.fusion.fuse(&normalised, c.combine); // [b, 3 or 3k, h, w], [b, k, 3]
        let fused = fused * c.npr_gain;
        let input = if self.channels_last {
            to_channels_last(&fused)
        } else {
            fused.shallow_clone()
        };
        let features = self.backbone.forward_features(&input, train);
        let logit = self.backbone.forward_head(&features);
        let output = DetectorOutput {
            logit,
            weights,
            features,
        };
        (output, InputMaps { branches, fused })
    }
}

/// What the backbone's input is made of, for looking inside a decision.
#[derive(Debug)]
pub struct InputMaps {
    /// [b, k, 3, h, w] — `NPR_s(x)` of every scale before any branch normalisation (the
    /// identity branch is the normalised image itself).
    pub branches: Tensor,
    /// [b, 3, h, w] (or [b, 3k, h, w] for `combine: concat`) — exactly what the backbone
    /// sees: the weighted branches fused, times `npr_gain`.
    pub fused: Tensor,
}

/// Number of trainable parameters in a variable store.
pub fn trainable_parameters(vs: &nn::VarStore) -> i64 {
    vs.trainable_variables()
        .iter()
        .map(|t| t.numel() as i64)
        .sum()
}

/// Parses `auto | cpu | cuda | cuda:N`; `auto` picks CUDA when present. Asking for a CUDA
/// device that is not there is a usage error, not a crash inside libtorch.
pub fn parse_device(s: &str) -> Result<Device> {
    let index = match s {
        "auto" => return Ok(Device::cuda_if_available()),
        "cpu" => return Ok(Device::Cpu),
        "cuda" => 0,
        other => other
            .strip_prefix("cuda:")
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| {
                crate::usage!("--device {other:?}: expected auto, cpu, cuda or cuda:N")
            })?,
    };
    let count = tch::Cuda::device_count() as usize;
    if index >= count {
        return Err(crate::usage!(
            "--device {s}: this machine has {count} CUDA device(s) visible to libtorch; use cpu or auto"
        ));
    }
    Ok(Device::Cuda(index))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Backbone, Fusion};
    use tch::Kind;

    fn config(backbone: Backbone, fusion: Fusion, scales: &[f64]) -> ModelConfig {
        ModelConfig {
            backbone,
            fusion,
            scales: scales.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn official_network_has_1437761_parameters() {
        let vs = nn::VarStore::new(Device::Cpu);
        let _ = Detector::new(
            &vs.root(),
            &config(Backbone::NprResnet50, Fusion::Single, &[0.5]),
        );
        assert_eq!(trainable_parameters(&vs), 1_437_761);
    }

    #[test]
    fn every_fusion_and_backbone_runs_at_odd_sizes() {
        let all = [0.25, 0.5, 0.75, 1.0];
        for backbone in [
            Backbone::NprResnet50,
            Backbone::Resnet18,
            Backbone::Resnet34,
            Backbone::Resnet50,
        ] {
            for (fusion, scales) in [
                (Fusion::Attention, &all[..]),
                (Fusion::Equal, &all[..]),
                (Fusion::Learned, &all[..]),
                (Fusion::Single, &[0.5][..]),
            ] {
                let vs = nn::VarStore::new(Device::Cpu);
                let det = Detector::new(&vs.root(), &config(backbone, fusion, scales));
                let x = Tensor::randn([2, 3, 33, 35], (Kind::Float, Device::Cpu));
                let out = tch::no_grad(|| det.forward_t(&x, false));
                assert_eq!(out.logit.size(), vec![2]);
                assert_eq!(out.weights.size(), vec![2, scales.len() as i64, 3]);
                assert_eq!(out.features.size()[0], 2);
            }
            // Weighted concatenation: conv1 takes 3k channels.
            let vs = nn::VarStore::new(Device::Cpu);
            let mut c = config(backbone, Fusion::Attention, &all);
            c.combine = crate::config::Combine::Concat;
            let det = Detector::new(&vs.root(), &c);
            assert_eq!(vs.variables()["conv1.weight"].size()[1], 12);
            let x = Tensor::randn([2, 3, 33, 35], (Kind::Float, Device::Cpu));
            let out = tch::no_grad(|| det.forward_t(&x, false));
            assert_eq!(out.logit.size(), vec![2]);
        }
    }

    #[test]
    fn official_state_dict_names() {
        let vs = nn::VarStore::new(Device::Cpu);
        let _ = Detector::new(
            &vs.root(),
            &config(Backbone::NprResnet50, Fusion::Single, &[0.5]),
        );
        let names = vs.variables();
        for key in [
            "conv1.weight",
            "bn1.running_mean",
            "layer1.0.conv2.weight",
            "layer1.0.downsample.1.weight",
            "layer2.3.bn3.bias",
            "fc1.bias",
        ] {
            assert!(names.contains_key(key), "missing {key}");
        }
    }

    #[test]
    fn channels_last_changes_layout_not_values() {
        let vs = nn::VarStore::new(Device::Cpu);
        let mut det = Detector::new(
            &vs.root(),
            &config(Backbone::NprResnet50, Fusion::Attention, &[0.5, 1.0]),
        );
        let x = Tensor::randn([2, 3, 32, 32], (Kind::Float, Device::Cpu));
        let before = tch::no_grad(|| det.forward_t(&x, false).logit);
        det.use_channels_last(&vs);
        let w = &vs.variables()["conv1.weight"];
        assert_eq!(w.stride()[1], 1, "conv weights are NHWC in memory");
        let after = tch::no_grad(|| det.forward_t(&x, false).logit);
        let diff = (before - after).abs().max().double_value(&[]);
        assert!(diff < 1e-4, "max |Δlogit| {diff}");
    }

    #[test]
    fn inference_form_changes_scores_only_by_rounding() {
        tch::manual_seed(3);
        for (fusion, scales) in [
            (Fusion::Single, &[0.5][..]),
            (Fusion::Attention, &[0.25, 0.5, 0.75, 1.0][..]),
        ] {
            let vs = nn::VarStore::new(Device::Cpu);
            let mut det = Detector::new(&vs.root(), &config(Backbone::NprResnet50, fusion, scales));
            // Batch norms that are not the identity: random affine parameters, and running
            // statistics from a few training-mode passes.
            tch::no_grad(|| {
                for (name, mut var) in vs.variables() {
                    if var.dim() == 1 && name.ends_with(".weight") && !name.starts_with("fc") {
                        let _ = var.uniform_(0.5, 1.5);
                    }
                }
                for _ in 0..3 {
                    let x = Tensor::randn([4, 3, 32, 32], (Kind::Float, Device::Cpu)) * 2.0 + 0.3;
                    let _ = det.forward_t(&x, true);
                }
            });
            let x = Tensor::randn([3, 3, 40, 36], (Kind::Float, Device::Cpu));
            let before = tch::no_grad(|| det.forward_t(&x, false));
            det.prepare_for_inference(&vs);
            let after = tch::no_grad(|| det.forward_t(&x, false));
            let diff = (&before.logit - &after.logit).abs().max().double_value(&[]);
            let scale = before.logit.abs().max().double_value(&[]).max(1.0);
            assert!(
                diff <= 1e-5 * scale,
                "{fusion:?}: max |Δlogit| {diff} (|logit| ≤ {scale})"
            );
            let dw = (&before.weights - &after.weights)
                .abs()
                .max()
                .double_value(&[]);
            assert!(dw < 1e-6, "{fusion:?}: branch weights moved by {dw}");
            // Training mode still runs the unfolded layers.
            let train = tch::no_grad(|| det.forward_t(&x, true).logit);
            assert_eq!(train.size(), vec![3]);
        }
    }

    #[test]
    fn devices_parse() {
        assert_eq!(parse_device("cpu").unwrap(), Device::Cpu);
        if tch::Cuda::device_count() == 0 {
            assert!(parse_device("cuda:0").is_err());
        }
        assert!(parse_device("gpu").is_err());
    }
}
