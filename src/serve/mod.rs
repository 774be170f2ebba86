//! `npr serve`: a local page that shows an image's score, its per-scale weights and the
//! NPR residual at every scale, and a JSON API for scripts (README.md, `npr serve`).
//!
//! - [`worker`]: the one model, on one thread, fed by a bounded queue in small batches
//! - [`api`]: the routes, the limits, the JSON
//! - [`root`]: folder mode's confinement to `--root`
//! - [`assets`]: the page (HTML, JS, CSS compiled into the binary; nothing from a CDN)
pub mod api;
pub mod assets;
pub mod root;
pub mod worker;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::sync::Semaphore;

use crate::data::{DecodeLimits, LoaderOptions};
use crate::eval::score::predict_transform;
use api::AppState;
use root::FolderRoot;
use worker::Worker;

/// What `npr serve` was asked for.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub checkpoint: std::path::PathBuf,
    pub addr: String,
    pub root: Option<std::path::PathBuf>,
    pub batch_size: usize,
    pub queue: usize,
    pub device: tch::Device,
}

/// Parses `--addr`: `HOST:PORT` with an IP address, or `localhost:PORT`.
pub fn parse_addr(addr: &str) -> Result<SocketAddr> {
    let normalised = match addr.strip_prefix("localhost:") {
        Some(port) => format!("127.0.0.1:{port}"),
        None => addr.to_string(),
    };
    normalised.parse().map_err(|_| {
        crate::usage!("--addr {addr:?}: expected IP:PORT, e.g. 127.0.0.1:8080 or [::1]:8080 (0.0.0.0:8080 listens on every interface)")
    })
}

/// Loads the model, binds, serves until SIGINT/SIGTERM, answers what is in flight and
/// returns: the only way it ends without an error. `on_ready` gets the bound address
/// (port 0 picks a free port).
pub fn run(options: &ServeOptions, on_ready: impl FnOnce(SocketAddr)) -> Result<()> {
    let addr = parse_addr(&options.addr)?;
    let root = options
        .root
        .as_deref()
        .map(FolderRoot::new)
        .transpose()?
        .map(Arc::new);
    if options.batch_size == 0 || options.queue == 0 {
        return Err(crate::usage!("--batch-size and --queue must be at least 1"));
    }
    crate::interrupt::install_for_server()?;
    let worker = Worker::spawn(
        &options.checkpoint,
        options.device,
        options.batch_size,
        options.queue,
    )?;
    let transform = Arc::new(predict_transform(&worker.config));
    // A checkpoint that scores at full size sees whole images: cap them at what one
    // forward pass may hold (see `worker::MAX_BATCH_PIXELS`); resized inputs may be large.
    let limits = if transform.output_size().is_none() {
        DecodeLimits {
            max_pixels: worker::MAX_BATCH_PIXELS,
            ..DecodeLimits::default()
        }
    } else {
        DecodeLimits::default()
    };
    let budget_kib =
        u32::try_from(LoaderOptions::default().bucket_memory / 1024).unwrap_or(u32::MAX);
    let state = AppState {
        worker,
        transform,
        limits,
        max_upload_bytes: limits.max_file_bytes(),
        decodes: Arc::new(Semaphore::new(api::CONCURRENT_DECODES)),
        queued_kib: Arc::new(Semaphore::new(budget_kib as usize)),
        queued_kib_total: budget_kib,
        root,
        checkpoint: options.checkpoint.display().to_string(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| crate::usage!("--addr {addr}: cannot listen there ({e})"))?;
        let bound = listener.local_addr()?;
        on_ready(bound);
        axum::serve(listener, api::router(state))
            .with_graceful_shutdown(stop_requested())
            .await
            .context("serving")?;
        Ok(())
    })
}

/// Resolves when SIGINT or SIGTERM has arrived (the handler of [`crate::interrupt`], so
/// the exit code follows the same contract as `npr train`: 130 / 143).
async fn stop_requested() {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    while crate::interrupt::requested().is_none() {
        tick.tick().await;
    }
}
