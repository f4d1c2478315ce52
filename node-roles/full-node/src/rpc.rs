//! The full node's read-only JSON-RPC (HTTP and WebSocket on one port, with the
//! status page, [`crate::page`], on `GET /` and `GET /status.json`), answered from
//! its own verified state and blocks. Logs, fee history and calls are answered by the
//! sequencer's own code (`proofbox_sequencer::rpc::eth::read`) over the node's store.

use std::net::SocketAddr;
use std::sync::Arc;

use alloy_primitives::{Address, B256, Bytes, U64, U256};
use alloy_rpc_types_eth::{BlockId, BlockNumberOrTag, FeeHistory, Filter, TransactionRequest};
use jsonrpsee::RpcModule;
use jsonrpsee::server::{Server, ServerHandle};
use jsonrpsee::types::error::INVALID_PARAMS_MSG;
use jsonrpsee::types::{ErrorObjectOwned, Params};
use proofbox_chain_types::Block;
use proofbox_sequencer::exec::{BlockParams, CallOutcome, call, estimate_gas};
use proofbox_sequencer::rpc::convert;
use proofbox_sequencer::rpc::eth::read::{self, Blocks};

use crate::FullNode;

type RpcResult<T> = Result<T, ErrorObjectOwned>;

/// The widest block range `eth_getLogs` scans (the sequencer's default).
pub const MAX_LOG_RANGE: u64 = 10_000;

fn server_error(m: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(-32000, m, None::<()>)
}

/// The parameters as `T`; trailing optional ones (a block tag) may be left out.
fn parse<T: serde::de::DeserializeOwned>(p: &Params<'_>) -> RpcResult<T> {
    proofbox_chain_types::params::positional(p.as_str())
        .map_err(|_| ErrorObjectOwned::owned(-32602, INVALID_PARAMS_MSG, None::<()>))
}

fn internal(e: impl std::fmt::Display) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(-32603, e.to_string(), None::<()>)
}

/// Only the head's state is kept.
fn at_head(n: &FullNode, id: Option<BlockId>) -> RpcResult<()> {
    let head = n.head();
    match id {
        None
        | Some(BlockId::Number(
            BlockNumberOrTag::Latest
            | BlockNumberOrTag::Pending
            | BlockNumberOrTag::Safe
            | BlockNumberOrTag::Finalized,
        )) => Ok(()),
        Some(BlockId::Number(BlockNumberOrTag::Number(x))) if Some(x) == head => Ok(()),
        _ => Err(server_error(format!(
            "state is available at the head ({head:?}) only"
        ))),
    }
}

/// The block holding the transaction with hash `h`, and its index there.
fn indexed(n: &FullNode, h: &B256) -> RpcResult<Option<(Arc<Block>, usize)>> {
    let Some((num, i)) = n.store().tx(h).map_err(internal)? else {
        return Ok(None);
    };
    let b = block(n, BlockId::Number(BlockNumberOrTag::Number(num)))?
        .ok_or_else(|| internal("indexed block missing"))?;
    Ok(Some((b, i as usize)))
}

fn block(n: &FullNode, id: BlockId) -> RpcResult<Option<Arc<Block>>> {
    let number = match id {
        BlockId::Hash(h) => n.store().block_number(&h.block_hash).map_err(internal)?,
        BlockId::Number(BlockNumberOrTag::Number(x)) => Some(x),
        BlockId::Number(BlockNumberOrTag::Earliest) => Some(0),
        BlockId::Number(_) => n.head(),
    };
    match number {
        Some(x) => Ok(n.store().block(x).map_err(internal)?.map(Arc::new)),
        None => Ok(None),
    }
}

fn head_block(n: &FullNode) -> RpcResult<Arc<Block>> {
    block(n, BlockId::Number(BlockNumberOrTag::Latest))?.ok_or_else(|| server_error("no block yet"))
}

/// The block a call runs in: the one after the head, with the head's limits and fees.
fn next_block_params(n: &FullNode) -> RpcResult<BlockParams> {
    let head = head_block(n)?;
    let h = &head.header;
    Ok(BlockParams {
        chain_id: n.chain_id(),
        number: h.number + 1,
        timestamp_ms: h.timestamp_ms,
        gas_limit: h.gas_limit,
        base_fee: h.base_fee,
        coinbase: h.coinbase,
    })
}

impl Blocks for FullNode {
    fn head(&self) -> RpcResult<Option<u64>> {
        Ok(FullNode::head(self))
    }

    fn block(&self, number: u64) -> RpcResult<Option<Arc<Block>>> {
        Ok(self.store().block(number).map_err(internal)?.map(Arc::new))
    }

    fn block_by_hash(&self, hash: &B256) -> RpcResult<Option<Arc<Block>>> {
        match self.store().block_number(hash).map_err(internal)? {
            Some(number) => Blocks::block(self, number),
            None => Ok(None),
        }
    }
}

fn block_json(b: Option<Arc<Block>>, full: bool) -> Option<serde_json::Value> {
    b.map(|b| serde_json::to_value(convert::block(&b, full)).expect("serializes"))
}

