//! The job store: jobs, their inputs, idempotency keys and proofs, behind one trait
//! ([`JobStore`]) with two implementations:
//!
//! - [`Store`] (embedded, the default): one `redb` file in the data directory, for one
//!   appliance ([`embedded`]);
//! - [`PgStore`]: a PostgreSQL database shared by any number of appliances, a prover
//!   fleet ([`postgres`], `docs/fleet.md`).
//!
//! Both give the same guarantees:
//! - every state change is one transaction, durable before the API answers or a
//!   worker moves on: a job that was accepted is never lost;
//! - a proof is stored in the same transaction that marks its job `succeeded`, and
//!   only by the current attempt (a result of a cancelled, re-queued or abandoned
//!   attempt is discarded);
//! - an `Idempotency-Key` names one job: a replay of the same request returns it, a
//!   different request with the same key is refused;
//! - inputs and proofs are stored with their SHA-256 digest ([`seal`]) and checked on
//!   every read: a proof that fails it is never served (its job is queued to be proved
//!   again), an input that fails it fails its job;
//! - workers take jobs in priority, then arrival order, and no job is given to two
//!   workers at once; an attempt interrupted by a crash counts towards `max_attempts`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use proofbox_backend_api::FieldId;
use proofbox_prover::{CircuitId, FriPreset, ProofRequest};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::fleet::ApplianceAd;
use crate::types::{JobStatus, TransitionStatementView};

pub mod embedded;
pub mod postgres;

pub use embedded::Store;
pub use postgres::{PgOptions, PgStore};

/// The length of the SHA-256 digest that opens every sealed value ([`seal`]).
pub(crate) const DIGEST_LEN: usize = 32;

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
    /// it can be reopened (the embedded store's `fault` module); nothing was written.
    #[error(
        "the job store is unavailable after an I/O error ({reason}); it reopens by itself once the storage works again, retry later"
    )]
    Unavailable { reason: String },
    /// The database server of a shared store cannot be reached (it restarts, the
    /// network is down): nothing was written; connections are made again by themselves.
    #[error("the job database cannot be reached ({reason}); retry later")]
    Unreachable { reason: String },
    /// The database server of a shared store refused a statement.
    #[error("job database: {reason}")]
    Database { reason: String },
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
    /// The `log_rows` its proofs have, when not `log_rows` (a witness job's largest
    /// chunk): what a device must take ([`crate::fleet`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk_log_rows: Option<u8>,
}

impl JobRecord {
    /// Its shape: circuit, field and FRI preset ([`crate::fleet::shape`]).
    pub fn shape(&self) -> String {
        crate::fleet::shape(self.circuit, self.field, self.fri)
    }

    /// The size a device must take: `log_rows`, or a witness job's largest chunk.
    pub fn fit_log_rows(&self) -> u8 {
        self.chunk_log_rows.unwrap_or(self.log_rows)
    }

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
    /// A witness job's largest chunk, when its proofs are smaller than `log_rows`.
    pub chunk_log_rows: Option<u8>,
}

/// Who takes a job: a worker of one device.
#[derive(Debug, Clone, Copy)]
pub struct Claimant<'a> {
    /// The routes it takes ([`crate::worker::DeviceSlot::routes`]).
    pub routes: &'a [&'a str],
    pub backend: &'a str,
    pub device: &'a str,
    /// The largest size of each shape its device takes: a job it does not take is
    /// left for another.
    pub capacity: &'a crate::fleet::Capacity,
}

impl Claimant<'_> {
    /// Whether it takes `rec`.
    pub fn takes(&self, rec: &JobRecord) -> bool {
        self.routes.contains(&rec.route.as_str())
            && self.capacity.takes(&rec.shape(), rec.fit_log_rows())
    }
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

pub(crate) fn decode(seq: u64, bytes: &[u8]) -> Result<JobRecord> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("job #{seq}: {e}")))
}

/// A function that wakes idle workers.
pub type Wake = Arc<dyn Fn() + Send + Sync>;

/// A function that gives this appliance's current advertisement.
pub type Advert = Arc<dyn Fn() -> ApplianceAd + Send + Sync>;

