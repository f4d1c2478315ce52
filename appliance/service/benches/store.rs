//! The job store: claim throughput (jobs claimed per second by 1, 4 and 16 workers
//! at once) and submission latency, for the embedded store and, where
//! `PROOFBOX_TEST_POSTGRES` names a server (`.ci/postgres`), the PostgreSQL store
//! beside it. Figures: `docs/benchmarks.md`.
//!
//! `cargo bench -p proofbox-service --bench store`

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use proofbox_prover::{CircuitId, FriPreset, ProofRequest};
use proofbox_service::fleet::{Capacity, shape};
use proofbox_service::store::{Claimant, JobStore, NewJob, PgOptions, PgStore, ROUTE_ANY, Store};

fn job() -> NewJob {
    NewJob {
        request: ProofRequest::new(CircuitId::Poseidon2, 8),
        backend: "auto".into(),
        device: None,
        priority: 0,
        route: ROUTE_ANY.into(),
        statement: None,
        chunk_log_rows: None,
    }
}

/// The stores to measure, with what keeps them alive (the embedded store's directory).
fn stores() -> Vec<(&'static str, Arc<dyn JobStore>, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let (embedded, _) = Store::open(&dir.path().join("jobs.redb"), 3).unwrap();
    embedded.init().unwrap();
    let mut out: Vec<(&'static str, Arc<dyn JobStore>, Option<tempfile::TempDir>)> =
        vec![("embedded", Arc::new(embedded), Some(dir))];
    match std::env::var("PROOFBOX_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => {
            let (pg, _) = PgStore::open(PgOptions {
                pool_size: 20,
                schema: Some(format!("bench_{}", uuid::Uuid::new_v4().simple())),
                ..PgOptions::new(url)
            })
            .unwrap();
            out.push(("postgres", Arc::new(pg), None));
        }
        _ => eprintln!("PROOFBOX_TEST_POSTGRES is not set: the PostgreSQL store is not measured"),
    }
    out
}

/// Claims `jobs` queued jobs with `workers` threads; the time it took.
fn claim_all(store: &Arc<dyn JobStore>, workers: usize, jobs: u64) -> Duration {
    for _ in 0..jobs {
        store.submit(job(), None, u64::MAX).unwrap();
    }
    // A worker that takes every shape at every size.
    let capacity = Capacity(
        CircuitId::ALL
            .into_iter()
            .flat_map(|c| c.fields().iter().map(move |&f| (c, f)))
            .flat_map(|(c, f)| FriPreset::ALL.map(|fri| (shape(c, f, fri), 30)))
            .collect(),
    );
    let start = Instant::now();
    std::thread::scope(|scope| {
        for w in 0..workers {
            let store = store.clone();
            let capacity = &capacity;
            scope.spawn(move || {
                let device = format!("cpu:{w}");
                let who = Claimant {
                    routes: &[ROUTE_ANY],
                    backend: "cpu",
                    device: &device,
                    capacity,
                };
                while store.claim(&who).unwrap().is_some() {}
            });
        }
    });
    start.elapsed()
}

fn bench(c: &mut Criterion) {
    let stores = stores();
    let mut g = c.benchmark_group("store/claim");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(1));
    for (name, store, _) in &stores {
        for workers in [1, 4, 16] {
            g.bench_with_input(BenchmarkId::new(*name, workers), &workers, |b, &w| {
                b.iter_custom(|iters| claim_all(store, w, iters))
            });
        }
    }
    g.finish();
    let mut g = c.benchmark_group("store/submit");
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for (name, store, _) in &stores {
        g.bench_function(*name, |b| {
            b.iter(|| store.submit(job(), None, u64::MAX).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
