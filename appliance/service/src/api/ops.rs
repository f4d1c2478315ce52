//! Operations: `/healthz`, `/readyz`, `/metrics`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::error::AppError;
use crate::types::*;

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = HealthView)))]
pub(super) async fn healthz() -> Json<HealthView> {
    Json(HealthView {
        status: "ok".into(),
        reasons: Vec::new(),
    })
}

/// Ready to take jobs: the store answers, a device is open and not faulty, not
/// shutting down. `degraded` (still 200) when some devices are faulty.
#[utoipa::path(
    get, path = "/readyz", tag = "operations",
    responses((status = 200, body = HealthView), (status = 503, description = "Not ready; the message says why", body = ErrorBody))
)]
pub(super) async fn readyz(State(state): State<AppState>) -> Result<Json<HealthView>, AppError> {
    let mut reasons = Vec::new();
    if let Err(e) = state.blocking(|s| s.check()).await {
        reasons.push(format!("job store: {e}"));
    }
    let faults = state.inner.hub.faults();
    if state.inner.slots.is_empty() {
        reasons.push("no device to prove on".into());
    } else if state.inner.slots.iter().all(|s| faults.contains_key(&s.id)) {
        reasons.push("every device is faulty (see GET /v1/devices)".into());
    }
    if state.inner.hub.is_shutting_down() {
        reasons.push("shutting down".into());
    }
    if reasons.is_empty() {
        let degraded: Vec<String> = faults
            .iter()
            .map(|(id, why)| format!("device {id} is faulty: {why}"))
            .collect();
        Ok(Json(HealthView {
            status: if degraded.is_empty() {
                "ready"
            } else {
                "degraded"
            }
            .into(),
            reasons: degraded,
        }))
    } else {
        Err(AppError::Unavailable {
            code: "not_ready",
            message: format!("not ready: {}", reasons.join("; ")),
        })
    }
}

/// Prometheus metrics (text format).
#[utoipa::path(
    get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"))
)]
pub(super) async fn prometheus(State(state): State<AppState>) -> Result<Response, AppError> {
    let (counts, depth) = state.blocking(|s| s.counts()).await?;
    for (status, n) in counts {
        metrics::gauge!("proofbox_jobs", "status" => status.name()).set(n as f64);
    }
    metrics::gauge!("proofbox_queue_depth").set(depth as f64);
    metrics::gauge!("proofbox_running_proofs").set(state.inner.hub.running() as f64);
    let handle = &state.inner.metrics;
    handle.run_upkeep();
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        handle.render(),
    )
        .into_response())
}