/// The store's operations, as the API and the workers use them. Every method blocks
/// (disk I/O, fsync, a database round trip): call them from worker threads or
/// `spawn_blocking`.
pub trait JobStore: Send + Sync {
    /// Enqueues `job`, or returns the job an earlier submission with the same
    /// idempotency key created (`true`: a replay). [`StoreError::QueueFull`] once
    /// `max_queued` jobs are queued.
    fn submit(
        &self,
        job: NewJob,
        idempotency_key: Option<&str>,
        max_queued: u64,
    ) -> Result<(JobRecord, bool)>;

    /// The job `id`.
    fn get(&self, id: &str) -> Result<JobRecord>;

    /// The job and its proof, if it has one. A proof that fails its checksum is never
    /// returned: it is dropped, the job is queued to be proved again (logged), and the
    /// answer is [`StoreError::ProofCorrupt`].
    fn proof(&self, id: &str) -> Result<(JobRecord, Option<Vec<u8>>)>;

    /// Up to `limit` jobs older than `before` (a sequence number), newest first, and
    /// whether more follow.
    fn list(
        &self,
        status: Option<JobStatus>,
        limit: usize,
        before: Option<u64>,
    ) -> Result<(Vec<JobRecord>, bool)>;

    /// Takes the first queued job (priority, then arrival) that `who` takes (its
    /// route is one of `who.routes` and its shape and size fit `who.capacity`), marks
    /// it running on `who.backend`/`who.device` and counts the attempt. A job whose
    /// stored input fails its checksum fails, and the next one is taken.
    fn claim(&self, who: &Claimant<'_>) -> Result<Option<(JobRecord, Vec<u8>)>>;

    /// Records the outcome of attempt `attempt` of job `seq`, unless the job was
    /// cancelled, re-queued or claimed again meanwhile ([`Finished::Discarded`]).
    fn finish(&self, seq: u64, attempt: u32, outcome: Outcome) -> Result<Finished>;

    /// Cancels a queued or running job (a running proof cannot be interrupted: its
    /// result will be discarded). Cancelling a cancelled job is a no-op.
    fn cancel(&self, id: &str) -> Result<JobRecord>;

    /// Jobs per status, and the queue depth.
    fn counts(&self) -> Result<(Vec<(JobStatus, u64)>, u64)>;

    /// The store answers (for `/readyz`).
    fn check(&self) -> Result<()>;

    /// Puts the jobs this appliance is running back in the queue. `refund`: the
    /// attempt does not count (a graceful shutdown); otherwise it does (a crash), and
    /// a job that has used all its attempts fails.
    fn requeue_running(&self, refund: bool) -> Result<Recovery>;

    /// Calls `wake` whenever jobs may have been queued by another appliance (a
    /// shared store); the embedded store has no other writer and never calls it.
    fn watch(&self, wake: Wake) {
        let _ = wake;
    }

    /// How long an idle worker waits for a wake-up before it looks at the queue
    /// again.
    fn idle_poll(&self) -> std::time::Duration {
        std::time::Duration::from_secs(1)
    }

    /// Publishes this appliance's advertisement to the others sharing the store:
    /// `ad` is called now and whenever the store renews it (a shared store keeps it
    /// live with its heartbeat). The embedded store has no one to tell.
    fn advertise(&self, ad: Advert) {
        let _ = ad;
    }

    /// The live appliances sharing this store, as they advertise themselves (`None`:
    /// a store of one appliance, whose fleet is itself).
    fn fleet(&self) -> Result<Option<Vec<ApplianceAd>>> {
        Ok(None)
    }

    /// This appliance's name among those sharing the store (`local` on a store of
    /// one).
    fn appliance(&self) -> String {
        "local".to_string()
    }

    /// Withdraws this appliance's advertisement (a graceful shutdown).
    fn withdraw(&self) -> Result<()> {
        Ok(())
    }

    /// What the store is, for logs: the file or the database server.
    fn describe(&self) -> String;
}

/// Where the job store lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// The embedded store, `jobs.redb` in the data directory.
    Embedded,
    /// A PostgreSQL database (`postgres://...`).
    Postgres(String),
}

impl StoreLocation {
    /// `embedded` (or empty) or a `postgres://` / `postgresql://` URL.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() || s == "embedded" {
            Ok(Self::Embedded)
        } else if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Ok(Self::Postgres(s.to_string()))
        } else {
            Err("expected `embedded` or a `postgres://user@host:port/database` URL".into())
        }
    }
}

