//! The persistent job store: one `redb` file in the data directory.
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
//! can be reopened, by itself ([`fault`]): meanwhile every operation answers
//! [`StoreError::Unavailable`].

use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::{SystemTime, UNIX_EPOCH};

use proofbox_backend_api::FieldId;
use proofbox_prover::{CircuitId, FriPreset, ProofRequest};
use redb::{
    Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, Table, TableDefinition,
    WriteTransaction,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::types::{JobStatus, TransitionStatementView};
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
const DIGEST_LEN: usize = 32;

/// The lowest and highest job priorities.
pub const MIN_PRIORITY: i32 = -1000;
pub const MAX_PRIORITY: i32 = 1000;

/// A route any worker may take.
pub const ROUTE_ANY: &str = "any";

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("job store: {0}")]
    Db(#[from] redb::Error),
    #[error("job store is corrupt: {0}")]
    Corrupt(String),
    #[error("no such job")]
    NotFound,
    #[error("Idempotency-Key {key:?} was already used for a different request (job {job})")]
    IdempotencyConflict { key: String, job: String },
    #[error("job {id} is {status} and can no longer be cancelled")]
    NotCancellable { id: String, status: JobStatus },
    #[error("the queue is full ({max} jobs waiting); retry later")]
    QueueFull { max: u64 },
    /// The stored proof failed its checksum: the job was queued to be proved again.
    #[error(
        "the stored proof of job {id} failed its checksum; the job was queued to be proved again, retry later"
    )]
    ProofCorrupt { id: String },
    /// A storage fault (disk full, read-only file system): the store is closed until
    /// it can be reopened ([`fault`]); nothing was written.
    #[error(
        "the job store is unavailable after an I/O error ({reason}); it reopens by itself once the storage works again, retry later"
    )]
    Unavailable { reason: String },
    /// The store file cannot be used as it is.
    #[error(
        "job store {}: {reason}; refusing to start (start with --init, or init = true, to move it aside and create a new store)",
        path.display()
    )]
    Refused { path: PathBuf, reason: String },
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                Self::Db(e.into())
            }
        }
    )*};
}
from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    pub id: String,
    pub seq: u64,
    pub circuit: CircuitId,
    pub field: FieldId,
    pub log_rows: u8,
    pub fri: FriPreset,
    pub seed: u64,
    pub input_len: u64,
    /// `auto` or a backend name, as asked.
    pub backend: String,
    /// The device asked for.
    pub device: Option<String>,
    pub priority: i32,
    /// Which workers may take the job: `any`, `backend:<kind>` or `device:<id>`.
    pub route: String,
    pub status: JobStatus,
    pub attempts: u32,
    pub created_ms: u64,
    pub started_ms: Option<u64>,
    pub finished_ms: Option<u64>,
    pub proving_ms: Option<u64>,
    pub backend_used: Option<String>,
    pub device_used: Option<String>,
    pub error: Option<String>,
    pub proof_bytes: Option<u64>,
    pub idempotency_key: Option<String>,
    /// A state transition with a witness: its statement, computed at submission
    /// (absent in records written before witness jobs existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement: Option<TransitionStatementView>,
}

impl JobRecord {
    /// The prover request (the input bytes are stored apart).
    pub fn request(&self, input: Vec<u8>) -> ProofRequest {
        ProofRequest {
            circuit: self.circuit,
            field: self.field,
            log_rows: self.log_rows,
            fri: self.fri,
            seed: self.seed,
            input,
        }
    }
}

/// A validated job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub request: ProofRequest,
    pub backend: String,
    pub device: Option<String>,
    pub priority: i32,
    pub route: String,
    /// A state transition with a witness: its statement, checked at submission.
    pub statement: Option<TransitionStatementView>,
}

/// What a worker reports at the end of an attempt.
#[derive(Debug, Clone)]
pub enum Outcome {
    Succeeded {
        proof: Vec<u8>,
        proving_ms: u64,
    },
    Failed {
        error: String,
        proving_ms: u64,
    },
    /// Queue the job again (on `route` if given).
    Retry {
        error: String,
        route: Option<String>,
    },
}

