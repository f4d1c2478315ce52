//! The PostgreSQL job store: one database shared by any number of appliances, a
//! prover fleet (`docs/fleet.md`).
//!
//! Tables ([`schema`], created and upgraded at start-up under an advisory lock):
//! - `jobs`: one row per job: the record (JSON), and the columns the queue needs
//!   (status, priority, route, attempts, idempotency key, lease holder and expiry);
//! - `inputs`, `proofs`: sequence number -> the bytes sealed with their SHA-256 digest
//!   ([`super::seal`]), checked on every read as in the embedded store;
//! - `proofbox_schema`: the migrations applied.
//!
//! How a fleet shares the queue:
//! - a worker claims the first queued job it can run with `SELECT ... FOR UPDATE SKIP
//!   LOCKED`, so no job is given to two workers, and takes a lease on it (holder: this
//!   appliance's [`PgStore::owner`], expiry: now + `lease`);
//! - a heartbeat renews the leases of this appliance's running jobs every third of
//!   the lease; any appliance puts a job whose lease expired (its holder crashed or
//!   was cut off) back in the queue, its attempt counted, or fails it after
//!   `max_attempts`;
//! - a result is written only while the job is running the same attempt under this
//!   appliance's lease: otherwise it is discarded;
//! - submissions and re-queues send `NOTIFY`; idle workers `LISTEN` and wake at once,
//!   and look at the queue by themselves only every [`IDLE_POLL`];
//! - submissions take a transaction-scoped advisory lock, so that an
//!   `Idempotency-Key` names one job and `max_queued_jobs` holds across the fleet.
//!
//! The database's clock decides leases (`now()`), so appliances' clocks may differ.
//! A lost connection (the server restarts, the network fails) answers
//! [`StoreError::Unreachable`] (503 `store_unavailable`); the pool connects again by
//! itself.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod};
use sha2::{Digest, Sha256};
use tokio::runtime::Runtime;
use tokio_postgres::NoTls;

use super::{
    Advert, Claimant, DIGEST_LEN, Finished, JobRecord, JobStore, NewJob, Outcome, Recovery, Result,
    StoreError, Wake, apply_outcome, decode, fail_corrupt_input, new_record, release,
    requeue_corrupt_proof, same_request, seal, start_attempt, unseal,
};
use crate::fleet::ApplianceAd;
use crate::types::JobStatus;

pub mod schema;

/// How long an idle worker waits for a `NOTIFY` before it looks at the queue again.
pub const IDLE_POLL: Duration = Duration::from_secs(5);
/// The advisory lock key that serialises submissions (`pg_advisory_xact_lock`).
const SUBMIT_LOCK: i64 = 0x7072_6f6f_6662_0001;

/// How to reach and use the database.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// `postgres://user:password@host:port/database` (libpq's URL or key=value form).
    pub url: String,
    /// Attempts per job before it fails; an attempt whose lease expired counts.
    pub max_attempts: u32,
    /// How long a running job stays held without a heartbeat.
    pub lease: Duration,
    /// Connections in the pool.
    pub pool_size: usize,
    /// A schema of its own (created if missing) instead of the user's default
    /// (`public`): several independent stores in one database.
    pub schema: Option<String>,
}

impl PgOptions {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_attempts: 3,
            lease: Duration::from_secs(30),
            pool_size: 16,
            schema: None,
        }
    }
}

/// The PostgreSQL job store. Its methods block on a small runtime of its own (two
/// threads), so they can be called from worker threads and `spawn_blocking` alike.
pub struct PgStore {
    rt: Option<Runtime>,
    pool: Pool,
    config: tokio_postgres::Config,
    owner: String,
    opts: PgOptions,
    channel: String,
    describe: String,
    /// This appliance's advertisement, renewed by the heartbeat once set.
    advert: Arc<Mutex<Option<Advert>>>,
}

