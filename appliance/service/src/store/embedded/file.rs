//! The store file: checks at open (empty, foreign, newer layouts), the `init` move
//! aside, and the upgrade of older layouts.

use std::path::{Path, PathBuf};

use redb::{Database, ReadableTable, TableHandle};

use super::{META, Result, SCHEMA, StoreError, Tables, now_ms, recount, seal};

/// Moves a file that is no job store out of the way (`--init`).
pub(super) fn set_aside(path: &Path) -> Result<()> {
    let mut aside = path.as_os_str().to_owned();
    aside.push(format!(".foreign-{}", now_ms()));
    std::fs::rename(path, &aside).map_err(|e| StoreError::Db(redb::Error::Io(e)))?;
    tracing::warn!(
        "moved {} aside to {} (init); creating a new job store",
        path.display(),
        Path::new(&aside).display()
    );
    Ok(())
}

/// Creates the tables of a new store, upgrades an older layout, and refuses a database
/// that is not a job store (`Refused` with "foreign" in the reason).
pub(super) fn prepare(db: &Database) -> Result<()> {
    let txn = db.begin_write()?;
    let names: Vec<String> = txn.list_tables()?.map(|t| t.name().to_string()).collect();
    let fresh = names.is_empty();
    if !fresh && !names.iter().any(|n| n == META.name()) {
        return Err(StoreError::Refused {
            path: PathBuf::new(),
            reason: format!(
                "a foreign redb database (tables {}), not a job store",
                names.join(", ")
            ),
        });
    }
    {
        let mut t = Tables::open(&txn)?;
        match t.meta.get("schema")?.map(|g| g.value()) {
            Some(SCHEMA) => {}
            Some(v) if v > SCHEMA => {
                return Err(StoreError::Refused {
                    path: PathBuf::new(),
                    reason: format!(
                        "written by a newer proofbox (layout {v}, this one reads {SCHEMA})"
                    ),
                });
            }
            _ if fresh => {}
            _ => {
                // Layout 1: inputs and proofs without digests.
                let mut n = 0;
                for table in [&mut t.inputs, &mut t.proofs] {
                    let mut sealed = Vec::new();
                    for item in table.iter()? {
                        let (k, v) = item?;
                        sealed.push((k.value(), seal(v.value())));
                    }
                    n += sealed.len();
                    for (k, v) in sealed {
                        table.insert(k, v.as_slice())?;
                    }
                }
                tracing::info!("job store upgraded: checksums added to {n} inputs and proofs");
            }
        }
        t.meta.insert("schema", SCHEMA)?;
        if t.meta.get("counts")?.is_none() {
            recount(&mut t)?;
        }
    }
    txn.commit()?;
    Ok(())
}

/// Opens the store file at `path`, creating a missing one; refuses a file that is no
/// job store unless `init` ([`super::Store::open_with`]).
pub(super) fn open_db(path: &Path, init: bool) -> Result<Database> {
    let refused = |reason: String| StoreError::Refused {
        path: path.to_path_buf(),
        reason,
    };
    let db = match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Database::create(path)?,
        Err(e) => return Err(StoreError::Db(redb::Error::Io(e))),
        Ok(m) if m.len() == 0 => {
            if !init {
                return Err(refused(
                    "the file is empty (0 bytes), not a job store".into(),
                ));
            }
            set_aside(path)?;
            Database::create(path)?
        }
        Ok(_) => match Database::create(path) {
            Ok(db) => db,
            // redb reports a file that is no redb database as invalid data.
            Err(redb::DatabaseError::Storage(redb::StorageError::Io(e)))
                if e.kind() != std::io::ErrorKind::InvalidData =>
            {
                return Err(StoreError::Db(redb::Error::Io(e)));
            }
            Err(e @ redb::DatabaseError::DatabaseAlreadyOpen) => return Err(e.into()),
            Err(e) if !init => {
                return Err(refused(format!("not a redb database, or damaged: {e}")));
            }
            Err(_) => {
                set_aside(path)?;
                Database::create(path)?
            }
        },
    };
    let db = match prepare(&db) {
        Ok(()) => db,
        Err(StoreError::Refused { reason, .. }) if init && reason.contains("foreign") => {
            drop(db);
            set_aside(path)?;
            let db = Database::create(path)?;
            prepare(&db)?;
            db
        }
        Err(StoreError::Refused { reason, .. }) => return Err(refused(reason)),
        Err(e) => return Err(e),
    };
    Ok(db)
}
