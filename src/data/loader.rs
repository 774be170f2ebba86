//! The prefetching batch loader (ARCHITECTURE.md, Data; speed in BENCHMARKS.md): a producer thread hands decode +
//! transform jobs to a rayon pool of `workers` threads, reassembles the results in epoch
//! order, groups them into uint8 NHWC batches and sends them through a bounded
//! `sync_channel` (`prefetch` batches ahead). The device normalises.
//!
//! Determinism: the epoch order is a function of (seed, epoch), and every sample's
//! augmentation RNG is seeded from (seed, epoch, sample index, occurrence) — occurrence
//! counts repeats of the same sample within an epoch when classes are balanced by
//! oversampling. Results are consumed in epoch order whatever thread finishes first, so
//! the same seed gives the same batches for any number of workers.
//!
//! Batching: images are grouped by size (`h × w`); a group is emitted when it holds
//! `batch_size` images, and the rest are flushed at the end of the epoch. With a fixed
//! output size (training, cropped tests) there is a single group, so batches are simply
//! consecutive. With variable sizes (full-size testing) equal sizes are batched together
//! instead of using batch size 1; `bucket_memory` bounds what partial groups may hold.
//! Each batch carries the sample indices, so scores map back to files.
//!
//! A file that cannot be used is recorded in the [`SkipLog`] and left out; the epoch goes on.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

use image::RgbImage;
use rand::seq::SliceRandom;

use super::decode::{decode_file, DecodeLimits};
use super::discover::Sample;
use super::seed::{rng_for, stream};
use super::skip::{Skip, SkipLog, SkipReason};
use super::transform::Transform;
use super::DataError;

/// Loader settings.
#[derive(Clone, Debug, PartialEq)]
pub struct LoaderOptions {
    pub batch_size: usize,
    /// Decode/augment threads (the producer thread comes on top).
    pub workers: usize,
    pub seed: u64,
    /// Shuffle each epoch (training); otherwise discovery order (testing).
    pub shuffle: bool,
    /// Oversample the minority label to the majority's count, deterministically per epoch.
    pub balance: bool,
    /// Drop the last, smaller batch of each size group.
    pub drop_last: bool,
    /// Batches prepared ahead of the consumer.
    pub prefetch: usize,
    pub limits: DecodeLimits,
    /// Bytes that incomplete size groups may hold before the largest is emitted early.
    pub bucket_memory: usize,
}

impl Default for LoaderOptions {
    fn default() -> Self {
        LoaderOptions {
            batch_size: 32,
            workers: 4,
            seed: 0,
            shuffle: true,
            balance: false,
            drop_last: false,
            prefetch: 3,
            limits: DecodeLimits::default(),
            bucket_memory: 1 << 30,
        }
    }
}

impl LoaderOptions {
    /// Evaluation: discovery order, no balancing, every image kept.
    pub fn testing(batch_size: usize, workers: usize) -> Self {
        LoaderOptions {
            batch_size,
            workers,
            shuffle: false,
            ..LoaderOptions::default()
        }
    }

    pub fn validate(&self) -> Result<(), DataError> {
        if self.batch_size == 0 {
            return Err(DataError::invalid("train.batch_size", "must be at least 1"));
        }
        if self.workers == 0 || self.workers > 1024 {
            let detail = format!("must be in 1..=1024, got {}", self.workers);
            return Err(DataError::invalid("data.workers", detail));
        }
        Ok(())
    }
}

/// A batch of images of one size, uint8, NHWC, RGB.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    /// `n × h × w × 3` bytes.
    pub data: Vec<u8>,
    pub n: usize,
    pub h: usize,
    pub w: usize,
    pub labels: Vec<u8>,
    /// Index of each image in the sample list given to [`batches`].
    pub indices: Vec<usize>,
}

/// One draw of an epoch: a sample and how many times it was drawn before in this epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Draw {
    pub index: usize,
    pub occurrence: u32,
}