/// Maps a database error: a lost or refused connection is [`StoreError::Unreachable`].
pub(crate) fn pg(e: tokio_postgres::Error) -> StoreError {
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        // Class 08: connection exception; 57P01..57P03: the server shuts down, crashed,
        // or is starting up.
        if code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03") {
            return StoreError::Unreachable {
                reason: db.to_string(),
            };
        }
        return StoreError::Database {
            reason: db.to_string(),
        };
    }
    let io = std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>());
    let text = e.to_string();
    if e.is_closed() || io || text.contains("connect") || text.contains("timeout") {
        StoreError::Unreachable {
            reason: std::error::Error::source(&e).map_or(text.clone(), |s| format!("{text}: {s}")),
        }
    } else {
        StoreError::Database { reason: text }
    }
}

fn pool_error(e: deadpool_postgres::PoolError) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => pg(e),
        e => StoreError::Unreachable {
            reason: e.to_string(),
        },
    }
}

fn json(rec: &JobRecord) -> Result<String> {
    serde_json::to_string(rec).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn record(row: &tokio_postgres::Row, col: usize) -> Result<JobRecord> {
    let seq: i64 = row.get(0);
    let text: String = row.get(col);
    decode(seq as u64, text.as_bytes())
}

/// Writes `rec` (status, queue columns and record); `lease`: this appliance holds it
/// now, else nobody does.
async fn put(
    c: &impl GenericClient,
    rec: &JobRecord,
    lease: Option<(&str, Duration)>,
) -> Result<()> {
    let (owner, secs) = match lease {
        Some((o, d)) => (Some(o), d.as_secs_f64()),
        None => (None, 0.0),
    };
    c.execute(
        "UPDATE jobs SET status = $2, priority = $3, route = $4, attempts = $5,
             record = $6::text::jsonb, lease_owner = $7,
             lease_until = CASE WHEN $7::text IS NULL THEN NULL
                                ELSE now() + make_interval(secs => $8) END
         WHERE seq = $1",
        &[
            &(rec.seq as i64),
            &rec.status.name(),
            &rec.priority,
            &rec.route,
            &(rec.attempts as i32),
            &json(rec)?,
            &owner,
            &secs,
        ],
    )
    .await
    .map_err(pg)?;
    Ok(())
}

impl PgStore {
    /// Connects, creates or upgrades the schema ([`schema::migrate`]), starts the
    /// lease heartbeat, and re-queues the jobs whose lease already expired.
    pub fn open(opts: PgOptions) -> Result<(Self, Recovery)> {
        let mut config: tokio_postgres::Config =
            opts.url
                .parse()
                .map_err(|e: tokio_postgres::Error| StoreError::Database {
                    reason: format!("the store URL: {e}"),
                })?;
        let mut options = config.get_options().unwrap_or_default().to_string();
        // A cut-off appliance's open transaction must not hold row locks for long.
        options.push_str(" -c idle_in_transaction_session_timeout=60000");
        if let Some(s) = &opts.schema {
            if !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(StoreError::Database {
                    reason: format!("schema name {s:?}: letters, digits and _ only"),
                });
            }
            options.push_str(&format!(" -c search_path={s}"));
        }
        config
            .options(options.trim())
            .application_name("proofbox")
            .connect_timeout(Duration::from_secs(5))
            .keepalives_idle(Duration::from_secs(10));
        let describe = format!(
            "PostgreSQL store {}:{}/{}",
            config
                .get_hosts()
                .first()
                .map(|h| match h {
                    tokio_postgres::config::Host::Tcp(h) => h.clone(),
                    #[cfg(unix)]
                    tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
                })
                .unwrap_or_default(),
            config.get_ports().first().copied().unwrap_or(5432),
            config.get_dbname().unwrap_or("")
        );
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("pg-store")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Database {
                reason: format!("starting the store's runtime: {e}"),
            })?;
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(opts.pool_size.max(2))
            .wait_timeout(Some(Duration::from_secs(10)))
            .create_timeout(Some(Duration::from_secs(5)))
            .recycle_timeout(Some(Duration::from_secs(5)))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| StoreError::Database {
                reason: e.to_string(),
            })?;
        let channel = format!(
            "proofbox_jobs_{}",
            opts.schema.as_deref().unwrap_or("public")
        );
        let store = Self {
            rt: Some(rt),
            pool,
            config,
            owner: uuid::Uuid::new_v4().to_string(),
            opts: PgOptions {
                max_attempts: opts.max_attempts.max(1),
                ..opts
            },
            channel,
            describe,
            advert: Arc::default(),
        };
        store.block_on(async {
            let mut c = store.pool.get().await.map_err(pool_error)?;
            schema::migrate(&mut c, store.opts.schema.as_deref()).await
        })?;
        let recovery = store.reap()?;
        store.start_heartbeat();
        Ok((store, recovery))
    }

    /// This appliance's name as a lease holder (a new one each start).
    pub fn owner(&self) -> &str {
        &self.owner
    }

    fn rt(&self) -> &Runtime {
        self.rt
            .as_ref()
            .expect("the runtime lives as long as the store")
    }

    fn block_on<T>(&self, f: impl Future<Output = T>) -> T {
        self.rt().block_on(f)
    }

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool.get().await.map_err(pool_error)
    }

    async fn notify(&self, c: &impl GenericClient) -> Result<()> {
        c.execute("SELECT pg_notify($1, '')", &[&self.channel])
            .await
            .map_err(pg)?;
        Ok(())
    }

    /// Puts jobs whose lease expired back in the queue (their attempt counts), or
    /// fails them after `max_attempts`.
    pub fn reap(&self) -> Result<Recovery> {
        self.block_on(self.queue().reap())
    }

    fn queue(&self) -> Queue {
        Queue {
            pool: self.pool.clone(),
            max_attempts: self.opts.max_attempts,
            channel: self.channel.clone(),
        }
    }

    /// Renews this appliance's leases every third of the lease, and re-queues jobs
    /// whose lease expired.
    fn start_heartbeat(&self) {
        let pool = self.pool.clone();
        let owner = self.owner.clone();
        let lease = self.opts.lease;
        let queue = self.queue();
        let advert = self.advert.clone();
        self.rt().spawn(async move {
            let mut failing = false;
            loop {
                tokio::time::sleep(lease / 3).await;
                let renewed = async {
                    let c = pool.get().await.map_err(pool_error)?;
                    c.execute(
                        "UPDATE jobs SET lease_until = now() + make_interval(secs => $2)
                         WHERE status = 'running' AND lease_owner = $1",
                        &[&owner, &lease.as_secs_f64()],
                    )
                    .await
                    .map_err(pg)?;
                    let ad = advert.lock().unwrap_or_else(|p| p.into_inner()).clone();
                    if let Some(ad) = ad {
                        publish(&pool, &owner, &ad).await?;
                    }
                    queue.reap().await.map(drop)
                }
                .await;
                match renewed {
                    Ok(()) if failing => {
                        failing = false;
                        tracing::info!("job store heartbeat: the database answers again");
                    }
                    Ok(()) => {}
                    Err(e) if !failing => {
                        failing = true;
                        tracing::warn!("job store heartbeat: {e}; leases are not renewed");
                    }
                    Err(_) => {}
                }
            }
        });
    }
}

