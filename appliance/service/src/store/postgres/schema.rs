//! The PostgreSQL store's schema: versioned migrations, applied at start-up in one
//! transaction under an advisory lock, so that appliances starting at once apply each
//! migration exactly once (the others wait, then find it applied).
//!
//! `proofbox_schema` records the versions applied. A database with a version newer
//! than this build knows is refused: an older appliance must not write to it.

use tokio_postgres::Client;

use super::pg;
use crate::store::{Result, StoreError};

/// The advisory lock key held while migrating (`pg_advisory_xact_lock`).
const MIGRATE_LOCK: i64 = 0x7072_6f6f_6662_0002;

/// The migrations, in order: version, then SQL.
pub const MIGRATIONS: &[(i32, &str)] = &[
    (
        1,
        "CREATE TABLE jobs (
         seq bigserial PRIMARY KEY,
         id text NOT NULL UNIQUE,
         status text NOT NULL,
         priority integer NOT NULL,
         route text NOT NULL,
         attempts integer NOT NULL DEFAULT 0,
         idempotency_key text UNIQUE,
         lease_owner text,
         lease_until timestamptz,
         record jsonb NOT NULL
     );
     CREATE INDEX jobs_queue ON jobs (priority DESC, seq) WHERE status = 'queued';
     CREATE INDEX jobs_status ON jobs (status, seq);
     CREATE INDEX jobs_leases ON jobs (lease_until) WHERE status = 'running';
     CREATE TABLE inputs (
         seq bigint PRIMARY KEY REFERENCES jobs (seq) ON DELETE CASCADE,
         sealed bytea NOT NULL
     );
     CREATE TABLE proofs (
         seq bigint PRIMARY KEY REFERENCES jobs (seq) ON DELETE CASCADE,
         sealed bytea NOT NULL
     );",
    ),
    (
        2,
        // A job's shape and size, for claims that fit the claiming device; every
        // appliance's advertisement (its devices and the largest job each takes).
        "ALTER TABLE jobs ADD COLUMN shape text NOT NULL DEFAULT '',
                         ADD COLUMN fit_log_rows integer NOT NULL DEFAULT 0;
         CREATE TABLE appliances (
             owner text PRIMARY KEY,
             advert jsonb NOT NULL,
             started_at timestamptz NOT NULL DEFAULT now(),
             seen_at timestamptz NOT NULL DEFAULT now()
         );",
    ),
];

/// The newest schema version this build knows.
pub fn latest() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

/// Creates `schema` if given (the connection's `search_path` names it), then applies
/// every migration not applied yet, in one transaction under `MIGRATE_LOCK`.
/// Returns the versions applied now.
pub async fn migrate(c: &mut Client, schema: Option<&str>) -> Result<Vec<i32>> {
    let t = c.transaction().await.map_err(pg)?;
    t.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATE_LOCK])
        .await
        .map_err(pg)?;
    if let Some(s) = schema {
        t.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS \"{s}\""))
            .await
            .map_err(pg)?;
    }
    t.batch_execute(
        "CREATE TABLE IF NOT EXISTS proofbox_schema (
             version integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await
    .map_err(pg)?;
    let current: i32 = t
        .query_one("SELECT coalesce(max(version), 0) FROM proofbox_schema", &[])
        .await
        .map_err(pg)?
        .get(0);
    if current > latest() {
        return Err(StoreError::Database {
            reason: format!(
                "the database holds schema version {current}, written by a newer proofbox \
                 (this one knows up to {}); refusing to use it",
                latest()
            ),
        });
    }
    let mut applied = Vec::new();
    for (version, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        t.batch_execute(sql).await.map_err(pg)?;
        t.execute(
            "INSERT INTO proofbox_schema (version) VALUES ($1)",
            &[version],
        )
        .await
        .map_err(pg)?;
        applied.push(*version);
    }
    t.commit().await.map_err(pg)?;
    if !applied.is_empty() {
        tracing::info!("job database: schema migrations {applied:?} applied");
    }
    Ok(applied)
}
