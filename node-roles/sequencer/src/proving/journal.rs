//! The proving journal: `proving.log` in the data directory, the block log's framing
//! ([`crate::log`]), one record per step of a batch's life, synced before the step
//! has any effect outside the sequencer. Replayed at start, it says which batches
//! exist (their blocks never change once planned), which appliance job each attempt
//! is, and which proofs were published, so that a restart resumes every batch where
//! it was: nothing is proven twice and nothing is skipped.

use std::collections::BTreeMap;
use std::path::Path;

use proofbox_chain_types::ProvenBatch;
use serde::{Deserialize, Serialize};

use crate::log::{LogError, RecordFile};

/// The version byte before every record.
pub const JOURNAL_VERSION: u8 = 1;

/// One step of a batch's life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Entry {
    /// The batch's blocks, fixed before anything is sent for it.
    Planned {
        index: u64,
        first_block: u64,
        last_block: u64,
    },
    /// Attempt `attempt` of the batch was accepted by `appliance` as job `job`.
    Submitted {
        index: u64,
        attempt: u32,
        appliance: String,
        job: String,
    },
    /// The attempt ended without a usable proof; the next attempt has a new
    /// idempotency key.
    Failed {
        index: u64,
        attempt: u32,
        reason: String,
    },
    /// The batch's verified proof, published (written in index order).
    Proven(ProvenBatch),
}

impl Entry {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![JOURNAL_VERSION];
        postcard::to_io(self, &mut out).expect("writing to a Vec cannot fail");
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        match bytes.split_first() {
            Some((&JOURNAL_VERSION, rest)) => postcard::from_bytes(rest).map_err(|e| e.to_string()),
            Some((v, _)) => Err(format!(
                "journal record version {v} (this build reads {JOURNAL_VERSION})"
            )),
            None => Err("an empty journal record".into()),
        }
    }
}

/// A batch planned and not yet proven, as the journal left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub index: u64,
    pub first_block: u64,
    pub last_block: u64,
    /// The current attempt (0 first; one more after each failure).
    pub attempt: u32,
    /// The current attempt's job, if an appliance accepted it.
    pub job: Option<(String, String)>,
}

/// A published proof: its batch (without the bundle) and where its record is.
#[derive(Debug, Clone)]
pub struct Published {
    pub batch: ProvenBatch,
    /// The record's payload offset and length in the journal, if there is one.
    pub at: Option<(u64, usize)>,
}

/// What replaying the journal gives.
#[derive(Debug, Default)]
pub struct Replayed {
    pub published: Vec<Published>,
    pub pending: BTreeMap<u64, Pending>,
}

/// The open journal.
#[derive(Debug)]
pub struct Journal {
    records: RecordFile,
}

fn corrupt(path: &Path, offset: u64, reason: String) -> LogError {
    LogError::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason,
    }
}

impl Journal {
    /// Opens (or creates) `dir/proving.log` and replays it, checking that batches and
    /// proofs follow one another without gap.
    pub fn open(dir: &Path) -> Result<(Self, Replayed), LogError> {
        let (records, read) = RecordFile::open(dir.join("proving.log"))?;
        let path = records.path().to_path_buf();
        let mut out = Replayed::default();
        let mut next_planned = 0u64;
        let mut next_block: Option<u64> = None;
        for (offset, payload) in read {
            let entry = Entry::decode(&payload).map_err(|e| corrupt(&path, offset, e))?;
            let bad = |why: String| corrupt(&path, offset, why);
            match entry {
                Entry::Planned {
                    index,
                    first_block,
                    last_block,
                } => {
                    if index != next_planned
                        || last_block < first_block
                        || next_block.is_some_and(|b| b != first_block)
                    {
                        return Err(bad(format!(
                            "batch {index} (blocks {first_block}..={last_block}) does not follow the batches before it"
                        )));
                    }
                    next_planned += 1;
                    next_block = Some(last_block + 1);
                    out.pending.insert(
                        index,
                        Pending {
                            index,
                            first_block,
                            last_block,
                            attempt: 0,
                            job: None,
                        },
                    );
                }
                Entry::Submitted {
                    index,
                    attempt,
                    appliance,
                    job,
                } => {
                    let p = out
                        .pending
                        .get_mut(&index)
                        .ok_or_else(|| bad(format!("a job for batch {index}, not pending")))?;
                    p.attempt = attempt;
                    p.job = Some((appliance, job));
                }
                Entry::Failed { index, attempt, .. } => {
                    let p = out
                        .pending
                        .get_mut(&index)
                        .ok_or_else(|| bad(format!("a failure of batch {index}, not pending")))?;
                    p.attempt = attempt + 1;
                    p.job = None;
                }
                Entry::Proven(mut batch) => {
                    let p = out.pending.remove(&batch.index).ok_or_else(|| {
                        bad(format!("a proof of batch {}, not pending", batch.index))
                    })?;
                    if batch.index != out.published.len() as u64
                        || (batch.first_block, batch.last_block) != (p.first_block, p.last_block)
                    {
                        return Err(bad(format!(
                            "the proof of batch {} is out of order or of other blocks",
                            batch.index
                        )));
                    }
                    batch.bundle = Default::default();
                    out.published.push(Published {
                        batch,
                        at: Some((offset, payload.len())),
                    });
                }
            }
        }
        Ok((Self { records }, out))
    }