/// What re-queueing needs, apart from the store (for the heartbeat task).
struct Queue {
    pool: Pool,
    max_attempts: u32,
    channel: String,
}

const LEASE_EXPIRED: &str = "its appliance stopped renewing the lease (it crashed or was cut off)";

impl Queue {
    /// Re-queues (or fails) jobs whose lease expired.
    async fn reap(&self) -> Result<Recovery> {
        self.release(
            "status = 'running' AND lease_until < now()",
            &[],
            false,
            LEASE_EXPIRED,
        )
        .await
    }

    /// Puts the running jobs that match `filter` back in the queue; `refund`: their
    /// attempt does not count. Fails those out of attempts.
    async fn release(
        &self,
        filter: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
        refund: bool,
        stopped: &str,
    ) -> Result<Recovery> {
        let mut c = self.pool.get().await.map_err(pool_error)?;
        let t = c.transaction().await.map_err(pg)?;
        let rows = t
            .query(
                &format!(
                    "SELECT seq, record::text FROM jobs WHERE {filter}
                     ORDER BY seq FOR UPDATE SKIP LOCKED"
                ),
                params,
            )
            .await
            .map_err(pg)?;
        let mut recovery = Recovery::default();
        if rows.is_empty() {
            return Ok(recovery);
        }
        for row in &rows {
            let mut rec = record(row, 1)?;
            if release(&mut rec, refund, self.max_attempts, stopped) {
                tracing::warn!(job = %rec.id, "{stopped}: out of attempts, failed");
                recovery.failed.push(rec.id.clone());
            } else {
                tracing::warn!(job = %rec.id, "{stopped}: queued again");
                recovery.requeued.push(rec.id.clone());
            }
            put(&t, &rec, None).await?;
        }
        t.execute("SELECT pg_notify($1, '')", &[&self.channel])
            .await
            .map_err(pg)?;
        t.commit().await.map_err(pg)?;
        Ok(recovery)
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // Dropping a runtime may block: never on an async thread.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl JobStore for PgStore {
    fn submit(
        &self,
        job: NewJob,
        idempotency_key: Option<&str>,
        max_queued: u64,
    ) -> Result<(JobRecord, bool)> {
        let input_digest = Sha256::digest(&job.request.input);
        self.block_on(async {
            let mut c = self.client().await?;
            let t = c.transaction().await.map_err(pg)?;
            t.execute("SELECT pg_advisory_xact_lock($1)", &[&SUBMIT_LOCK])
                .await
                .map_err(pg)?;
            if let Some(key) = idempotency_key
                && let Some(row) = t
                    .query_opt(
                        "SELECT j.seq, j.record::text, substring(i.sealed FROM 1 FOR $2)
                         FROM jobs j LEFT JOIN inputs i ON i.seq = j.seq
                         WHERE j.idempotency_key = $1",
                        &[&key, &(DIGEST_LEN as i32)],
                    )
                    .await
                    .map_err(pg)?
            {
                let rec = record(&row, 1)?;
                let stored: Option<Vec<u8>> = row.get(2);
                if !same_request(&rec, &job, stored.as_deref(), &input_digest) {
                    return Err(StoreError::IdempotencyConflict {
                        key: key.to_string(),
                        job: rec.id,
                    });
                }
                return Ok((rec, true));
            }
            let queued: i64 = t
                .query_one("SELECT count(*) FROM jobs WHERE status = 'queued'", &[])
                .await
                .map_err(pg)?
                .get(0);
            if queued as u64 >= max_queued {
                return Err(StoreError::QueueFull { max: max_queued });
            }
            let seq: i64 = t
                .query_one("SELECT nextval(pg_get_serial_sequence('jobs', 'seq'))", &[])
                .await
                .map_err(pg)?
                .get(0);
            let input = seal(&job.request.input);
            let rec = new_record(seq as u64, job, idempotency_key);
            t.execute(
                "INSERT INTO jobs (seq, id, status, priority, route, attempts, idempotency_key,
                                   record, shape, fit_log_rows)
                 VALUES ($1, $2, $3, $4, $5, 0, $6, $7::text::jsonb, $8, $9)",
                &[
                    &seq,
                    &rec.id,
                    &rec.status.name(),
                    &rec.priority,
                    &rec.route,
                    &idempotency_key,
                    &json(&rec)?,
                    &rec.shape(),
                    &i32::from(rec.fit_log_rows()),
                ],
            )
            .await
            .map_err(pg)?;
            t.execute(
                "INSERT INTO inputs (seq, sealed) VALUES ($1, $2)",
                &[&seq, &input],
            )
            .await
            .map_err(pg)?;
            self.notify(&t).await?;
            t.commit().await.map_err(pg)?;
            Ok((rec, false))
        })
    }

