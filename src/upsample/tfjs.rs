//! A TensorFlow.js layers model (`model.json` + float32 weight shards, as the TF.js
//! converter writes a Keras functional model) run directly on tch.
//!
//! `model.json` holds the Keras graph (`modelTopology.model_config`: layers, each with its
//! config and the layers it reads) and `weightsManifest`: groups of shard files whose
//! concatenated bytes are the listed weights, in order, little-endian float32. Keras works
//! in NHWC (`data_format: channels_last`); this module runs in NCHW, so
//!
//! - a Conv2D kernel `[kh, kw, c_in, c_out]` becomes `[c_out, c_in, kh, kw]`,
//! - `Concatenate` on axis 3 (or −1) concatenates channels (dim 1),
//! - `PixelShuffle{r}x` (TF's `depthToSpace(x, r, 'NHWC')`, which reads input channel
//!   `(i·r + j)·C + c` into output pixel `(h·r + i, w·r + j)`, channel `c`) permutes
//!   channels accordingly; torch's `pixel_shuffle` orders them `c·r² + i·r + j` instead.
//!
//! Supported layers: `InputLayer`, `Conv2D` (any kernel, stride, dilation; padding `same`
//! with TF's split — the extra pixel after, not before — or `valid`; activation `linear` or
//! `relu`; `groups` 1), `Activation` (`relu`, `linear`), `Concatenate`, `Add`,
//! `UpSampling2D` (`nearest`), and the two custom layers of UpscalerJS's ESRGAN packages
//! (`packages/shared/src/esrgan/esrgan.ts`): `MultiplyBeta` (`x · beta`) and
//! `PixelShuffle{r}x`. Any other layer type or setting is an error naming the layer, so a
//! model this code cannot run exactly is refused rather than run approximately.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use serde::Deserialize;
use tch::{Kind, Tensor};

/// The parts of `model.json` this module reads (other keys are ignored).
#[derive(Deserialize)]
struct ModelJson {
    #[serde(rename = "modelTopology")]
    topology: Topology,
    #[serde(rename = "weightsManifest")]
    weights_manifest: Vec<WeightGroup>,
}

#[derive(Deserialize)]
struct Topology {
    model_config: ModelConfig,
}

#[derive(Deserialize)]
struct ModelConfig {
    class_name: String,
    config: GraphConfig,
}

#[derive(Deserialize)]
struct GraphConfig {
    layers: Vec<LayerJson>,
    input_layers: Vec<(String, i64, i64)>,
    output_layers: Vec<(String, i64, i64)>,
}

#[derive(Deserialize)]
struct LayerJson {
    class_name: String,
    name: String,
    config: serde_json::Value,
    /// One entry per call of the layer; each lists `[layer, node index, tensor index, kwargs]`.
    inbound_nodes: Vec<Vec<(String, i64, i64, serde_json::Value)>>,
}

#[derive(Deserialize)]
struct WeightGroup {
    paths: Vec<String>,
    weights: Vec<WeightSpec>,
}

