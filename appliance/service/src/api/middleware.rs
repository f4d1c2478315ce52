//! Middleware: API keys, JSON error bodies for responses axum or a layer produced,
//! HTTP metrics.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use mime::Mime;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

use super::AppState;
use crate::error::{AppError, error_response};

/// The `route` label of requests no route matched.
const UNMATCHED: &str = "unmatched";

/// The SHA-256 digest of an API key.
pub(super) type KeyDigest = [u8; 32];

pub(super) fn key_digest(key: &str) -> KeyDigest {
    Sha256::digest(key.as_bytes()).into()
}

/// Whether `presented` is one of the keys of `digests`. The digests are compared in
/// constant time (`subtle`), all of them, so the time depends neither on where the
/// presented key differs nor on its length, nor on which key matched.
pub(super) fn key_matches(digests: &[KeyDigest], presented: &str) -> bool {
    let d = key_digest(presented);
    let hit = digests
        .iter()
        .fold(Choice::from(0), |hit, k| hit | k.ct_eq(&d));
    bool::from(hit)
}

pub(super) async fn require_key(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    if state.inner.keyless {
        return next.run(req).await;
    }
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, key) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
        });
    let ok = presented.is_some_and(|k| key_matches(&state.inner.key_digests, k));
    if ok {
        next.run(req).await
    } else {
        AppError::Unauthorized.into_response()
    }
}

/// Gives every error response that is not JSON yet (answered by axum or a tower
/// layer) the `{"error": {...}}` shape.
pub(super) async fn json_errors(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    if media_type(resp.headers()).is_some_and(|m| m.essence_str() == mime::APPLICATION_JSON) {
        return resp;
    }
    let allow = resp.headers().get(header::ALLOW).cloned();
    // The text of axum's rejections says what was wrong (a path that does not decode).
    let text = axum::body::to_bytes(resp.into_body(), 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let or_status = |s: StatusCode| {
        if text.is_empty() {
            s.to_string()
        } else {
            text.clone()
        }
    };
    let cfg = &state.inner.config;
    let (code, message) = match status {
        StatusCode::NOT_FOUND => ("not_found", "route not found".to_string()),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "method not allowed on this route".to_string(),
        ),
        StatusCode::REQUEST_TIMEOUT => (
            "request_timeout",
            format!(
                "the request took longer than {} s (request_timeout_secs)",
                cfg.request_timeout_secs
            ),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "body_too_large",
            format!(
                "request body exceeds the limit of {} bytes",
                cfg.body_limit_bytes
            ),
        ),
        StatusCode::URI_TOO_LONG => ("uri_too_long", or_status(status)),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => ("headers_too_large", or_status(status)),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported_media_type", or_status(status)),
        s if s.is_server_error() => ("internal", format!("internal error ({s})")),
        s => ("bad_request", or_status(s)),
    };
    let mut out = error_response(status, code, message);
    if let Some(allow) = allow {
        out.headers_mut().insert(header::ALLOW, allow);
    }
    out
}

/// The media type of a body (`Content-Type`), if it parses. `mime` compares type and
/// subtype case-insensitively and keeps parameters apart.
pub(super) fn media_type(headers: &HeaderMap) -> Option<Mime> {
    headers
        .get(header::CONTENT_TYPE)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// The 415 answer for a body of media type `got` where `expected` is taken.
pub(super) fn unsupported_media_type(headers: &HeaderMap, expected: &str) -> AppError {
    let got = headers
        .get(header::CONTENT_TYPE)
        .map(|v| format!("{:?}", String::from_utf8_lossy(v.as_bytes())))
        .unwrap_or_else(|| "none".into());
    AppError::UnsupportedMediaType {
        message: format!("this route takes Content-Type {expected}, not {got}"),
    }
}

/// Refuses a request whose body is not `application/octet-stream` (a raw upload).
/// An empty body (known to be empty: `Content-Length: 0`, or no length and no
/// chunks) needs no type.
pub(super) async fn octet_stream_body(req: Request, next: Next) -> Response {
    let empty = axum::body::HttpBody::size_hint(req.body()).exact() == Some(0);
    let h = req.headers();
    match media_type(h) {
        None if empty && !h.contains_key(header::CONTENT_TYPE) => next.run(req).await,
        Some(m) if m.essence_str() == mime::APPLICATION_OCTET_STREAM => next.run(req).await,
        _ => unsupported_media_type(req.headers(), "application/octet-stream").into_response(),
    }
}

/// The `method` label: a standard method, else `other` (a client may send any token).
fn method_label(m: &Method) -> &'static str {
    const KNOWN: [(Method, &str); 9] = [
        (Method::GET, "GET"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::DELETE, "DELETE"),
        (Method::HEAD, "HEAD"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::PATCH, "PATCH"),
        (Method::TRACE, "TRACE"),
        (Method::CONNECT, "CONNECT"),
    ];
    KNOWN
        .iter()
        .find(|(k, _)| k == m)
        .map_or("other", |(_, name)| name)
}

/// The `status` label: the status class.
fn status_label(s: StatusCode) -> &'static str {
    match s.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// Counts and times requests. Every label comes from a closed set, so no request can
/// add series: `method` (standard methods, else `other`), `route` (the matched route
/// template such as `/v1/jobs/{id}`, else `unmatched`), `status` (the class, `2xx`).
pub(super) async fn http_metrics(req: Request, next: Next) -> Response {
    let method = method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str())
        .filter(|p| !p.contains("__private__"))
        .unwrap_or(UNMATCHED)
        .to_string();
    let start = Instant::now();
    let resp = next.run(req).await;
    let secs = start.elapsed().as_secs_f64();
    metrics::counter!(
        "proofbox_http_requests_total",
        "method" => method,
        "route" => route.clone(),
        "status" => status_label(resp.status())
    )
    .increment(1);
    metrics::histogram!(
        "proofbox_http_request_duration_seconds",
        "method" => method,
        "route" => route
    )
    .record(secs);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_by_digest_whatever_their_length() {
        let keys = [
            key_digest("first-key-0123456789"),
            key_digest("second-key-0123456789"),
        ];
        assert!(key_matches(&keys, "first-key-0123456789"));
        assert!(key_matches(&keys, "second-key-0123456789"));
        for wrong in [
            "",
            "f",
            "first-key-012345678",
            "first-key-01234567890",
            "first-key-0123456788",
            "second-key-0123456789 ",
        ] {
            assert!(!key_matches(&keys, wrong), "{wrong:?}");
        }
        assert!(!key_matches(&[], "first-key-0123456789"));
    }
}
