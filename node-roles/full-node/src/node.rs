//! The running full node: import (verify, then store) and following the sequencer.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alloy_provider::{Provider, ProviderBuilder, WsConnect};
use proofbox_chain_types::{Block, Root};
use proofbox_sequencer::rpc::subs::StreamBlock;
use proofbox_state::{Parallelism, StateTree};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::store::{Store, StoreError};
use crate::verify::reexecute;

/// A block the sequencer got wrong, and the first difference found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mismatch {
    pub block: u64,
    pub difference: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The block is wrong: the node stops following this chain.
    #[error("block {}: {}", .0.block, .0.difference)]
    Mismatch(Mismatch),
    /// The node stopped at an earlier mismatch and imports nothing more.
    #[error("stopped at block {}: {}", .0.block, .0.difference)]
    Stopped(Mismatch),
    /// Not the next block (a transport problem, not a lie): resubscribe.
    #[error("expected block {expected}, got {got}")]
    OutOfOrder { expected: u64, got: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

struct Inner {
    store: Store,
    chain_id: u64,
    tree: Mutex<StateTree>,
    root: Mutex<Root>,
    mismatch: Mutex<Option<Mismatch>>,
    head: watch::Sender<Option<u64>>,
    import: Mutex<()>,
}

/// A full node. Cloning shares it.
#[derive(Clone)]
pub struct FullNode {
    inner: Arc<Inner>,
}

impl FullNode {
    /// Opens (or creates) the node's database in `dir` and rebuilds the state tree.
    pub fn open(dir: &Path, chain_id: u64) -> Result<Self, StoreError> {
        let store = Store::open(dir)?;
        let head = store.head()?;
        let tree = store.tree()?;
        let root = Root::from_digest(&tree.root());
        if let Some(n) = head {
            let b = store
                .block(n)?
                .ok_or_else(|| StoreError(format!("block {n} missing")))?;
            if b.header.post_state_root != root {
                return Err(StoreError(format!(
                    "the stored state's root {root} is not block {n}'s {}",
                    b.header.post_state_root
                )));
            }
        }
        let mismatch = match store.meta("mismatch")? {
            Some(v) => serde_json::from_slice(&v).ok(),
            None => None,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                chain_id,
                tree: Mutex::new(tree),
                root: Mutex::new(root),
                mismatch: Mutex::new(mismatch),
                head: watch::Sender::new(head),
                import: Mutex::new(()),
            }),
        })
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn chain_id(&self) -> u64 {
        self.inner.chain_id
    }

    pub fn head(&self) -> Option<u64> {
        *self.inner.head.borrow()
    }

    pub fn watch_head(&self) -> watch::Receiver<Option<u64>> {
        self.inner.head.subscribe()
    }

    /// The root of the verified state.
    pub fn root(&self) -> Root {
        *self.inner.root.lock().unwrap()
    }

    pub fn mismatch(&self) -> Option<Mismatch> {
        self.inner.mismatch.lock().unwrap().clone()
    }

    /// `proofbox_status`.
    pub fn status(&self) -> serde_json::Value {
        let m = self.mismatch();
        serde_json::json!({
            "role": "full",
            "head": self.head(),
            "stateRoot": self.root().hex(),
            "following": m.is_none(),
            "mismatch": m,
        })
    }

    fn fail(&self, block: u64, difference: String) -> ImportError {
        let m = Mismatch { block, difference };
        tracing::error!(block, difference = %m.difference, "the sequencer's block does not check out; stopped following");
        metrics::counter!("full_node_mismatches_total").increment(1);
        if let Ok(v) = serde_json::to_vec(&m) {
            let _ = self.inner.store.set_meta("mismatch", &v);
        }
        *self.inner.mismatch.lock().unwrap() = Some(m.clone());
        ImportError::Mismatch(m)
    }

    /// Checks `block` against the node's own state and stores it: it must extend the
    /// head, its header must commit to its body, re-execution must give the same
    /// receipts and diff, and the roots must be the node's. Block 0 (genesis) is taken
    /// as it comes, its roots checked.
    pub fn import(&self, block: Block) -> Result<(), ImportError> {
        let _one = self.inner.import.lock().unwrap();
        if let Some(m) = self.mismatch() {
            return Err(ImportError::Stopped(m));
        }
        let n = block.number();
        let head = self.head();
        let expected = head.map_or(0, |h| h + 1);
        if n != expected {
            return Err(ImportError::OutOfOrder { expected, got: n });
        }
        let h = &block.header;
        // The parent is checked through the hash index: decoding the stored head block
        // would recover every one of its transactions' senders again.
        if let Some(hn) = head
            && self.inner.store.block_number(&h.parent_hash)? != Some(hn)
        {
            let parent = self.inner.store.block(hn)?.expect("the head is stored");
            return Err(self.fail(
                n,
                format!(
                    "parent hash {} is not block {hn}'s {}",
                    h.parent_hash,
                    parent.hash()
                ),
            ));
        }
        if let Err(e) = block.check_body() {
            return Err(self.fail(n, format!("header and body disagree: {e}")));
        }
        let root = self.root();
        if h.pre_state_root != root {
            return Err(self.fail(
                n,
                format!(
                    "pre-state root {} is not the node's {root}",
                    h.pre_state_root
                ),
            ));
        }
        let diff = if n == 0 {
            block.diff.clone()
        } else {
            let view = self.inner.store.view()?;
            match reexecute(&view, &block, self.inner.chain_id) {
                Ok(d) => d,
                Err(e) => return Err(self.fail(n, e)),
            }
        };
        let tree_diff = match diff.to_state_diff() {
            Ok(d) => d,
            Err(e) => return Err(self.fail(n, format!("state diff: {e}"))),
        };
        let post = {
            let mut tree = self.inner.tree.lock().unwrap();
            Root::from_digest(&tree.apply(&tree_diff, Parallelism::Parallel))
        };
        if post != h.post_state_root {
            return Err(self.fail(
                n,
                format!(
                    "post-state root {} but re-execution gives {post}",
                    h.post_state_root
                ),
            ));
        }
        self.inner.store.commit(&block, &diff)?;
        *self.inner.root.lock().unwrap() = post;
        self.inner.head.send_replace(Some(n));
        metrics::gauge!("full_node_head").set(n as f64);
        Ok(())
    }

    /// Follows the sequencer's block stream at `ws_url` from the node's next block,
    /// reconnecting after drops, until a mismatch stops it.
    pub async fn follow(self, ws_url: String) {
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.follow_once(&ws_url).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "block stream lost; reconnecting");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    async fn follow_once(&self, ws_url: &str) -> Result<(), String> {
        let provider = ProviderBuilder::new()
            .connect_ws(WsConnect::new(ws_url))
            .await
            .map_err(|e| e.to_string())?;
        let from = self.head().map_or(0, |h| h + 1);
        let mut sub = provider
            .subscribe::<_, serde_json::Value>(("blocks", serde_json::json!({ "fromBlock": from })))
            .await
            .map_err(|e| e.to_string())?;
        loop {
            let v = sub.recv().await.map_err(|e| e.to_string())?;
            let block = match serde_json::from_value::<StreamBlock>(v) {
                Ok(b) => b.into_block(),
                Err(e) => {
                    let at = self.head().map_or(0, |h| h + 1);
                    let _ = self.fail(at, format!("undecodable block from the stream: {e}"));
                    return Ok(());
                }
            };
            let this = self.clone();
            match tokio::task::spawn_blocking(move || this.import(block))
                .await
                .map_err(|e| e.to_string())?
            {
                Ok(()) => {}
                Err(ImportError::Mismatch(_) | ImportError::Stopped(_)) => return Ok(()),
                Err(e) => return Err(e.to_string()),
            }
        }
    }
}
