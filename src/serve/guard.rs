//! Who may talk to `npr serve`: the checks every request passes before any work.
//!
//! A server on 127.0.0.1 is still reachable from every web page the user opens: a page
//! can send requests to it (forms, `<img>`, `fetch` without reading the answer), and a
//! page whose DNS name is rebound to 127.0.0.1 can even read the answers, since the
//! browser then counts the server as that page's own origin. Three checks close this:
//!
//! 1. `Host` must be one of the names the server was bound for: the loopback names,
//!    the bound address and `--allow-host` names. A rebound name (`evil.example`) fails.
//! 2. A request a browser marks as coming from another site is refused: an `Origin`
//!    that is not `http://` + this request's `Host`, or a `Sec-Fetch-Site` other than
//!    `same-origin` / `none` (a typed URL).
//! 3. API routes need the header `X-NPR` (see [`API_HEADER`]), which a plain
//!    cross-site form, `<img>` or `<script>` cannot send, and which a cross-site `fetch`
//!    may only send after a CORS preflight this server never grants. So even a browser
//!    that sends neither `Origin` nor `Sec-Fetch-Site` cannot make the API work for a
//!    foreign page.
//!
//! Each refusal is a 403 with a JSON body naming the check.
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use super::reply::error;

/// The header API requests must carry (any non-empty value; the page sends `1`).
pub const API_HEADER: &str = "x-npr";

/// The `Host` names this server answers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHosts {
    /// Lower-case host names or IP literals, without port or brackets.
    names: Vec<String>,
    /// Bound to every interface (0.0.0.0 / ::): any IP literal is the server's own, as
    /// the machine's addresses are not known here. A rebound DNS name is never an IP.
    any_ip: bool,
}

impl AllowedHosts {
    /// Loopback names, the bound address, and `extra` (from `--allow-host`).
    pub fn new(bound: SocketAddr, extra: &[String]) -> Self {
        let mut names: Vec<String> = ["localhost", "127.0.0.1", "::1"]
            .iter()
            .map(|s| s.to_string())
            .chain(std::iter::once(bound.ip().to_string()))
            .chain(extra.iter().map(|n| normalise(n)))
            .collect();
        names.sort();
        names.dedup();
        AllowedHosts {
            names,
            any_ip: bound.ip().is_unspecified(),
        }
    }

    /// Whether a `Host` header value (`name`, `name:port`, `[v6]:port`) is allowed.
    pub fn allows(&self, host: &str) -> bool {
        let name = host_name(host);
        if self.any_ip && name.parse::<IpAddr>().is_ok() {
            return true;
        }
        self.names.contains(&name)
    }

    /// The names, for the startup line and `/api/health`.
    pub fn names(&self) -> &[String] {
        &self.names
    }
}

/// Lower case, no trailing dot, no brackets around an IPv6 literal.
fn normalise(name: &str) -> String {
    let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
    name.trim_start_matches('[')
        .trim_end_matches(']')
        .to_string()
}

/// The name part of a `Host` value: `[::1]:8080` → `::1`, `Example.com.:80` → `example.com`.
fn host_name(host: &str) -> String {
    let host = host.trim();
    let without_port = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else if host.matches(':').count() == 1 {
        host.split(':').next().unwrap_or("")
    } else {
        host
    };
    normalise(without_port)
}

/// Why a request was refused, or `None` when it may proceed.
pub fn refusal(hosts: &AllowedHosts, path: &str, headers: &HeaderMap) -> Option<String> {
    let text = |name: header::HeaderName| {
        headers
            .get(name)
            .map(|v| v.to_str().unwrap_or("(not text)").to_string())
    };
    let Some(host) = text(header::HOST) else {
        return Some("no Host header".into());
    };
    if !hosts.allows(&host) {
        return Some(format!(
            "Host {host:?} is not a name this server was started for ({}); add it with --allow-host",
            hosts.names().join(", ")
        ));
    }
    if let Some(origin) = text(header::ORIGIN) {
        if !origin.eq_ignore_ascii_case(&format!("http://{host}")) {
            return Some(format!(
                "cross-site request refused (Origin {origin:?} is not http://{host})"
            ));
        }
    }
    if let Some(site) = headers.get("sec-fetch-site") {
        if !matches!(site.as_bytes(), b"same-origin" | b"none") {
            return Some(format!(
                "cross-site request refused (Sec-Fetch-Site: {})",
                String::from_utf8_lossy(site.as_bytes())
            ));
        }
    }
    let marked = headers.get(API_HEADER).is_some_and(|v| !v.is_empty());
    if path.starts_with("/api/") && !marked {
        return Some(format!(
            "API requests need the header `{API_HEADER}: 1` (a cross-site page cannot send it), e.g. curl -H 'X-NPR: 1' …"
        ));
    }
    None
}

