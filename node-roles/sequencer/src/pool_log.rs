//! The pool journal: `pool.log` in the data directory, the block log's framing
//! ([`crate::log`]), one record per change of the pool that must survive a crash.
//!
//! - An admitted transaction's EIP-2718 bytes are appended and `fdatasync`ed before
//!   its hash is returned to the client. Concurrent submissions share one sync
//!   (group commit): the first waiter writes and syncs everything queued so far,
//!   the others wait for it.
//! - A pooled transaction that execution refused is recorded as dropped, so that it
//!   does not come back at restart.
//! - Mined transactions are not recorded: at replay their nonces are below their
//!   senders' and admission refuses them. When such dead records dominate, the file is
//!   rewritten with the pending transactions only (temporary file, sync, rename, sync
//!   of the directory), so it stays about the size of the pool.
//! - At start the records are replayed in order through the pool's admission (after
//!   the block log), so replacements and the pool's rules hold as they did.
//!
//! A torn last record is cut off at open; a bad record followed by more data is
//! refused (the block log's rules).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

use alloy_primitives::{B256, Bytes};
use serde::{Deserialize, Serialize};

use crate::log::{HEADER, LogError, RecordFile, frame};

/// The version byte before every record.
pub const POOL_JOURNAL_VERSION: u8 = 1;

/// The journal's file name in the data directory.
pub const FILE_NAME: &str = "pool.log";

/// The journal is rewritten after a block once it holds at least this many records
/// and more than twice as many as there are pending transactions.
pub const COMPACT_MIN_RECORDS: u64 = 1024;

/// One change of the pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Entry {
    /// A transaction admitted into the pool: its EIP-2718 bytes.
    Added(Bytes),
    /// A pooled transaction dropped because execution refused it.
    Dropped(B256),
}

impl Entry {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![POOL_JOURNAL_VERSION];
        postcard::to_io(self, &mut out).expect("writing to a Vec cannot fail");
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        match bytes.split_first() {
            Some((&POOL_JOURNAL_VERSION, rest)) => {
                postcard::from_bytes(rest).map_err(|e| e.to_string())
            }
            Some((v, _)) => Err(format!(
                "pool journal record version {v} (this build reads {POOL_JOURNAL_VERSION})"
            )),
            None => Err("an empty pool journal record".into()),
        }
    }
}

/// The journal could not be written. It is then closed for good: every later
/// submission is refused with this error until the sequencer restarts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the pool journal {path} failed: {reason}")]
pub struct JournalError {
    pub path: PathBuf,
    pub reason: String,
}

/// A queued record; [`PoolJournal::wait`] returns once it is on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a record is durable only after `wait`"]
pub struct Ticket(u64);

struct State {
    file: Arc<File>,
    /// Framed records queued and not yet written.
    queued: Vec<u8>,
    /// Records queued since open (ticket numbers).
    enqueued: u64,
    /// Every ticket up to this one is on disk.
    durable: u64,
    /// A waiter is writing and syncing (without the lock).
    writing: bool,
    failed: Option<String>,
    /// Records in the file and queued.
    records: u64,
}

/// An open pool journal.
pub struct PoolJournal {
    path: PathBuf,
    dir: PathBuf,
    state: Mutex<State>,
    synced: Condvar,
}

impl std::fmt::Debug for PoolJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolJournal")
            .field("path", &self.path)
            .finish()
    }
}

