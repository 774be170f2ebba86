//! The data layer: find labelled images, decode them exactly as PIL does, transform them
//! as the official NPR / CNNDetection pipelines do, and load them in deterministic,
//! prefetched uint8 batches (ARCHITECTURE.md, Data).
//!
//! - [`discover`](discover()) / [`discover_split`] → [`Discovered`] (samples, summary, skips)
//! - [`SplitSpec::load`] → [`Splits`] (a run's training and validation sets, checked)
//! - [`decode_file`] → `image::RgbImage` (PNG via `image`, JPEG via libjpeg-turbo)
//! - [`TrainTransform`], [`TestTransform`] → [`Transform::apply`]
//! - [`batches`] → [`BatchIter`] of [`Batch`] (NHWC uint8), skips into a [`SkipLog`]
//!
//! Self-contained: only `super::`/`self::` paths, no `crate::`.

mod blur;
mod decode;
mod discover;
mod disjoint;
mod error;
mod from_config;
mod jpeg;
mod loader;
mod resize;
mod seed;
mod skip;
mod splits;
mod transform;

#[cfg(test)]
mod corpus;
#[cfg(test)]
pub(crate) mod fixtures;

pub use blur::{gaussian_blur, gaussian_kernel};
pub use decode::{
    check_file_size, decode_bytes, decode_file, sniff, DecodeLimits, Format, DEFAULT_MAX_PIXELS,
};
pub use discover::{
    discover, discover_required_split, discover_split, discover_test_set, fingerprint,
    images_under, label_of_folder, split_val, Discovered, Sample, Summary, SummaryRow, FAKE,
    IMAGE_EXTENSIONS, REAL, SPLIT_NAMES, UNSUPPORTED_EXTENSIONS,
};
pub use disjoint::{check_disjoint, shared_images, SameBy, Shared};
pub use error::{DataError, EXPECTED_LAYOUTS};
pub use jpeg::{encode as encode_jpeg, reencode as jpeg_reencode};
pub use loader::{
    batches, draw_seed, epoch_order, load_one, Batch, BatchIter, Draw, Loader, LoaderOptions,
};
pub use resize::{resize_bilinear, shorter_side_size};
pub use seed::{derive_seed, rng_for};
pub use skip::{Rejected, Skip, SkipLog, SkipReason, SkipSummary};
pub use splits::{SplitSpec, Splits, ValFrom};
pub use transform::{
    apply_test, apply_train, center_crop, tile_to_cover, Applied, BlurAug, Crop, JpegAug,
    ResizeMode, TestTransform, TrainTransform, Transform,
};
