//! The blocks the replica keeps and the check of their bodies: each block's
//! transactions and receipts against its header's transactions and receipts roots
//! (and its gas used), off the apply path.
//!
//! - What the state needs (the diff, its commitment in the header, the parent hash,
//!   the pre-state root) is checked when a block is applied, as ever. The bodies
//!   concern only what the replica serves: the proof binds the state, not them.
//! - [`BodyChecks`] says when the bodies are checked: before applying (`Eager`, the
//!   full node's order), by a worker thread that checks applied blocks in order
//!   (`Background`, the default), or only when first needed (`OnUse`).
//! - Whatever the mode, nothing derived from a block's body (its transactions, its
//!   receipts, its logs, the block itself) is served before its bodies checked out:
//!   every RPC read goes through [`Replica::checked`], which checks a block right then
//!   if nobody has yet. A batch's blocks are checked before the batch's proof moves
//!   the proven head, so every proven block's bodies checked out.
//! - A block whose bodies do not match its header is a detected lie: refused like a
//!   block that fails any other check (logged, counted, listed, the replica re-syncs
//!   from the proven head, which is before it) and never served. Each block is checked
//!   once ([`OnceLock`]) and reported once, whoever finds it first.
//! - Transactions come from the stream unrecovered
//!   ([`proofbox_chain_types::SignedTx::decode_unrecovered`]): a sender is recovered
//!   when a transaction is served ([`Replica::recover_senders`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};

use alloy_primitives::B256;
use proofbox_chain_types::{Block, Header, StateDiff};
use rayon::prelude::*;

use crate::refusals::Refusal;
use crate::replica::{Inner, Replica};

/// When the replica checks a block's transactions and receipts against its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BodyChecks {
    /// Before applying the block, with its diff (a block whose bodies do not match is
    /// not applied).
    Eager,
    /// After applying it, by a worker thread that checks the applied blocks in order;
    /// a block needed earlier (served, or proven) is checked right then.
    #[default]
    Background,
    /// Only when first needed: served, or its batch proven.
    OnUse,
}

/// A block the replica applied, and the check of its bodies.
#[derive(Debug)]
pub struct Kept {
    block: Arc<Block>,
    /// The check's result, once checked.
    bodies: OnceLock<Result<(), String>>,
    /// Set once the body refusal, or an unrecoverable sender, was reported.
    reported: AtomicBool,
}

impl Kept {
    /// A block applied with its bodies not checked yet.
    pub(crate) fn new(block: Block) -> Self {
        Self {
            block: Arc::new(block),
            bodies: OnceLock::new(),
            reported: AtomicBool::new(false),
        }
    }

    /// A block whose bodies checked out already.
    pub(crate) fn checked(block: Block) -> Self {
        let k = Self::new(block);
        k.bodies.set(Ok(())).expect("a new cell");
        k
    }

    pub fn header(&self) -> &Header {
        &self.block.header
    }

    pub fn number(&self) -> u64 {
        self.block.number()
    }

    pub fn hash(&self) -> B256 {
        self.block.hash()
    }

    pub fn diff(&self) -> &StateDiff {
        &self.block.diff
    }

    /// The check's result; `None` while not checked.
    pub fn bodies(&self) -> Option<&Result<(), String>> {
        self.bodies.get()
    }

    /// The whole block, its bodies possibly not checked yet: for the state's uses and
    /// for finding a transaction; what is served comes from [`Replica::checked`].
    pub fn unchecked(&self) -> &Arc<Block> {
        &self.block
    }

    /// Checks the bodies if nobody has (once; a concurrent caller waits for it).
    fn check(&self) -> &Result<(), String> {
        self.bodies
            .get_or_init(|| self.block.check_transactions_and_receipts())
    }
}

/// The blocks given to the worker and not checked yet.
#[derive(Default)]
pub(crate) struct Backlog {
    queued: Mutex<u64>,
    idle: Condvar,
}

impl Backlog {
    fn lock(&self) -> std::sync::MutexGuard<'_, u64> {
        self.queued.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn len(&self) -> u64 {
        *self.lock()
    }

    fn add(&self) {
        *self.lock() += 1;
    }