impl PoolJournal {
    /// Opens (or creates) `dir/pool.log` and reads every record in it. A torn tail is
    /// truncated away (and synced) before returning.
    pub fn open(dir: &Path) -> Result<(Self, Vec<Entry>), LogError> {
        let (records, read) = RecordFile::open(dir.join(FILE_NAME))?;
        let path = records.path().to_path_buf();
        let entries = read
            .into_iter()
            .map(|(offset, payload)| {
                Entry::decode(&payload).map_err(|reason| LogError::Corrupt {
                    path: path.clone(),
                    offset: offset - HEADER as u64,
                    reason,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let journal = Self {
            dir: dir.to_path_buf(),
            state: Mutex::new(State {
                file: Arc::new(records.into_file()),
                queued: Vec::new(),
                enqueued: 0,
                durable: 0,
                writing: false,
                failed: None,
                records: entries.len() as u64,
            }),
            path,
            synced: Condvar::new(),
        };
        Ok((journal, entries))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, reason: impl Into<String>) -> JournalError {
        JournalError {
            path: self.path.clone(),
            reason: reason.into(),
        }
    }

    /// The error the journal failed with, if it did.
    pub fn check(&self) -> Result<(), JournalError> {
        match &self.state.lock().unwrap().failed {
            Some(reason) => Err(self.error(reason.clone())),
            None => Ok(()),
        }
    }

    /// Queues `entry` (in memory; cheap). Called under the pool's lock, in the order
    /// of the pool's changes, so that the journal's order is the pool's.
    pub fn enqueue(&self, entry: &Entry) -> Ticket {
        let mut st = self.state.lock().unwrap();
        st.queued.extend_from_slice(&frame(&entry.encode()));
        st.enqueued += 1;
        st.records += 1;
        Ticket(st.enqueued)
    }

    /// Returns once `ticket`'s record is synced to disk: writes and syncs everything
    /// queued so far unless another waiter is already doing so (then waits for it,
    /// and goes again if its record was queued after that write began).
    pub fn wait(&self, ticket: Ticket) -> Result<(), JournalError> {
        let mut st = self.state.lock().unwrap();
        loop {
            if st.durable >= ticket.0 {
                return Ok(());
            }
            if let Some(reason) = &st.failed {
                return Err(self.error(reason.clone()));
            }
            if st.writing {
                st = self.synced.wait(st).unwrap();
                continue;
            }
            st.writing = true;
            let batch = std::mem::take(&mut st.queued);
            let upto = st.enqueued;
            let file = st.file.clone();
            drop(st);
            let result = (&*file).write_all(&batch).and_then(|()| file.sync_data());
            metrics::histogram!("sequencer_pool_journal_batch_bytes").record(batch.len() as f64);
            st = self.state.lock().unwrap();
            st.writing = false;
            match result {
                Ok(()) => st.durable = st.durable.max(upto),
                Err(e) => {
                    tracing::error!(path = %self.path.display(), error = %e, "the pool journal failed; transactions are refused from now on");
                    st.failed = Some(e.to_string());
                }
            }
            self.synced.notify_all();
        }
    }

    /// [`PoolJournal::enqueue`] and [`PoolJournal::wait`].
    pub fn append(&self, entry: &Entry) -> Result<(), JournalError> {
        let ticket = self.enqueue(entry);
        self.wait(ticket)
    }

    /// Whether the journal holds many more records than the `pending` transactions
    /// ([`COMPACT_MIN_RECORDS`]).
    pub fn wants_compaction(&self, pending: usize) -> bool {
        let records = self.state.lock().unwrap().records;
        records >= COMPACT_MIN_RECORDS && records > 2 * pending as u64
    }

    /// Rewrites the journal to hold `pending` only (EIP-2718 bytes, in order of
    /// arrival): a temporary file, synced, renamed over the journal, the directory
    /// synced. Called under the pool's lock with the pool's contents, which include
    /// the effect of every record queued so far: those are durable once it returns.
    pub fn compact(&self, pending: impl IntoIterator<Item = Bytes>) -> Result<(), JournalError> {
        let mut st = self.state.lock().unwrap();
        while st.writing {
            st = self.synced.wait(st).unwrap();
        }
        if let Some(reason) = &st.failed {
            return Err(self.error(reason.clone()));
        }
        let mut bytes = Vec::new();
        let mut records = 0u64;
        for raw in pending {
            bytes.extend_from_slice(&frame(&Entry::Added(raw).encode()));
            records += 1;
        }
        let tmp = self.dir.join(format!("{FILE_NAME}.tmp"));
        let rewrite = || -> std::io::Result<File> {
            let mut file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            std::fs::rename(&tmp, &self.path)?;
            File::open(&self.dir)?.sync_all()?;
            Ok(file)
        };
        let result = rewrite();
        match result {
            Ok(file) => {
                st.file = Arc::new(file);
                st.queued.clear();
                st.durable = st.enqueued;
                st.records = records;
                self.synced.notify_all();
                metrics::counter!("sequencer_pool_journal_compactions_total").increment(1);
                Ok(())
            }
            Err(e) => {
                tracing::error!(path = %self.path.display(), error = %e, "rewriting the pool journal failed; transactions are refused from now on");
                st.failed = Some(format!("rewriting: {e}"));
                self.synced.notify_all();
                Err(self.error(format!("rewriting: {e}")))
            }
        }
    }

    /// Records in the file and queued.
    pub fn records(&self) -> u64 {
        self.state.lock().unwrap().records
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn added(i: u8) -> Entry {
        Entry::Added(Bytes::from(vec![0x02, i, i, i]))
    }

    fn write(dir: &Path) -> Vec<Entry> {
        let (journal, got) = PoolJournal::open(dir).unwrap();
        assert!(got.is_empty());
        let entries = vec![
            added(1),
            added(2),
            Entry::Dropped(B256::repeat_byte(1)),
            added(3),
        ];
        for e in &entries {
            journal.append(e).unwrap();
        }
        entries
    }

    #[test]
    fn records_come_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let entries = write(dir.path());
        let (journal, got) = PoolJournal::open(dir.path()).unwrap();
        assert_eq!(got, entries);
        assert_eq!(journal.records(), 4);
        // Appending after a reopen goes on at the end.
        journal.append(&added(4)).unwrap();
        drop(journal);
        let (_, got) = PoolJournal::open(dir.path()).unwrap();
        assert_eq!(got.len(), 5);
        assert_eq!(got[4], added(4));
    }

    #[test]
    fn concurrent_appends_are_all_durable() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, _) = PoolJournal::open(dir.path()).unwrap();
        let journal = Arc::new(journal);
        std::thread::scope(|s| {
            for t in 0..8u8 {
                let j = journal.clone();
                s.spawn(move || {
                    for i in 0..25u8 {
                        j.append(&Entry::Added(Bytes::from(vec![t, i]))).unwrap();
                    }
                });
            }
        });
        drop(journal);
        let (_, mut got) = PoolJournal::open(dir.path()).unwrap();
        assert_eq!(got.len(), 200);
        got.sort_by_key(|e| match e {
            Entry::Added(b) => (b[0], b[1]),
            Entry::Dropped(_) => unreachable!(),
        });
        for (n, e) in got.iter().enumerate() {
            assert_eq!(
                *e,
                Entry::Added(Bytes::from(vec![(n / 25) as u8, (n % 25) as u8]))
            );
        }
    }

    #[test]
    fn a_torn_tail_is_cut_off() {
        for torn in [3usize, HEADER + 2, 0] {
            let dir = tempfile::tempdir().unwrap();
            let entries = write(dir.path());
            let path = dir.path().join(FILE_NAME);
            let len = std::fs::metadata(&path).unwrap().len();
            let mut bytes = std::fs::read(&path).unwrap();
            if torn == 0 {
                // A complete last record with a bad checksum.
                let last = bytes.len() - 1;
                bytes[last] ^= 1;
            } else {
                bytes.extend_from_slice(&frame(&added(9).encode())[..torn]); // torn inside the header or the payload
            }
            std::fs::write(&path, &bytes).unwrap();
            let (journal, got) = PoolJournal::open(dir.path()).unwrap();
            let kept = if torn == 0 { 3 } else { 4 };
            assert_eq!(got, entries[..kept].to_vec(), "torn {torn}");
            let now = std::fs::metadata(&path).unwrap().len();
            if torn == 0 {
                assert!(now < len, "the bad last record is cut off");
            } else {
                assert_eq!(now, len, "the torn tail is cut off");
            }
            // New records follow the kept ones.
            journal.append(&added(7)).unwrap();
            drop(journal);
            let (_, got) = PoolJournal::open(dir.path()).unwrap();
            assert_eq!(got.len(), kept + 1);
            assert_eq!(got[kept], added(7));
        }
    }

    #[test]
    fn a_bad_record_before_the_end_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path());
        let path = dir.path().join(FILE_NAME);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[HEADER + 2] ^= 1; // inside the first record's payload
        std::fs::write(&path, &bytes).unwrap();
        match PoolJournal::open(dir.path()) {
            Err(LogError::Corrupt {
                offset: 0, reason, ..
            }) => assert_eq!(reason, "checksum mismatch"),
            other => panic!("{other:?}"),
        }
        // Untouched: refusing loses nothing.
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
    }

