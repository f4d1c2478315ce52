//! Following the sequencer: one WebSocket connection with two subscriptions, the
//! `blocks` stream from the block after the latest head and the `proofs` stream from
//! the next batch to verify. A drop reconnects and resumes from there; after a
//! refusal the replica waits its back-off, then resubscribes from the proven head.
//! A block is read from the stream without recovering its transactions' senders
//! ([`StreamBlock`]): nothing the replica applies or checks needs them, and one is
//! recovered when its transaction is served.

use std::time::Duration;

use alloy_primitives::B256;
use alloy_provider::{Provider, ProviderBuilder, WsConnect};
use proofbox_chain_types::{Block, Header, ProvenBatch, Receipt, SignedTx, StateDiff};
use serde::Deserialize;

use rayon::prelude::*;

use crate::replica::{ImportError, Replica};

/// The most blocks taken from the stream at once.
pub const MAX_BLOCKS_AT_ONCE: usize = 64;

/// A block as the sequencer's `blocks` stream delivers it
/// (`proofbox_sequencer::rpc::subs::StreamBlock`'s fields), its transactions decoded
/// without recovering their senders
/// ([`proofbox_chain_types::unrecovered_transactions`]).
#[derive(Debug, Deserialize)]
pub struct StreamBlock {
    /// The sender's word for the hash; the block's hash is recomputed from its header.
    pub hash: B256,
    pub header: Header,
    #[serde(deserialize_with = "proofbox_chain_types::unrecovered_transactions")]
    pub transactions: Vec<SignedTx>,
    pub receipts: Vec<Receipt>,
    pub diff: StateDiff,
}

impl StreamBlock {
    pub fn into_block(self) -> Block {
        Block {
            header: self.header,
            transactions: self.transactions,
            receipts: self.receipts,
            diff: self.diff,
        }
    }
}

/// Why following stopped without a transport error.
enum Outcome {
    /// Re-synced after a refusal: subscribe again from the proven head.
    Resync,
}

impl Replica {
    /// Follows the sequencer at `ws_url` for good: reconnecting after drops, and
    /// re-syncing after refusals (after the back-off).
    pub async fn follow(self, ws_url: String) {
        let mut backoff = Duration::from_millis(100);
        loop {
            self.wait_resync().await;
            match self.follow_once(&ws_url).await {
                Ok(Outcome::Resync) => backoff = Duration::from_millis(100),
                Err(e) => {
                    tracing::warn!(error = %e, "replica: stream lost; reconnecting");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    async fn run_blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(Replica) -> T + Send + 'static,
    ) -> Result<T, String> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || f(this))
            .await
            .map_err(|e| e.to_string())
    }

    /// A refusal, or any error after a re-sync (the blocks then come from the proven
    /// head again), re-syncs; another error is a transport problem.
    fn outcome(&self, e: ImportError, epoch: u64) -> Result<Outcome, String> {
        match e {
            ImportError::Refused(_) => Ok(Outcome::Resync),
            _ if self.epoch() != epoch => Ok(Outcome::Resync),
            e => Err(e.to_string()),
        }
    }

    async fn follow_once(&self, ws_url: &str) -> Result<Outcome, String> {
        let provider = ProviderBuilder::new()
            .connect_ws(WsConnect::new(ws_url))
            .await
            .map_err(|e| e.to_string())?;
        // Subscribed before the resume point is read: a re-sync after it shows.
        let mut epochs = self.watch_epoch();
        let (from_block, from_batch, epoch) = self.resume_point();
        let mut blocks = provider
            .subscribe::<_, serde_json::Value>((
                "blocks",
                serde_json::json!({ "fromBlock": from_block }),
            ))
            .await
            .map_err(|e| e.to_string())?;
        let mut proofs = provider
            .subscribe::<_, serde_json::Value>((
                "proofs",
                serde_json::json!({ "fromBatch": format!("{from_batch:#x}") }),
            ))
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(from_block, from_batch, "replica: following {ws_url}");
        loop {
            if self.epoch() != epoch {
                return Ok(Outcome::Resync);
            }
            tokio::select! {
                // A re-sync from elsewhere (the body checker, a request that found a
                // body refused): resubscribe from the proven head.
                _ = epochs.changed() => return Ok(Outcome::Resync),
                v = blocks.recv() => {
                    // The blocks already waiting come too (catching up): decoded
                    // in parallel (no sender recovered), their diffs checked together,
                    // then imported in order.
                    let mut raw = vec![v.map_err(|e| e.to_string())?];
                    while raw.len() < MAX_BLOCKS_AT_ONCE {
                        match blocks.try_recv() {
                            Ok(v) => raw.push(v),
                            Err(_) => break, // Empty; a lag or close shows at `recv`.
                        }
                    }
                    let imported = self
                        .run_blocking(move |r| {
                            let decoded: Result<Vec<_>, _> = raw
                                .into_par_iter()
                                .map(|v| serde_json::from_value::<StreamBlock>(v).map(StreamBlock::into_block))
                                .collect();
                            decoded.map(|blocks| r.import_blocks(blocks))
                        })
                        .await?;
                    match imported {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => return self.outcome(e, epoch),
                        Err(e) => return Err(format!("undecodable block from the stream: {e}")),
                    }
                }
                v = proofs.recv() => {
                    let v = v.map_err(|e| e.to_string())?;
                    match serde_json::from_value::<ProvenBatch>(v) {
                        Ok(b) => self.queue_batch(b),
                        // A transport problem (the sequencer's own encoding): reconnect.
                        Err(e) => return Err(format!("undecodable proof from the stream: {e}")),
                    }
                }
            }
            match self.run_blocking(|r| r.check_pending()).await? {
                Ok(_) => {}
                Err(e) => return self.outcome(e, epoch),
            }
            if let Some(from_batch) = self.proofs_gap() {
                tracing::info!(
                    from_batch,
                    "replica: too many proofs waiting; resubscribing to proofs"
                );
                proofs = provider
                    .subscribe::<_, serde_json::Value>((
                        "proofs",
                        serde_json::json!({ "fromBatch": format!("{from_batch:#x}") }),
                    ))
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
    }
}