    fn get(&self, id: &str) -> Result<JobRecord> {
        self.block_on(async {
            let c = self.client().await?;
            let row = c
                .query_opt("SELECT seq, record::text FROM jobs WHERE id = $1", &[&id])
                .await
                .map_err(pg)?
                .ok_or(StoreError::NotFound)?;
            record(&row, 1)
        })
    }

    fn proof(&self, id: &str) -> Result<(JobRecord, Option<Vec<u8>>)> {
        self.block_on(async {
            let mut c = self.client().await?;
            let row = c
                .query_opt(
                    "SELECT j.seq, j.record::text, p.sealed
                     FROM jobs j LEFT JOIN proofs p ON p.seq = j.seq WHERE j.id = $1",
                    &[&id],
                )
                .await
                .map_err(pg)?
                .ok_or(StoreError::NotFound)?;
            let rec = record(&row, 1)?;
            let sealed: Option<Vec<u8>> = row.get(2);
            let Some(sealed) = sealed else {
                return Ok((rec, None));
            };
            if let Some(p) = unseal(&sealed) {
                return Ok((rec, Some(p.to_vec())));
            }
            // Drop the corrupt proof and queue the job again, unless another request
            // did it already.
            let t = c.transaction().await.map_err(pg)?;
            let row = t
                .query_one(
                    "SELECT j.seq, j.record::text, p.sealed
                     FROM jobs j LEFT JOIN proofs p ON p.seq = j.seq
                     WHERE j.seq = $1 FOR UPDATE OF j",
                    &[&(rec.seq as i64)],
                )
                .await
                .map_err(pg)?;
            let mut now = record(&row, 1)?;
            let sealed: Option<Vec<u8>> = row.get(2);
            if now.status == JobStatus::Succeeded && sealed.is_some_and(|s| unseal(&s).is_none()) {
                t.execute("DELETE FROM proofs WHERE seq = $1", &[&(rec.seq as i64)])
                    .await
                    .map_err(pg)?;
                requeue_corrupt_proof(&mut now);
                put(&t, &now, None).await?;
                self.notify(&t).await?;
            }
            t.commit().await.map_err(pg)?;
            Err(StoreError::ProofCorrupt { id: rec.id })
        })
    }

