//! The proven state on disk, so a restart needs no replay from genesis.
//!
//! `DATA_DIR/proven.snapshot` holds `[32 bytes: SHA-256 of the rest][postcard of
//! (SNAPSHOT_VERSION, Snapshot)]`. It is written to `proven.snapshot.tmp`, fsynced,
//! renamed over the old one and the directory fsynced, so a crash leaves either the
//! old snapshot or the new one. At start it is decoded, the state is rebuilt from its
//! entries and the rebuilt root must be the snapshot's proven root.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use alloy_primitives::{Address, B256, Bytes, U256};
use proofbox_chain_types::{AccountDiff, Block, Root, StateDiff};
use proofbox_sequencer::state::MemState;
use proofbox_state::{StateKey, StateValue};
use revm::primitives::KECCAK_EMPTY;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// The version written in every snapshot; others are refused.
pub const SNAPSHOT_VERSION: u16 = 1;

const FILE: &str = "proven.snapshot";

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("snapshot {path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

/// Every leaf of a state and the code its accounts point to: enough to rebuild it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StateImage {
    pub entries: Vec<(StateKey, StateValue)>,
    pub codes: Vec<Bytes>,
}

impl StateImage {
    /// The leaves of `state`'s tree, in key order, and its contracts' code.
    pub fn capture(state: &MemState) -> Self {
        let mut entries: Vec<(StateKey, StateValue)> =
            state.tree().iter().map(|(k, v)| (*k, *v)).collect();
        entries.sort_by_key(|e| e.0);
        let mut codes = BTreeMap::new();
        for (k, v) in &entries {
            if let (StateKey::Account(a), StateValue::Account(info)) = (k, v)
                && info.code_hash != KECCAK_EMPTY
                && let Some(code) = state.code(a)
            {
                codes.insert(info.code_hash, code.original_bytes());
            }
        }
        Self {
            entries,
            codes: codes.into_values().collect(),
        }
    }

    /// Rebuilds the state: one diff that creates every account with its code and
    /// slots. Fails on an image no diff can produce (a slot of an absent account).
    pub fn restore(&self) -> Result<MemState, String> {
        let codes: BTreeMap<B256, Bytes> = self
            .codes
            .iter()
            .map(|c| (proofbox_chain_types::code_hash(c), c.clone()))
            .collect();
        let mut accounts: BTreeMap<Address, AccountDiff> = BTreeMap::new();
        let mut slots: BTreeMap<Address, Vec<(U256, U256)>> = BTreeMap::new();
        for (k, v) in &self.entries {
            match (k, v) {
                (StateKey::Account(a), StateValue::Account(info)) => {
                    let code = if info.code_hash == KECCAK_EMPTY {
                        None
                    } else {
                        Some(codes.get(&info.code_hash).cloned().ok_or_else(|| {
                            format!("no code for account {a} (code hash {})", info.code_hash)
                        })?)
                    };
                    accounts.insert(
                        *a,
                        AccountDiff {
                            address: *a,
                            nonce: info.nonce,
                            balance: info.balance,
                            code_hash: info.code_hash,
                            code,
                            storage: vec![],
                            destroyed: false,
                        },
                    );
                }
                (StateKey::Storage { address, slot }, StateValue::Storage(value)) => {
                    slots.entry(*address).or_default().push((*slot, *value));
                }
                _ => return Err(format!("key {k:?} holds a value of the other kind")),
            }
        }
        for (a, mut s) in slots {
            let acc = accounts
                .get_mut(&a)
                .ok_or_else(|| format!("storage of account {a}, which is absent"))?;
            s.sort();
            acc.storage = s;
        }
        let diff = StateDiff::new(accounts.into_values().collect()).map_err(|e| e.to_string())?;
        let mut state = MemState::new();
        state.apply(&diff).map_err(|e| e.to_string())?;
        Ok(state)
    }
}

/// What the replica believes after its newest verified batch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    /// The proven head's block (its hash is what the next block's parent must be).
    pub block: Block,
    /// The next batch index to verify.
    pub next_batch: u64,
    /// The proven root (the block's post-state root).
    pub root: Root,
    pub state: StateImage,
}

