//! The blocks and proofs the replica refused (the sequencer's detected lies), kept in
//! `DATA_DIR/refusals.json` so that `proofbox_replicaStatus` still lists them after a
//! restart.
//!
//! - The file is JSON, `{"version":1,"refused":[Refusal, ...]}`, rewritten atomically
//!   ([`crate::snapshot::write_atomic`]) at each refusal.
//! - The same refusal again (same block, batch and reason: the same forged data after
//!   a re-sync) is counted in its entry (`count`), not listed again.
//! - At most [`MAX_REFUSALS`] entries are kept; the oldest go first.
//! - A file that does not parse is an error at start (it is never overwritten).

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::snapshot::write_atomic;

/// The version written in the file; others are refused.
pub const REFUSALS_VERSION: u16 = 1;

/// The most refusals kept.
pub const MAX_REFUSALS: usize = 1000;

const FILE: &str = "refusals.json";

/// A block or a proof the replica refused, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Refusal {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<u64>,
    pub reason: String,
    /// How many times it was refused (each re-sync brings the same data again).
    #[serde(default = "one")]
    pub count: u64,
    /// When it was last refused, in milliseconds since the Unix epoch.
    #[serde(default)]
    pub last_ms: u64,
}

fn one() -> u64 {
    1
}

impl Refusal {
    /// A first refusal, now.
    pub fn new(block: Option<u64>, batch: Option<u64>, reason: String) -> Self {
        Self {
            block,
            batch,
            reason,
            count: 1,
            last_ms: now_ms(),
        }
    }

    fn same(&self, other: &Refusal) -> bool {
        self.block == other.block && self.batch == other.batch && self.reason == other.reason
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[derive(Debug, thiserror::Error)]
pub enum RefusalsError {
    #[error("refusals {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("refusals {path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

#[derive(Serialize, Deserialize)]
struct File {
    version: u16,
    refused: Vec<Refusal>,
}

/// The refusals, in the order first seen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Refusals {
    list: Vec<Refusal>,
}

impl Refusals {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(FILE)
    }

    pub fn list(&self) -> &[Refusal] {
        &self.list
    }

    /// Adds `r`, or counts it in the entry of the same refusal; returns the entry.
    pub fn add(&mut self, r: Refusal) -> &Refusal {
        if let Some(i) = self.list.iter().position(|x| x.same(&r)) {
            let mut e = self.list.remove(i);
            e.count += r.count;
            e.last_ms = r.last_ms;
            self.list.push(e);
        } else {
            self.list.push(r);
            if self.list.len() > MAX_REFUSALS {
                let extra = self.list.len() - MAX_REFUSALS;
                self.list.drain(..extra);
            }
        }
        self.list.last().expect("just pushed")
    }

    /// Writes the list to `dir` atomically.
    pub fn save(&self, dir: &Path) -> Result<(), RefusalsError> {
        let path = Self::path(dir);
        let body = serde_json::to_vec_pretty(&File {
            version: REFUSALS_VERSION,
            refused: self.list.clone(),
        })
        .map_err(|e| RefusalsError::Corrupt {
            path: path.clone(),
            reason: format!("encoding: {e}"),
        })?;
        write_atomic(&path, &body).map_err(|source| RefusalsError::Io { path, source })
    }

    /// Reads the list in `dir`; none if there is no file.
    pub fn load(dir: &Path) -> Result<Self, RefusalsError> {
        let path = Self::path(dir);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => return Err(RefusalsError::Io { path, source }),
        };
        let file: File = serde_json::from_slice(&bytes).map_err(|e| RefusalsError::Corrupt {
            path: path.clone(),
            reason: format!("decoding: {e}"),
        })?;
        if file.version != REFUSALS_VERSION {
            return Err(RefusalsError::Corrupt {
                path,
                reason: format!("version {}, expected {REFUSALS_VERSION}", file.version),
            });
        }
        Ok(Self { list: file.refused })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_round_trip_and_repeats_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Refusals::load(dir.path()).unwrap(), Refusals::default());
        let mut r = Refusals::default();
        r.add(Refusal::new(Some(3), None, "diff commitment".into()));
        r.add(Refusal::new(Some(5), Some(1), "bits".into()));
        let again = r.add(Refusal::new(Some(3), None, "diff commitment".into()));
        assert_eq!(again.count, 2);
        assert_eq!(r.list().len(), 2);
        assert_eq!(r.list()[1].block, Some(3), "the latest last");
        r.save(dir.path()).unwrap();
        assert_eq!(Refusals::load(dir.path()).unwrap(), r);
        let mut name = FILE.to_string();
        name.push_str(".tmp");
        assert!(!dir.path().join(name).exists());
    }

    #[test]
    fn the_list_is_bounded_and_a_damaged_file_is_an_error() {
        let mut r = Refusals::default();
        for i in 0..(MAX_REFUSALS as u64 + 5) {
            r.add(Refusal::new(Some(i), None, "x".into()));
        }
        assert_eq!(r.list().len(), MAX_REFUSALS);
        assert_eq!(r.list()[0].block, Some(5));
        let dir = tempfile::tempdir().unwrap();
        fs::write(Refusals::path(dir.path()), b"{\"version\":1,\"refused\":[").unwrap();
        let err = Refusals::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("decoding"), "{err}");
        fs::write(
            Refusals::path(dir.path()),
            b"{\"version\":2,\"refused\":[]}",
        )
        .unwrap();
        let err = Refusals::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("version 2"), "{err}");
    }
}
