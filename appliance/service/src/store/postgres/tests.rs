//! The PostgreSQL store against a real server (`PROOFBOX_TEST_POSTGRES`, a URL; see
//! `.ci/postgres`): the store suite, then what only a shared store has: several
//! stores on one database, leases, notifications, migrations. Each test works in a
//! schema of its own, dropped at the end. Without a server the tests say `skipped`,
//! and fail when `PROOFBOX_REQUIRE_POSTGRES=1`.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::*;
use crate::store::suite::{self, ANY, ClaimAs, job};

/// The test server's URL, or `None` after saying why the test is skipped.
pub(crate) fn server() -> Option<String> {
    match std::env::var("PROOFBOX_TEST_POSTGRES") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            let reason = "PROOFBOX_TEST_POSTGRES is not set (start a server with .ci/postgres)";
            if std::env::var("PROOFBOX_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
                panic!("PROOFBOX_REQUIRE_POSTGRES=1 but {reason}");
            }
            proofbox_conformance::skip(reason);
            None
        }
    }
}

/// A schema of its own on the test server, dropped with it.
struct Schema {
    url: String,
    name: String,
}

impl Schema {
    fn new() -> Option<Self> {
        Some(Self {
            url: server()?,
            name: format!("t_{}", uuid::Uuid::new_v4().simple()),
        })
    }

    fn open_with(&self, lease: Duration, max_attempts: u32) -> PgStore {
        PgStore::open(PgOptions {
            max_attempts,
            lease,
            pool_size: 4,
            schema: Some(self.name.clone()),
            ..PgOptions::new(self.url.clone())
        })
        .unwrap()
        .0
    }

    fn open(&self) -> PgStore {
        self.open_with(Duration::from_secs(30), 2)
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        // Its own thread and runtime: the test may be unwinding anywhere.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok((c, conn)) = tokio_postgres::connect(&url, NoTls).await {
                    tokio::spawn(conn);
                    let _ = c
                        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
                        .await;
                }
            });
        })
        .join();
    }
}

/// Runs `sql` on the store's database (to play a crash or a corruption).
fn sql(s: &PgStore, sql: &str) -> u64 {
    s.block_on(async { s.client().await.unwrap().execute(sql, &[]).await.unwrap() })
}

/// Runs each property of [`suite`] on a new PostgreSQL store.
macro_rules! suite {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            let Some(db) = Schema::new() else { return };
            suite::$name(&db.open());
        }
    )*};
}

suite!(
    priority_then_arrival_order,
    idempotency_keys_return_the_same_job_or_conflict,
    idempotency_compares_input_bytes_by_digest_and_keeps_the_statement,
    outcomes_of_cancelled_or_stale_attempts_are_discarded,
    listing_pages_newest_first,
    routes_choose_the_workers,
    a_worker_claims_only_what_its_device_takes,
    counts_follow_every_transition,
);

#[test]
fn stores_on_one_database_share_jobs_and_never_claim_one_twice() {
    let Some(db) = Schema::new() else { return };
    let stores = [db.open(), db.open()];
    let n = 60;
    let ids: Vec<String> = (0..n)
        .map(|i| stores[i % 2].submit(job(0, 3), None, 1000).unwrap().0.id)
        .collect();
    // A job submitted to one is read and cancelled through the other.
    assert_eq!(stores[1].get(&ids[0]).unwrap().id, ids[0]);
    let claimed = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for (k, s) in stores.iter().enumerate() {
            for w in 0..4 {
                let claimed = &claimed;
                scope.spawn(move || {
                    let device = format!("cpu:{k}{w}");
                    while let Some((r, _)) = s.claim_as(ANY, "cpu", &device).unwrap() {
                        let done = Outcome::Succeeded {
                            proof: r.id.as_bytes().to_vec(),
                            proving_ms: 1,
                        };
                        let f = s.finish(r.seq, r.attempts, done).unwrap();
                        assert!(matches!(f, Finished::Applied(_)));
                        claimed.lock().unwrap().push(r.id);
                    }
                });
            }
        }
    });
    let claimed = claimed.into_inner().unwrap();
    let unique: HashSet<_> = claimed.iter().collect();
    assert_eq!(
        (claimed.len(), unique.len()),
        (n, n),
        "each job claimed once"
    );
    for (i, id) in ids.iter().enumerate() {
        let (rec, proof) = stores[(i + 1) % 2].proof(id).unwrap();
        assert_eq!((rec.status, rec.attempts), (JobStatus::Succeeded, 1));
        assert_eq!(proof.unwrap(), id.as_bytes());
    }
    assert_eq!(stores[0].counts().unwrap().0, stores[1].counts().unwrap().0);
}

