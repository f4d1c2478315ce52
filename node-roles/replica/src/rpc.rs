//! The replica's read-only JSON-RPC (HTTP and WebSocket on one port, with the status
//! page, [`crate::page`], on `GET /` and `GET /status.json`). Block tags:
//! `latest` and `pending` read the applied head, `safe` and `finalized` the proven
//! head; a block number is served if it is one of the two heads. Logs, fee history
//! and calls are answered by the sequencer's own code
//! (`proofbox_sequencer::rpc::eth::read`) over the replica's blocks and state.
//! `eth_getProof` is served at the proven head only (the latest state has no tree).
//! Nothing derived from a block's body (the block, its transactions, receipts, logs,
//! fee rewards) is served before its transactions and receipts checked out against its
//! header ([`Replica::checked`], right then if not yet); a block refused for its body
//! is an error, never an answer. A transaction's sender is recovered when it is served.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::bodies::Kept;
use alloy_primitives::{Address, B256, Bytes, U64, U256};
use alloy_rpc_types_eth::{BlockId, BlockNumberOrTag, FeeHistory, Filter, TransactionRequest};
use alloy_serde::JsonStorageKey;
use jsonrpsee::RpcModule;
use jsonrpsee::server::{Server, ServerHandle};
use jsonrpsee::types::{ErrorObjectOwned, Params};
use proofbox_chain_types::Block;
use proofbox_sequencer::exec::{BlockParams, CallOutcome, call, estimate_gas};
use proofbox_sequencer::rpc::convert;
use proofbox_sequencer::rpc::eth::read::{self, Blocks};

use crate::getproof::{self, AccountProof};
use crate::replica::{Chain, Head, Replica};

type RpcResult<T> = Result<T, ErrorObjectOwned>;

/// The widest block range `eth_getLogs` scans (the sequencer's default).
pub const MAX_LOG_RANGE: u64 = 10_000;

/// The most storage slots one `eth_getProof` proves.
pub const MAX_PROOF_SLOTS: usize = 1024;

fn server_error(m: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(-32000, m, None::<()>)
}

fn invalid_params(m: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(-32602, m, None::<()>)
}

fn parse<'a, T: serde::Deserialize<'a>>(p: &'a Params<'a>) -> RpcResult<T> {
    p.parse::<T>()
        .map_err(|e| invalid_params(e.message().to_string()))
}

/// `count` leading parameters (one value, or a tuple when `count > 1`), then an
/// optional block id: absent, `null`, or missing from a shorter array.
fn with_block<T: serde::de::DeserializeOwned>(
    p: &Params<'_>,
    count: usize,
) -> RpcResult<(T, Option<BlockId>)> {
    let mut v: Vec<serde_json::Value> = parse(p)?;
    if v.len() < count || v.len() > count + 1 {
        return Err(invalid_params(format!(
            "expected {count} parameters and an optional block, got {}",
            v.len()
        )));
    }
    let block = match v.len() > count {
        true => match v.pop().expect("present") {
            serde_json::Value::Null => None,
            b => Some(
                serde_json::from_value::<BlockId>(b)
                    .map_err(|e| invalid_params(format!("block: {e}")))?,
            ),
        },
        false => None,
    };
    let args = match count {
        1 => serde_json::from_value(v.pop().expect("present")),
        _ => serde_json::from_value(serde_json::Value::Array(v)),
    }
    .map_err(|e| invalid_params(e.to_string()))?;
    Ok((args, block))
}

/// The head a block id names; `default` when none is given.
pub fn head_for(c: &Chain, id: Option<BlockId>, default: Head) -> RpcResult<Head> {
    let number = match id {
        None => return Ok(default),
        Some(BlockId::Number(BlockNumberOrTag::Latest | BlockNumberOrTag::Pending)) => {
            return Ok(Head::Latest);
        }
        Some(BlockId::Number(BlockNumberOrTag::Safe | BlockNumberOrTag::Finalized)) => {
            return Ok(Head::Proven);
        }
        Some(BlockId::Number(BlockNumberOrTag::Earliest)) => 0,
        Some(BlockId::Number(BlockNumberOrTag::Number(n))) => n,
        Some(BlockId::Hash(h)) => match c.block_by_hash(&h.block_hash) {
            Some(b) => b.number(),
            None => return Err(server_error(format!("unknown block {}", h.block_hash))),
        },
    };
    if c.latest_head == Some(number) {
        Ok(Head::Latest)
    } else if c.proven_head == Some(number) {
        Ok(Head::Proven)
    } else {
        let show = |h: Option<u64>| h.map_or("none".to_string(), |n| n.to_string());
        Err(server_error(format!(
            "state is available at the latest head ({}) and the proven head ({}) only",
            show(c.latest_head),
            show(c.proven_head)
        )))
    }
}