#[derive(Deserialize)]
struct WeightSpec {
    name: String,
    shape: Vec<i64>,
    dtype: String,
    #[serde(default)]
    quantization: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Conv2dConfig {
    filters: i64,
    kernel_size: [i64; 2],
    strides: [i64; 2],
    padding: String,
    data_format: String,
    dilation_rate: [i64; 2],
    #[serde(default = "one")]
    groups: i64,
    activation: String,
    use_bias: bool,
}

fn one() -> i64 {
    1
}

#[derive(Deserialize)]
struct ActivationConfig {
    activation: String,
}

#[derive(Deserialize)]
struct ConcatenateConfig {
    axis: i64,
}

#[derive(Deserialize)]
struct UpSampling2dConfig {
    size: [i64; 2],
    data_format: String,
    #[serde(default = "nearest")]
    interpolation: String,
}

fn nearest() -> String {
    "nearest".into()
}

#[derive(Deserialize)]
struct MultiplyBetaConfig {
    beta: f64,
}

#[derive(Deserialize)]
struct PixelShuffleConfig {
    scale: i64,
}

#[derive(Deserialize)]
struct InputLayerConfig {
    batch_input_shape: Vec<Option<i64>>,
}

/// One operation of the graph, in NCHW.
#[derive(Debug)]
enum Op {
    Input,
    Conv2d(Conv2d),
    Relu,
    Identity,
    Concat,
    Add,
    /// Nearest-neighbour up-sampling by (rows, columns).
    UpNearest(i64, i64),
    Scale(f64),
    /// TF's depth-to-space in NHWC order, by this factor.
    DepthToSpace(i64),
}

#[derive(Debug)]
struct Conv2d {
    /// `[c_out, c_in, kh, kw]`
    weight: Tensor,
    bias: Option<Tensor>,
    stride: [i64; 2],
    dilation: [i64; 2],
    same: bool,
    relu: bool,
}

impl Conv2d {
    fn forward(&self, x: &Tensor) -> Tensor {
        let (_, _, h, w) = x.size4().expect("[b, c, h, w]");
        let (_, _, kh, kw) = self.weight.size4().expect("[c_out, c_in, kh, kw]");
        let mut pads = [0i64; 4]; // left, right, top, bottom (constant_pad_nd's order)
        if self.same {
            let (top, bottom) = same_padding(h, kh, self.stride[0], self.dilation[0]);
            let (left, right) = same_padding(w, kw, self.stride[1], self.dilation[1]);
            pads = [left, right, top, bottom];
        }
        let y = if pads[0] == pads[1] && pads[2] == pads[3] {
            x.conv2d(
                &self.weight,
                self.bias.as_ref(),
                self.stride,
                [pads[2], pads[0]],
                self.dilation,
                1,
            )
        } else {
            x.constant_pad_nd(pads).conv2d(
                &self.weight,
                self.bias.as_ref(),
                self.stride,
                [0, 0],
                self.dilation,
                1,
            )
        };
        if self.relu {
            y.relu()
        } else {
            y
        }
    }
}

/// TF's `padding='same'`: the output has ⌈n / stride⌉ pixels; the padding that takes is
/// split with the odd pixel after (bottom/right).
fn same_padding(n: i64, k: i64, stride: i64, dilation: i64) -> (i64, i64) {
    let out = (n + stride - 1) / stride;
    let total = ((out - 1) * stride + (k - 1) * dilation + 1 - n).max(0);
    (total / 2, total - total / 2)
}

#[derive(Debug)]
struct Node {
    name: String,
    op: Op,
    /// Indices of the nodes it reads, in order.
    inputs: Vec<usize>,
}

/// A loaded TF.js layers model.
#[derive(Debug)]
pub struct TfjsModel {
    nodes: Vec<Node>,
    output: usize,
    /// Channels the input layer declares (3 for RGB).
    in_channels: i64,
    /// For each node, the last node that reads it (so its tensor can be dropped after).
    last_use: Vec<usize>,
    path: PathBuf,
}

impl TfjsModel {
    /// Loads `dir/model.json` and its weight shards.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join("model.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {} (run scripts/get_photos.sh)", path.display()))?;
        let json: ModelJson = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a TF.js layers model", path.display()))?;
        let mut weights = read_weights(dir, &json.weights_manifest)
            .with_context(|| format!("reading the weights of {}", path.display()))?;
        let model = build(json.topology.model_config, &mut weights, path.clone())
            .with_context(|| format!("loading {}", path.display()))?;
        if let Some(unused) = weights.keys().next() {
            bail!("{}: weight {unused} belongs to no layer", path.display());
        }
        Ok(model)
    }

