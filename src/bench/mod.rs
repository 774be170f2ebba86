//! `npr bench`: throughput figures (BENCHMARKS.md), measured, never assumed.
//!
//! Without `--loader`: for the baseline (single-scale NPR) and the attention model, each
//! in a process of its own, the training step (forward + backward + Adam) and inference
//! on device-resident random tensors at `--crop-size` and `--batch-size`, fp32 or bf16
//! autocast (`--amp`); with `--dataroot`, the same end to end from the image files
//! (`bench_pipeline`); and the process's peak memory (`peak_memory`). `--json` writes
//! the figures.
pub mod loader;
pub mod pipeline;

use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use tch::{nn, Device, Kind, Tensor};

use crate::cli::BenchArgs;
use crate::config::{Config, Fusion, ModelConfig};
use crate::model::detector::{parse_device, trainable_parameters};
use crate::model::Detector;
use crate::train::adam::Adam;
use crate::train::step::train_step;
use pipeline::{sync, time_pipeline, PipelineSize};

/// The line a child `npr bench --model NAME` prints its figures on.
const CHILD_LINE: &str = "bench-json: ";

/// One model's figures, measured in a process of its own so that its peak memory is its own.
#[derive(Debug, Serialize, Deserialize)]
pub struct ModelFigures {
    pub model: String,
    pub parameters: i64,
    /// Device-resident random tensors: training step and inference, images/s.
    pub step_train_ips: f64,
    pub step_infer_ips: f64,
    /// Files → loader → device → step / inference, images/s (with `--dataroot`).
    pub e2e_train_ips: Option<f64>,
    pub e2e_test_ips: Option<f64>,
    /// Host resident set: high-water mark, and what was resident before the model existed.
    pub host_peak_mib: Option<f64>,
    pub host_before_mib: Option<f64>,
    /// GPU memory NVML attributes to the process after the timed work (CUDA).
    pub gpu_mib: Option<f64>,
    pub torch_threads: i32,
    /// Decode threads of the end-to-end figures (`--workers` within the thread budget).
    pub loader_threads: usize,
}

pub fn run(args: &BenchArgs) -> Result<()> {
    if args.loader {
        return loader(args);
    }
    let device = parse_device(&args.device.device)?;
    if let Some(name) = &args.model {
        let figures = measure(name, device, args)?;
        println!("{CHILD_LINE}{}", serde_json::to_string(&figures)?);
        return Ok(());
    }
    println!(
        "device {device:?}, batch {}, {}×{} px, {}, {} timed steps after 3 warm-up steps{}; each model in its own process",
        args.batch_size,
        args.crop_size,
        args.crop_size,
        if args.amp && device.is_cuda() {
            "bf16 autocast"
        } else {
            "fp32"
        },
        args.steps,
        match &args.dataroot {
            Some(d) => format!(
                "; end to end: {} images from {} per direction, {} loader threads",
                args.images,
                d.display(),
                args.workers
            ),
            None => String::new(),
        }
    );
    let figures: Vec<ModelFigures> = models()
        .iter()
        .map(|(name, _)| in_child(name))
        .collect::<Result<_>>()?;
    print_table(&figures);
    if let Some(path) = &args.json {
        let json = serde_json::json!({
            "device": format!("{device:?}"),
            "batch_size": args.batch_size,
            "crop_size": args.crop_size,
            "load_size": args.load_size,
            "amp": args.amp && device.is_cuda(),
            "steps": args.steps,
            "dataroot": args.dataroot,
            "images": args.images,
            "workers": args.workers,
            "memory": "host: VmHWM of each model's own process, and VmRSS before the model was built; gpu: nvidia-smi used_memory of that process after the timed work (caching-allocator reservation + CUDA context)",
            "models": figures,
            "revision": env!("NPR_GIT_REVISION"),
        });
        crate::atomic::write(path, serde_json::to_string_pretty(&json)?.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
        println!("figures: {}", path.display());
    }
    Ok(())
}

/// Runs this binary again with `--model NAME` and reads its figures.
fn in_child(name: &str) -> Result<ModelFigures> {
    let exe = std::env::current_exe().context("locating the npr binary")?;
    let out = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .args(["--model", name])
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("starting the benchmark process")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("benchmark of {name} failed ({}): {stdout}", out.status);
    }
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix(CHILD_LINE))
        .with_context(|| format!("benchmark of {name} printed no figures: {stdout}"))?;
    Ok(serde_json::from_str(line)?)
}