/// The read-only methods.
pub fn module(node: FullNode) -> RpcModule<FullNode> {
    let mut m = RpcModule::new(node);
    macro_rules! method {
        ($name:literal, |$p:ident, $n:ident| -> $t:ty $body:block) => {
            m.register_method($name, |$p, $n, _| -> RpcResult<$t> { $body })
                .expect("unique method names");
        };
    }
    method!("web3_clientVersion", |_p, _n| -> String {
        Ok(concat!("proofbox-full-node/", env!("CARGO_PKG_VERSION")).into())
    });
    method!("eth_chainId", |_p, n| -> U64 {
        Ok(U64::from(n.chain_id()))
    });
    method!("net_version", |_p, n| -> String {
        Ok(n.chain_id().to_string())
    });
    method!("eth_syncing", |_p, _n| -> bool { Ok(false) });
    method!("eth_blockNumber", |_p, n| -> U64 {
        Ok(U64::from(n.head().unwrap_or(0)))
    });
    method!("proofbox_status", |_p, n| -> serde_json::Value {
        Ok(n.status())
    });
    method!("eth_getBalance", |p, n| -> U256 {
        let (a, id): (Address, Option<BlockId>) = parse(&p)?;
        at_head(n, id)?;
        n.store()
            .view()
            .and_then(|v| v.balance(&a))
            .map_err(internal)
    });
    method!("eth_getTransactionCount", |p, n| -> U64 {
        let (a, id): (Address, Option<BlockId>) = parse(&p)?;
        at_head(n, id)?;
        n.store()
            .view()
            .and_then(|v| v.nonce(&a))
            .map(U64::from)
            .map_err(internal)
    });
    method!("eth_getCode", |p, n| -> Bytes {
        let (a, id): (Address, Option<BlockId>) = parse(&p)?;
        at_head(n, id)?;
        n.store().view().and_then(|v| v.code(&a)).map_err(internal)
    });
    method!("eth_getStorageAt", |p, n| -> B256 {
        let (a, slot, id): (Address, U256, Option<BlockId>) = parse(&p)?;
        at_head(n, id)?;
        use revm::DatabaseRef;
        let v = n.store().view().map_err(internal)?;
        v.storage_ref(a, slot).map(B256::from).map_err(internal)
    });
    method!("eth_getBlockByNumber", |p,
                                     n|
     -> Option<serde_json::Value> {
        let (tag, full): (BlockNumberOrTag, Option<bool>) = parse(&p)?;
        Ok(block_json(
            block(n, BlockId::Number(tag))?,
            full.unwrap_or(false),
        ))
    });
    method!("eth_getBlockByHash", |p, n| -> Option<serde_json::Value> {
        let (h, full): (B256, Option<bool>) = parse(&p)?;
        Ok(block_json(
            block(n, BlockId::from(h))?,
            full.unwrap_or(false),
        ))
    });
    method!("eth_getTransactionReceipt", |p,
                                          n|
     -> Option<
        alloy_rpc_types_eth::TransactionReceipt,
    > {
        let (h,): (B256,) = parse(&p)?;
        Ok(indexed(n, &h)?.map(|(b, i)| convert::receipt(&b, i)))
    });
    method!("eth_getTransactionByHash", |p,
                                         n|
     -> Option<
        alloy_rpc_types_eth::Transaction,
    > {
        let (h,): (B256,) = parse(&p)?;
        Ok(indexed(n, &h)?.map(|(b, i)| convert::transaction(&b.transactions[i], Some((&b, i)))))
    });
    method!("net_listening", |_p, _n| -> bool { Ok(true) });
    method!("eth_accounts", |_p, _n| -> Vec<Address> { Ok(vec![]) });
    method!("eth_gasPrice", |_p, n| -> U256 {
        Ok(read::gas_price(head_block(n)?.header.base_fee))
    });
    method!("eth_maxPriorityFeePerGas", |_p, _n| -> U256 {
        Ok(U256::from(read::SUGGESTED_TIP))
    });
    method!("eth_feeHistory", |p, n| -> FeeHistory {
        let (count, newest, percentiles): (U64, BlockNumberOrTag, Option<Vec<f64>>) = parse(&p)?;
        // The base fee does not adjust: the next block's is the head's.
        let next = head_block(n)?.header.base_fee;
        read::fee_history(n, count.to(), newest, percentiles, next)
    });
    method!("eth_getLogs", |p, n| -> Vec<alloy_rpc_types_eth::Log> {
        let (filter,): (Filter,) = parse(&p)?;
        read::logs(n, &filter, MAX_LOG_RANGE)
    });
    m.register_blocking_method("eth_call", |p, n, _| -> RpcResult<Bytes> {
        let (req, id): (TransactionRequest, Option<BlockId>) = parse(&p)?;
        at_head(&n, id)?;
        let params = next_block_params(&n)?;
        let view = n.store().view().map_err(internal)?;
        match call(&view, &params, &read::call_request(req)).map_err(|e| server_error(e.0))? {
            CallOutcome::Success { output, .. } => Ok(output),
            failed => Err(read::failed_call(failed)),
        }
    })
    .expect("unique method names");
    m.register_blocking_method("eth_estimateGas", |p, n, _| -> RpcResult<U64> {
        let (req, id): (TransactionRequest, Option<BlockId>) = parse(&p)?;
        at_head(&n, id)?;
        let params = next_block_params(&n)?;
        let view = n.store().view().map_err(internal)?;
        match estimate_gas(&view, &params, &read::call_request(req))
            .map_err(|e| server_error(e.0))?
        {
            Ok(gas) => Ok(U64::from(gas)),
            Err(failed) => Err(read::failed_call(failed)),
        }
    })
    .expect("unique method names");
    m
}

/// Starts the server on `addr`, with the status page; returns its address and handle.
pub async fn serve(
    node: FullNode,
    addr: SocketAddr,
) -> std::io::Result<(SocketAddr, ServerHandle)> {
    let page = proofbox_status_page::StatusPage::new(crate::page::FullNodePage(node.clone()));
    let server = Server::builder()
        .set_http_middleware(page.middleware())
        .build(addr)
        .await?;
    let local = server.local_addr()?;
    let handle = server.start(module(node));
    page.sample_until(handle.clone().stopped());
    Ok((local, handle))
}
