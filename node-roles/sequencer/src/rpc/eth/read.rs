//! Answers that need only a chain of blocks and a state view: logs, fee history, gas
//! prices, and the JSON-RPC form of calls and their failures. The sequencer and the
//! full node both answer with these, each over its own [`Blocks`].

use std::sync::Arc;

use alloy_primitives::{B256, U256};
use alloy_rpc_types_eth::{
    BlockNumberOrTag, FeeHistory, Filter, FilterBlockOption, Log, TransactionRequest,
};
use jsonrpsee::types::ErrorObjectOwned;
use proofbox_chain_types::Block;

use crate::Sequencer;
use crate::exec::{CallOutcome, CallRequest};
use crate::rpc::{EXECUTION_REVERTED, convert, server_error};

type RpcResult<T> = Result<T, ErrorObjectOwned>;

/// The tip `eth_maxPriorityFeePerGas` suggests (1 gwei, as anvil).
pub const SUGGESTED_TIP: u64 = 1_000_000_000;

/// The most blocks `eth_feeHistory` reports at once.
pub const MAX_FEE_HISTORY: u64 = 1024;

/// What a read-only query needs of a chain: its head and its blocks.
pub trait Blocks {
    /// The newest block's number; `None` before the first block.
    fn head(&self) -> RpcResult<Option<u64>>;
    fn block(&self, number: u64) -> RpcResult<Option<Arc<Block>>>;
    fn block_by_hash(&self, hash: &B256) -> RpcResult<Option<Arc<Block>>>;
}

impl Blocks for Sequencer {
    fn head(&self) -> RpcResult<Option<u64>> {
        Ok(Some(self.read().chain.head()))
    }

    fn block(&self, number: u64) -> RpcResult<Option<Arc<Block>>> {
        Ok(self.read().chain.block(number).cloned())
    }

    fn block_by_hash(&self, hash: &B256) -> RpcResult<Option<Arc<Block>>> {
        Ok(self.read().chain.block_by_hash(hash).cloned())
    }
}

fn no_blocks() -> ErrorObjectOwned {
    server_error("no block yet")
}

/// The gas price `eth_gasPrice` suggests over `base_fee`.
pub fn gas_price(base_fee: u64) -> U256 {
    U256::from(base_fee) + U256::from(SUGGESTED_TIP)
}

/// The logs of blocks `from..=to` (both at most the head) that match `filter`'s
/// addresses and topics.
pub fn logs_in(chain: &impl Blocks, filter: &Filter, from: u64, to: u64) -> RpcResult<Vec<Log>> {
    let mut out = Vec::new();
    for n in from..=to {
        if let Some(b) = chain.block(n)? {
            out.extend(
                convert::block_logs(&b)
                    .into_iter()
                    .filter(|l| filter.matches(&l.inner)),
            );
        }
    }
    Ok(out)
}

/// `eth_getLogs`: a block hash, or a range of at most `max_range` blocks (tags and
/// numbers beyond the head mean the head).
pub fn logs(chain: &impl Blocks, filter: &Filter, max_range: u64) -> RpcResult<Vec<Log>> {
    match &filter.block_option {
        FilterBlockOption::AtBlockHash(h) => {
            let b = chain
                .block_by_hash(h)?
                .ok_or_else(|| server_error(format!("unknown block {h}")))?;
            Ok(convert::block_logs(&b)
                .into_iter()
                .filter(|l| filter.matches(&l.inner))
                .collect())
        }
        FilterBlockOption::Range {
            from_block,
            to_block,
        } => {
            let head = chain.head()?.ok_or_else(no_blocks)?;
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
            if to - from >= max_range {
                return Err(server_error(format!(
                    "query exceeds the maximum range of {max_range} blocks"
                )));
            }
            logs_in(chain, filter, from, to)
        }
    }
}

/// Resolves a tag or number to a block number; `None` if beyond the head.
pub fn block_number(chain: &impl Blocks, tag: BlockNumberOrTag) -> RpcResult<Option<u64>> {
    let Some(head) = chain.head()? else {
        return Ok(None);
    };
    Ok(match tag {
        BlockNumberOrTag::Earliest => Some(0),
        BlockNumberOrTag::Number(n) if n <= head => Some(n),
        BlockNumberOrTag::Number(_) => None,
        _ => Some(head),
    })
}

/// `eth_feeHistory` over the `count` blocks up to `newest` (at most
/// [`MAX_FEE_HISTORY`]); `next_base_fee` is the base fee of the block after `newest`.
pub fn fee_history(
    chain: &impl Blocks,
    count: u64,
    newest: BlockNumberOrTag,
    percentiles: Option<Vec<f64>>,
    next_base_fee: u64,
) -> RpcResult<FeeHistory> {
    if let Some(ps) = &percentiles {
        let ordered = ps.windows(2).all(|w| w[0] <= w[1]);
        if !ordered || ps.iter().any(|p| !(0.0..=100.0).contains(p)) {
            return Err(crate::rpc::invalid_params(
                "reward percentiles must be increasing and between 0 and 100",
            ));
        }
    }
    let newest = block_number(chain, newest)?.ok_or_else(|| server_error("unknown block"))?;
    let count = count.clamp(1, MAX_FEE_HISTORY).min(newest + 1);
    let oldest = newest + 1 - count;
    let mut base_fee_per_gas = Vec::new();
    let mut gas_used_ratio = Vec::new();
    let mut reward = Vec::new();
    for n in oldest..=newest {
        let b = chain
            .block(n)?
            .ok_or_else(|| server_error(format!("block {n} is missing")))?;
        let base = u128::from(b.header.base_fee);
        base_fee_per_gas.push(base);
        gas_used_ratio.push(b.header.gas_used as f64 / b.header.gas_limit as f64);
        if let Some(ps) = &percentiles {
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
    base_fee_per_gas.push(u128::from(next_base_fee));
    Ok(FeeHistory {
        base_fee_per_gas,
        gas_used_ratio,
        base_fee_per_blob_gas: vec![0; count as usize + 1],
        blob_gas_used_ratio: vec![0.0; count as usize],
        oldest_block: oldest,
        reward: percentiles.map(|_| reward),
    })
}

/// An `eth_call` / `eth_estimateGas` request as execution takes it.
pub fn call_request(req: TransactionRequest) -> CallRequest {
    CallRequest {
        from: req.from,
        to: req.to.and_then(|k| k.to().copied()),
        gas: req.gas,
        gas_price: req.gas_price,
        max_fee_per_gas: req.max_fee_per_gas,
        max_priority_fee_per_gas: req.max_priority_fee_per_gas,
        value: req.value,
        data: req.input.into_input().unwrap_or_default(),
        nonce: req.nonce,
        access_list: req.access_list,
    }
}

/// A failed call as geth reports it: code 3 "execution reverted: REASON" with the
/// revert bytes as `data`, or -32000 "execution halted: ...".
pub fn failed_call(outcome: CallOutcome) -> ErrorObjectOwned {
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
