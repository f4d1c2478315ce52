//! The running sequencer: admission into the pool (and its journal), block production
//! on a thread of its own, the block log, and the head that subscribers watch.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use alloy_primitives::{Address, B256};
use proofbox_chain_types::{Block, Header, Root, SignedTx, receipts_root, transactions_root};
use tokio::sync::watch;

use crate::chain::{Core, genesis};
use crate::config::Config;
use crate::exec::{BlockParams, execute_block};
use crate::log::{BlockLog, LogError};
use crate::pool::{Mempool, PoolError, Rules};
use crate::pool_log::{Entry, JournalError, PoolJournal};

/// Why the sequencer does not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("replaying the block log: {0}")]
    Replay(String),
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// Why a block could not be produced. After one, the sequencer stops producing.
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    #[error("execution: {0}")]
    Exec(String),
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("the sequencer has stopped after an earlier failure")]
    Halted,
}

/// Remembered refusals of transactions that passed admission but not execution.
const REJECTIONS_KEPT: usize = 10_000;

struct Shared {
    config: Config,
    core: RwLock<Core>,
    pool: Mutex<Mempool>,
    pool_gas: Mutex<u64>,
    rejected: Mutex<std::collections::HashMap<B256, String>>,
    log: Mutex<Option<BlockLog>>,
    /// The pool journal (with a data directory). Records are queued under the
    /// `pool` lock, in the order of the pool's changes.
    journal: Option<PoolJournal>,
    produce: Mutex<()>,
    head: watch::Sender<u64>,
    halted: AtomicBool,
    stop: AtomicBool,
    wake: SyncSender<()>,
    proofs: Arc<crate::proving::Proofs>,
}

/// A sequencer. Cloning shares it.
#[derive(Clone)]
pub struct Sequencer {
    shared: Arc<Shared>,
    thread: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl std::fmt::Debug for Sequencer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sequencer")
            .field("head", &*self.shared.head.borrow())
            .finish()
    }
}

