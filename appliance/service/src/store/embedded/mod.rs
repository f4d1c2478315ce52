//! The embedded job store (the default): one `redb` file in the data directory.
//!
//! Every state change is one ACID transaction, committed durably (fsync) before the
//! API answers or a worker moves on, so a job that was accepted is never lost, and a
//! proof is stored in the same transaction that marks its job `succeeded`.
//!
//! Tables:
//! - `jobs`: sequence number -> job record (JSON);
//! - `ids`: job id -> sequence number;
//! - `queue`: (1000 - priority, sequence) -> route, the order workers take jobs in;
//! - `by_status`: (status code, sequence) -> (), for listings and counts;
//! - `idempotency`: `Idempotency-Key` -> sequence number;
//! - `inputs`, `proofs`: sequence number -> the SHA-256 digest of the bytes, then the
//!   bytes ([`seal`]); checked on every read: a proof that fails it is never served
//!   (its job is queued to be proved again), an input that fails it fails its job;
//! - `meta`: counters (`next_seq`, and jobs per status, `jobs:<status>`, kept in the
//!   transaction that changes a status, so `/metrics` reads five numbers instead of
//!   scanning every job) and the layout version (`schema`).
//!
//! Opening: a missing file is created; an existing file that is empty, not a `redb`
//! database, or a database without this store's tables is refused
//! ([`StoreError::Refused`]) unless `init` is set, which moves it aside and creates a
//! new store.
//!
//! Storage faults (a full disk, a read-only file system) close the database until it
//! can be reopened, by itself (its `fault` module): meanwhile every operation answers
//! [`StoreError::Unavailable`].

use std::path::{Path, PathBuf};
use std::sync::RwLock;

use redb::{
    Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, Table, TableDefinition,
    WriteTransaction,
};
use sha2::{Digest, Sha256};

use super::{
    Claimant, DIGEST_LEN, Finished, JobRecord, JobStore, MAX_PRIORITY, MIN_PRIORITY, NewJob,
    Outcome, Recovery, Result, StoreError, apply_outcome, decode, fail_corrupt_input, new_record,
    now_ms, release, requeue_corrupt_proof, same_request, seal, start_attempt, unseal,
};
use crate::types::JobStatus;
use fault::Slot;
use file::open_db;

const JOBS: TableDefinition<u64, &[u8]> = TableDefinition::new("jobs");
const IDS: TableDefinition<&str, u64> = TableDefinition::new("ids");
const QUEUE: TableDefinition<(u32, u64), &str> = TableDefinition::new("queue");
const BY_STATUS: TableDefinition<(u8, u64), ()> = TableDefinition::new("by_status");
const IDEMPOTENCY: TableDefinition<&str, u64> = TableDefinition::new("idempotency");
const INPUTS: TableDefinition<u64, &[u8]> = TableDefinition::new("inputs");
const PROOFS: TableDefinition<u64, &[u8]> = TableDefinition::new("proofs");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// The layout version in `meta`: 2 since inputs and proofs carry digests.
const SCHEMA: u64 = 2;

fn queue_key(priority: i32, seq: u64) -> (u32, u64) {
    let p = priority.clamp(MIN_PRIORITY, MAX_PRIORITY);
    ((MAX_PRIORITY - p) as u32, seq)
}

fn load(jobs: &impl ReadableTable<u64, &'static [u8]>, seq: u64) -> Result<JobRecord> {
    let guard = jobs
        .get(seq)?
        .ok_or_else(|| StoreError::Corrupt(format!("job #{seq} is indexed but missing")))?;
    decode(seq, guard.value())
}

/// The `meta` key of the count of jobs in `status`.
fn count_key(status: JobStatus) -> &'static str {
    match status {
        JobStatus::Queued => "jobs:queued",
        JobStatus::Running => "jobs:running",
        JobStatus::Succeeded => "jobs:succeeded",
        JobStatus::Failed => "jobs:failed",
        JobStatus::Cancelled => "jobs:cancelled",
    }
}

