//! The proofs the sequencer publishes ([`crate::proving`]): `proofbox_provenHead`,
//! `proofbox_getProof`, `proofbox_getProofByBlock`, `proofbox_provingStatus`, and
//! the `proofs` subscription (every proof from a batch on, exactly once, in order).

use std::sync::Arc;

use alloy_primitives::U64;
use jsonrpsee::core::SubscriptionError;
use jsonrpsee::types::{ErrorObjectOwned, Params};
use jsonrpsee::{PendingSubscriptionSink, RpcModule, SubscriptionSink};
use proofbox_chain_types::{ProvenBatch, Root};
use serde::{Deserialize, Serialize};

use super::{invalid_params, server_error, subs};
use crate::Sequencer;
use crate::node::now_ms;
use crate::proving::ProvingStatus;

type RpcResult<T> = Result<T, ErrorObjectOwned>;

/// The proven head: the last block of the newest published proof and its root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvenHead {
    pub batch: U64,
    pub block: U64,
    pub root: Root,
}

/// `proofbox_provingStatus`: the pipeline's status beside the chain's head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusView {
    pub latest_block: u64,
    /// Blocks after the proven head.
    pub lag_blocks: u64,
    /// Milliseconds since the oldest unproven block was built (0 when all are proven).
    pub lag_ms: u64,
    #[serde(flatten)]
    pub proving: ProvingStatus,
}

fn number(params: &Params<'_>, what: &str) -> RpcResult<u64> {
    let (n,): (U64,) = params
        .parse()
        .map_err(|e| invalid_params(format!("{what}: {}", e.message())))?;
    Ok(n.to())
}

/// The pipeline's status beside the chain's head, as `proofbox_provingStatus` answers.
pub fn status(seq: &Sequencer) -> StatusView {
    let proving = seq.proofs().status();
    let core = seq.read();
    let latest = core.chain.head();
    let proven = proving.proven_block.unwrap_or(0);
    let lag_ms = core
        .chain
        .block(proven + 1)
        .map_or(0, |b| now_ms().saturating_sub(b.header.timestamp_ms));
    StatusView {
        latest_block: latest,
        lag_blocks: latest.saturating_sub(proven),
        lag_ms,
        proving,
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ProofsParams {
    from_batch: Option<U64>,
}

/// `eth_subscribe("proofs", {"fromBatch": N})`: every published proof from batch `N`
/// (default: the next one) on.
pub(super) async fn subscribe(
    mut rest: jsonrpsee::types::params::ParamsSequence<'_>,
    pending: PendingSubscriptionSink,
    seq: Arc<Sequencer>,
) -> Result<(), SubscriptionError> {
    let from = match rest.optional_next::<ProofsParams>() {
        Ok(p) => p
            .and_then(|p| p.from_batch)
            .map_or(seq.proofs().count(), |n| n.to()),
        Err(e) => {
            pending
                .reject(invalid_params(e.message().to_string()))
                .await;
            return Ok(());
        }
    };
    let Ok(sink) = pending.accept().await else {
        return Ok(());
    };
    follow(&seq, sink, from).await
}

async fn follow(
    seq: &Sequencer,
    sink: SubscriptionSink,
    mut next: u64,
) -> Result<(), SubscriptionError> {
    let mut count = seq.proofs().subscribe();
    loop {
        let top = *count.borrow_and_update();
        while next < top {
            let proofs = seq.proofs().clone();
            let got = tokio::task::spawn_blocking(move || proofs.get(next))
                .await
                .map_err(|e| SubscriptionError::from(e.to_string()))?;
            let batch = match got {
                Ok(Some(b)) => b,
                Ok(None) => break,
                Err(e) => return Err(SubscriptionError::from(e)),
            };
            let value = serde_json::to_value(&batch).expect("serializes");
            if !subs::send(seq, &sink, value).await? {
                return Ok(());
            }
            next += 1;
        }
        tokio::select! {
            changed = count.changed() => if changed.is_err() {
                return Err(SubscriptionError::from("the sequencer stopped"));
            },
            _ = sink.closed() => return Ok(()),
        }
    }
}

/// Registers the proof methods.
pub fn register(m: &mut RpcModule<Sequencer>) {
    let ok = |r: Result<(), jsonrpsee::core::RegisterMethodError>| {
        r.expect("method names are unique");
    };
    ok(
        m.register_method("proofbox_provenHead", |_, s, _| -> Option<ProvenHead> {
            s.proofs().head().map(|b| ProvenHead {
                batch: U64::from(b.index),
                block: U64::from(b.last_block),
                root: b.post_root,
            })
        })
        .map(|_| ()),
    );
    ok(m.register_method(
        "proofbox_provingStatus",
        |_, s, _| -> RpcResult<StatusView> { Ok(status(s)) },
    )
    .map(|_| ()));
    ok(m.register_blocking_method(
        "proofbox_getProof",
        |p, s, _| -> RpcResult<Option<ProvenBatch>> {
            let index = number(&p, "batch index")?;
            s.proofs().get(index).map_err(server_error)
        },
    )
    .map(|_| ()));
    ok(m.register_blocking_method(
        "proofbox_getProofByBlock",
        |p, s, _| -> RpcResult<Option<ProvenBatch>> {
            let block = number(&p, "block number")?;
            s.proofs().covering(block).map_err(server_error)
        },
    )
    .map(|_| ()));
}
