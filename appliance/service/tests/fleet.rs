//! What an appliance advertises to its fleet, on the embedded store (a fleet of one):
//! `GET /v1/fleet`, admission against the advertised sizes, and the reason a queued
//! job gives while no healthy device takes it. The shared store's fleet (several
//! appliances on PostgreSQL) is tested with real processes in
//! `appliance/cli/tests/fleet.rs`.

use axum::http::StatusCode;
use proofbox_service::Service;
use proofbox_service::types::{FleetView, JobStatus, JobView};

mod common;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_of_one_advertises_its_devices_and_queued_jobs_say_why_they_wait() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::open(proofbox_service::Config {
        max_log_rows: 12,
        ..config(dir.path())
    })
    .unwrap();
    // No workers: submitted jobs stay queued.
    let state = service.state();
    let app = proofbox_service::app(state.clone());

    let fleet: FleetView = get(&app, "/v1/fleet").await.json();
    assert_eq!(fleet.this_appliance, "local");
    assert_eq!(fleet.appliances.len(), 1);
    let cpu = &fleet.appliances[0].devices[0];
    assert_eq!((cpu.id.as_str(), cpu.backend.as_str()), ("cpu:0", "cpu"));
    assert_eq!(cpu.fault, None);
    // Every circuit over every field, each size capped by max_log_rows.
    assert_eq!(
        cpu.largest_log_rows.largest("poseidon2/koalabear/standard"),
        Some(12)
    );
    assert_eq!(
        cpu.largest_log_rows
            .largest("state-transition/koalabear/standard"),
        Some(12)
    );
    assert_eq!(
        cpu.largest_log_rows
            .largest("state-transition/babybear/standard"),
        None
    );

    // Above the limit: refused, not queued.
    let r = submit(&app, r#"{"circuit":"poseidon2","log_rows":13}"#).await;
    let msg = r.error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request");
    assert!(msg.contains("max_log_rows"), "{msg}");

    // A job for a device that takes it waits for no reason but a free worker...
    let r = submit(
        &app,
        r#"{"circuit":"poseidon2","log_rows":8,"device":"cpu:0"}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let id = r.json::<JobView>().id;
    let job: JobView = get(&app, &format!("/v1/jobs/{id}")).await.json();
    assert_eq!((job.status, job.waiting), (JobStatus::Queued, None));
    // ...until its device is found faulty: then it says so, and so does the fleet.
    state
        .hub()
        .mark_faulty("cpu:0", "a proof failed verification".into());
    let job: JobView = get(&app, &format!("/v1/jobs/{id}")).await.json();
    let why = job.waiting.expect("a reason while no device takes it");
    assert!(why.contains("route device:cpu:0"), "{why}");
    assert!(
        why.contains("poseidon2/koalabear/standard at 2^8 rows"),
        "{why}"
    );
    let listed: serde_json::Value = get(&app, "/v1/jobs?status=queued").await.json();
    assert_eq!(listed["jobs"][0]["waiting"], why.as_str());
    let fleet: FleetView = get(&app, "/v1/fleet").await.json();
    assert_eq!(
        fleet.appliances[0].devices[0].fault.as_deref(),
        Some("a proof failed verification")
    );
    // New jobs for it are refused while it is faulty.
    let r = submit(&app, r#"{"circuit":"poseidon2","log_rows":8}"#).await;
    r.error(StatusCode::SERVICE_UNAVAILABLE, "device_faulty");
}