/// Recounts the jobs per status from the status index (for a store written before the
/// counts were kept).
fn recount(t: &mut Tables<'_>) -> Result<()> {
    for s in JobStatus::ALL {
        let c = s.code();
        let n = t.by_status.range((c, 0u64)..=(c, u64::MAX))?.count() as u64;
        t.meta.insert(count_key(s), n)?;
    }
    t.meta.insert("counts", 1)?;
    Ok(())
}

/// The tables of one write transaction.
struct Tables<'txn> {
    jobs: Table<'txn, u64, &'static [u8]>,
    ids: Table<'txn, &'static str, u64>,
    queue: Table<'txn, (u32, u64), &'static str>,
    by_status: Table<'txn, (u8, u64), ()>,
    idempotency: Table<'txn, &'static str, u64>,
    inputs: Table<'txn, u64, &'static [u8]>,
    proofs: Table<'txn, u64, &'static [u8]>,
    meta: Table<'txn, &'static str, u64>,
}

impl<'txn> Tables<'txn> {
    fn open(txn: &'txn WriteTransaction) -> Result<Self> {
        Ok(Self {
            jobs: txn.open_table(JOBS)?,
            ids: txn.open_table(IDS)?,
            queue: txn.open_table(QUEUE)?,
            by_status: txn.open_table(BY_STATUS)?,
            idempotency: txn.open_table(IDEMPOTENCY)?,
            inputs: txn.open_table(INPUTS)?,
            proofs: txn.open_table(PROOFS)?,
            meta: txn.open_table(META)?,
        })
    }

    /// Writes `rec` and moves it in the status index and the per-status counts from
    /// `old` (`None`: a new job).
    fn put(&mut self, old: Option<JobStatus>, rec: &JobRecord) -> Result<()> {
        let bytes = serde_json::to_vec(rec).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.jobs.insert(rec.seq, bytes.as_slice())?;
        if old != Some(rec.status) {
            if let Some(old) = old {
                self.by_status.remove((old.code(), rec.seq))?;
                self.add_count(old, -1)?;
            }
            self.add_count(rec.status, 1)?;
        }
        self.by_status.insert((rec.status.code(), rec.seq), ())?;
        Ok(())
    }

    fn add_count(&mut self, status: JobStatus, delta: i64) -> Result<()> {
        let key = count_key(status);
        let n = self.meta.get(key)?.map(|g| g.value()).unwrap_or(0);
        self.meta.insert(key, n.saturating_add_signed(delta))?;
        Ok(())
    }

    fn enqueue(&mut self, rec: &JobRecord) -> Result<()> {
        self.queue
            .insert(queue_key(rec.priority, rec.seq), rec.route.as_str())?;
        Ok(())
    }

    fn seqs_with(&self, status: JobStatus) -> Result<Vec<u64>> {
        let c = status.code();
        let mut out = Vec::new();
        for item in self.by_status.range((c, 0u64)..=(c, u64::MAX))? {
            out.push(item?.0.value().1);
        }
        Ok(out)
    }

    fn seq_of(&self, id: &str) -> Result<u64> {
        Ok(self.ids.get(id)?.ok_or(StoreError::NotFound)?.value())
    }
}

/// The job store. All methods block (disk I/O, fsync): call them from worker
/// threads or `spawn_blocking`.
///
/// A storage fault (disk full, read-only file system) closes the database and makes
/// every operation answer [`StoreError::Unavailable`] until it can be reopened
/// (its `fault` module).
pub struct Store {
    path: PathBuf,
    max_attempts: u32,
    slot: RwLock<Slot>,
}

impl Store {
    /// Opens (or creates) the store at `path` and recovers from the previous process:
    /// jobs it left `running` go back to the queue (their attempt counts), or fail
    /// once they have used `max_attempts`.
    pub fn open(path: &Path, max_attempts: u32) -> Result<(Self, Recovery)> {
        Self::open_with(path, max_attempts, false)
    }

