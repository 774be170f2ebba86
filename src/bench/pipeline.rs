//! End-to-end throughput (`npr bench --dataroot DIR`): image files → loader → device →
//! training step, and files → loader → inference, as `npr train` and `npr test` run
//! them. `scripts/bench_reference.py` is the PyTorch side; `scripts/bench_compare.sh`
//! runs both (BENCHMARKS.md).
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use tch::{nn, Device, Kind, Tensor};

use crate::config::ModelConfig;
use crate::data::{self, LoaderOptions, SkipLog, TestTransform, TrainTransform, Transform};
use crate::model::input::to_input;
use crate::model::Detector;
use crate::train::step::train_step;

/// What the pipeline benchmark loads.
pub struct PipelineSize {
    /// Images per direction (cycling over the folder's files).
    pub images: usize,
    pub workers: usize,
    pub batch: usize,
    /// Training transform: resize to `load`², random crop `crop`², flip. Inference takes
    /// the images as they are (no resize, no crop), the official test protocol.
    pub load: u32,
    pub crop: u32,
    /// Batches not timed at the start (loader start-up, cuDNN autotuning).
    pub warmup: usize,
    /// bf16 autocast and channels-last (CUDA only).
    pub amp: bool,
}

/// Images per second through the whole pipeline.
pub struct PipelineBench {
    pub train_ips: f64,
    pub test_ips: f64,
}

pub fn time_pipeline(
    config: &ModelConfig,
    device: Device,
    root: &Path,
    size: &PipelineSize,
) -> Result<PipelineBench> {
    let found =
        data::discover(root, None).with_context(|| format!("--dataroot {}", root.display()))?;
    let samples: Arc<Vec<data::Sample>> = Arc::new(
        found
            .samples
            .iter()
            .cycle()
            .take(size.images)
            .cloned()
            .collect(),
    );
    tch::manual_seed(0);
    let vs = nn::VarStore::new(device);
    let mut model = Detector::new(&vs.root(), config);
    if size.amp && device.is_cuda() {
        model.use_channels_last(&vs);
    }
    let mut adam = super::bench_adam(&vs);

    let train = Transform::Train(TrainTransform {
        load_size: Some(size.load),
        crop_size: size.crop,
        ..TrainTransform::default()
    });
    let opts = LoaderOptions {
        batch_size: size.batch,
        workers: size.workers,
        drop_last: true,
        ..LoaderOptions::default()
    };
    let train_ips = crate::amp::bf16_autocast(size.amp, device, || {
        timed(samples.clone(), train, opts, size.warmup, device, |batch| {
            let x = to_input(&batch.data, batch.n, batch.h, batch.w, device);
            let y = Tensor::from_slice(&batch.labels)
                .to_kind(Kind::Float)
                .to_device(device);
            let _ = train_step(&model, &mut adam, &x, &y);
        })
    })?;

    // Inference as `npr test` runs it: the loaded model's inference form.
    drop(adam);
    model.prepare_for_inference(&vs);
    let test = Transform::Test(TestTransform::default());
    let opts = LoaderOptions::testing(size.batch, size.workers);
    let test_ips = crate::amp::bf16_autocast(size.amp, device, || {
        tch::no_grad(|| {
            timed(samples.clone(), test, opts, size.warmup, device, |batch| {
                let x = to_input(&batch.data, batch.n, batch.h, batch.w, device);
                // Scores to the host per batch, as `npr test` collects them.
                let scores = model.forward_t(&x, false).logit.sigmoid();
                let _ = Vec::<f32>::try_from(scores.to_kind(Kind::Float).to_device(Device::Cpu));
            })
        })
    })?;
    Ok(PipelineBench {
        train_ips,
        test_ips,
    })
}

/// Runs `step` on every batch of one pass; images/s after the first `warmup` batches.
fn timed(
    samples: Arc<Vec<data::Sample>>,
    transform: Transform,
    opts: LoaderOptions,
    warmup: usize,
    device: Device,
    mut step: impl FnMut(&data::Batch),
) -> Result<f64> {
    let skips = Arc::new(SkipLog::new());
    let (mut start, mut images, mut batches) = (None, 0usize, 0usize);
    for batch in data::batches(samples, transform, opts, 0, skips)? {
        if batches == warmup {
            sync(device);
            start = Some(Instant::now());
            images = 0;
        }
        step(&batch);
        images += batch.n;
        batches += 1;
    }
    sync(device);
    let Some(start) = start else {
        return Err(crate::usage!(
            "only {batches} batch(es) of images: raise --images above {warmup} warm-up batches × the batch size"
        ));
    };
    Ok(images as f64 / start.elapsed().as_secs_f64().max(1e-9))
}

pub fn sync(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}
