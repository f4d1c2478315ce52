//! Proving through appliances: the sequencer cuts its blocks into batches, sends
//! each batch's net diff with its witnesses to a ProofBox appliance as a
//! state-transition job, checks the proof that comes back, and publishes it, in block
//! order.
//!
//! - [`journal`]: the durable record of every batch's plan, jobs and proof;
//! - [`client`]: the appliance's REST API as the sequencer uses it;
//! - [`pipeline`]: batching, witnesses, submission with retries and failover,
//!   checking, publishing in order.
//!
//! [`Proofs`] holds what was published, for the RPC methods and the `proofs`
//! stream; [`start`] runs the pipeline. `docs/nodes.md` ("Proving") describes the
//! batching rule, the retry rules and what "exactly once" means.

pub mod client;
pub mod journal;
pub mod pipeline;

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use proofbox_chain_types::{ProvenBatch, Root};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::log::LogError;
use journal::{Entry, Journal, Pending, Published};

pub use pipeline::{ProvingHandle, start};

/// Proofs kept in memory when the sequencer has no data directory (older ones are
/// dropped; their metadata stays).
pub const MEMORY_PROOFS: usize = 1024;

/// How the sequencer proves its blocks.
#[derive(Debug, Clone)]
pub struct ProvingConfig {
    /// Appliance base URLs (`http://host:port`). Batch `i`'s first attempt goes to
    /// appliance `i mod n`; later attempts and failovers go round.
    pub appliances: Vec<String>,
    /// Bearer key for the appliances' API, if they require one.
    pub api_key: Option<String>,
    /// A batch closes after this many blocks...
    pub batch_blocks: u64,
    /// ...or once its first block is this old, whichever comes first, provided fewer
    /// than `max_in_flight` batches are being proven; otherwise it keeps growing (so
    /// proving lag stays bounded: fewer, larger proofs when provers fall behind).
    pub batch_interval: Duration,
    /// Batches being proven at once, at most (twice this for batches that reached
    /// `max_batch_updates`).
    pub max_in_flight: usize,
    /// Updates in one batch's net diff, at most (a single block larger than this is
    /// still one batch).
    pub max_batch_updates: usize,
    /// The appliance's FRI preset name (`standard`).
    pub fri: String,
    /// The floor this sequencer checks every proof against before publishing it.
    pub min_security_bits: u32,
    /// How often a job's status is polled.
    pub poll_interval: Duration,
    /// An appliance that cannot be reached for this long while a batch has not been
    /// accepted anywhere: the batch goes to the next appliance.
    pub failover_after: Duration,
    /// An appliance holding an accepted job that cannot be reached for this long: the
    /// batch is given to the next appliance as a new attempt.
    pub abandon_after: Duration,
}

impl Default for ProvingConfig {
    fn default() -> Self {
        Self {
            appliances: Vec::new(),
            api_key: None,
            batch_blocks: 10,
            batch_interval: Duration::from_secs(1),
            max_in_flight: 2,
            max_batch_updates: 16_384,
            fri: "standard".into(),
            min_security_bits: proofbox_verifier::DEFAULT_MIN_SECURITY_BITS,
            poll_interval: Duration::from_millis(200),
            failover_after: Duration::from_secs(10),
            abandon_after: Duration::from_secs(120),
        }
    }
}

impl ProvingConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.appliances.is_empty() {
            return Err("proving needs at least one appliance URL".into());
        }
        if !self
            .fri
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-')
        {
            return Err(format!(
                "FRI preset name {:?} is not a plain word",
                self.fri
            ));
        }
        for a in &self.appliances {
            if !(a.starts_with("http://") || a.starts_with("https://")) {
                return Err(format!(
                    "appliance URL {a:?} must start with http:// or https://"
                ));
            }
        }
        if self.batch_blocks == 0 || self.max_in_flight == 0 || self.max_batch_updates == 0 {
            return Err(
                "batch_blocks, max_in_flight and max_batch_updates must be at least 1".into(),
            );
        }
        proofbox_verifier::Verifier::with_min_security_bits(self.min_security_bits)
            .map_err(|e| e.to_string())?;
        Ok(())
    }
}

