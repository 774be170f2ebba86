//! The data layer: find labelled images, decode them exactly as PIL does, transform them
//! as the official NPR / CNNDetection pipelines do, and load them in deterministic,
//! prefetched uint8 batches (ARCHITECTURE.md, Data).
//!
//! - [`discover`](discover()) / [`discover_split`] → [`Discovered`] (samples, summary, skips)
//! - [`SplitSpec::load`] → [`Splits`] (a run's training and validation sets, checked)
//! - [`check_disjoint`] (no image in two sets; hashes remembered in a [`HashCache`])
//! - [`decode_file`] → `image::RgbImage` (PNG via `image`, JPEG via libjpeg-turbo)
//! - [`TrainTransform`], [`TestTransform`] → [`Transform::apply`]
//! - [`batches`] → [`BatchIter`] of [`Batch`] (NHWC uint8), skips into a [`SkipLog`]
//!
//! Self-contained: only `super::`/`self::` paths, no `crate::` but `crate::atomic` (the split
//! check's hash cache is written whole or not at all) and `crate::progress` (the split check
//! reports like every other long step).

mod blur;
mod decode;
mod discover;
mod disjoint;
mod error;
mod from_config;
mod jpeg;
mod loader;
mod photo_sources;
mod resize;
mod seed;
mod skip;
mod splits;
mod transform;

#[cfg(test)]
mod corpus;
#[cfg(test)]
pub(crate) mod fixtures;

pub use decode::{
    check_file_size, decode_bytes, decode_file, sniff, DecodeLimits, Format, DEFAULT_MAX_PIXELS,
};
pub use discover::{
    discover, discover_split, discover_test_set, fingerprint, images_under, label_of_folder,
    Discovered, Sample, FAKE, IMAGE_EXTENSIONS, REAL,
};
pub use disjoint::{check_disjoint, HashCache};
pub use error::DataError;
pub use jpeg::encode as encode_jpeg;
pub use loader::{batches, Batch, BatchIter, Loader, LoaderOptions};
pub use photo_sources::{check_photo_sources, SourceRow, SOURCES_FILE};
pub use skip::{Rejected, Skip, SkipLog, SkipReason};
pub use splits::{SplitSpec, Splits, ValFrom};
pub use transform::{
    apply_test, BlurAug, Crop, JpegAug, ResizeMode, TestTransform, TrainTransform, Transform,
};
