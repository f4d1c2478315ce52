//! `eth_subscribe` / `eth_unsubscribe` (WebSocket).
//!
//! Every subscription is driven by the chain itself, not by a queue of events: it keeps
//! the number of the next block to deliver and reads stored blocks up to the head, then
//! waits for the head to move. So nothing is skipped or repeated however far behind a
//! subscriber is, and a subscriber costs the sequencer no memory beyond the connection's
//! bounded message buffer (`Config::ws_buffer`). A subscriber that accepts no message
//! for `Config::subscriber_send_timeout` is dropped with a reason (a final
//! `eth_subscription` notification carrying `error`); it resumes by subscribing again
//! from its next block.
//!
//! Kinds:
//! - `newHeads`: each new block's header;
//! - `logs` (filter: `address`, `topics`): each matching log of each new block;
//! - `stateChanges` (optional list of addresses): per changed account of each new
//!   block `{address, nonce, balance, storage: {slot: value}, blockNumber}` (MegaETH's);
//! - `blocks` (optional `{"fromBlock": N}`, default the next block): every block from
//!   `N` on, exactly once and in order (stored ones, then live ones), each
//!   `{hash, header, transactions, receipts, diff}` (`docs/nodes.md`);
//! - `proofs` (optional `{"fromBatch": N}`): every published proof from batch `N`
//!   on ([`super::proofs`]).

use std::collections::HashSet;
use std::sync::Arc;

use alloy_primitives::Address;
use alloy_rpc_types_eth::{BlockNumberOrTag, Filter};
use jsonrpsee::core::SubscriptionError;
use jsonrpsee::{PendingSubscriptionSink, RpcModule, SubscriptionMessage, SubscriptionSink};
use proofbox_chain_types::Block;
use serde::{Deserialize, Serialize};

use super::{convert, invalid_params};
use crate::Sequencer;

/// A block as the `blocks` stream delivers it: its hash beside the block's fields.
/// (Not `#[serde(flatten)]`: serde's flatten cannot carry the receipts' `u128`s.)
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamBlock {
    pub hash: alloy_primitives::B256,
    pub header: proofbox_chain_types::Header,
    pub transactions: Vec<proofbox_chain_types::SignedTx>,
    pub receipts: Vec<proofbox_chain_types::Receipt>,
    pub diff: proofbox_chain_types::StateDiff,
}

impl StreamBlock {
    pub fn new(b: &Block) -> Self {
        Self {
            hash: b.hash(),
            header: b.header.clone(),
            transactions: b.transactions.clone(),
            receipts: b.receipts.clone(),
            diff: b.diff.clone(),
        }
    }