    fn list(
        &self,
        status: Option<JobStatus>,
        limit: usize,
        before: Option<u64>,
    ) -> Result<(Vec<JobRecord>, bool)> {
        let before = before.map_or(i64::MAX, |b| b.min(i64::MAX as u64) as i64);
        let status = status.map(JobStatus::name);
        self.block_on(async {
            let c = self.client().await?;
            let rows = c
                .query(
                    "SELECT seq, record::text FROM jobs
                     WHERE seq < $1 AND ($2::text IS NULL OR status = $2)
                     ORDER BY seq DESC LIMIT $3",
                    &[&before, &status, &((limit as i64).saturating_add(1))],
                )
                .await
                .map_err(pg)?;
            let more = rows.len() > limit;
            let recs = rows
                .iter()
                .take(limit)
                .map(|r| record(r, 1))
                .collect::<Result<Vec<_>>>()?;
            Ok((recs, more))
        })
    }

    fn claim(&self, who: &Claimant<'_>) -> Result<Option<(JobRecord, Vec<u8>)>> {
        let (shapes, sizes) = who.capacity.columns();
        self.block_on(async {
            let mut c = self.client().await?;
            loop {
                let t = c.transaction().await.map_err(pg)?;
                // A job written before shapes were recorded (shape '') fits any device.
                let Some(row) = t
                    .query_opt(
                        "SELECT j.seq, j.record::text, i.sealed
                         FROM jobs j LEFT JOIN inputs i ON i.seq = j.seq
                         WHERE j.status = 'queued' AND j.route = ANY($1)
                           AND (j.shape = '' OR EXISTS (
                                SELECT 1 FROM unnest($2::text[], $3::int[]) AS cap(shape, size)
                                WHERE cap.shape = j.shape AND j.fit_log_rows <= cap.size))
                         ORDER BY j.priority DESC, j.seq
                         LIMIT 1 FOR UPDATE OF j SKIP LOCKED",
                        &[&who.routes, &shapes, &sizes],
                    )
                    .await
                    .map_err(pg)?
                else {
                    t.rollback().await.map_err(pg)?;
                    return Ok(None);
                };
                let mut rec = record(&row, 1)?;
                let sealed: Option<Vec<u8>> = row.get(2);
                let input = match &sealed {
                    None => Some(Vec::new()),
                    Some(s) => unseal(s).map(<[u8]>::to_vec),
                };
                let Some(input) = input else {
                    fail_corrupt_input(&mut rec);
                    put(&t, &rec, None).await?;
                    t.commit().await.map_err(pg)?;
                    continue;
                };
                start_attempt(&mut rec, who.backend, who.device);
                put(&t, &rec, Some((&self.owner, self.opts.lease))).await?;
                t.commit().await.map_err(pg)?;
                return Ok(Some((rec, input)));
            }
        })
    }

