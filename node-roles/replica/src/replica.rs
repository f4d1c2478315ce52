//! The replica's two heads and the checks that move them: [`Replica::import_block`]
//! (the latest head: a block's diff written to the flat state without executing it
//! or hashing the tree) and [`Replica::import_batch`] (the proven head: a verified
//! state-transition proof of the blocks applied, then one tree update for the batch).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use alloy_primitives::B256;
use proofbox_chain_types::{Block, ProvenBatch, Root, check_bodies, check_diffs, net_diff};
use proofbox_circuits::transition::TransitionStatement;
use proofbox_sequencer::state::{FlatState, MemState};
use proofbox_state::{Diff, StateTree};
use proofbox_verifier::{TransitionProof, Verifier};
use tokio::sync::watch;

use crate::bodies::{Backlog, BodyChecks, Kept};
pub use crate::refusals::Refusal;
use crate::refusals::Refusals;
use crate::snapshot::{Snapshot, SnapshotError, StateImage};

/// The most proofs kept waiting for their blocks; beyond, they are dropped and the
/// proofs stream is resubscribed once the waiting ones are used up.
pub const MAX_PENDING_PROOFS: usize = 1024;

#[derive(Debug, Clone)]
pub struct Config {
    /// Where the proven snapshot lives.
    pub data_dir: PathBuf,
    pub chain_id: u64,
    /// The security floor every proof must reach, in conjectured bits: the replica's
    /// own, never taken from the proof.
    pub min_security_bits: u32,
    /// Blocks kept for RPC before the proven head (all after it are kept).
    pub block_window: u64,
    /// The wait before re-syncing after a refusal, doubled at each refusal until a
    /// batch is proven again.
    pub resync_backoff: Duration,
    /// The longest wait before a re-sync.
    pub max_resync_backoff: Duration,
    /// When blocks' transactions and receipts are checked against their headers
    /// (always before they are served; [`BodyChecks`]).
    pub bodies: BodyChecks,
}

impl Config {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            chain_id: proofbox_sequencer::config::DEFAULT_CHAIN_ID,
            min_security_bits: proofbox_verifier::DEFAULT_MIN_SECURITY_BITS,
            block_window: 4096,
            resync_backoff: Duration::from_secs(1),
            max_resync_backoff: Duration::from_secs(60),
            bodies: BodyChecks::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The block or proof is wrong.
    #[error("refused: {}", .0.reason)]
    Refused(Refusal),
    /// The genesis block's diff does not decode.
    #[error("the genesis block's state diff: {0}")]
    Genesis(String),
    /// Not the next block (a transport problem): resubscribe.
    #[error("expected block {expected}, got {got}")]
    OutOfOrder { expected: u64, got: u64 },
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
}

/// Which state a query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    /// The applied head: every block whose diff checked out.
    Latest,
    /// The proven head: the last block of the newest verified proof.
    Proven,
}

/// Everything behind the lock.
pub struct Chain {
    /// The state after every applied block: accounts, storage and code, no tree (its
    /// root is never computed; the header's claim is checked by the batch's proof).
    pub latest: FlatState,
    /// The state at the proven head with its tree, advanced by each verified batch.
    pub proven: MemState,
    pub latest_head: Option<u64>,
    pub proven_head: Option<u64>,
    pub next_batch: u64,
    blocks: BTreeMap<u64, Arc<Kept>>,
    by_hash: HashMap<B256, u64>,
    pending: BTreeMap<u64, ProvenBatch>,
    /// A proof was dropped because too many were waiting: once the waiting ones
    /// are used up the follower resubscribes to proofs from the next batch.
    proofs_dropped: bool,
    refused: Refusals,
    /// Refusals since a batch was last proven: each doubles the wait before a re-sync.
    strikes: u32,
    /// Set after a refusal: the follower waits until then before it resubscribes.
    resync_at: Option<Instant>,
    /// Re-syncs since start.
    resyncs: u64,
    /// Bumped at every re-sync: the follower resubscribes.
    epoch: u64,
}

