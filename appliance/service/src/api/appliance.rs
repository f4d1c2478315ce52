//! What this appliance can do: `/v1/verify`, `/v1/devices`, `/v1/circuits`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use proofbox_backend_api::{DeviceInfo, FieldId};
use proofbox_prover::transition::digest_hex;
use proofbox_prover::{CircuitId, FriPreset, memory};
use proofbox_verifier::VerifyError;

use super::{AppState, RawBytes, body_bytes};
use crate::error::AppError;
use crate::types::*;

/// Verify a proof artifact, or a bundle of chained state-transition proofs (the body,
/// raw bytes), under this appliance's security floor. Answers 200 either way.
#[utoipa::path(
    post, path = "/v1/verify", tag = "jobs",
    request_body(content = RawBytes, content_type = "application/octet-stream", description = "A proof artifact or a state-transition bundle"),
    responses(
        (status = 200, description = "`valid`, or not with the reason", body = VerifyResult),
        (status = 401, body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 415, description = "Content-Type not application/octet-stream", body = ErrorBody),
        (status = 503, description = "`verify_busy`: `verify_concurrency` checks are running; retry after `Retry-After` seconds", body = ErrorBody)
    ),
    security(("bearer" = []))
)]
pub(super) async fn verify(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<VerifyResult>, AppError> {
    let body = body_bytes(body, state.inner.config.body_limit_bytes)?;
    let verifier = state.inner.config.verifier();
    let result = state
        .inner
        .verifications
        .run(move || verifier.verify_any_bytes(&body))
        .await?;
    let min_security_bits = verifier.min_security_bits();
    Ok(Json(match result {
        Ok(v) => VerifyResult {
            valid: true,
            reason: None,
            circuit: Some(v.circuit.name().into()),
            field: Some(v.field.name().into()),
            log_rows: Some(v.log_rows),
            conjectured_security_bits: Some(v.security_bits),
            min_security_bits,
            proofs: Some(v.proofs as u32),
            transition: v.transition.map(|t| TransitionView {
                pre_root: digest_hex(&t.pre_root),
                post_root: digest_hex(&t.post_root),
                diff_commitment: digest_hex(&t.diff_commitment),
                block_number: t.block_number,
            }),
        },
        Err(e) => VerifyResult {
            valid: false,
            reason: Some(e.to_string()),
            circuit: None,
            field: None,
            log_rows: None,
            conjectured_security_bits: match e {
                VerifyError::InsufficientSecurity { bits, .. } => Some(bits),
                _ => None,
            },
            min_security_bits,
            proofs: None,
            transition: None,
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
    let faults = state.inner.hub.faults();
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
                    status: if faults.contains_key(&d.id) {
                        "faulty"
                    } else {
                        "ok"
                    }
                    .into(),
                    fault: faults.get(&d.id).cloned(),
                    largest_log_rows: CircuitId::ALL
                        .into_iter()
                        .filter_map(|c| {
                            largest(c, d, state.inner.host_memory)
                                .map(|l| (c.name().to_string(), l))
                        })
                        .collect(),
                })
                .collect(),
        })
        .collect();
    Json(DevicesView { backends })
}

/// The appliances sharing this one's job store, live now (their advertisement renewed
/// within the lease), each with its devices, the largest job each takes and which are
/// faulty. On the embedded store, this appliance alone.
#[utoipa::path(
    get, path = "/v1/fleet", tag = "appliance",
    responses(
        (status = 200, body = FleetView),
        (status = 401, body = ErrorBody),
        (status = 503, description = "`store_unavailable`", body = ErrorBody)
    ),
    security(("bearer" = []))
)]
pub(super) async fn fleet(State(state): State<AppState>) -> Result<Json<FleetView>, AppError> {
    let appliances = state.fleet().await?;
    Ok(Json(FleetView {
        this_appliance: state.inner.appliance.clone(),
        appliances,
    }))
}

/// The largest size of `circuit` that `device` takes: KoalaBear (or the circuit's
/// first field), the standard preset.
fn largest(circuit: CircuitId, device: &DeviceInfo, host: Option<u64>) -> Option<u8> {
    let field = if circuit.fields().contains(&FieldId::KoalaBear) {
        FieldId::KoalaBear
    } else {
        circuit.fields()[0]
    };
    if !device.fields.contains(&field) {
        return None;
    }
    memory::largest_log_rows(circuit, field, &FriPreset::Standard.params(), device, host)
}

/// The circuits, their size limits, fields and FRI presets.
#[utoipa::path(
    get, path = "/v1/circuits", tag = "appliance",
    responses((status = 200, body = CircuitsView), (status = 401, body = ErrorBody)),
    security(("bearer" = []))
)]
pub(super) async fn circuits(State(state): State<AppState>) -> Json<CircuitsView> {
    let circuits = CircuitId::ALL
        .into_iter()
        .map(|c| CircuitView {
            name: c.name().into(),
            description: c.description().into(),
            min_log_rows: c.min_log_rows(),
            max_log_rows: c.max_log_rows(),
            input_bytes_per_instance: c.input_bytes_per_instance() as u64,
            max_input_bytes: if c == CircuitId::StateTransition {
                crate::transition::MAX_WITNESS_BYTES
            } else {
                proofbox_prover::circuits::MAX_INPUT_BYTES
            } as u64,
            fields: c.fields().iter().map(|f| f.name().into()).collect(),
            fri_presets: FriPreset::ALL.iter().map(|f| f.name().into()).collect(),
            largest_log_rows_by_device: state
                .inner
                .slots
                .iter()
                .filter_map(|s| {
                    largest(c, s.prover.device(), state.inner.host_memory)
                        .map(|l| (s.id.clone(), l))
                })
                .collect(),
        })
        .collect();
    Json(CircuitsView { circuits })
}
