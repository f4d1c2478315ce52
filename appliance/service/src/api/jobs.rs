//! `/v1/jobs`: submit, list, follow, download, cancel.

use std::time::{Duration, UNIX_EPOCH};

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use proofbox_backend_api::{BackendKind, FieldId};
use proofbox_prover::{
    BackendChoice, CircuitId, FriPreset, ProofRequest, RequestError, Stage, memory,
};

use super::middleware::{media_type, unsupported_media_type};
use super::{AppState, RawBytes, body_bytes, query_error};
use crate::error::AppError;
use crate::fleet::{ApplianceAd, DeviceAd};
use crate::store::{JobRecord, MAX_PRIORITY, MIN_PRIORITY, NewJob, ROUTE_ANY};
use crate::transition::{self, MAX_WITNESS_BYTES};
use crate::types::*;

/// Largest page of `GET /v1/jobs`.
pub const MAX_LIST_LIMIT: u32 = 1000;
const DEFAULT_LIST_LIMIT: u32 = 50;
pub(super) const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;
/// A cursor is a sequence number: at most 19 digits (below 10^19, within `u64`).
pub(super) const MAX_CURSOR_DIGITS: usize = 19;
fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

fn view(rec: JobRecord, stage: Option<Stage>, waiting: Option<String>) -> JobView {
    JobView {
        stage: if rec.status == JobStatus::Running {
            stage.map(|s| s.name().to_string())
        } else {
            None
        },
        circuit: rec.circuit.name().into(),
        field: rec.field.name().into(),
        log_rows: rec.log_rows,
        fri: rec.fri.name().into(),
        seed: rec.seed,
        input_bytes: rec.input_len,
        backend: rec.backend,
        device: rec.device,
        priority: rec.priority,
        backend_used: rec.backend_used,
        device_used: rec.device_used,
        attempts: rec.attempts,
        created_at: rfc3339(rec.created_ms),
        started_at: rec.started_ms.map(rfc3339),
        finished_at: rec.finished_ms.map(rfc3339),
        queue_ms: rec.started_ms.map(|s| s.saturating_sub(rec.created_ms)),
        proving_ms: rec.proving_ms,
        proof_bytes: rec.proof_bytes,
        error: rec.error,
        statement: rec.statement,
        waiting,
        status: rec.status,
        id: rec.id,
    }
}

/// `rec` as answered; `fleet`: the live appliances, to say why a queued job waits.
fn job_view(state: &AppState, rec: JobRecord, fleet: Option<&[ApplianceAd]>) -> JobView {
    let stage = state.inner.hub.stage(&rec.id);
    let waiting = match fleet {
        Some(fleet) if rec.status == JobStatus::Queued => crate::fleet::waiting_reason(fleet, &rec),
        _ => None,
    };
    view(rec, stage, waiting)
}

/// The largest legitimate submission: the largest input (`MAX_INPUT_BYTES`) in base64
/// inside JSON, with room for the other fields. A raw upload is smaller.
const MAX_SUBMISSION_BYTES: usize =
    proofbox_prover::circuits::MAX_INPUT_BYTES.div_ceil(3) * 4 + (64 << 10);

/// The largest legitimate submission of a state transition with a witness: the
/// largest witness in base64 inside JSON, with room for the other fields.
const MAX_WITNESS_SUBMISSION_BYTES: usize = MAX_WITNESS_BYTES.div_ceil(3) * 4 + (64 << 10);

/// The body limit of a submission: `body_limit_bytes`, or the largest legitimate
/// submission (of a state transition with a witness, or of any other job) if smaller.
fn submission_limit(state: &AppState, witness: bool) -> usize {
    state.inner.config.body_limit_bytes.min(if witness {
        MAX_WITNESS_SUBMISSION_BYTES
    } else {
        MAX_SUBMISSION_BYTES
    })
}

