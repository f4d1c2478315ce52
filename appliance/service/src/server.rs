//! The HTTP server: our own accept loop over hyper's HTTP/1.1 connections, for what
//! `axum::serve` does not offer. HTTP/1.1 only: a TLS proxy in front may speak HTTP/2
//! to clients.
//!
//! - **Header-read timeout** (`header_read_timeout_secs`, hyper's HTTP/1
//!   `header_read_timeout`): a client that does not finish a request's head in time is
//!   disconnected without an answer. hyper starts the timer whenever it waits for a
//!   head, so it also closes idle keep-alive connections.
//! - **Idle timeout** (`idle_timeout_secs`): a connection on which nothing is read or
//!   written for this long is closed, whatever it is doing (a stalled body, a client
//!   that stopped reading its download).
//! - **Connection bound** (`max_connections`): beyond it a new connection is answered
//!   `503 too_many_connections` (JSON, `Connection: close`, `Retry-After: 1`) and closed;
//!   at most [`REFUSALS_AT_ONCE`] such answers are in flight, past those a connection is
//!   closed at once. Refusals are logged (at most once a second) and counted in
//!   `proofbox_http_connections_refused_total`.
//! - **Graceful shutdown**: when `shutdown` resolves the listener closes, idle
//!   connections close, and requests in flight finish (hyper-util's
//!   [`GracefulShutdown`]).
//!
//! hyper answers a request head it cannot parse itself, with an empty body (400, 414
//! for a URI over 65,534 bytes, 431 for a head over [`MAX_HEAD_BYTES`] or 100 header
//! fields) and no hook to change it; `ConnIo` replaces those answers with the JSON
//! error shape (`bad_request`, `uri_too_long`, `headers_too_large`).

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::config::Config;
use crate::error::error_response;

/// The largest request head (request line and headers) hyper buffers.
pub const MAX_HEAD_BYTES: usize = 96 << 10;
/// Over-limit connections answered 503 at once; more are closed without an answer.
pub const REFUSALS_AT_ONCE: usize = 64;
/// How long an over-limit connection may take to send the request it is refused.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(2);

/// The connection limits of [`run`].
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