/// A batch being proven, as `proofbox_provingStatus` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InFlight {
    pub index: u64,
    pub first_block: u64,
    pub last_block: u64,
    pub updates: u64,
    pub attempt: u32,
    /// `witness`, `submitting`, `queued`, `running`, `verifying` or `waiting` (for the
    /// batches before it to be published).
    pub state: String,
    pub appliance: Option<String>,
    pub job: Option<String>,
}

/// One appliance, as the pipeline last saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplianceStatus {
    pub url: String,
    pub reachable: Option<bool>,
    /// Proofs it delivered that were published.
    pub proofs: u64,
    pub last_error: Option<String>,
}

/// Where proving stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvingStatus {
    /// Whether this sequencer runs the pipeline.
    pub enabled: bool,
    pub proven_batches: u64,
    /// The last block of the last published proof, and its post-state root.
    pub proven_block: Option<u64>,
    pub proven_root: Option<Root>,
    /// The last block of the last planned batch.
    pub planned_block: Option<u64>,
    pub in_flight: Vec<InFlight>,
    pub appliances: Vec<ApplianceStatus>,
    /// The last problem, if proving is held up.
    pub last_error: Option<String>,
    /// Lies the appliances told since start, the newest [`LIES_KEPT`]: proofs that
    /// did not verify, jobs that named another statement than their batch's.
    #[serde(default)]
    pub lies: Vec<String>,
}

/// Lies kept in [`ProvingStatus::lies`] (all are logged).
pub const LIES_KEPT: usize = 100;

impl ProvingStatus {
    /// Records a lie an appliance told (the oldest dropped beyond [`LIES_KEPT`]).
    pub fn lie(&mut self, what: String) {
        if self.lies.len() == LIES_KEPT {
            self.lies.remove(0);
        }
        self.lies.push(what);
    }
}

struct State {
    published: Vec<Published>,
    /// Bundles held in memory (without a journal): the newest [`MEMORY_PROOFS`].
    bundles: VecDeque<(u64, alloy_primitives::Bytes)>,
    pending: BTreeMap<u64, Pending>,
    status: ProvingStatus,
}

/// The published proofs (and the journal behind them). Cloned through an `Arc` in
/// the sequencer.
pub struct Proofs {
    journal: Mutex<Option<Journal>>,
    state: Mutex<State>,
    count: watch::Sender<u64>,
}

impl std::fmt::Debug for Proofs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proofs")
            .field("count", &*self.count.borrow())
            .finish()
    }
}

impl Proofs {
    /// Opens the journal in `data_dir` (if any) and replays it.
    pub fn open(data_dir: Option<&Path>) -> Result<Self, LogError> {
        let (journal, replayed) = match data_dir {
            Some(dir) => {
                let (j, r) = Journal::open(dir)?;
                (Some(j), r)
            }
            None => (None, Default::default()),
        };
        let n = replayed.published.len() as u64;
        let mut status = ProvingStatus {
            proven_batches: n,
            ..Default::default()
        };
        if let Some(last) = replayed.published.last() {
            status.proven_block = Some(last.batch.last_block);
            status.proven_root = Some(last.batch.post_root);
            status.planned_block = Some(last.batch.last_block);
        }
        if let Some(p) = replayed.pending.values().last() {
            status.planned_block = Some(p.last_block);
        }
        Ok(Self {
            journal: Mutex::new(journal),
            state: Mutex::new(State {
                published: replayed.published,
                bundles: VecDeque::new(),
                pending: replayed.pending,
                status,
            }),
            count: watch::Sender::new(n),
        })
    }

    /// Published proofs so far.
    pub fn count(&self) -> u64 {
        *self.count.borrow()
    }

