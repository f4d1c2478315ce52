//! Every proof checked before it is served, devices that prove themselves first or are
//! marked faulty, deadlines, admission by memory, and the verifier's floor and bound,
//! through the router in-process.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, StatusCode, header};
use proofbox_backend_api::{BackendKind, DeviceInfo, DeviceType, FieldId};
use proofbox_prover::{DynProver, ProofArtifact, ProofRequest, ProveError, verify_bytes};
use proofbox_service::app as router;
use proofbox_service::types::{JobStatus, JobView, VerifyResult};
use proofbox_service::{DeviceSlot, Hub, Policy, Service, Store, Workers};

mod common;
use common::*;

/// A device that proves on the CPU and then corrupts one byte of every proof (or, with
/// `hang`, never answers in time): kernels subtly wrong, or a device that hangs.
struct Lying {
    inner: Box<dyn DynProver>,
    info: DeviceInfo,
    calls: AtomicU32,
    hang: bool,
}

impl DynProver for Lying {
    fn backend_kind(&self) -> BackendKind {
        BackendKind::Wgpu
    }
    fn device(&self) -> &DeviceInfo {
        &self.info
    }
    fn prove(
        &self,
        req: &ProofRequest,
        progress: Arc<dyn proofbox_prover::Progress>,
    ) -> Result<ProofArtifact, ProveError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.hang {
            std::thread::sleep(Duration::from_secs(20));
        }
        let mut a = self.inner.prove(req, progress)?;
        let n = a.proof.len();
        a.proof[n / 2] ^= 1;
        Ok(a)
    }
    fn prove_transition(
        &self,
        input: &proofbox_prover::transition::TransitionInput,
        fri: proofbox_prover::FriPreset,
        progress: Arc<dyn proofbox_prover::Progress>,
    ) -> Result<ProofArtifact, ProveError> {
        self.inner.prove_transition(input, fri, progress)
    }
}

fn lying_slot(hang: bool) -> (DeviceSlot, Arc<Lying>) {
    let inner = proofbox_prover::registry::open(
        proofbox_prover::BackendChoice::Kind(BackendKind::Cpu),
        Some("cpu:0"),
    )
    .unwrap();
    let mut info = inner.device().clone();
    info.id = "wgpu:7".into();
    info.backend = BackendKind::Wgpu;
    info.device_type = DeviceType::Gpu;
    info.memory_bytes = 64 << 20;
    let prover = Arc::new(Lying {
        inner,
        info,
        calls: AtomicU32::new(0),
        hang,
    });
    let slot = DeviceSlot {
        id: "wgpu:7".into(),
        kind: BackendKind::Wgpu,
        fields: FieldId::ALL.to_vec(),
        workers: 1,
        prover: prover.clone(),
    };
    (slot, prover)
}