    #[test]
    fn a_record_of_another_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut payload = added(1).encode();
        payload[0] = POOL_JOURNAL_VERSION + 1;
        std::fs::write(dir.path().join(FILE_NAME), frame(&payload)).unwrap();
        match PoolJournal::open(dir.path()) {
            Err(LogError::Corrupt { reason, .. }) => {
                assert!(reason.contains("version 2"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn compaction_keeps_only_the_pending_transactions() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, _) = PoolJournal::open(dir.path()).unwrap();
        for i in 0..COMPACT_MIN_RECORDS {
            journal.append(&added(i as u8)).unwrap();
        }
        assert!(!journal.wants_compaction(COMPACT_MIN_RECORDS as usize / 2));
        assert!(journal.wants_compaction(10));
        let before = std::fs::metadata(journal.path()).unwrap().len();
        // A record queued and not yet written is covered by the rewrite.
        let ticket = journal.enqueue(&added(200));
        let pending: Vec<Bytes> = [5u8, 200]
            .iter()
            .map(|&i| match added(i) {
                Entry::Added(b) => b,
                Entry::Dropped(_) => unreachable!(),
            })
            .collect();
        journal.compact(pending).unwrap();
        journal.wait(ticket).unwrap();
        assert_eq!(journal.records(), 2);
        assert!(!journal.wants_compaction(0));
        assert!(std::fs::metadata(journal.path()).unwrap().len() < before / 100);
        assert!(!dir.path().join(format!("{FILE_NAME}.tmp")).exists());
        // Appends go to the rewritten file.
        journal.append(&Entry::Dropped(B256::ZERO)).unwrap();
        drop(journal);
        let (_, got) = PoolJournal::open(dir.path()).unwrap();
        assert_eq!(got, vec![added(5), added(200), Entry::Dropped(B256::ZERO)]);
    }
}