/// Whether an attempt's outcome was recorded.
#[derive(Debug)]
pub enum Finished {
    Applied(JobRecord),
    /// The job was cancelled or re-queued meanwhile: the outcome is dropped.
    Discarded(JobRecord),
}

/// What opening the store did to jobs interrupted by the previous process.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovery {
    pub requeued: Vec<String>,
    pub failed: Vec<String>,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn queue_key(priority: i32, seq: u64) -> (u32, u64) {
    let p = priority.clamp(MIN_PRIORITY, MAX_PRIORITY);
    ((MAX_PRIORITY - p) as u32, seq)
}

/// Stored form of input or proof bytes: their SHA-256 digest, then the bytes.
pub fn seal(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(DIGEST_LEN + bytes.len());
    out.extend_from_slice(&Sha256::digest(bytes));
    out.extend_from_slice(bytes);
    out
}

/// The bytes of a sealed value, if they match their digest.
pub fn unseal(stored: &[u8]) -> Option<&[u8]> {
    let (digest, bytes) = stored.split_at_checked(DIGEST_LEN)?;
    (Sha256::digest(bytes)[..] == *digest).then_some(bytes)
}

fn decode(seq: u64, bytes: &[u8]) -> Result<JobRecord> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("job #{seq}: {e}")))
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
/// ([`fault`]).
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

    /// Puts every `running` job back in the queue. `refund`: the attempt does not
    /// count (a graceful shutdown); otherwise it does (a crash), and a job that has
    /// used all its attempts fails.
    pub fn requeue_running(&self, refund: bool) -> Result<Recovery> {
        self.with_db(|db| {
            let txn = db.begin_write()?;
            let mut recovery = Recovery::default();
            {
                let mut t = Tables::open(&txn)?;
                for seq in t.seqs_with(JobStatus::Running)? {
                    let mut rec = load(&t.jobs, seq)?;
                    if refund {
                        rec.attempts = rec.attempts.saturating_sub(1);
                    }
                    if !refund && rec.attempts >= self.max_attempts {
                        rec.status = JobStatus::Failed;
                        rec.finished_ms = Some(now_ms());
                        rec.error = Some(format!(
                            "the service stopped while proving this job, {} times (max_attempts {})",
                            rec.attempts, self.max_attempts
                        ));
                        t.put(Some(JobStatus::Running), &rec)?;
                        recovery.failed.push(rec.id);
                    } else {
                        rec.status = JobStatus::Queued;
                        rec.started_ms = None;
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
    pub fn submit(
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
                    // Inputs are compared by their stored digest (a witness may be
                    // tens of MiB): no copy of the stored bytes.
                    let same_input = match t.inputs.get(seq)? {
                        Some(g) => g.value().get(..DIGEST_LEN) == Some(&input_digest[..]),
                        None => job.request.input.is_empty(),
                    };
                    let r = &job.request;
                    let same = same_input
                        && (rec.circuit, rec.field, rec.log_rows, rec.fri, rec.seed)
                            == (r.circuit, r.field, r.log_rows, r.fri, r.seed)
                        && rec.backend == job.backend
                        && rec.device == job.device
                        && rec.priority == job.priority;
                    if !same {
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
                let r = &job.request;
                let rec = JobRecord {
                    id: uuid::Uuid::new_v4().to_string(),
                    seq,
                    circuit: r.circuit,
                    field: r.field,
                    log_rows: r.log_rows,
                    fri: r.fri,
                    seed: r.seed,
                    input_len: r.input.len() as u64,
                    backend: job.backend,
                    device: job.device,
                    priority: job.priority,
                    route: job.route,
                    status: JobStatus::Queued,
                    attempts: 0,
                    created_ms: now_ms(),
                    started_ms: None,
                    finished_ms: None,
                    proving_ms: None,
                    backend_used: None,
                    device_used: None,
                    error: None,
                    proof_bytes: None,
                    idempotency_key: idempotency_key.map(str::to_string),
                    statement: job.statement.clone(),
                };
                t.put(None, &rec)?;
                t.ids.insert(rec.id.as_str(), seq)?;
                t.inputs.insert(seq, seal(&r.input).as_slice())?;
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

    pub fn get(&self, id: &str) -> Result<JobRecord> {
        self.with_db(|db| get_in(db, id))
    }

    /// The job and its proof, if it has one. A proof that fails its checksum is never
    /// returned: it is dropped, the job is queued to be proved again (logged), and the
    /// answer is [`StoreError::ProofCorrupt`].
    pub fn proof(&self, id: &str) -> Result<(JobRecord, Option<Vec<u8>>)> {
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
    pub fn list(
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
    pub fn claim(
        &self,
        accepts: &dyn Fn(&str) -> bool,
        backend: &str,
        device: &str,
    ) -> Result<Option<(JobRecord, Vec<u8>)>> {
        self.with_db(|db| {
            let txn = db.begin_write()?;
            let mut changed = false;
            let claimed = {
                let mut t = Tables::open(&txn)?;
                loop {
                    let mut pick = None;
                    for item in t.queue.iter()? {
                        let (k, v) = item?;
                        if accepts(v.value()) {
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
                        tracing::error!(
                            job = %rec.id,
                            "the stored input failed its checksum (storage corruption): job failed"
                        );
                        rec.status = JobStatus::Failed;
                        rec.finished_ms = Some(now_ms());
                        rec.error = Some(
                            "the stored input failed its checksum (storage corruption); submit the job again"
                                .into(),
                        );
                        t.put(Some(old), &rec)?;
                        continue;
                    };
                    rec.status = JobStatus::Running;
                    rec.attempts += 1;
                    rec.started_ms = Some(now_ms());
                    rec.backend_used = Some(backend.to_string());
                    rec.device_used = Some(device.to_string());
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
    pub fn finish(&self, seq: u64, attempt: u32, outcome: Outcome) -> Result<Finished> {
        self.with_db(|db| {
            let txn = db.begin_write()?;
            let result = {
                let mut t = Tables::open(&txn)?;
                let mut rec = load(&t.jobs, seq)?;
                if rec.status != JobStatus::Running || rec.attempts != attempt {
                    Finished::Discarded(rec)
                } else {
                    match outcome {
                        Outcome::Succeeded { proof, proving_ms } => {
                            t.proofs.insert(seq, seal(&proof).as_slice())?;
                            rec.status = JobStatus::Succeeded;
                            rec.proof_bytes = Some(proof.len() as u64);
                            rec.proving_ms = Some(proving_ms);
                            rec.finished_ms = Some(now_ms());
                            rec.error = None;
                        }
                        Outcome::Failed { error, proving_ms } => {
                            rec.status = JobStatus::Failed;
                            rec.proving_ms = Some(proving_ms);
                            rec.finished_ms = Some(now_ms());
                            rec.error = Some(error);
                        }
                        Outcome::Retry { error, route } => {
                            rec.status = JobStatus::Queued;
                            rec.error = Some(error);
                            if let Some(route) = route {
                                rec.route = route;
                            }
                        }
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
    pub fn cancel(&self, id: &str) -> Result<JobRecord> {
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
    pub fn counts(&self) -> Result<(Vec<(JobStatus, u64)>, u64)> {
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
    pub fn check(&self) -> Result<()> {
        self.with_db(|db| {
            let txn = db.begin_read()?;
            txn.open_table(META)?;
            Ok(())
        })
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
        tracing::error!(
            job = %rec.id,
            "the stored proof failed its checksum (storage corruption): dropped, proving the job again"
        );
        t.proofs.remove(seq)?;
        rec.status = JobStatus::Queued;
        rec.proof_bytes = None;
        rec.started_ms = None;
        rec.finished_ms = None;
        rec.error = Some("the stored proof failed its checksum; proving again".into());
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
