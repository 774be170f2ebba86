//! Reading an upload into memory without letting a slow client hold anything but its
//! own connection (README.md, `npr serve`).
//!
//! The body is read before any decode slot is taken, so a client sending one byte a
//! second delays nobody else. Memory is bounded by what has actually arrived: every chunk
//! takes its size from a shared budget of body bytes (503 when it is spent), and the
//! whole body must arrive within the deadline (408 after it).
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::http::StatusCode;
use axum::response::Response;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::reply::{busy, error};

/// Why a body was not read.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyRefused {
    /// Longer than `limit` (413).
    TooLarge,
    /// Not complete within the deadline (408).
    TimedOut,
    /// The shared budget of body bytes is spent (503).
    Busy,
    /// The client closed or sent a malformed body (400).
    Broken(String),
}

impl BodyRefused {
    /// The answer; `too_large` words the 413 (it knows the limits).
    pub fn response(self, deadline: Duration, too_large: impl FnOnce() -> Response) -> Response {
        let secs = deadline.as_secs_f64();
        match self {
            BodyRefused::TooLarge => too_large(),
            BodyRefused::TimedOut => error(
                StatusCode::REQUEST_TIMEOUT,
                format!("the upload did not arrive within {secs:.1} s (--body-timeout)"),
            ),
            BodyRefused::Busy => busy("too many uploads in memory; retry shortly"),
            BodyRefused::Broken(why) => error(
                StatusCode::BAD_REQUEST,
                format!("reading the upload: {why}"),
            ),
        }
    }
}

/// A body in memory, and its share of the budget (released when dropped).
pub struct Upload {
    pub bytes: Bytes,
    pub _held: Option<OwnedSemaphorePermit>,
}

/// Reads `body` (at most `limit` bytes) within `deadline`, taking each chunk's KiB from
/// `budget_kib`.
pub async fn read(
    body: Body,
    limit: u64,
    deadline: Duration,
    budget_kib: &std::sync::Arc<Semaphore>,
) -> Result<Upload, BodyRefused> {
    let read = tokio::time::timeout(deadline, collect(body, limit, budget_kib)).await;
    read.unwrap_or(Err(BodyRefused::TimedOut))
}

async fn collect(
    mut body: Body,
    limit: u64,
    budget_kib: &std::sync::Arc<Semaphore>,
) -> Result<Upload, BodyRefused> {
    let mut bytes = Vec::new();
    let mut held: Option<OwnedSemaphorePermit> = None;
    while let Some(frame) =
        std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await
    {
        let frame = frame.map_err(|e| BodyRefused::Broken(e.to_string()))?;
        let Ok(chunk) = frame.into_data() else {
            continue; // trailers
        };
        if (bytes.len() + chunk.len()) as u64 > limit {
            return Err(BodyRefused::TooLarge);
        }
        // KiB now held for everything read so far, rounded up.
        let want = (bytes.len() + chunk.len()).div_ceil(1024);
        let have = held.as_ref().map_or(0, OwnedSemaphorePermit::num_permits);
        if want > have {
            let more = u32::try_from(want - have).map_err(|_| BodyRefused::TooLarge)?;
            let permit = budget_kib
                .clone()
                .try_acquire_many_owned(more)
                .map_err(|_| BodyRefused::Busy)?;
            match held.as_mut() {
                Some(h) => h.merge(permit),
                None => held = Some(permit),
            }
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Upload {
        bytes: Bytes::from(bytes),
        _held: held,
    })
}
