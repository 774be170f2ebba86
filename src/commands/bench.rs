//! `npr bench`: throughput figures (BENCHMARKS.md), measured, never assumed.
//!
//! Without `--loader`: for the baseline (single-scale NPR) and the attention model, the
//! training step (forward + backward + Adam) and inference on device-resident random
//! tensors, at `--crop-size` and `--batch-size`, fp32 or bf16 autocast (`--amp`).
use std::time::Instant;

use anyhow::Result;
use tch::{nn, Device, Kind, Tensor};

use crate::cli::BenchArgs;
use crate::config::{Config, Fusion, ModelConfig};
use crate::model::detector::{parse_device, trainable_parameters};
use crate::model::Detector;
use crate::train::adam::Adam;
use crate::train::step::train_step;

pub fn run(args: &BenchArgs) -> Result<()> {
    if args.loader {
        return loader(args);
    }
    let device = parse_device(&args.device.device)?;
    println!(
        "device {device:?}, batch {}, {}×{} px, {}, {} timed steps after 3 warm-up steps",
        args.batch_size,
        args.crop_size,
        args.crop_size,
        if args.amp && device.is_cuda() {
            "bf16 autocast"
        } else {
            "fp32"
        },
        args.steps
    );
    println!(
        "{:<10} {:>12} {:>16} {:>16}",
        "model", "parameters", "train img/s", "infer img/s"
    );
    for (name, config) in models() {
        let r = time_model(&config.model, device, &BenchSize::of(args))?;
        println!(
            "{name:<10} {:>12} {:>16.1} {:>16.1}",
            r.parameters, r.train_ips, r.infer_ips
        );
    }
    Ok(())
}

fn models() -> Vec<(&'static str, Config)> {
    let baseline = crate::checkpoint::official_npr_config();
    let mut attention = Config::default();
    attention.model.fusion = Fusion::Attention;
    vec![("baseline", baseline), ("attention", attention)]
}

/// What is timed: batches of random `crop`² images, `steps` steps after 3 warm-up steps.
pub struct BenchSize {
    pub batch: usize,
    pub crop: u32,
    pub steps: usize,
    /// bf16 autocast (CUDA only).
    pub amp: bool,
}

impl BenchSize {
    fn of(args: &BenchArgs) -> Self {
        BenchSize {
            batch: args.batch_size,
            crop: args.crop_size,
            steps: args.steps,
            amp: args.amp,
        }
    }
}

pub struct ModelBench {
    pub parameters: i64,
    /// Training steps (forward, backward, Adam) and inference, images per second.
    pub train_ips: f64,
    pub infer_ips: f64,
}

fn sync(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}

/// Times one model on device-resident random tensors (no loader).
pub fn time_model(config: &ModelConfig, device: Device, size: &BenchSize) -> Result<ModelBench> {
    tch::manual_seed(0);
    let vs = nn::VarStore::new(device);
    let model = Detector::new(&vs.root(), config);
    let params = vs
        .variables()
        .into_iter()
        .filter(|(_, t)| t.requires_grad())
        .map(|(n, t)| (n, t, 0))
        .collect();
    let mut adam = Adam::new(params, 2e-4, (0.9, 0.999), 1e-8, 0.0, vec![1.0]);
    let (b, s) = (size.batch as i64, size.crop as i64);
    let x = Tensor::randn([b, 3, s, s], (Kind::Float, device));
    let y = Tensor::randint(2, [b], (Kind::Float, device));
    let timed = |f: &mut dyn FnMut()| {
        for _ in 0..3 {
            f();
        }
        sync(device);
        let t = Instant::now();
        for _ in 0..size.steps {
            f();
        }
        sync(device);
        (size.steps as f64 * b as f64) / t.elapsed().as_secs_f64()
    };
    let train_ips = crate::amp::bf16_autocast(size.amp, device, || {
        timed(&mut || {
            let _ = train_step(&model, &mut adam, &x, &y);
        })
    });
    let infer_ips = crate::amp::bf16_autocast(size.amp, device, || {
        tch::no_grad(|| {
            timed(&mut || {
                let _ = model.forward_t(&x, false).logit.sigmoid();
            })
        })
    });
    Ok(ModelBench {
        parameters: trainable_parameters(&vs),
        train_ips,
        infer_ips,
    })
}

fn loader(args: &BenchArgs) -> Result<()> {
    let Some(root) = &args.dataroot else {
        return Err(crate::usage!(
            "--loader needs --dataroot DIR (a folder of labelled images)"
        ));
    };
    let r = crate::data::bench_loader(
        root,
        args.workers,
        args.batch_size,
        args.load_size,
        args.crop_size,
        args.images,
    )?;
    println!(
        "loader: {} images in {:.2}s with {} workers ({}→{} px, batch {})",
        r.images, r.seconds, args.workers, args.load_size, args.crop_size, args.batch_size
    );
    println!("loader images/s: {:.1}", r.images_per_s);
    Ok(())
}
