//! The Ethereum methods.
//!
//! - [`read`]: the answers that need only blocks and a state view, shared with the
//!   full node;
//! - [`filters`]: `eth_newFilter` and the other polled filters.

pub mod filters;
pub mod read;

use std::sync::Arc;
use std::time::Duration;

use alloy_primitives::{Address, B256, Bytes, U64, U256};
use alloy_rpc_types_eth::{BlockId, BlockNumberOrTag, FeeHistory, Filter, TransactionRequest};
use jsonrpsee::RpcModule;
use jsonrpsee::types::error::INVALID_PARAMS_MSG;
use jsonrpsee::types::{ErrorObjectOwned, Params};
use proofbox_chain_types::Block;

use super::{convert, invalid_params, server_error};
use crate::Sequencer;
use crate::exec::{CallOutcome, call, estimate_gas};
use filters::{Filters, Limits};

type RpcResult<T> = Result<T, ErrorObjectOwned>;

pub use read::SUGGESTED_TIP;

/// Resolves a block tag or number to a number; `None` if beyond the head.
fn block_number(seq: &Sequencer, tag: BlockNumberOrTag) -> Option<u64> {
    read::block_number(seq, tag).ok().flatten()
}

fn block_by_id(seq: &Sequencer, id: BlockId) -> Option<Arc<Block>> {
    let core = seq.read();
    match id {
        BlockId::Hash(h) => core.chain.block_by_hash(&h.block_hash).cloned(),
        BlockId::Number(tag) => {
            drop(core);
            let n = block_number(seq, tag)?;
            seq.read().chain.block(n).cloned()
        }
    }
}

/// State is kept at the head only: an older block is refused.
fn at_head(seq: &Sequencer, id: Option<BlockId>) -> RpcResult<()> {
    let head = seq.read().chain.head();
    let ok = match id {
        None => true,
        Some(BlockId::Number(BlockNumberOrTag::Number(n))) => n == head,
        Some(BlockId::Number(BlockNumberOrTag::Earliest)) => head == 0,
        Some(BlockId::Number(_)) => true,
        Some(BlockId::Hash(h)) => seq.read().chain.head_block().hash() == h.block_hash,
    };
    if ok {
        Ok(())
    } else {
        Err(server_error(format!(
            "state is available at the head (block {head}) only"
        )))
    }
}

fn send_raw(seq: &Sequencer, filters: &Filters, raw: &Bytes) -> RpcResult<B256> {
    let hash = seq.submit(raw).map_err(|e| server_error(e.to_string()))?;
    filters.pending_added(hash);
    Ok(hash)
}

/// The parameters as `T`; trailing optional ones (a block tag) may be left out.
fn parse<T: serde::de::DeserializeOwned>(params: &Params<'_>) -> RpcResult<T> {
    proofbox_chain_types::params::positional(params.as_str())
        .map_err(|_| invalid_params(INVALID_PARAMS_MSG))
}