/// `log_rows` of a state transition with a witness: at most `2^log_rows` rows per
/// proof (chunk); 0 (not given) is the default, within `max_log_rows`.
fn witness_log_rows(state: &AppState, asked: u64) -> Result<u8, AppError> {
    let (min, max) = (transition::MIN_LOG_ROWS, transition::MAX_LOG_ROWS);
    let cap = state.inner.config.max_log_rows;
    if asked == 0 {
        return if cap < min {
            Err(AppError::invalid(format!(
                "circuit state-transition needs log_rows {min} or more, above this \
                 appliance's limit {cap} (max_log_rows)"
            )))
        } else {
            Ok(transition::DEFAULT_LOG_ROWS.min(cap))
        };
    }
    let log_rows = u8::try_from(asked)
        .ok()
        .filter(|r| (min..=max).contains(r))
        .ok_or_else(|| {
            AppError::invalid(format!(
                "circuit state-transition: log_rows {asked} (rows per proof of the witness's \
                 bundle) outside the supported range {min}..={max}"
            ))
        })?;
    if log_rows > cap {
        return Err(AppError::invalid(format!(
            "log_rows {log_rows} above this appliance's limit {cap} (max_log_rows)"
        )));
    }
    Ok(log_rows)
}

/// Checks a submission and, for a state transition with a witness, the witness
/// (decoded, cut into chunks and checked natively off the runtime; the job then names
/// its statement), then admits it by memory: the proof (a witness job's largest
/// chunk) must fit a device.
async fn check_submission(
    state: &AppState,
    s: SubmitJob,
    raw_input: Option<Bytes>,
) -> Result<NewJob, AppError> {
    let fleet = state.fleet().await?;
    let mut job = validate_submission(state, &fleet, s, raw_input)?;
    let mut log_rows = job.request.log_rows;
    if is_witness(job.request.circuit, &job.request.input) {
        // A witness check is CPU work proportional to its size (up to 64 MiB): at most
        // `witness_concurrency` run at once, the rest are turned away, not queued.
        let input = std::mem::take(&mut job.request.input);
        let (input, prepared) = state
            .inner
            .witness_checks
            .run(move || {
                let prepared = transition::prepare(&input, log_rows);
                (input, prepared)
            })
            .await?;
        let prepared = prepared?;
        job.request.input = input;
        job.statement = Some(prepared.view());
        log_rows = prepared.chunk_log_rows;
        job.chunk_log_rows = (log_rows != job.request.log_rows).then_some(log_rows);
    }
    admit(state, &fleet, &job, log_rows)?;
    Ok(job)
}

/// A state transition whose input is a witness (not the seeded workload).
fn is_witness(circuit: CircuitId, input: &[u8]) -> bool {
    circuit == CircuitId::StateTransition && !input.is_empty()
}