    fn done(&self) {
        let mut q = self.lock();
        *q = q.saturating_sub(1);
        if *q == 0 {
            self.idle.notify_all();
        }
    }

    fn wait(&self) {
        let mut q = self.lock();
        while *q > 0 {
            q = self.idle.wait(q).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// The worker: checks each block it is given, in order, unless the replica dropped it
/// meanwhile (a re-sync); ends with the replica.
pub(crate) fn spawn_checker(inner: Weak<Inner>, blocks: Receiver<Arc<Kept>>) {
    let run = move || {
        while let Ok(kept) = blocks.recv() {
            let Some(inner) = inner.upgrade() else { return };
            let replica = Replica { inner };
            if replica.keeps(&kept) {
                let _ = replica.checked(&kept);
            }
            replica.inner.backlog.done();
        }
    };
    std::thread::Builder::new()
        .name("replica-bodies".into())
        .spawn(run)
        .expect("spawning the body checker");
}

/// Gives `kept` to the worker (in application order: called under the chain's lock).
pub(crate) fn queue(to: &Sender<Arc<Kept>>, backlog: &Backlog, kept: &Arc<Kept>) {
    backlog.add();
    if to.send(kept.clone()).is_err() {
        backlog.done(); // No worker: it is checked on use.
    }
}

impl Replica {
    /// Whether the chain still holds this very block (not dropped by a re-sync).
    fn keeps(&self, kept: &Kept) -> bool {
        let c = self.read();
        c.block(kept.number())
            .is_some_and(|k| std::ptr::eq(Arc::as_ptr(&k), kept))
    }

    /// `kept`'s block, once its transactions and receipts checked out against its
    /// header (checked now if nobody has yet). A block whose bodies do not match is
    /// refused (reported once, by whoever finds it first: log, metric, list, and a
    /// re-sync if the replica still holds it) and its refusal returned: it is never
    /// served. Never call it while holding the chain's lock.
    pub fn checked(&self, kept: &Kept) -> Result<Arc<Block>, Refusal> {
        match kept.check() {
            Ok(()) => Ok(kept.block.clone()),
            Err(reason) => Err(self.body_refused(kept, reason)),
        }
    }

    fn body_refused(&self, kept: &Kept, reason: &str) -> Refusal {
        let n = kept.number();
        let r = Refusal::new(Some(n), None, format!("header and body disagree: {reason}"));
        let mut c = self.write();
        if kept.reported.swap(true, Ordering::SeqCst) {
            return r;
        }
        let held = c
            .block(n)
            .is_some_and(|k| std::ptr::eq(Arc::as_ptr(&k), kept));
        // A proven block's bodies checked out before its batch was proven, so a held
        // block that fails is after the proven head: the re-sync fetches it again.
        if held && c.proven_head.is_none_or(|p| n > p) {
            let _ = self.refuse(&mut c, r.clone());
        } else {
            self.record(&mut c, r.clone());
        }
        r
    }

    /// Recovers the senders of `block`'s transactions `which` (all of them if `None`),
    /// across cores; a signature that recovers no sender (an invalid transaction the
    /// header's transactions root commits to) is reported once, listed with the
    /// refusals (re-fetching the block cannot change it), and returned as an error.
    pub fn recover_senders(&self, kept: &Kept, which: Option<usize>) -> Result<(), Refusal> {
        let txs = &kept.block.transactions;
        let bad = match which {
            Some(i) => txs.get(i).filter(|t| t.recover().is_err()),
            None => txs.par_iter().find_first(|t| t.recover().is_err()),
        };
        let Some(tx) = bad else { return Ok(()) };
        let r = Refusal::new(
            Some(kept.number()),
            None,
            format!(
                "transaction {}: its signature recovers no sender",
                tx.hash()
            ),
        );
        let mut c = self.write();
        if !kept.reported.swap(true, Ordering::SeqCst) {
            self.record(&mut c, r.clone());
        }
        Err(r)
    }

    /// Waits until the worker has checked every block it was given (at once in the
    /// other modes).
    pub fn wait_bodies_checked(&self) {
        self.inner.backlog.wait();
    }

    /// Blocks given to the worker and not checked yet.
    pub fn bodies_to_check(&self) -> u64 {
        self.inner.backlog.len()
    }
}