#[cfg(test)]
pub(crate) mod suite;

/// Whether a replayed submission asks for the job `rec`. Inputs are compared by their
/// digest (a witness may be tens of MiB): `stored_digest` is that of the stored input
/// (`None`: none stored).
pub(crate) fn same_request(
    rec: &JobRecord,
    job: &NewJob,
    stored_digest: Option<&[u8]>,
    input_digest: &[u8],
) -> bool {
    let same_input = match stored_digest {
        Some(d) => d == input_digest,
        None => job.request.input.is_empty(),
    };
    let r = &job.request;
    same_input
        && (rec.circuit, rec.field, rec.log_rows, rec.fri, rec.seed)
            == (r.circuit, r.field, r.log_rows, r.fri, r.seed)
        && rec.backend == job.backend
        && rec.device == job.device
        && rec.priority == job.priority
}

/// The record of a new queued job.
pub(crate) fn new_record(seq: u64, job: NewJob, idempotency_key: Option<&str>) -> JobRecord {
    let r = &job.request;
    JobRecord {
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
        statement: job.statement,
        chunk_log_rows: job.chunk_log_rows,
    }
}

/// Marks `rec` running on `backend`/`device`, counting the attempt.
pub(crate) fn start_attempt(rec: &mut JobRecord, backend: &str, device: &str) {
    rec.status = JobStatus::Running;
    rec.attempts += 1;
    rec.started_ms = Some(now_ms());
    rec.backend_used = Some(backend.to_string());
    rec.device_used = Some(device.to_string());
}

/// Fails `rec`, whose stored input failed its checksum.
pub(crate) fn fail_corrupt_input(rec: &mut JobRecord) {
    tracing::error!(
        job = %rec.id,
        "the stored input failed its checksum (storage corruption): job failed"
    );
    rec.status = JobStatus::Failed;
    rec.finished_ms = Some(now_ms());
    rec.error = Some(
        "the stored input failed its checksum (storage corruption); submit the job again".into(),
    );
}

/// Applies the outcome of the current attempt to `rec`; returns the proof to store.
pub(crate) fn apply_outcome(rec: &mut JobRecord, outcome: Outcome) -> Option<Vec<u8>> {
    match outcome {
        Outcome::Succeeded { proof, proving_ms } => {
            rec.status = JobStatus::Succeeded;
            rec.proof_bytes = Some(proof.len() as u64);
            rec.proving_ms = Some(proving_ms);
            rec.finished_ms = Some(now_ms());
            rec.error = None;
            Some(proof)
        }
        Outcome::Failed { error, proving_ms } => {
            rec.status = JobStatus::Failed;
            rec.proving_ms = Some(proving_ms);
            rec.finished_ms = Some(now_ms());
            rec.error = Some(error);
            None
        }
        Outcome::Retry { error, route } => {
            rec.status = JobStatus::Queued;
            rec.error = Some(error);
            if let Some(route) = route {
                rec.route = route;
            }
            None
        }
    }
}

/// Puts the running job `rec` back in the queue, or fails it once it has used
/// `max_attempts` (unless `refund`: the attempt does not count). `stopped` says what
/// interrupted it, for the error. Returns whether the job failed.
pub(crate) fn release(rec: &mut JobRecord, refund: bool, max_attempts: u32, stopped: &str) -> bool {
    if refund {
        rec.attempts = rec.attempts.saturating_sub(1);
    }
    if !refund && rec.attempts >= max_attempts {
        rec.status = JobStatus::Failed;
        rec.finished_ms = Some(now_ms());
        rec.error = Some(format!(
            "{stopped} while proving this job, {} times (max_attempts {max_attempts})",
            rec.attempts
        ));
        true
    } else {
        rec.status = JobStatus::Queued;
        rec.started_ms = None;
        false
    }
}

/// Marks `rec`, whose stored proof failed its checksum, queued to be proved again.
pub(crate) fn requeue_corrupt_proof(rec: &mut JobRecord) {
    tracing::error!(
        job = %rec.id,
        "the stored proof failed its checksum (storage corruption): dropped, proving the job again"
    );
    rec.status = JobStatus::Queued;
    rec.proof_bytes = None;
    rec.started_ms = None;
    rec.finished_ms = None;
    rec.error = Some("the stored proof failed its checksum; proving again".into());
}
