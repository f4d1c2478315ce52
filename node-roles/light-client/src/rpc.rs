//! The light client's local JSON-RPC endpoint (HTTP and WebSocket on one port):
//! `eth_chainId`, `eth_blockNumber` (the proven block), `eth_getBalance`,
//! `eth_getTransactionCount`, `eth_getStorageAt`, `eth_getCode`, answered at the
//! proven head from an untrusted node's `eth_getProof` and checked against the proven
//! root; `proofbox_lightStatus`. The status page ([`crate::page`]) is served on the
//! same port: `GET /` and `GET /status.json`.
//!
//! Errors: -32602 for bad parameters; -32000 for what cannot be answered (the node is
//! unreachable or behind, a block other than the proven head) and, with a message
//! starting "the node lied", for an answer that does not check.

use std::net::SocketAddr;

use alloy_primitives::{Address, B256, Bytes, U64, U256, keccak256};
use alloy_provider::{Provider, RootProvider};
use alloy_rpc_types_eth::{BlockId, BlockNumberOrTag};
use alloy_serde::JsonStorageKey;
use jsonrpsee::RpcModule;
use jsonrpsee::server::{Server, ServerHandle};
use jsonrpsee::types::error::INVALID_PARAMS_MSG;
use jsonrpsee::types::{ErrorObjectOwned, Params};
use proofbox_chain_types::account_proof::{AccountProof, verify};
use serde::Serialize;

use crate::{Head, Lie, LightClient};

type RpcResult<T> = Result<T, ErrorObjectOwned>;

const SERVER_ERROR: i32 = -32000;
const INVALID_PARAMS: i32 = -32602;

/// keccak256 of no code.
const KECCAK_EMPTY: B256 =
    alloy_primitives::b256!("c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470");

fn server_error(m: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(SERVER_ERROR, m.into(), None::<()>)
}

fn invalid(m: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(INVALID_PARAMS, m.into(), None::<()>)
}

/// What the endpoint serves from.
#[derive(Clone)]
pub struct Served {
    pub client: LightClient,
    /// The untrusted node asked for `eth_getProof` and `eth_getCode` (HTTP).
    pub node: String,
    /// The untrusted node proofs are fetched from to catch up (HTTP).
    pub proofs: String,
    /// The HTTP provider for `node`, made once so that answers reuse its keep-alive
    /// connections (or why `node` is no URL).
    node_http: Result<RootProvider, String>,
}

impl Served {
    /// Serves `client`'s proven state, asking `node` for Merkle proofs and code and
    /// catching up from `proofs`.
    pub fn new(client: LightClient, node: String, proofs: String) -> Self {
        crate::install_tls();
        let node_http = node
            .parse()
            .map(RootProvider::new_http)
            .map_err(|e| format!("node URL: {e}"));
        Self {
            client,
            node,
            proofs,
            node_http,
        }
    }

