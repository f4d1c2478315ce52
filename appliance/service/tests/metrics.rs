//! HTTP metrics under hostile input: labels come from closed sets, so thousands of
//! distinct methods and paths add no series. Its own test binary (one process, one
//! recorder) so that no other test adds series while it measures.

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use proofbox_service::{Config, Service, app};
use tower::ServiceExt;

async fn status(app: &Router, method: Method, uri: &str) -> StatusCode {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .unwrap();
    app.clone().oneshot(req).await.unwrap().status()
}

async fn metrics_text(app: &Router) -> String {
    let req = Request::builder()
        .uri("/metrics")
        .body(Body::empty())
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    String::from_utf8(body.to_vec()).unwrap()
}

/// `n` requests with never-seen methods (200 characters each) and paths, matched
/// (`/v1/jobs/{id}`) or not.
async fn hostile_batch(app: &Router, tag: &str, n: usize) {
    for i in 0..n {
        let method = Method::from_bytes(format!("M{tag}{i:0>199}").as_bytes()).unwrap();
        let uri = match i % 3 {
            0 => format!("/nowhere-{tag}-{i}"),
            1 => format!("/v1/jobs/{tag}-{i}"),
            _ => format!("/v1/nowhere-{tag}-{i}"),
        };
        let s = status(app, method, &uri).await;
        assert!(s.is_client_error(), "{uri}: {s}");
        let s = status(app, Method::GET, &uri).await;
        assert!(s.is_client_error(), "{uri}: {s}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distinct_methods_and_paths_add_no_series() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        api_keys: vec!["metrics-test-key-0123456789".into()],
        devices: vec!["cpu:0".into()],
        ..Config::default()
    };
    let service = Service::open(config).unwrap();
    let app = app(service.state());

    // Every label combination these requests can produce appears in the first batch.
    hostile_batch(&app, "a", 300).await;
    metrics_text(&app).await; // so that `/metrics` itself has its series
    let before = metrics_text(&app).await;
    hostile_batch(&app, "b", 3000).await;
    let after = metrics_text(&app).await;

    let series = |text: &str| {
        text.lines()
            .filter(|l| l.starts_with("proofbox_http_"))
            .map(|l| l.rsplit_once(' ').map_or(l, |(name, _)| name).to_string())
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert_eq!(
        series(&before),
        series(&after),
        "6,000 more hostile requests changed the set of series"
    );
    // Values grow by digits only: far below one new 200-character method name per
    // request.
    assert!(
        after.len() < before.len() + 4096,
        "/metrics grew from {} to {} bytes",
        before.len(),
        after.len()
    );
    assert!(after.len() < 64 << 10, "/metrics is {} bytes", after.len());
    for needle in ["Mb0", "nowhere", "/v1/jobs/b-"] {
        assert!(!after.contains(needle), "{needle} in /metrics:\n{after}");
    }
    for label in [
        r#"method="other""#,
        r#"route="unmatched""#,
        r#"route="/v1/jobs/{id}""#,
        r#"status="4xx""#,
    ] {
        assert!(after.contains(label), "{label} missing:\n{after}");
    }
}
