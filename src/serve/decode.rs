//! Decoding an image for the model under the server's budgets ([`super::budget`]): the
//! cost from the header, the admission, then a decode slot — a small-image slot, or the
//! decoded bytes from the shared budget of large decodes in flight — held only while the
//! image is decoded and transformed.
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use axum::body::Bytes;
use image::RgbImage;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::budget::{cost_of, Budget, SMALL_COST};
use crate::data::{self, DecodeLimits, Rejected, SkipReason, TestTransform};

/// Bodies decoded at the same time among small images.
pub const SMALL_DECODES: usize = 2;

/// What decoding shares across requests.
#[derive(Clone)]
pub struct Decoder {
    pub limits: DecodeLimits,
    pub budget: Budget,
    pub transform: Arc<TestTransform>,
    /// Slots for small decodes.
    small: Arc<Semaphore>,
    /// KiB of large decodes in flight (capacity: one image at the per-image budget).
    large_kib: Arc<Semaphore>,
    large_kib_total: u32,
}

/// Why an image was not decoded.
pub enum NotDecoded {
    Rejected(Rejected),
    /// The server is stopping.
    Stopping,
}

impl From<Rejected> for NotDecoded {
    fn from(r: Rejected) -> Self {
        NotDecoded::Rejected(r)
    }
}

impl Decoder {
    pub fn new(limits: DecodeLimits, transform: Arc<TestTransform>) -> Self {
        let budget = Budget::new(&limits);
        let large_kib_total = u32::try_from(budget.per_image / 1024)
            .unwrap_or(u32::MAX)
            .max(1);
        Decoder {
            limits,
            budget,
            transform,
            small: Arc::new(Semaphore::new(SMALL_DECODES)),
            large_kib: Arc::new(Semaphore::new(large_kib_total as usize)),
            large_kib_total,
        }
    }

    /// Decodes and transforms `file`; `sent` is the upload's size (`None` in folder mode,
    /// whose files the person who started the server chose).
    pub async fn decode(&self, file: Bytes, sent: Option<u64>) -> Result<RgbImage, NotDecoded> {
        let cost = cost_of(&file);
        if let Some(cost) = &cost {
            // The pixel limit first: it is the reason a user can act on.
            self.limits
                .check(u64::from(cost.width), u64::from(cost.height))?;
            self.budget.admit(cost, sent)?;
        }
        let _slot = self.slot(cost.map_or(0, |c| c.bytes)).await?;
        let (limits, transform) = (self.limits, self.transform.clone());
        Ok(blocking(move || {
            let img = data::decode_bytes(&file, &limits)?;
            Ok(data::apply_test(img, &transform)?.image)
        })
        .await?)
    }

    /// A small-decode slot, or `bytes` (in KiB) of the large-decode budget.
    async fn slot(&self, bytes: u64) -> Result<OwnedSemaphorePermit, NotDecoded> {
        let acquired = if bytes <= SMALL_COST {
            self.small.clone().acquire_owned().await
        } else {
            let kib = u32::try_from(bytes / 1024 + 1).unwrap_or(u32::MAX);
            self.large_kib
                .clone()
                .acquire_many_owned(kib.min(self.large_kib_total))
                .await
        };
        acquired.map_err(|_| NotDecoded::Stopping)
    }
}

/// Runs decoding on the blocking pool; a panicking decoder becomes a rejection.
async fn blocking(
    f: impl FnOnce() -> Result<RgbImage, Rejected> + Send + 'static,
) -> Result<RgbImage, Rejected> {
    let panicked = || Rejected::new(SkipReason::Corrupt, "the decoder panicked on this file");
    let run = move || catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| Err(panicked()));
    tokio::task::spawn_blocking(run)
        .await
        .unwrap_or_else(|e| Err(Rejected::new(SkipReason::Corrupt, e.to_string())))
}
