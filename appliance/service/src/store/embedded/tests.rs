//! The store's transactions, recovery, checksums and file checks.

use super::*;

use crate::store::suite::{self, ANY, ClaimAs, job};

/// Runs each property of [`suite`] on a new embedded store.
macro_rules! suite {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            let dir = tempfile::tempdir().unwrap();
            suite::$name(&open(dir.path()));
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

fn open(dir: &Path) -> Store {
    let (s, _) = Store::open(&dir.join("jobs.redb"), 2).unwrap();
    s.init().unwrap();
    s
}

#[test]
fn records_written_before_statements_existed_still_load() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let rec = s.submit(job(0, 3), None, 100).unwrap().0;
    let mut json = serde_json::to_value(&rec).unwrap();
    assert!(json.get("statement").is_none(), "absent when none: {json}");
    json.as_object_mut().unwrap().remove("statement");
    let old: JobRecord = serde_json::from_value(json).unwrap();
    assert_eq!(old, rec);
}

#[test]
fn restart_requeues_running_jobs_and_fails_them_after_max_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let s = open(dir.path());
        let id = s.submit(job(0, 3), None, 100).unwrap().0.id;
        s.claim_as(ANY, "cpu", "cpu:0").unwrap().unwrap();
        id
    };
    let (s, rec) = Store::open(&dir.path().join("jobs.redb"), 2).unwrap();
    assert_eq!(rec.requeued.as_slice(), std::slice::from_ref(&id));
    let r = s.get(&id).unwrap();
    assert_eq!((r.status, r.attempts), (JobStatus::Queued, 1));
    s.claim_as(ANY, "cpu", "cpu:0").unwrap().unwrap();
    drop(s);
    let (s, rec) = Store::open(&dir.path().join("jobs.redb"), 2).unwrap();
    assert_eq!(rec.failed.as_slice(), std::slice::from_ref(&id));
    let r = s.get(&id).unwrap();
    assert_eq!(r.status, JobStatus::Failed);
    assert!(r.error.unwrap().contains("2 times"));
}

/// Flips one bit of the stored value of `seq` in `table`.
fn flip_bit(s: &Store, table: TableDefinition<u64, &[u8]>, seq: u64) {
    s.with_db(|db| {
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(table).unwrap();
            let mut v = t.get(seq).unwrap().unwrap().value().to_vec();
            let at = v.len() - 1;
            v[at] ^= 0x10;
            t.insert(seq, v.as_slice()).unwrap();
        }
        txn.commit().unwrap();
        Ok(())
    })
    .unwrap();
}

#[test]
fn a_corrupt_proof_is_never_served_and_its_job_is_proved_again() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let id = s.submit(job(0, 3), None, 100).unwrap().0.id;
    let (r, _) = s.claim_as(ANY, "cpu", "cpu:0").unwrap().unwrap();
    let done = Outcome::Succeeded {
        proof: vec![7; 100],
        proving_ms: 1,
    };
    s.finish(r.seq, r.attempts, done.clone()).unwrap();
    assert_eq!(s.proof(&id).unwrap().1, Some(vec![7; 100]));

    flip_bit(&s, PROOFS, r.seq);
    assert!(matches!(s.proof(&id), Err(StoreError::ProofCorrupt { .. })));
    let rec = s.get(&id).unwrap();
    assert_eq!((rec.status, rec.proof_bytes), (JobStatus::Queued, None));
    assert!(rec.error.unwrap().contains("checksum"));
    assert_eq!(s.proof(&id).unwrap().1, None);
    // Proved again, and served again.
    let (r, _) = s.claim_as(ANY, "cpu", "cpu:0").unwrap().unwrap();
    assert_eq!(r.id, id);
    s.finish(r.seq, r.attempts, done).unwrap();
    assert_eq!(s.proof(&id).unwrap().1, Some(vec![7; 100]));
}

#[test]
fn a_corrupt_input_fails_its_job_and_the_next_job_is_claimed() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let mut with_input = job(5, 3);
    with_input.request.input = vec![1; 64];
    let bad = s.submit(with_input, None, 100).unwrap().0;
    let good = s.submit(job(0, 3), None, 100).unwrap().0;
    flip_bit(&s, INPUTS, bad.seq);
    let (r, _) = s.claim_as(ANY, "cpu", "cpu:0").unwrap().unwrap();
    assert_eq!(r.id, good.id);
    let bad = s.get(&bad.id).unwrap();
    assert_eq!(bad.status, JobStatus::Failed);
    assert!(bad.error.unwrap().contains("checksum"));
}