fn no_state(c: &Chain, head: Head) -> RpcResult<u64> {
    c.head(head).ok_or_else(|| server_error("no block yet"))
}

/// A kept block, for serving: its bodies checked first (now, if nobody has yet); one
/// refused for its body is an error.
fn served(r: &Replica, k: &Kept) -> RpcResult<Arc<Block>> {
    r.checked(k).map_err(|refusal| {
        server_error(format!(
            "block {} is refused ({}): its transactions, receipts and logs are not served",
            k.number(),
            refusal.reason
        ))
    })
}

/// Recovers the senders of `k`'s transaction `which` (all if `None`) before they are
/// served.
fn senders(r: &Replica, k: &Kept, which: Option<usize>) -> RpcResult<()> {
    r.recover_senders(k, which)
        .map_err(|refusal| server_error(format!("block {}: {}", k.number(), refusal.reason)))
}

/// The blocks `eth_getLogs` and `eth_feeHistory` read: checked ones only.
impl Blocks for Replica {
    fn head(&self) -> RpcResult<Option<u64>> {
        Ok(self.read().latest_head)
    }

    fn block(&self, number: u64) -> RpcResult<Option<Arc<Block>>> {
        let kept = self.read().block(number);
        kept.map(|k| served(self, &k)).transpose()
    }

    fn block_by_hash(&self, hash: &B256) -> RpcResult<Option<Arc<Block>>> {
        let kept = self.read().block_by_hash(hash);
        kept.map(|k| served(self, &k)).transpose()
    }
}

fn block_for(c: &Chain, tag: BlockNumberOrTag) -> Option<Arc<Kept>> {
    let n = match tag {
        BlockNumberOrTag::Number(n) => Some(n),
        BlockNumberOrTag::Earliest => Some(0),
        BlockNumberOrTag::Safe | BlockNumberOrTag::Finalized => c.proven_head,
        _ => c.latest_head,
    };
    n.and_then(|n| c.block(n))
}

/// A block as JSON: its bodies checked, and with `full` its senders recovered.
fn block_json(
    r: &Replica,
    k: Option<Arc<Kept>>,
    full: bool,
) -> RpcResult<Option<serde_json::Value>> {
    let Some(k) = k else { return Ok(None) };
    let b = served(r, &k)?;
    if full {
        senders(r, &k, None)?;
    }
    Ok(Some(
        serde_json::to_value(convert::block(&b, full)).expect("serializes"),
    ))
}

/// The kept block holding transaction `h` (found in its body, checked or not: what is
/// served from it is checked first), and its index there.
fn indexed(c: &Chain, h: &B256) -> Option<(Arc<Kept>, usize)> {
    let mut n = c.latest_head?;
    loop {
        let k = c.block(n)?;
        let found = k
            .unchecked()
            .transactions
            .iter()
            .position(|t| t.hash() == *h);
        if let Some(i) = found {
            return Some((k, i));
        }
        n = n.checked_sub(1)?;
    }
}

/// Transaction `h` in its block, the block's bodies checked and its sender recovered.
fn served_tx(r: &Replica, h: &B256) -> RpcResult<Option<(Arc<Block>, usize)>> {
    let found = indexed(&r.read(), h);
    let Some((k, i)) = found else {
        return Ok(None);
    };
    let b = served(r, &k)?;
    senders(r, &k, Some(i))?;
    Ok(Some((b, i)))
}

/// The block a call at `head` runs in: the next one, with the head's limits and fees.
fn next_block_params(r: &Replica, c: &Chain, head: Head) -> RpcResult<BlockParams> {
    let n = no_state(c, head)?;
    let b = c
        .block(n)
        .ok_or_else(|| server_error(format!("block {n} is not kept")))?;
    let h = b.header();
    Ok(BlockParams {
        chain_id: r.chain_id(),
        number: h.number + 1,
        timestamp_ms: h.timestamp_ms,
        gas_limit: h.gas_limit,
        base_fee: h.base_fee,
        coinbase: h.coinbase,
    })
}