    /// Appends `entry` (synced); returns where its payload is.
    pub fn append(&mut self, entry: &Entry) -> Result<(u64, usize), LogError> {
        let payload = entry.encode();
        let at = self.records.append(&payload)?;
        Ok((at, payload.len()))
    }

    /// Reads back the proof written at `at`.
    pub fn read_proof(&self, at: (u64, usize)) -> Result<ProvenBatch, LogError> {
        let payload = self.records.read(at.0, at.1)?;
        match Entry::decode(&payload) {
            Ok(Entry::Proven(b)) => Ok(b),
            Ok(_) => Err(corrupt(
                self.records.path(),
                at.0,
                "not a proof record".into(),
            )),
            Err(e) => Err(corrupt(self.records.path(), at.0, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proofbox_chain_types::Root;

    fn proven(index: u64, first_block: u64, last_block: u64) -> ProvenBatch {
        ProvenBatch {
            index,
            first_block,
            last_block,
            pre_root: Root([1; 8]),
            post_root: Root([2; 8]),
            diff_commitment: Root([3; 8]),
            updates: 4,
            bundle: vec![7u8; 100].into(),
            proved_by: Some("http://appliance job 1".into()),
        }
    }

    fn planned(index: u64, first_block: u64, last_block: u64) -> Entry {
        Entry::Planned {
            index,
            first_block,
            last_block,
        }
    }

    #[test]
    fn replay_gives_published_proofs_and_where_each_pending_batch_stands() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut j, r) = Journal::open(dir.path()).unwrap();
            assert!(r.published.is_empty() && r.pending.is_empty());
            for e in [
                planned(0, 1, 3),
                planned(1, 4, 4),
                Entry::Submitted {
                    index: 1,
                    attempt: 0,
                    appliance: "http://a".into(),
                    job: "j1".into(),
                },
                Entry::Submitted {
                    index: 0,
                    attempt: 0,
                    appliance: "http://b".into(),
                    job: "j0".into(),
                },
                Entry::Proven(proven(0, 1, 3)),
                Entry::Failed {
                    index: 1,
                    attempt: 0,
                    reason: "device fault".into(),
                },
                planned(2, 5, 9),
            ] {
                j.append(&e).unwrap();
            }
        }
        let (j, r) = Journal::open(dir.path()).unwrap();
        assert_eq!(r.published.len(), 1);
        assert!(
            r.published[0].batch.bundle.is_empty(),
            "bundles stay on disk"
        );
        let back = j.read_proof(r.published[0].at.unwrap()).unwrap();
        assert_eq!(back, proven(0, 1, 3));
        let pending: Vec<_> = r.pending.values().cloned().collect();
        assert_eq!(
            pending,
            vec![
                Pending {
                    index: 1,
                    first_block: 4,
                    last_block: 4,
                    attempt: 1,
                    job: None
                },
                Pending {
                    index: 2,
                    first_block: 5,
                    last_block: 9,
                    attempt: 0,
                    job: None
                },
            ]
        );
    }

    #[test]
    fn a_journal_whose_batches_do_not_follow_each_other_is_refused() {
        for bad in [
            vec![planned(0, 1, 3), planned(1, 5, 6)],
            vec![planned(0, 1, 3), planned(2, 4, 6)],
            vec![planned(0, 3, 1)],
            vec![planned(0, 1, 3), Entry::Proven(proven(0, 1, 4))],
            vec![Entry::Proven(proven(0, 1, 3))],
            vec![
                planned(0, 1, 3),
                Entry::Failed {
                    index: 1,
                    attempt: 0,
                    reason: String::new(),
                },
            ],
        ] {
            let dir = tempfile::tempdir().unwrap();
            {
                let (mut j, _) = Journal::open(dir.path()).unwrap();
                for e in &bad {
                    j.append(e).unwrap();
                }
            }
            match Journal::open(dir.path()) {
                Err(LogError::Corrupt { .. }) => {}
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_proof_changed_on_disk_is_not_served() {
        let dir = tempfile::tempdir().unwrap();
        let at = {
            let (mut j, _) = Journal::open(dir.path()).unwrap();
            j.append(&planned(0, 1, 1)).unwrap();
            j.append(&Entry::Proven(proven(0, 1, 1))).unwrap()
        };
        let (j, _) = Journal::open(dir.path()).unwrap();
        let path = dir.path().join("proving.log");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[at.0 as usize + at.1 - 5] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(j.read_proof(at), Err(LogError::Corrupt { .. })));
    }

    #[test]
    fn records_of_another_version_are_refused() {
        let mut bytes = planned(0, 1, 1).encode();
        bytes[0] = 9;
        assert!(Entry::decode(&bytes).unwrap_err().contains("version 9"));
    }
}