    /// The factor by which the graph enlarges its input (product of its up-sampling layers).
    pub fn upscale_factor(&self) -> (i64, i64) {
        self.nodes.iter().fold((1, 1), |(a, b), n| match n.op {
            Op::UpNearest(r, c) => (a * r, b * c),
            Op::DepthToSpace(r) => (a * r, b * r),
            Op::Conv2d(ref c) => (a / c.stride[0], b / c.stride[1]),
            _ => (a, b),
        })
    }

    /// Runs the graph on `x`: [b, c, h, w] float, in whatever range the model was trained on.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (_, c, _, _) = x.size4().context("the input must be [b, c, h, w]")?;
        ensure!(
            c == self.in_channels,
            "{} takes {} channels, got {c}",
            self.path.display(),
            self.in_channels
        );
        let mut values: Vec<Option<Tensor>> = (0..self.nodes.len()).map(|_| None).collect();
        for (i, node) in self.nodes.iter().enumerate() {
            let arg = |k: usize| values[node.inputs[k]].as_ref().expect("inputs come first");
            let y = match &node.op {
                Op::Input => x.to_kind(Kind::Float),
                Op::Conv2d(conv) => conv.forward(arg(0)),
                Op::Relu => arg(0).relu(),
                Op::Identity => arg(0).shallow_clone(),
                Op::Concat => {
                    let parts: Vec<&Tensor> = (0..node.inputs.len()).map(arg).collect();
                    Tensor::cat(&parts, 1)
                }
                Op::Add => {
                    (1..node.inputs.len()).fold(arg(0).shallow_clone(), |acc, k| acc + arg(k))
                }
                Op::UpNearest(r, c) => {
                    let (_, _, h, w) = arg(0).size4()?;
                    arg(0).upsample_nearest2d([h * r, w * c], None, None)
                }
                Op::Scale(beta) => arg(0) * *beta,
                Op::DepthToSpace(r) => depth_to_space_nhwc(arg(0), *r)
                    .with_context(|| format!("layer {}", node.name))?,
            };
            values[i] = Some(y);
            for &k in &node.inputs {
                if self.last_use[k] == i && k != self.output {
                    values[k] = None;
                }
            }
        }
        Ok(values[self.output].take().expect("the output is computed"))
    }
}

/// TF's `depthToSpace(x, r, 'NHWC')` on an NCHW tensor: output channel c at pixel
/// (h·r + i, w·r + j) is input channel (i·r + j)·C + c at (h, w).
fn depth_to_space_nhwc(x: &Tensor, r: i64) -> Result<Tensor> {
    let (b, c, h, w) = x.size4()?;
    ensure!(
        c % (r * r) == 0,
        "depth-to-space by {r} needs a multiple of {} channels, got {c}",
        r * r
    );
    let out_c = c / (r * r);
    Ok(x.view([b, r, r, out_c, h, w]) // [b, i, j, c, h, w]
        .permute([0, 3, 4, 1, 5, 2]) // [b, c, h, i, w, j]
        .reshape([b, out_c, h * r, w * r]))
}

/// Every weight of the manifest by name, as a float tensor of its listed shape.
fn read_weights(dir: &Path, groups: &[WeightGroup]) -> Result<HashMap<String, Tensor>> {
    let mut out = HashMap::new();
    for group in groups {
        let mut bytes = Vec::new();
        for shard in &group.paths {
            let p = dir.join(shard);
            bytes.extend(std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?);
        }
        let mut offset = 0usize;
        for spec in &group.weights {
            ensure!(
                spec.dtype == "float32" && spec.quantization.is_none(),
                "weight {} is {}{}; only unquantized float32 weights are supported",
                spec.name,
                spec.dtype,
                if spec.quantization.is_some() {
                    " (quantized)"
                } else {
                    ""
                }
            );
            let n: i64 = spec.shape.iter().product();
            let end = offset + 4 * n as usize;
            ensure!(
                end <= bytes.len(),
                "the shards end at byte {} but weight {} needs bytes {offset}..{end}",
                bytes.len(),
                spec.name
            );
            let values: Vec<f32> = bytes[offset..end]
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            out.insert(
                spec.name.clone(),
                Tensor::from_slice(&values).view(spec.shape.as_slice()),
            );
            offset = end;
        }
        ensure!(
            offset == bytes.len(),
            "the shards {:?} hold {} bytes but the manifest lists {offset}",
            group.paths,
            bytes.len()
        );
    }
    Ok(out)
}