    /// The HTTP provider for the node.
    fn node_provider(&self) -> RpcResult<RootProvider> {
        self.node_http.clone().map_err(server_error)
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Status {
    #[serde(flatten)]
    head: Head,
    node: String,
    proofs: String,
    lies: Vec<Lie>,
}

/// Only the proven head can be answered for.
fn at_head(head: &Head, tag: Option<BlockId>) -> RpcResult<()> {
    match tag {
        None
        | Some(BlockId::Number(
            BlockNumberOrTag::Latest | BlockNumberOrTag::Safe | BlockNumberOrTag::Finalized,
        )) => Ok(()),
        Some(BlockId::Number(BlockNumberOrTag::Number(n))) if n == head.block => Ok(()),
        _ => Err(server_error(format!(
            "this light client answers at its proven head (block {}) only",
            head.block
        ))),
    }
}

impl Served {
    /// The node's `eth_getProof` answer for `address` and `slots`, checked against the
    /// proven root (caught up first if the node is ahead).
    async fn query(&self, address: Address, slots: &[U256]) -> RpcResult<AccountProof> {
        let provider = self.node_provider()?;
        let keys: Vec<JsonStorageKey> = slots.iter().map(|s| JsonStorageKey::from(*s)).collect();
        let p: AccountProof = provider
            .raw_request("eth_getProof".into(), (address, &keys, "safe"))
            .await
            .map_err(|e| server_error(format!("the node at {} did not answer: {e}", self.node)))?;
        let mut head = self.client.head();
        let at: u64 = p.block_number.to();
        if at > head.block {
            self.client
                .catch_up(&self.proofs, at)
                .await
                .map_err(|e| server_error(format!("catching up to block {at}: {e}")))?;
            head = self.client.head();
        }
        if at != head.block {
            return Err(server_error(format!(
                "the node answers at block {at}, this client's proven head is block {}: retry later",
                head.block
            )));
        }
        let lie = |what: String| {
            self.client.report(&self.node, what.clone());
            server_error(format!("the node lied: {what}"))
        };
        if p.address != address
            || p.storage_proof.len() != slots.len()
            || p.storage_proof
                .iter()
                .zip(slots)
                .any(|(s, k)| U256::from_be_bytes(s.key.as_b256().0) != *k)
        {
            return Err(lie("it answered for another account or other slots".into()));
        }
        verify(&p, &head.root).map_err(|e| {
            lie(format!(
                "a Merkle proof that does not check against the proven root {} of block {}: {e}",
                head.root, head.block
            ))
        })?;
        Ok(p)
    }
}

/// The parameters as `T`; trailing optional ones (a block tag) may be left out.
fn parse<T: serde::de::DeserializeOwned>(p: &Params<'_>) -> RpcResult<T> {
    proofbox_chain_types::params::positional(p.as_str()).map_err(|_| invalid(INVALID_PARAMS_MSG))
}

/// Every method of the light client.
pub fn module(served: Served) -> RpcModule<Served> {
    let mut m = RpcModule::new(served);
    let ok = |r: Result<(), jsonrpsee::core::RegisterMethodError>| {
        r.expect("method names are unique");
    };
    ok(
        m.register_method("eth_chainId", |_, s, _| -> RpcResult<U64> {
            Ok(U64::from(s.client.chain_id()))
        })
        .map(|_| ()),
    );
    ok(
        m.register_method("eth_blockNumber", |_, s, _| -> RpcResult<U64> {
            Ok(U64::from(s.client.head().block))
        })
        .map(|_| ()),
    );
    ok(m.register_method(
        "proofbox_lightStatus",
        |_, s, _| -> RpcResult<serde_json::Value> {
            Ok(serde_json::to_value(Status {
                head: s.client.head(),
                node: s.node.clone(),
                proofs: s.proofs.clone(),
                lies: s.client.lies(),
            })
            .expect("serializes"))
        },
    )
    .map(|_| ()));
    ok(
        m.register_async_method("eth_getBalance", |p, s, _| async move {
            let (a, tag): (Address, Option<BlockId>) = parse(&p)?;
            at_head(&s.client.head(), tag)?;
            Ok::<U256, ErrorObjectOwned>(s.query(a, &[]).await?.balance)
        })
        .map(|_| ()),
    );
    ok(
        m.register_async_method("eth_getTransactionCount", |p, s, _| async move {
            let (a, tag): (Address, Option<BlockId>) = parse(&p)?;
            at_head(&s.client.head(), tag)?;
            Ok::<U64, ErrorObjectOwned>(s.query(a, &[]).await?.nonce)
        })
        .map(|_| ()),
    );
    ok(
        m.register_async_method("eth_getStorageAt", |p, s, _| async move {
            let (a, slot, tag): (Address, U256, Option<BlockId>) = parse(&p)?;
            at_head(&s.client.head(), tag)?;
            let proof = s.query(a, &[slot]).await?;
            Ok::<B256, ErrorObjectOwned>(B256::from(proof.storage_proof[0].value))
        })
        .map(|_| ()),
    );
    ok(
        m.register_async_method("eth_getCode", |p, s, _| async move {
            let (a, tag): (Address, Option<BlockId>) = parse(&p)?;
            at_head(&s.client.head(), tag)?;
            let proof = s.query(a, &[]).await?;
            if proof.code_hash == B256::ZERO || proof.code_hash == KECCAK_EMPTY {
                return Ok(Bytes::new());
            }
            let code: Bytes = s
                .node_provider()?
                .raw_request("eth_getCode".into(), (a, "safe"))
                .await
                .map_err(|e| server_error(format!("the node did not answer: {e}")))?;
            if keccak256(&code) != proof.code_hash {
                let what = format!(
                    "code of {a} that does not hash to its proven code hash {}",
                    proof.code_hash
                );
                s.client.report(&s.node, what.clone());
                return Err(server_error(format!("the node lied: {what}")));
            }
            Ok::<Bytes, ErrorObjectOwned>(code)
        })
        .map(|_| ()),
    );
    m
}

/// Starts the endpoint on `addr` (port 0 picks one), with the status page.
pub async fn serve(
    served: Served,
    addr: SocketAddr,
) -> std::io::Result<(SocketAddr, ServerHandle)> {
    crate::install_tls();
    let page = proofbox_status_page::StatusPage::new(crate::page::LightPage(served.clone()));
    let server = Server::builder()
        .set_http_middleware(page.middleware())
        .build(addr)
        .await?;
    let local = server.local_addr()?;
    let handle = server.start(module(served));
    page.sample_until(handle.clone().stopped());
    Ok((local, handle))
}