    /// The count of published proofs, as a channel that changes with each.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.count.subscribe()
    }

    /// The newest published proof's batch (without its bundle).
    pub fn head(&self) -> Option<ProvenBatch> {
        let s = self.state.lock().unwrap();
        s.published.last().map(|p| p.batch.clone())
    }

    /// Published proof `index` without its bundle (nothing is read from disk).
    pub fn summary(&self, index: u64) -> Option<ProvenBatch> {
        let s = self.state.lock().unwrap();
        s.published.get(index as usize).map(|p| p.batch.clone())
    }

    /// Published proof `index`, with its bundle. `Err` if its bundle is no longer
    /// held (no data directory, and more than [`MEMORY_PROOFS`] since) or cannot be
    /// read back.
    pub fn get(&self, index: u64) -> Result<Option<ProvenBatch>, String> {
        let (mut batch, at) = {
            let s = self.state.lock().unwrap();
            let Some(p) = s.published.get(index as usize) else {
                return Ok(None);
            };
            if p.at.is_none() {
                let mut b = p.batch.clone();
                return match s.bundles.iter().find(|(i, _)| *i == index) {
                    Some((_, bytes)) => {
                        b.bundle = bytes.clone();
                        Ok(Some(b))
                    }
                    None => Err(format!(
                        "the proof of batch {index} is no longer held (this sequencer keeps the newest {MEMORY_PROOFS} proofs in memory; run it with a data directory to keep all)"
                    )),
                };
            }
            (p.batch.clone(), p.at)
        };
        if let Some(at) = at {
            let journal = self.journal.lock().unwrap();
            let j = journal.as_ref().ok_or("the proving journal is closed")?;
            let read = j.read_proof(at).map_err(|e| e.to_string())?;
            batch.bundle = read.bundle;
        }
        Ok(Some(batch))
    }

    /// The published proof whose batch holds `block`.
    pub fn covering(&self, block: u64) -> Result<Option<ProvenBatch>, String> {
        let index = {
            let s = self.state.lock().unwrap();
            let i = s.published.partition_point(|p| p.batch.last_block < block);
            match s.published.get(i) {
                Some(p) if p.batch.covers(block) => i as u64,
                _ => return Ok(None),
            }
        };
        self.get(index)
    }

    pub fn status(&self) -> ProvingStatus {
        self.state.lock().unwrap().status.clone()
    }

    /// The batches the journal left pending, in order.
    pub(crate) fn pending(&self) -> Vec<Pending> {
        self.state
            .lock()
            .unwrap()
            .pending
            .values()
            .cloned()
            .collect()
    }

    /// The blocks of every published batch, in order.
    pub(crate) fn published_ranges(&self) -> Vec<(u64, u64)> {
        let s = self.state.lock().unwrap();
        s.published
            .iter()
            .map(|p| (p.batch.first_block, p.batch.last_block))
            .collect()
    }

    pub(crate) fn update_status(&self, f: impl FnOnce(&mut ProvingStatus)) {
        f(&mut self.state.lock().unwrap().status);
    }

    /// Writes `entry` to the journal (synced) before anything acts on it.
    pub(crate) fn record(&self, entry: &Entry) -> Result<(), LogError> {
        if let Some(j) = self.journal.lock().unwrap().as_mut() {
            j.append(entry)?;
        }
        Ok(())
    }

    /// Publishes the next proof (delivered by `appliance`): journaled (synced), then
    /// visible.
    pub(crate) fn publish(&self, batch: ProvenBatch, appliance: &str) -> Result<(), LogError> {
        assert_eq!(batch.index, self.count(), "proofs are published in order");
        let entry = Entry::Proven(batch);
        let at = match self.journal.lock().unwrap().as_mut() {
            Some(j) => Some(j.append(&entry)?),
            None => None,
        };
        let Entry::Proven(mut batch) = entry else {
            unreachable!()
        };
        let mut s = self.state.lock().unwrap();
        let bundle = std::mem::take(&mut batch.bundle);
        if at.is_none() {
            s.bundles.push_back((batch.index, bundle));
            if s.bundles.len() > MEMORY_PROOFS {
                s.bundles.pop_front();
            }
        }
        s.pending.remove(&batch.index);
        s.status.proven_batches = batch.index + 1;
        s.status.proven_block = Some(batch.last_block);
        s.status.proven_root = Some(batch.post_root);
        s.status.in_flight.retain(|f| f.index != batch.index);
        if let Some(a) = s.status.appliances.iter_mut().find(|a| a.url == appliance) {
            a.proofs += 1;
        }
        let n = batch.index + 1;
        s.published.push(Published { batch, at });
        drop(s);
        self.count.send_replace(n);
        metrics::gauge!("sequencer_proven_batches").set(n as f64);
        Ok(())
    }
}