    fn finish(&self, seq: u64, attempt: u32, outcome: Outcome) -> Result<Finished> {
        self.block_on(async {
            let mut c = self.client().await?;
            let t = c.transaction().await.map_err(pg)?;
            let row = t
                .query_opt(
                    "SELECT seq, record::text, lease_owner FROM jobs WHERE seq = $1 FOR UPDATE",
                    &[&(seq as i64)],
                )
                .await
                .map_err(pg)?
                .ok_or_else(|| StoreError::Corrupt(format!("job #{seq} is missing")))?;
            let mut rec = record(&row, 1)?;
            let holder: Option<String> = row.get(2);
            if rec.status != JobStatus::Running
                || rec.attempts != attempt
                || holder.as_deref() != Some(self.owner.as_str())
            {
                t.rollback().await.map_err(pg)?;
                return Ok(Finished::Discarded(rec));
            }
            if let Some(proof) = apply_outcome(&mut rec, outcome) {
                t.execute(
                    "INSERT INTO proofs (seq, sealed) VALUES ($1, $2)
                     ON CONFLICT (seq) DO UPDATE SET sealed = EXCLUDED.sealed",
                    &[&(seq as i64), &seal(&proof)],
                )
                .await
                .map_err(pg)?;
            }
            put(&t, &rec, None).await?;
            if rec.status == JobStatus::Queued {
                self.notify(&t).await?;
            }
            t.commit().await.map_err(pg)?;
            Ok(Finished::Applied(rec))
        })
    }

    fn cancel(&self, id: &str) -> Result<JobRecord> {
        self.block_on(async {
            let mut c = self.client().await?;
            let t = c.transaction().await.map_err(pg)?;
            let row = t
                .query_opt(
                    "SELECT seq, record::text FROM jobs WHERE id = $1 FOR UPDATE",
                    &[&id],
                )
                .await
                .map_err(pg)?
                .ok_or(StoreError::NotFound)?;
            let mut rec = record(&row, 1)?;
            match rec.status {
                JobStatus::Cancelled => return Ok(rec),
                JobStatus::Succeeded | JobStatus::Failed => {
                    return Err(StoreError::NotCancellable {
                        id: rec.id,
                        status: rec.status,
                    });
                }
                JobStatus::Queued | JobStatus::Running => {}
            }
            rec.status = JobStatus::Cancelled;
            rec.finished_ms = Some(super::now_ms());
            put(&t, &rec, None).await?;
            t.commit().await.map_err(pg)?;
            Ok(rec)
        })
    }

    fn counts(&self) -> Result<(Vec<(JobStatus, u64)>, u64)> {
        self.block_on(async {
            let c = self.client().await?;
            let rows = c
                .query("SELECT status, count(*) FROM jobs GROUP BY status", &[])
                .await
                .map_err(pg)?;
            let mut out: Vec<(JobStatus, u64)> = JobStatus::ALL.iter().map(|s| (*s, 0)).collect();
            for row in rows {
                let status: String = row.get(0);
                let n: i64 = row.get(1);
                if let Some(slot) = out.iter_mut().find(|(s, _)| s.name() == status) {
                    slot.1 = n as u64;
                }
            }
            let depth = out
                .iter()
                .find(|(s, _)| *s == JobStatus::Queued)
                .map_or(0, |(_, n)| *n);
            Ok((out, depth))
        })
    }

    fn check(&self) -> Result<()> {
        self.block_on(async {
            let c = self.client().await?;
            c.query_one("SELECT 1 FROM proofbox_schema LIMIT 1", &[])
                .await
                .map_err(pg)?;
            Ok(())
        })
    }

    fn requeue_running(&self, refund: bool) -> Result<Recovery> {
        let queue = self.queue();
        self.block_on(queue.release(
            "status = 'running' AND lease_owner = $1",
            &[&self.owner],
            refund,
            "the appliance stopped",
        ))
    }