fn config<T: serde::de::DeserializeOwned>(layer: &LayerJson) -> Result<T> {
    serde_json::from_value(layer.config.clone())
        .with_context(|| format!("the config of {} layer {}", layer.class_name, layer.name))
}

fn build(
    model: ModelConfig,
    weights: &mut HashMap<String, Tensor>,
    path: PathBuf,
) -> Result<TfjsModel> {
    ensure!(
        matches!(model.class_name.as_str(), "Functional" | "Model"),
        "a {} model; only Keras functional models are supported",
        model.class_name
    );
    let graph = model.config;
    ensure!(
        graph.input_layers.len() == 1 && graph.output_layers.len() == 1,
        "{} inputs and {} outputs; one of each is supported",
        graph.input_layers.len(),
        graph.output_layers.len()
    );
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut nodes = Vec::with_capacity(graph.layers.len());
    let mut in_channels = 0;
    for layer in &graph.layers {
        let name = &layer.name;
        ensure!(
            layer.inbound_nodes.len() <= 1,
            "layer {name} is called {} times; shared layers are not supported",
            layer.inbound_nodes.len()
        );
        let mut inputs = Vec::new();
        for (src, node, tensor, _) in layer.inbound_nodes.first().into_iter().flatten() {
            ensure!(*node == 0 && *tensor == 0, "layer {name} reads output {node}/{tensor} of {src}; only single-output layers are supported");
            let &k = index.get(src).with_context(|| {
                format!("layer {name} reads {src}, which comes later or does not exist")
            })?;
            inputs.push(k);
        }
        let arity = |n: usize| -> Result<()> {
            ensure!(
                inputs.len() == n,
                "{} layer {name} takes {n} inputs, got {}",
                layer.class_name,
                inputs.len()
            );
            Ok(())
        };
        let op = match layer.class_name.as_str() {
            "InputLayer" => {
                arity(0)?;
                let c: InputLayerConfig = config(layer)?;
                in_channels = c.batch_input_shape.last().copied().flatten().unwrap_or(0);
                ensure!(
                    c.batch_input_shape.len() == 4 && in_channels > 0,
                    "input layer {name} has shape {:?}; [batch, h, w, channels] with known channels is supported",
                    c.batch_input_shape
                );
                Op::Input
            }
            "Conv2D" => {
                arity(1)?;
                Op::Conv2d(conv2d(layer, config(layer)?, weights)?)
            }
            "Activation" => {
                arity(1)?;
                let c: ActivationConfig = config(layer)?;
                match c.activation.as_str() {
                    "relu" => Op::Relu,
                    "linear" => Op::Identity,
                    other => bail!("activation {other} of layer {name} is not supported (relu, linear)"),
                }
            }
            "Concatenate" => {
                ensure!(inputs.len() >= 2, "Concatenate layer {name} has {} inputs", inputs.len());
                let c: ConcatenateConfig = config(layer)?;
                ensure!(
                    c.axis == 3 || c.axis == -1,
                    "Concatenate layer {name} on axis {}; only the channel axis (3 or -1) is supported",
                    c.axis
                );
                Op::Concat
            }
            "Add" => {
                ensure!(inputs.len() >= 2, "Add layer {name} has {} inputs", inputs.len());
                Op::Add
            }
            "UpSampling2D" => {
                arity(1)?;
                let c: UpSampling2dConfig = config(layer)?;
                ensure!(
                    c.data_format == "channels_last" && c.interpolation == "nearest",
                    "UpSampling2D layer {name} is {} with {} interpolation; only channels_last nearest is supported",
                    c.data_format,
                    c.interpolation
                );
                Op::UpNearest(c.size[0], c.size[1])
            }
            "MultiplyBeta" => {
                arity(1)?;
                let c: MultiplyBetaConfig = config(layer)?;
                Op::Scale(c.beta)
            }
            class if class.starts_with("PixelShuffle") => {
                arity(1)?;
                let c: PixelShuffleConfig = config(layer)?;
                ensure!(
                    class == format!("PixelShuffle{}x", c.scale),
                    "layer {name} is a {class} with scale {}",
                    c.scale
                );
                Op::DepthToSpace(c.scale)
            }
            other => bail!(
                "layer {name} is of type {other}, which is not supported \
                 (InputLayer, Conv2D, Activation, Concatenate, Add, UpSampling2D, MultiplyBeta, PixelShuffleNx)"
            ),
        };
        index.insert(name.clone(), nodes.len());
        nodes.push(Node {
            name: name.clone(),
            op,
            inputs,
        });
    }
    let lookup = |(name, _, _): &(String, i64, i64)| {
        index
            .get(name)
            .copied()
            .with_context(|| format!("the model's input/output {name} is not a layer"))
    };
    let input = lookup(&graph.input_layers[0])?;
    let output = lookup(&graph.output_layers[0])?;
    ensure!(
        matches!(nodes[input].op, Op::Input),
        "the model's input {} is not an InputLayer",
        nodes[input].name
    );
    let n_inputs = nodes.iter().filter(|n| matches!(n.op, Op::Input)).count();
    ensure!(n_inputs == 1, "{n_inputs} InputLayers; one is supported");
    let mut last_use: Vec<usize> = (0..nodes.len()).collect();
    for (i, node) in nodes.iter().enumerate() {
        for &k in &node.inputs {
            last_use[k] = i;
        }
    }
    Ok(TfjsModel {
        nodes,
        output,
        in_channels,
        last_use,
        path,
    })
}

