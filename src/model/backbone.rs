//! ResNet backbones (He et al., CVPR 2016) with the official NPR stem and names.
//!
//! `npr_resnet50` is the official NPR network: conv1 3×3/2 (3→64), BN, ReLU, max-pool 3×3/2,
//! layer1 (3 bottlenecks, 256 out), layer2 (4 bottlenecks, /2, 512 out), global average
//! pool, `fc1` 512→1 — 1,437,761 parameters. `resnet50` continues with layer3 and layer4
//! (fc1 2048→1); `resnet34`/`resnet18` use basic blocks (fc1 512→1). Variable names are
//! the PyTorch state_dict keys (`layer1.0.downsample.1.weight`, …), so official
//! checkpoints load as they are.
use tch::nn::{self, ModuleT};
use tch::{Kind, Tensor};

use super::input::to_channels_last;

use crate::config::Backbone as BackboneKind;

fn conv(vs: nn::Path, inp: i64, out: i64, k: i64, stride: i64, padding: i64) -> nn::Conv2D {
    let config = nn::ConvConfig {
        stride,
        padding,
        bias: false,
        // Kaiming-normal, fan_out, ReLU: torchvision's ResNet initialisation.
        ws_init: nn::Init::Kaiming {
            dist: nn::init::NormalOrUniform::Normal,
            fan: nn::init::FanInOut::FanOut,
            non_linearity: nn::init::NonLinearity::ReLU,
        },
        ..Default::default()
    };
    nn::conv2d(vs, inp, out, k, config)
}

fn bn(vs: nn::Path, n: i64) -> nn::BatchNorm {
    let config = nn::BatchNormConfig {
        ws_init: nn::Init::Const(1.0),
        bs_init: nn::Init::Const(0.0),
        ..Default::default()
    };
    nn::batch_norm2d(vs, n, config)
}

/// A convolution followed by batch norm, the unit every ResNet layer is made of.
///
/// For inference the two collapse into one convolution (Ioffe & Szegedy's normalisation
/// with frozen statistics is a per-channel affine map): `w' = w·γ/√(σ²+ε)`,
/// `b' = β − μ·γ/√(σ²+ε)`. That saves one pass over every activation, and on CPU it is
/// what makes the channels-last kernels pay (README.md, "Inference speed").
#[derive(Debug)]
struct ConvBn {
    conv: nn::Conv2D,
    bn: nn::BatchNorm,
    stride: i64,
    padding: i64,
    /// The folded weight and bias, once [`ConvBn::fold`] ran.
    folded: Option<(Tensor, Tensor)>,
}

impl ConvBn {
    #[allow(clippy::too_many_arguments)]
    fn new(
        conv_vs: nn::Path,
        bn_vs: nn::Path,
        inp: i64,
        out: i64,
        k: i64,
        stride: i64,
        padding: i64,
    ) -> Self {
        ConvBn {
            conv: conv(conv_vs, inp, out, k, stride, padding),
            bn: bn(bn_vs, out),
            stride,
            padding,
            folded: None,
        }
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        match (&self.folded, train) {
            (Some((w, b)), false) => x.conv2d(w, Some(b), [self.stride], [self.padding], [1], 1),
            _ => x.apply(&self.conv).apply_t(&self.bn, train),
        }
    }

    /// Computes the folded convolution from the current weights and running statistics
    /// (in float64, then back to the weights' kind and memory layout). Training the
    /// weights afterwards does not update it, so only inference-only models fold.
    fn fold(&mut self) {
        tch::no_grad(|| {
            let eps = nn::BatchNormConfig::default().eps;
            let double = |t: &Tensor| t.to_kind(Kind::Double);
            let gamma = self.bn.ws.as_ref().map_or_else(
                || Tensor::ones_like(&self.bn.running_var).to_kind(Kind::Double),
                double,
            );
            let beta = self.bn.bs.as_ref().map_or_else(
                || Tensor::zeros_like(&self.bn.running_mean).to_kind(Kind::Double),
                double,
            );
            let scale = gamma / (double(&self.bn.running_var) + eps).sqrt();
            let ws = &self.conv.ws;
            let w = (double(ws) * scale.view([-1, 1, 1, 1])).to_kind(ws.kind());
            let w = if ws.is_contiguous() {
                w.contiguous()
            } else {
                to_channels_last(&w)
            };
            let b = (beta - double(&self.bn.running_mean) * scale).to_kind(ws.kind());
            self.folded = Some((w, b));
        });
    }
}

/// A residual block: bottleneck (1×1, 3×3/stride, 1×1 ×4) or basic (3×3/stride, 3×3).
#[derive(Debug)]
struct Block {
    units: Vec<ConvBn>,
    /// 1×1 conv + BN on the shortcut when the shape changes (`downsample.0`, `downsample.1`).
    downsample: Option<ConvBn>,
}