impl Chain {
    /// The accounts, storage and code at `head`.
    pub fn state(&self, head: Head) -> &FlatState {
        match head {
            Head::Latest => &self.latest,
            Head::Proven => self.proven.flat(),
        }
    }

    /// The post-state root the latest block's header claims (checked against a proof
    /// only when its batch is proven); the empty root before block 0.
    pub fn latest_root(&self) -> Root {
        self.latest_head
            .and_then(|n| self.block(n))
            .map_or(Root::from_digest(&StateTree::empty_root()), |b| {
                b.header().post_state_root
            })
    }

    pub fn head(&self, head: Head) -> Option<u64> {
        match head {
            Head::Latest => self.latest_head,
            Head::Proven => self.proven_head,
        }
    }

    /// Block `n`, if kept; its bodies are served through [`Replica::checked`].
    pub fn block(&self, n: u64) -> Option<Arc<Kept>> {
        self.blocks.get(&n).cloned()
    }

    pub fn block_by_hash(&self, h: &B256) -> Option<Arc<Kept>> {
        self.by_hash.get(h).and_then(|n| self.block(*n))
    }

    pub fn refused(&self) -> &[Refusal] {
        self.refused.list()
    }

    /// False while waiting to re-sync after a refusal.
    pub fn following(&self) -> bool {
        self.resync_at.is_none()
    }

    /// How long the follower still waits before it re-syncs.
    pub fn resync_in(&self) -> Option<Duration> {
        self.resync_at
            .map(|t| t.saturating_duration_since(Instant::now()))
    }

    fn insert_block(&mut self, b: Arc<Kept>) {
        self.by_hash.insert(b.hash(), b.number());
        self.blocks.insert(b.number(), b);
    }

    /// Drops blocks after the proven head, and those older than the window.
    fn prune(&mut self, window: u64) {
        let proven = self.proven_head.unwrap_or(0);
        let keep_from = proven.saturating_sub(window);
        while let Some((&n, _)) = self.blocks.first_key_value() {
            if n >= keep_from {
                break;
            }
            let (_, b) = self.blocks.pop_first().expect("not empty");
            self.by_hash.remove(&b.hash());
        }
        let latest = self.latest_head.unwrap_or(0);
        for n in (latest + 1)..=self.blocks.last_key_value().map_or(0, |(n, _)| *n) {
            if let Some(b) = self.blocks.remove(&n) {
                self.by_hash.remove(&b.hash());
            }
        }
    }
}

pub(crate) struct Inner {
    config: Config,
    verifier: Verifier,
    chain: RwLock<Chain>,
    latest: watch::Sender<Option<u64>>,
    proven: watch::Sender<Option<u64>>,
    /// Bumped with `Chain::epoch` at every re-sync.
    epoch: watch::Sender<u64>,
    /// The body checker's queue (`BodyChecks::Background` only).
    checker: Option<mpsc::Sender<Arc<Kept>>>,
    pub(crate) backlog: Backlog,
}

/// A replica. Cloning shares it.
#[derive(Clone)]
pub struct Replica {
    pub(crate) inner: Arc<Inner>,
}

/// A proven batch ready to be checked outside the lock.
struct Work {
    batch: ProvenBatch,
    blocks: Vec<Arc<Kept>>,
    pre_root: Root,
    epoch: u64,
}

/// The wait before the `strikes`-th re-sync in a row: `base`, doubled each time, at
/// most `max`.
pub fn backoff(base: Duration, max: Duration, strikes: u32) -> Duration {
    base.saturating_mul(1u32 << strikes.saturating_sub(1).min(20))
        .min(max)
}