fn conv2d(
    layer: &LayerJson,
    c: Conv2dConfig,
    weights: &mut HashMap<String, Tensor>,
) -> Result<Conv2d> {
    let name = &layer.name;
    ensure!(
        c.data_format == "channels_last",
        "Conv2D layer {name} is {}; only channels_last is supported",
        c.data_format
    );
    ensure!(
        c.groups == 1,
        "Conv2D layer {name} has groups = {}; only 1 is supported",
        c.groups
    );
    let same = match c.padding.as_str() {
        "same" => true,
        "valid" => false,
        other => {
            bail!("Conv2D layer {name} has padding {other}; only same and valid are supported")
        }
    };
    let relu = match c.activation.as_str() {
        "linear" => false,
        "relu" => true,
        other => {
            bail!("Conv2D layer {name} has activation {other}; only linear and relu are supported")
        }
    };
    ensure!(
        c.strides.iter().chain(&c.dilation_rate).all(|&v| v >= 1),
        "Conv2D layer {name} has strides {:?} and dilation {:?}",
        c.strides,
        c.dilation_rate
    );
    let kernel = weights
        .remove(&format!("{name}/kernel"))
        .with_context(|| format!("no weight {name}/kernel"))?;
    let want = [c.kernel_size[0], c.kernel_size[1]];
    let got = kernel.size();
    ensure!(
        got.len() == 4 && got[..2] == want && got[3] == c.filters,
        "{name}/kernel has shape {got:?}; the layer's config says {want:?} × c_in × {}",
        c.filters
    );
    let weight = kernel.permute([3, 2, 0, 1]).contiguous(); // [kh, kw, c_in, c_out] → [c_out, c_in, kh, kw]
    let bias = if c.use_bias {
        let b = weights
            .remove(&format!("{name}/bias"))
            .with_context(|| format!("no weight {name}/bias"))?;
        ensure!(
            b.size() == [c.filters],
            "{name}/bias has shape {:?}, expected [{}]",
            b.size(),
            c.filters
        );
        Some(b)
    } else {
        None
    };
    Ok(Conv2d {
        weight,
        bias,
        stride: c.strides,
        dilation: c.dilation_rate,
        same,
        relu,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_padding_follows_tensorflow() {
        // (n, k, stride, dilation) → (before, after), from TF's rule out = ⌈n/s⌉.
        for (n, k, s, d, want) in [
            (8, 3, 1, 1, (1, 1)),
            (8, 5, 1, 1, (2, 2)),
            (8, 1, 1, 1, (0, 0)),
            (8, 4, 1, 1, (1, 2)),
            (8, 3, 2, 1, (0, 1)),
            (7, 3, 2, 1, (1, 1)),
            (8, 3, 1, 2, (2, 2)),
        ] {
            assert_eq!(same_padding(n, k, s, d), want, "n={n} k={k} s={s} d={d}");
        }
    }

    #[test]
    fn depth_to_space_matches_the_nhwc_definition() {
        let (r, c, h, w) = (2i64, 3i64, 2i64, 3i64);
        let x = Tensor::arange(r * r * c * h * w, (Kind::Float, tch::Device::Cpu)).view([
            1,
            r * r * c,
            h,
            w,
        ]);
        let y = depth_to_space_nhwc(&x, r).unwrap();
        assert_eq!(y.size(), [1, c, h * r, w * r]);
        for (ch, hh, ww, i, j) in [
            (0, 0, 0, 0, 0),
            (2, 1, 2, 1, 1),
            (1, 0, 1, 1, 0),
            (2, 1, 0, 0, 1),
        ] {
            let got = y.double_value(&[0, ch, hh * r + i, ww * r + j]);
            let want = x.double_value(&[0, (i * r + j) * c + ch, hh, ww]);
            assert_eq!(got, want, "c={ch} h={hh} w={ww} i={i} j={j}");
        }
    }

    /// A two-layer graph written out as TF.js files, with one setting swapped in.
    fn write_model(dir: &Path, layer_class: &str, extra_config: serde_json::Value) {
        let kernel: Vec<f32> = (0..3 * 3 * 3 * 2).map(|i| i as f32 * 0.01).collect();
        let bias = [0.5f32, -0.5];
        let mut bytes: Vec<u8> = kernel.iter().flat_map(|v| v.to_le_bytes()).collect();
        bytes.extend(bias.iter().flat_map(|v| v.to_le_bytes()));
        std::fs::write(dir.join("w.bin"), bytes).unwrap();
        let mut conv = serde_json::json!({
            "name": "c", "filters": 2, "kernel_size": [3, 3], "strides": [1, 1], "padding": "same",
            "data_format": "channels_last", "dilation_rate": [1, 1], "groups": 1,
            "activation": "linear", "use_bias": true
        });
        for (k, v) in extra_config.as_object().unwrap() {
            conv[k] = v.clone();
        }
        let model = serde_json::json!({
            "format": "layers-model",
            "modelTopology": {"model_config": {"class_name": "Functional", "config": {
                "name": "m",
                "layers": [
                    {"class_name": "InputLayer", "name": "in", "inbound_nodes": [],
                     "config": {"batch_input_shape": [null, null, null, 3], "name": "in"}},
                    {"class_name": layer_class, "name": "c", "config": conv,
                     "inbound_nodes": [[["in", 0, 0, {}]]]}
                ],
                "input_layers": [["in", 0, 0]], "output_layers": [["c", 0, 0]]
            }}},
            "weightsManifest": [{"paths": ["w.bin"], "weights": [
                {"name": "c/kernel", "shape": [3, 3, 3, 2], "dtype": "float32"},
                {"name": "c/bias", "shape": [2], "dtype": "float32"}
            ]}]
        });
        std::fs::write(dir.join("model.json"), model.to_string()).unwrap();
    }

    /// TF's Conv2D at one output pixel, written out: input `arange` of shape [3, 4, 5]
    /// (x[c, r, q] = 20c + 5r + q, zero outside), kernel[i] = 0.01 × its flat index in
    /// [3, 3, 3, 2], bias [0.5, −0.5]; (pad_top, pad_left) from TF's 'same' rule.
    fn tf_conv_at(r: i64, q: i64, filter: i64, stride: i64, dilation: i64, pad: (i64, i64)) -> f64 {
        let mut acc = [0.5, -0.5][filter as usize];
        for di in 0..3 {
            for dj in 0..3 {
                let (row, col) = (
                    r * stride + di * dilation - pad.0,
                    q * stride + dj * dilation - pad.1,
                );
                if !(0..4).contains(&row) || !(0..5).contains(&col) {
                    continue;
                }
                for c in 0..3 {
                    let k = (((di * 3 + dj) * 3 + c) * 2 + filter) as f64 * 0.01;
                    acc += (c * 20 + row * 5 + col) as f64 * k;
                }
            }
        }
        acc
    }

    #[test]
    fn a_conv_runs_like_tensorflow_at_every_pixel() {
        // (strides, dilation, output size, TF's (pad_top, pad_left)): stride 1 pads 1 on
        // each side; stride 2 on 4 rows pads (0 before, 1 after), on 5 columns (1, 1);
        // dilation 2 pads 2 on each side.
        for (stride, dilation, (oh, ow), pad) in [
            (1, 1, (4, 5), (1, 1)),
            (2, 1, (2, 3), (0, 1)),
            (1, 2, (4, 5), (2, 2)),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let extra = serde_json::json!({"strides": [stride, stride], "dilation_rate": [dilation, dilation]});
            write_model(dir.path(), "Conv2D", extra);
            let m = TfjsModel::load(dir.path()).unwrap();
            let x = Tensor::arange(3 * 4 * 5, (Kind::Float, tch::Device::Cpu)).view([1, 3, 4, 5]);
            let y = m.forward(&x).unwrap();
            assert_eq!(
                y.size(),
                [1, 2, oh, ow],
                "stride {stride} dilation {dilation}"
            );
            for (f, r, q) in
                (0..2).flat_map(|f| (0..oh).flat_map(move |r| (0..ow).map(move |q| (f, r, q))))
            {
                let got = y.double_value(&[0, f, r, q]);
                let want = tf_conv_at(r, q, f, stride, dilation, pad);
                assert!(
                    (got - want).abs() < 1e-3,
                    "stride {stride} dilation {dilation} at ({f}, {r}, {q}): got {got}, want {want}"
                );
            }
        }
    }

    #[test]
    fn unsupported_layers_and_settings_are_named() {
        for (class, extra, needle) in [
            (
                "SeparableConv2D",
                serde_json::json!({}),
                "layer c is of type SeparableConv2D",
            ),
            (
                "Conv2D",
                serde_json::json!({"padding": "causal"}),
                "padding causal",
            ),
            (
                "Conv2D",
                serde_json::json!({"data_format": "channels_first"}),
                "channels_first",
            ),
            ("Conv2D", serde_json::json!({"groups": 3}), "groups = 3"),
            (
                "Conv2D",
                serde_json::json!({"activation": "tanh"}),
                "activation tanh",
            ),
            (
                "Conv2D",
                serde_json::json!({"filters": 4}),
                "c/kernel has shape",
            ),
        ] {
            let dir = tempfile::tempdir().unwrap();
            write_model(dir.path(), class, extra);
            let err = format!("{:#}", TfjsModel::load(dir.path()).unwrap_err());
            assert!(err.contains(needle), "{class}: {err}");
        }
    }
}
