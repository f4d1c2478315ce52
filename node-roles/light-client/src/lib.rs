//! The ProofBox light client: it trusts its checkpoint (a block number and its state
//! root, or genesis) and the proofs, nothing else.
//!
//! - [`LightClient`]: the proven head (block, root, next batch) and the lies seen;
//!   [`LightClient::accept`] checks one published state-transition proof
//!   (`proofbox_chain_types::ProvenBatch`) against the head: blocks in order with no
//!   gap, `pre_root` the proven root, the bundle verified under this client's floor
//!   for exactly the stated roots, commitment and block; [`LightClient::follow`]
//!   follows a node's `proofs` stream;
//! - [`rpc`]: a local JSON-RPC endpoint, as Helios serves one, answering
//!   `eth_getBalance`, `eth_getTransactionCount`, `eth_getStorageAt`, `eth_getCode`
//!   and `eth_blockNumber` at the proven head from an untrusted node's `eth_getProof`
//!   answers, each checked against the proven root
//!   (`proofbox_chain_types::account_proof`). A lie is reported and answered with an
//!   error that says so, never passed on;
//! - [`page`]: the status page's view of the client (served beside JSON-RPC).
//!
//! `docs/nodes.md` ("Light client") describes the checks and the methods.

pub mod page;
pub mod rpc;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alloy_provider::{Provider, ProviderBuilder, WsConnect};
use proofbox_chain_types::{ProvenBatch, Root};
use proofbox_circuits::transition::TransitionStatement;
use proofbox_verifier::{TransitionProof, Verifier};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// Lies kept for the status method (older ones are dropped; all are logged).
pub const LIES_KEPT: usize = 100;

/// The proven head: the last proven block, its state root, and the next batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Head {
    pub block: u64,
    pub root: Root,
    /// The index of the batch that starts at `block + 1`, once known.
    pub next_batch: Option<u64>,
}

/// A lie a node told, as reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lie {
    pub source: String,
    pub what: String,
}

struct Inner {
    head: Mutex<Head>,
    lies: Mutex<Vec<Lie>>,
    verifier: Verifier,
    chain_id: u64,
    proven: watch::Sender<u64>,
    /// Where the head is kept across restarts (`head.json`), if anywhere.
    file: Option<PathBuf>,
}

/// A light client. Cloning shares it.
#[derive(Clone)]
pub struct LightClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for LightClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LightClient")
            .field("head", &self.head())
            .finish()
    }
}

impl LightClient {
    /// Starts from `checkpoint` (trusted), or from the head kept in `data_dir` if
    /// there is one (a head the client proved itself from an earlier checkpoint).
    pub fn new(
        checkpoint: Head,
        chain_id: u64,
        min_security_bits: u32,
        data_dir: Option<PathBuf>,
    ) -> Result<Self, String> {
        let verifier =
            Verifier::with_min_security_bits(min_security_bits).map_err(|e| e.to_string())?;
        let file = data_dir.map(|d| d.join("head.json"));
        let head = match &file {
            Some(f) if f.exists() => {
                let bytes = std::fs::read(f).map_err(|e| format!("{}: {e}", f.display()))?;
                let kept: Head =
                    serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", f.display()))?;
                if kept.block < checkpoint.block {
                    checkpoint
                } else {
                    kept
                }
            }
            _ => checkpoint,
        };
        if let Some(f) = &file
            && let Some(dir) = f.parent()
        {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        Ok(Self {
            inner: Arc::new(Inner {
                head: Mutex::new(head),
                lies: Mutex::new(Vec::new()),
                verifier,
                chain_id,
                proven: watch::Sender::new(head.block),
                file,
            }),
        })
    }

    pub fn head(&self) -> Head {
        *self.inner.head.lock().unwrap()
    }

    pub fn chain_id(&self) -> u64 {
        self.inner.chain_id
    }

    /// The proven block, as a channel that changes with it.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.inner.proven.subscribe()
    }

    pub fn lies(&self) -> Vec<Lie> {
        self.inner.lies.lock().unwrap().clone()
    }

    /// Records a lie: logged, counted (`light_client_lies_total`), kept for status.
    pub fn report(&self, source: &str, what: String) {
        tracing::warn!(source, "a node lied: {what}");
        metrics::counter!("light_client_lies_total").increment(1);
        let mut lies = self.inner.lies.lock().unwrap();
        if lies.len() == LIES_KEPT {
            lies.remove(0);
        }
        lies.push(Lie {
            source: source.to_string(),
            what,
        });
    }