    /// [`Store::open`]; with `init`, a file that is no job store (empty, foreign) is
    /// moved aside (to `<file>.foreign-<ms>`) and a new store created. A valid store is
    /// never touched by `init`.
    pub fn open_with(path: &Path, max_attempts: u32, init: bool) -> Result<(Self, Recovery)> {
        let db = open_db(path, init)?;
        let store = Self {
            path: path.to_path_buf(),
            max_attempts: max_attempts.max(1),
            slot: Slot::new(db),
        };
        let recovery = store.requeue_running(false)?;
        Ok((store, recovery))
    }

    /// Creates every table (so that readers find them).
    pub fn init(&self) -> Result<()> {
        self.with_db(|db| {
            let txn = db.begin_write()?;
            Tables::open(&txn)?;
            txn.commit()?;
            Ok(())
        })
    }
}

impl JobStore for Store {
    /// Puts every `running` job back in the queue. `refund`: the attempt does not
    /// count (a graceful shutdown); otherwise it does (a crash), and a job that has
    /// used all its attempts fails.
    fn requeue_running(&self, refund: bool) -> Result<Recovery> {
        self.with_db(|db| {
            let txn = db.begin_write()?;
            let mut recovery = Recovery::default();
            {
                let mut t = Tables::open(&txn)?;
                for seq in t.seqs_with(JobStatus::Running)? {
                    let mut rec = load(&t.jobs, seq)?;
                    let stopped = "the service stopped";
                    if release(&mut rec, refund, self.max_attempts, stopped) {
                        t.put(Some(JobStatus::Running), &rec)?;
                        recovery.failed.push(rec.id);
                    } else {
                        t.put(Some(JobStatus::Running), &rec)?;
                        t.enqueue(&rec)?;
                        recovery.requeued.push(rec.id);
                    }
                }
            }
            txn.commit()?;
            Ok(recovery)
        })
    }

    /// Enqueues `job`, or returns the job an earlier submission with the same
    /// idempotency key created (`true`: a replay).
    fn submit(
        &self,
        job: NewJob,
        idempotency_key: Option<&str>,
        max_queued: u64,
    ) -> Result<(JobRecord, bool)> {
        let input_digest = Sha256::digest(&job.request.input);
        self.with_db(|db| {
            let txn = db.begin_write()?;
            let rec = {
                let mut t = Tables::open(&txn)?;
                if let Some(key) = idempotency_key
                    && let Some(seq) = t.idempotency.get(key)?.map(|g| g.value())
                {
                    let rec = load(&t.jobs, seq)?;
                    // Inputs are compared by their stored digest: no copy of the
                    // stored bytes.
                    let stored = t.inputs.get(seq)?;
                    let stored_digest = stored.as_ref().map(|g| {
                        let v = g.value();
                        v.get(..DIGEST_LEN).unwrap_or(v).to_vec()
                    });
                    if !same_request(&rec, &job, stored_digest.as_deref(), &input_digest) {
                        return Err(StoreError::IdempotencyConflict {
                            key: key.to_string(),
                            job: rec.id,
                        });
                    }
                    return Ok((rec, true));
                }
                if t.queue.len()? >= max_queued {
                    return Err(StoreError::QueueFull { max: max_queued });
                }
                let seq = t.meta.get("next_seq")?.map(|g| g.value()).unwrap_or(1);
                t.meta.insert("next_seq", seq + 1)?;
                let input = seal(&job.request.input);
                let rec = new_record(seq, job, idempotency_key);
                t.put(None, &rec)?;
                t.ids.insert(rec.id.as_str(), seq)?;
                t.inputs.insert(seq, input.as_slice())?;
                if let Some(key) = idempotency_key {
                    t.idempotency.insert(key, seq)?;
                }
                t.enqueue(&rec)?;
                rec
            };
            txn.commit()?;
            Ok((rec, false))
        })
    }

    fn get(&self, id: &str) -> Result<JobRecord> {
        self.with_db(|db| get_in(db, id))
    }

