//! The network on loopback: an appliance (the ProofBox service, CPU backend), a
//! sequencer proving through it, replicas, and a relay that stands between a replica
//! and the sequencer and alters what it forwards.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use alloy_network::{EthereumWallet, TransactionBuilder};
use alloy_primitives::{Address, B256, Bytes, U256};
use alloy_provider::{Provider, ProviderBuilder, WsConnect};
use alloy_rpc_types_eth::TransactionRequest;
use jsonrpsee::server::{Server, ServerHandle};
use jsonrpsee::{RpcModule, SubscriptionMessage};
use proofbox_replica::{Config as ReplicaConfig, Replica};
use proofbox_sequencer::proving::{self, ProvingConfig, ProvingHandle};
use proofbox_sequencer::{Config, Sequencer, dev_accounts};
use serde_json::Value;
use tokio::sync::oneshot;

const KEY: &str = "replica-test-key-0123456789";

/// Installs rustls' ring provider (reqwest under alloy's HTTP transport needs one).
pub fn tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// An appliance serving on `addr` from `dir`.
pub struct Appliance {
    stop: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
    workers: Option<proofbox_service::Workers>,
}

impl Appliance {
    pub async fn start(dir: &Path, addr: SocketAddr) -> Self {
        let config = proofbox_service::Config {
            listen: addr,
            data_dir: dir.to_path_buf(),
            api_keys: vec![KEY.into()],
            devices: vec!["cpu:0".into()],
            ..proofbox_service::Config::default()
        };
        let service = tokio::task::spawn_blocking(move || proofbox_service::Service::open(config))
            .await
            .unwrap()
            .unwrap();
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let workers = service.start_workers();
        let router = proofbox_service::app(service.state());
        let limits = proofbox_service::server::Limits::from_config(service.config());
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            proofbox_service::server::run(listener, router, limits, async {
                rx.await.ok();
            })
            .await
            .unwrap();
        });
        Self {
            stop: Some(tx),
            server,
            workers: Some(workers),
        }
    }

    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        (&mut self.server).await.unwrap();
        let workers = self.workers.take().unwrap();
        tokio::task::spawn_blocking(move || workers.shutdown(Duration::from_secs(30)))
            .await
            .unwrap()
            .unwrap();
    }
}

/// A sequencer (10 ms blocks, in memory) proving through an appliance.
pub struct Network {
    pub seq: Sequencer,
    pub addr: SocketAddr,
    handle: ServerHandle,
    proving: Option<ProvingHandle>,
    appliance: Option<Appliance>,
    _dir: tempfile::TempDir,
}

