//! Parity with PyTorch: tests/parity/reference_npr.py builds the same networks
//! independently (from ARCHITECTURE.md, Model, and the official NPR code), loads our weights and must
//! reproduce our logits within 1e-4 (max abs); and official `torch.save` checkpoints load
//! through our reader and give PyTorch's logits.
use std::collections::BTreeMap;

use npr::checkpoint::{load_model, model_tensors, write_safetensors_atomic};
use npr::config::{Backbone, Fusion, ModelConfig, Squeeze};
use npr::model::Detector;
use tch::{nn, Device, Kind, Tensor};

use crate::common::run_python;

const TOL: f64 = 1e-4;

/// Non-trivial values for every variable: BN statistics and affine parameters are not left
/// at 0/1, and the fusion parameters are random, so a wrong name or order shows.
fn randomize(vs: &nn::VarStore) {
    tch::no_grad(|| {
        for (name, mut t) in vs.variables() {
            let n = t.size();
            let fresh = if name.ends_with("running_var") {
                Tensor::rand(&n, (Kind::Float, Device::Cpu)) + 1.0
            } else if name.ends_with("running_mean")
                || name.ends_with("bn1.bias")
                || name.contains("bn") && name.ends_with("bias")
            {
                Tensor::randn(&n, (Kind::Float, Device::Cpu)) * 0.1
            } else if name.contains("bn") && name.ends_with("weight")
                || name.contains("downsample.1.weight")
            {
                Tensor::rand(&n, (Kind::Float, Device::Cpu)) * 0.5 + 0.5
            } else if name.starts_with("scale_") {
                Tensor::randn(&n, (Kind::Float, Device::Cpu))
            } else {
                continue;
            };
            t.copy_(&fresh);
        }
    });
}

fn squeeze_name(s: Squeeze) -> &'static str {
    match s {
        Squeeze::Avg => "avg",
        Squeeze::AbsAvg => "abs_avg",
        Squeeze::Rms => "rms",
    }
}

#[test]
fn logits_match_an_independent_pytorch_implementation() {
    let dir = tempfile::tempdir().unwrap();
    let all = vec![0.25, 0.5, 0.75, 1.0];
    let mut models: Vec<(Backbone, Fusion, Vec<f64>, Squeeze)> = vec![
        (
            Backbone::NprResnet50,
            Fusion::Single,
            vec![0.5],
            Squeeze::Avg,
        ),
        (
            Backbone::NprResnet50,
            Fusion::Attention,
            all.clone(),
            Squeeze::Avg,
        ),
        (
            Backbone::NprResnet50,
            Fusion::Attention,
            all.clone(),
            Squeeze::AbsAvg,
        ),
        (
            Backbone::NprResnet50,
            Fusion::Attention,
            all.clone(),
            Squeeze::Rms,
        ),
        (
            Backbone::NprResnet50,
            Fusion::Equal,
            all.clone(),
            Squeeze::Avg,
        ),
        (
            Backbone::NprResnet50,
            Fusion::Learned,
            all.clone(),
            Squeeze::Avg,
        ),
    ];
    for fusion in [
        Fusion::Single,
        Fusion::Attention,
        Fusion::Equal,
        Fusion::Learned,
    ] {
        let scales = if fusion == Fusion::Single {
            vec![0.5]
        } else {
            all.clone()
        };
        models.push((Backbone::Resnet18, fusion, scales, Squeeze::Avg));
    }
    let mut cases = Vec::new();
    let mut ours = BTreeMap::new();
    for (i, (backbone, fusion, scales, squeeze)) in models.into_iter().enumerate() {
        for (h, w) in [(32, 32), (33, 35)] {
            tch::manual_seed(i as i64);
            let mut config = ModelConfig {
                backbone,
                fusion,
                scales: scales.clone(),
                ..Default::default()
            };
            config.attention.squeeze = squeeze;
            let vs = nn::VarStore::new(Device::Cpu);
            let det = Detector::new(&vs.root(), &config);
            randomize(&vs);
            let x = Tensor::randn([3, 3, h, w], (Kind::Float, Device::Cpu));
            let logit = tch::no_grad(|| det.forward_t(&x, false).logit);
            let name = format!("{backbone}_{fusion}_{}_{h}x{w}", squeeze_name(squeeze));
            let weights = dir.path().join(format!("{name}.weights.safetensors"));
            write_safetensors_atomic(&weights, &model_tensors(&vs), &BTreeMap::new()).unwrap();
            let io = dir.path().join(format!("{name}.io.safetensors"));
            let tensors = [
                ("input".to_string(), x),
                ("logit".to_string(), logit.shallow_clone()),
            ];
            write_safetensors_atomic(&io, &tensors, &BTreeMap::new()).unwrap();
            cases.push(serde_json::json!({
                "name": name, "backbone": backbone.to_string(), "fusion": fusion.to_string(),
                "scales": scales, "squeeze": squeeze_name(squeeze),
                "reduction": config.attention.reduction, "gain": config.npr_gain,
            }));
            ours.insert(name, logit.abs().max().double_value(&[]));
        }
    }
    std::fs::write(
        dir.path().join("cases.json"),
        serde_json::to_string(&cases).unwrap(),
    )
    .unwrap();
    let out = run_python(
        "tests/parity/reference_npr.py",
        &["compare", dir.path().to_str().unwrap()],
    );
    let results: Vec<serde_json::Value> = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(results.len(), cases.len());
    for r in &results {
        let name = r["name"].as_str().unwrap();
        let diff = r["max_abs_diff"].as_f64().unwrap();
        assert!(
            diff.abs() < TOL,
            "{name}: max |Δlogit| = {diff} (|logit| up to {})",
            ours[name]
        );
        assert_eq!(
            r["missing"].as_array().unwrap().len(),
            0,
            "{name}: PyTorch misses {:?}",
            r["missing"]
        );
        assert_eq!(
            r["unexpected"].as_array().unwrap().len(),
            0,
            "{name}: unexpected {:?}",
            r["unexpected"]
        );
    }
}

#[test]
fn official_torch_checkpoints_load_flat_and_wrapped() {
    let dir = tempfile::tempdir().unwrap();
    run_python(
        "tests/parity/reference_npr.py",
        &["official", dir.path().to_str().unwrap()],
    );
    let (io, _) =
        npr::checkpoint::read_safetensors(&dir.path().join("official.io.safetensors")).unwrap();
    for file in ["flat.pth", "wrapped.pth"] {
        let model = load_model(&dir.path().join(file), Device::Cpu).unwrap();
        assert!(model.report.is_clean(), "{file}: {}", model.report);
        assert_eq!(model.config.model.fusion, Fusion::Single);
        let logit = tch::no_grad(|| model.detector.forward_t(&io["input"], false).logit);
        let diff = (logit - &io["logit"]).abs().max().double_value(&[]);
        assert!(diff.abs() < TOL, "{file}: max |Δlogit| = {diff}");
    }
}