/// Checks a submission against the circuits, limits and this appliance's devices:
/// everything but the witness and the memory admission ([`check_submission`]).
fn validate_submission(
    state: &AppState,
    fleet: &[ApplianceAd],
    s: SubmitJob,
    raw_input: Option<Bytes>,
) -> Result<NewJob, AppError> {
    let circuit: CircuitId = s.circuit.parse().map_err(AppError::invalid)?;
    let field: FieldId = match &s.field {
        Some(f) => f.parse().map_err(AppError::invalid)?,
        None => FieldId::default(),
    };
    let fri: FriPreset = match &s.fri {
        Some(f) => f.parse().map_err(AppError::invalid)?,
        None => FriPreset::default(),
    };
    let input = match (raw_input, &s.input_base64) {
        (Some(_), Some(_)) => {
            return Err(AppError::BadRequest {
                message: "input_base64 cannot be combined with a raw upload".into(),
            });
        }
        (Some(raw), None) => raw.to_vec(),
        (None, Some(b64)) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| AppError::InvalidBody {
                message: format!("input_base64: {e}"),
            })?,
        (None, None) => Vec::new(),
    };
    let witness = is_witness(circuit, &input);
    let log_rows = if witness {
        witness_log_rows(state, s.log_rows)?
    } else if s.log_rows == 0 {
        return Err(AppError::invalid(format!(
            "circuit {circuit}: log_rows is required (log2 of the trace rows, {}..={}); only \
             a state transition with a witness as its input derives it",
            circuit.min_log_rows(),
            circuit.max_log_rows()
        )));
    } else {
        u8::try_from(s.log_rows).map_err(|_| {
            AppError::invalid(format!(
                "circuit {circuit}: log_rows {} outside the supported range {}..={}",
                s.log_rows,
                circuit.min_log_rows(),
                circuit.max_log_rows()
            ))
        })?
    };
    let request = ProofRequest {
        circuit,
        field,
        log_rows,
        fri,
        seed: s.seed.unwrap_or(0),
        input,
    };
    if witness {
        // The witness is checked once the cheap checks pass (`check_submission`).
        if request.input.len() > MAX_WITNESS_BYTES {
            return Err(AppError::invalid(format!(
                "input of {} bytes: a transition witness takes at most {MAX_WITNESS_BYTES} bytes",
                request.input.len()
            )));
        }
        if !circuit.fields().contains(&field) {
            return Err(AppError::invalid(
                RequestError::FieldNotSupported { circuit, field }.to_string(),
            ));
        }
    } else {
        request
            .validate()
            .map_err(|e: RequestError| AppError::invalid(e.to_string()))?;
    }
    let floor = state.inner.config.min_security_bits;
    let bits = fri.params().conjectured_security_bits();
    if bits < floor {
        return Err(AppError::invalid(format!(
            "FRI preset {} gives {bits} bits of conjectured security, below this appliance's \
             floor of {floor} bits (min_security_bits): its proof would be refused",
            fri.name()
        )));
    }
    // Alone, this appliance's limit; in a fleet, each device advertises the largest
    // job it takes (its appliance's limit included) and admission asks the fleet.
    let cap = state.inner.config.max_log_rows;
    if log_rows > cap && fleet.len() <= 1 {
        return Err(AppError::invalid(format!(
            "log_rows {log_rows} above this appliance's limit {cap} (max_log_rows)"
        )));
    }
    let priority = s.priority.unwrap_or(0);
    if !(MIN_PRIORITY..=MAX_PRIORITY).contains(&priority) {
        return Err(AppError::invalid(format!(
            "priority {priority} outside {MIN_PRIORITY}..={MAX_PRIORITY}"
        )));
    }
    let choice: BackendChoice = s
        .backend
        .as_deref()
        .unwrap_or("auto")
        .parse()
        .map_err(AppError::invalid)?;
    let devices: Vec<&DeviceAd> = fleet.iter().flat_map(|a| &a.devices).collect();
    let whom = whom(fleet);
    let served = || {
        let mut ids: Vec<&str> = devices.iter().map(|d| d.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        ids.join(", ")
    };
    let (route, candidates): (String, Vec<&DeviceAd>) = match (&s.device, choice) {
        (Some(dev), choice) => {
            let named: Vec<&DeviceAd> = devices.iter().copied().filter(|d| &d.id == dev).collect();
            if named.is_empty() {
                return Err(AppError::UnknownDevice {
                    message: format!("unknown device {dev:?}: {whom} proves on {}", served()),
                });
            }
            if let BackendChoice::Kind(k) = choice
                && !named.iter().any(|d| d.backend == k.name())
            {
                return Err(AppError::invalid(format!(
                    "device {dev} belongs to backend {}, not {k}",
                    named[0].backend
                )));
            }
            (format!("device:{dev}"), named)
        }
        (None, BackendChoice::Auto) => (ROUTE_ANY.to_string(), devices.clone()),
        (None, BackendChoice::Kind(k)) => {
            let of_kind: Vec<_> = devices
                .iter()
                .copied()
                .filter(|d| d.backend == k.name())
                .collect();
            if of_kind.is_empty() {
                return Err(AppError::invalid(format!(
                    "backend {k} has no device on {whom} (it proves on {}; see GET /v1/devices \
                     and GET /v1/fleet)",
                    served()
                )));
            }
            (format!("backend:{}", k.name()), of_kind)
        }
    };
    if candidates.is_empty() {
        return Err(AppError::Unavailable {
            code: "no_device",
            message: format!("{whom} has no device to prove on"),
        });
    }
    if candidates.iter().all(|d| d.fault.is_some()) {
        let why: Vec<String> = candidates
            .iter()
            .map(|d| format!("{}: {}", d.id, d.fault.as_deref().unwrap_or_default()))
            .collect();
        return Err(AppError::Unavailable {
            code: "device_faulty",
            message: format!(
                "every device that could take this job is faulty ({}); see GET /v1/devices",
                why.join("; ")
            ),
        });
    }
    if !candidates
        .iter()
        .any(|d| d.fields.iter().any(|f| f == field.name()))
    {
        return Err(AppError::invalid(format!(
            "field {field} is not supported by the chosen devices"
        )));
    }
    Ok(NewJob {
        request,
        backend: choice.to_string(),
        device: s.device,
        priority,
        route,
        statement: None,
        chunk_log_rows: None,
    })
}

