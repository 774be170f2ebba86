//! The one model of `npr serve`, on one thread. tch modules are not meant to be shared
//! between threads, and one copy of the weights is all the memory a server should take:
//! requests reach the thread through a bounded queue, and it scores whatever is waiting
//! in small batches of equal-size images with the scorer of `npr test` and `npr predict`
//! ([`crate::eval::score::score_batch`]). A full queue is refused at once (503), never
//! grown.
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};

use anyhow::{Context, Result};
use image::RgbImage;
use tch::Device;
use tokio::sync::oneshot;

use crate::checkpoint::load_model;
use crate::config::Config;
use crate::eval::metrics::sigmoid;
use crate::eval::score::score_batch;
use crate::explain::ImageMaps;

/// One image for the model, already decoded and transformed.
pub struct ScoreJob {
    pub image: RgbImage,
    /// Also return the residual maps.
    pub maps: bool,
    pub reply: oneshot::Sender<Result<Scored, String>>,
}

/// The model's answer for one image.
pub struct Scored {
    pub logit: f64,
    pub score: f64,
    /// k×3 branch weights, row-major (branch, colour channel).
    pub weights: Vec<f32>,
    pub maps: Option<ImageMaps>,
}

/// Why a job was not queued.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The queue is full: try again shortly.
    Busy,
    /// The worker has stopped (shutting down, or it failed).
    Stopped,
}

/// The sending side, cloned into every request handler.
#[derive(Clone)]
pub struct Worker {
    tx: SyncSender<ScoreJob>,
    /// The checkpoint's config (scales, preprocessing).
    pub config: std::sync::Arc<Config>,
}

impl Worker {
    /// Loads the checkpoint on a new thread and starts scoring. Loading errors come back
    /// here (a missing or wrong checkpoint is a usage error, as for `npr predict`).
    pub fn spawn(options: &super::ServeOptions) -> Result<Self> {
        let (tx, rx) = mpsc::sync_channel::<ScoreJob>(options.queue.max(1));
        let (ready_tx, ready_rx) = mpsc::channel::<Result<Config>>();
        let (checkpoint, device) = (options.checkpoint.clone(), options.device);
        let batch_size = options.batch_size.max(1);
        std::thread::Builder::new()
            .name("npr-model".into())
            .spawn(move || {
                let loaded = match load_model(&checkpoint, device) {
                    Ok(loaded) => loaded,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(loaded.config.clone()));
                let scales = &loaded.config.model.scales;
                run(&loaded.detector, scales, device, batch_size, &rx);
            })
            .context("starting the model thread")?;
        let config = ready_rx
            .recv()
            .context("the model thread ended while loading the checkpoint")??;
        Ok(Worker {
            tx,
            config: std::sync::Arc::new(config),
        })
    }

    /// Queues one job without waiting; the answer comes on the job's `reply`.
    pub fn submit(&self, job: ScoreJob) -> Result<(), Refused> {
        self.tx.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => Refused::Busy,
            TrySendError::Disconnected(_) => Refused::Stopped,
        })
    }
}

/// The worker loop: wait for a job, take whatever else is already waiting (up to
/// `batch_size`), score it in groups of equal size, answer each job. Ends when every
/// sender is gone.
fn run(
    model: &crate::model::Detector,
    scales: &[f64],
    device: Device,
    batch_size: usize,
    rx: &Receiver<ScoreJob>,
) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        jobs.extend(rx.try_iter().take(batch_size - 1));
        for group in same_size_groups(jobs) {
            let images: Vec<&RgbImage> = group.iter().map(|j| &j.image).collect();
            let want_maps: Vec<bool> = group.iter().map(|j| j.maps).collect();
            let scored = catch_unwind(AssertUnwindSafe(|| {
                score_group(model, scales, device, &images, &want_maps)
            }))
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the model panicked on this batch")));
            match scored {
                Ok(results) => {
                    for (job, result) in group.into_iter().zip(results) {
                        let _ = job.reply.send(Ok(result)); // the client may have gone
                    }
                }
                Err(e) => {
                    for job in group {
                        let _ = job.reply.send(Err(format!("{e:#}")));
                    }
                }
            }
        }
    }
}

/// The most pixels one forward pass scores. A checkpoint that tests at full size feeds
/// the model whole images, and its activations take about 365 bytes per pixel (the
/// attention model on CPU, measured with `npr predict` on 1024² and 2048² images), so
/// this is about 6 GB; larger images are refused at decoding (`serve::run`).
pub const MAX_BATCH_PIXELS: u64 = 4096 * 4096;

/// Jobs grouped by image size (width, height), and each size split into batches of at
/// most [`MAX_BATCH_PIXELS`] pixels (one image per batch at the least).
fn same_size_groups(jobs: Vec<ScoreJob>) -> Vec<Vec<ScoreJob>> {
    let sizes: Vec<(u32, u32)> = jobs.iter().map(|j| j.image.dimensions()).collect();
    let mut jobs: Vec<Option<ScoreJob>> = jobs.into_iter().map(Some).collect();
    batches_by_size(&sizes, MAX_BATCH_PIXELS)
        .into_iter()
        .map(|batch| batch.iter().filter_map(|&i| jobs[i].take()).collect())
        .collect()
}

/// Indices of `sizes` grouped by equal size (in size order, arrival order within), each
/// group cut into runs whose pixels add up to at most `max_pixels` (never empty).
fn batches_by_size(sizes: &[(u32, u32)], max_pixels: u64) -> Vec<Vec<usize>> {
    let mut by_size: BTreeMap<(u32, u32), Vec<usize>> = BTreeMap::new();
    for (i, &size) in sizes.iter().enumerate() {
        by_size.entry(size).or_default().push(i);
    }
    by_size
        .into_iter()
        .flat_map(|((w, h), indices)| {
            let per_batch = (max_pixels / (u64::from(w) * u64::from(h)).max(1)).max(1) as usize;
            indices
                .chunks(per_batch)
                .map(<[usize]>::to_vec)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// One forward pass over images of one size.
fn score_group(
    model: &crate::model::Detector,
    scales: &[f64],
    device: Device,
    images: &[&RgbImage],
    want_maps: &[bool],
) -> Result<Vec<Scored>> {
    let (w, h) = images[0].dimensions();
    let data: Vec<u8> = images
        .iter()
        .flat_map(|im| im.as_raw().iter().copied())
        .collect();
    tch::no_grad(|| {
        let scored = score_batch(model, &data, images.len(), h as usize, w as usize, device)?;
        scored
            .images
            .iter()
            .enumerate()
            .map(|(i, (logit, weights))| {
                let maps = want_maps[i]
                    .then(|| ImageMaps::from_tensors(&scored.maps, i, scales))
                    .transpose()?;
                Ok(Scored {
                    logit: *logit,
                    score: sigmoid(*logit),
                    weights: weights.clone(),
                    maps,
                })
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_keep_one_size_and_the_pixel_cap() {
        // (sizes, cap) → batches of indices
        type Case = (&'static [(u32, u32)], u64, Vec<Vec<usize>>);
        let table: [Case; 4] = [
            (&[(8, 8), (4, 4), (8, 8)], 1000, vec![vec![1], vec![0, 2]]),
            (&[(8, 8); 5], 128, vec![vec![0, 1], vec![2, 3], vec![4]]),
            // An image over the cap still gets a batch of its own.
            (&[(100, 100), (100, 100)], 50, vec![vec![0], vec![1]]),
            (&[], 10, vec![]),
        ];
        for (sizes, cap, want) in table {
            assert_eq!(batches_by_size(sizes, cap), want, "{sizes:?}, cap {cap}");
        }
    }
}