    /// The job and its proof, if it has one. A proof that fails its checksum is never
    /// returned: it is dropped, the job is queued to be proved again (logged), and the
    /// answer is [`StoreError::ProofCorrupt`].
    fn proof(&self, id: &str) -> Result<(JobRecord, Option<Vec<u8>>)> {
        self.with_db(|db| {
            let rec = get_in(db, id)?;
            let txn = db.begin_read()?;
            let proof = match txn.open_table(PROOFS)?.get(rec.seq)? {
                None => None,
                Some(g) => match unseal(g.value()) {
                    Some(p) => Some(p.to_vec()),
                    None => {
                        drop(g);
                        drop(txn);
                        reprove(db, rec.seq)?;
                        return Err(StoreError::ProofCorrupt { id: rec.id });
                    }
                },
            };
            Ok((rec, proof))
        })
    }

    /// Up to `limit` jobs older than `before` (a sequence number), newest first, and
    /// whether more follow.
    fn list(
        &self,
        status: Option<JobStatus>,
        limit: usize,
        before: Option<u64>,
    ) -> Result<(Vec<JobRecord>, bool)> {
        self.with_db(|db| {
            let txn = db.begin_read()?;
            let jobs = txn.open_table(JOBS)?;
            let before = before.unwrap_or(u64::MAX);
            let mut seqs = Vec::with_capacity(limit + 1);
            match status {
                None => {
                    for item in jobs.range(..before)?.rev().take(limit + 1) {
                        seqs.push(item?.0.value());
                    }
                }
                Some(s) => {
                    let index = txn.open_table(BY_STATUS)?;
                    let c = s.code();
                    for item in index.range((c, 0u64)..(c, before))?.rev().take(limit + 1) {
                        seqs.push(item?.0.value().1);
                    }
                }
            }
            let more = seqs.len() > limit;
            seqs.truncate(limit);
            let recs = seqs
                .into_iter()
                .map(|s| load(&jobs, s))
                .collect::<Result<Vec<_>>>()?;
            Ok((recs, more))
        })
    }

    /// Takes the first queued job (priority, then arrival) whose route `accepts`,
    /// marks it running on `backend`/`device` and counts the attempt.
    fn claim(&self, who: &Claimant<'_>) -> Result<Option<(JobRecord, Vec<u8>)>> {
        self.with_db(|db| {
            let txn = db.begin_write()?;
            let mut changed = false;
            let claimed = {
                let mut t = Tables::open(&txn)?;
                loop {
                    let mut pick = None;
                    for item in t.queue.iter()? {
                        let (k, v) = item?;
                        if who.routes.contains(&v.value())
                            && who.takes(&load(&t.jobs, k.value().1)?)
                        {
                            pick = Some(k.value());
                            break;
                        }
                    }
                    let Some(key) = pick else { break None };
                    changed = true;
                    t.queue.remove(key)?;
                    let mut rec = load(&t.jobs, key.1)?;
                    let old = rec.status;
                    let input = match t.inputs.get(key.1)? {
                        None => Some(Vec::new()),
                        Some(g) => unseal(g.value()).map(<[u8]>::to_vec),
                    };
                    let Some(input) = input else {
                        fail_corrupt_input(&mut rec);
                        t.put(Some(old), &rec)?;
                        continue;
                    };
                    start_attempt(&mut rec, who.backend, who.device);
                    t.put(Some(old), &rec)?;
                    break Some((rec, input));
                }
            };
            if !changed {
                txn.abort()?;
            } else {
                txn.commit()?;
            }
            Ok(claimed)
        })
    }