/// The order in which an epoch visits the samples: optional oversampling of the minority
/// label, optional shuffle, both seeded from (seed, epoch).
pub fn epoch_order(samples: &[Sample], opts: &LoaderOptions, epoch: usize) -> Vec<Draw> {
    let epoch = epoch as u64;
    let mut order: Vec<usize> = (0..samples.len()).collect();
    if opts.balance {
        let by_label = |l: u8| {
            (0..samples.len())
                .filter(|&i| samples[i].label == l)
                .collect::<Vec<_>>()
        };
        let (real, fake) = (by_label(0), by_label(1));
        if !real.is_empty() && !fake.is_empty() && real.len() != fake.len() {
            let (minority, majority) = if real.len() < fake.len() {
                (real, fake)
            } else {
                (fake, real)
            };
            let extra = majority.len() - minority.len();
            for _ in 0..extra / minority.len() {
                order.extend_from_slice(&minority);
            }
            let mut rest = minority.clone();
            rest.shuffle(&mut rng_for(&[opts.seed, stream::BALANCE, epoch]));
            order.extend_from_slice(&rest[..extra % minority.len()]);
        }
    }
    if opts.shuffle {
        order.shuffle(&mut rng_for(&[opts.seed, stream::EPOCH_ORDER, epoch]));
    }
    let mut seen = vec![0u32; samples.len()];
    order
        .into_iter()
        .map(|index| {
            let occurrence = seen[index];
            seen[index] += 1;
            Draw { index, occurrence }
        })
        .collect()
}

/// The augmentation seed of one draw.
pub fn draw_seed(seed: u64, epoch: usize, draw: Draw) -> [u64; 5] {
    let (index, occurrence) = (draw.index as u64, u64::from(draw.occurrence));
    [seed, stream::AUGMENT, epoch as u64, index, occurrence]
}

/// Decodes and transforms one sample. Never panics: a panicking decoder becomes a skip.
pub fn load_one(
    sample: &Sample,
    transform: &Transform,
    limits: &DecodeLimits,
    seed: [u64; 5],
) -> Result<(RgbImage, bool), Skip> {
    let run = || {
        let img = decode_file(&sample.path, limits).map_err(|r| r.at(&sample.path))?;
        let applied = transform
            .apply(img, &mut rng_for(&seed))
            .map_err(|r| r.at(&sample.path))?;
        Ok((applied.image, applied.upscaled))
    };
    catch_unwind(AssertUnwindSafe(run)).unwrap_or_else(|panic| {
        let detail = format!("decoder panicked: {}", panic_message(&*panic));
        Err(Skip::new(&sample.path, SkipReason::Corrupt, detail))
    })
}

/// The text of a panic payload (`panic!` with a literal or a formatted message).
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into())
}

/// An iterator over one epoch's batches. Dropping it stops and joins the producer.
pub struct BatchIter {
    rx: Option<Receiver<Batch>>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Iterator for BatchIter {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        let batch = self.rx.as_ref()?.recv().ok();
        if batch.is_none() {
            self.rx = None;
            if let Some(h) = self.handle.take() {
                // The producer only ends early by panicking: do not pass that off as a
                // short epoch.
                if let Err(panic) = h.join() {
                    std::panic::resume_unwind(panic);
                }
            }
        }
        batch
    }
}

impl Drop for BatchIter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.rx = None; // unblocks a producer waiting to send
        if let Some(Err(panic)) = self.handle.take().map(|h| h.join()) {
            // Dropping cannot fail, but a crashed loader must not pass unnoticed.
            let why = panic_message(&*panic);
            eprintln!("error: the loader thread panicked: {why}");
        }
    }
}

/// A loader over one sample list and transform. Its decode pool is built once and serves
/// every epoch, so a training run starts `workers` threads once, not once per epoch.
#[derive(Clone)]
pub struct Loader {
    samples: Arc<Vec<Sample>>,
    transform: Arc<Transform>,
    opts: LoaderOptions,
    skips: Arc<SkipLog>,
    /// None when no thread could be started: decoding then runs on the producer thread.
    pool: Option<Arc<rayon::ThreadPool>>,
}