/// Registers every Ethereum method. With `durable` (a data directory), sending a
/// transaction waits for the pool journal's sync, on tokio's blocking threads.
pub fn register(m: &mut RpcModule<Sequencer>, durable: bool) {
    let ok = |r: Result<_, jsonrpsee::core::RegisterMethodError>| {
        r.expect("method names are unique");
    };
    let filters = Filters::default();
    register_filters(m, &filters);
    ok(m.register_method("web3_clientVersion", |_, _, _| {
        concat!("proofbox-sequencer/", env!("CARGO_PKG_VERSION"))
    })
    .map(|_| ()));
    ok(
        m.register_method("eth_chainId", |_, s, _| -> RpcResult<U64> {
            Ok(U64::from(s.config().chain_id))
        })
        .map(|_| ()),
    );
    ok(
        m.register_method("net_version", |_, s, _| s.config().chain_id.to_string())
            .map(|_| ()),
    );
    ok(m.register_method("net_listening", |_, _, _| true)
        .map(|_| ()));
    ok(m.register_method("eth_syncing", |_, _, _| false)
        .map(|_| ()));
    ok(
        m.register_method("eth_accounts", |_, _, _| Vec::<Address>::new())
            .map(|_| ()),
    );
    ok(
        m.register_method("eth_blockNumber", |_, s, _| -> RpcResult<U64> {
            Ok(U64::from(s.read().chain.head()))
        })
        .map(|_| ()),
    );
    ok(
        m.register_method("eth_gasPrice", |_, s, _| -> RpcResult<U256> {
            Ok(read::gas_price(s.config().base_fee))
        })
        .map(|_| ()),
    );
    ok(
        m.register_method("eth_maxPriorityFeePerGas", |_, _, _| -> RpcResult<U256> {
            Ok(U256::from(SUGGESTED_TIP))
        })
        .map(|_| ()),
    );
    ok(
        m.register_method("eth_getBalance", |p, s, _| -> RpcResult<U256> {
            let (a, id): (Address, Option<BlockId>) = parse(&p)?;
            at_head(s, id)?;
            Ok(s.read().state.balance(&a))
        })
        .map(|_| ()),
    );
    ok(
        m.register_method("eth_getTransactionCount", |p, s, _| -> RpcResult<U64> {
            let (a, id): (Address, Option<BlockId>) = parse(&p)?;
            if id == Some(BlockId::Number(BlockNumberOrTag::Pending)) {
                return Ok(U64::from(s.pending_nonce(&a)));
            }
            at_head(s, id)?;
            Ok(U64::from(s.read().state.nonce(&a)))
        })
        .map(|_| ()),
    );
    ok(
        m.register_method("eth_getCode", |p, s, _| -> RpcResult<Bytes> {
            let (a, id): (Address, Option<BlockId>) = parse(&p)?;
            at_head(s, id)?;
            Ok(s.read()
                .state
                .code(&a)
                .map(|c| c.original_bytes())
                .unwrap_or_default())
        })
        .map(|_| ()),
    );
    ok(
        m.register_method("eth_getStorageAt", |p, s, _| -> RpcResult<B256> {
            let (a, slot, id): (Address, U256, Option<BlockId>) = parse(&p)?;
            at_head(s, id)?;
            Ok(B256::from(s.read().state.storage_at(&a, &slot)))
        })
        .map(|_| ()),
    );
    ok(
        m.register_method("eth_feeHistory", |p, s, _| -> RpcResult<FeeHistory> {
            let (count, newest, percentiles): (U64, BlockNumberOrTag, Option<Vec<f64>>) =
                parse(&p)?;
            read::fee_history(s, count.to(), newest, percentiles, s.config().base_fee)
        })
        .map(|_| ()),
    );
    ok(
        m.register_blocking_method("eth_call", |p, s, _| -> RpcResult<Bytes> {
            let (req, id): (TransactionRequest, Option<BlockId>) = parse(&p)?;
            at_head(&s, id)?;
            let req = read::call_request(req);
            let params = s.next_block_params();
            let core = s.read();
            match call(&core.state, &params, &req).map_err(|e| server_error(e.0))? {
                CallOutcome::Success { output, .. } => Ok(output),
                failed => Err(read::failed_call(failed)),
            }
        })
        .map(|_| ()),
    );
    ok(
        m.register_blocking_method("eth_estimateGas", |p, s, _| -> RpcResult<U64> {
            let (req, id): (TransactionRequest, Option<BlockId>) = parse(&p)?;
            at_head(&s, id)?;
            let req = read::call_request(req);
            let params = s.next_block_params();
            let core = s.read();
            match estimate_gas(&core.state, &params, &req).map_err(|e| server_error(e.0))? {
                Ok(gas) => Ok(U64::from(gas)),
                Err(failed) => Err(read::failed_call(failed)),
            }
        })
        .map(|_| ()),
    );
    if durable {
        ok(m.register_blocking_method("eth_sendRawTransaction", {
            let filters = filters.clone();
            move |p, s, _| -> RpcResult<B256> {
                let (raw,): (Bytes,) = parse(&p)?;
                send_raw(&s, &filters, &raw)
            }
        })
        .map(|_| ()));
    } else {
        ok(m.register_method("eth_sendRawTransaction", {
            let filters = filters.clone();
            move |p, s, _| -> RpcResult<B256> {
                let (raw,): (Bytes,) = parse(&p)?;
                send_raw(s, &filters, &raw)
            }
        })
        .map(|_| ()));
    }
    ok(m.register_async_method("realtime_sendRawTransaction", {
        let filters = filters.clone();
        move |p, s, _| {
            let filters = filters.clone();
            async move {
                let (raw,): (Bytes,) = parse(&p)?;
                let hash = if durable {
                    let s = s.clone();
                    tokio::task::spawn_blocking(move || send_raw(&s, &filters, &raw))
                        .await
                        .map_err(|e| server_error(e.to_string()))??
                } else {
                    send_raw(&s, &filters, &raw)?
                };
                wait_receipt(&s, hash, s.config().realtime_timeout).await
            }
        }
    })
    .map(|_| ()));
    ok(m.register_method(
        "eth_getTransactionReceipt",
        |p, s, _| -> RpcResult<Option<alloy_rpc_types_eth::TransactionReceipt>> {
            let (h,): (B256,) = parse(&p)?;
            let core = s.read();
            Ok(core.chain.tx(&h).map(|(b, i)| convert::receipt(b, i)))
        },
    )
    .map(|_| ()));
    ok(m.register_method(
        "eth_getTransactionByHash",
        |p, s, _| -> RpcResult<Option<alloy_rpc_types_eth::Transaction>> {
            let (h,): (B256,) = parse(&p)?;
            // The chain first: a transaction leaves the pool just after its block is in.
            let mined = s
                .read()
                .chain
                .tx(&h)
                .map(|(b, i)| convert::transaction(&b.transactions[i], Some((b, i))));
            Ok(mined.or_else(|| s.pending_tx(&h).map(|tx| convert::transaction(&tx, None))))
        },
    )
    .map(|_| ()));
    ok(m.register_method(
        "eth_getBlockByNumber",
        |p, s, _| -> RpcResult<Option<serde_json::Value>> {
            let (tag, full): (BlockNumberOrTag, Option<bool>) = parse(&p)?;
            Ok(block_by_id(s, BlockId::Number(tag)).map(|b| {
                serde_json::to_value(convert::block(&b, full.unwrap_or(false))).expect("serializes")
            }))
        },
    )
    .map(|_| ()));
    ok(m.register_method(
        "eth_getBlockByHash",
        |p, s, _| -> RpcResult<Option<serde_json::Value>> {
            let (h, full): (B256, Option<bool>) = parse(&p)?;
            Ok(block_by_id(s, BlockId::from(h)).map(|b| {
                serde_json::to_value(convert::block(&b, full.unwrap_or(false))).expect("serializes")
            }))
        },
    )
    .map(|_| ()));
    ok(m.register_method(
        "eth_getLogs",
        |p, s, _| -> RpcResult<Vec<alloy_rpc_types_eth::Log>> {
            let (filter,): (Filter,) = parse(&p)?;
            read::logs(s, &filter, s.config().max_log_range)
        },
    )
    .map(|_| ()));
    ok(m.register_method("proofbox_status", |_, s, _| {
        let core = s.read();
        let head = core.chain.head_block();
        serde_json::json!({
            "role": "sequencer",
            "head": head.number(),
            "headHash": head.hash(),
            "stateRoot": core.state.root().hex(),
            "accounts": core.state.accounts(),
            "stateLeaves": core.state.tree().len(),
        })
    })
    .map(|_| ()));
}

