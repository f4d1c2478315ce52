//! The HTTP API: routes, handlers, middleware and the OpenAPI document
//! (generated from these handlers by `utoipa`).
//!
//! Layers, outermost first: JSON error bodies for anything a layer answers itself
//! (404, 405, 408, 413), HTTP metrics, panic catcher (500), request timeout, body
//! limit; `/v1` additionally requires an API key.

use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use metrics_exporter_prometheus::PrometheusHandle;
use proofbox_backend_api::{BackendReport, FieldId};
use proofbox_prover::{
    BackendChoice, CircuitId, FriPreset, ProofRequest, RequestError, Stage, verify_bytes,
};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::config::Config;
use crate::error::{AppError, error_response};
use crate::store::{JobRecord, MAX_PRIORITY, MIN_PRIORITY, NewJob, ROUTE_ANY, Store};
use crate::types::*;
use crate::worker::{DeviceSlot, Hub};

/// Largest page of `GET /v1/jobs`.
pub const MAX_LIST_LIMIT: u32 = 1000;
const DEFAULT_LIST_LIMIT: u32 = 50;
const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    api_keys: Vec<String>,
    keyless: bool,
    hub: Arc<Hub>,
    slots: Vec<DeviceSlot>,
    reports: Vec<BackendReport>,
    metrics: PrometheusHandle,
}

impl AppState {
    /// `api_keys`: the accepted keys (ignored when `config.keyless()`); `slots`: the
    /// devices workers prove on; `reports`: discovery, for `GET /v1/devices`.
    pub fn new(
        config: Config,
        api_keys: Vec<String>,
        hub: Arc<Hub>,
        slots: Vec<DeviceSlot>,
        reports: Vec<BackendReport>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                keyless: config.keyless(),
                config,
                api_keys,
                hub,
                slots,
                reports,
                metrics: crate::metrics::handle(),
            }),
        }
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.inner.hub
    }

    fn store(&self) -> Arc<Store> {
        self.inner.hub.store.clone()
    }

    /// Runs blocking store work off the async runtime.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, crate::store::StoreError> + Send + 'static,
    ) -> Result<T, AppError> {
        let store = self.store();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(AppError::internal)?
            .map_err(AppError::from)
    }
}

/// The OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "ProofBox",
        description = "STARK proofs on this appliance's devices: submit jobs, follow them, download and verify proofs. See docs/api.md."
    ),
    paths(
        submit_job, list_jobs, get_job, get_proof, cancel_job, verify, devices, circuits,
        healthz, readyz, prometheus, openapi_json
    ),
    components(schemas(ErrorBody, ErrorDetail, JobStatus)),
    modifiers(&BearerAuth),
    tags(
        (name = "jobs", description = "Proof jobs"),
        (name = "appliance", description = "What this appliance can do"),
        (name = "operations", description = "Health, readiness, metrics (no API key needed)")
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
            );
    }
}

/// Raw bytes (a proof artifact or a circuit input).
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct RawBytes(#[allow(dead_code)] Vec<u8>);

/// The router: every route, layer and fallback.
pub fn app(state: AppState) -> Router {
    let cfg = &state.inner.config;
    let v1 = Router::new()
        .route("/jobs", post(submit_job).get(list_jobs))
        .route("/jobs/{id}", get(get_job))
        .route("/jobs/{id}/proof", get(get_proof))
        .route("/jobs/{id}/cancel", post(cancel_job))
        .route("/verify", post(verify))
        .route("/devices", get(devices))
        .route("/circuits", get(circuits))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), require_key));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(prometheus))
        .route("/openapi.json", get(openapi_json))
        .nest("/v1", v1)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(cfg.body_limit_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(cfg.request_timeout_secs),
        ))
        .layer(CatchPanicLayer::custom(|_| {
            error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error: the request handler panicked".into(),
            )
        }))
        .layer(middleware::from_fn(http_metrics))
        .layer(middleware::from_fn_with_state(state.clone(), json_errors))
        .with_state(state)
}

