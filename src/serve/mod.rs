//! `npr serve`: a local page that shows an image's score, its per-scale weights and the
//! NPR residual at every scale, and a JSON API for scripts (README.md, `npr serve`).
//!
//! - [`options`]: the flags, typed and validated
//! - [`listen`]: the accept loop (connection limit, header timeout, bounded shutdown)
//! - [`guard`]: Host allow-list, cross-site refusal, the API header
//! - [`api`]: the routes and the JSON; [`reply`]: JSON errors
//! - [`body`], [`budget`], [`decode`]: uploads and decodes bounded by what they cost
//! - [`worker`]: the one model, on one thread, fed by a bounded queue in small batches
//! - [`memory`]: freed memory goes back to the kernel after a burst
//! - [`root`], [`listing`]: folder mode's confinement to `--root`, its cached listing
//! - [`assets`]: the page (HTML, JS, CSS compiled into the binary; nothing from a CDN)
pub mod api;
pub mod assets;
pub mod body;
pub mod budget;
pub mod decode;
pub mod guard;
pub mod listen;
pub mod listing;
pub mod memory;
pub mod options;
pub mod reply;
pub mod root;
pub mod worker;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::sync::Semaphore;

use crate::data::{DecodeLimits, LoaderOptions};
use crate::eval::policy::{describe_transform, CHECKPOINT_POLICY};
use crate::eval::score::predict_transform;
use api::AppState;
use decode::Decoder;
use guard::AllowedHosts;
use listing::Listing;
use root::FolderRoot;
use worker::Worker;

pub use options::{parse_addr, NetLimits, ServeOptions};

/// Uploads held in memory at once, over all requests (bytes that have arrived).
pub const BODY_MEMORY: usize = 1 << 30;

/// What the server says at startup, besides its address.
pub struct Ready {
    pub addr: SocketAddr,
    /// The `Host` names it answers to.
    pub hosts: Vec<String>,
    /// The preprocessing policy.
    pub policy: String,
}

/// Loads the model, binds, serves until SIGINT/SIGTERM, lets what is in flight finish
/// within the grace and returns: the only way it ends without an error. `on_ready` gets
/// the bound address (port 0 picks a free port).
pub fn run(options: &ServeOptions, on_ready: impl FnOnce(&Ready)) -> Result<()> {
    let addr = parse_addr(&options.addr)?;
    options.net.validate()?;
    let root = options.root.as_deref().map(FolderRoot::new).transpose()?;
    if options.batch_size == 0 || options.queue == 0 {
        return Err(crate::usage!("--batch-size and --queue must be at least 1"));
    }
    crate::interrupt::install_for_server()?;
    let worker = Worker::spawn(options)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let served = runtime.block_on(serve(options, addr, worker, root.map(Arc::new), on_ready));
    // Decodes still running on the blocking pool are not waited for.
    runtime.shutdown_timeout(Duration::from_millis(500));
    served
}

async fn serve(
    options: &ServeOptions,
    addr: SocketAddr,
    worker: Worker,
    root: Option<Arc<FolderRoot>>,
    on_ready: impl FnOnce(&Ready),
) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| crate::usage!("--addr {addr}: cannot listen there ({e})"))?;
    let bound = listener.local_addr()?;
    let hosts = Arc::new(AllowedHosts::new(bound, &options.allow_hosts));
    let state = state(options, worker, root);
    on_ready(&Ready {
        addr: bound,
        hosts: hosts.names().to_vec(),
        policy: state.policy.to_string(),
    });
    if let Some(listing) = state.listing.clone() {
        tokio::spawn(async move { listing.get().await }); // walked once, before the page asks
    }
    let app = api::router(state, hosts);
    listen::serve(listener, app, options.net, stop_requested()).await;
    Ok(())
}

/// What the handlers share (inside the runtime: the reclaimer's task needs it).
fn state(options: &ServeOptions, worker: Worker, root: Option<Arc<FolderRoot>>) -> AppState {
    let transform = Arc::new(predict_transform(&worker.config));
    // A checkpoint that scores at full size sees whole images: cap them at what one
    // forward pass may hold (see `worker::MAX_BATCH_PIXELS`); resized inputs may be large.
    let mut limits = DecodeLimits::default();
    if transform.output_size().is_none() {
        limits.max_pixels = worker::MAX_BATCH_PIXELS;
    }
    let budget_kib =
        u32::try_from(LoaderOptions::default().bucket_memory / 1024).unwrap_or(u32::MAX);
    AppState {
        policy: describe_transform(&transform, CHECKPOINT_POLICY).into(),
        decoder: Decoder::new(limits, transform),
        worker,
        max_upload_bytes: limits.max_file_bytes(),
        bodies_kib: Arc::new(Semaphore::new(BODY_MEMORY / 1024)),
        body_timeout: options.net.body_timeout,
        queued_kib: Arc::new(Semaphore::new(budget_kib as usize)),
        queued_kib_total: budget_kib,
        listing: root.map(|r| Arc::new(Listing::new(r, api::MAX_LISTED, listing::REFRESH))),
        reclaimer: memory::Reclaimer::spawn(),
        checkpoint: options.checkpoint.display().to_string(),
    }
}

/// Resolves when SIGINT or SIGTERM has arrived (the handler of [`crate::interrupt`], so
/// the exit code follows the same contract as `npr train`: 130 / 143).
async fn stop_requested() {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    while crate::interrupt::requested().is_none() {
        tick.tick().await;
    }
}
