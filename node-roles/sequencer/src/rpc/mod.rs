//! The JSON-RPC server: HTTP and WebSocket on one port (jsonrpsee), batch requests
//! included, and the sequencer's status page on the same port (`GET /`,
//! `GET /status.json`).
//!
//! - [`eth`]: the Ethereum methods (`eth_*`, `net_version`, `web3_clientVersion`) and
//!   MegaETH's `realtime_sendRawTransaction`;
//! - [`subs`]: `eth_subscribe` / `eth_unsubscribe`: `newHeads`, `logs`,
//!   `stateChanges` and `blocks` (the resumable block stream);
//! - [`proofs`]: the published state-transition proofs (`proofbox_*` methods and the
//!   `proofs` stream);
//! - [`convert`]: chain types as alloy's RPC types;
//! - [`page`]: the status page's view of the sequencer.
//!
//! Errors follow geth: -32602 for bad parameters, -32000 for refused transactions and
//! unavailable data, 3 with the revert data for reverted calls.

pub mod convert;
pub mod eth;
pub mod page;
pub mod proofs;
pub mod subs;

use std::net::SocketAddr;

use jsonrpsee::RpcModule;
use jsonrpsee::server::{Server, ServerConfig, ServerHandle};
use jsonrpsee::types::ErrorObjectOwned;

use crate::Sequencer;

/// geth's code for refused transactions and unavailable data.
pub const SERVER_ERROR: i32 = -32000;
/// Invalid parameters.
pub const INVALID_PARAMS: i32 = -32602;
/// A reverted call (`data` holds the revert bytes).
pub const EXECUTION_REVERTED: i32 = 3;

pub(crate) fn server_error(message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(SERVER_ERROR, message, None::<()>)
}

pub(crate) fn invalid_params(message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(INVALID_PARAMS, message, None::<()>)
}

/// Every method of the sequencer.
pub fn module(seq: Sequencer) -> RpcModule<Sequencer> {
    let durable = seq.config().data_dir.is_some();
    let mut m = RpcModule::new(seq);
    eth::register(&mut m, durable);
    subs::register(&mut m);
    proofs::register(&mut m);
    m
}

/// Starts the server on `addr` (port 0 picks one), with the status page; returns its
/// address and handle.
pub async fn serve(
    seq: Sequencer,
    addr: SocketAddr,
) -> std::io::Result<(SocketAddr, ServerHandle)> {
    let config = ServerConfig::builder()
        .set_message_buffer_capacity(seq.config().ws_buffer)
        .build();
    let page = proofbox_status_page::StatusPage::new(page::SequencerPage(seq.clone()));
    let server = Server::builder()
        .set_config(config)
        .set_http_middleware(page.middleware())
        .build(addr)
        .await?;
    let local = server.local_addr()?;
    let handle = server.start(module(seq));
    page.sample_until(handle.clone().stopped());
    Ok((local, handle))
}
