//! Our Adam equals `torch.optim.Adam` step by step (tests/parity/adam_reference.py).
use std::collections::BTreeMap;

use npr::checkpoint::write_safetensors_atomic;
use npr::train::adam::Adam;
use tch::{Device, Kind, Tensor};

use crate::common::run_python;

#[test]
fn adam_matches_torch_optim_adam() {
    let dir = tempfile::tempdir().unwrap();
    for (case, weight_decay) in [(0, 0.0), (1, 0.01)] {
        tch::manual_seed(case);
        let shapes: [&[i64]; 3] = [&[4, 3], &[5], &[2, 2, 2]];
        let names = ["a", "b", "c"];
        let params: Vec<Tensor> = shapes
            .iter()
            .map(|s| Tensor::randn(*s, (Kind::Float, Device::Cpu)).set_requires_grad(true))
            .collect();
        let mut saved: Vec<(String, Tensor)> = names
            .iter()
            .zip(&params)
            .map(|(n, p)| (format!("init.{n}"), p.detach().copy()))
            .collect();
        let (lr, betas, eps, steps) = (1e-2, (0.9, 0.999), 1e-8, 6);
        let mut adam = Adam::new(
            names
                .iter()
                .zip(&params)
                .map(|(n, p)| (n.to_string(), p.shallow_clone(), 0))
                .collect(),
            lr,
            betas,
            eps,
            weight_decay,
            vec![1.0],
        );
        for step in 0..steps {
            adam.zero_grad();
            // loss = Σ p·g has gradient g: any gradient can be fed this way.
            let grads: Vec<Tensor> = params
                .iter()
                .map(|p| Tensor::randn(p.size(), (Kind::Float, Device::Cpu)))
                .collect();
            let loss = params
                .iter()
                .zip(&grads)
                .map(|(p, g)| (p * g).sum(Kind::Float))
                .fold(Tensor::from(0f32), |a, b| a + b);
            loss.backward();
            adam.step();
            for ((n, p), g) in names.iter().zip(&params).zip(&grads) {
                saved.push((format!("grad{step}.{n}"), g.copy()));
                saved.push((format!("ours{step}.{n}"), p.detach().copy()));
            }
        }
        let file = dir.path().join(format!("adam{case}.safetensors"));
        write_safetensors_atomic(&file, &saved, &BTreeMap::new()).unwrap();
        let cfg = serde_json::json!({"lr": lr, "betas": [betas.0, betas.1], "eps": eps, "weight_decay": weight_decay, "steps": steps});
        let out = run_python(
            "tests/parity/adam_reference.py",
            &[file.to_str().unwrap(), &cfg.to_string()],
        );
        let diffs: Vec<f64> = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(diffs.len(), steps);
        for (step, d) in diffs.iter().enumerate() {
            assert!(
                d.abs() < 1e-6,
                "weight decay {weight_decay}, step {step}: max |Δp| = {d}"
            );
        }
    }
}