impl Limits {
    pub fn from_config(c: &Config) -> Self {
        Self {
            header_read_timeout: Duration::from_secs(c.header_read_timeout_secs),
            idle_timeout: Duration::from_secs(c.idle_timeout_secs),
            max_connections: c.max_connections,
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then waits for the open
/// connections to finish their requests.
pub async fn run(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let refusals = Arc::new(Semaphore::new(REFUSALS_AT_ONCE));
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(MAX_HEAD_BYTES)
        .max_buf_size(MAX_HEAD_BYTES + (16 << 10));
    let last_refusal_log = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            metrics::counter!("proofbox_http_connections_refused_total").increment(1);
            let now = start.elapsed().as_secs() + 1;
            if last_refusal_log.swap(now, Ordering::Relaxed) != now {
                tracing::warn!(
                    %peer,
                    "refusing connections: {} open (max_connections); answering 503",
                    limits.max_connections
                );
            }
            if let Ok(refusal) = refusals.clone().try_acquire_owned() {
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(REFUSAL_TIMEOUT, refuse(stream)).await;
                    drop(refusal);
                });
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity::new());
        let io = TokioIo::new(ConnIo::new(stream, activity.clone()));
        let conn = builder.serve_connection(io, TowerToHyperService::new(router.clone()));
        let conn = graceful.watch(conn);
        let idle_timeout = limits.idle_timeout;
        tokio::spawn(async move {
            metrics::gauge!("proofbox_http_connections_open").increment(1.0);
            tokio::select! {
                result = conn => {
                    if let Err(e) = result {
                        tracing::debug!(%peer, "connection ended: {e}");
                    }
                }
                () = activity.idle_for(idle_timeout) => {
                    tracing::debug!(%peer, "closing a connection idle for {idle_timeout:?}");
                }
            }
            metrics::gauge!("proofbox_http_connections_open").decrement(1.0);
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Accept errors end no loop: a connection that failed while queued is skipped; out of
/// file descriptors (or memory), the loop pauses so that connections can close.
async fn accept_error(e: io::Error) {
    use io::ErrorKind::*;
    if matches!(e.kind(), ConnectionAborted | ConnectionReset | Interrupted) {
        return;
    }
    tracing::error!("accepting a connection: {e}; pausing 100 ms");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// Answers the first request of an over-limit connection with 503 and closes it.
async fn refuse(stream: TcpStream) {
    let service = hyper::service::service_fn(|_req| async {
        let mut resp = error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_connections",
            "the service has max_connections connections open; retry later".into(),
        );
        let h = resp.headers_mut();
        h.insert(header::CONNECTION, HeaderValue::from_static("close"));
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        Ok::<_, Infallible>(resp)
    });
    let _ = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(REFUSAL_TIMEOUT)
        .keep_alive(false)
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// When a connection last read or wrote a byte.
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        self.last_ms
            .store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// Resolves once nothing was read or written for `timeout`.
    async fn idle_for(&self, timeout: Duration) {
        loop {
            let last = self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let deadline = last + timeout;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline.into()).await;
        }
    }
}

/// The connection's socket: records activity for the idle timeout, and gives hyper's
/// own answers to unparsable request heads the JSON error shape.
struct ConnIo {
    stream: TcpStream,
    activity: Arc<Activity>,
    /// A replacement answer still to be written.
    pending: Vec<u8>,
}

impl ConnIo {
    fn new(stream: TcpStream, activity: Arc<Activity>) -> Self {
        Self {
            stream,
            activity,
            pending: Vec::new(),
        }
    }

    /// Writes what remains of a replacement answer.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.pending.is_empty() {
            let n = ready!(Pin::new(&mut self.stream).poll_write(cx, &self.pending))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.activity.touch();
            self.pending.drain(..n);
        }
        Poll::Ready(Ok(()))
    }
}

/// The JSON answer that replaces hyper's bodiless answer `head`, if it is one.
///
/// hyper's automatic answers (to a request head it could not parse) are the only
/// responses with status 400, 414 or 431 and an empty body: the service's own carry a
/// JSON body. The connection closes after them.
pub(crate) fn replace_bare_error(head: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(head).ok()?;
    let rest = text.strip_prefix("HTTP/1.1 ")?;
    let (status, code, message) = match rest.get(..4)? {
        "400 " => (
            "400 Bad Request",
            "bad_request",
            "the request line or a header could not be parsed".to_string(),
        ),
        "414 " => (
            "414 URI Too Long",
            "uri_too_long",
            "the request URI exceeds 65534 bytes".to_string(),
        ),
        "431 " => (
            "431 Request Header Fields Too Large",
            "headers_too_large",
            format!("the request head exceeds {MAX_HEAD_BYTES} bytes or 100 header fields"),
        ),
        _ => return None,
    };
    let end = text.find("\r\n\r\n")?;
    if end + 4 != text.len()
        || !text[..end]
            .split("\r\n")
            .any(|h| h.eq_ignore_ascii_case("content-length: 0"))
    {
        return None;
    }
    let body = serde_json::json!({"error": {"code": code, "message": message}}).to_string();
    Some(
        format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

impl AsyncRead for ConnIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.stream).poll_read(cx, buf))?;
        if buf.filled().len() > before {
            this.activity.touch();
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for ConnIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        if let Some(answer) = replace_bare_error(buf) {
            this.pending = answer;
            // hyper's bytes count as written; the replacement goes out instead.
            return Poll::Ready(Ok(buf.len()));
        }
        let n = ready!(Pin::new(&mut this.stream).poll_write(cx, buf))?;
        if n > 0 {
            this.activity.touch();
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::replace_bare_error;

    #[test]
    fn only_bodiless_parse_error_answers_are_replaced() {
        let bare = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: Thu, 01 Jan 2026 00:00:00 GMT\r\n\r\n";
        let out = String::from_utf8(replace_bare_error(bare).unwrap()).unwrap();
        assert!(out.starts_with("HTTP/1.1 431 "), "{out}");
        assert!(out.contains(r#""code":"headers_too_large""#), "{out}");
        let bare_414 = b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\n\r\n";
        assert!(replace_bare_error(bare_414).is_some());
        for kept in [
            &b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 57\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n{}",
            b"\x00\x01 proof bytes",
        ] {
            assert_eq!(replace_bare_error(kept), None, "{}", String::from_utf8_lossy(kept));
        }
    }
}