    /// The block (its hash is recomputed from the header, not taken from `hash`).
    pub fn into_block(self) -> Block {
        Block {
            header: self.header,
            transactions: self.transactions,
            receipts: self.receipts,
            diff: self.diff,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlocksParams {
    from_block: Option<FromBlock>,
}

/// A block number as a JSON number, a hex quantity or a tag.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum FromBlock {
    Number(u64),
    Tag(BlockNumberOrTag),
}

enum Kind {
    NewHeads,
    Logs(Box<Filter>),
    StateChanges(Option<HashSet<Address>>),
    Blocks,
}

fn messages(kind: &Kind, b: &Block) -> Vec<serde_json::Value> {
    match kind {
        Kind::NewHeads => vec![serde_json::to_value(convert::header(b)).expect("serializes")],
        Kind::Logs(f) => convert::block_logs(b)
            .into_iter()
            .filter(|l| f.matches(&l.inner))
            .map(|l| serde_json::to_value(l).expect("serializes"))
            .collect(),
        Kind::StateChanges(only) => b
            .diff
            .accounts()
            .iter()
            .filter(|a| only.as_ref().is_none_or(|s| s.contains(&a.address)))
            .map(|a| {
                let storage: serde_json::Map<String, serde_json::Value> = a
                    .storage
                    .iter()
                    .map(|(k, v)| (format!("{k:#x}"), serde_json::json!(v)))
                    .collect();
                serde_json::json!({
                    "address": a.address,
                    "nonce": format!("{:#x}", a.nonce),
                    "balance": a.balance,
                    "storage": storage,
                    "destroyed": a.destroyed,
                    "blockNumber": format!("{:#x}", b.number()),
                })
            })
            .collect(),
        Kind::Blocks => vec![serde_json::to_value(StreamBlock::new(b)).expect("serializes")],
    }
}

pub(super) async fn send(
    seq: &Sequencer,
    sink: &SubscriptionSink,
    value: serde_json::Value,
) -> Result<bool, SubscriptionError> {
    let raw = serde_json::value::to_raw_value(&value).expect("serializes");
    let timeout = seq.config().subscriber_send_timeout;
    match sink
        .send_timeout(SubscriptionMessage::from(raw), timeout)
        .await
    {
        Ok(()) => Ok(true),
        Err(jsonrpsee::core::server::SendTimeoutError::Closed(_)) => Ok(false),
        Err(jsonrpsee::core::server::SendTimeoutError::Timeout(_)) => {
            metrics::counter!("sequencer_subscribers_dropped_total").increment(1);
            Err(SubscriptionError::from(format!(
                "subscriber too slow: no message accepted for {timeout:?}; resubscribe from the next block"
            )))
        }
    }
}

/// Delivers `kind`'s messages for every block from `next` on.
async fn follow(
    seq: Sequencer,
    sink: SubscriptionSink,
    kind: Kind,
    mut next: u64,
) -> Result<(), SubscriptionError> {
    let mut head = seq.head();
    loop {
        let top = *head.borrow_and_update();
        while next <= top {
            let block: Option<Arc<Block>> = seq.read().chain.block(next).cloned();
            let Some(block) = block else { break };
            for m in messages(&kind, &block) {
                if !send(&seq, &sink, m).await? {
                    return Ok(());
                }
            }
            next += 1;
        }
        tokio::select! {
            changed = head.changed() => if changed.is_err() {
                return Err(SubscriptionError::from("the sequencer stopped"));
            },
            _ = sink.closed() => return Ok(()),
        }
    }
}

async fn subscribe(
    params: jsonrpsee::types::Params<'static>,
    pending: PendingSubscriptionSink,
    seq: Arc<Sequencer>,
) -> Result<(), SubscriptionError> {
    let mut seq_params = params.sequence();
    let name: String = match seq_params.next() {
        Ok(n) => n,
        Err(e) => {
            pending
                .reject(invalid_params(e.message().to_string()))
                .await;
            return Ok(());
        }
    };
    if name == "proofs" {
        return super::proofs::subscribe(seq_params, pending, seq).await;
    }
    let head = seq.read().chain.head();
    let parsed: Result<(Kind, u64), String> = match name.as_str() {
        "newHeads" => Ok((Kind::NewHeads, head + 1)),
        "logs" => seq_params
            .optional_next::<Filter>()
            .map(|f| (Kind::Logs(Box::new(f.unwrap_or_default())), head + 1))
            .map_err(|e| e.message().to_string()),
        "stateChanges" => seq_params
            .optional_next::<Vec<Address>>()
            .map(|a| {
                (
                    Kind::StateChanges(a.map(|v| v.into_iter().collect())),
                    head + 1,
                )
            })
            .map_err(|e| e.message().to_string()),
        "blocks" => seq_params
            .optional_next::<BlocksParams>()
            .map_err(|e| e.message().to_string())
            .map(|p| {
                let from = match p.unwrap_or_default().from_block {
                    None | Some(FromBlock::Tag(BlockNumberOrTag::Pending)) => head + 1,
                    Some(FromBlock::Number(n) | FromBlock::Tag(BlockNumberOrTag::Number(n))) => n,
                    Some(FromBlock::Tag(BlockNumberOrTag::Earliest)) => 0,
                    Some(FromBlock::Tag(_)) => head,
                };
                (Kind::Blocks, from)
            }),
        other => Err(format!("unsupported subscription: {other}")),
    };
    let (kind, from) = match parsed {
        Ok(x) => x,
        Err(e) => {
            pending.reject(invalid_params(e)).await;
            return Ok(());
        }
    };
    let Ok(sink) = pending.accept().await else {
        return Ok(());
    };
    follow((*seq).clone(), sink, kind, from).await
}

/// Registers `eth_subscribe` / `eth_unsubscribe`.
pub fn register(m: &mut RpcModule<Sequencer>) {
    m.register_subscription(
        "eth_subscribe",
        "eth_subscription",
        "eth_unsubscribe",
        |params, pending, seq, _| subscribe(params, pending, seq),
    )
    .expect("method names are unique");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_blocks_round_trip_through_json() {
        let core = crate::chain::genesis(&crate::Config::default().alloc(), 30_000_000, 1).unwrap();
        let b = core.chain.head_block().as_ref().clone();
        let v = messages(&Kind::Blocks, &b).remove(0);
        let text = v.to_string();
        let back: StreamBlock =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        assert_eq!(back.hash, b.hash());
        assert_eq!(back.into_block(), b);
    }
}