/// Milliseconds since the Unix epoch (block timestamps, batch ages, lags).
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Sequencer {
    /// Builds the genesis state, replays the block log and then the pool journal (if
    /// `data_dir` is set) and, if `produce` is true, starts producing blocks every
    /// `block_time`.
    pub fn start(config: Config, produce: bool) -> Result<Self, StartError> {
        config.validate().map_err(StartError::Config)?;
        let mut core = genesis(&config.alloc(), config.gas_limit, config.base_fee)
            .map_err(StartError::Config)?;
        let log = match &config.data_dir {
            Some(dir) => {
                let (log, blocks) = BlockLog::open(dir)?;
                let n = blocks.len();
                for b in blocks {
                    core.import_trusted(b).map_err(StartError::Replay)?;
                }
                if n > 0 {
                    tracing::info!(blocks = n, head = core.chain.head(), root = %core.state.root(), "replayed the block log");
                }
                Some(log)
            }
            None => None,
        };
        let (pool, journal) = match &config.data_dir {
            Some(dir) => {
                let (journal, entries) = PoolJournal::open(dir)?;
                let pool = restore_pool(&core, &Rules::of(&config), entries);
                // The journal now holds exactly the pool (and is known to exist).
                journal.compact(pool.in_arrival_order())?;
                (pool, Some(journal))
            }
            None => (Mempool::default(), None),
        };
        let proofs = Arc::new(crate::proving::Proofs::open(config.data_dir.as_deref())?);
        if let Some(p) = proofs.head() {
            tracing::info!(
                batches = p.index + 1,
                proven = p.last_block,
                "replayed the proving journal"
            );
        }
        let head = core.chain.head();
        let (wake, wake_rx) = sync_channel(1);
        let shared = Arc::new(Shared {
            config,
            core: RwLock::new(core),
            pool_gas: Mutex::new(pool.total_gas()),
            pool: Mutex::new(pool),
            rejected: Mutex::new(Default::default()),
            log: Mutex::new(log),
            journal,
            produce: Mutex::new(()),
            head: watch::Sender::new(head),
            halted: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            wake,
            proofs,
        });
        let seq = Self {
            shared,
            thread: Arc::new(Mutex::new(None)),
        };
        if produce {
            let s = seq.clone();
            let handle = std::thread::Builder::new()
                .name("block-producer".into())
                .spawn(move || s.producer(wake_rx))
                .expect("spawn the block producer");
            *seq.thread.lock().unwrap() = Some(handle);
        }
        Ok(seq)
    }

    fn producer(&self, wake: Receiver<()>) {
        let interval = self.shared.config.block_time;
        let mut next = Instant::now() + interval;
        loop {
            let timeout = next.saturating_duration_since(Instant::now());
            let full = match wake.recv_timeout(timeout) {
                Ok(()) => true,
                Err(RecvTimeoutError::Timeout) => false,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            if self.shared.stop.load(Ordering::SeqCst) {
                return;
            }
            if !full {
                next += interval;
                let now = Instant::now();
                if next < now {
                    next = now + interval;
                }
            }
            if let Err(e) = self.produce(self.shared.config.empty_blocks && !full) {
                tracing::error!(error = %e, "block production failed; the sequencer stops producing");
                metrics::counter!("sequencer_production_failures_total").increment(1);
                return;
            }
        }
    }

    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// Reads the state and chain under the lock (keep `f` short).
    pub fn read(&self) -> RwLockReadGuard<'_, Core> {
        self.shared.core.read().unwrap()
    }

    /// The published state-transition proofs ([`crate::proving`]).
    pub fn proofs(&self) -> &Arc<crate::proving::Proofs> {
        &self.shared.proofs
    }

    /// The newest block number, as a channel that changes with each block.
    pub fn head(&self) -> watch::Receiver<u64> {
        self.shared.head.subscribe()
    }

    /// The block the next transaction would run in (for `eth_call`).
    pub fn next_block_params(&self) -> BlockParams {
        let core = self.read();
        let parent = &core.chain.head_block().header;
        self.params(parent)
    }

    fn params(&self, parent: &Header) -> BlockParams {
        let c = &self.shared.config;
        BlockParams {
            chain_id: c.chain_id,
            number: parent.number + 1,
            timestamp_ms: now_ms().max(parent.timestamp_ms),
            gas_limit: c.gas_limit,
            base_fee: c.base_fee,
            coinbase: c.coinbase,
        }
    }

    /// `sender`'s nonce counting its pending transactions.
    pub fn pending_nonce(&self, sender: &Address) -> u64 {
        let nonce = self.read().state.nonce(sender);
        self.shared
            .pool
            .lock()
            .unwrap()
            .pending_nonce(sender, nonce)
    }

    /// A pending transaction by hash.
    pub fn pending_tx(&self, hash: &B256) -> Option<SignedTx> {
        self.shared.pool.lock().unwrap().get(hash).cloned()
    }

    /// Why execution refused a transaction that had been admitted, if it did.
    pub fn rejection(&self, hash: &B256) -> Option<String> {
        self.shared.rejected.lock().unwrap().get(hash).cloned()
    }

    /// Decodes, checks and queues a raw transaction. With a data directory it returns
    /// once the transaction is in the pool journal, synced (it blocks for the sync).
    pub fn submit(&self, raw: &[u8]) -> Result<B256, PoolError> {
        let tx = SignedTx::decode(raw)?;
        self.submit_tx(tx)
    }

    /// [`Sequencer::submit`] of a decoded transaction.
    pub fn submit_tx(&self, tx: SignedTx) -> Result<B256, PoolError> {
        let c = &self.shared.config;
        let rules = Rules::of(c);
        let gas = tx.gas_limit();
        let journal = self.shared.journal.as_ref();
        if let Some(j) = journal {
            j.check()?;
        }
        let raw = journal.map(|_| tx.encoded());
        let (nonce, balance) = {
            let core = self.read();
            (
                core.state.nonce(&tx.sender()),
                core.state.balance(&tx.sender()),
            )
        };
        let (hash, ticket) = {
            let mut pool = self.shared.pool.lock().unwrap();
            let hash = pool.add(tx, &rules, nonce, balance)?;
            let ticket = journal
                .zip(raw)
                .map(|(j, raw)| j.enqueue(&Entry::Added(raw)));
            (hash, ticket)
        };
        if let (Some(j), Some(ticket)) = (journal, ticket)
            && let Err(e) = j.wait(ticket)
        {
            // Not acknowledged, so not kept.
            self.shared.pool.lock().unwrap().remove(&hash);
            return Err(e.into());
        }
        metrics::counter!("sequencer_transactions_admitted_total").increment(1);
        let mut pool_gas = self.shared.pool_gas.lock().unwrap();
        *pool_gas += gas;
        if *pool_gas >= c.gas_limit {
            let _ = self.shared.wake.try_send(());
        }
        Ok(hash)
    }

    /// Builds one block from the pool now: `Ok(None)` if nothing is pending (unless
    /// `empty` asks for an empty block). The block is in the log, synced, before the
    /// head moves.
    pub fn produce(&self, empty: bool) -> Result<Option<Arc<Block>>, ProduceError> {
        let _one_at_a_time = self.shared.produce.lock().unwrap();
        if self.shared.halted.load(Ordering::SeqCst) {
            return Err(ProduceError::Halted);
        }
        let (candidates, params) = {
            let core = self.read();
            let pool = self.shared.pool.lock().unwrap();
            let candidates = pool.candidates(|a| core.state.nonce(a));
            (candidates, self.params(&core.chain.head_block().header))
        };
        if candidates.is_empty() && !empty {
            return Ok(None);
        }
        let started = Instant::now();
        let executed = {
            let core = self.read();
            execute_block(&core.state, &params, candidates)
                .map_err(|e| ProduceError::Exec(e.to_string()))?
        };
        if executed.included.is_empty() && !empty {
            self.forget(&executed.rejected);
            return Ok(None);
        }
        let result = self.seal(params, &executed);
        if result.is_err() {
            self.shared.halted.store(true, Ordering::SeqCst);
        }
        let block = result?;
        {
            let mut pool = self.shared.pool.lock().unwrap();
            for tx in &executed.included {
                pool.remove(&tx.hash());
            }
            let core = self.read();
            for tx in &executed.included {
                pool.prune(&tx.sender(), core.state.nonce(&tx.sender()));
            }
            drop(core);
            *self.shared.pool_gas.lock().unwrap() = pool.total_gas();
            if let Some(j) = &self.shared.journal
                && j.wants_compaction(pool.len())
                && let Err(e) = j.compact(pool.in_arrival_order())
            {
                tracing::error!(error = %e, "the pool journal could not be rewritten");
            }
        }
        self.forget(&executed.rejected);
        metrics::counter!("sequencer_blocks_total").increment(1);
        metrics::counter!("sequencer_transactions_included_total")
            .increment(executed.included.len() as u64);
        metrics::gauge!("sequencer_head").set(block.number() as f64);
        metrics::histogram!("sequencer_block_seconds").record(started.elapsed().as_secs_f64());
        self.shared.head.send_replace(block.number());
        Ok(Some(block))
    }

    fn forget(&self, rejected: &[(SignedTx, String)]) {
        if rejected.is_empty() {
            return;
        }
        let mut pool = self.shared.pool.lock().unwrap();
        let mut kept = self.shared.rejected.lock().unwrap();
        if kept.len() + rejected.len() > REJECTIONS_KEPT {
            kept.clear();
        }
        let mut ticket = None;
        for (tx, why) in rejected {
            tracing::debug!(tx = %tx.hash(), reason = %why, "execution refused a pooled transaction");
            pool.remove(&tx.hash());
            kept.insert(tx.hash(), why.clone());
            if let Some(j) = &self.shared.journal {
                ticket = Some(j.enqueue(&Entry::Dropped(tx.hash())));
            }
        }
        drop((pool, kept));
        // Synced so that a refused transaction does not come back at restart.
        if let (Some(j), Some(t)) = (&self.shared.journal, ticket)
            && let Err(e) = j.wait(t)
        {
            tracing::error!(error = %e, "recording refused transactions in the pool journal");
        }
    }

    /// Applies the executed block to the state, logs it and appends it to the chain.
    fn seal(
        &self,
        params: BlockParams,
        executed: &crate::exec::Executed,
    ) -> Result<Arc<Block>, ProduceError> {
        let commitment = executed
            .diff
            .to_state_diff()
            .map_err(|e| ProduceError::Exec(e.to_string()))?
            .commitment();
        let mut core = self.shared.core.write().unwrap();
        let parent = core.chain.head_block().clone();
        let pre = core.state.root();
        let post = core
            .state
            .apply(&executed.diff)
            .map_err(|e| ProduceError::Exec(e.to_string()))?;
        let header = Header {
            number: params.number,
            parent_hash: parent.hash(),
            timestamp_ms: params.timestamp_ms,
            coinbase: params.coinbase,
            transactions_root: transactions_root(&executed.included),
            receipts_root: receipts_root(&executed.receipts),
            pre_state_root: pre,
            post_state_root: post,
            diff_commitment: Root::from_digest(&commitment),
            gas_used: executed.gas_used,
            gas_limit: params.gas_limit,
            base_fee: params.base_fee,
        };
        let block = Arc::new(Block {
            header,
            transactions: executed.included.clone(),
            receipts: executed.receipts.clone(),
            diff: executed.diff.clone(),
        });
        if let Some(log) = self.shared.log.lock().unwrap().as_mut() {
            log.append(&block)?;
        }
        core.state.push_block_hash(block.hash());
        core.chain.push(block.clone());
        Ok(block)
    }

    /// Stops producing blocks (the producer thread exits after its current block).
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = self.shared.wake.try_send(());
        if let Some(h) = self.thread.lock().unwrap().take() {
            let _ = h.join();
        }
    }
}