/// Who a refusal speaks of: this appliance, or the fleet sharing its store.
fn whom(fleet: &[ApplianceAd]) -> &'static str {
    if fleet.len() > 1 {
        "the fleet"
    } else {
        "this appliance"
    }
}

/// Admission: a healthy device of the fleet (this appliance alone, on the embedded
/// store) that takes the job's route and field must take its shape at its size: the
/// peak memory of a proof of `2^log_rows` rows, estimated from measured figures, fits
/// the device, and `log_rows` is within its appliance's `max_log_rows`.
fn admit(
    state: &AppState,
    fleet: &[ApplianceAd],
    job: &NewJob,
    log_rows: u8,
) -> Result<(), AppError> {
    let (circuit, field, fri) = (job.request.circuit, job.request.field, job.request.fri);
    let shape = crate::fleet::shape(circuit, field, fri);
    let candidates: Vec<(&ApplianceAd, &DeviceAd)> = fleet
        .iter()
        .flat_map(|a| a.devices.iter().map(move |d| (a, d)))
        .filter(|(_, d)| {
            d.fault.is_none() && d.accepts(&job.route) && d.fields.iter().any(|f| f == field.name())
        })
        .collect();
    if candidates
        .iter()
        .any(|(_, d)| d.largest_log_rows.takes(&shape, log_rows))
    {
        return Ok(());
    }
    let local = state.inner.appliance.as_str();
    let refusals: Vec<String> = candidates
        .iter()
        .map(|(a, d)| {
            let slot = state.inner.slots.iter().find(|s| s.id == d.id);
            let estimate = (a.appliance == local)
                .then_some(slot)
                .flatten()
                .and_then(|s| {
                    memory::does_not_fit(
                        memory::proof_needs(
                            circuit,
                            field,
                            log_rows,
                            &fri.params(),
                            s.kind != BackendKind::Cpu,
                        ),
                        s.prover.device(),
                        state.inner.host_memory,
                    )
                });
            let place = if fleet.len() > 1 {
                format!("{} on {}", d.id, a.host)
            } else {
                d.id.clone()
            };
            match (estimate, d.largest_log_rows.largest(&shape)) {
                (Some(why), _) => why,
                (None, Some(l)) => format!("{place} takes {shape} up to 2^{l} rows"),
                (None, None) => format!("{place} does not take {shape}"),
            }
        })
        .collect();
    Err(AppError::invalid(format!(
        "{circuit} at 2^{log_rows} rows fits no device of {}: {} (GET /v1/devices gives the \
         largest size each device takes, GET /v1/fleet every appliance's)",
        whom(fleet),
        refusals.join("; ")
    )))
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, AppError> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let bad = || AppError::BadRequest {
        message: format!(
            "Idempotency-Key must be 1..={MAX_IDEMPOTENCY_KEY_LEN} printable ASCII characters"
        ),
    };
    let s = v.to_str().map_err(|_| bad())?;
    if s.is_empty()
        || s.len() > MAX_IDEMPOTENCY_KEY_LEN
        || !s.bytes().all(|c| c.is_ascii_graphic() || c == b' ')
    {
        return Err(bad());
    }
    Ok(Some(s.to_string()))
}

