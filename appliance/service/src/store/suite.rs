//! The job store's behaviour, one function per property, run against every
//! implementation ([`super::embedded`] and [`super::postgres`]).

use super::*;
use crate::fleet::Capacity;

/// The routes a worker that takes every job passes to [`JobStore::claim`].
pub const ANY: &[&str] = &[ROUTE_ANY];

pub fn job(priority: i32, log_rows: u8) -> NewJob {
    NewJob {
        request: ProofRequest::new(CircuitId::Poseidon2, log_rows),
        backend: "auto".into(),
        device: None,
        priority,
        route: ROUTE_ANY.into(),
        statement: None,
        chunk_log_rows: None,
    }
}

/// A device that takes every shape up to `log_rows`.
pub fn capacity(log_rows: u8) -> Capacity {
    let mut map = std::collections::BTreeMap::new();
    for circuit in CircuitId::ALL {
        for &field in circuit.fields() {
            for fri in FriPreset::ALL {
                map.insert(crate::fleet::shape(circuit, field, fri), log_rows);
            }
        }
    }
    Capacity(map)
}

/// Claims on behalf of a device that takes every size.
pub trait ClaimAs {
    fn claim_as(
        &self,
        routes: &[&str],
        backend: &str,
        device: &str,
    ) -> Result<Option<(JobRecord, Vec<u8>)>>;
}

impl<T: JobStore + ?Sized> ClaimAs for T {
    fn claim_as(
        &self,
        routes: &[&str],
        backend: &str,
        device: &str,
    ) -> Result<Option<(JobRecord, Vec<u8>)>> {
        self.claim(&Claimant {
            routes,
            backend,
            device,
            capacity: &capacity(30),
        })
    }
}

pub fn priority_then_arrival_order(s: &dyn JobStore) {
    let a = s.submit(job(0, 3), None, 100).unwrap().0;
    let b = s.submit(job(5, 3), None, 100).unwrap().0;
    let c = s.submit(job(0, 4), None, 100).unwrap().0;
    let d = s.submit(job(-3, 3), None, 100).unwrap().0;
    let order: Vec<_> = std::iter::from_fn(|| s.claim_as(ANY, "cpu", "cpu:0").unwrap())
        .map(|(r, _)| r.id)
        .collect();
    assert_eq!(order, [b.id, a.id, c.id, d.id]);
}

pub fn idempotency_keys_return_the_same_job_or_conflict(s: &dyn JobStore) {
    let (a, replay) = s.submit(job(0, 3), Some("k1"), 100).unwrap();
    assert!(!replay);
    let (b, replay) = s.submit(job(0, 3), Some("k1"), 100).unwrap();
    assert!(replay);
    assert_eq!(a.id, b.id);
    assert!(matches!(
        s.submit(job(0, 4), Some("k1"), 100),
        Err(StoreError::IdempotencyConflict { .. })
    ));
    assert_eq!(s.counts().unwrap().1, 1);
    assert!(matches!(
        s.submit(job(0, 3), None, 1),
        Err(StoreError::QueueFull { max: 1 })
    ));
}

pub fn idempotency_compares_input_bytes_by_digest_and_keeps_the_statement(s: &dyn JobStore) {
    let with_input = |input: Vec<u8>| {
        let mut j = job(0, 17);
        j.request.circuit = CircuitId::StateTransition;
        j.request.input = input;
        j.statement = Some(TransitionStatementView {
            pre_root: "00".repeat(32),
            post_root: "11".repeat(32),
            diff_commitment: "22".repeat(32),
            block_number: 9,
            updates: 3,
            chunks: 1,
            rows_per_chunk: 128,
        });
        j
    };
    let big = vec![7u8; 3 << 20];
    let (a, replay) = s.submit(with_input(big.clone()), Some("w"), 100).unwrap();
    assert!(!replay);
    assert_eq!(a.statement, with_input(Vec::new()).statement);
    let (b, replay) = s.submit(with_input(big.clone()), Some("w"), 100).unwrap();
    assert!(replay && a.id == b.id);
    let mut other = big.clone();
    other[1 << 20] ^= 1;
    for input in [other, Vec::new(), big[1..].to_vec()] {
        assert!(matches!(
            s.submit(with_input(input), Some("w"), 100),
            Err(StoreError::IdempotencyConflict { .. })
        ));
    }
    // The statement is stored with the job, and the input with its digest.
    let (rec, input) = s.claim_as(ANY, "cpu", "cpu:0").unwrap().unwrap();
    assert_eq!((rec.statement, input), (a.statement, big));
    // A job without an input matches a replay without one.
    let (c, _) = s.submit(job(0, 3), Some("empty"), 100).unwrap();
    assert_eq!(s.submit(job(0, 3), Some("empty"), 100).unwrap().0.id, c.id);
}