fn print_table(figures: &[ModelFigures]) {
    let num = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.1}"));
    println!(
        "{:<10} {:>11} {:>12} {:>12} {:>12} {:>12} {:>14} {:>10}",
        "model",
        "parameters",
        "train img/s",
        "infer img/s",
        "e2e train",
        "e2e test",
        "host peak MiB",
        "gpu MiB"
    );
    for f in figures {
        println!(
            "{:<10} {:>11} {:>12.1} {:>12.1} {:>12} {:>12} {:>14} {:>10}",
            f.model,
            f.parameters,
            f.step_train_ips,
            f.step_infer_ips,
            num(f.e2e_train_ips),
            num(f.e2e_test_ips),
            match (f.host_peak_mib, f.host_before_mib) {
                (Some(p), Some(b)) => format!("{p:.0} (+{:.0})", p - b),
                _ => "—".to_string(),
            },
            num(f.gpu_mib)
        );
    }
    if let [base, att] = figures {
        let time = |b: f64, a: f64| format!("{:.2}×", b / a);
        let mut line = format!(
            "attention / baseline: inference time {} on device-resident tensors",
            time(base.step_infer_ips, att.step_infer_ips)
        );
        if let (Some(b), Some(a)) = (base.e2e_test_ips, att.e2e_test_ips) {
            line += &format!(", {} end to end", time(b, a));
        }
        match (base.gpu_mib, att.gpu_mib) {
            (Some(b), Some(a)) => line += &format!("; GPU memory {:.2}×", a / b),
            _ => {
                if let (Some(bp), Some(bb), Some(ap), Some(ab)) = (
                    base.host_peak_mib,
                    base.host_before_mib,
                    att.host_peak_mib,
                    att.host_before_mib,
                ) {
                    line += &format!(
                        "; host memory added by the model {:.2}×",
                        (ap - ab) / (bp - bb).max(1e-9)
                    );
                }
            }
        }
        println!("{line}");
    }
}

/// One model, in this process: the step benchmark, the pipeline, the memory readings.
fn measure(name: &str, device: Device, args: &BenchArgs) -> Result<ModelFigures> {
    let Some((_, config)) = models().into_iter().find(|(n, _)| *n == name) else {
        return Err(crate::usage!(
            "--model {name}: expected baseline or attention"
        ));
    };
    let threads = crate::threads::apply(device, args.workers)?;
    // As `npr train` runs on CUDA (not deterministic): cuDNN benchmark mode.
    crate::amp::configure_cudnn(false, device);
    let before = crate::peak_memory::host_mib();
    let step = time_model(&config.model, device, &BenchSize::of(args))?;
    let pipeline = match &args.dataroot {
        Some(root) => Some(time_pipeline(
            &config.model,
            device,
            root,
            &PipelineSize {
                images: args.images,
                workers: threads.loader,
                batch: args.batch_size,
                load: args.load_size,
                crop: args.crop_size,
                warmup: 3,
                amp: args.amp,
            },
        )?),
        None => None,
    };
    let after = crate::peak_memory::host_mib();
    Ok(ModelFigures {
        model: name.to_string(),
        parameters: step.parameters,
        step_train_ips: step.train_ips,
        step_infer_ips: step.infer_ips,
        e2e_train_ips: pipeline.as_ref().map(|p| p.train_ips),
        e2e_test_ips: pipeline.as_ref().map(|p| p.test_ips),
        host_peak_mib: after.map(|(peak, _)| peak),
        host_before_mib: before.map(|(_, rss)| rss),
        gpu_mib: if device.is_cuda() {
            crate::peak_memory::gpu_mib()
        } else {
            None
        },
        torch_threads: tch::get_num_threads(),
        loader_threads: threads.loader,
    })
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

/// Adam over every trainable variable, one group, the study plan's settings: the optimizer
/// both model benchmarks step with.
fn bench_adam(vs: &nn::VarStore) -> Adam {
    let params = vs
        .variables()
        .into_iter()
        .filter(|(_, t)| t.requires_grad())
        .map(|(n, t)| (n, t, 0))
        .collect();
    Adam::new(params, 2e-4, (0.9, 0.999), 1e-8, 0.0, vec![1.0])
}

/// Times one model on device-resident random tensors (no loader).
pub fn time_model(config: &ModelConfig, device: Device, size: &BenchSize) -> Result<ModelBench> {
    tch::manual_seed(0);
    let vs = nn::VarStore::new(device);
    let mut model = Detector::new(&vs.root(), config);
    let mut adam = bench_adam(&vs);
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
    // Inference as `npr test` runs it: the loaded model's inference form.
    drop(adam);
    model.prepare_for_inference(&vs);
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
    let r = loader::bench_loader(
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