/// The middleware: 403 with the reason, before routing, body reading or any other work.
pub async fn check(
    State(hosts): State<Arc<AllowedHosts>>,
    request: Request,
    next: Next,
) -> Response {
    match refusal(&hosts, request.uri().path(), request.headers()) {
        Some(why) => error(StatusCode::FORBIDDEN, why),
        None => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn host_names_follow_the_bound_address_and_the_flag() {
        let local = AllowedHosts::new("127.0.0.1:8080".parse().unwrap(), &["Box.Lan.".into()]);
        let any = AllowedHosts::new("0.0.0.0:8080".parse().unwrap(), &[]);
        // (hosts, Host value, allowed)
        for (hosts, host, ok) in [
            (&local, "127.0.0.1:8080", true),
            (&local, "localhost:8080", true),
            (&local, "LOCALHOST", true),
            (&local, "[::1]:8080", true),
            (&local, "box.lan:8080", true),
            (&local, "evil.example:8080", false),
            (&local, "127.0.0.1.evil.example", false),
            (&local, "10.0.0.5:8080", false),
            (&local, "", false),
            (&any, "10.0.0.5:8080", true),
            (&any, "[fe80::1]:8080", true),
            (&any, "evil.example:8080", false),
        ] {
            assert_eq!(hosts.allows(host), ok, "{host:?}");
        }
    }

    #[test]
    fn cross_site_requests_and_unmarked_api_calls_are_refused() {
        let hosts = AllowedHosts::new("127.0.0.1:8080".parse().unwrap(), &[]);
        let h = "127.0.0.1:8080";
        // (path, headers, allowed)
        let table: Vec<(&str, HeaderMap, bool)> = vec![
            ("/", headers(&[("host", h)]), true),
            (
                "/",
                headers(&[("host", h), ("sec-fetch-site", "none")]),
                true,
            ),
            (
                "/",
                headers(&[("host", h), ("sec-fetch-site", "cross-site")]),
                false,
            ),
            (
                "/",
                headers(&[("host", h), ("sec-fetch-site", "same-site")]),
                false,
            ),
            ("/", headers(&[("host", "evil.example")]), false),
            ("/", headers(&[]), false),
            ("/api/health", headers(&[("host", h)]), false),
            ("/api/health", headers(&[("host", h), ("x-npr", "1")]), true),
            (
                "/api/predict",
                headers(&[
                    ("host", h),
                    ("x-npr", "1"),
                    ("origin", "http://127.0.0.1:8080"),
                ]),
                true,
            ),
            (
                "/api/predict",
                headers(&[
                    ("host", h),
                    ("x-npr", "1"),
                    ("origin", "http://evil.example"),
                ]),
                false,
            ),
            (
                "/api/predict",
                headers(&[
                    ("host", h),
                    ("x-npr", "1"),
                    ("origin", "http://localhost:8080"),
                ]),
                false,
            ),
            (
                "/api/predict",
                headers(&[("host", h), ("x-npr", "1"), ("origin", "null")]),
                false,
            ),
            (
                "/api/folder",
                headers(&[
                    ("host", h),
                    ("x-npr", "1"),
                    ("sec-fetch-site", "same-origin"),
                ]),
                true,
            ),
        ];
        for (path, headers, ok) in table {
            assert_eq!(
                refusal(&hosts, path, &headers).is_none(),
                ok,
                "{path} {headers:?}"
            );
        }
    }
}