#[test]
fn an_expired_lease_is_claimed_again_and_only_the_holder_writes_the_result() {
    let Some(db) = Schema::new() else { return };
    let (a, b) = (db.open(), db.open());
    let id = a.submit(job(0, 3), None, 100).unwrap().0.id;
    let (ra, _) = a.claim_as(ANY, "cpu", "cpu:0").unwrap().unwrap();
    // `a` goes quiet: its lease runs out.
    assert_eq!(
        sql(
            &a,
            "UPDATE jobs SET lease_until = now() - interval '1 second'"
        ),
        1
    );
    let rec = b.reap().unwrap();
    assert_eq!(rec.requeued, std::slice::from_ref(&id));
    let (rb, _) = b.claim_as(ANY, "cpu", "cpu:1").unwrap().unwrap();
    assert_eq!((rb.id.as_str(), rb.attempts), (id.as_str(), 2));
    // The late result of `a` is discarded; that of the lease holder is kept.
    let late = Outcome::Succeeded {
        proof: vec![1],
        proving_ms: 1,
    };
    assert!(matches!(
        a.finish(ra.seq, ra.attempts, late.clone()).unwrap(),
        Finished::Discarded(_)
    ));
    // Not even with the current attempt number: `a` does not hold the lease.
    assert!(matches!(
        a.finish(rb.seq, rb.attempts, late).unwrap(),
        Finished::Discarded(_)
    ));
    // `b` goes quiet too: out of attempts (2), the job fails.
    sql(
        &b,
        "UPDATE jobs SET lease_until = now() - interval '1 second'",
    );
    let rec = a.reap().unwrap();
    assert_eq!(rec.failed, std::slice::from_ref(&id));
    let r = a.get(&id).unwrap();
    assert_eq!(r.status, JobStatus::Failed);
    assert!(r.error.unwrap().contains("lease"), "says why");
}

#[test]
fn a_dead_stores_job_is_taken_again_within_the_lease() {
    let Some(db) = Schema::new() else { return };
    let lease = Duration::from_secs(1);
    let live = db.open_with(lease, 3);
    let id = {
        let dead = db.open_with(lease, 3);
        let id = dead.submit(job(0, 3), None, 100).unwrap().0.id;
        dead.claim_as(ANY, "cpu", "cpu:0").unwrap().unwrap();
        // The heartbeat keeps the lease past its length while the holder lives.
        std::thread::sleep(lease * 2);
        assert!(live.claim_as(ANY, "cpu", "cpu:1").unwrap().is_none());
        id
        // Dropped without releasing its job: the heartbeat stops, as in a crash.
    };
    let start = std::time::Instant::now();
    let claimed = loop {
        if let Some((r, _)) = live.claim_as(ANY, "cpu", "cpu:1").unwrap() {
            break r;
        }
        assert!(start.elapsed() < lease * 5, "not taken again");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!((claimed.id, claimed.attempts), (id, 2));
}

#[test]
fn a_graceful_stop_releases_only_its_own_jobs() {
    let Some(db) = Schema::new() else { return };
    let (a, b) = (db.open(), db.open());
    let x = a.submit(job(0, 3), None, 100).unwrap().0.id;
    let y = a.submit(job(0, 3), None, 100).unwrap().0.id;
    a.claim_as(ANY, "cpu", "cpu:0").unwrap().unwrap();
    b.claim_as(ANY, "cpu", "cpu:1").unwrap().unwrap();
    let rec = a.requeue_running(true).unwrap();
    assert_eq!(rec.requeued, std::slice::from_ref(&x));
    assert_eq!(a.get(&x).unwrap().status, JobStatus::Queued);
    assert_eq!(a.get(&y).unwrap().status, JobStatus::Running);
}

#[test]
fn corrupt_proofs_are_never_served_and_corrupt_inputs_fail_their_job() {
    let Some(db) = Schema::new() else { return };
    let s = db.open();
    let id = s.submit(job(0, 3), None, 100).unwrap().0.id;
    let (r, _) = s.claim_as(ANY, "cpu", "cpu:0").unwrap().unwrap();
    let done = Outcome::Succeeded {
        proof: vec![7; 100],
        proving_ms: 1,
    };
    s.finish(r.seq, r.attempts, done.clone()).unwrap();
    assert_eq!(s.proof(&id).unwrap().1, Some(vec![7; 100]));
    let flip = |table: &str, seq: u64| {
        sql(
            &s,
            &format!(
                "UPDATE {table} SET sealed = set_byte(sealed, length(sealed) - 1,
                     get_byte(sealed, length(sealed) - 1) # 16) WHERE seq = {seq}"
            ),
        )
    };
    assert_eq!(flip("proofs", r.seq), 1);
    assert!(matches!(s.proof(&id), Err(StoreError::ProofCorrupt { .. })));
    let rec = s.get(&id).unwrap();
    assert_eq!((rec.status, rec.proof_bytes), (JobStatus::Queued, None));
    assert_eq!(s.proof(&id).unwrap().1, None);
    let (r, _) = s.claim_as(ANY, "cpu", "cpu:0").unwrap().unwrap();
    s.finish(r.seq, r.attempts, done).unwrap();
    assert_eq!(s.proof(&id).unwrap().1, Some(vec![7; 100]));

    let mut with_input = job(5, 3);
    with_input.request.input = vec![1; 64];
    let bad = s.submit(with_input, None, 100).unwrap().0;
    let good = s.submit(job(0, 3), None, 100).unwrap().0;
    assert_eq!(flip("inputs", bad.seq), 1);
    let (r, _) = s.claim_as(ANY, "cpu", "cpu:0").unwrap().unwrap();
    assert_eq!(r.id, good.id);
    let bad = s.get(&bad.id).unwrap();
    assert_eq!(bad.status, JobStatus::Failed);
    assert!(bad.error.unwrap().contains("checksum"));
}

#[test]
fn appliances_starting_together_migrate_once_and_a_newer_schema_is_refused() {
    let Some(db) = Schema::new() else { return };
    let stores: Vec<PgStore> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4).map(|_| scope.spawn(|| db.open())).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let s = &stores[0];
    let applied: i64 = s.block_on(async {
        s.client()
            .await
            .unwrap()
            .query_one("SELECT count(*) FROM proofbox_schema", &[])
            .await
            .unwrap()
            .get(0)
    });
    assert_eq!(applied, schema::MIGRATIONS.len() as i64);
    sql(s, "INSERT INTO proofbox_schema (version) VALUES (9999)");
    let err = PgStore::open(PgOptions {
        schema: Some(db.name.clone()),
        ..PgOptions::new(db.url.clone())
    })
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("newer proofbox"), "{err}");
}

