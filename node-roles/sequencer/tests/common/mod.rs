//! Shared helpers: a sequencer on 127.0.0.1 port 0, alloy providers against it.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use alloy_network::EthereumWallet;
use alloy_primitives::B256;
use alloy_provider::{Provider, ProviderBuilder, WsConnect};
use alloy_rpc_types_eth::TransactionReceipt;
use jsonrpsee::server::ServerHandle;
use proofbox_sequencer::{Config, Sequencer, dev_accounts};

pub struct Node {
    pub seq: Sequencer,
    pub addr: SocketAddr,
    pub handle: ServerHandle,
}

impl Node {
    pub async fn start(config: Config) -> Self {
        let config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..config
        };
        let seq = Sequencer::start(config.clone(), true).unwrap();
        let (addr, handle) = proofbox_sequencer::rpc::serve(seq.clone(), config.listen)
            .await
            .unwrap();
        Self { seq, addr, handle }
    }

    pub async fn fast() -> Self {
        Self::start(fast_config()).await
    }

    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// A provider over HTTP signing with development account `i`.
    pub fn http(&self, i: u32) -> impl Provider + Clone + use<> {
        let signer = dev_accounts(i + 1)[i as usize].signer();
        tls();
        ProviderBuilder::new()
            .wallet(EthereumWallet::from(signer))
            .connect_http(self.http_url().parse().unwrap())
    }

    pub async fn ws(&self, i: u32) -> impl Provider + Clone + use<> {
        let signer = dev_accounts(i + 1)[i as usize].signer();
        ProviderBuilder::new()
            .wallet(EthereumWallet::from(signer))
            .connect_ws(WsConnect::new(self.ws_url()))
            .await
            .unwrap()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.seq.stop();
        let _ = self.handle.stop();
    }
}

/// Installs rustls' ring provider: in a workspace build reqwest (under alloy's HTTP
/// transport) has its TLS provider left to the application.
pub fn tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// 10 ms blocks, nothing on disk.
pub fn fast_config() -> Config {
    Config {
        block_time: Duration::from_millis(10),
        ..Config::default()
    }
}

/// Polls `eth_getTransactionReceipt` until the transaction is in a block.
pub async fn receipt(p: &impl Provider, hash: B256) -> TransactionReceipt {
    for _ in 0..2000 {
        if let Some(r) = p.get_transaction_receipt(hash).await.unwrap() {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("no receipt for {hash}");
}