impl Loader {
    /// Checks the options and the transform and starts the decode pool.
    pub fn new(
        samples: Arc<Vec<Sample>>,
        transform: Transform,
        opts: LoaderOptions,
        skips: Arc<SkipLog>,
    ) -> Result<Self, DataError> {
        opts.validate()?;
        transform.validate()?;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(opts.workers)
            .thread_name(|i| format!("npr-load-{i}"))
            .build()
            .inspect_err(|e| {
                eprintln!(
                    "warning: cannot start {} loader thread(s) ({e}); decoding on one thread",
                    opts.workers
                )
            })
            .ok()
            .map(Arc::new);
        Ok(Loader {
            samples,
            transform: Arc::new(transform),
            opts,
            skips,
            pool,
        })
    }

    pub fn samples(&self) -> &Arc<Vec<Sample>> {
        &self.samples
    }

    /// Starts loading one epoch (see the module docs).
    pub fn epoch(&self, epoch: usize) -> Result<BatchIter, DataError> {
        let order = epoch_order(&self.samples, &self.opts, epoch);
        let (tx, rx) = mpsc::sync_channel(self.opts.prefetch.max(1));
        let stop = Arc::new(AtomicBool::new(false));
        let (loader, stopped) = (self.clone(), stop.clone());
        let handle = std::thread::Builder::new()
            .name("npr-loader".into())
            .spawn(move || loader.produce(order, epoch, stopped, tx))
            .map_err(|e| {
                DataError::invalid(
                    "data.workers",
                    format!("cannot start the loader thread: {e}"),
                )
            })?;
        Ok(BatchIter {
            rx: Some(rx),
            stop,
            handle: Some(handle),
        })
    }
}

/// One epoch of `samples` from a loader used once.
pub fn batches(
    samples: Arc<Vec<Sample>>,
    transform: Transform,
    opts: LoaderOptions,
    epoch: usize,
    skips: Arc<SkipLog>,
) -> Result<BatchIter, DataError> {
    Loader::new(samples, transform, opts, skips)?.epoch(epoch)
}

type Outcome = Option<Result<(RgbImage, bool), Skip>>;

impl Loader {
    /// The producer thread of one epoch (on a clone of the loader): see the module docs.
    fn produce(
        self,
        order: Vec<Draw>,
        epoch: usize,
        stop: Arc<AtomicBool>,
        out: mpsc::SyncSender<Batch>,
    ) {
        let (res_tx, res_rx) = mpsc::channel::<(usize, Outcome)>();
        let window = (2 * self.opts.batch_size).max(4 * self.opts.workers);
        let mut buckets = Buckets {
            batch_size: self.opts.batch_size,
            memory_cap: self.opts.bucket_memory,
            ..Buckets::default()
        };
        let mut pending: BTreeMap<usize, Outcome> = BTreeMap::new();
        let (mut submitted, mut emitted) = (0, 0);
        while emitted < order.len() {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            while submitted < order.len() && submitted < emitted + window {
                let (pos, draw, limits) = (submitted, order[submitted], self.opts.limits);
                let seed = draw_seed(self.opts.seed, epoch, draw);
                let (samples, transform) = (self.samples.clone(), self.transform.clone());
                let (stop, tx) = (stop.clone(), res_tx.clone());
                let job = move || {
                    let outcome = (!stop.load(Ordering::SeqCst))
                        .then(|| load_one(&samples[draw.index], &transform, &limits, seed));
                    let _ = tx.send((pos, outcome));
                };
                match &self.pool {
                    Some(pool) => pool.spawn(job),
                    None => job(), // no threads available: work inline
                }
                submitted += 1;
            }
            let Ok((pos, outcome)) = res_rx.recv() else {
                return;
            };
            pending.insert(pos, outcome);
            while let Some(outcome) = pending.remove(&emitted) {
                let draw = order[emitted];
                emitted += 1;
                let sample = &self.samples[draw.index];
                match outcome {
                    None => return, // cancelled
                    Some(Err(skip)) => self.skips.record(skip),
                    Some(Ok((image, upscaled))) => {
                        if upscaled {
                            self.skips.record_upscaled(&sample.path);
                        }
                        let item = Item {
                            index: draw.index,
                            label: sample.label,
                            image,
                        };
                        if let Some(batch) = buckets.push(item) {
                            if out.send(batch).is_err() {
                                return;
                            }
                        }
                    }
                }
            }
        }
        for batch in buckets.flush(self.opts.drop_last) {
            if out.send(batch).is_err() {
                return;
            }
        }
    }
}