impl Replica {
    /// Opens the replica in `config.data_dir`: from its proven snapshot if there is
    /// one (root checked), else empty (block 0 comes first), with the refusals it
    /// recorded there.
    pub fn open(config: Config) -> Result<Self, String> {
        let verifier = Verifier::with_min_security_bits(config.min_security_bits)
            .map_err(|e| e.to_string())?;
        let loaded = Snapshot::load(&config.data_dir).map_err(|e| e.to_string())?;
        let refused = Refusals::load(&config.data_dir).map_err(|e| e.to_string())?;
        let mut chain = Chain {
            latest: FlatState::new(),
            proven: MemState::new(),
            latest_head: None,
            proven_head: None,
            next_batch: 0,
            blocks: BTreeMap::new(),
            by_hash: HashMap::new(),
            pending: BTreeMap::new(),
            proofs_dropped: false,
            refused,
            strikes: 0,
            resync_at: None,
            resyncs: 0,
            epoch: 0,
        };
        if let Some((snap, proven)) = loaded {
            let n = snap.block.number();
            chain.latest = proven.flat().clone();
            chain.proven = proven;
            chain.latest_head = Some(n);
            chain.proven_head = Some(n);
            chain.next_batch = snap.next_batch;
            chain.insert_block(Arc::new(Kept::new(snap.block)));
            tracing::info!(block = n, root = %snap.root, next_batch = snap.next_batch, "replica: loaded the proven snapshot");
        }
        let (latest, proven) = (chain.latest_head, chain.proven_head);
        let kept: Vec<_> = chain.blocks.values().cloned().collect();
        let (checker, checks) = match config.bodies {
            BodyChecks::Background => {
                let (to, from) = mpsc::channel();
                (Some(to), Some(from))
            }
            BodyChecks::Eager | BodyChecks::OnUse => (None, None),
        };
        let inner = Arc::new(Inner {
            config,
            verifier,
            chain: RwLock::new(chain),
            latest: watch::Sender::new(latest),
            proven: watch::Sender::new(proven),
            epoch: watch::Sender::new(0),
            checker,
            backlog: Backlog::default(),
        });
        if let Some(from) = checks {
            crate::bodies::spawn_checker(Arc::downgrade(&inner), from);
        }
        let this = Self { inner };
        for k in &kept {
            this.to_checker(k);
        }
        Ok(this)
    }