/// The pool the journal's `entries` leave, replayed in order through admission
/// against the replayed state: a transaction already mined (its nonce below its
/// sender's) is dropped, as is one that no longer passes the checks (with a log line).
fn restore_pool(core: &Core, rules: &Rules, entries: Vec<Entry>) -> Mempool {
    let mut pool = Mempool::default();
    let (mut records, mut mined, mut refused) = (0usize, 0usize, 0usize);
    for entry in entries {
        records += 1;
        match entry {
            Entry::Added(raw) => {
                let tx = match SignedTx::decode(&raw) {
                    Ok(tx) => tx,
                    Err(e) => {
                        tracing::warn!(error = %e, "a journaled transaction no longer decodes; dropped");
                        refused += 1;
                        continue;
                    }
                };
                let (hash, sender) = (tx.hash(), tx.sender());
                let (nonce, balance) = (core.state.nonce(&sender), core.state.balance(&sender));
                match pool.add(tx, rules, nonce, balance) {
                    Ok(_) | Err(PoolError::AlreadyKnown) => {}
                    Err(PoolError::NonceTooLow { .. }) => mined += 1,
                    Err(e) => {
                        tracing::warn!(tx = %hash, reason = %e, "a journaled transaction no longer passes admission; dropped");
                        refused += 1;
                    }
                }
            }
            Entry::Dropped(hash) => pool.remove(&hash),
        }
    }
    if records > 0 {
        tracing::info!(
            records,
            pending = pool.len(),
            mined,
            refused,
            "replayed the pool journal"
        );
    }
    pool
}
