//! The Ethereum methods.

use std::sync::Arc;
use std::time::Duration;

use alloy_primitives::{Address, B256, Bytes, U64, U256};
use alloy_rpc_types_eth::{
    BlockId, BlockNumberOrTag, FeeHistory, Filter, FilterBlockOption, TransactionRequest,
};
use jsonrpsee::RpcModule;
use jsonrpsee::types::{ErrorObjectOwned, Params};
use proofbox_chain_types::Block;

use super::{EXECUTION_REVERTED, convert, invalid_params, server_error};
use crate::Sequencer;
use crate::exec::{CallOutcome, CallRequest, call, estimate_gas};

type RpcResult<T> = Result<T, ErrorObjectOwned>;

/// The tip `eth_maxPriorityFeePerGas` suggests (1 gwei, as anvil).
pub const SUGGESTED_TIP: u64 = 1_000_000_000;

/// Resolves a block tag or number to a number; `None` if beyond the head.
fn block_number(seq: &Sequencer, tag: BlockNumberOrTag) -> Option<u64> {
    let head = seq.read().chain.head();
    match tag {
        BlockNumberOrTag::Earliest => Some(0),
        BlockNumberOrTag::Number(n) if n <= head => Some(n),
        BlockNumberOrTag::Number(_) => None,
        _ => Some(head),
    }
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

fn call_request(req: TransactionRequest) -> RpcResult<CallRequest> {
    let to = match req.to {
        Some(alloy_primitives::TxKind::Call(a)) => Some(a),
        _ => None,
    };
    Ok(CallRequest {
        from: req.from,
        to,
        gas: req.gas,
        gas_price: req.gas_price,
        max_fee_per_gas: req.max_fee_per_gas,
        max_priority_fee_per_gas: req.max_priority_fee_per_gas,
        value: req.value,
        data: req.input.into_input().unwrap_or_default(),
        nonce: req.nonce,
        access_list: req.access_list,
    })
}

fn failed_call(outcome: CallOutcome) -> ErrorObjectOwned {
    match outcome {
        CallOutcome::Revert { output, .. } => {
            use alloy_sol_types::SolError;
            let reason = alloy_sol_types::Revert::abi_decode(&output)
                .map(|r| r.reason)
                .ok()
                .or_else(|| alloy_sol_types::decode_revert_reason(&output));
            let message = match reason {
                Some(r) => format!("execution reverted: {r}"),
                None => "execution reverted".to_string(),
            };
            ErrorObjectOwned::owned(EXECUTION_REVERTED, message, Some(output))
        }
        CallOutcome::Halt { reason, .. } => server_error(format!("execution halted: {reason}")),
        CallOutcome::Success { .. } => server_error("call succeeded"),
    }
}

fn send_raw(seq: &Sequencer, raw: &Bytes) -> RpcResult<B256> {
    seq.submit(raw).map_err(|e| server_error(e.to_string()))
}

fn get_logs(seq: &Sequencer, filter: &Filter) -> RpcResult<Vec<alloy_rpc_types_eth::Log>> {
    let blocks: Vec<Arc<Block>> = match &filter.block_option {
        FilterBlockOption::AtBlockHash(h) => {
            let b = seq.read().chain.block_by_hash(h).cloned();
            vec![b.ok_or_else(|| server_error("unknown block"))?]
        }
        FilterBlockOption::Range {
            from_block,
            to_block,
        } => {
            let head = seq.read().chain.head();
            let resolve = |t: Option<BlockNumberOrTag>| match t {
                None => head,
                Some(BlockNumberOrTag::Earliest) => 0,
                Some(BlockNumberOrTag::Number(n)) => n.min(head),
                Some(_) => head,
            };
            let (from, to) = (resolve(*from_block), resolve(*to_block));
            if from > to {
                return Ok(vec![]);
            }
            let max = seq.config().max_log_range;
            if to - from >= max {
                return Err(server_error(format!(
                    "query exceeds the maximum range of {max} blocks"
                )));
            }
            let core = seq.read();
            (from..=to)
                .filter_map(|n| core.chain.block(n).cloned())
                .collect()
        }
    };
    Ok(blocks
        .iter()
        .flat_map(|b| convert::block_logs(b))
        .filter(|l| filter.matches(&l.inner))
        .collect())
}

fn fee_history(
    seq: &Sequencer,
    count: u64,
    newest: BlockNumberOrTag,
    percentiles: Option<Vec<f64>>,
) -> RpcResult<FeeHistory> {
    let newest = block_number(seq, newest).ok_or_else(|| server_error("unknown block"))?;
    let count = count.clamp(1, 1024).min(newest + 1);
    let oldest = newest + 1 - count;
    let core = seq.read();
    let mut base_fee_per_gas = Vec::new();
    let mut gas_used_ratio = Vec::new();
    let mut reward = Vec::new();
    for n in oldest..=newest {
        let b = core.chain.block(n).expect("below the head");
        base_fee_per_gas.push(u128::from(b.header.base_fee));
        gas_used_ratio.push(b.header.gas_used as f64 / b.header.gas_limit as f64);
        if let Some(ps) = &percentiles {
            let base = u128::from(b.header.base_fee);
            let mut tips: Vec<u128> = b
                .receipts
                .iter()
                .map(|r| r.effective_gas_price.saturating_sub(base))
                .collect();
            tips.sort_unstable();
            reward.push(
                ps.iter()
                    .map(|p| {
                        if tips.is_empty() {
                            0
                        } else {
                            let i = ((p / 100.0) * (tips.len() - 1) as f64).round() as usize;
                            tips[i.min(tips.len() - 1)]
                        }
                    })
                    .collect(),
            );
        }
    }
    base_fee_per_gas.push(u128::from(seq.config().base_fee));
    Ok(FeeHistory {
        base_fee_per_gas,
        gas_used_ratio,
        base_fee_per_blob_gas: vec![0; count as usize + 1],
        blob_gas_used_ratio: vec![0.0; count as usize],
        oldest_block: oldest,
        reward: percentiles.map(|_| reward),
    })
}

fn parse<'a, T: serde::Deserialize<'a>>(params: &'a Params<'a>) -> RpcResult<T> {
    params
        .parse::<T>()
        .map_err(|e| invalid_params(e.message().to_string()))
}

/// Registers every Ethereum method.
pub fn register(m: &mut RpcModule<Sequencer>) {
    let ok = |r: Result<_, jsonrpsee::core::RegisterMethodError>| {
        r.expect("method names are unique");
    };
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
            Ok(U256::from(s.config().base_fee) + U256::from(SUGGESTED_TIP))
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
            fee_history(s, count.to(), newest, percentiles)
        })
        .map(|_| ()),
    );
    ok(
        m.register_blocking_method("eth_call", |p, s, _| -> RpcResult<Bytes> {
            let (req, id): (TransactionRequest, Option<BlockId>) = parse(&p)?;
            at_head(&s, id)?;
            let req = call_request(req)?;
            let params = s.next_block_params();
            let core = s.read();
            match call(&core.state, &params, &req).map_err(|e| server_error(e.0))? {
                CallOutcome::Success { output, .. } => Ok(output),
                failed => Err(failed_call(failed)),
            }
        })
        .map(|_| ()),
    );
    ok(
        m.register_blocking_method("eth_estimateGas", |p, s, _| -> RpcResult<U64> {
            let (req, id): (TransactionRequest, Option<BlockId>) = parse(&p)?;
            at_head(&s, id)?;
            let req = call_request(req)?;
            let params = s.next_block_params();
            let core = s.read();
            match estimate_gas(&core.state, &params, &req).map_err(|e| server_error(e.0))? {
                Ok(gas) => Ok(U64::from(gas)),
                Err(failed) => Err(failed_call(failed)),
            }
        })
        .map(|_| ()),
    );
    ok(
        m.register_method("eth_sendRawTransaction", |p, s, _| -> RpcResult<B256> {
            let (raw,): (Bytes,) = parse(&p)?;
            send_raw(s, &raw)
        })
        .map(|_| ()),
    );
    ok(
        m.register_async_method("realtime_sendRawTransaction", |p, s, _| async move {
            let (raw,): (Bytes,) = parse(&p)?;
            let hash = send_raw(&s, &raw)?;
            wait_receipt(&s, hash, s.config().realtime_timeout).await
        })
        .map(|_| ()),
    );
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
            get_logs(s, &filter)
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