impl Block {
    fn new(vs: nn::Path, inp: i64, planes: i64, stride: i64, bottleneck: bool) -> Self {
        let unit = |i: usize, inp, out, k, stride, padding| {
            let (conv, bn) = (&vs / format!("conv{i}"), &vs / format!("bn{i}"));
            ConvBn::new(conv, bn, inp, out, k, stride, padding)
        };
        let (units, out) = if bottleneck {
            let out = planes * 4;
            let units = vec![
                unit(1, inp, planes, 1, 1, 0),
                unit(2, planes, planes, 3, stride, 1),
                unit(3, planes, out, 1, 1, 0),
            ];
            (units, out)
        } else {
            let units = vec![
                unit(1, inp, planes, 3, stride, 1),
                unit(2, planes, planes, 3, 1, 1),
            ];
            (units, planes)
        };
        let ds = &vs / "downsample";
        Block {
            units,
            downsample: (stride != 1 || inp != out)
                .then(|| ConvBn::new(&ds / "0", &ds / "1", inp, out, 1, stride, 0)),
        }
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let mut y = x.shallow_clone();
        let last = self.units.len() - 1;
        for (i, unit) in self.units.iter().enumerate() {
            y = unit.forward_t(&y, train);
            if i < last {
                y = y.relu();
            }
        }
        let shortcut = match &self.downsample {
            Some(d) => d.forward_t(x, train),
            None => x.shallow_clone(),
        };
        (y + shortcut).relu()
    }

    fn units_mut(&mut self) -> impl Iterator<Item = &mut ConvBn> {
        self.units.iter_mut().chain(self.downsample.iter_mut())
    }
}

/// Stem, residual stages and the `fc1` head; features and head are separate so that
/// t-SNE reads the pooled features without surgery.
#[derive(Debug)]
pub struct ResNet {
    /// `conv1` and `bn1`.
    stem: ConvBn,
    layers: Vec<Vec<Block>>,
    fc1: nn::Linear,
}

impl ResNet {
    /// `in_channels`: 3, or 3k when the fusion concatenates k branches.
    pub fn new(vs: &nn::Path, kind: BackboneKind, in_channels: i64) -> Self {
        // (blocks per stage, bottleneck?)
        let (stages, bottleneck): (&[i64], bool) = match kind {
            BackboneKind::NprResnet50 => (&[3, 4], true),
            BackboneKind::Resnet50 => (&[3, 4, 6, 3], true),
            BackboneKind::Resnet34 => (&[3, 4, 6, 3], false),
            BackboneKind::Resnet18 => (&[2, 2, 2, 2], false),
        };
        let expansion = if bottleneck { 4 } else { 1 };
        let mut inp = 64;
        let mut layers = Vec::new();
        for (i, &n) in stages.iter().enumerate() {
            let planes = 64 << i;
            let stride = if i == 0 { 1 } else { 2 };
            let stage = vs / format!("layer{}", i + 1);
            let mut blocks = Vec::new();
            for j in 0..n {
                let s = if j == 0 { stride } else { 1 };
                blocks.push(Block::new(&stage / j, inp, planes, s, bottleneck));
                inp = planes * expansion;
            }
            layers.push(blocks);
        }
        ResNet {
            stem: ConvBn::new(vs / "conv1", vs / "bn1", in_channels, 64, 3, 2, 1),
            layers,
            fc1: nn::linear(vs / "fc1", inp, 1, Default::default()),
        }
    }

    /// x: [b, in_channels, h, w] → pooled features [b, feature_dim].
    pub fn forward_features(&self, x: &Tensor, train: bool) -> Tensor {
        let y = self.stem.forward_t(x, train).relu();
        let mut y = y.max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false);
        for stage in &self.layers {
            for block in stage {
                y = block.forward_t(&y, train);
            }
        }
        y.adaptive_avg_pool2d([1, 1]).flatten(1, -1) // [b, feature_dim]
    }

    /// Folds every batch norm into its convolution for inference ([`ConvBn`]); call it
    /// after the weights are final and after any change of memory layout. Training mode
    /// (`train = true`) still runs the unfolded layers.
    pub fn fold_batch_norm(&mut self) {
        self.stem.fold();
        for block in self.layers.iter_mut().flatten() {
            block.units_mut().for_each(ConvBn::fold);
        }
    }

    /// features [b, feature_dim] → logit [b].
    pub fn forward_head(&self, features: &Tensor) -> Tensor {
        features.apply(&self.fc1).squeeze_dim(1)
    }
}

impl ModuleT for ResNet {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        self.forward_head(&self.forward_features(x, train))
    }
}
