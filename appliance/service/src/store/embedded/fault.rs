//! Storage faults: a disk that fills up, a file system remounted read-only.
//!
//! After one I/O error `redb` refuses every later operation (`PreviousIo`) until the
//! database is closed and opened again. So the store keeps its `Database` behind a
//! lock: an operation that fails with an I/O error closes it and marks the store
//! faulted ([`StoreError::Unavailable`], which the API answers with 503
//! `store_unavailable`); the next operation, at most once a second, tries to open it
//! again. Reopening first writes and syncs a probe file of [`PROBE_BYTES`] next to the
//! store (a disk that is still full or read-only fails it), then opens the database
//! (`redb` repairs it from the last durable commit) and commits one write transaction.
//! Every commit was durable before it was acknowledged, so nothing acknowledged is
//! lost; the operation that failed was not acknowledged.

use std::io::Write;
use std::path::Path;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use redb::Database;

use super::{META, Result, Store, StoreError};

/// The size of the probe file written before reopening a faulted store.
pub const PROBE_BYTES: usize = 64 * 1024;
/// The least time between two attempts to reopen a faulted store.
pub const REOPEN_INTERVAL: Duration = Duration::from_secs(1);

/// The open database, or why there is none.
pub(super) struct Slot {
    db: Option<Database>,
    /// Counts reopenings, so that a fault seen on an old database does not close a
    /// new one.
    generation: u64,
    fault: Option<String>,
    /// The latest attempt to reopen.
    last_reopen: Option<Instant>,
}

impl Slot {
    pub(super) fn new(db: Database) -> RwLock<Self> {
        RwLock::new(Self {
            db: Some(db),
            generation: 0,
            fault: None,
            last_reopen: None,
        })
    }
}

/// The reason, when `e` says the storage failed (rather than a request or the data).
fn io_fault(e: &StoreError) -> Option<String> {
    match e {
        StoreError::Db(redb::Error::Io(io)) => Some(io.to_string()),
        StoreError::Db(redb::Error::PreviousIo) => Some("an earlier I/O error".into()),
        StoreError::Db(redb::Error::DatabaseClosed) => Some("the database was closed".into()),
        _ => None,
    }
}

/// Writes, syncs and removes a probe file next to `path`.
fn probe(path: &Path) -> std::io::Result<()> {
    let mut p = path.as_os_str().to_owned();
    p.push(".probe");
    let p = std::path::PathBuf::from(p);
    let result = std::fs::File::create(&p).and_then(|mut f| {
        f.write_all(&[0u8; PROBE_BYTES])?;
        f.sync_all()
    });
    let _ = std::fs::remove_file(&p);
    result
}

impl Store {
    /// Runs `f` on the open database. An I/O error closes it and marks the store
    /// faulted; while faulted, the answer is [`StoreError::Unavailable`] (after an
    /// attempt to reopen, at most one per [`REOPEN_INTERVAL`]).
    pub(super) fn with_db<T>(&self, f: impl FnOnce(&Database) -> Result<T>) -> Result<T> {
        let (result, generation) = {
            let slot = self.open_slot()?;
            let db = slot
                .db
                .as_ref()
                .expect("open_slot returns an open database");
            (f(db), slot.generation)
        };
        match result {
            Err(e) => match io_fault(&e) {
                Some(reason) => Err(self.mark_faulted(generation, reason)),
                None => Err(e),
            },
            ok => ok,
        }
    }

    /// Whether the store is faulted now, and why.
    pub fn fault(&self) -> Option<String> {
        self.read_slot().fault.clone()
    }

    fn read_slot(&self) -> RwLockReadGuard<'_, Slot> {
        self.slot.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_slot(&self) -> RwLockWriteGuard<'_, Slot> {
        self.slot.write().unwrap_or_else(|p| p.into_inner())
    }

    fn unavailable(reason: &str) -> StoreError {
        StoreError::Unavailable {
            reason: reason.to_string(),
        }
    }

    /// The slot with an open database, reopening a faulted one if it is time to try.
    fn open_slot(&self) -> Result<RwLockReadGuard<'_, Slot>> {
        let slot = self.read_slot();
        if slot.db.is_some() {
            return Ok(slot);
        }
        drop(slot);
        self.try_reopen()?;
        let slot = self.read_slot();
        match &slot.db {
            Some(_) => Ok(slot),
            None => Err(Self::unavailable(slot.fault.as_deref().unwrap_or("closed"))),
        }
    }

    /// Closes the database of `generation` (if it is still the open one) and records
    /// the fault; the error to answer.
    fn mark_faulted(&self, generation: u64, reason: String) -> StoreError {
        let mut slot = self.write_slot();
        if slot.generation == generation && slot.db.is_some() {
            tracing::error!(
                "job store {}: I/O error ({reason}): refusing jobs until the store can be reopened",
                self.path.display()
            );
            slot.db = None;
            slot.fault = Some(reason.clone());
            // The next operation may try to reopen at once (the error may be gone).
            slot.last_reopen = None;
        }
        Self::unavailable(slot.fault.as_deref().unwrap_or(&reason))
    }

    /// Tries to reopen a faulted store, unless another attempt was made less than
    /// [`REOPEN_INTERVAL`] ago.
    fn try_reopen(&self) -> Result<()> {
        let mut slot = self.write_slot();
        if slot.db.is_some() {
            return Ok(());
        }
        let reason = slot.fault.clone().unwrap_or_else(|| "closed".into());
        if slot
            .last_reopen
            .is_some_and(|t| t.elapsed() < REOPEN_INTERVAL)
        {
            return Err(Self::unavailable(&reason));
        }
        slot.last_reopen = Some(Instant::now());
        let reopened = probe(&self.path)
            .map_err(|e| format!("the disk still refuses writes: {e}"))
            .and_then(|()| {
                let db = Database::open(&self.path).map_err(|e| format!("reopening: {e}"))?;
                let txn = db.begin_write().map_err(|e| format!("reopening: {e}"))?;
                txn.open_table(META)
                    .map_err(|e| format!("reopening: {e}"))?;
                txn.commit().map_err(|e| format!("reopening: {e}"))?;
                Ok(db)
            });
        match reopened {
            Ok(db) => {
                tracing::warn!(
                    "job store {}: reopened after the I/O error ({reason}); taking jobs again",
                    self.path.display()
                );
                slot.db = Some(db);
                slot.generation += 1;
                slot.fault = None;
                Ok(())
            }
            Err(why) => {
                tracing::debug!("job store {}: still faulted: {why}", self.path.display());
                Err(Self::unavailable(&format!("{reason}; {why}")))
            }
        }
    }
}
