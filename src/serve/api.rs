//! The HTTP side of `npr serve`: the page, `GET /api/health`, `POST /api/predict` (the
//! image bytes as the body) and, in folder mode, `GET /api/folder` and
//! `GET /api/folder/predict?path=REL` (README.md, `npr serve`).
//!
//! Every request first passes [`super::guard`] (Host, cross-site, the API header). Every
//! image goes through the loader's own decoder and limits ([`crate::data`]) and the
//! checkpoint's test transform, the one `npr predict` and `npr test` use, so a score here
//! is the score they print. Memory is bounded four ways: uploads by the bytes that have
//! arrived ([`super::body`]), decodes by their decoded size ([`super::decode`]), decoded
//! images waiting for the model by the loader's bucket memory, and the model's queue;
//! past the last two a request gets 503 at once.
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::{middleware, Json, Router};
use base64::Engine as _;
use image::RgbImage;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{oneshot, Semaphore};

use super::assets;
use super::body;
use super::decode::{Decoder, NotDecoded};
use super::guard::{self, AllowedHosts};
use super::listing::Listing;
use super::memory::Reclaimer;
use super::reply::{busy, error, status_of, JsonQuery};
use super::root::PathRefused;
use super::worker::{Refused, ScoreJob, Scored, Worker};
use crate::data::{Rejected, SkipReason};
use crate::explain::maps::png_bytes;
use crate::explain::Explanation;

/// Images listed in folder mode at most (the page sorts them in the browser).
pub const MAX_LISTED: usize = 5000;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub worker: Worker,
    pub decoder: Decoder,
    /// The preprocessing policy, named in every answer ([`crate::eval::policy`]).
    pub policy: Arc<str>,
    /// The largest body accepted: what the loader would read from disk for these limits.
    pub max_upload_bytes: u64,
    /// KiB of uploads in memory, over all requests.
    pub bodies_kib: Arc<Semaphore>,
    pub body_timeout: Duration,
    /// KiB of decoded images waiting for or inside the model.
    pub queued_kib: Arc<Semaphore>,
    pub queued_kib_total: u32,
    pub listing: Option<Arc<Listing>>,
    pub reclaimer: Arc<Reclaimer>,
    /// The checkpoint, as `/api/health` names it.
    pub checkpoint: String,
}

pub fn router(state: AppState, hosts: Arc<AllowedHosts>) -> Router {
    Router::new()
        .route("/", asset("text/html; charset=utf-8", assets::INDEX_HTML))
        .route(
            "/app.js",
            asset("text/javascript; charset=utf-8", assets::APP_JS),
        )
        .route(
            "/style.css",
            asset("text/css; charset=utf-8", assets::STYLE_CSS),
        )
        .route("/api/health", get(health))
        .route("/api/predict", post(predict))
        .route("/api/folder", get(folder))
        .route("/api/folder/predict", get(folder_predict))
        .fallback(super::reply::not_found)
        .method_not_allowed_fallback(super::reply::method_not_allowed)
        .with_state(state)
        .layer(middleware::from_fn_with_state(hosts, guard::check))
}

/// GET of a compiled-in file of the page.
fn asset(content_type: &'static str, body: &'static str) -> MethodRouter<AppState> {
    get(move || async move {
        let mut r = body.into_response();
        let h = r.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        // The page loads nothing from elsewhere; maps arrive as data: URLs.
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; frame-ancestors 'none'",
            ),
        );
        let nosniff = HeaderValue::from_static("nosniff");
        h.insert(header::X_CONTENT_TYPE_OPTIONS, nosniff);
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        r
    })
}

async fn health(State(s): State<AppState>) -> Response {
    let c = &s.worker.config;
    Json(json!({
        "status": "ok",
        "checkpoint": s.checkpoint,
        "scales": c.model.scales,
        "fusion": c.model.fusion.to_string(),
        "preprocessing": &*s.policy,
        "folder": s.listing.is_some(),
        "limits": {
            "max_pixels": s.decoder.limits.max_pixels,
            "max_decoded_bytes": s.decoder.budget.per_image,
            "max_upload_bytes": s.max_upload_bytes,
            "body_timeout_s": s.body_timeout.as_secs_f64(),
        },
    }))
    .into_response()
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
    JsonQuery(q): JsonQuery<PredictQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the upload is larger than {} bytes, more than any image within the pixel limit ({:.1} MP)",
                s.max_upload_bytes,
                s.decoder.limits.max_pixels as f64 / 1e6
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
    let upload = match body::read(body, s.max_upload_bytes, s.body_timeout, &s.bodies_kib).await {
        Ok(upload) => upload,
        Err(refused) => return refused.response(s.body_timeout, too_large),
    };
    let name = q.name.clone().unwrap_or_else(|| "upload".to_string());
    let sent = upload.bytes.len() as u64;
    let decoded = s.decoder.decode(upload.bytes.clone(), Some(sent)).await;
    drop(upload);
    let answered = answer(&s, decoded, q.maps, name).await;
    s.reclaimer.touched();
    answered
}

#[derive(Debug, Deserialize)]
pub struct FolderQuery {
    path: String,
    #[serde(default)]
    maps: bool,
}

async fn folder(State(s): State<AppState>) -> Response {
    let Some(listing) = s.listing.clone() else {
        return folder_off();
    };
    match listing.get().await {
        Ok(value) => Json(&*value).into_response(),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("listing the folder: {e:#}"),
        ),
    }
}

fn folder_off() -> Response {
    let why = "folder mode is off: start `npr serve` with --root DIR";
    error(StatusCode::NOT_FOUND, why.to_string())
}

