//! The HTTP side of `npr serve`: the page, `GET /api/health`, `POST /api/predict` (the
//! image bytes as the body) and, in folder mode, `GET /api/folder` and
//! `GET /api/folder/predict?path=REL` (README.md, `npr serve`).
//!
//! Every image goes through the loader's own decoder and limits ([`crate::data`]) and the
//! transform of `npr predict`, so a score here is the score `npr predict` prints. Memory
//! is bounded three ways: a few bodies are read and decoded at a time (the rest wait),
//! decoded images waiting for the model may hold at most the loader's bucket memory, and
//! the model's queue is bounded; past the last two a request gets 503 at once.
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use image::RgbImage;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use super::assets;
use super::root::{FolderRoot, PathRefused};
use super::worker::{Job, Refused, Scored, Worker};
use crate::data::{self, DecodeLimits, Rejected, SkipReason, TestTransform};
use crate::explain::maps::png_bytes;
use crate::explain::Explanation;

/// Images listed in folder mode at most (the page sorts them in the browser).
pub const MAX_LISTED: usize = 5000;
/// Bodies read and decoded at the same time.
pub const CONCURRENT_DECODES: usize = 2;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub worker: Worker,
    pub transform: Arc<TestTransform>,
    pub limits: DecodeLimits,
    /// The largest body accepted: what the loader would read from disk for these limits.
    pub max_upload_bytes: u64,
    pub decodes: Arc<Semaphore>,
    /// KiB of decoded images waiting for or inside the model.
    pub queued_kib: Arc<Semaphore>,
    pub queued_kib_total: u32,
    pub root: Option<Arc<FolderRoot>>,
    /// The checkpoint, as `/api/health` names it.
    pub checkpoint: String,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", assets::INDEX_HTML) }),
        )
        .route(
            "/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", assets::APP_JS) }),
        )
        .route(
            "/style.css",
            get(|| async { asset("text/css; charset=utf-8", assets::STYLE_CSS) }),
        )
        .route("/api/health", get(health))
        .route("/api/predict", post(predict))
        .route("/api/folder", get(folder))
        .route("/api/folder/predict", get(folder_predict))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such page or API route".into()) })
        .with_state(state)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // The page loads nothing from elsewhere; maps arrive as data: URLs.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data: blob:; style-src 'self'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// `{"error": message}` with `status`.
pub fn error(status: StatusCode, message: String) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

fn busy(message: &str) -> Response {
    let mut r = error(StatusCode::SERVICE_UNAVAILABLE, message.to_string());
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

/// The HTTP status of a rejected image: the loader's reason decides.
pub fn status_of(reason: SkipReason) -> StatusCode {
    match reason {
        SkipReason::Oversized => StatusCode::PAYLOAD_TOO_LARGE,
        SkipReason::Empty | SkipReason::NotImage | SkipReason::UnsupportedFormat => {
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        }
        SkipReason::Corrupt | SkipReason::TooSmall => StatusCode::UNPROCESSABLE_ENTITY,
        SkipReason::Unreadable | SkipReason::NotAFile => StatusCode::NOT_FOUND,
    }
}

async fn health(State(s): State<AppState>) -> Response {
    let c = &s.worker.config;
    Json(json!({
        "status": "ok",
        "checkpoint": s.checkpoint,
        "scales": c.model.scales,
        "fusion": format!("{:?}", c.model.fusion).to_lowercase(),
        "preprocessing": describe(&s.transform),
        "folder": s.root.is_some(),
        "limits": {
            "max_pixels": s.limits.max_pixels,
            "max_upload_bytes": s.max_upload_bytes,
        },
    }))
    .into_response()
}

fn describe(t: &TestTransform) -> String {
    let resize = match t.resize {
        Some(n) => format!("resize to {n}×{n}"),
        None => "full size".to_string(),
    };
    let crop = match t.crop {
        data::Crop::None => "no crop".to_string(),
        data::Crop::Center(n) => format!("centre crop {n}"),
        data::Crop::Tile(n) => format!("tile to {n}"),
    };
    format!("{resize}, {crop}")
}

#[derive(Debug, Deserialize)]
pub struct PredictQuery {
    /// Also return the maps (PNG data URLs).
    #[serde(default)]
    maps: bool,
    /// A name to echo back (the page sends the file name).
    #[serde(default)]
    name: Option<String>,
}

async fn predict(
    State(s): State<AppState>,
    Query(q): Query<PredictQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the upload is larger than {} bytes, more than any image within the pixel limit ({:.0} MP)",
                s.max_upload_bytes,
                s.limits.max_pixels as f64 / 1e6
            ),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > s.max_upload_bytes) {
        return too_large();
    }
    let Ok(permit) = s.decodes.clone().acquire_owned().await else {
        return busy("shutting down");
    };
    let limit = usize::try_from(s.max_upload_bytes).unwrap_or(usize::MAX);
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => return too_large(),
    };
    let name = q.name.clone().unwrap_or_else(|| "upload".to_string());
    let (limits, transform) = (s.limits, s.transform.clone());
    let decoded = blocking(move || {
        let img = data::decode_bytes(&bytes, &limits)?;
        Ok(data::apply_test(img, &transform)?.image)
    })
    .await;
    drop(permit);
    answer(&s, decoded, q.maps, name).await
}

#[derive(Debug, Deserialize)]
pub struct FolderQuery {
    path: String,
    #[serde(default)]
    maps: bool,
}