async fn not_found() -> AppError {
    AppError::NotFound {
        what: "route".into(),
    }
}

/// Constant-time comparison (the time does not depend on where keys differ).
fn same_key(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn require_key(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if state.inner.keyless {
        return next.run(req).await;
    }
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, key) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
        });
    let ok = presented.is_some_and(|k| {
        state
            .inner
            .api_keys
            .iter()
            .fold(false, |ok, key| ok | same_key(key.as_bytes(), k.as_bytes()))
    });
    if ok {
        next.run(req).await
    } else {
        AppError::Unauthorized.into_response()
    }
}

/// Gives every error response that is not JSON yet (answered by axum or a tower
/// layer) the `{"error": {...}}` shape.
async fn json_errors(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return resp;
    }
    let cfg = &state.inner.config;
    let (code, message) = match status {
        StatusCode::NOT_FOUND => ("not_found", "route not found".to_string()),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "method not allowed on this route".to_string(),
        ),
        StatusCode::REQUEST_TIMEOUT => (
            "request_timeout",
            format!(
                "the request took longer than {} s (request_timeout_secs)",
                cfg.request_timeout_secs
            ),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "body_too_large",
            format!(
                "request body exceeds the limit of {} bytes",
                cfg.body_limit_bytes
            ),
        ),
        s if s.is_server_error() => ("internal", format!("internal error ({s})")),
        s => ("http_error", s.to_string()),
    };
    let mut out = error_response(status, code, message);
    if let Some(allow) = resp.headers().get(header::ALLOW) {
        out.headers_mut().insert(header::ALLOW, allow.clone());
    }
    out
}

async fn http_metrics(req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let start = Instant::now();
    let resp = next.run(req).await;
    let secs = start.elapsed().as_secs_f64();
    metrics::counter!(
        "proofbox_http_requests_total",
        "method" => method.clone(),
        "route" => route.clone(),
        "status" => resp.status().as_u16().to_string()
    )
    .increment(1);
    metrics::histogram!(
        "proofbox_http_request_duration_seconds",
        "method" => method,
        "route" => route
    )
    .record(secs);
    resp
}

fn body_bytes(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, AppError> {
    body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AppError::BodyTooLarge { limit }
        } else {
            AppError::BadRequest {
                message: format!("reading the request body: {}", r.body_text()),
            }
        }
    })
}

fn query_error(r: QueryRejection) -> AppError {
    AppError::BadRequest {
        message: format!("query string: {}", r.body_text()),
    }
}

fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

fn view(rec: JobRecord, stage: Option<Stage>) -> JobView {
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
        status: rec.status,
        id: rec.id,
    }
}

fn job_view(state: &AppState, rec: JobRecord) -> JobView {
    let stage = state.inner.hub.stage(&rec.id);
    view(rec, stage)
}

