//! The one place a model scores images in eval mode (no grad): validation during training,
//! `npr test` and `npr predict` all call [`score`], so the three can never disagree on
//! preprocessing, batching or how a logit becomes a score.
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Result};
use tch::{Device, Kind};

use crate::config::Config;
use crate::data::{self, Loader, Sample, SkipLog};
use crate::eval::metrics::sigmoid;
use crate::model::detector::{DetectorOutput, InputMaps};
use crate::model::input::to_input;
use crate::model::Detector;
use crate::progress::Progress;

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
        branch_means(&self.weights)
    }
}

/// The call: fake iff `logit > 0`, i.e. `score > 0.5` — also where the score rounds to 1.
pub fn is_fake(logit: f64) -> bool {
    logit > 0.0
}

/// The call as a word (`fake`/`real`), as `npr predict`, `--maps` and `npr serve` print it.
pub fn call(logit: f64) -> &'static str {
    if is_fake(logit) {
        "fake"
    } else {
        "real"
    }
}

/// The weight of every branch, averaged over its colour channels: `weights` is k×3
/// row-major (branch, channel), as the model, the NPZ and `npr serve` hold them.
pub fn branch_means<T: Copy + Into<f64>>(weights: &[T]) -> Vec<f64> {
    weights
        .chunks(3)
        .map(|c| c.iter().map(|&w| w.into()).sum::<f64>() / c.len() as f64)
        .collect()
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
/// fatal), keeping the pooled features of the first `max_features` images and advancing
/// `progress` by every batch. An error when no image at all could be read.
pub fn score(
    model: &Detector,
    loader: &Loader,
    max_features: usize,
    device: Device,
    progress: &Progress,
) -> Result<Scores> {
    score_with_maps(model, loader, max_features, device, None, progress)
}

/// A hook that sees every scored batch with its input maps; the batch's `indices` say
/// which samples they are.
pub type MapsHook<'a> = &'a mut dyn FnMut(&data::Batch, &BatchScores) -> Result<()>;

/// [`score`], also handing every batch's NPR branches and fused map to `on_maps`
/// (`npr predict --maps`), so the maps come from the very pass that gave the scores.
pub fn score_with_maps(
    model: &Detector,
    loader: &Loader,
    max_features: usize,
    device: Device,
    mut on_maps: Option<MapsHook<'_>>,
    progress: &Progress,
) -> Result<Scores> {
    let started = Instant::now();
    let mut images = Vec::with_capacity(loader.samples().len());
    let mut features = Vec::new();
    let mut feature_dim = 0;
    tch::no_grad(|| -> Result<()> {
        for batch in loader.epoch(0)? {
            let scored = score_batch(model, &batch.data, batch.n, batch.h, batch.w, device)?;
            if let Some(hook) = on_maps.as_mut() {
                hook(&batch, &scored)?;
            }
            let take = max_features.saturating_sub(features.len()).min(batch.n);
            if take > 0 {
                let f = scored
                    .output
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
            for (i, (&sample, (logit, weights))) in
                batch.indices.iter().zip(scored.images).enumerate()
            {
                images.push(ImageScore {
                    sample,
                    label: batch.labels[i],
                    logit,
                    score: sigmoid(logit),
                    weights,
                });
            }
            progress.inc(batch.n as u64);
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

/// One batch through the model: every image's (logit, k×3 weights), and the tensors they
/// came from.
pub struct BatchScores {
    pub images: Vec<(f64, Vec<f32>)>,
    pub output: DetectorOutput,
    pub maps: InputMaps,
}

/// Scores `n` images of `h × w` (NHWC RGB bytes) in eval mode. Call inside `no_grad`.
/// The per-batch step of [`score`] and of `npr serve`'s model worker.
pub fn score_batch(
    model: &Detector,
    data: &[u8],
    n: usize,
    h: usize,
    w: usize,
    device: Device,
) -> Result<BatchScores> {
    let x = to_input(data, n, h, w, device);
    let (output, maps) = model.forward_with_maps(&x, false);
    let logits: Vec<f64> =
        Vec::try_from(output.logit.to_kind(Kind::Double).to_device(Device::Cpu))?;
    let weights: Vec<f32> = Vec::try_from(
        output
            .weights
            .to_kind(Kind::Float)
            .to_device(Device::Cpu)
            .flatten(0, -1),
    )?;
    let per_image = weights.len() / n.max(1);
    let images = logits
        .into_iter()
        .zip(weights.chunks(per_image.max(1)))
        .map(|(l, w)| (l, w.to_vec()))
        .collect();
    Ok(BatchScores {
        images,
        output,
        maps,
    })
}

/// The preprocessing `npr predict` and `npr serve` apply: the checkpoint's test
/// transform, the one scoring policy ([`super::policy`]).
pub fn predict_transform(config: &Config) -> data::TestTransform {
    super::policy::checkpoint_transform(config)
}