fn head_block(c: &Chain) -> RpcResult<Arc<Kept>> {
    c.latest_head
        .and_then(|n| c.block(n))
        .ok_or_else(|| server_error("no block yet"))
}

/// The read-only methods, `proofbox_replicaStatus` and `eth_getProof`.
pub fn module(replica: Replica) -> RpcModule<Replica> {
    let mut m = RpcModule::new(replica);
    macro_rules! method {
        ($name:literal, |$p:ident, $r:ident| -> $t:ty $body:block) => {
            m.register_method($name, |$p, $r, _| -> RpcResult<$t> { $body })
                .expect("unique method names");
        };
    }
    // Methods that may check a block's bodies or recover senders: off the async
    // workers.
    macro_rules! blocking {
        ($name:literal, |$p:ident, $r:ident| -> $t:ty $body:block) => {
            m.register_blocking_method($name, |$p, $r, _| -> RpcResult<$t> { $body })
                .expect("unique method names");
        };
    }
    macro_rules! state_method {
        ($name:literal, $args:ty, |$c:ident, $s:ident, $a:ident| -> $t:ty $body:block) => {
            m.register_method($name, |p, r, _| -> RpcResult<$t> {
                let (a, id): ($args, Option<BlockId>) = with_block(&p, 1)?;
                let $c = r.read();
                let head = head_for(&$c, id, Head::Latest)?;
                no_state(&$c, head)?;
                let $s = $c.state(head);
                let $a = a;
                $body
            })
            .expect("unique method names");
        };
    }
    method!("web3_clientVersion", |_p, _r| -> String {
        Ok(concat!("proofbox-replica/", env!("CARGO_PKG_VERSION")).into())
    });
    method!("eth_chainId", |_p, r| -> U64 {
        Ok(U64::from(r.chain_id()))
    });
    method!("net_version", |_p, r| -> String {
        Ok(r.chain_id().to_string())
    });
    method!("net_listening", |_p, _r| -> bool { Ok(true) });
    method!("eth_syncing", |_p, _r| -> bool { Ok(false) });
    method!("eth_accounts", |_p, _r| -> Vec<Address> { Ok(vec![]) });
    method!("eth_blockNumber", |_p, r| -> U64 {
        Ok(U64::from(r.read().latest_head.unwrap_or(0)))
    });
    method!("proofbox_replicaStatus", |_p, r| -> serde_json::Value {
        Ok(r.status())
    });
    method!("proofbox_status", |_p, r| -> serde_json::Value {
        Ok(r.status())
    });
    state_method!("eth_getBalance", Address, |_c, s, a| -> U256 {
        Ok(s.balance(&a))
    });
    state_method!("eth_getTransactionCount", Address, |_c, s, a| -> U64 {
        Ok(U64::from(s.nonce(&a)))
    });
    state_method!("eth_getCode", Address, |_c, s, a| -> Bytes {
        Ok(s.code(&a).map(|c| c.original_bytes()).unwrap_or_default())
    });
    m.register_method("eth_getStorageAt", |p, r, _| -> RpcResult<B256> {
        let ((a, slot), id): ((Address, JsonStorageKey), _) = with_block(&p, 2)?;
        let c = r.read();
        let head = head_for(&c, id, Head::Latest)?;
        no_state(&c, head)?;
        let slot = U256::from_be_bytes(slot.as_b256().0);
        Ok(B256::from(c.state(head).storage_at(&a, &slot)))
    })
    .expect("unique method names");
    m.register_method("eth_getProof", |p, r, _| -> RpcResult<AccountProof> {
        let ((a, slots), id): ((Address, Vec<JsonStorageKey>), _) = with_block(&p, 2)?;
        if slots.len() > MAX_PROOF_SLOTS {
            return Err(invalid_params(format!(
                "at most {MAX_PROOF_SLOTS} storage keys a request, got {}",
                slots.len()
            )));
        }
        let c = r.read();
        let head = head_for(&c, id, Head::Proven)?;
        let n = no_state(&c, head)?;
        // Proofs need the tree, which only the proven state has: the latest head is
        // served when it is the proven head.
        if c.proven_head != Some(n) {
            return Err(server_error(format!(
                "eth_getProof is served at the proven head ({}) only; the latest head's \
                 root is not computed until its batch is proven",
                c.proven_head.map_or("none".to_string(), |p| p.to_string())
            )));
        }
        Ok(getproof::prove(&c.proven, n, a, &slots))
    })
    .expect("unique method names");
    blocking!("eth_getBlockByNumber", |p,
                                       r|
     -> Option<serde_json::Value> {
        let (tag, full): (BlockNumberOrTag, Option<bool>) = parse(&p)?;
        let kept = block_for(&r.read(), tag);
        block_json(&r, kept, full.unwrap_or(false))
    });
    blocking!("eth_getBlockByHash", |p, r| -> Option<serde_json::Value> {
        let (h, full): (B256, Option<bool>) = parse(&p)?;
        let kept = r.read().block_by_hash(&h);
        block_json(&r, kept, full.unwrap_or(false))
    });
    blocking!("eth_getTransactionReceipt", |p,
                                            r|
     -> Option<
        alloy_rpc_types_eth::TransactionReceipt,
    > {
        let (h,): (B256,) = parse(&p)?;
        Ok(served_tx(&r, &h)?.map(|(b, i)| convert::receipt(&b, i)))
    });
    blocking!("eth_getTransactionByHash", |p,
                                           r|
     -> Option<
        alloy_rpc_types_eth::Transaction,
    > {
        let (h,): (B256,) = parse(&p)?;
        Ok(
            served_tx(&r, &h)?
                .map(|(b, i)| convert::transaction(&b.transactions[i], Some((&b, i)))),
        )
    });
    method!("eth_gasPrice", |_p, r| -> U256 {
        Ok(read::gas_price(head_block(&r.read())?.header().base_fee))
    });
    method!("eth_maxPriorityFeePerGas", |_p, _r| -> U256 {
        Ok(U256::from(read::SUGGESTED_TIP))
    });
    blocking!("eth_feeHistory", |p, r| -> FeeHistory {
        let (count, newest, percentiles): (U64, BlockNumberOrTag, Option<Vec<f64>>) = parse(&p)?;
        let next = head_block(&r.read())?.header().base_fee;
        read::fee_history(&*r, count.to(), newest, percentiles, next)
    });
    blocking!("eth_getLogs", |p, r| -> Vec<alloy_rpc_types_eth::Log> {
        let (filter,): (Filter,) = parse(&p)?;
        read::logs(&*r, &filter, MAX_LOG_RANGE)
    });
    m.register_blocking_method("eth_call", |p, r, _| -> RpcResult<Bytes> {
        let (req, id): (TransactionRequest, _) = with_block(&p, 1)?;
        let c = r.read();
        let head = head_for(&c, id, Head::Latest)?;
        let params = next_block_params(&r, &c, head)?;
        match call(c.state(head), &params, &read::call_request(req))
            .map_err(|e| server_error(e.0))?
        {
            CallOutcome::Success { output, .. } => Ok(output),
            failed => Err(read::failed_call(failed)),
        }
    })
    .expect("unique method names");
    m.register_blocking_method("eth_estimateGas", |p, r, _| -> RpcResult<U64> {
        let (req, id): (TransactionRequest, _) = with_block(&p, 1)?;
        let c = r.read();
        let head = head_for(&c, id, Head::Latest)?;
        let params = next_block_params(&r, &c, head)?;
        match estimate_gas(c.state(head), &params, &read::call_request(req))
            .map_err(|e| server_error(e.0))?
        {
            Ok(gas) => Ok(U64::from(gas)),
            Err(failed) => Err(read::failed_call(failed)),
        }
    })
    .expect("unique method names");
    m
}

/// Starts the server on `addr` (port 0 picks one), with the status page; returns its
/// address and handle.
pub async fn serve(
    replica: Replica,
    addr: SocketAddr,
) -> std::io::Result<(SocketAddr, ServerHandle)> {
    let page = proofbox_status_page::StatusPage::new(crate::page::ReplicaPage(replica.clone()));
    let server = Server::builder()
        .set_http_middleware(page.middleware())
        .build(addr)
        .await?;
    let local = server.local_addr()?;
    let handle = server.start(module(replica));
    page.sample_until(handle.clone().stopped());
    Ok((local, handle))
}
