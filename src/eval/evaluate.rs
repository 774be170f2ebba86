//! Runs a model over a test set: per-image scores, branch weights and pooled features.
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Result};
use tch::{Device, Kind};

use crate::data::{self, Sample, SkipLog};
use crate::eval::metrics::sigmoid;
use crate::model::input::to_input;
use crate::model::Detector;

/// Everything the outputs need about one image.
#[derive(Debug, Clone)]
pub struct ImageResult {
    pub sample: usize,
    /// The model's logit (what metrics rank by) and `sigmoid(logit)` in f64.
    pub logit: f64,
    pub score: f64,
    /// k×3 branch weights, row-major.
    pub weights: Vec<f32>,
}

/// The per-image results of one pass, plus the pooled features of the first images.
pub struct SetResults {
    pub images: Vec<ImageResult>,
    /// (sample index, features) for at most `max_features` images.
    pub features: Vec<(usize, Vec<f32>)>,
    pub feature_dim: usize,
    pub seconds: f64,
}

impl SetResults {
    pub fn images_per_s(&self) -> f64 {
        self.images.len() as f64 / self.seconds.max(1e-9)
    }
}

/// How to batch a test pass.
#[derive(Debug, Clone, Copy)]
pub struct PassOptions {
    pub batch_size: usize,
    pub workers: usize,
    /// Keep pooled features of at most this many images.
    pub max_features: usize,
}

/// Scores every readable sample (unreadable ones are skipped and logged, never fatal).
pub fn run_model(
    model: &Detector,
    samples: &Arc<Vec<Sample>>,
    transform: data::TestTransform,
    pass: PassOptions,
    device: Device,
    skips: &Arc<SkipLog>,
) -> Result<SetResults> {
    let PassOptions {
        batch_size,
        workers,
        max_features,
    } = pass;
    let started = Instant::now();
    let options = data::LoaderOptions::testing(batch_size, workers);
    let loader = data::batches(
        samples.clone(),
        data::Transform::Test(transform),
        options,
        0,
        skips.clone(),
    )?;
    let k = model.config.scales.len();
    let mut images = Vec::with_capacity(samples.len());
    let mut features = Vec::new();
    let mut feature_dim = 0;
    tch::no_grad(|| -> Result<()> {
        for batch in loader {
            let x = to_input(&batch.data, batch.n, batch.h, batch.w, device);
            let out = model.forward_t(&x, false);
            let logits: Vec<f64> =
                Vec::try_from(out.logit.to_kind(Kind::Double).to_device(Device::Cpu))?;
            let weights: Vec<f32> = Vec::try_from(
                out.weights
                    .to_kind(Kind::Float)
                    .to_device(Device::Cpu)
                    .flatten(0, -1),
            )?;
            let take = max_features.saturating_sub(features.len()).min(batch.n);
            if take > 0 {
                let f = out
                    .features
                    .narrow(0, 0, take as i64)
                    .to_kind(Kind::Float)
                    .to_device(Device::Cpu);
                feature_dim = f.size()[1] as usize;
                let flat: Vec<f32> = Vec::try_from(f.flatten(0, -1))?;
                for (i, chunk) in flat.chunks(feature_dim).enumerate() {
                    features.push((batch.indices[i], chunk.to_vec()));
                }
            }
            for (i, &sample) in batch.indices.iter().enumerate() {
                images.push(ImageResult {
                    sample,
                    logit: logits[i],
                    score: sigmoid(logits[i]),
                    weights: weights[i * 3 * k..(i + 1) * 3 * k].to_vec(),
                });
            }
        }
        Ok(())
    })?;
    if images.is_empty() {
        bail!("no image of this set could be read (see the skipped files)");
    }
    // Bucketing and parallel decoding reorder images: restore the discovery order.
    images.sort_by_key(|r| r.sample);
    features.sort_by_key(|f| f.0);
    Ok(SetResults {
        images,
        features,
        feature_dim,
        seconds: started.elapsed().as_secs_f64(),
    })
}