#[test]
fn a_submission_wakes_idle_workers_of_other_appliances() {
    let Some(db) = Schema::new() else { return };
    let (a, b) = (db.open(), db.open());
    let woken = Arc::new(AtomicUsize::new(0));
    let w = woken.clone();
    b.watch(Arc::new(move || {
        w.fetch_add(1, Ordering::SeqCst);
    }));
    // The listener wakes once when it starts listening.
    let start = std::time::Instant::now();
    while woken.load(Ordering::SeqCst) == 0 {
        assert!(start.elapsed() < Duration::from_secs(10), "never listened");
        std::thread::sleep(Duration::from_millis(20));
    }
    let before = woken.load(Ordering::SeqCst);
    a.submit(job(0, 3), None, 100).unwrap();
    while woken.load(Ordering::SeqCst) == before {
        assert!(start.elapsed() < Duration::from_secs(10), "not woken");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn an_unreachable_server_is_a_retryable_error() {
    // A port nothing listens on: the pool cannot connect.
    let err = PgStore::open(PgOptions::new("postgres://proofbox@127.0.0.1:9/none"))
        .err()
        .unwrap();
    assert!(matches!(err, StoreError::Unreachable { .. }), "{err:?}");
}

#[test]
fn appliances_advertise_their_devices_until_they_stop_or_go_quiet() {
    use crate::fleet::{ApplianceAd, DeviceAd};
    use std::sync::atomic::AtomicBool;

    let Some(db) = Schema::new() else { return };
    // A short lease: the heartbeat renews advertisements every second.
    let (a, b) = (
        db.open_with(Duration::from_secs(3), 2),
        db.open_with(Duration::from_secs(3), 2),
    );
    let faulty = Arc::new(AtomicBool::new(false));
    let ad = |host: &'static str, log_rows: u8, faulty: Arc<AtomicBool>| -> Advert {
        Arc::new(move || ApplianceAd {
            appliance: "filled in by the store".into(),
            host: host.into(),
            devices: vec![DeviceAd {
                id: "cpu:0".into(),
                backend: "cpu".into(),
                fields: vec!["koalabear".into()],
                fault: faulty.load(Ordering::SeqCst).then(|| "bad proofs".into()),
                largest_log_rows: suite::capacity(log_rows),
            }],
            seen_ms_ago: 0,
        })
    };
    assert_ne!(a.appliance(), b.appliance());
    a.advertise(ad("host-a", 10, faulty.clone()));
    b.advertise(ad("host-b", 20, Arc::default()));
    let fleet = |s: &PgStore| s.fleet().unwrap().expect("a shared store lists its fleet");
    let seen = fleet(&b);
    let hosts: Vec<_> = seen
        .iter()
        .map(|x| (x.appliance.clone(), x.host.clone()))
        .collect();
    assert_eq!(
        hosts,
        [
            (a.appliance(), "host-a".to_string()),
            (b.appliance(), "host-b".to_string())
        ]
    );
    assert_eq!(seen[1].devices[0].largest_log_rows, suite::capacity(20));
    // The heartbeat publishes what changes (a device found faulty).
    faulty.store(true, Ordering::SeqCst);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let seen = fleet(&b);
        if seen[0].devices[0].fault.as_deref() == Some("bad proofs") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "fault never published: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // A graceful stop withdraws the advertisement.
    b.withdraw().unwrap();
    assert_eq!(fleet(&a).len(), 1);
    // An appliance that goes quiet (killed: its heartbeat stops) drops out after a
    // lease.
    let owner = a.appliance();
    drop(a);
    let c = db.open_with(Duration::from_secs(3), 2);
    assert_eq!(fleet(&c).len(), 1, "a quiet appliance counts for a lease");
    sql(
        &c,
        &format!(
            "UPDATE appliances SET seen_at = now() - interval '4 seconds' WHERE owner = '{owner}'"
        ),
    );
    assert!(fleet(&c).is_empty(), "gone after its lease");
}