impl Network {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let app_addr = free_addr();
        let appliance = Appliance::start(dir.path(), app_addr).await;
        let config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            block_time: Duration::from_millis(10),
            ..Config::default()
        };
        let seq = Sequencer::start(config.clone(), true).unwrap();
        let (addr, handle) = proofbox_sequencer::rpc::serve(seq.clone(), config.listen)
            .await
            .unwrap();
        let proving = proving::start(
            &seq,
            ProvingConfig {
                appliances: vec![format!("http://{app_addr}")],
                api_key: Some(KEY.into()),
                batch_blocks: 4,
                batch_interval: Duration::from_millis(300),
                poll_interval: Duration::from_millis(50),
                ..ProvingConfig::default()
            },
        )
        .unwrap();
        Self {
            seq,
            addr,
            handle,
            proving: Some(proving),
            appliance: Some(appliance),
            _dir: dir,
        }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// A provider over HTTP signing with development account 0.
    pub fn http(&self) -> impl Provider + Clone + use<> {
        tls();
        ProviderBuilder::new()
            .wallet(EthereumWallet::from(dev_accounts(1)[0].signer()))
            .connect_http(format!("http://{}", self.addr).parse().unwrap())
    }

    /// Sends `n` transfers from account 0 (nonces from `from`), waits for them.
    pub async fn transfers(&self, from: u64, n: u64) {
        let p = self.http();
        let mut hashes = Vec::new();
        for i in from..from + n {
            let req = TransactionRequest::default()
                .with_to(Address::repeat_byte(0x30 + (i % 7) as u8))
                .with_value(U256::from(1 + i))
                .with_nonce(i)
                .with_gas_limit(21_000)
                .with_max_fee_per_gas(3_000_000_000)
                .with_max_priority_fee_per_gas(1);
            hashes.push(*p.send_transaction(req).await.unwrap().tx_hash());
            if i % 4 == 0 {
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
        for h in hashes {
            self.receipt(h).await;
        }
    }

    /// Deploys, with nonce `nonce`, a contract storing 42 at slot 1 whose code is one
    /// STOP; returns its address.
    pub async fn deploy(&self, nonce: u64) -> Address {
        // SSTORE(1, 42); MSTORE8(0, 0); RETURN(0, 1)
        let init = alloy_primitives::hex::decode("602a600155600060005360016000f3").unwrap();
        let req = TransactionRequest::default()
            .with_deploy_code(Bytes::from(init))
            .with_nonce(nonce)
            .with_gas_limit(100_000)
            .with_max_fee_per_gas(3_000_000_000)
            .with_max_priority_fee_per_gas(1);
        let h = *self.http().send_transaction(req).await.unwrap().tx_hash();
        self.receipt(h).await;
        dev_accounts(1)[0].address.create(nonce)
    }

    async fn receipt(&self, h: B256) {
        let p = self.http();
        for _ in 0..2000 {
            if p.get_transaction_receipt(h).await.unwrap().is_some() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("no receipt for {h}");
    }

    /// Waits until every block is proven; returns the head.
    pub async fn proven_to_head(&self) -> u64 {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            let head = self.seq.read().chain.head();
            let status = self.seq.proofs().status();
            if status.proven_block == Some(head) {
                return head;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "proving does not reach {head}: {status:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn stop(mut self) {
        if let Some(p) = self.proving.take() {
            p.stop();
        }
        self.seq.stop();
        let _ = self.handle.stop();
        if let Some(a) = self.appliance.take() {
            a.stop().await;
        }
    }
}

/// A replica following `ws_url`, serving on loopback.
pub struct Node {
    pub replica: Replica,
    pub addr: SocketAddr,
    handle: ServerHandle,
    follower: tokio::task::JoinHandle<()>,
}

impl Node {
    pub async fn start(config: ReplicaConfig, ws_url: String) -> Self {
        let replica = Replica::open(config).unwrap();
        let (addr, handle) =
            proofbox_replica::rpc::serve(replica.clone(), "127.0.0.1:0".parse().unwrap())
                .await
                .unwrap();
        let follower = tokio::spawn(replica.clone().follow(ws_url));
        Self {
            replica,
            addr,
            handle,
            follower,
        }
    }

    pub fn http(&self) -> impl Provider + Clone + use<> {
        tls();
        ProviderBuilder::new().connect_http(format!("http://{}", self.addr).parse().unwrap())
    }

    pub async fn status(&self) -> Value {
        self.http()
            .raw_request("proofbox_replicaStatus".into(), ())
            .await
            .unwrap()
    }

    /// Waits until `done(status)` holds.
    pub async fn wait(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let s = self.status().await;
            if done(&s) {
                return s;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the replica never got {what}: {s:#}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn stop(self) {
        self.follower.abort();
        let _ = self.follower.await;
        let _ = self.handle.stop();
        let _ = self.handle.stopped().await;
    }
}

/// What a relay does to the messages of one subscription.
pub type Transform = Box<dyn FnMut(Value) -> Value + Send>;

/// For each subscription `(kind, options)`, the transform of its messages.
pub type Alter = Arc<dyn Fn(&str, &Value) -> Transform + Send + Sync>;

/// The same function for every message: `(kind, message) -> message`.
pub fn each(f: impl Fn(&str, Value) -> Value + Send + Sync + Clone + 'static) -> Alter {
    Arc::new(move |kind: &str, _: &Value| {
        let (f, kind) = (f.clone(), kind.to_string());
        Box::new(move |v| f(&kind, v)) as Transform
    })
}

struct Relay {
    upstream: String,
    alter: Alter,
}

/// A fake sequencer endpoint: serves `eth_subscribe` for `blocks` and `proofs` by
/// subscribing upstream with the same parameters and forwarding every message through
/// `alter`. Returns its WebSocket URL.
pub async fn relay(upstream: String, alter: Alter) -> (String, ServerHandle) {
    let mut m = RpcModule::new(Relay { upstream, alter });
    m.register_subscription(
        "eth_subscribe",
        "eth_subscription",
        "eth_unsubscribe",
        |params, pending, relay, _| async move {
            let (kind, opts): (String, Value) = params.parse()?;
            let p = ProviderBuilder::new()
                .connect_ws(WsConnect::new(relay.upstream.clone()))
                .await
                .map_err(|e| e.to_string())?;
            let mut transform = (relay.alter)(&kind, &opts);
            let mut sub = p
                .subscribe::<_, Value>((kind.clone(), opts))
                .await
                .map_err(|e| e.to_string())?;
            let sink = pending.accept().await?;
            loop {
                let v = sub.recv().await.map_err(|e| e.to_string())?;
                let v = tokio::task::block_in_place(|| transform(v));
                let raw = serde_json::value::to_raw_value(&v).unwrap();
                if sink.send(SubscriptionMessage::from(raw)).await.is_err() {
                    return Ok(());
                }
            }
        },
    )
    .unwrap();
    let server = Server::builder()
        .build("127.0.0.1:0".parse::<SocketAddr>().unwrap())
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    (format!("ws://{addr}"), server.start(m))
}

/// Leaves every message as it is.
pub fn unaltered() -> Alter {
    each(|_, v| v)
}

/// `json!` shorthand for a status field as `u64`.
pub fn num(v: &Value) -> Option<u64> {
    v.as_u64()
}