/// Checks a submission against the circuits, limits and this appliance's devices.
fn validate_submission(
    state: &AppState,
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
    let log_rows = u8::try_from(s.log_rows).map_err(|_| {
        AppError::invalid(format!(
            "circuit {circuit}: log_rows {} outside the supported range {}..={}",
            s.log_rows,
            circuit.min_log_rows(),
            circuit.max_log_rows()
        ))
    })?;
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
    let request = ProofRequest {
        circuit,
        field,
        log_rows,
        fri,
        seed: s.seed.unwrap_or(0),
        input,
    };
    request
        .validate()
        .map_err(|e: RequestError| AppError::invalid(e.to_string()))?;
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
    let slots = &state.inner.slots;
    let served: Vec<&str> = slots.iter().map(|d| d.id.as_str()).collect();
    let (route, candidates): (String, Vec<&DeviceSlot>) = match (&s.device, choice) {
        (Some(dev), choice) => {
            let slot =
                slots
                    .iter()
                    .find(|d| &d.id == dev)
                    .ok_or_else(|| AppError::UnknownDevice {
                        message: format!(
                            "unknown device {dev:?}: this appliance proves on {}",
                            served.join(", ")
                        ),
                    })?;
            if let BackendChoice::Kind(k) = choice
                && k != slot.kind
            {
                return Err(AppError::invalid(format!(
                    "device {dev} belongs to backend {}, not {k}",
                    slot.kind
                )));
            }
            (format!("device:{dev}"), vec![slot])
        }
        (None, BackendChoice::Auto) => (ROUTE_ANY.to_string(), slots.iter().collect()),
        (None, BackendChoice::Kind(k)) => {
            let of_kind: Vec<_> = slots.iter().filter(|d| d.kind == k).collect();
            if of_kind.is_empty() {
                return Err(AppError::invalid(format!(
                    "backend {k} has no device on this appliance (it proves on {}; see GET /v1/devices)",
                    served.join(", ")
                )));
            }
            (format!("backend:{}", k.name()), of_kind)
        }
    };
    if candidates.is_empty() {
        return Err(AppError::Unavailable {
            code: "no_device",
            message: "this appliance has no device to prove on".into(),
        });
    }
    if !candidates.iter().any(|d| d.fields.contains(&field)) {
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
    })
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

