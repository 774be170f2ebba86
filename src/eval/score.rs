//! The one place a model scores images in eval mode (no grad): validation during training,
//! `npr test` and `npr predict` all call [`score`], so the three can never disagree on
//! preprocessing, batching or how a logit becomes a score.
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Result};
use tch::{Device, Kind};

use crate::data::{self, Loader, Sample, SkipLog};
use crate::eval::metrics::sigmoid;
use crate::model::input::to_input;
use crate::model::Detector;

/// What the model says about one image.
#[derive(Debug, Clone)]
pub struct ImageScore {
    /// Index into the sample list that was scored.
    pub sample: usize,
    pub label: u8,
    /// The model's logit (what metrics rank by) and `sigmoid(logit)` in f64.
    pub logit: f64,
    pub score: f64,
    /// k×3 branch weights, row-major (branch, colour channel).
    pub weights: Vec<f32>,
}

impl ImageScore {
    /// The weight of every branch, averaged over the colour channels.
    pub fn branch_weights(&self) -> Vec<f64> {
        self.weights
            .chunks(3)
            .map(|c| c.iter().map(|&w| f64::from(w)).sum::<f64>() / c.len() as f64)
            .collect()
    }
}

/// The scores of one pass in sample order, plus the pooled features of the first images.
pub struct Scores {
    pub images: Vec<ImageScore>,
    /// (sample index, features) for at most `max_features` images.
    pub features: Vec<(usize, Vec<f32>)>,
    pub feature_dim: usize,
    pub seconds: f64,
}

impl Scores {
    pub fn images_per_s(&self) -> f64 {
        self.images.len() as f64 / self.seconds.max(1e-9)
    }
}

/// A loader for scoring: `samples` once each, in order, through a test transform.
pub fn loader(
    samples: Arc<Vec<Sample>>,
    transform: data::TestTransform,
    batch_size: usize,
    workers: usize,
    skips: &Arc<SkipLog>,
) -> Result<Loader> {
    Ok(Loader::new(
        samples,
        data::Transform::Test(transform),
        data::LoaderOptions::testing(batch_size, workers),
        skips.clone(),
    )?)
}

/// Scores every readable sample of `loader` (unreadable ones go to its skip log, never
/// fatal), keeping the pooled features of the first `max_features` images. An error when
/// no image at all could be read.
pub fn score(
    model: &Detector,
    loader: &Loader,
    max_features: usize,
    device: Device,
) -> Result<Scores> {
    let started = Instant::now();
    let mut images = Vec::with_capacity(loader.samples().len());
    let mut features = Vec::new();
    let mut feature_dim = 0;
    tch::no_grad(|| -> Result<()> {
        for batch in loader.epoch(0)? {
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
            let per_image = weights.len() / batch.n;
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
                images.push(ImageScore {
                    sample,
                    label: batch.labels[i],
                    logit: logits[i],
                    score: sigmoid(logits[i]),
                    weights: weights[i * per_image..(i + 1) * per_image].to_vec(),
                });
            }
        }
        Ok(())
    })?;
    if images.is_empty() {
        bail!("no image could be read (see the skipped files)");
    }
    // Bucketing and parallel decoding reorder images: restore the sample order.
    images.sort_by_key(|r| r.sample);
    features.sort_by_key(|f| f.0);
    Ok(Scores {
        images,
        features,
        feature_dim,
        seconds: started.elapsed().as_secs_f64(),
    })
}
