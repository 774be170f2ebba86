//! Every answer that is not a success is JSON `{"error": "…"}` (README.md, `npr serve`):
//! the helpers the handlers share, and a query extractor whose rejection (a bad
//! `maps=yes`, a missing `path`) is a JSON 400 instead of axum's plain-text one.
use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::data::SkipReason;

/// `{"error": message}` with `status`.
pub fn error(status: StatusCode, message: String) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// 503 with `Retry-After: 1`: the server is full right now, not broken.
pub fn busy(message: &str) -> Response {
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

/// The answer for a known route with the wrong method.
pub async fn method_not_allowed() -> Response {
    let why = "method not allowed on this route (POST /api/predict; GET for the others)";
    error(StatusCode::METHOD_NOT_ALLOWED, why.into())
}

/// The answer for an unknown route.
pub async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such page or API route".into())
}

/// `Query<T>`, with a JSON 400 naming the bad parameter when it does not parse.
pub struct JsonQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for JsonQuery<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(q)) => Ok(JsonQuery(q)),
            Err(rejection) => Err(error(
                StatusCode::BAD_REQUEST,
                format!("bad query string: {}", rejection.body_text()),
            )),
        }
    }
}
