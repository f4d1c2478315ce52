//! State-transition jobs with a real diff: a node's transition witness, checked at
//! submission, proved as a bundle, verified against the statement the job names.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{Method, StatusCode};
use base64::Engine;
use proofbox_backend_api::{BackendKind, DeviceInfo, DeviceType, FieldId};
use proofbox_prover::transition::{
    TransitionInput, TransitionProof, digest_hex, padding_key, verify_diff_chunks,
};
use proofbox_prover::{DynProver, FriPreset, Progress, ProofArtifact, ProofRequest, ProveError};
use proofbox_service::app as router;
use proofbox_service::types::{JobStatus, JobView, TransitionStatementView};
use proofbox_service::{DeviceSlot, Service, Workers};
use proofbox_state::{Diff, StateTree, TransitionWitness};

mod common;
use common::*;

/// A tree of `keys` seeded keys, a diff of `updates` updates to it at block `block`:
/// the witness a node sends, the diff, and the tree after it.
fn transition(
    seed: u64,
    keys: usize,
    updates: usize,
    block: u64,
) -> (TransitionWitness, Diff, StateTree) {
    let (mut tree, diff) = proofbox_state::workload::random_transition(seed, keys, updates);
    let tw = tree.transition_witness(&diff, block, &padding_key());
    (tw, diff, tree)
}

/// The statement a job of this diff must name.
fn expected(
    tw: &TransitionWitness,
    diff: &Diff,
    post: &StateTree,
) -> (String, String, String, u64) {
    (
        digest_hex(&tw.pre_root),
        digest_hex(&post.root()),
        digest_hex(&diff.commitment()),
        tw.block_number,
    )
}

fn named(s: &TransitionStatementView) -> (String, String, String, u64) {
    (
        s.pre_root.clone(),
        s.post_root.clone(),
        s.diff_commitment.clone(),
        s.block_number,
    )
}

async fn submit_raw(app: &Router, query: &str, key: Option<&str>, body: Vec<u8>) -> Resp {
    let mut headers = vec![AUTH, OCTET];
    if let Some(k) = key {
        headers.push(("idempotency-key", k));
    }
    call(
        app,
        Method::POST,
        &format!("/v1/jobs/raw?{query}"),
        &headers,
        body,
    )
    .await
}

fn serve(dir: &std::path::Path) -> (Router, Workers) {
    let service = Service::open(config(dir)).unwrap();
    let workers = service.start_workers();
    (router(service.state()), workers)
}