pub fn outcomes_of_cancelled_or_stale_attempts_are_discarded(s: &dyn JobStore) {
    let id = s.submit(job(0, 3), None, 100).unwrap().0.id;
    let (r, _) = s.claim_as(ANY, "cpu", "cpu:0").unwrap().unwrap();
    assert_eq!(s.cancel(&id).unwrap().status, JobStatus::Cancelled);
    let out = s
        .finish(
            r.seq,
            r.attempts,
            Outcome::Succeeded {
                proof: vec![1, 2, 3],
                proving_ms: 1,
            },
        )
        .unwrap();
    assert!(matches!(out, Finished::Discarded(_)));
    assert_eq!(s.proof(&id).unwrap().1, None);
    assert_eq!(s.cancel(&id).unwrap().status, JobStatus::Cancelled);

    let id = s.submit(job(0, 3), None, 100).unwrap().0.id;
    let (r, _) = s.claim_as(ANY, "cpu", "cpu:0").unwrap().unwrap();
    let out = s
        .finish(
            r.seq,
            r.attempts,
            Outcome::Succeeded {
                proof: vec![9; 10],
                proving_ms: 5,
            },
        )
        .unwrap();
    assert!(matches!(out, Finished::Applied(_)));
    let (rec, proof) = s.proof(&id).unwrap();
    assert_eq!(
        (rec.status, rec.proof_bytes),
        (JobStatus::Succeeded, Some(10))
    );
    assert_eq!(proof, Some(vec![9; 10]));
    assert!(matches!(
        s.cancel(&id),
        Err(StoreError::NotCancellable { .. })
    ));
}

pub fn listing_pages_newest_first(s: &dyn JobStore) {
    let ids: Vec<_> = (0..5)
        .map(|_| s.submit(job(0, 3), None, 100).unwrap().0)
        .collect();
    s.cancel(&ids[1].id).unwrap();
    let (page, more) = s.list(None, 2, None).unwrap();
    assert!(more);
    assert_eq!(page[0].id, ids[4].id);
    let (page2, more) = s.list(None, 2, Some(page[1].seq)).unwrap();
    assert!(more);
    assert_eq!(page2[0].id, ids[2].id);
    let (rest, more) = s.list(None, 2, Some(page2[1].seq)).unwrap();
    assert!(!more);
    assert_eq!(rest.len(), 1);
    let (q, _) = s.list(Some(JobStatus::Queued), 10, None).unwrap();
    assert_eq!(q.len(), 4);
    let (c, _) = s.list(Some(JobStatus::Cancelled), 10, None).unwrap();
    assert_eq!(c[0].id, ids[1].id);
    let (counts, depth) = s.counts().unwrap();
    assert_eq!(depth, 4);
    assert!(counts.contains(&(JobStatus::Cancelled, 1)));
}

