//! What the service's in-process tests share: the configuration and key, requests
//! through `oneshot`, the JSON error check against `docs/api.md`, hubs and slots.

#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode};
use proofbox_backend_api::{BackendKind, FieldId};
use proofbox_service::app as router;
use proofbox_service::types::{ErrorBody, JobView};
use proofbox_service::{AppState, Config, DeviceSlot, Hub, Policy, Store};
use tower::ServiceExt;

pub const KEY: &str = "test-key-0123456789abcdef";

pub fn config(dir: &Path) -> Config {
    Config {
        data_dir: dir.to_path_buf(),
        api_keys: vec![KEY.into()],
        devices: vec!["cpu:0".into()],
        ..Config::default()
    }
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> T {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{e}: {} {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Asserts an error response: status, JSON shape, code, and that `docs/api.md`'s
    /// error table lists the code with that status.
    pub fn error(&self, status: StatusCode, code: &str) -> String {
        let e: ErrorBody = self.json();
        assert!(
            documented_codes().contains(&(status.as_u16(), code.to_string())),
            "{status} {code} is not in docs/api.md's error table"
        );
        assert_eq!(
            (self.status, e.error.code.as_str()),
            (status, code),
            "{}",
            e.error.message
        );
        assert!(!e.error.message.is_empty());
        e.error.message
    }
}

/// (status, code) of every row of the error table of `docs/api.md`.
pub fn documented_codes() -> Vec<(u16, String)> {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md")).unwrap();
    let mut out = Vec::new();
    for line in doc.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let Some(status) = cells.get(1).and_then(|c| c.parse::<u16>().ok()) else {
            continue;
        };
        for code in cells[2].split(',') {
            out.push((status, code.trim().trim_matches('`').to_string()));
        }
    }
    out
}

pub async fn call(
    app: &Router,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: impl Into<Body>,
) -> Resp {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = app
        .clone()
        .oneshot(req.body(body.into()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    Resp {
        status,
        headers,
        body,
    }
}

pub const AUTH: (&str, &str) = ("authorization", "Bearer test-key-0123456789abcdef");
pub const JSON: (&str, &str) = ("content-type", "application/json");
pub const OCTET: (&str, &str) = ("content-type", "application/octet-stream");

pub async fn get(app: &Router, uri: &str) -> Resp {
    call(app, Method::GET, uri, &[AUTH], Body::empty()).await
}

pub async fn submit(app: &Router, body: &str) -> Resp {
    call(
        app,
        Method::POST,
        "/v1/jobs",
        &[AUTH, JSON],
        body.to_string(),
    )
    .await
}

/// Polls until the job is terminal (bounded, so a broken worker fails the test).
pub async fn wait(app: &Router, id: &str) -> JobView {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let job: JobView = get(app, &format!("/v1/jobs/{id}")).await.json();
        if job.status.is_terminal() {
            return job;
        }
        assert!(Instant::now() < deadline, "job {id} stuck: {job:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn cpu_slot() -> DeviceSlot {
    let prover = proofbox_prover::registry::open(
        proofbox_prover::BackendChoice::Kind(BackendKind::Cpu),
        Some("cpu:0"),
    )
    .unwrap();
    DeviceSlot {
        id: "cpu:0".into(),
        kind: BackendKind::Cpu,
        fields: FieldId::ALL.to_vec(),
        workers: 1,
        prover: Arc::from(prover),
    }
}

/// The router over `hub` and `slots`, with the test configuration and key.
pub fn app_with(dir: &Path, hub: Arc<Hub>, slots: Vec<DeviceSlot>) -> Router {
    router(AppState::new(
        config(dir),
        vec![KEY.into()],
        hub,
        slots,
        vec![],
    ))
}

pub fn new_hub(dir: &Path, fallback_to_cpu: bool) -> Arc<Hub> {
    let (store, _) = Store::open(&dir.join("jobs.redb"), 2).unwrap();
    store.init().unwrap();
    Hub::new(
        Arc::new(store),
        Policy {
            max_attempts: 2,
            fallback_to_cpu,
            verifier: proofbox_verifier::Verifier::default(),
            job_deadline_secs: 600,
        },
    )
}