async fn folder(State(s): State<AppState>) -> Response {
    let Some(root) = s.root.clone() else {
        return folder_off();
    };
    let listed = tokio::task::spawn_blocking(move || root.list(MAX_LISTED)).await;
    match listed {
        Ok(Ok((images, more))) => Json(json!({
            "root": s.root.as_ref().map(|r| r.path().display().to_string()),
            "images": images,
            "not_listed": more,
        }))
        .into_response(),
        Ok(Err(e)) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("listing the folder: {e:#}"),
        ),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("listing the folder: {e}"),
        ),
    }
}

fn folder_off() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "folder mode is off: start `npr serve` with --root DIR".to_string(),
    )
}

async fn folder_predict(State(s): State<AppState>, Query(q): Query<FolderQuery>) -> Response {
    let Some(root) = s.root.clone() else {
        return folder_off();
    };
    let path = match root.resolve(&q.path) {
        Ok(p) => p,
        Err(refused @ (PathRefused::NotBelowRoot(_) | PathRefused::Escapes(_))) => {
            return error(StatusCode::FORBIDDEN, refused.to_string())
        }
        Err(refused) => return error(StatusCode::NOT_FOUND, refused.to_string()),
    };
    let Ok(permit) = s.decodes.clone().acquire_owned().await else {
        return busy("shutting down");
    };
    let (limits, transform) = (s.limits, s.transform.clone());
    let decoded = blocking(move || {
        let img = data::decode_file(&path, &limits)?;
        Ok(data::apply_test(img, &transform)?.image)
    })
    .await;
    drop(permit);
    answer(&s, decoded, q.maps, q.path.clone()).await
}

/// Runs decoding on the blocking pool; a panicking decoder becomes a rejection.
async fn blocking(
    f: impl FnOnce() -> Result<RgbImage, Rejected> + Send + 'static,
) -> Result<RgbImage, Rejected> {
    let run = move || {
        catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
            Err(Rejected::new(
                SkipReason::Corrupt,
                "the decoder panicked on this file",
            ))
        })
    };
    tokio::task::spawn_blocking(run)
        .await
        .unwrap_or_else(|e| Err(Rejected::new(SkipReason::Corrupt, e.to_string())))
}

/// Queues a decoded image for the model and turns its answer into JSON.
async fn answer(
    s: &AppState,
    decoded: Result<RgbImage, Rejected>,
    maps: bool,
    name: String,
) -> Response {
    let image = match decoded {
        Ok(img) => img,
        Err(r) => {
            return error(
                status_of(r.reason),
                format!(
                    "{name}: not accepted as an image ({}): {}",
                    r.reason.name(),
                    r.detail
                ),
            )
        }
    };
    let kib = u32::try_from(image.as_raw().len() / 1024 + 1).unwrap_or(u32::MAX);
    let permit: OwnedSemaphorePermit = match s
        .queued_kib
        .clone()
        .try_acquire_many_owned(kib.min(s.queued_kib_total))
    {
        Ok(p) => p,
        Err(_) => return busy("the model is busy (too many images waiting); retry shortly"),
    };
    let (tx, rx) = oneshot::channel();
    match s.worker.submit(Job {
        image,
        maps,
        reply: tx,
    }) {
        Ok(()) => {}
        Err(Refused::Busy) => return busy("the model is busy (queue full); retry shortly"),
        Err(Refused::Stopped) => return busy("the model has stopped (shutting down)"),
    }
    let scored = match rx.await {
        Ok(Ok(scored)) => scored,
        Ok(Err(e)) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("{name}: scoring failed: {e}"),
            )
        }
        Err(_) => return busy("the model has stopped (shutting down)"),
    };
    drop(permit);
    let scales = s.worker.config.model.scales.clone();
    let rendered = tokio::task::spawn_blocking(move || render(scored, &scales, &name)).await;
    match rendered {
        Ok(Ok(value)) => Json(value).into_response(),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// The answer's JSON: the fields of `npr predict --json`, plus with maps the fields of
/// `npr predict --maps`'s JSON with each map as a PNG data URL.
fn render(scored: Scored, scales: &[f64], name: &str) -> anyhow::Result<serde_json::Value> {
    let (logit, score) = (scored.logit, scored.score);
    let weights_rgb: Vec<Vec<f32>> = scored.weights.chunks(3).map(<[f32]>::to_vec).collect();
    let Some(explained) = scored.explanation() else {
        let weights: Vec<f64> = weights_rgb
            .iter()
            .map(|c| c.iter().map(|&w| f64::from(w)).sum::<f64>() / c.len() as f64)
            .collect();
        return Ok(json!({
            "path": name, "score": score, "logit": logit,
            "pred": if logit > 0.0 { "fake" } else { "real" },
            "scales": scales, "weights": weights, "weights_rgb": weights_rgb,
        }));
    };
    let urls = data_urls(&explained)?;
    Ok(serde_json::to_value(explained.summary(name, urls))?)
}

fn data_urls(e: &Explanation) -> anyhow::Result<BTreeMap<String, String>> {
    let keys = e
        .maps
        .scales
        .iter()
        .map(|&s| crate::explain::maps::map_name(s))
        .chain(["fused".to_string()]);
    keys.zip(e.maps.named(""))
        .map(|(key, (_, img))| {
            let b64 = base64::engine::general_purpose::STANDARD.encode(png_bytes(img)?);
            Ok((key, format!("data:image/png;base64,{b64}")))
        })
        .collect()
}