#[test]
fn empty_or_foreign_files_are_refused_unless_init() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.redb");
    // Missing: created.
    drop(Store::open(&path, 2).unwrap());
    drop(Store::open(&path, 2).unwrap());

    let aside = |dir: &Path| {
        std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains(".foreign-")
            })
            .count()
    };
    let empty = tempfile::tempdir().unwrap();
    let path = empty.path().join("jobs.redb");
    std::fs::write(&path, b"").unwrap();
    let err = Store::open(&path, 2).err().unwrap().to_string();
    assert!(err.contains("empty") && err.contains("--init"), "{err}");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0, "left as it was");
    Store::open_with(&path, 2, true).unwrap();
    assert_eq!(aside(empty.path()), 1);

    let foreign = tempfile::tempdir().unwrap();
    let path = foreign.path().join("jobs.redb");
    std::fs::write(
        &path,
        b"these are somebody's notes, not a database\n".repeat(100),
    )
    .unwrap();
    let err = Store::open(&path, 2).err().unwrap().to_string();
    assert!(
        err.contains("not a redb database") && err.contains("--init"),
        "{err}"
    );
    let (s, _) = Store::open_with(&path, 2, true).unwrap();
    s.submit(job(0, 3), None, 100).unwrap();
    assert_eq!(aside(foreign.path()), 1);

    // A redb database of something else.
    let other = tempfile::tempdir().unwrap();
    let path = other.path().join("jobs.redb");
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(TableDefinition::<&str, &str>::new("photos"))
            .unwrap()
            .insert("a", "b")
            .unwrap();
        txn.commit().unwrap();
    }
    let err = Store::open(&path, 2).err().unwrap().to_string();
    assert!(err.contains("foreign") && err.contains("photos"), "{err}");
    Store::open_with(&path, 2, true).unwrap();
    assert_eq!(aside(other.path()), 1);
}

#[test]
fn a_store_without_checksums_is_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.redb");
    let (id, seq) = {
        let s = open(dir.path());
        let mut j = job(0, 3);
        j.request.input = vec![3; 32];
        let rec = s.submit(j, None, 100).unwrap().0;
        // Back to layout 1: raw input, no schema key.
        s.with_db(|db| {
            let txn = db.begin_write().unwrap();
            {
                let mut t = Tables::open(&txn).unwrap();
                t.inputs.insert(rec.seq, [3u8; 32].as_slice()).unwrap();
                t.meta.remove("schema").unwrap();
            }
            txn.commit().unwrap();
            Ok(())
        })
        .unwrap();
        (rec.id, rec.seq)
    };
    let (s, _) = Store::open(&path, 2).unwrap();
    let (r, input) = s.claim_as(ANY, "cpu", "cpu:0").unwrap().unwrap();
    assert_eq!((r.id, r.seq, input), (id, seq, vec![3; 32]));
}

/// The per-status counts, read by a scan of the status index: what the counters must
/// equal.
fn scanned(s: &Store) -> Vec<(JobStatus, u64)> {
    s.with_db(|db| {
        let txn = db.begin_read()?;
        let index = txn.open_table(BY_STATUS)?;
        let mut out = Vec::new();
        for st in JobStatus::ALL {
            let c = st.code();
            out.push((st, index.range((c, 0u64)..=(c, u64::MAX))?.count() as u64));
        }
        Ok(out)
    })
    .unwrap()
}

#[test]
fn status_counts_follow_every_transition_and_survive_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let ids: Vec<_> = (0..6)
        .map(|_| s.submit(job(0, 3), None, 100).unwrap().0)
        .collect();
    s.cancel(&ids[0].id).unwrap();
    let (a, _) = s.claim_as(ANY, "cpu", "cpu:0").unwrap().unwrap();
    s.finish(
        a.seq,
        a.attempts,
        Outcome::Succeeded {
            proof: vec![1, 2, 3],
            proving_ms: 1,
        },
    )
    .unwrap();
    let (b, _) = s.claim_as(ANY, "cpu", "cpu:0").unwrap().unwrap();
    s.finish(
        b.seq,
        b.attempts,
        Outcome::Failed {
            error: "x".into(),
            proving_ms: 1,
        },
    )
    .unwrap();
    let (c, _) = s.claim_as(ANY, "cpu", "cpu:0").unwrap().unwrap();
    s.finish(
        c.seq,
        c.attempts,
        Outcome::Retry {
            error: "x".into(),
            route: None,
        },
    )
    .unwrap();
    s.claim_as(ANY, "cpu", "cpu:0").unwrap().unwrap();
    let (counts, _) = s.counts().unwrap();
    assert_eq!(counts, scanned(&s));
    let get = |st| counts.iter().find(|(x, _)| *x == st).unwrap().1;
    assert_eq!(
        [
            JobStatus::Queued,
            JobStatus::Running,
            JobStatus::Succeeded,
            JobStatus::Failed,
            JobStatus::Cancelled
        ]
        .map(get),
        [2, 1, 1, 1, 1]
    );
    // A restart re-queues the running job; the counts follow.
    drop(s);
    let (s, _) = Store::open(&dir.path().join("jobs.redb"), 2).unwrap();
    assert_eq!(s.counts().unwrap().0, scanned(&s));

    // A store written before the counters were kept is recounted when opened.
    s.with_db(|db| {
        let txn = db.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            meta.remove("counts")?;
            meta.insert(count_key(JobStatus::Queued), 99)?;
        }
        txn.commit()?;
        Ok(())
    })
    .unwrap();
    drop(s);
    let (s, _) = Store::open(&dir.path().join("jobs.redb"), 2).unwrap();
    assert_eq!(s.counts().unwrap().0, scanned(&s));
}
