//! Loader throughput (`npr bench --loader`, figures in BENCHMARKS.md): decode + training augmentation +
//! batching exactly as in training, timed from the first job to the last batch. The
//! PyTorch reference is `scripts/bench_loader.py`; `scripts/bench_loader.sh` runs both.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::data::DataError;
use crate::data::SkipLog;
use crate::data::{batches, LoaderOptions};
use crate::data::{discover, Sample};
use crate::data::{TrainTransform, Transform};

#[derive(Clone, Debug, Serialize)]
pub struct LoaderBench {
    pub images: usize,
    pub batches: usize,
    pub skipped: usize,
    pub workers: usize,
    pub batch_size: usize,
    pub seconds: f64,
    pub images_per_s: f64,
}

impl fmt::Display for LoaderBench {
    /// `loader images/s: 1234.5 (…)` — scripts read the number after the colon.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "loader images/s: {:.1} ({} images in {} batches, {:.2} s, {} workers, batch {}, {} skipped)",
            self.images_per_s, self.images, self.batches, self.seconds, self.workers, self.batch_size, self.skipped
        )
    }
}

/// Loads `max_images` images (cycling through the dataset if it is smaller; 0 = all of
/// it once) from `root` with the official training transform (resize `load_size`,
/// random crop `crop_size`, flip).
pub fn bench_loader(
    root: &Path,
    workers: usize,
    batch_size: usize,
    load_size: u32,
    crop_size: u32,
    max_images: usize,
) -> Result<LoaderBench, DataError> {
    let found = discover(root, None)?;
    let n = if max_images == 0 {
        found.samples.len()
    } else {
        max_images
    };
    let samples: Vec<Sample> = found.samples.iter().cycle().take(n).cloned().collect();
    let transform = Transform::Train(TrainTransform {
        load_size: Some(load_size),
        crop_size,
        ..TrainTransform::default()
    });
    let opts = LoaderOptions {
        batch_size,
        workers,
        ..LoaderOptions::default()
    };
    let skips = Arc::new(SkipLog::new());
    let start = Instant::now();
    let (mut images, mut count) = (0, 0);
    for batch in batches(Arc::new(samples), transform, opts, 0, skips.clone())? {
        images += batch.n;
        count += 1;
        std::hint::black_box(&batch.data);
    }
    let seconds = start.elapsed().as_secs_f64();
    Ok(LoaderBench {
        images,
        batches: count,
        skipped: skips.len(),
        workers,
        batch_size,
        seconds,
        images_per_s: images as f64 / seconds.max(1e-9),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::fixtures::touch_png;

    #[test]
    fn bench_runs_on_a_tiny_set() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["0_real/a.png", "1_fake/b.png", "1_fake/c.png"] {
            touch_png(&dir.path().join(f));
        }
        let b = bench_loader(dir.path(), 2, 4, 16, 8, 10).unwrap();
        assert_eq!((b.images, b.batches, b.skipped), (10, 3, 0));
        assert!(b.to_string().starts_with("loader images/s: "));
    }
}