    /// Checks `b` against the proven head and, if everything holds, makes its
    /// `post_root` the proven root. Blocking (verifies a STARK).
    pub fn accept(&self, b: &ProvenBatch) -> Result<Head, String> {
        let head = self.head();
        if b.first_block != head.block + 1 || b.last_block < b.first_block {
            return Err(format!(
                "batch {} covers blocks {}..={}, but the proven head is block {}: a skipped or reordered block",
                b.index, b.first_block, b.last_block, head.block
            ));
        }
        if let Some(n) = head.next_batch
            && b.index != n
        {
            return Err(format!("batch {} where batch {n} comes next", b.index));
        }
        if b.pre_root != head.root {
            return Err(format!(
                "batch {} starts from root {}, not the proven root {} of block {}",
                b.index, b.pre_root, head.root, head.block
            ));
        }
        let bundle = TransitionProof::from_bytes(&b.bundle)
            .map_err(|e| format!("batch {}: not a proof bundle: {e}", b.index))?;
        let expected = TransitionStatement {
            pre_root: head.root.to_digest(),
            post_root: b.post_root.to_digest(),
            diff_commitment: b.diff_commitment.to_digest(),
            block_number: b.last_block,
        };
        self.inner
            .verifier
            .verify_transition_chunks(&bundle, &expected)
            .map_err(|e| format!("batch {}: its proof is refused: {e}", b.index))?;
        let next = Head {
            block: b.last_block,
            root: b.post_root,
            next_batch: Some(b.index + 1),
        };
        {
            let mut h = self.inner.head.lock().unwrap();
            if *h != head {
                return Err("the head moved while the batch was checked".into());
            }
            *h = next;
        }
        if let Some(f) = &self.inner.file {
            let tmp = f.with_extension("json.tmp");
            let saved = std::fs::write(&tmp, serde_json::to_vec(&next).expect("serializes"))
                .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
                .and_then(|()| std::fs::rename(&tmp, f));
            if let Err(e) = saved {
                tracing::warn!("keeping the proven head in {}: {e}", f.display());
            }
        }
        self.inner.proven.send_replace(next.block);
        metrics::gauge!("light_client_proven_block").set(next.block as f64);
        Ok(next)
    }

    /// Checks `b` off the async runtime.
    pub async fn accept_async(&self, b: ProvenBatch) -> Result<Head, String> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.accept(&b))
            .await
            .map_err(|e| e.to_string())?
    }

    /// Follows the `proofs` stream of the node at `ws_url` (reconnecting after drops)
    /// until the node lies: the lie is reported and the client stops following it,
    /// staying at its last proven head.
    pub async fn follow(self, ws_url: String) {
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.follow_once(&ws_url).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::debug!("proof stream from {ws_url}: {e}; reconnecting");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// `Ok` when the node lied (following ends); `Err` on a transport problem.
    async fn follow_once(&self, ws_url: &str) -> Result<(), String> {
        let provider = ProviderBuilder::new()
            .connect_ws(WsConnect::new(ws_url))
            .await
            .map_err(|e| e.to_string())?;
        let next = match self.head().next_batch {
            Some(n) => n,
            None => {
                // The batch after the checkpoint: whatever the node says is checked
                // like any batch.
                let b: Option<ProvenBatch> = provider
                    .raw_request(
                        "proofbox_getProofByBlock".into(),
                        (alloy_primitives::U64::from(self.head().block + 1),),
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                match b {
                    Some(b) => b.index,
                    None => return Err("no proof after the checkpoint yet".into()),
                }
            }
        };
        let mut sub = provider
            .subscribe::<_, ProvenBatch>(("proofs", serde_json::json!({ "fromBatch": next })))
            // Room for the stored proofs that arrive at once (alloy's default is 16).
            .channel_size(1024)
            .await
            .map_err(|e| e.to_string())?;
        loop {
            let b = sub.recv().await.map_err(|e| e.to_string())?;
            if let Err(lie) = self.accept_async(b).await {
                self.report(ws_url, lie);
                return Ok(());
            }
        }
    }

    /// Fetches and checks proofs from the node at `http_url` until the proven head
    /// reaches `block` (a node answering for a later block is caught up with).
    pub async fn catch_up(&self, http_url: &str, block: u64) -> Result<(), String> {
        let provider = ProviderBuilder::new().connect_http(
            http_url
                .parse()
                .map_err(|e| format!("node URL {http_url}: {e}"))?,
        );
        while self.head().block < block {
            let want = self.head().block + 1;
            let b: Option<ProvenBatch> = provider
                .raw_request(
                    "proofbox_getProofByBlock".into(),
                    (alloy_primitives::U64::from(want),),
                )
                .await
                .map_err(|e| format!("fetching the proof of block {want}: {e}"))?;
            let Some(b) = b else {
                return Err(format!("no proof of block {want} is published yet"));
            };
            if let Err(lie) = self.accept_async(b).await {
                self.report(http_url, lie.clone());
                return Err(lie);
            }
        }
        Ok(())
    }
}

/// Installs rustls' ring provider (reqwest, under alloy's HTTP transport, is built
/// without a default one here).
pub fn install_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
