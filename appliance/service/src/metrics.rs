//! Prometheus metrics: one process-wide recorder (the `metrics` facade), rendered by
//! `GET /metrics`.
//!
//! - `proofbox_jobs{status}`: jobs in the store per status (gauge, read at scrape time);
//! - `proofbox_queue_depth`: queued jobs (gauge);
//! - `proofbox_running_proofs`: proofs being computed (gauge);
//! - `proofbox_proving_seconds{circuit,backend}`: proving time of succeeded attempts
//!   (histogram);
//! - `proofbox_attempts_total{backend,outcome}`: finished attempts (counter);
//! - `proofbox_jobs_submitted_total`: accepted submissions, replays excluded (counter);
//! - `proofbox_http_requests_total{method,route,status}` and
//!   `proofbox_http_request_duration_seconds{method,route}` (histogram). Labels come
//!   from closed sets, so no client can add series: `method` is a standard method or
//!   `other`, `route` the matched route template (`/v1/jobs/{id}`) or `unmatched`,
//!   `status` the class (`2xx`, `4xx`, `5xx`);
//! - `proofbox_http_connections_open` (gauge) and
//!   `proofbox_http_connections_refused_total` (counter, beyond `max_connections`).

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

const PROVING_BUCKETS: &[f64] = &[
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];
const HTTP_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// The process's Prometheus handle, installing the recorder on first use. If another
/// recorder is already installed, metrics render empty rather than failing.
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = || {
                PrometheusBuilder::new()
                    .set_buckets_for_metric(
                        Matcher::Full("proofbox_proving_seconds".into()),
                        PROVING_BUCKETS,
                    )
                    .and_then(|b| {
                        b.set_buckets_for_metric(
                            Matcher::Full("proofbox_http_request_duration_seconds".into()),
                            HTTP_BUCKETS,
                        )
                    })
                    .expect("non-empty bucket lists")
            };
            match builder().install_recorder() {
                Ok(h) => h,
                Err(e) => {
                    tracing::warn!("metrics recorder not installed: {e}");
                    builder().build_recorder().handle()
                }
            }
        })
        .clone()
}
