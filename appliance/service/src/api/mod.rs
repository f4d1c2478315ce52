//! The HTTP API: routes, handlers, middleware and the OpenAPI document
//! (generated from these handlers by `utoipa`).
//!
//! Layers, outermost first: JSON error bodies for anything a layer answers itself
//! (404, 405, 408, 413), HTTP metrics, panic catcher (500), request timeout, body
//! limit; `/v1` additionally requires an API key.

mod appliance;
mod bounded;
mod jobs;
mod middleware;
mod openapi;
mod ops;

pub use jobs::MAX_LIST_LIMIT;
pub use openapi::{ApiDoc, RawBytes};

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::http::StatusCode;
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use proofbox_backend_api::BackendReport;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;

use crate::config::Config;
use crate::error::{AppError, error_response};
use crate::fleet::{ApplianceAd, DeviceAd};
use crate::store::{Advert, JobStore};
use crate::worker::{DeviceSlot, Hub};
use appliance::{circuits, devices, fleet, verify};
use jobs::{cancel_job, get_job, get_proof, list_jobs, submit_job, submit_raw};
use middleware::{KeyDigest, http_metrics, json_errors, octet_stream_body, require_key};
use openapi::openapi_json;
use ops::{healthz, prometheus, readyz};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    /// SHA-256 digests of the accepted keys: compared in constant time, whatever the
    /// length of the key presented.
    key_digests: Vec<KeyDigest>,
    keyless: bool,
    hub: Arc<Hub>,
    slots: Vec<DeviceSlot>,
    reports: Vec<BackendReport>,
    metrics: PrometheusHandle,
    /// `/v1/verify` checks: `verify_concurrency` at once.
    verifications: bounded::Bounded,
    /// A submission's witness checks: `witness_concurrency` at once.
    witness_checks: bounded::Bounded,
    /// This host's memory, for the admission estimate.
    host_memory: Option<u64>,
    /// This appliance's name in the fleet ([`JobStore::appliance`]).
    appliance: String,
    /// This appliance's advertisement, faults left out ([`AppState::local_ad`]).
    local: ApplianceAd,
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
        let verifications =
            bounded::Bounded::new(config.verify_concurrency, "verify_busy", "verifications");
        let witness_checks =
            bounded::Bounded::new(config.witness_concurrency, "witness_busy", "witness checks");
        let host_memory = proofbox_prover::memory::host_memory_bytes();
        let appliance = hub.store.appliance();
        let local = ApplianceAd {
            appliance: appliance.clone(),
            host: crate::fleet::host_name(),
            devices: slots
                .iter()
                .map(|s| DeviceAd {
                    id: s.id.clone(),
                    backend: s.kind.name().to_string(),
                    fields: s.fields.iter().map(|f| f.name().to_string()).collect(),
                    fault: None,
                    largest_log_rows: s.capacity(config.max_log_rows),
                })
                .collect(),
            seen_ms_ago: 0,
        };
        Self {
            inner: Arc::new(Inner {
                keyless: config.keyless(),
                config,
                key_digests: api_keys.iter().map(|k| middleware::key_digest(k)).collect(),
                hub,
                slots,
                reports,
                metrics: crate::metrics::handle(),
                verifications,
                witness_checks,
                host_memory,
                appliance,
                local,
            }),
        }
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.inner.hub
    }

    /// This appliance's advertisement now: its devices, the largest job each takes,
    /// and which are faulty.
    pub fn local_ad(&self) -> ApplianceAd {
        local_ad(&self.inner.local, &self.inner.hub)
    }

    /// This appliance's advertisement as the store publishes it: read afresh at every
    /// renewal (faults change). Holds the hub weakly: the store it lives in must not
    /// keep the hub alive.
    pub fn advert(&self) -> Advert {
        let template = self.inner.local.clone();
        let hub = Arc::downgrade(&self.inner.hub);
        Arc::new(move || match hub.upgrade() {
            Some(hub) => local_ad(&template, &hub),
            None => template.clone(),
        })
    }

    /// The live appliances sharing the job store, this one included: the store's
    /// list, or this appliance alone on a store of one.
    pub(crate) async fn fleet(&self) -> Result<Vec<ApplianceAd>, AppError> {
        let shared = self.blocking(|s| s.fleet()).await?;
        Ok(match shared {
            Some(mut fleet) => {
                // This appliance is live, even if its advertisement is late.
                if !fleet.iter().any(|a| a.appliance == self.inner.appliance) {
                    fleet.push(self.local_ad());
                }
                fleet
            }
            None => vec![self.local_ad()],
        })
    }

    fn store(&self) -> Arc<dyn JobStore> {
        self.inner.hub.store.clone()
    }

    /// Runs blocking store work off the async runtime.
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn JobStore) -> Result<T, crate::store::StoreError> + Send + 'static,
    ) -> Result<T, AppError> {
        let store = self.store();
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .map_err(AppError::internal)?
            .map_err(AppError::from)
    }
}

/// `template` with the faults `hub` records now.
fn local_ad(template: &ApplianceAd, hub: &Hub) -> ApplianceAd {
    let faults = hub.faults();
    let mut ad = template.clone();
    for d in &mut ad.devices {
        d.fault = faults.get(&d.id).cloned();
    }
    ad
}

/// The router: every route, layer and fallback.
pub fn app(state: AppState) -> Router {
    let cfg = &state.inner.config;
    let v1 = Router::new()
        .route("/jobs", post(submit_job).get(list_jobs))
        .route(
            "/jobs/raw",
            post(submit_raw).route_layer(axum::middleware::from_fn(octet_stream_body)),
        )
        .route("/jobs/{id}", get(get_job))
        .route("/jobs/{id}/proof", get(get_proof))
        .route("/jobs/{id}/cancel", post(cancel_job))
        .route(
            "/verify",
            post(verify).route_layer(axum::middleware::from_fn(octet_stream_body)),
        )
        .route("/devices", get(devices))
        .route("/fleet", get(fleet))
        .route("/circuits", get(circuits))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_key,
        ));
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
        .layer(axum::middleware::from_fn(http_metrics))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            json_errors,
        ))
        .with_state(state)
}

async fn not_found() -> AppError {
    AppError::NotFound {
        what: "route".into(),
    }
}

pub(crate) fn body_bytes(
    body: Result<Bytes, BytesRejection>,
    limit: usize,
) -> Result<Bytes, AppError> {
    let body = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AppError::BodyTooLarge { limit }
        } else {
            AppError::BadRequest {
                message: format!("reading the request body: {}", r.body_text()),
            }
        }
    })?;
    // A route may take less than the layer's `body_limit_bytes` (submissions).
    if body.len() > limit {
        return Err(AppError::BodyTooLarge { limit });
    }
    Ok(body)
}

pub(crate) fn query_error(r: QueryRejection) -> AppError {
    AppError::BadRequest {
        message: format!("query string: {}", r.body_text()),
    }
}