struct Item {
    index: usize,
    label: u8,
    image: RgbImage,
}

/// Size groups of transformed images, in arrival (epoch) order.
#[derive(Default)]
struct Buckets {
    batch_size: usize,
    memory_cap: usize,
    held: usize,
    /// Arrival number of a group's first item, so flushing follows epoch order.
    groups: BTreeMap<(u32, u32), (usize, Vec<Item>)>,
    arrivals: usize,
}

impl Buckets {
    fn push(&mut self, item: Item) -> Option<Batch> {
        let key = (item.image.height(), item.image.width());
        self.held += item.image.as_raw().len();
        self.arrivals += 1;
        let arrival = self.arrivals;
        let group = self
            .groups
            .entry(key)
            .or_insert_with(|| (arrival, Vec::new()));
        group.1.push(item);
        if group.1.len() >= self.batch_size {
            return Some(self.take(key));
        }
        if self.held > self.memory_cap {
            let (&largest, _) = self.groups.iter().max_by_key(|(k, (first, items))| {
                (
                    items.len() * (k.0 * k.1) as usize,
                    std::cmp::Reverse(*first),
                )
            })?;
            return Some(self.take(largest));
        }
        None
    }

    fn take(&mut self, key: (u32, u32)) -> Batch {
        let (_, items) = self.groups.remove(&key).unwrap_or_default();
        self.held -= items.iter().map(|i| i.image.as_raw().len()).sum::<usize>();
        make_batch(items)
    }

    fn flush(self, drop_last: bool) -> Vec<Batch> {
        let mut groups: Vec<(usize, Vec<Item>)> = self.groups.into_values().collect();
        groups.sort_by_key(|&(first, _)| first);
        groups
            .into_iter()
            .map(|(_, items)| make_batch(items))
            .filter(|b| !(drop_last && b.n < self.batch_size))
            .collect()
    }
}