async fn folder_predict(
    State(s): State<AppState>,
    JsonQuery(q): JsonQuery<FolderQuery>,
) -> Response {
    let Some(listing) = s.listing.clone() else {
        return folder_off();
    };
    let path = match listing.root().resolve(&q.path) {
        Ok(p) => p,
        Err(refused @ (PathRefused::NotBelowRoot(_) | PathRefused::Escapes(_))) => {
            return error(StatusCode::FORBIDDEN, refused.to_string())
        }
        Err(refused) => return error(StatusCode::NOT_FOUND, refused.to_string()),
    };
    // The file's bytes count against the same memory as uploads.
    // (A file over the cap is refused by `read_capped` without being read.)
    let size = std::fs::metadata(&path).map_or(0, |m| m.len().min(s.max_upload_bytes));
    let kib = u32::try_from(size.div_ceil(1024)).unwrap_or(u32::MAX);
    let Ok(held) = s.bodies_kib.clone().try_acquire_many_owned(kib) else {
        return busy("too many images in memory; retry shortly");
    };
    let cap = s.max_upload_bytes;
    let read = tokio::task::spawn_blocking(move || read_capped(&path, cap)).await;
    let decoded = match read {
        Ok(Ok(bytes)) => s.decoder.decode(bytes, None).await,
        Ok(Err(rejected)) => Err(NotDecoded::Rejected(rejected)),
        Err(e) => Err(NotDecoded::Rejected(Rejected::new(
            SkipReason::Unreadable,
            e.to_string(),
        ))),
    };
    drop(held);
    let answered = answer(&s, decoded, q.maps, q.path.clone()).await;
    s.reclaimer.touched();
    answered
}

/// A folder file's bytes, refused before reading when it is larger than `cap`.
fn read_capped(path: &std::path::Path, cap: u64) -> Result<Bytes, Rejected> {
    let unreadable = |e: std::io::Error| Rejected::new(SkipReason::Unreadable, e.to_string());
    let meta = std::fs::metadata(path).map_err(unreadable)?;
    crate::data::check_file_size(meta.len(), cap)?;
    std::fs::read(path).map(Bytes::from).map_err(unreadable)
}

/// Queues a decoded image for the model and turns its answer into JSON.
async fn answer(
    s: &AppState,
    decoded: Result<RgbImage, NotDecoded>,
    maps: bool,
    name: String,
) -> Response {
    let image = match decoded {
        Ok(img) => img,
        Err(NotDecoded::Stopping) => return busy("shutting down"),
        Err(NotDecoded::Rejected(r)) => {
            let (reason, detail) = (r.reason.name(), &r.detail);
            let why = format!("{name}: not accepted as an image ({reason}): {detail}");
            return error(status_of(r.reason), why);
        }
    };
    let kib = u32::try_from(image.as_raw().len() / 1024 + 1).unwrap_or(u32::MAX);
    let queued = s.queued_kib.clone();
    let Ok(permit) = queued.try_acquire_many_owned(kib.min(s.queued_kib_total)) else {
        return busy("the model is busy (too many images waiting); retry shortly");
    };
    let (reply, rx) = oneshot::channel();
    match s.worker.submit(ScoreJob { image, maps, reply }) {
        Ok(()) => {}
        Err(Refused::Busy) => return busy("the model is busy (queue full); retry shortly"),
        Err(Refused::Stopped) => return busy("the model has stopped (shutting down)"),
    }
    let scored = match rx.await {
        Ok(Ok(scored)) => scored,
        Ok(Err(e)) => {
            let why = format!("{name}: scoring failed: {e}");
            return error(StatusCode::INTERNAL_SERVER_ERROR, why);
        }
        Err(_) => return busy("the model has stopped (shutting down)"),
    };
    drop(permit);
    let (scales, policy) = (s.worker.config.model.scales.clone(), s.policy.clone());
    let rendered =
        tokio::task::spawn_blocking(move || render(scored, &scales, &name, &policy)).await;
    match rendered {
        Ok(Ok(value)) => Json(value).into_response(),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// The answer's JSON: the fields of `npr predict --json`, plus with maps the fields of
/// `npr predict --maps`'s JSON with each map as a PNG data URL.
fn render(
    scored: Scored,
    scales: &[f64],
    name: &str,
    policy: &str,
) -> anyhow::Result<serde_json::Value> {
    let (logit, score, weights) = (scored.logit, scored.score, scored.weights);
    let Some(maps) = scored.maps else {
        let weights_rgb: Vec<Vec<f32>> = weights.chunks(3).map(<[f32]>::to_vec).collect();
        return Ok(json!({
            "path": name, "score": score, "logit": logit,
            "pred": crate::eval::score::call(logit),
            "scales": scales, "weights": crate::eval::score::branch_means(&weights),
            "weights_rgb": weights_rgb, "preprocessing": policy,
        }));
    };
    // With maps: the same Explanation `npr predict --maps` writes.
    let explained = Explanation {
        logit,
        score,
        weights,
        maps,
    };
    let urls = data_urls(&explained)?;
    let mut value = serde_json::to_value(explained.summary(name, urls))?;
    value["preprocessing"] = json!(policy);
    Ok(value)
}

fn data_urls(e: &Explanation) -> anyhow::Result<BTreeMap<String, String>> {
    e.maps
        .keyed()
        .map(|(key, img)| {
            let b64 = base64::engine::general_purpose::STANDARD.encode(png_bytes(img)?);
            Ok((key, format!("data:image/png;base64,{b64}")))
        })
        .collect()
}