/// Submit a proof job (JSON).
///
/// The body is a `SubmitJob`; a raw input upload goes to `POST /v1/jobs/raw`. The same
/// `Idempotency-Key` returns the same job (202 again, with `Idempotent-Replayed:
/// true`); with a different request it is refused (409). Limits that depend on other
/// fields are checked too (422 `invalid_request`): `log_rows` within the circuit's
/// range, a field the circuit supports, the input at most what the circuit absorbs at
/// that size (`GET /v1/circuits`), and a device that belongs to the backend.
///
/// A `state-transition` job whose input is non-empty proves that input, an encoded
/// transition witness (`PBTW`, at most 64 MiB), as a bundle of chained proofs of at
/// most `2^log_rows` rows each (`log_rows` optional: 2^17). The witness is decoded and
/// checked natively against its `pre_root` before the job is queued (422
/// `invalid_witness`, or `witness_rejected` naming the update); the job's `statement`
/// says what the bundle will prove.
#[utoipa::path(
    post, path = "/v1/jobs", tag = "jobs",
    request_body(content = SubmitJob, content_type = "application/json"),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: the same key returns the same job")),
    responses(
        (status = 202, description = "Accepted (or replayed); `Location` names the job", body = JobView),
        (status = 400, description = "`malformed_json`, `bad_request` (a query string, a bad header), `unknown_device`", body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 409, description = "Idempotency-Key reused with a different request", body = ErrorBody),
        (status = 413, description = "Body over the limit (`body_limit_bytes`; about 1.4 MiB but for a state transition, whose witness may take 64 MiB)", body = ErrorBody),
        (status = 415, description = "Content-Type not application/json", body = ErrorBody),
        (status = 422, description = "`invalid_body` (wrong type, missing or unknown field, bad base64), `invalid_request` (a limit that depends on other fields), `invalid_witness` (a state-transition input that is no transition witness), `witness_rejected` (a witness that does not check against its pre-state root; the message names the update)", body = ErrorBody),
        (status = 503, description = "`queue_full`, `shutting_down`, `store_unavailable`, `witness_busy` (`witness_concurrency` witness checks are running; retry after `Retry-After` seconds)", body = ErrorBody)
    ),
    security(("bearer" = []))
)]
pub(super) async fn submit_job(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    refuse_during_shutdown(&state)?;
    match media_type(&headers) {
        Some(m) if m.essence_str() == mime::APPLICATION_JSON => {}
        Some(m) if m.essence_str() == mime::APPLICATION_OCTET_STREAM => {
            return Err(AppError::UnsupportedMediaType {
                message: "raw uploads go to POST /v1/jobs/raw; this route takes Content-Type application/json".into(),
            });
        }
        _ => return Err(unsupported_media_type(&headers, "application/json")),
    }
    let body = body_bytes(body, submission_limit(&state, true))?;
    let key = idempotency_key(&headers)?;
    if uri.query().is_some_and(|q| !q.is_empty()) {
        return Err(AppError::BadRequest {
            message: "POST /v1/jobs takes no query parameters (a raw upload with parameters goes to POST /v1/jobs/raw)".into(),
        });
    }
    let params: SubmitJob = serde_json::from_slice(&body).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Data => AppError::InvalidBody {
                message: format!("invalid job: {e}"),
            },
            _ => AppError::MalformedJson {
                message: format!("malformed JSON: {e}"),
            },
        }
    })?;
    // Only a state transition (with a witness) may take more than other inputs need.
    let limit = submission_limit(&state, false);
    if body.len() > limit && params.circuit.parse() != Ok(CircuitId::StateTransition) {
        return Err(AppError::BodyTooLarge { limit });
    }
    let job = check_submission(&state, params, None).await?;
    accept(&state, job, key).await
}