/// Submit a proof job.
///
/// JSON body (`SubmitJob`), or the raw input as an `application/octet-stream` body
/// with the other fields as query parameters. The same `Idempotency-Key` returns the
/// same job (202 again, with `Idempotent-Replayed: true`); with a different request
/// it is refused (409).
#[utoipa::path(
    post, path = "/v1/jobs", tag = "jobs",
    request_body(description = "The job as JSON, or the raw input bytes", content(
        (SubmitJob = "application/json"),
        (RawBytes = "application/octet-stream")
    )),
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: the same key returns the same job"),
        SubmitJob
    ),
    responses(
        (status = 202, description = "Accepted (or replayed); `Location` names the job", body = JobView),
        (status = 400, description = "Malformed JSON, bad header or query, unknown device", body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 409, description = "Idempotency-Key reused with a different request", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 422, description = "Unknown circuit, field, FRI preset or backend; size or input out of limits", body = ErrorBody),
        (status = 503, description = "Queue full or shutting down", body = ErrorBody)
    ),
    security(("bearer" = []))
)]
async fn submit_job(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    if state.inner.hub.is_shutting_down() {
        return Err(AppError::Unavailable {
            code: "shutting_down",
            message: "the service is shutting down".into(),
        });
    }
    let body = body_bytes(body, state.inner.config.body_limit_bytes)?;
    let key = idempotency_key(&headers)?;
    let raw = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/octet-stream"));
    let job = if raw {
        let Query(params) = Query::<SubmitJob>::try_from_uri(&uri).map_err(query_error)?;
        validate_submission(&state, params, Some(body))?
    } else {
        if uri.query().is_some_and(|q| !q.is_empty()) {
            return Err(AppError::BadRequest {
                message: "query parameters are only read for raw uploads (Content-Type: application/octet-stream)".into(),
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
        validate_submission(&state, params, None)?
    };
    let max = state.inner.config.max_queued_jobs;
    let (rec, replayed) = state
        .blocking(move |s| s.submit(job, key.as_deref(), max))
        .await?;
    if !replayed {
        metrics::counter!("proofbox_jobs_submitted_total").increment(1);
        state.inner.hub.notify();
    }
    let location = format!("/v1/jobs/{}", rec.id);
    let mut resp = (StatusCode::ACCEPTED, Json(job_view(&state, rec))).into_response();
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
        (status = 400, description = "Bad cursor or query", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 422, description = "Unknown status or limit out of range", body = ErrorBody)
    ),
    security(("bearer" = []))
)]
async fn list_jobs(
    State(state): State<AppState>,
    query: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<JobList>, AppError> {
    let Query(p) = query.map_err(query_error)?;
    let status = match &p.status {
        Some(s) if !s.is_empty() => Some(s.parse::<JobStatus>().map_err(AppError::invalid)?),
        _ => None,
    };
    let limit = p.limit.unwrap_or(DEFAULT_LIST_LIMIT);
    if !(1..=MAX_LIST_LIMIT).contains(&limit) {
        return Err(AppError::invalid(format!(
            "limit {limit} outside 1..={MAX_LIST_LIMIT}"
        )));
    }
    let cursor = match &p.cursor {
        Some(c) if !c.is_empty() => Some(c.parse::<u64>().map_err(|_| AppError::BadRequest {
            message: format!("invalid cursor {c:?}: pass next_cursor of the previous page"),
        })?),
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
    let jobs = recs.into_iter().map(|r| job_view(&state, r)).collect();
    Ok(Json(JobList { jobs, next_cursor }))
}

/// A job's status, stage, timings and error.
#[utoipa::path(
    get, path = "/v1/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "Job id")),
    responses((status = 200, body = JobView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
async fn get_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<JobView>, AppError> {
    let rec = state.blocking(move |s| s.get(&id)).await?;
    Ok(Json(job_view(&state, rec)))
}

/// Download the proof artifact of a succeeded job.
#[utoipa::path(
    get, path = "/v1/jobs/{id}/proof", tag = "jobs",
    params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 200, description = "The proof artifact (docs/proof-format.md)", body = RawBytes, content_type = "application/octet-stream"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The job has no proof (yet)", body = ErrorBody)
    ),
    security(("bearer" = []))
)]
async fn get_proof(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let (rec, proof) = state.blocking(move |s| s.proof(&id)).await?;
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
async fn cancel_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<JobView>, AppError> {
    let rec = state.blocking(move |s| s.cancel(&id)).await?;
    Ok(Json(job_view(&state, rec)))
}

/// Verify a proof artifact (the body, raw bytes). Answers 200 either way.
#[utoipa::path(
    post, path = "/v1/verify", tag = "jobs",
    request_body(content = RawBytes, content_type = "application/octet-stream", description = "A proof artifact"),
    responses(
        (status = 200, description = "`valid`, or not with the reason", body = VerifyResult),
        (status = 401, body = ErrorBody),
        (status = 413, body = ErrorBody)
    ),
    security(("bearer" = []))
)]
async fn verify(
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
async fn devices(State(state): State<AppState>) -> Json<DevicesView> {
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
async fn circuits() -> Json<CircuitsView> {
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

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = HealthView)))]
async fn healthz() -> Json<HealthView> {
    Json(HealthView {
        status: "ok".into(),
        reasons: Vec::new(),
    })
}

/// Ready to take jobs: the store answers, a device is open, not shutting down.
#[utoipa::path(
    get, path = "/readyz", tag = "operations",
    responses((status = 200, body = HealthView), (status = 503, description = "Not ready; the message says why", body = ErrorBody))
)]
async fn readyz(State(state): State<AppState>) -> Result<Json<HealthView>, AppError> {
    let mut reasons = Vec::new();
    if let Err(e) = state.blocking(|s| s.check()).await {
        reasons.push(format!("job store: {e}"));
    }
    if state.inner.slots.is_empty() {
        reasons.push("no device to prove on".into());
    }
    if state.inner.hub.is_shutting_down() {
        reasons.push("shutting down".into());
    }
    if reasons.is_empty() {
        Ok(Json(HealthView {
            status: "ready".into(),
            reasons,
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
async fn prometheus(State(state): State<AppState>) -> Result<Response, AppError> {
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

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", responses((status = 200, description = "OpenAPI 3 document")))]
async fn openapi_json() -> Response {
    match ApiDoc::openapi().to_json() {
        Ok(s) => ([(header::CONTENT_TYPE, "application/json")], s).into_response(),
        Err(e) => AppError::internal(e).into_response(),
    }
}