    fn watch(&self, wake: Wake) {
        let config = self.config.clone();
        let channel = self.channel.clone();
        self.rt().spawn(listen(config, channel, wake));
    }

    fn idle_poll(&self) -> Duration {
        IDLE_POLL
    }

    fn advertise(&self, ad: Advert) {
        *self.advert.lock().unwrap_or_else(|p| p.into_inner()) = Some(ad.clone());
        if let Err(e) = self.block_on(publish(&self.pool, &self.owner, &ad)) {
            tracing::warn!(
                "advertising this appliance's devices: {e}; retried at the next heartbeat"
            );
        }
    }

    fn fleet(&self) -> Result<Option<Vec<ApplianceAd>>> {
        self.block_on(async {
            let c = self.client().await?;
            let rows = c
                .query(
                    "SELECT advert::text,
                            (extract(epoch FROM now() - seen_at) * 1000)::bigint
                     FROM appliances
                     WHERE seen_at > now() - make_interval(secs => $1)
                     ORDER BY started_at, owner",
                    &[&self.opts.lease.as_secs_f64()],
                )
                .await
                .map_err(pg)?;
            rows.iter()
                .map(|row| {
                    let text: String = row.get(0);
                    let ago: i64 = row.get(1);
                    let mut ad: ApplianceAd = serde_json::from_str(&text).map_err(|e| {
                        StoreError::Corrupt(format!("an appliance's advertisement: {e}"))
                    })?;
                    ad.seen_ms_ago = ago.max(0) as u64;
                    Ok(ad)
                })
                .collect::<Result<Vec<_>>>()
                .map(Some)
        })
    }

    fn appliance(&self) -> String {
        self.owner.clone()
    }

    fn withdraw(&self) -> Result<()> {
        self.advert.lock().unwrap_or_else(|p| p.into_inner()).take();
        self.block_on(async {
            let c = self.client().await?;
            c.execute("DELETE FROM appliances WHERE owner = $1", &[&self.owner])
                .await
                .map_err(pg)?;
            Ok(())
        })
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }
}

/// Writes (or renews) `owner`'s advertisement, and forgets appliances silent for ten
/// leases or more.
async fn publish(pool: &Pool, owner: &str, ad: &Advert) -> Result<()> {
    let mut ad = ad();
    ad.appliance = owner.to_string();
    let text = serde_json::to_string(&ad).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let c = pool.get().await.map_err(pool_error)?;
    c.execute(
        "INSERT INTO appliances (owner, advert) VALUES ($1, $2::text::jsonb)
         ON CONFLICT (owner) DO UPDATE SET advert = EXCLUDED.advert, seen_at = now()",
        &[&owner, &text],
    )
    .await
    .map_err(pg)?;
    c.execute(
        "DELETE FROM appliances WHERE seen_at < now() - interval '1 hour'",
        &[],
    )
    .await
    .map_err(pg)?;
    Ok(())
}

/// Listens on `channel` and calls `wake` on every notification, connecting again
/// (and waking, since notifications may have been missed) after a lost connection.
async fn listen(config: tokio_postgres::Config, channel: String, wake: Wake) {
    let mut failing = false;
    loop {
        match config.connect(NoTls).await {
            Ok((client, mut conn)) => {
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                let driver = tokio::spawn(async move {
                    loop {
                        match std::future::poll_fn(|cx| conn.poll_message(cx)).await {
                            Some(Ok(tokio_postgres::AsyncMessage::Notification(_))) => {
                                if tx.send(()).is_err() {
                                    return;
                                }
                            }
                            Some(Ok(_)) => {}
                            Some(Err(_)) | None => return,
                        }
                    }
                });
                let quoted = format!("LISTEN \"{}\"", channel.replace('"', "\"\""));
                if client.batch_execute(&quoted).await.is_ok() {
                    if failing {
                        tracing::info!("job notifications: listening again");
                        failing = false;
                    }
                    wake();
                    while rx.recv().await.is_some() {
                        wake();
                    }
                }
                driver.abort();
            }
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(
                    "job notifications: {e}; idle workers look at the queue by themselves until the database answers"
                );
            }
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests;
