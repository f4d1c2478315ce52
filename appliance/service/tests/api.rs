//! The router in-process (`tower::ServiceExt::oneshot`): every route, every error
//! path, API keys, and the worker's handling of failing backends.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, StatusCode, header};
use base64::Engine;
use proofbox_backend_api::{BackendError, BackendKind, DeviceInfo, DeviceType, FieldId};
use proofbox_prover::{DynProver, ProofArtifact, ProofRequest, ProveError, verify_bytes};
use proofbox_service::app as router;
use proofbox_service::types::{JobList, JobStatus, JobView, VerifyResult};
use proofbox_service::{DeviceSlot, Hub, Service, Workers};

mod common;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_works() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::open(config(dir.path())).unwrap();
    let workers = service.start_workers();
    let app = router(service.state());

    for path in ["/healthz", "/readyz", "/openapi.json"] {
        let r = call(&app, Method::GET, path, &[], Body::empty()).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
    }
    let doc: serde_json::Value = get(&app, "/openapi.json").await.json();
    for p in [
        "/v1/jobs",
        "/v1/jobs/{id}",
        "/v1/jobs/{id}/proof",
        "/v1/jobs/{id}/cancel",
        "/v1/jobs/raw",
        "/v1/verify",
        "/v1/devices",
        "/v1/fleet",
        "/v1/circuits",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(
            doc["paths"][p].is_object(),
            "{p} missing from the OpenAPI document"
        );
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    // What the service refuses is in the document (schemathesis checks the rest live).
    let submit_op = &doc["paths"]["/v1/jobs"]["post"];
    let names = |op: &serde_json::Value| -> Vec<String> {
        op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        names(submit_op),
        ["Idempotency-Key"],
        "JSON submissions take no query"
    );
    let raw = &doc["paths"]["/v1/jobs/raw"]["post"];
    assert!(names(raw).contains(&"circuit".to_string()));
    let list = doc["paths"]["/v1/jobs"]["get"]["parameters"]
        .as_array()
        .unwrap();
    let limit = list.iter().find(|p| p["name"] == "limit").unwrap();
    assert_eq!(
        (&limit["schema"]["minimum"], &limit["schema"]["maximum"]),
        (&1.into(), &1000.into())
    );
    let job = &doc["components"]["schemas"]["SubmitJob"]["properties"];
    assert_eq!(job["log_rows"]["maximum"], 20);
    assert_eq!(job["device"]["enum"], serde_json::json!(["cpu:0", null]));
    assert_eq!(
        doc["paths"]["/v1/verify"]["post"]["requestBody"]["required"],
        false
    );
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for status in ["408", "500", "503"] {
                assert!(
                    op["responses"][status].is_object(),
                    "{method} {path}: {status}"
                );
            }
        }
    }

    let circuits: serde_json::Value = get(&app, "/v1/circuits").await.json();
    let names: Vec<_> = circuits["circuits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["poseidon2", "keccak", "blake3", "state-transition"]);
    assert_eq!(circuits["circuits"][0]["max_log_rows"], 20);
    assert_eq!(
        circuits["circuits"][3]["fields"],
        serde_json::json!(["koalabear"])
    );
    assert_eq!(circuits["circuits"][3]["min_log_rows"], 5);
    let devices: serde_json::Value = get(&app, "/v1/devices").await.json();
    let cpu = devices["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["backend"] == "cpu")
        .unwrap();
    assert_eq!(cpu["devices"][0]["id"], "cpu:0");
    assert_eq!(cpu["devices"][0]["workers"], 1);

    // JSON submission with inline input.
    let input = vec![7u8; 100];
    let b64 = base64::engine::general_purpose::STANDARD.encode(&input);
    let r = submit(
        &app,
        &format!(
            r#"{{"circuit":"poseidon2","log_rows":4,"field":"babybear","seed":9,"input_base64":"{b64}","priority":3}}"#
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let job: JobView = r.json();
    assert_eq!(
        r.headers[header::LOCATION],
        format!("/v1/jobs/{}", job.id).as_str()
    );
    assert_eq!((job.input_bytes, job.priority), (100, 3));
    let done = wait(&app, &job.id).await;
    assert_eq!(done.status, JobStatus::Succeeded, "{done:?}");
    assert_eq!(done.backend_used.as_deref(), Some("cpu"));
    assert_eq!(done.device_used.as_deref(), Some("cpu:0"));
    assert_eq!(done.attempts, 1);
    assert!(done.queue_ms.is_some() && done.proving_ms.is_some());
    assert!(done.started_at.is_some() && done.finished_at.is_some());

    let proof = get(&app, &format!("/v1/jobs/{}/proof", job.id)).await;
    assert_eq!(proof.status, StatusCode::OK);
    assert_eq!(Some(proof.body.len() as u64), done.proof_bytes);
    let artifact = verify_bytes(&proof.body).unwrap();
    assert_eq!(
        (artifact.field, artifact.seed, artifact.input.clone()),
        (FieldId::BabyBear, 9, input)
    );

    // Raw upload: the body is the input, the rest is in the query string.
    let raw = vec![3u8; 700];
    let r = call(
        &app,
        Method::POST,
        "/v1/jobs/raw?circuit=blake3&log_rows=3&backend=cpu&device=cpu:0",
        &[AUTH, ("content-type", "application/octet-stream")],
        raw.clone(),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let raw_job: JobView = r.json();
    assert_eq!(wait(&app, &raw_job.id).await.status, JobStatus::Succeeded);
    let p = get(&app, &format!("/v1/jobs/{}/proof", raw_job.id)).await;
    assert_eq!(ProofArtifact::from_bytes(&p.body).unwrap().input, raw);

    // Verify: valid, tampered, garbage.
    let r = call(
        &app,
        Method::POST,
        "/v1/verify",
        &[AUTH, OCTET],
        proof.body.clone(),
    )
    .await;
    let v: VerifyResult = r.json();
    assert!(v.valid && v.reason.is_none(), "{v:?}");
    assert_eq!(v.circuit.as_deref(), Some("poseidon2"));
    let mut bad = proof.body.to_vec();
    let mid = bad.len() / 2;
    bad[mid] ^= 1;
    let v: VerifyResult = call(&app, Method::POST, "/v1/verify", &[AUTH, OCTET], bad)
        .await
        .json();
    assert!(!v.valid && v.reason.is_some());
    let v: VerifyResult = call(&app, Method::POST, "/v1/verify", &[AUTH, OCTET], "junk")
        .await
        .json();
    assert!(v.reason.unwrap().contains("bad magic"));

    // Listing and pagination.
    let list: JobList = get(&app, "/v1/jobs?limit=1").await.json();
    assert_eq!(list.jobs[0].id, raw_job.id);
    let cursor = list.next_cursor.unwrap();
    let list: JobList = get(&app, &format!("/v1/jobs?limit=1&cursor={cursor}"))
        .await
        .json();
    assert_eq!(list.jobs[0].id, job.id);
    assert_eq!(list.next_cursor, None);
    let list: JobList = get(&app, "/v1/jobs?status=succeeded").await.json();
    assert_eq!(list.jobs.len(), 2);
    let list: JobList = get(&app, "/v1/jobs?status=queued").await.json();
    assert!(list.jobs.is_empty());

    // Cancel of a finished job is refused.
    let r = call(
        &app,
        Method::POST,
        &format!("/v1/jobs/{}/cancel", job.id),
        &[AUTH],
        Body::empty(),
    )
    .await;
    r.error(StatusCode::CONFLICT, "not_cancellable");

    let m = call(&app, Method::GET, "/metrics", &[], Body::empty()).await;
    let text = String::from_utf8_lossy(&m.body);
    for needles in [
        &["proofbox_jobs{", "status=\"succeeded\"} 2"][..],
        &["proofbox_queue_depth 0"],
        &[
            "proofbox_proving_seconds_bucket{",
            "circuit=\"poseidon2\"",
            "backend=\"cpu\"",
        ],
        &[
            "proofbox_http_requests_total{",
            "method=\"POST\"",
            "route=\"/v1/jobs\"",
            "status=\"2xx\"",
        ],
        &[
            "proofbox_http_request_duration_seconds_bucket{",
            "route=\"/v1/jobs/{id}\"",
        ],
    ] {
        assert!(
            text.lines().any(|l| needles.iter().all(|n| l.contains(n))),
            "{needles:?} missing from:\n{text}"
        );
    }
    workers.shutdown(Duration::from_secs(5)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_is_json_with_a_code() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.body_limit_bytes = 4096;
    c.max_queued_jobs = 3;
    // No workers: jobs stay queued.
    let service = Service::open(c.clone()).unwrap();
    let app = router(service.state());
    // A second service on the same data directory is refused (the store is locked).
    let err = Service::open(c).err().unwrap().to_string();
    assert!(err.contains("job store"), "{err}");

    let cases: &[(&str, StatusCode, &str, &str)] = &[
        (
            "{",
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "malformed JSON",
        ),
        ("", StatusCode::BAD_REQUEST, "malformed_json", "EOF"),
        (
            "[1,2]",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "invalid type",
        ),
        (
            r#"{"circuit":"poseidon2","log_rows":"ten"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "invalid type",
        ),
        // Optional in the body (a state transition with a witness derives it),
        // required of every other job.
        (
            r#"{"circuit":"poseidon2"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            "log_rows is required",
        ),
        (
            r#"{"circuit":"poseidon2","log_rows":4,"colour":1}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "unknown field `colour`",
        ),
        (
            r#"{"circuit":"poseidon2","log_rows":-1}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "invalid value",
        ),
        (
            r#"{"circuit":"sha256","log_rows":4}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            "unknown circuit \"sha256\"",
        ),
        (
            r#"{"circuit":"poseidon2","log_rows":40}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            "log_rows 40 outside the supported range 3..=20",
        ),
        (
            r#"{"circuit":"keccak","log_rows":100000}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            "log_rows 100000 outside the supported range 5..=20",
        ),
        (
            r#"{"circuit":"poseidon2","log_rows":2}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            "3..=20",
        ),
        (
            r#"{"circuit":"poseidon2","log_rows":4,"field":"goldilocks"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            "unknown field",
        ),
        (
            r#"{"circuit":"poseidon2","log_rows":4,"fri":"weak"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            "unknown FRI preset",
        ),
        (
            r#"{"circuit":"poseidon2","log_rows":4,"backend":"tpu"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            "unknown backend",
        ),
        (
            r#"{"circuit":"poseidon2","log_rows":4,"backend":"cuda"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            "backend cuda has no device",
        ),
        (
            r#"{"circuit":"poseidon2","log_rows":4,"backend":"wgpu","device":"cpu:0"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            "belongs to backend cpu",
        ),
        (
            r#"{"circuit":"poseidon2","log_rows":4,"device":"cpu:7"}"#,
            StatusCode::BAD_REQUEST,
            "unknown_device",
            "unknown device \"cpu:7\"",
        ),
        (
            r#"{"circuit":"poseidon2","log_rows":4,"input_base64":"!!"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "input_base64",
        ),
        (
            r#"{"circuit":"poseidon2","log_rows":4,"priority":5000}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            "-1000..=1000",
        ),
    ];
    let too_long = base64::engine::general_purpose::STANDARD.encode(vec![0u8; 769]);
    let too_long = format!(r#"{{"circuit":"blake3","log_rows":3,"input_base64":"{too_long}"}}"#);
    let mut cases: Vec<(&str, StatusCode, &str, &str)> = cases.to_vec();
    cases.push((
        &too_long,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
        "exceeds the limit of 768 bytes",
    ));
    for (body, status, code, needle) in &cases {
        let r = submit(&app, body).await;
        let msg = r.error(*status, code);
        assert!(msg.contains(needle), "{body}: {msg}");
    }

    // Oversized body, with and without a Content-Length.
    let big = vec![b' '; 10_000];
    let r = submit(&app, std::str::from_utf8(&big).unwrap()).await;
    assert!(
        r.error(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large")
            .contains("4096")
    );
    let stream = Body::from_stream(futures_stream(vec![vec![0u8; 3000], vec![0u8; 3000]]));
    let r = call(&app, Method::POST, "/v1/verify", &[AUTH, OCTET], stream).await;
    r.error(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");

    // Raw uploads: bad query strings.
    let octet = ("content-type", "application/octet-stream");
    for (uri, status, code) in [
        ("/v1/jobs/raw", StatusCode::BAD_REQUEST, "bad_request"),
        (
            "/v1/jobs/raw?circuit=poseidon2&log_rows=x",
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "/v1/jobs/raw?circuit=poseidon2&log_rows=4&input_base64=AA",
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "/v1/jobs/raw?circuit=poseidon2&log_rows=99",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
    ] {
        call(&app, Method::POST, uri, &[AUTH, octet], vec![1u8; 4])
            .await
            .error(status, code);
    }
    call(
        &app,
        Method::POST,
        "/v1/jobs?circuit=poseidon2",
        &[AUTH, JSON],
        r#"{"circuit":"poseidon2","log_rows":4}"#,
    )
    .await
    .error(StatusCode::BAD_REQUEST, "bad_request");

    // Idempotency keys.
    let body = r#"{"circuit":"poseidon2","log_rows":5}"#;
    let idem = ("idempotency-key", "order-42");
    let a = call(&app, Method::POST, "/v1/jobs", &[AUTH, JSON, idem], body).await;
    let b = call(&app, Method::POST, "/v1/jobs", &[AUTH, JSON, idem], body).await;
    assert_eq!(
        (a.status, b.status),
        (StatusCode::ACCEPTED, StatusCode::ACCEPTED)
    );
    assert_eq!(a.json::<JobView>().id, b.json::<JobView>().id);
    assert_eq!(b.headers["idempotent-replayed"], "true");
    assert!(!a.headers.contains_key("idempotent-replayed"));
    call(
        &app,
        Method::POST,
        "/v1/jobs",
        &[AUTH, JSON, idem],
        r#"{"circuit":"poseidon2","log_rows":6}"#,
    )
    .await
    .error(StatusCode::CONFLICT, "idempotency_key_reused");
    let long = "k".repeat(300);
    call(
        &app,
        Method::POST,
        "/v1/jobs",
        &[AUTH, JSON, ("idempotency-key", &long)],
        body,
    )
    .await
    .error(StatusCode::BAD_REQUEST, "bad_request");

    // Jobs: unknown, not ready, cancel.
    let queued: JobView = a.json();
    get(&app, "/v1/jobs/no-such-job")
        .await
        .error(StatusCode::NOT_FOUND, "not_found");
    get(&app, "/v1/jobs/no-such-job/proof")
        .await
        .error(StatusCode::NOT_FOUND, "not_found");
    call(
        &app,
        Method::POST,
        "/v1/jobs/nope/cancel",
        &[AUTH],
        Body::empty(),
    )
    .await
    .error(StatusCode::NOT_FOUND, "not_found");
    let msg = get(&app, &format!("/v1/jobs/{}/proof", queued.id))
        .await
        .error(StatusCode::CONFLICT, "proof_not_available");
    assert!(msg.contains("queued"), "{msg}");
    for _ in 0..2 {
        let r = call(
            &app,
            Method::POST,
            &format!("/v1/jobs/{}/cancel", queued.id),
            &[AUTH],
            Body::empty(),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json::<JobView>().status, JobStatus::Cancelled);
    }
    get(&app, &format!("/v1/jobs/{}/proof", queued.id))
        .await
        .error(StatusCode::CONFLICT, "proof_not_available");

    // Listing parameters.
    get(&app, "/v1/jobs?status=lost")
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request");
    get(&app, "/v1/jobs?limit=0")
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request");
    get(&app, "/v1/jobs?limit=5000")
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request");
    get(&app, "/v1/jobs?limit=-3")
        .await
        .error(StatusCode::BAD_REQUEST, "bad_request");
    get(&app, "/v1/jobs?cursor=abc")
        .await
        .error(StatusCode::BAD_REQUEST, "bad_request");
    get(&app, "/v1/jobs?sort=asc")
        .await
        .error(StatusCode::BAD_REQUEST, "bad_request");

    // Routing errors.
    call(&app, Method::DELETE, "/v1/jobs", &[AUTH], Body::empty())
        .await
        .error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    call(&app, Method::GET, "/nope", &[], Body::empty())
        .await
        .error(StatusCode::NOT_FOUND, "not_found");
    get(&app, "/v1/nope")
        .await
        .error(StatusCode::NOT_FOUND, "not_found");

    // Queue full: 3 queued at most (the one above was cancelled).
    for _ in 0..3 {
        assert_eq!(submit(&app, body).await.status, StatusCode::ACCEPTED);
    }
    submit(&app, body)
        .await
        .error(StatusCode::SERVICE_UNAVAILABLE, "queue_full");
}

fn futures_stream(
    chunks: Vec<Vec<u8>>,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures_util::stream::iter(chunks.into_iter().map(Ok))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_v1_route_needs_a_valid_key() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::open(config(dir.path())).unwrap();
    let app = router(service.state());
    let routes = [
        (Method::POST, "/v1/jobs"),
        (Method::GET, "/v1/jobs"),
        (Method::GET, "/v1/jobs/x"),
        (Method::GET, "/v1/jobs/x/proof"),
        (Method::POST, "/v1/jobs/x/cancel"),
        (Method::POST, "/v1/verify"),
        (Method::GET, "/v1/devices"),
        (Method::GET, "/v1/fleet"),
        (Method::GET, "/v1/circuits"),
    ];
    let bad: &[&[(&str, &str)]] = &[
        &[],
        &[("authorization", "Bearer wrong-key-0123456789abcdef")],
        &[("authorization", "Bearer test-key-0123456789abcde")],
        &[(
            "authorization",
            "Basic dGVzdC1rZXktMDEyMzQ1Njc4OWFiY2RlZg==",
        )],
        &[("authorization", "test-key-0123456789abcdef")],
        &[("x-api-key", KEY)],
    ];
    for (method, path) in &routes {
        for headers in bad {
            let r = call(&app, method.clone(), path, headers, Body::empty()).await;
            r.error(StatusCode::UNAUTHORIZED, "unauthorized");
            assert_eq!(r.headers[header::WWW_AUTHENTICATE], "Bearer");
        }
        let r = call(&app, method.clone(), path, &[AUTH], Body::empty()).await;
        assert_ne!(r.status, StatusCode::UNAUTHORIZED, "{method} {path}");
    }
    let r = call(
        &app,
        Method::GET,
        "/v1/circuits",
        &[("authorization", "bearer  test-key-0123456789abcdef ")],
        Body::empty(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    // (`/metrics` needs no key either: `every_route_works` reads it without one.)
    for path in ["/healthz", "/readyz", "/openapi.json"] {
        let r = call(&app, Method::GET, path, &[], Body::empty()).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
    }

    // Keyless, explicitly, on loopback.
    let dir2 = tempfile::tempdir().unwrap();
    let mut c = config(dir2.path());
    c.api_keys.clear();
    c.allow_keyless_on_loopback = true;
    let keyless = app_of(Service::open(c).unwrap());
    let r = call(&keyless, Method::GET, "/v1/circuits", &[], Body::empty()).await;
    assert_eq!(r.status, StatusCode::OK);

    // Keyless refused off loopback.
    let mut c = config(dir2.path());
    c.allow_keyless_on_loopback = true;
    c.listen = "0.0.0.0:8080".parse().unwrap();
    let err = Service::open(c).err().unwrap().to_string();
    assert!(err.contains("loopback"), "{err}");

    // No key configured: one is generated into the data dir, and required.
    let dir3 = tempfile::tempdir().unwrap();
    let mut c = config(dir3.path());
    c.api_keys.clear();
    let service = Service::open(c.clone()).unwrap();
    let key_file = service.key_file().unwrap().to_path_buf();
    let key = std::fs::read_to_string(&key_file)
        .unwrap()
        .trim()
        .to_string();
    assert!(key.len() >= 32);
    let generated = router(service.state());
    call(&generated, Method::GET, "/v1/circuits", &[], Body::empty())
        .await
        .error(StatusCode::UNAUTHORIZED, "unauthorized");
    let bearer = format!("Bearer {key}");
    let r = call(
        &generated,
        Method::GET,
        "/v1/circuits",
        &[("authorization", &bearer)],
        Body::empty(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    drop(generated);
    drop(service);
    // The same key after a restart.
    let again = Service::open(c).unwrap();
    assert_eq!(
        std::fs::read_to_string(again.key_file().unwrap())
            .unwrap()
            .trim(),
        key
    );
}

fn app_of(service: Service) -> Router {
    router(service.state())
}

/// A device whose every proof fails (or panics), to exercise retries and fallback.
struct Broken {
    info: DeviceInfo,
    calls: AtomicU32,
    panic: bool,
}

impl DynProver for Broken {
    fn backend_kind(&self) -> BackendKind {
        BackendKind::Wgpu
    }
    fn device(&self) -> &DeviceInfo {
        &self.info
    }
    fn prove(
        &self,
        _req: &ProofRequest,
        _progress: Arc<dyn proofbox_prover::Progress>,
    ) -> Result<ProofArtifact, ProveError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.panic {
            panic!("driver bug");
        }
        Err(ProveError::Backend(BackendError::DeviceLost {
            device: self.info.id.clone(),
            reason: "fell off the bus".into(),
        }))
    }
    fn prove_transition(
        &self,
        _input: &proofbox_prover::transition::TransitionInput,
        _fri: proofbox_prover::FriPreset,
        _progress: Arc<dyn proofbox_prover::Progress>,
    ) -> Result<ProofArtifact, ProveError> {
        Err(ProveError::Backend(BackendError::DeviceLost {
            device: self.info.id.clone(),
            reason: "fell off the bus".into(),
        }))
    }
}

fn broken_slot(panic: bool) -> (DeviceSlot, Arc<Broken>) {
    let prover = Arc::new(Broken {
        info: DeviceInfo {
            id: "wgpu:9".into(),
            backend: BackendKind::Wgpu,
            name: "broken".into(),
            vendor: "test".into(),
            device_type: DeviceType::Gpu,
            memory_bytes: 0,
            compute_units: 1,
            fields: FieldId::ALL.to_vec(),
            driver: None,
        },
        calls: AtomicU32::new(0),
        panic,
    });
    let slot = DeviceSlot {
        id: "wgpu:9".into(),
        kind: BackendKind::Wgpu,
        fields: FieldId::ALL.to_vec(),
        workers: 1,
        prover: prover.clone(),
    };
    (slot, prover)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_backend_fails_or_retries_the_job_not_the_process() {
    // Pinned to the broken device: two attempts, then failed with the reason.
    let dir = tempfile::tempdir().unwrap();
    let hub = new_hub(dir.path(), true);
    let (broken, prover) = broken_slot(false);
    let slots = vec![broken.clone(), cpu_slot()];
    let app = app_with(dir.path(), hub.clone(), slots.clone());
    let workers = Workers::start(hub.clone(), &slots);
    let r = submit(
        &app,
        r#"{"circuit":"poseidon2","log_rows":3,"device":"wgpu:9"}"#,
    )
    .await;
    let job = wait(&app, &r.json::<JobView>().id).await;
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(job.attempts, 2);
    assert_eq!(prover.calls.load(Ordering::SeqCst), 2);
    let err = job.error.unwrap();
    assert!(err.contains("device lost: fell off the bus"), "{err}");
    // The process still serves and proves.
    let r = submit(
        &app,
        r#"{"circuit":"poseidon2","log_rows":3,"backend":"cpu"}"#,
    )
    .await;
    assert_eq!(
        wait(&app, &r.json::<JobView>().id).await.status,
        JobStatus::Succeeded
    );
    workers.shutdown(Duration::from_secs(5)).unwrap();

    // `auto` on the broken device first: the next attempt goes to the CPU.
    let dir = tempfile::tempdir().unwrap();
    let hub2 = new_hub(dir.path(), true);
    let (broken, prover) = broken_slot(true);
    let slots = vec![broken.clone(), cpu_slot()];
    let app = app_with(dir.path(), hub2.clone(), slots.clone());
    let r = submit(&app, r#"{"circuit":"poseidon2","log_rows":3}"#).await;
    let id = r.json::<JobView>().id;
    // Only the broken device's worker at first: a panic fails that job for good.
    let only_broken = Workers::start(hub2.clone(), std::slice::from_ref(&broken));
    let job = wait(&app, &id).await;
    assert_eq!(job.status, JobStatus::Failed);
    assert!(job.error.unwrap().contains("panicked"));
    assert_eq!(prover.calls.load(Ordering::SeqCst), 1);
    only_broken.shutdown(Duration::from_secs(5)).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let hub3 = new_hub(dir.path(), true);
    let (broken, prover) = broken_slot(false);
    let slots = vec![broken.clone(), cpu_slot()];
    let app = app_with(dir.path(), hub3.clone(), slots.clone());
    let id = submit(&app, r#"{"circuit":"poseidon2","log_rows":3}"#)
        .await
        .json::<JobView>()
        .id;
    let only_broken = Workers::start(hub3.clone(), std::slice::from_ref(&broken));
    let deadline = Instant::now() + Duration::from_secs(60);
    while prover.calls.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    only_broken.shutdown(Duration::from_secs(5)).unwrap();
    let job: JobView = get(&app, &format!("/v1/jobs/{id}")).await.json();
    assert_eq!(job.status, JobStatus::Queued, "{job:?}");
    assert!(job.error.as_deref().unwrap().contains("device lost"));
    // Only the CPU may take it now, even with the broken device back.
    let both = Workers::start(Hub::new(hub3.store.clone(), hub3.policy), &slots);
    let job = wait(&app, &id).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    assert_eq!(
        (job.attempts, job.device_used.as_deref()),
        (2, Some("cpu:0"))
    );
    assert_eq!(prover.calls.load(Ordering::SeqCst), 1);
    both.shutdown(Duration::from_secs(5)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_request_times_out_with_a_json_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.request_timeout_secs = 1;
    let app = router(Service::open(c).unwrap().state());
    // A body that stalls longer than the timeout after its first chunk.
    let slow = futures_util::stream::unfold(0, |n| async move {
        match n {
            0 => Some((Ok::<_, std::io::Error>(b"{\"circuit\":".to_vec()), 1)),
            1 => {
                tokio::time::sleep(Duration::from_secs(3)).await;
                Some((Ok(b"\"poseidon2\",\"log_rows\":4}".to_vec()), 2))
            }
            _ => None,
        }
    });
    let r = call(
        &app,
        Method::POST,
        "/v1/jobs",
        &[AUTH, JSON],
        Body::from_stream(slow),
    )
    .await;
    let msg = r.error(StatusCode::REQUEST_TIMEOUT, "request_timeout");
    assert!(msg.contains("1 s"), "{msg}");
    // The service still answers.
    assert_eq!(get(&app, "/v1/circuits").await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_need_their_declared_content_type() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::open(config(dir.path())).unwrap();
    let app = router(service.state());
    let job = r#"{"circuit":"poseidon2","log_rows":4}"#;
    for ct in [
        "application/json",
        "Application/JSON; charset=utf-8",
        "APPLICATION/json;charset=UTF-8",
    ] {
        let r = call(
            &app,
            Method::POST,
            "/v1/jobs",
            &[AUTH, ("content-type", ct)],
            job,
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{ct}");
    }
    for ct in ["application/octet-stream", "Application/Octet-Stream"] {
        // Raw uploads have their own route.
        call(
            &app,
            Method::POST,
            "/v1/jobs?circuit=poseidon2&log_rows=4",
            &[AUTH, ("content-type", ct)],
            Body::empty(),
        )
        .await
        .error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
        let r = call(
            &app,
            Method::POST,
            "/v1/jobs/raw?circuit=poseidon2&log_rows=4",
            &[AUTH, ("content-type", ct)],
            Body::empty(),
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{ct}");
    }
    let text = ("content-type", "text/plain");
    let jsonish = ("content-type", "application/jsonx");
    for headers in [
        &[AUTH][..],
        &[AUTH, text],
        &[AUTH, jsonish],
        &[AUTH, ("content-type", "")],
    ] {
        let r = call(&app, Method::POST, "/v1/jobs", headers, job).await;
        let msg = r.error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
        assert!(msg.contains("application/json"), "{msg}");
    }
    for headers in [&[AUTH][..], &[AUTH, JSON], &[AUTH, text]] {
        let r = call(&app, Method::POST, "/v1/verify", headers, "junk").await;
        r.error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    }
    // Paths that do not decode, and other answers of the HTTP layer.
    let r = get(&app, "/v1/jobs/%FF%FE").await;
    r.error(StatusCode::BAD_REQUEST, "bad_request");
    let r = get(&app, "/v1/jobs/%FF%FE/proof").await;
    r.error(StatusCode::BAD_REQUEST, "bad_request");
}