    /// Records the outcome of attempt `attempt` of job `seq`, unless the job was
    /// cancelled or re-queued meanwhile. A proof is written in the same transaction
    /// that marks the job succeeded.
    fn finish(&self, seq: u64, attempt: u32, outcome: Outcome) -> Result<Finished> {
        self.with_db(|db| {
            let txn = db.begin_write()?;
            let result = {
                let mut t = Tables::open(&txn)?;
                let mut rec = load(&t.jobs, seq)?;
                if rec.status != JobStatus::Running || rec.attempts != attempt {
                    Finished::Discarded(rec)
                } else {
                    if let Some(proof) = apply_outcome(&mut rec, outcome) {
                        t.proofs.insert(seq, seal(&proof).as_slice())?;
                    }
                    t.put(Some(JobStatus::Running), &rec)?;
                    if rec.status == JobStatus::Queued {
                        t.enqueue(&rec)?;
                    }
                    Finished::Applied(rec)
                }
            };
            if matches!(result, Finished::Discarded(_)) {
                txn.abort()?;
            } else {
                txn.commit()?;
            }
            Ok(result)
        })
    }

    /// Cancels a queued or running job (a running proof cannot be interrupted: its
    /// result will be discarded). Cancelling a cancelled job is a no-op.
    fn cancel(&self, id: &str) -> Result<JobRecord> {
        self.with_db(|db| {
            let txn = db.begin_write()?;
            let rec = {
                let mut t = Tables::open(&txn)?;
                let seq = t.seq_of(id)?;
                let mut rec = load(&t.jobs, seq)?;
                match rec.status {
                    JobStatus::Cancelled => return Ok(rec),
                    JobStatus::Succeeded | JobStatus::Failed => {
                        return Err(StoreError::NotCancellable {
                            id: rec.id,
                            status: rec.status,
                        });
                    }
                    JobStatus::Queued => {
                        t.queue.remove(queue_key(rec.priority, seq))?;
                    }
                    JobStatus::Running => {}
                }
                let old = rec.status;
                rec.status = JobStatus::Cancelled;
                rec.finished_ms = Some(now_ms());
                t.put(Some(old), &rec)?;
                rec
            };
            txn.commit()?;
            Ok(rec)
        })
    }

    /// Jobs per status, and the queue depth: counters, read in constant time.
    fn counts(&self) -> Result<(Vec<(JobStatus, u64)>, u64)> {
        self.with_db(|db| {
            let txn = db.begin_read()?;
            let meta = txn.open_table(META)?;
            let mut out = Vec::new();
            for s in JobStatus::ALL {
                let n = meta.get(count_key(s))?.map(|g| g.value()).unwrap_or(0);
                out.push((s, n));
            }
            let depth = txn.open_table(QUEUE)?.len()?;
            Ok((out, depth))
        })
    }

    /// A read transaction works (for `/readyz`).
    fn check(&self) -> Result<()> {
        self.with_db(|db| {
            let txn = db.begin_read()?;
            txn.open_table(META)?;
            Ok(())
        })
    }

    fn describe(&self) -> String {
        format!("embedded store {}", self.path.display())
    }
}

/// The job `id`.
fn get_in(db: &Database, id: &str) -> Result<JobRecord> {
    let txn = db.begin_read()?;
    let ids = match txn.open_table(IDS) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Err(StoreError::NotFound),
        Err(e) => return Err(e.into()),
    };
    let seq = ids.get(id)?.ok_or(StoreError::NotFound)?.value();
    load(&txn.open_table(JOBS)?, seq)
}

/// Drops the corrupt proof of job `seq` and queues the job again.
fn reprove(db: &Database, seq: u64) -> Result<()> {
    let txn = db.begin_write()?;
    {
        let mut t = Tables::open(&txn)?;
        let mut rec = load(&t.jobs, seq)?;
        let stored_ok = t
            .proofs
            .get(seq)?
            .is_some_and(|g| unseal(g.value()).is_some());
        if rec.status != JobStatus::Succeeded || stored_ok {
            // Another request re-queued it already (or it was proved again).
            return Ok(());
        }
        t.proofs.remove(seq)?;
        requeue_corrupt_proof(&mut rec);
        t.put(Some(JobStatus::Succeeded), &rec)?;
        t.enqueue(&rec)?;
    }
    txn.commit()?;
    Ok(())
}

mod fault;
mod file;
#[cfg(test)]
mod tests;