pub fn routes_choose_the_workers(s: &dyn JobStore) {
    let mut gpu = job(0, 3);
    gpu.route = "backend:wgpu".into();
    let gpu = s.submit(gpu, None, 100).unwrap().0;
    let any = s.submit(job(0, 3), None, 100).unwrap().0;
    let (r, _) = s
        .claim_as(&[ROUTE_ANY, "backend:cpu"], "cpu", "cpu:0")
        .unwrap()
        .unwrap();
    assert_eq!(r.id, any.id);
    assert!(
        s.claim_as(&[ROUTE_ANY, "backend:cpu"], "cpu", "cpu:0")
            .unwrap()
            .is_none()
    );
    let (r, _) = s
        .claim_as(&[ROUTE_ANY, "backend:wgpu"], "wgpu", "wgpu:0")
        .unwrap()
        .unwrap();
    assert_eq!((r.id, r.attempts), (gpu.id, 1));
    assert_eq!(r.device_used.as_deref(), Some("wgpu:0"));
}

pub fn a_worker_claims_only_what_its_device_takes(s: &dyn JobStore) {
    let big = s.submit(job(5, 12), None, 100).unwrap().0;
    // A witness job of 2^20 rows proven in chunks of 2^6.
    let mut chunked = job(0, 20);
    chunked.chunk_log_rows = Some(6);
    let chunked = s.submit(chunked, None, 100).unwrap().0;
    let claim = |capacity: &Capacity| {
        s.claim(&Claimant {
            routes: ANY,
            backend: "cpu",
            device: "cpu:0",
            capacity,
        })
        .unwrap()
        .map(|(r, _)| r.id)
    };
    // The first job in order is too large for a device of 2^8 rows, the chunked one
    // is not.
    assert_eq!(claim(&capacity(8)), Some(chunked.id));
    assert_eq!(claim(&capacity(8)), None);
    // A device that takes no shape takes nothing; one of 2^12 rows takes the job.
    assert_eq!(claim(&Capacity::default()), None);
    let mut other_shape = Capacity::default();
    other_shape.0.insert("no-such/shape/x".into(), 30);
    assert_eq!(claim(&other_shape), None);
    assert_eq!(claim(&capacity(12)), Some(big.id.clone()));
    assert_eq!(s.get(&big.id).unwrap().status, JobStatus::Running);
}

pub fn counts_follow_every_transition(s: &dyn JobStore) {
    let ids: Vec<_> = (0..6)
        .map(|_| s.submit(job(0, 3), None, 100).unwrap().0)
        .collect();
    s.cancel(&ids[0].id).unwrap();
    let finish = |outcome| {
        let (r, _) = s.claim_as(ANY, "cpu", "cpu:0").unwrap().unwrap();
        assert!(matches!(
            s.finish(r.seq, r.attempts, outcome).unwrap(),
            Finished::Applied(_)
        ));
    };
    finish(Outcome::Succeeded {
        proof: vec![1, 2, 3],
        proving_ms: 1,
    });
    finish(Outcome::Failed {
        error: "x".into(),
        proving_ms: 1,
    });
    finish(Outcome::Retry {
        error: "x".into(),
        route: None,
    });
    s.claim_as(ANY, "cpu", "cpu:0").unwrap().unwrap();
    let (counts, depth) = s.counts().unwrap();
    let get = |st| counts.iter().find(|(x, _)| *x == st).unwrap().1;
    assert_eq!(
        JobStatus::ALL.map(get),
        [2, 1, 1, 1, 1],
        "queued, running, succeeded, failed, cancelled"
    );
    assert_eq!(depth, 2);
    // Cancelling a running job discards its result; a graceful stop re-queues the
    // running job without counting its attempt.
    let running = s.list(Some(JobStatus::Running), 10, None).unwrap().0;
    assert_eq!(running.len(), 1);
    let rec = s.requeue_running(true).unwrap();
    assert_eq!(rec.requeued, [running[0].id.clone()]);
    let r = s.get(&running[0].id).unwrap();
    // The job retried above, on its second attempt: the refund leaves one.
    assert_eq!(running[0].attempts, 2);
    assert_eq!((r.status, r.attempts), (JobStatus::Queued, 1));
    s.check().unwrap();
}