    /// Gives `kept` to the body checker, if there is one.
    fn to_checker(&self, kept: &Arc<Kept>) {
        if let Some(to) = &self.inner.checker {
            crate::bodies::queue(to, &self.inner.backlog, kept);
        }
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn chain_id(&self) -> u64 {
        self.inner.config.chain_id
    }

    /// The chain, for reading.
    pub fn read(&self) -> RwLockReadGuard<'_, Chain> {
        self.inner.chain.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn write(&self) -> std::sync::RwLockWriteGuard<'_, Chain> {
        self.inner.chain.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn watch_latest(&self) -> watch::Receiver<Option<u64>> {
        self.inner.latest.subscribe()
    }

    pub fn watch_proven(&self) -> watch::Receiver<Option<u64>> {
        self.inner.proven.subscribe()
    }

    /// Changes at every re-sync.
    pub(crate) fn watch_epoch(&self) -> watch::Receiver<u64> {
        self.inner.epoch.subscribe()
    }

    pub(crate) fn epoch(&self) -> u64 {
        self.read().epoch
    }

    /// Where the follower resumes: the next block and the next batch.
    pub(crate) fn resume_point(&self) -> (u64, u64, u64) {
        let c = self.read();
        (c.latest_head.map_or(0, |h| h + 1), c.next_batch, c.epoch)
    }

    /// `proofbox_replicaStatus`.
    pub fn status(&self) -> serde_json::Value {
        let c = self.read();
        serde_json::json!({
            "role": "replica",
            "latest": c.latest_head,
            "proven": c.proven_head,
            "latestRoot": c.latest_root().hex(),
            "provenRoot": c.proven.root().hex(),
            "nextBatch": c.next_batch,
            "pendingProofs": c.pending.len(),
            "refused": c.refused(),
            "following": c.following(),
            "resyncInMs": c.resync_in().map(|d| d.as_millis() as u64),
            "resyncs": c.resyncs,
            "bodiesToCheck": self.inner.backlog.len(),
            "minSecurityBits": self.inner.config.min_security_bits,
        })
    }

    /// Waits out the back-off after a refusal; the follower calls it before it
    /// resubscribes.
    pub(crate) async fn wait_resync(&self) {
        let wait = self.read().resync_in();
        if let Some(d) = wait {
            tokio::time::sleep(d).await;
        }
        let mut c = self.write();
        if c.resync_at.is_some_and(|t| t <= Instant::now()) {
            c.resync_at = None;
            tracing::info!(from = ?c.proven_head, "replica: re-syncing from the proven head");
        }
    }

    /// Records a refusal (log, metric, the persisted list) and re-syncs: the latest
    /// state and head go back to the proven ones (the blocks after the proven head and
    /// the waiting proofs are dropped), and the follower waits a back-off, then
    /// resubscribes from the proven head.
    pub(crate) fn refuse(&self, c: &mut Chain, r: Refusal) -> ImportError {
        self.record(c, r.clone());
        let kept_latest = c.latest_head;
        c.latest = c.proven.flat().clone();
        c.latest_head = c.proven_head;
        c.pending.clear();
        c.proofs_dropped = false;
        c.prune(self.inner.config.block_window);
        c.epoch += 1;
        c.resyncs += 1;
        c.strikes = c.strikes.saturating_add(1);
        let cfg = &self.inner.config;
        let wait = backoff(cfg.resync_backoff, cfg.max_resync_backoff, c.strikes);
        c.resync_at = Some(Instant::now() + wait);
        metrics::counter!("replica_resyncs_total").increment(1);
        tracing::warn!(from = ?kept_latest, to = ?c.proven_head, wait_ms = wait.as_millis() as u64,
            "replica: latest head back to the proven head; re-syncing after the wait");
        self.inner.latest.send_replace(c.latest_head);
        self.inner.epoch.send_replace(c.epoch);
        ImportError::Refused(r)
    }

    /// Records a refusal without re-syncing: log, metric, the persisted list.
    pub(crate) fn record(&self, c: &mut Chain, r: Refusal) {
        match (r.block, r.batch) {
            (_, Some(batch)) => {
                tracing::error!(batch, block = ?r.block, reason = %r.reason, "replica: proof refused");
                metrics::counter!("replica_refused_proofs_total").increment(1);
            }
            (block, None) => {
                tracing::error!(block = ?block, reason = %r.reason, "replica: block refused");
                metrics::counter!("replica_refused_blocks_total").increment(1);
            }
        }
        c.refused.add(r);
        if let Err(e) = c.refused.save(&self.inner.config.data_dir) {
            tracing::error!(error = %e, "replica: recording the refusal on disk failed");
        }
    }

    /// Checks `block` and writes its diff to the latest state: it must be the next
    /// block, its parent hash the head's, its header must commit to its diff (the diff
    /// commitment), and its pre-state root must be the post-state root of the head (the
    /// proven root right after the proven head). Its transactions and receipts are
    /// checked against the header's roots first with [`BodyChecks::Eager`], else later
    /// (before any of it is served, [`crate::bodies`]). Its post-state root is the
    /// sequencer's claim until its batch's proof checks it. Block 0 is taken as it
    /// comes (pre-state root the empty root, its diff's root computed and compared, its
    /// bodies checked) and is proven by being the genesis. A refused block is not
    /// applied and the replica re-syncs.
    pub fn import_block(&self, block: Block) -> Result<(), ImportError> {
        self.import_blocks(vec![block])
    }

    /// Imports consecutive blocks as [`Replica::import_block`] does, their checks (the
    /// hashing) done first for all of them: the diff commitments together in the SIMD
    /// lanes ([`check_diffs`]), with [`BodyChecks::Eager`] the transactions and
    /// receipts tries too, across cores ([`check_bodies`]); stops at the first error.
    pub fn import_blocks(&self, blocks: Vec<Block>) -> Result<(), ImportError> {
        // The checks (hashing) need no lock.
        let eager = self.inner.config.bodies == BodyChecks::Eager;
        let par = blocks.len() > 1;
        let checked = match eager {
            true => check_bodies(&blocks, par),
            false => check_diffs(&blocks, par),
        };
        for (block, checked) in blocks.into_iter().zip(checked) {
            self.import_checked(block, checked, eager)?;
        }
        Ok(())
    }

    /// Applies `block` whose diff (and, if `bodies_checked`, transactions and receipts)
    /// checked out as `checked` says.
    fn import_checked(
        &self,
        block: Block,
        checked: Result<(), String>,
        bodies_checked: bool,
    ) -> Result<(), ImportError> {
        let n = block.number();
        // The genesis is proven at once: its bodies are checked now.
        let (checked, bodies_checked) = match n == 0 && !bodies_checked {
            true => (
                checked.and_then(|()| block.check_transactions_and_receipts()),
                true,
            ),
            false => (checked, bodies_checked),
        };
        let mut c = self.write();
        let expected = c.latest_head.map_or(0, |h| h + 1);
        if n != expected {
            return Err(ImportError::OutOfOrder { expected, got: n });
        }
        let refuse = |this: &Self, c: &mut Chain, reason: String| {
            this.refuse(c, Refusal::new(Some(n), None, reason))
        };
        let h = &block.header;
        if let Some(parent) = c.latest_head.and_then(|p| c.block(p))
            && h.parent_hash != parent.hash()
        {
            let reason = format!(
                "parent hash {} is not block {}'s {}",
                h.parent_hash,
                parent.number(),
                parent.hash()
            );
            return Err(refuse(self, &mut c, reason));
        }
        if let Err(e) = checked {
            return Err(refuse(
                self,
                &mut c,
                format!("header and body disagree: {e}"),
            ));
        }
        let root = c.latest_root();
        if n == 0 && h.pre_state_root != Root::from_digest(&StateTree::empty_root()) {
            let reason = format!(
                "genesis pre-state root {} is not the empty root",
                h.pre_state_root
            );
            return Err(refuse(self, &mut c, reason));
        }
        if h.pre_state_root != root {
            let reason = format!(
                "pre-state root {} is not the post-state root {root} of the head",
                h.pre_state_root
            );
            return Err(refuse(self, &mut c, reason));
        }
        let mut snapshot = None;
        if n == 0 {
            // The genesis is trusted as it comes: it is the first proven state, its
            // root computed here.
            let mut genesis = MemState::new();
            let post = genesis
                .apply(&block.diff)
                .map_err(|e| ImportError::Genesis(e.to_string()))?;
            if post != h.post_state_root {
                let reason = format!(
                    "post-state root {} but applying the diff gives {post}",
                    h.post_state_root
                );
                return Err(refuse(self, &mut c, reason));
            }
            c.proven = genesis;
            c.proven_head = Some(0);
            snapshot = Some(Snapshot {
                block: block.clone(),
                next_batch: c.next_batch,
                root: post,
                state: StateImage::capture(&c.proven),
            });
        }
        // The diff's check decoded it into tree updates: writing it cannot fail.
        c.latest.apply(&block.diff);
        let kept = Arc::new(match bodies_checked {
            true => Kept::checked(block),
            false => Kept::new(block),
        });
        if !bodies_checked {
            self.to_checker(&kept);
        }
        c.insert_block(kept);
        c.latest_head = Some(n);
        c.prune(self.inner.config.block_window);
        drop(c);
        metrics::gauge!("replica_latest_head").set(n as f64);
        self.inner.latest.send_replace(Some(n));
        if let Some(s) = snapshot {
            s.save(&self.inner.config.data_dir)?;
            self.inner.proven.send_replace(Some(0));
        }
        Ok(())
    }

    /// Takes a proof from the stream: kept until its blocks are applied, then checked
    /// ([`Replica::check_pending`]). Proofs of batches already proven are ignored.
    pub fn queue_batch(&self, batch: ProvenBatch) {
        let mut c = self.write();
        if batch.index < c.next_batch {
            return;
        }
        if c.pending.len() < MAX_PENDING_PROOFS || c.pending.contains_key(&batch.index) {
            c.pending.insert(batch.index, batch);
        } else {
            c.proofs_dropped = true;
        }
    }

    /// Where to resubscribe to proofs, if some were dropped and the next batch's is
    /// not waiting (the waiting ones are dropped too: the stream brings them again).
    pub(crate) fn proofs_gap(&self) -> Option<u64> {
        let mut c = self.write();
        if !c.proofs_dropped || c.pending.contains_key(&c.next_batch) {
            return None;
        }
        c.proofs_dropped = false;
        c.pending.clear();
        Some(c.next_batch)
    }

    /// Checks every waiting proof whose blocks are applied, in batch order; returns
    /// how many moved the proven head. A refused one is an error (the replica then
    /// re-synced).
    pub fn check_pending(&self) -> Result<usize, ImportError> {
        let mut proven = 0;
        while let Some(work) = self.next_work()? {
            self.check(work)?;
            proven += 1;
        }
        Ok(proven)
    }

    /// Checks `batch` at once (its blocks must be applied): [`Replica::queue_batch`]
    /// then [`Replica::check_pending`].
    pub fn import_batch(&self, batch: ProvenBatch) -> Result<usize, ImportError> {
        self.queue_batch(batch);
        self.check_pending()
    }

    fn next_work(&self) -> Result<Option<Work>, ImportError> {
        let mut c = self.write();
        let i = c.next_batch;
        let Some(last) = c.pending.get(&i).map(|b| b.last_block) else {
            return Ok(None);
        };
        if c.latest_head.is_none_or(|h| h < last) {
            return Ok(None); // Its blocks have not all come yet.
        }
        let batch = c.pending.remove(&i).expect("present");
        let proven = c.proven_head.unwrap_or(0);
        let refusal = |reason: String| Refusal::new(Some(batch.first_block), Some(i), reason);
        if c.proven_head.is_none() || batch.first_block != proven + 1 {
            let r = refusal(format!(
                "the batch starts at block {} but the proven head is {:?}",
                batch.first_block, c.proven_head
            ));
            return Err(self.refuse(&mut c, r));
        }
        if batch.last_block < batch.first_block {
            let r = refusal(format!(
                "the batch ends at block {} before its first",
                batch.last_block
            ));
            return Err(self.refuse(&mut c, r));
        }
        let pre_root = c.proven.root();
        let blocks: Option<Vec<_>> = (batch.first_block..=batch.last_block)
            .map(|n| c.block(n))
            .collect();
        let Some(blocks) = blocks else {
            let r = refusal("the batch's blocks are not all kept".into());
            return Err(self.refuse(&mut c, r));
        };
        Ok(Some(Work {
            batch,
            blocks,
            pre_root,
            epoch: c.epoch,
        }))
    }

    /// Verifies one batch outside the lock, then advances the proven state by the
    /// batch's net diff (one tree update), checks its root against the proof's
    /// `post_root` and moves the proven head.
    fn check(&self, w: Work) -> Result<(), ImportError> {
        let b = &w.batch;
        // The proven blocks are served too: their bodies check out first.
        for k in &w.blocks {
            self.checked(k).map_err(ImportError::Refused)?;
        }
        let checked = self.difference(&w);
        let mut c = self.write();
        if c.epoch != w.epoch {
            return Ok(()); // Re-synced meanwhile: the batch comes again.
        }
        let net = match checked {
            Ok(net) => net,
            Err((block, reason)) => {
                let r = Refusal::new(Some(block), Some(b.index), reason);
                return Err(self.refuse(&mut c, r));
            }
        };
        let root = c
            .proven
            .apply_net(w.blocks.iter().map(|blk| blk.diff()), &net);
        if root != b.post_root {
            // Only a proof that does not bind its statement gets here: the proven
            // state goes back to its snapshot.
            let reason = format!(
                "post-state root {} but the proven state with the batch's diffs gives {root}",
                b.post_root
            );
            match Snapshot::load(&self.inner.config.data_dir) {
                Ok(Some((_, state))) if state.root() == w.pre_root => c.proven = state,
                other => {
                    let why = match other {
                        Err(e) => e.to_string(),
                        _ => "no snapshot of the proven state".into(),
                    };
                    tracing::error!(error = %why, "replica: restoring the proven state failed");
                    return Err(ImportError::Snapshot(SnapshotError::Corrupt {
                        path: Snapshot::path(&self.inner.config.data_dir),
                        reason: format!("{reason}; restoring the proven state: {why}"),
                    }));
                }
            }
            let r = Refusal::new(Some(b.last_block), Some(b.index), reason);
            return Err(self.refuse(&mut c, r));
        }
        c.proven_head = Some(b.last_block);
        c.next_batch = b.index + 1;
        c.strikes = 0;
        c.prune(self.inner.config.block_window);
        let snap = Snapshot {
            block: Block::clone(w.blocks.last().expect("a batch has blocks").unchecked()),
            next_batch: c.next_batch,
            root,
            state: StateImage::capture(&c.proven),
        };
        drop(c);
        snap.save(&self.inner.config.data_dir)?;
        metrics::gauge!("replica_proven_head").set(b.last_block as f64);
        tracing::info!(batch = b.index, blocks = ?(b.first_block..=b.last_block), root = %root, "replica: batch proven");
        self.inner.proven.send_replace(Some(b.last_block));
        Ok(())
    }

    /// The first thing wrong with a batch, and the block it concerns: its roots and
    /// commitment against what the replica applied, then the proof under the floor.
    /// Returns the batch's net diff.
    fn difference(&self, w: &Work) -> Result<Diff, (u64, String)> {
        let b = &w.batch;
        if b.pre_root != w.pre_root {
            return Err((
                b.first_block,
                format!(
                    "pre-state root {} is not the proven root {}",
                    b.pre_root, w.pre_root
                ),
            ));
        }
        let last = w.blocks.last().expect("a batch has blocks");
        let applied_root = last.header().post_state_root;
        if b.post_root != applied_root {
            return Err((
                b.last_block,
                format!(
                    "post-state root {} but the applied blocks give {applied_root} at block {}",
                    b.post_root, b.last_block
                ),
            ));
        }
        let net = net_diff(w.blocks.iter().map(|blk| blk.diff()))
            .map_err(|e| (b.first_block, format!("net diff: {e}")))?;
        let digest = net.commitment();
        let commitment = Root::from_digest(&digest);
        if b.diff_commitment != commitment {
            return Err((
                b.first_block,
                format!(
                    "diff commitment {} but the applied diffs of blocks {}..={} give {commitment}",
                    b.diff_commitment, b.first_block, b.last_block
                ),
            ));
        }
        let bundle = TransitionProof::from_bytes(&b.bundle)
            .map_err(|e| (b.last_block, format!("undecodable proof: {e}")))?;
        // The statement is the replica's own: its proven root, the applied blocks'
        // root and the diffs it applied.
        let expected = TransitionStatement {
            pre_root: w.pre_root.to_digest(),
            post_root: applied_root.to_digest(),
            diff_commitment: digest,
            block_number: b.last_block,
        };
        self.inner
            .verifier
            .verify_transition_chunks(&bundle, &expected)
            .map_err(|e| (b.last_block, format!("the proof does not verify: {e}")))?;
        Ok(net)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resync_wait_doubles_up_to_its_cap() {
        let (base, max) = (Duration::from_millis(100), Duration::from_secs(1));
        let waits: Vec<u128> = (1..=6).map(|s| backoff(base, max, s).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(backoff(base, max, 0), base);
        assert_eq!(backoff(base, max, u32::MAX), max);
    }
}