/// Submit a proof job with its input as the raw body.
///
/// The other fields are query parameters (those of `SubmitJob`, without
/// `input_base64`); the same checks and idempotency as `POST /v1/jobs`. A
/// `state-transition` job with a body sends its transition witness here (at most 64
/// MiB): `POST /v1/jobs/raw?circuit=state-transition`.
#[utoipa::path(
    post, path = "/v1/jobs/raw", tag = "jobs",
    request_body(content = RawBytes, content_type = "application/octet-stream", description = "The input bytes (may be empty); for `state-transition`, an encoded transition witness"),
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: the same key returns the same job"),
        RawParams
    ),
    responses(
        (status = 202, description = "Accepted (or replayed); `Location` names the job", body = JobView),
        (status = 400, description = "`bad_request` (a bad query string or header), `unknown_device`", body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 409, description = "Idempotency-Key reused with a different request", body = ErrorBody),
        (status = 413, description = "Body over the limit (`body_limit_bytes`; about 1.4 MiB but for a state-transition witness, 64 MiB)", body = ErrorBody),
        (status = 415, description = "Content-Type not application/octet-stream", body = ErrorBody),
        (status = 422, description = "`invalid_request` (a limit that depends on other fields), `invalid_witness` (a state-transition body that is no transition witness), `witness_rejected` (a witness that does not check against its pre-state root; the message names the update)", body = ErrorBody),
        (status = 503, description = "`queue_full`, `shutting_down`, `store_unavailable`, `witness_busy` (`witness_concurrency` witness checks are running; retry after `Retry-After` seconds)", body = ErrorBody)
    ),
    security(("bearer" = []))
)]
pub(super) async fn submit_raw(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<RawParams>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    refuse_during_shutdown(&state)?;
    let Query(p) = query.map_err(query_error)?;
    let limit = if p.circuit.parse() == Ok(CircuitId::StateTransition) {
        state.inner.config.body_limit_bytes.min(MAX_WITNESS_BYTES)
    } else {
        submission_limit(&state, false)
    };
    let body = body_bytes(body, limit)?;
    let key = idempotency_key(&headers)?;
    let params = SubmitJob {
        circuit: p.circuit,
        log_rows: p.log_rows,
        field: p.field,
        fri: p.fri,
        seed: p.seed,
        input_base64: None,
        backend: p.backend,
        device: p.device,
        priority: p.priority,
    };
    let job = check_submission(&state, params, Some(body)).await?;
    accept(&state, job, key).await
}

fn refuse_during_shutdown(state: &AppState) -> Result<(), AppError> {
    if state.inner.hub.is_shutting_down() {
        return Err(AppError::Unavailable {
            code: "shutting_down",
            message: "the service is shutting down".into(),
        });
    }
    Ok(())
}

/// Stores a validated job: the 202 answer.
async fn accept(state: &AppState, job: NewJob, key: Option<String>) -> Result<Response, AppError> {
    let max = state.inner.config.max_queued_jobs;
    let (rec, replayed) = state
        .blocking(move |s| s.submit(job, key.as_deref(), max))
        .await?;
    if !replayed {
        metrics::counter!("proofbox_jobs_submitted_total").increment(1);
        state.inner.hub.notify();
    }
    let location = format!("/v1/jobs/{}", rec.id);
    let mut resp = (StatusCode::ACCEPTED, Json(job_view(state, rec, None))).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    if replayed {
        resp.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(resp)
}

/// List jobs, newest first.
#[utoipa::path(
    get, path = "/v1/jobs", tag = "jobs", params(ListParams),
    responses(
        (status = 200, body = JobList),
        (status = 400, description = "Bad cursor or query string", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 422, description = "Unknown status or limit out of range", body = ErrorBody),
        (status = 503, description = "`store_unavailable`", body = ErrorBody)
    ),
    security(("bearer" = []))
)]
pub(super) async fn list_jobs(
    State(state): State<AppState>,
    query: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<JobList>, AppError> {
    let Query(p) = query.map_err(query_error)?;
    let status = match p.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(
            JobStatus::ALL
                .into_iter()
                .find(|k| k.name() == s)
                .ok_or_else(|| {
                    AppError::invalid(
                        s.parse::<JobStatus>()
                            .err()
                            .unwrap_or_else(|| format!("status {s:?}: statuses are lowercase")),
                    )
                })?,
        ),
    };
    let limit = p.limit.unwrap_or(DEFAULT_LIST_LIMIT);
    if !(1..=MAX_LIST_LIMIT).contains(&limit) {
        return Err(AppError::invalid(format!(
            "limit {limit} outside 1..={MAX_LIST_LIMIT}"
        )));
    }
    let cursor = match &p.cursor {
        Some(c) if !c.is_empty() => Some(
            c.parse::<u64>()
                .ok()
                .filter(|_| c.len() <= MAX_CURSOR_DIGITS && c.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| AppError::BadRequest {
                    message: format!("invalid cursor {c:?}: pass next_cursor of the previous page"),
                })?,
        ),
        _ => None,
    };
    let (recs, more) = state
        .blocking(move |s| s.list(status, limit as usize, cursor))
        .await?;
    let next_cursor = if more {
        recs.last().map(|r| r.seq.to_string())
    } else {
        None
    };
    let fleet = if recs.iter().any(|r| r.status == JobStatus::Queued) {
        Some(state.fleet().await?)
    } else {
        None
    };
    let jobs = recs
        .into_iter()
        .map(|r| job_view(&state, r, fleet.as_deref()))
        .collect();
    Ok(Json(JobList { jobs, next_cursor }))
}