fn make_batch(items: Vec<Item>) -> Batch {
    let (h, w) = items.first().map_or((0, 0), |i| {
        (i.image.height() as usize, i.image.width() as usize)
    });
    let images: Vec<&[u8]> = items.iter().map(|i| i.image.as_raw().as_slice()).collect();
    Batch {
        data: images.concat(),
        n: items.len(),
        h,
        w,
        labels: items.iter().map(|i| i.label).collect(),
        indices: items.iter().map(|i| i.index).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{natural, png_rgb8, Tree};
    use super::super::transform::{BlurAug, Crop, JpegAug, TestTransform, TrainTransform};
    use super::*;

    impl Batch {
        /// The `i`-th image's `h × w × 3` bytes.
        fn image(&self, i: usize) -> &[u8] {
            let size = self.h * self.w * 3;
            &self.data[i * size..(i + 1) * size]
        }
    }

    fn sample(path: std::path::PathBuf, label: u8) -> Sample {
        Sample {
            path,
            label,
            generator: "g".into(),
            class: String::new(),
        }
    }

    /// `sizes[i]` images written as PNG, alternating labels.
    fn dataset(tree: &Tree, sizes: &[(u32, u32)]) -> Arc<Vec<Sample>> {
        Arc::new(
            sizes
                .iter()
                .enumerate()
                .map(|(i, &(w, h))| {
                    let p = tree.write(
                        &format!("img{i:02}.png"),
                        &png_rgb8(&natural(w, h, i as u32)),
                    );
                    sample(p, (i % 2) as u8)
                })
                .collect(),
        )
    }

    fn collect(
        samples: &Arc<Vec<Sample>>,
        t: &Transform,
        opts: &LoaderOptions,
        epoch: usize,
    ) -> Vec<Batch> {
        batches(
            samples.clone(),
            t.clone(),
            opts.clone(),
            epoch,
            Arc::new(SkipLog::new()),
        )
        .unwrap()
        .collect()
    }

    fn augmenting() -> Transform {
        Transform::Train(TrainTransform {
            load_size: Some(24),
            crop_size: 16,
            blur: BlurAug {
                prob: 0.5,
                sigma: [0.0, 2.0],
            },
            jpeg: JpegAug {
                prob: 0.5,
                quality: [50, 95],
            },
            ..TrainTransform::default()
        })
    }

    /// One loader (one pool) for several epochs, an epoch dropped half-way among them,
    /// gives what a fresh loader gives for each epoch.
    #[test]
    fn a_loader_serves_every_epoch_like_a_fresh_one() {
        let tree = Tree::new();
        let sizes: Vec<(u32, u32)> = (0..9).map(|i| (20 + i, 24)).collect();
        let samples = dataset(&tree, &sizes);
        let opts = LoaderOptions {
            batch_size: 4,
            workers: 2,
            seed: 3,
            ..LoaderOptions::default()
        };
        let loader = Loader::new(
            samples.clone(),
            augmenting(),
            opts.clone(),
            Arc::new(SkipLog::new()),
        )
        .unwrap();
        let first = loader.epoch(0).unwrap().next();
        assert!(first.is_some());
        for epoch in 0..3 {
            let reused: Vec<Batch> = loader.epoch(epoch).unwrap().collect();
            assert_eq!(
                reused,
                collect(&samples, &augmenting(), &opts, epoch),
                "epoch {epoch}"
            );
        }
    }

    #[test]
    fn same_seed_same_batches_for_any_worker_count() {
        let tree = Tree::new();
        let sizes: Vec<(u32, u32)> = (0..11).map(|i| (20 + i, 30 - i)).collect();
        let samples = dataset(&tree, &sizes);
        let opts = |workers| LoaderOptions {
            batch_size: 4,
            workers,
            seed: 5,
            ..LoaderOptions::default()
        };
        let one = collect(&samples, &augmenting(), &opts(1), 2);
        let three = collect(&samples, &augmenting(), &opts(3), 2);
        assert_eq!(one, three);
        assert_eq!(one.iter().map(|b| b.n).collect::<Vec<_>>(), [4, 4, 3]);
        assert!(one
            .iter()
            .all(|b| (b.h, b.w) == (16, 16) && b.data.len() == b.n * 16 * 16 * 3));
        let mut seen: Vec<usize> = one.iter().flat_map(|b| b.indices.clone()).collect();
        seen.sort();
        assert_eq!(seen, (0..11).collect::<Vec<_>>());
        for b in &one {
            assert!(b
                .indices
                .iter()
                .zip(&b.labels)
                .all(|(&i, &l)| samples[i].label == l));
        }
        assert_ne!(
            collect(&samples, &augmenting(), &opts(2), 3),
            one,
            "another epoch differs"
        );
    }

    #[test]
    fn augmentation_does_not_depend_on_batch_size_or_order() {
        let tree = Tree::new();
        let samples = dataset(&tree, &[(24, 24); 6]);
        let by_index = |batch_size, shuffle| {
            let opts = LoaderOptions {
                batch_size,
                shuffle,
                workers: 2,
                ..LoaderOptions::default()
            };
            let mut m = BTreeMap::new();
            for b in collect(&samples, &augmenting(), &opts, 0) {
                for (k, &i) in b.indices.iter().enumerate() {
                    m.insert(i, b.image(k).to_vec());
                }
            }
            m
        };
        assert_eq!(by_index(1, false), by_index(4, true));
    }

    #[test]
    fn full_size_testing_buckets_equal_sizes() {
        let tree = Tree::new();
        let sizes = [
            (16, 16),
            (20, 12),
            (16, 16),
            (20, 12),
            (16, 16),
            (17, 17),
            (16, 16),
        ];
        let samples = dataset(&tree, &sizes);
        let t = Transform::Test(TestTransform {
            resize: None,
            crop: Crop::None,
            ..TestTransform::default()
        });
        let opts = LoaderOptions {
            batch_size: 2,
            workers: 2,
            shuffle: false,
            ..LoaderOptions::default()
        };
        let got: Vec<(usize, usize, Vec<usize>)> = collect(&samples, &t, &opts, 0)
            .into_iter()
            .map(|b| (b.h, b.w, b.indices))
            .collect();
        assert_eq!(
            got,
            [
                (16, 16, vec![0, 2]),
                (12, 20, vec![1, 3]),
                (16, 16, vec![4, 6]),
                (17, 17, vec![5])
            ]
        );
        // A tight memory cap emits partial groups early instead of holding them.
        let capped = LoaderOptions {
            batch_size: 8,
            bucket_memory: 1,
            ..opts
        };
        let n: usize = collect(&samples, &t, &capped, 0).iter().map(|b| b.n).sum();
        assert_eq!(n, sizes.len());
    }

    #[test]
    fn balance_oversamples_the_minority_label() {
        let samples: Vec<Sample> = (0..8)
            .map(|i| sample(format!("{i}.png").into(), u8::from(i >= 2)))
            .collect();
        let opts = LoaderOptions {
            balance: true,
            seed: 3,
            ..LoaderOptions::default()
        };
        let order = epoch_order(&samples, &opts, 0);
        assert_eq!(order.len(), 12);
        assert_eq!(
            order.iter().filter(|d| samples[d.index].label == 0).count(),
            6
        );
        assert_eq!(order, epoch_order(&samples, &opts, 0));
        assert_ne!(order, epoch_order(&samples, &opts, 1));
        let repeats = order
            .iter()
            .filter(|d| d.index == 0)
            .map(|d| d.occurrence)
            .collect::<Vec<_>>();
        assert_eq!(repeats, [0, 1, 2]);
        let plain = LoaderOptions {
            shuffle: false,
            ..LoaderOptions::default()
        };
        let idx: Vec<usize> = epoch_order(&samples, &plain, 0)
            .iter()
            .map(|d| d.index)
            .collect();
        assert_eq!(idx, (0..8).collect::<Vec<_>>());
    }

    #[test]
    fn skipped_files_leave_the_batch_shorter() {
        let tree = Tree::new();
        let mut samples = (*dataset(&tree, &[(20, 20); 4])).clone();
        samples.insert(
            1,
            sample(tree.write("broken.png", b"\x89PNG\r\n\x1a\nnope"), 1),
        );
        samples.push(sample(tree.root().join("missing.png"), 0));
        let samples = Arc::new(samples);
        let skips = Arc::new(SkipLog::new());
        let t = Transform::Train(TrainTransform {
            load_size: None,
            crop_size: 24,
            ..TrainTransform::default()
        });
        let opts = LoaderOptions {
            batch_size: 8,
            workers: 2,
            ..LoaderOptions::default()
        };
        let got: Vec<Batch> = batches(samples, t, opts, 0, skips.clone())
            .unwrap()
            .collect();
        assert_eq!(got.iter().map(|b| b.n).sum::<usize>(), 4);
        let s = skips.summary();
        assert_eq!((s.skipped, s.upscaled), (2, 4), "{s}");
        assert_eq!(s.by_reason[&SkipReason::Corrupt], 1);
        assert_eq!(s.by_reason[&SkipReason::Unreadable], 1);
    }

    #[test]
    fn dropping_early_stops_the_producer() {
        let tree = Tree::new();
        let one = dataset(&tree, &[(24, 24)]);
        let samples = Arc::new(vec![one[0].clone(); 400]);
        let opts = LoaderOptions {
            batch_size: 2,
            workers: 2,
            prefetch: 1,
            ..LoaderOptions::default()
        };
        let mut it = batches(samples, augmenting(), opts, 0, Arc::new(SkipLog::new())).unwrap();
        assert_eq!(it.next().map(|b| b.n), Some(2));
        drop(it); // joins; a hang here fails the test by timeout
    }

    #[test]
    fn invalid_options_are_errors() {
        let samples = Arc::new(Vec::new());
        let bad = LoaderOptions {
            workers: 0,
            ..LoaderOptions::default()
        };
        let err = batches(
            samples.clone(),
            augmenting(),
            bad,
            0,
            Arc::new(SkipLog::new()),
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("data.workers"));
        let bad_t = Transform::Train(TrainTransform {
            crop_size: 512,
            ..TrainTransform::default()
        });
        assert!(batches(
            samples.clone(),
            bad_t,
            LoaderOptions::default(),
            0,
            Arc::new(SkipLog::new())
        )
        .is_err());
        let empty = batches(
            samples,
            augmenting(),
            LoaderOptions::default(),
            0,
            Arc::new(SkipLog::new()),
        )
        .unwrap();
        assert_eq!(empty.count(), 0);
    }
}
