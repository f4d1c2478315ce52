//! [`StatusLayer`]: a jsonrpsee server's HTTP middleware that serves a role's status
//! page on the JSON-RPC port:
//!
//! - `GET /` (not a WebSocket upgrade): the page, `text/html`;
//! - `GET /status.json`: the status, `application/json`;
//! - everything else (JSON-RPC over HTTP POST, WebSocket upgrades on any path, other
//!   paths and methods) goes to the server unchanged.
//!
//! ```ignore
//! let page = StatusPage::new(MyRole(..));
//! let server = Server::builder()
//!     .set_http_middleware(page.middleware())
//!     .build(addr)
//!     .await?;
//! let handle = server.start(module);
//! page.sample_until(handle.clone().stopped());
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use http::{Method, StatusCode};
use jsonrpsee::core::BoxError;
use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse};
use tower::{Layer, Service};

use crate::StatusPage;

/// Serves a [`StatusPage`] beside JSON-RPC (see the module's docs).
#[derive(Clone)]
pub struct StatusLayer {
    page: StatusPage,
}

impl StatusLayer {
    pub fn new(page: StatusPage) -> Self {
        Self { page }
    }
}

impl<S> Layer<S> for StatusLayer {
    type Service = StatusService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        StatusService {
            inner,
            page: self.page.clone(),
        }
    }
}

/// The service [`StatusLayer`] wraps around a jsonrpsee server.
#[derive(Clone)]
pub struct StatusService<S> {
    inner: S,
    page: StatusPage,
}

fn response(content_type: &'static str, body: String) -> HttpResponse {
    let mut r = HttpResponse::new(HttpBody::from(body));
    *r.status_mut() = StatusCode::OK;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

impl<S> Service<HttpRequest> for StatusService<S>
where
    S: Service<HttpRequest, Response = HttpResponse>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: HttpRequest) -> Self::Future {
        if req.method() == Method::GET && !jsonrpsee::server::ws::is_upgrade_request(&req) {
            let answer = match req.uri().path() {
                "/" => Some(response("text/html; charset=utf-8", self.page.html())),
                "/status.json" => {
                    Some(response("application/json", self.page.status().to_string()))
                }
                _ => None,
            };
            if let Some(r) = answer {
                return Box::pin(async move { Ok(r) });
            }
        }
        let fut = self.inner.call(req);
        Box::pin(async move { fut.await.map_err(Into::into) })
    }
}