/// Replaces the first sibling on update `index`'s path by another digest (the
/// pre-state root): a witness that no longer leads to the root.
fn tamper_sibling(tw: &mut TransitionWitness, index: usize) {
    let pre = tw.pre_root;
    let sibling = tw.witnesses[index]
        .proof
        .siblings
        .iter_mut()
        .find(|s| s.is_some())
        .expect("a path in a tree of several keys has a sibling");
    *sibling = Some(pre);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_witness_job_proves_the_diff_as_a_bundle_stating_what_the_job_names() {
    let dir = tempfile::tempdir().unwrap();
    let (app, workers) = serve(dir.path());
    let (tw, diff, post) = transition(11, 16, 3, 42);
    let bytes = tw.to_bytes();

    let r = submit_raw(
        &app,
        "circuit=state-transition&fri=standard",
        Some("block-42"),
        bytes.clone(),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert!(!r.headers.contains_key("idempotent-replayed"));
    let job: JobView = r.json();
    // log_rows not given: the default chunk size, 4096 segments of 32 rows.
    assert_eq!(job.log_rows, 17);
    assert_eq!(job.input_bytes, bytes.len() as u64);
    let statement = job
        .statement
        .clone()
        .expect("a witness job names its statement");
    assert_eq!(named(&statement), expected(&tw, &diff, &post));
    assert_eq!((statement.updates, statement.chunks), (3, 1));
    // 3 one-segment updates, padded to 4 segments.
    assert_eq!(statement.rows_per_chunk, 128);
    assert_eq!(statement.pre_root.len(), 64);

    // The same key and body: the same job, replayed.
    let again = submit_raw(
        &app,
        "circuit=state-transition&fri=standard",
        Some("block-42"),
        bytes.clone(),
    )
    .await;
    assert_eq!(again.status, StatusCode::ACCEPTED);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(again.json::<JobView>().id, job.id);
    // The same key with another witness (same length, one byte changed): refused.
    let (other, _, _) = transition(11, 16, 3, 43);
    let other = other.to_bytes();
    assert_eq!(other.len(), bytes.len());
    submit_raw(
        &app,
        "circuit=state-transition&fri=standard",
        Some("block-42"),
        other,
    )
    .await
    .error(StatusCode::CONFLICT, "idempotency_key_reused");

    let done = wait(&app, &job.id).await;
    assert_eq!(done.status, JobStatus::Succeeded, "{done:?}");
    assert_eq!(done.statement, job.statement);
    let proof = get(&app, &format!("/v1/jobs/{}/proof", job.id)).await;
    assert_eq!(proof.status, StatusCode::OK);
    assert_eq!(Some(proof.body.len() as u64), done.proof_bytes);
    let bundle = TransitionProof::from_bytes(&proof.body).unwrap();
    assert_eq!(bundle.chunks.len(), 1);
    let verified = verify_diff_chunks(&bundle, &tw.pre_root, &post.root(), &diff, 42).unwrap();
    let stated = verified.transition.unwrap();
    assert_eq!(
        (
            digest_hex(&stated.pre_root),
            digest_hex(&stated.post_root),
            digest_hex(&stated.diff_commitment),
            stated.block_number
        ),
        named(&statement)
    );
    // `/v1/verify` takes the bundle and states the same.
    let v: proofbox_service::types::VerifyResult = call(
        &app,
        Method::POST,
        "/v1/verify",
        &[AUTH, OCTET],
        proof.body.clone(),
    )
    .await
    .json();
    assert!(v.valid, "{v:?}");
    assert_eq!(v.transition.unwrap().post_root, statement.post_root);
    workers.shutdown(Duration::from_secs(5)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_log_rows_cuts_the_diff_into_chained_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let (app, workers) = serve(dir.path());
    let (tw, diff, post) = transition(5, 16, 5, 7);
    // JSON, with the witness in base64: at most 2 segments (64 rows) per proof.
    let b64 = base64::engine::general_purpose::STANDARD.encode(tw.to_bytes());
    let r = submit(
        &app,
        &format!(r#"{{"circuit":"state-transition","log_rows":6,"input_base64":"{b64}"}}"#),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let job: JobView = r.json();
    let statement = job.statement.clone().unwrap();
    assert_eq!(named(&statement), expected(&tw, &diff, &post));
    assert_eq!((statement.updates, statement.chunks), (5, 3));
    assert_eq!(statement.rows_per_chunk, 64);
    let done = wait(&app, &job.id).await;
    assert_eq!(done.status, JobStatus::Succeeded, "{done:?}");
    let proof = get(&app, &format!("/v1/jobs/{}/proof", job.id)).await;
    let bundle = TransitionProof::from_bytes(&proof.body).unwrap();
    assert_eq!(bundle.chunks.len(), 3);
    assert!(bundle.chunks.iter().all(|c| c.log_rows <= 6));
    verify_diff_chunks(&bundle, &tw.pre_root, &post.root(), &diff, 7).unwrap();
    workers.shutdown(Duration::from_secs(5)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_or_garbled_witness_is_refused_naming_the_update_and_never_queued() {
    let dir = tempfile::tempdir().unwrap();
    // No workers: nothing refused may reach the queue.
    let service = Service::open(config(dir.path())).unwrap();
    let app = router(service.state());
    let (tw, _, _) = transition(3, 16, 4, 1);

    let mut bad = tw.clone();
    tamper_sibling(&mut bad, 1);
    let key = format!("{:?}", bad.witnesses[1].key);
    let msg = submit_raw(&app, "circuit=state-transition", None, bad.to_bytes())
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "witness_rejected");
    assert!(msg.contains("update 1 of the diff"), "{msg}");
    assert!(msg.contains(&key), "{msg}");
    // The same in a diff of several chunks: the index counts in the whole diff.
    let mut bad = tw.clone();
    tamper_sibling(&mut bad, 2);
    let msg = submit_raw(
        &app,
        "circuit=state-transition&log_rows=5",
        None,
        bad.to_bytes(),
    )
    .await
    .error(StatusCode::UNPROCESSABLE_ENTITY, "witness_rejected");
    assert!(msg.contains("update 2 of the diff"), "{msg}");
    // A wrong old value: the leaf proved is not the one in the tree.
    let mut bad = tw.clone();
    let w = &mut bad.witnesses[0];
    assert_ne!(w.old_value, w.new_value);
    w.old_value = w.new_value;
    let msg = submit_raw(&app, "circuit=state-transition", None, bad.to_bytes())
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "witness_rejected");
    assert!(msg.contains("update 0 of the diff"), "{msg}");

    // Bytes that are no witness, raw or in JSON.
    let msg = submit_raw(
        &app,
        "circuit=state-transition",
        None,
        b"not a witness".to_vec(),
    )
    .await
    .error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_witness");
    assert!(msg.contains("magic"), "{msg}");
    let mut truncated = tw.to_bytes();
    truncated.truncate(truncated.len() / 2);
    submit_raw(&app, "circuit=state-transition", None, truncated)
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_witness");
    let b64 = base64::engine::general_purpose::STANDARD.encode(b"PBTW\x01\x00junk");
    submit(
        &app,
        &format!(r#"{{"circuit":"state-transition","input_base64":"{b64}"}}"#),
    )
    .await
    .error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_witness");

    // log_rows out of range, and a witness in the wrong field.
    for q in ["log_rows=4", "log_rows=21", "field=babybear"] {
        submit_raw(
            &app,
            &format!("circuit=state-transition&{q}"),
            None,
            tw.to_bytes(),
        )
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request");
    }
    // Only a witness job may leave log_rows out.
    for body in [
        r#"{"circuit":"poseidon2"}"#,
        r#"{"circuit":"poseidon2","log_rows":0}"#,
        r#"{"circuit":"state-transition"}"#,
    ] {
        let msg = submit(&app, body)
            .await
            .error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request");
        assert!(msg.contains("log_rows is required"), "{body}: {msg}");
    }
    let jobs: proofbox_service::types::JobList = get(&app, "/v1/jobs").await.json();
    assert!(jobs.jobs.is_empty(), "{jobs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn witness_checks_are_bounded_and_answer_busy_beyond() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.witness_concurrency = 1;
    let app = router(Service::open(c).unwrap().state());
    // 512 updates in a state of 4,096 keys: each check takes milliseconds, so the
    // submissions that arrive while another is checked are turned away, not queued.
    let (tw, _, _) = transition(21, 4096, 512, 7);
    let bytes = tw.to_bytes();
    let calls: Vec<_> = (0..16)
        .map(|i| {
            let (app, bytes) = (app.clone(), bytes.clone());
            tokio::spawn(async move {
                let key = format!("busy-{i}");
                submit_raw(&app, "circuit=state-transition", Some(&key), bytes).await
            })
        })
        .collect();
    let (mut accepted, mut busy) = (0, 0);
    for c in calls {
        let r = c.await.unwrap();
        if r.status == StatusCode::ACCEPTED {
            accepted += 1;
        } else {
            r.error(StatusCode::SERVICE_UNAVAILABLE, "witness_busy");
            assert!(r.headers.contains_key(axum::http::header::RETRY_AFTER));
            busy += 1;
        }
    }
    assert!(
        accepted >= 1 && busy >= 1,
        "{accepted} accepted, {busy} busy"
    );
    // Every permit is back: a retry is accepted.
    let r = submit_raw(
        &app,
        "circuit=state-transition",
        Some("busy-0-retry"),
        bytes,
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn witnesses_may_pass_the_input_limit_of_other_circuits() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::open(config(dir.path())).unwrap();
    let app = router(service.state());
    // 2 MiB raw: too large for any other circuit, read for a state transition (and
    // refused as no witness).
    submit_raw(&app, "circuit=blake3&log_rows=3", None, vec![0; 2 << 20])
        .await
        .error(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");
    submit_raw(&app, "circuit=state-transition", None, vec![0; 2 << 20])
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_witness");
    // Beyond the witness limit: too large.
    submit_raw(
        &app,
        "circuit=state-transition",
        None,
        vec![0; proofbox_service::transition::MAX_WITNESS_BYTES + 1],
    )
    .await
    .error(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");

    // The document says so.
    let doc: serde_json::Value = get(&app, "/openapi.json").await.json();
    let job = &doc["components"]["schemas"]["SubmitJob"];
    let required: Vec<&str> = job["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(required, ["circuit"]);
    let raw = doc["paths"]["/v1/jobs/raw"]["post"]["parameters"]
        .as_array()
        .unwrap();
    let log_rows = raw.iter().find(|p| p["name"] == "log_rows").unwrap();
    assert_ne!(log_rows["required"], true, "{log_rows}");
    assert_eq!(log_rows["schema"]["minimum"], 0);
    let view = &doc["components"]["schemas"]["JobView"]["properties"]["statement"];
    assert!(
        view.to_string().contains("TransitionStatementView"),
        "{view}"
    );
    // Every other circuit requires log_rows; a state transition with a witness does not.
    let rules = job["allOf"].as_array().unwrap();
    let rule = |c: &str| {
        rules
            .iter()
            .find(|r| {
                r["if"]["properties"]["circuit"]["const"] == c
                    && r["if"]["properties"].as_object().unwrap().len() == 1
            })
            .unwrap()
    };
    assert_eq!(
        rule("poseidon2")["then"]["required"],
        serde_json::json!(["log_rows"])
    );
    assert!(rule("state-transition")["then"]["required"].is_null());
    assert!(
        doc["components"]["schemas"]["TransitionStatementView"]["properties"]["diff_commitment"]
            .is_object()
    );
    let circuits: proofbox_service::types::CircuitsView = get(&app, "/v1/circuits").await.json();
    let st = circuits
        .circuits
        .iter()
        .find(|c| c.name == "state-transition")
        .unwrap();
    assert_eq!(st.max_input_bytes, 64 << 20);
}

/// A device that proves every witness job as another diff's bundle: valid proofs, of
/// the wrong statement.
struct WrongDiff {
    inner: Box<dyn DynProver>,
    info: DeviceInfo,
    calls: AtomicU32,
}

impl DynProver for WrongDiff {
    fn backend_kind(&self) -> BackendKind {
        BackendKind::Wgpu
    }
    fn device(&self) -> &DeviceInfo {
        &self.info
    }
    fn prove(
        &self,
        req: &ProofRequest,
        progress: Arc<dyn Progress>,
    ) -> Result<ProofArtifact, ProveError> {
        self.inner.prove(req, progress)
    }
    fn prove_transition(
        &self,
        input: &TransitionInput,
        fri: FriPreset,
        progress: Arc<dyn Progress>,
    ) -> Result<ProofArtifact, ProveError> {
        self.inner.prove_transition(input, fri, progress)
    }
    fn prove_transition_chunks(
        &self,
        _chunks: &[TransitionInput],
        fri: FriPreset,
        progress: Arc<dyn Progress>,
    ) -> Result<TransitionProof, ProveError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let (tw, _, _) = transition(99, 16, 2, 5);
        let chunks = TransitionInput::chunks_from_witness(tw, 4096).unwrap();
        self.inner.prove_transition_chunks(&chunks, fri, progress)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_of_another_statement_is_an_invalid_proof_and_the_cpu_proves_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let hub = new_hub(dir.path(), true);
    let inner = proofbox_prover::registry::open(
        proofbox_prover::BackendChoice::Kind(BackendKind::Cpu),
        Some("cpu:0"),
    )
    .unwrap();
    let mut info = inner.device().clone();
    info.id = "wgpu:7".into();
    info.backend = BackendKind::Wgpu;
    info.device_type = DeviceType::Gpu;
    let liar = Arc::new(WrongDiff {
        inner,
        info,
        calls: AtomicU32::new(0),
    });
    let liar_slot = DeviceSlot {
        id: "wgpu:7".into(),
        kind: BackendKind::Wgpu,
        fields: FieldId::ALL.to_vec(),
        workers: 1,
        prover: liar.clone(),
    };
    let slots = vec![liar_slot.clone(), cpu_slot()];
    let app = app_with(dir.path(), hub.clone(), slots.clone());
    let (tw, diff, post) = transition(8, 16, 2, 5);
    let r = submit_raw(&app, "circuit=state-transition", None, tw.to_bytes()).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let id = r.json::<JobView>().id;

    let only_liar = Workers::start(hub.clone(), std::slice::from_ref(&liar_slot));
    let deadline = Instant::now() + Duration::from_secs(120);
    // The device is marked faulty, then the attempt's outcome recorded.
    let job = loop {
        let job: JobView = get(&app, &format!("/v1/jobs/{id}")).await.json();
        if hub.fault("wgpu:7").is_some() && job.status != JobStatus::Running {
            break job;
        }
        assert!(
            Instant::now() < deadline,
            "the wrong bundle was not caught: {job:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(job.status, JobStatus::Queued, "{job:?}");
    assert!(
        job.error.as_deref().unwrap().contains("not the statement"),
        "{job:?}"
    );

    let cpu = Workers::start(hub.clone(), &slots[1..]);
    let job = wait(&app, &id).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    assert_eq!(job.device_used.as_deref(), Some("cpu:0"));
    let proof = get(&app, &format!("/v1/jobs/{id}/proof")).await;
    let bundle = TransitionProof::from_bytes(&proof.body).unwrap();
    verify_diff_chunks(&bundle, &tw.pre_root, &post.root(), &diff, 5).unwrap();
    assert_eq!(liar.calls.load(Ordering::SeqCst), 1);
    cpu.shutdown(Duration::from_secs(5)).unwrap();
    only_liar.shutdown(Duration::from_secs(5)).unwrap();
}