/// A job's status, stage, timings and error.
#[utoipa::path(
    get, path = "/v1/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "Job id")),
    responses((status = 200, body = JobView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub(super) async fn get_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<JobView>, AppError> {
    let rec = state.blocking(move |s| s.get(&id)).await?;
    let fleet = if rec.status == JobStatus::Queued {
        Some(state.fleet().await?)
    } else {
        None
    };
    Ok(Json(job_view(&state, rec, fleet.as_deref())))
}

/// Download the proof artifact of a succeeded job: for a state transition with a
/// witness, a bundle of chained proofs (`TransitionProof`, magic `PBOXTRB`) stating the
/// job's `statement`.
#[utoipa::path(
    get, path = "/v1/jobs/{id}/proof", tag = "jobs",
    params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 200, description = "The proof artifact, or for a state transition with a witness the bundle (docs/proof-format.md)", body = RawBytes, content_type = "application/octet-stream"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The job has no proof (yet)", body = ErrorBody),
        (status = 503, description = "`proof_corrupt`: the stored proof failed its checksum; the job is being proved again", body = ErrorBody)
    ),
    security(("bearer" = []))
)]
pub(super) async fn get_proof(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let (rec, proof) = match state.blocking(move |s| s.proof(&id)).await {
        Err(
            e @ AppError::Unavailable {
                code: "proof_corrupt",
                ..
            },
        ) => {
            // The job was queued again: wake a worker.
            state.hub().notify();
            return Err(e);
        }
        r => r?,
    };
    let Some(proof) = proof else {
        let message = match (rec.status, &rec.error) {
            (JobStatus::Failed, Some(e)) => format!("job {} failed: {e}", rec.id),
            (status, _) => format!("job {} is {status}: no proof", rec.id),
        };
        return Err(AppError::Conflict {
            code: "proof_not_available",
            message,
        });
    };
    let disposition = format!("attachment; filename=\"{}.proof\"", rec.id);
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&disposition).map_err(AppError::internal)?,
            ),
        ],
        Body::from(proof),
    )
        .into_response())
}

/// Cancel a queued or running job.
///
/// A running proof cannot be interrupted: the job is marked cancelled at once and the
/// result is discarded when the proof ends.
#[utoipa::path(
    post, path = "/v1/jobs/{id}/cancel", tag = "jobs",
    params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 200, description = "Cancelled (or already cancelled)", body = JobView),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The job already succeeded or failed", body = ErrorBody)
    ),
    security(("bearer" = []))
)]
pub(super) async fn cancel_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<JobView>, AppError> {
    let rec = state.blocking(move |s| s.cancel(&id)).await?;
    Ok(Json(job_view(&state, rec, None)))
}