/// Waits until `device` is marked faulty and job `id` is back in the queue (a worker
/// marks the device first, then requeues the job, so the two are seen one after the
/// other) and returns the job.
async fn faulty_and_requeued(
    app: &Router,
    hub: &Arc<Hub>,
    device: &str,
    id: &str,
    secs: u64,
) -> JobView {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let job: JobView = get(app, &format!("/v1/jobs/{id}")).await.json();
        if hub.fault(device).is_some() && job.status == JobStatus::Queued {
            return job;
        }
        assert!(
            Instant::now() < deadline,
            "{device} was not marked faulty with the job requeued: {job:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proof_that_does_not_verify_is_never_served_and_its_device_is_marked_faulty() {
    let dir = tempfile::tempdir().unwrap();
    let hub = new_hub(dir.path(), true);
    let (liar, prover) = lying_slot(false);
    let slots = vec![liar.clone(), cpu_slot()];
    let app = app_with(dir.path(), hub.clone(), slots.clone());
    let id = submit(&app, r#"{"circuit":"poseidon2","log_rows":3}"#)
        .await
        .json::<JobView>()
        .id;
    // Only the lying device at first: its proof is refused, the job goes back to the
    // queue for the CPU, and the device stops taking jobs.
    let only_liar = Workers::start(hub.clone(), std::slice::from_ref(&liar));
    let job = faulty_and_requeued(&app, &hub, "wgpu:7", &id, 120).await;
    assert!(
        job.error.as_deref().unwrap().contains("did not verify"),
        "{job:?}"
    );
    assert!(hub.fault("wgpu:7").unwrap().contains(&id));
    // Nothing was stored: there is no proof to download.
    assert_ne!(
        get(&app, &format!("/v1/jobs/{id}/proof")).await.status,
        StatusCode::OK
    );

    // `/readyz` says degraded and why.
    let ready = call(&app, Method::GET, "/readyz", &[], Body::empty()).await;
    assert_eq!(ready.status, StatusCode::OK);
    let health: proofbox_service::types::HealthView = ready.json();
    assert_eq!(health.status, "degraded");
    assert!(health.reasons[0].contains("wgpu:7"), "{health:?}");

    // The CPU's worker now: it proves the job (the liar's worker has stopped), and the
    // proof served verifies.
    let cpu = Workers::start(hub.clone(), &slots[1..]);
    let job = wait(&app, &id).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    assert_eq!(job.device_used.as_deref(), Some("cpu:0"));
    let proof = get(&app, &format!("/v1/jobs/{id}/proof")).await;
    verify_bytes(&proof.body).unwrap();
    // A job that only the faulty device could take is refused at submission.
    submit(
        &app,
        r#"{"circuit":"poseidon2","log_rows":3,"device":"wgpu:7"}"#,
    )
    .await
    .error(StatusCode::SERVICE_UNAVAILABLE, "device_faulty");
    assert_eq!(prover.calls.load(Ordering::SeqCst), 1);
    cpu.shutdown(Duration::from_secs(5)).unwrap();
    only_liar.shutdown(Duration::from_secs(5)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_past_its_deadline_is_abandoned_and_the_job_finishes_on_the_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(&dir.path().join("jobs.redb"), 2).unwrap();
    store.init().unwrap();
    let hub = Hub::new(
        Arc::new(store),
        Policy {
            max_attempts: 2,
            fallback_to_cpu: true,
            verifier: proofbox_verifier::Verifier::default(),
            job_deadline_secs: 1,
        },
    );
    let (hung, _) = lying_slot(true);
    let slots = vec![hung.clone(), cpu_slot()];
    let app = app_with(dir.path(), hub.clone(), slots.clone());
    let id = submit(&app, r#"{"circuit":"poseidon2","log_rows":3}"#)
        .await
        .json::<JobView>()
        .id;
    let only_hung = Workers::start(hub.clone(), std::slice::from_ref(&hung));
    faulty_and_requeued(&app, &hub, "wgpu:7", &id, 30).await;
    assert!(hub.fault("wgpu:7").unwrap().contains("deadline"));
    let cpu = Workers::start(hub.clone(), &slots[1..]);
    let job = wait(&app, &id).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    assert_eq!(job.device_used.as_deref(), Some("cpu:0"));
    cpu.shutdown(Duration::from_secs(5)).unwrap();
    // The hung proof's thread is left behind; its late result is discarded.
    only_hung.shutdown(Duration::from_millis(100)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_verify_route_applies_the_floor_and_checks_bundles() {
    let dir = tempfile::tempdir().unwrap();
    let app = router(Service::open(config(dir.path())).unwrap().state());
    let cpu = proofbox_prover::Prover::new(proofbox_backend_cpu::CpuBackend::new());
    let verify = |bytes: Vec<u8>| {
        let app = app.clone();
        async move {
            call(&app, Method::POST, "/v1/verify", &[AUTH, OCTET], bytes)
                .await
                .json::<VerifyResult>()
        }
    };
    // A valid one-query proof: refused for its security, with both figures.
    let weak = cpu
        .prove_with_insecure_params(
            &ProofRequest::new(proofbox_prover::CircuitId::Poseidon2, 3),
            proofbox_prover::FriParams {
                num_queries: 1,
                query_proof_of_work_bits: 0,
                ..proofbox_prover::FriPreset::Standard.params()
            },
            Arc::new(()),
        )
        .unwrap();
    let r = verify(weak.to_bytes()).await;
    assert!(!r.valid);
    assert_eq!(
        (r.conjectured_security_bits, r.min_security_bits),
        (Some(2), 100)
    );
    assert!(r.reason.unwrap().contains("floor of 100 bits"));
    // A bundle of one state-transition proof: valid, with its statement.
    let input = proofbox_prover::transition::seeded_input(3, 1);
    let chunk = cpu
        .prove_transition(&input, proofbox_prover::FriPreset::Standard, Arc::new(()))
        .unwrap();
    let bundle = proofbox_prover::transition::TransitionProof {
        chunks: vec![chunk],
    };
    let r = verify(bundle.to_bytes()).await;
    assert!(r.valid, "{r:?}");
    assert_eq!(
        (r.proofs, r.conjectured_security_bits),
        (Some(1), Some(100))
    );
    let t = r.transition.unwrap();
    let stated = input.statement().unwrap();
    assert_eq!(
        t.post_root,
        proofbox_prover::transition::digest_hex(&stated.post_root)
    );

    // An appliance with a floor above the standard preset refuses such jobs up front.
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.min_security_bits = 110;
    let strict = router(Service::open(c).unwrap().state());
    let msg = submit(&strict, r#"{"circuit":"poseidon2","log_rows":3}"#)
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request");
    assert!(
        msg.contains("100 bits") && msg.contains("110 bits"),
        "{msg}"
    );
    let ok = submit(
        &strict,
        r#"{"circuit":"poseidon2","log_rows":3,"fri":"benchmark"}"#,
    )
    .await;
    assert_eq!(
        ok.status,
        StatusCode::ACCEPTED,
        "{}",
        String::from_utf8_lossy(&ok.body)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_fits_no_device_is_refused_with_the_estimate_and_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let hub = new_hub(dir.path(), true);
    // A "GPU" with 64 MiB.
    let (small, _) = lying_slot(false);
    let app = app_with(dir.path(), hub, vec![small]);
    let msg = submit(&app, r#"{"circuit":"poseidon2","log_rows":16}"#)
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request");
    assert!(
        msg.contains("wgpu:7") && msg.contains("GiB") && msg.contains("estimated"),
        "{msg}"
    );
    // The largest size it takes is published, and accepted.
    let circuits: proofbox_service::types::CircuitsView = get(&app, "/v1/circuits").await.json();
    let poseidon2 = circuits
        .circuits
        .iter()
        .find(|c| c.name == "poseidon2")
        .unwrap();
    let largest = poseidon2.largest_log_rows_by_device["wgpu:7"];
    assert!((3..16).contains(&largest), "{largest}");
    let r = submit(
        &app,
        &format!(r#"{{"circuit":"poseidon2","log_rows":{largest}}}"#),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let too_big = submit(
        &app,
        &format!(r#"{{"circuit":"poseidon2","log_rows":{}}}"#, largest + 1),
    )
    .await;
    too_big.error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_that_fails_its_self_test_at_start_takes_no_job() {
    use proofbox_conformance::faulty::{Fault, FaultyBackend};
    let dir = tempfile::tempdir().unwrap();
    let hub = new_hub(dir.path(), true);
    let faulty: Arc<dyn DynProver> = Arc::new(proofbox_prover::Prover::new(FaultyBackend::new(
        Fault::CompressPairs,
    )));
    let bad = DeviceSlot {
        id: faulty.device().id.clone(),
        kind: faulty.backend_kind(),
        fields: FieldId::ALL.to_vec(),
        workers: 1,
        prover: faulty,
    };
    let slots = vec![bad.clone(), cpu_slot()];
    proofbox_service::self_test_devices(&hub, &slots);
    let why = hub.fault(&bad.id).expect("the faulty device is marked");
    assert!(
        why.contains("self-test failed") && why.contains("compress_pairs"),
        "{why}"
    );
    assert!(hub.fault("cpu:0").is_none(), "the CPU passes");
    // Jobs only it could take are refused; `auto` jobs go to the CPU.
    // `/v1/devices` shows it faulty, with the reason, beside the CPU.
    let reports = vec![proofbox_backend_api::BackendReport {
        backend: bad.kind,
        available: true,
        reason: None,
        devices: slots.iter().map(|s| s.prover.device().clone()).collect(),
    }];
    let app = router(proofbox_service::AppState::new(
        config(dir.path()),
        vec![KEY.into()],
        hub.clone(),
        slots.clone(),
        reports,
    ));
    let devices: proofbox_service::types::DevicesView = get(&app, "/v1/devices").await.json();
    let views = &devices.backends[0].devices;
    let bad_view = views.iter().find(|d| d.id == bad.id).unwrap();
    assert_eq!(bad_view.status, "faulty");
    assert!(
        bad_view
            .fault
            .as_deref()
            .unwrap()
            .contains("self-test failed")
    );
    let cpu_view = views.iter().find(|d| d.id == "cpu:0").unwrap();
    assert_eq!(
        (cpu_view.status.as_str(), cpu_view.fault.as_deref()),
        ("ok", None)
    );
    assert!(cpu_view.largest_log_rows.contains_key("poseidon2"));
    submit(
        &app,
        &format!(
            r#"{{"circuit":"poseidon2","log_rows":3,"device":"{}"}}"#,
            bad.id
        ),
    )
    .await
    .error(StatusCode::SERVICE_UNAVAILABLE, "device_faulty");
    let id = submit(&app, r#"{"circuit":"poseidon2","log_rows":3}"#)
        .await
        .json::<JobView>()
        .id;
    let workers = Workers::start(hub.clone(), &slots);
    let job = wait(&app, &id).await;
    assert_eq!(
        (job.status, job.device_used.as_deref()),
        (JobStatus::Succeeded, Some("cpu:0"))
    );
    workers.shutdown(Duration::from_secs(5)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn verify_is_bounded_and_answers_busy_beyond() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.verify_concurrency = 1;
    let app = router(Service::open(c).unwrap().state());
    let cpu = proofbox_prover::Prover::new(proofbox_backend_cpu::CpuBackend::new());
    let bytes = cpu
        .prove(
            &ProofRequest::new(proofbox_prover::CircuitId::Poseidon2, 12),
            Arc::new(()),
        )
        .unwrap()
        .to_bytes();
    // Sixteen checks at once against one permit: each takes milliseconds, so the ones
    // that arrive while another runs are turned away, not queued.
    let calls: Vec<_> = (0..16)
        .map(|_| {
            let (app, bytes) = (app.clone(), bytes.clone());
            tokio::spawn(async move {
                call(&app, Method::POST, "/v1/verify", &[AUTH, OCTET], bytes).await
            })
        })
        .collect();
    let (mut valid, mut busy) = (0, 0);
    for c in calls {
        let r = c.await.unwrap();
        if r.status == StatusCode::OK {
            assert!(r.json::<VerifyResult>().valid);
            valid += 1;
        } else {
            r.error(StatusCode::SERVICE_UNAVAILABLE, "verify_busy");
            assert!(r.headers.contains_key(header::RETRY_AFTER));
            busy += 1;
        }
    }
    assert!(valid >= 1 && busy >= 1, "{valid} valid, {busy} busy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submissions_take_at_most_the_largest_legitimate_input_and_verify_takes_more() {
    let dir = tempfile::tempdir().unwrap();
    let app = router(Service::open(config(dir.path())).unwrap().state());
    // 2 MiB: more than 1 MiB of input in base64 can need, far less than 64 MiB.
    let big = format!(
        r#"{{"circuit":"poseidon2","log_rows":3,"input_base64":"{}"}}"#,
        "A".repeat(2 << 20)
    );
    let msg = call(&app, Method::POST, "/v1/jobs", &[AUTH, JSON], big)
        .await
        .error(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");
    assert!(msg.contains("limit"), "{msg}");
    // The same size to /v1/verify is read (a bundle can be that large) and refused as
    // no proof, not as too large.
    let r = call(
        &app,
        Method::POST,
        "/v1/verify",
        &[AUTH, OCTET],
        vec![7u8; 2 << 20],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(!r.json::<VerifyResult>().valid);
}
