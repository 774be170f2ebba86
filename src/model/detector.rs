//! The whole detector: `logit = head(backbone(gain · fuse(NPR_{s₁}(x), …, NPR_{s_k}(x))))`.
use anyhow::{bail, Result};
use tch::{nn, Device, Tensor};

use super::backbone::ResNet;
use super::fusion::ScaleFusion;
use super::npr::npr_branches;
use crate::config::ModelConfig;

#[derive(Debug)]
pub struct Detector {
    pub config: ModelConfig,
    fusion: ScaleFusion,
    backbone: ResNet,
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
    pub fn new(vs: &nn::Path, config: &ModelConfig) -> Self {
        Detector {
            config: config.clone(),
            fusion: ScaleFusion::new(vs, config),
            backbone: ResNet::new(vs, config.backbone),
        }
    }

    /// x: normalised images [b, 3, h, w].
    pub fn forward_t(&self, x: &Tensor, train: bool) -> DetectorOutput {
        let branches = npr_branches(x, &self.config.scales); // [b, k, 3, h, w]
        let (fused, weights) = self.fusion.fuse(&branches); // [b, 3, h, w], [b, k, 3]
        let features = self
            .backbone
            .forward_features(&(fused * self.config.npr_gain), train);
        let logit = self.backbone.forward_head(&features);
        DetectorOutput {
            logit,
            weights,
            features,
        }
    }

    /// Checks the input before a forward pass: user images must not panic inside libtorch.
    pub fn check_input(x: &Tensor) -> Result<()> {
        let size = x.size();
        if size.len() != 4 || size[1] != 3 {
            bail!("the detector takes [batch, 3, height, width], got {size:?}");
        }
        if size[2] < 4 || size[3] < 4 {
            bail!(
                "images must be at least 4×4 pixels, got {}×{}",
                size[3],
                size[2]
            );
        }
        Ok(())
    }
}

/// Number of trainable parameters in a variable store.
pub fn trainable_parameters(vs: &nn::VarStore) -> i64 {
    vs.trainable_variables()
        .iter()
        .map(|t| t.numel() as i64)
        .sum()
}

/// Parses `auto | cpu | cuda | cuda:N`; `auto` picks CUDA when present.
pub fn parse_device(s: &str) -> Result<Device> {
    Ok(match s {
        "auto" => Device::cuda_if_available(),
        "cpu" => Device::Cpu,
        "cuda" => Device::Cuda(0),
        other => match other.strip_prefix("cuda:").and_then(|n| n.parse().ok()) {
            Some(i) => Device::Cuda(i),
            None => bail!("--device {other:?}: expected auto, cpu, cuda or cuda:N"),
        },
    })
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
    fn devices_parse() {
        assert_eq!(parse_device("cpu").unwrap(), Device::Cpu);
        assert_eq!(parse_device("cuda:1").unwrap(), Device::Cuda(1));
        assert!(parse_device("gpu").is_err());
    }
}