/// Waits until `hash` is in a block and returns its receipt; an error if execution
/// refused it or `timeout` passes first ("realtime transaction expired", MegaETH's).
async fn wait_receipt(
    seq: &Sequencer,
    hash: B256,
    timeout: Duration,
) -> RpcResult<alloy_rpc_types_eth::TransactionReceipt> {
    let mut head = seq.head();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(r) = seq
            .read()
            .chain
            .tx(&hash)
            .map(|(b, i)| convert::receipt(b, i))
        {
            return Ok(r);
        }
        if let Some(why) = seq.rejection(&hash) {
            return Err(server_error(why));
        }
        match tokio::time::timeout_at(deadline, head.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(server_error("the sequencer stopped")),
            Err(_) => return Err(server_error("realtime transaction expired")),
        }
    }
}

/// Registers the polled filters' methods over `filters`.
fn register_filters(m: &mut RpcModule<Sequencer>, filters: &Filters) {
    let ok = |r: Result<_, jsonrpsee::core::RegisterMethodError>| {
        r.expect("method names are unique");
    };
    let f = filters.clone();
    ok(
        m.register_method("eth_newBlockFilter", move |_, s, _| -> RpcResult<U256> {
            f.new_blocks(s.read().chain.head(), Limits::of(s.config()))
        })
        .map(|_| ()),
    );
    let f = filters.clone();
    ok(
        m.register_method("eth_newFilter", move |p, s, _| -> RpcResult<U256> {
            let (filter,): (Filter,) = parse(&p)?;
            f.new_logs(filter, s.read().chain.head(), Limits::of(s.config()))
        })
        .map(|_| ()),
    );
    let f = filters.clone();
    ok(m.register_method(
        "eth_newPendingTransactionFilter",
        move |_, s, _| -> RpcResult<U256> { f.new_pending(Limits::of(s.config())) },
    )
    .map(|_| ()));
    let f = filters.clone();
    ok(m.register_method(
        "eth_getFilterChanges",
        move |p, s, _| -> RpcResult<alloy_rpc_types_eth::FilterChanges> {
            let (id,): (U256,) = parse(&p)?;
            f.changes(id, s, Limits::of(s.config()))
        },
    )
    .map(|_| ()));
    let f = filters.clone();
    ok(m.register_method(
        "eth_getFilterLogs",
        move |p, s, _| -> RpcResult<Vec<alloy_rpc_types_eth::Log>> {
            let (id,): (U256,) = parse(&p)?;
            f.logs(id, s, Limits::of(s.config()))
        },
    )
    .map(|_| ()));
    let f = filters.clone();
    ok(
        m.register_method("eth_uninstallFilter", move |p, s, _| -> RpcResult<bool> {
            let (id,): (U256,) = parse(&p)?;
            Ok(f.uninstall(id, Limits::of(s.config())))
        })
        .map(|_| ()),
    );
}
