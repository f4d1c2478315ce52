//! What this appliance can do: `/v1/verify`, `/v1/devices`, `/v1/circuits`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use proofbox_prover::{CircuitId, FriPreset, verify_bytes};

use super::{AppState, RawBytes, body_bytes};
use crate::error::AppError;
use crate::types::*;

/// Verify a proof artifact (the body, raw bytes). Answers 200 either way.
#[utoipa::path(
    post, path = "/v1/verify", tag = "jobs",
    request_body(content = RawBytes, content_type = "application/octet-stream", description = "A proof artifact"),
    responses(
        (status = 200, description = "`valid`, or not with the reason", body = VerifyResult),
        (status = 401, body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 415, description = "Content-Type not application/octet-stream", body = ErrorBody)
    ),
    security(("bearer" = []))
)]
pub(super) async fn verify(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<VerifyResult>, AppError> {
    let body = body_bytes(body, state.inner.config.body_limit_bytes)?;
    let result = tokio::task::spawn_blocking(move || verify_bytes(&body))
        .await
        .map_err(AppError::internal)?;
    Ok(Json(match result {
        Ok(a) => VerifyResult {
            valid: true,
            reason: None,
            circuit: Some(a.circuit.name().into()),
            field: Some(a.field.name().into()),
            log_rows: Some(a.log_rows),
            conjectured_security_bits: Some(a.fri.conjectured_security_bits()),
        },
        Err(e) => VerifyResult {
            valid: false,
            reason: Some(e.to_string()),
            circuit: None,
            field: None,
            log_rows: None,
            conjectured_security_bits: None,
        },
    }))
}

/// Every backend (available or not, with the reason), its devices, and the workers
/// this appliance runs on each.
#[utoipa::path(
    get, path = "/v1/devices", tag = "appliance",
    responses((status = 200, body = DevicesView), (status = 401, body = ErrorBody)),
    security(("bearer" = []))
)]
pub(super) async fn devices(State(state): State<AppState>) -> Json<DevicesView> {
    let workers = |id: &str| {
        state
            .inner
            .slots
            .iter()
            .find(|s| s.id == id)
            .map_or(0, |s| s.workers as u32)
    };
    let backends = state
        .inner
        .reports
        .iter()
        .map(|r| BackendView {
            backend: r.backend.name().into(),
            available: r.available,
            reason: r.reason.clone(),
            devices: r
                .devices
                .iter()
                .map(|d| DeviceView {
                    id: d.id.clone(),
                    name: d.name.clone(),
                    vendor: d.vendor.clone(),
                    device_type: format!("{:?}", d.device_type).to_lowercase(),
                    memory_bytes: d.memory_bytes,
                    compute_units: d.compute_units,
                    fields: d.fields.iter().map(|f| f.name().to_string()).collect(),
                    driver: d.driver.clone(),
                    workers: workers(&d.id),
                })
                .collect(),
        })
        .collect();
    Json(DevicesView { backends })
}

/// The circuits, their size limits, fields and FRI presets.
#[utoipa::path(
    get, path = "/v1/circuits", tag = "appliance",
    responses((status = 200, body = CircuitsView), (status = 401, body = ErrorBody)),
    security(("bearer" = []))
)]
pub(super) async fn circuits() -> Json<CircuitsView> {
    let circuits = CircuitId::ALL
        .into_iter()
        .map(|c| CircuitView {
            name: c.name().into(),
            description: c.description().into(),
            min_log_rows: c.min_log_rows(),
            max_log_rows: c.max_log_rows(),
            input_bytes_per_instance: c.input_bytes_per_instance() as u64,
            max_input_bytes: proofbox_prover::circuits::MAX_INPUT_BYTES as u64,
            fields: c.fields().iter().map(|f| f.name().into()).collect(),
            fri_presets: FriPreset::ALL.iter().map(|f| f.name().into()).collect(),
        })
        .collect();
    Json(CircuitsView { circuits })
}