/// Writes `bytes` to `path` so that a crash leaves the old file or the new one: a
/// temporary file beside it (`<name>.tmp`), fsynced, renamed over `path`, and the
/// directory fsynced. Creates the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let tmp = dir.join(name);
    {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

impl Snapshot {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(FILE)
    }

    /// Writes the snapshot atomically (temporary file, fsync, rename, fsync of the
    /// directory).
    pub fn save(&self, dir: &Path) -> Result<(), SnapshotError> {
        let path = Self::path(dir);
        let io = |source| SnapshotError::Io {
            path: path.clone(),
            source,
        };
        let body =
            postcard::to_stdvec(&(SNAPSHOT_VERSION, self)).map_err(|e| SnapshotError::Corrupt {
                path: path.clone(),
                reason: format!("encoding: {e}"),
            })?;
        let mut bytes = Sha256::digest(&body).to_vec();
        bytes.extend_from_slice(&body);
        write_atomic(&path, &bytes).map_err(io)
    }

    /// Reads the snapshot in `dir`, if there is one, and rebuilds its state, checking
    /// the root.
    pub fn load(dir: &Path) -> Result<Option<(Snapshot, MemState)>, SnapshotError> {
        let path = Self::path(dir);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(SnapshotError::Io { path, source }),
        };
        let corrupt = |reason: String| SnapshotError::Corrupt {
            path: path.clone(),
            reason,
        };
        if bytes.len() < 32 || Sha256::digest(&bytes[32..])[..] != bytes[..32] {
            return Err(corrupt("checksum mismatch".into()));
        }
        let (version, snap): (u16, Snapshot) =
            postcard::from_bytes(&bytes[32..]).map_err(|e| corrupt(format!("decoding: {e}")))?;
        if version != SNAPSHOT_VERSION {
            return Err(corrupt(format!(
                "version {version}, expected {SNAPSHOT_VERSION}"
            )));
        }
        let state = snap.state.restore().map_err(corrupt)?;
        if state.root() != snap.root || snap.block.header.post_state_root != snap.root {
            return Err(corrupt(format!(
                "the state's root {} is not the proven root {} of block {}",
                state.root(),
                snap.root,
                snap.block.number()
            )));
        }
        Ok(Some((snap, state)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::keccak256;

    fn state() -> (MemState, Block) {
        let code = Bytes::from_static(&[0x60, 0x00, 0x00]);
        let accounts = vec![
            AccountDiff {
                address: Address::repeat_byte(1),
                nonce: 3,
                balance: U256::from(1000),
                code_hash: KECCAK_EMPTY,
                code: None,
                storage: vec![],
                destroyed: false,
            },
            AccountDiff {
                address: Address::repeat_byte(2),
                nonce: 1,
                balance: U256::ZERO,
                code_hash: keccak256(&code),
                code: Some(code),
                storage: vec![(U256::from(1), U256::from(42)), (U256::from(7), U256::MAX)],
                destroyed: false,
            },
        ];
        let diff = StateDiff::new(accounts).unwrap();
        let mut s = MemState::new();
        let root = s.apply(&diff).unwrap();
        let core = proofbox_sequencer::chain::genesis(&[], 30_000_000, 1).unwrap();
        let mut block = core.chain.head_block().as_ref().clone();
        block.header.post_state_root = root;
        (s, block)
    }

    #[test]
    fn a_snapshot_round_trips_to_the_same_state_and_root() {
        let (s, block) = state();
        let dir = tempfile::tempdir().unwrap();
        let snap = Snapshot {
            block,
            next_batch: 5,
            root: s.root(),
            state: StateImage::capture(&s),
        };
        snap.save(dir.path()).unwrap();
        let (back, restored) = Snapshot::load(dir.path()).unwrap().unwrap();
        assert_eq!(back.next_batch, 5);
        assert_eq!(restored.root(), s.root());
        let a = Address::repeat_byte(2);
        assert_eq!(restored.storage_at(&a, &U256::from(7)), U256::MAX);
        assert_eq!(restored.code(&a), s.code(&a));
        assert_eq!(restored.nonce(&Address::repeat_byte(1)), 3);
        assert!(
            !Snapshot::path(dir.path())
                .with_extension("snapshot.tmp")
                .exists()
        );
    }

    #[test]
    fn a_damaged_or_missing_snapshot_is_reported_not_loaded() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Snapshot::load(dir.path()).unwrap().is_none());
        let (s, block) = state();
        let snap = Snapshot {
            block,
            next_batch: 0,
            root: s.root(),
            state: StateImage::capture(&s),
        };
        snap.save(dir.path()).unwrap();
        let path = Snapshot::path(dir.path());
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(&path, &bytes).unwrap();
        let err = Snapshot::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("checksum"), "{err}");
        // A snapshot whose state is not its root.
        let wrong = Snapshot {
            root: Root::from_digest(&proofbox_state::StateTree::empty_root()),
            ..snap
        };
        wrong.save(dir.path()).unwrap();
        let err = Snapshot::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("is not the proven root"), "{err}");
    }
}
