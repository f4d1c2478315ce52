//! Proving through appliances, end to end on loopback: a real appliance (the
//! ProofBox service, CPU backend) proves the sequencer's batches; the proofs are
//! fetched and followed over JSON-RPC with alloy's provider and verified here; an
//! appliance that is down, then restarted, and a sequencer restarted mid-way, still
//! give every batch exactly one job and one proof. Run in release.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use alloy_network::TransactionBuilder;
use alloy_primitives::{Address, U256};
use alloy_provider::Provider;
use alloy_rpc_types_eth::TransactionRequest;
use common::Node;
use proofbox_chain_types::{ProvenBatch, net_diff};
use proofbox_circuits::transition::TransitionStatement;
use proofbox_sequencer::proving::{self, ProvingConfig};
use proofbox_sequencer::{Config, dev_accounts};
use proofbox_verifier::{TransitionProof, Verifier};
use serde_json::{Value, json};

const KEY: &str = "sequencer-test-key-0123456789";

/// An appliance (CPU) serving on `addr` from `dir`.
struct Appliance(proofbox_service::Running);

impl Appliance {
    async fn start(dir: &Path, addr: SocketAddr) -> Self {
        let config = proofbox_service::Config {
            listen: addr,
            data_dir: dir.to_path_buf(),
            api_keys: vec![KEY.into()],
            devices: vec!["cpu:0".into()],
            ..proofbox_service::Config::default()
        };
        Self(proofbox_service::start(config).await.unwrap())
    }

    /// Stops serving and proving (running proofs go back to the queue).
    async fn stop(self) {
        self.0.shutdown().await.unwrap();
    }
}

/// A loopback address nothing listens on (yet).
fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

fn proving_config(addr: SocketAddr) -> ProvingConfig {
    ProvingConfig {
        appliances: vec![format!("http://{addr}")],
        api_key: Some(KEY.into()),
        batch_blocks: 4,
        batch_interval: Duration::from_millis(300),
        poll_interval: Duration::from_millis(50),
        ..ProvingConfig::default()
    }
}

fn sequencer_config(dir: Option<PathBuf>) -> Config {
    Config {
        data_dir: dir,
        ..common::fast_config()
    }
}

/// Sends `n` transfers from development account 0 (nonces from `from`) and waits for
/// all of them to be mined.
async fn transfers(node: &Node, from: u64, n: u64) {
    let p = node.http(0);
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
        if i % 5 == 0 {
            // Spread the transfers over several blocks.
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
    for h in hashes {
        common::receipt(&p, h).await;
    }
}

/// Waits until the proven head reaches the sequencer's head; returns that head.
async fn proven_to_head(node: &Node, within: Duration) -> u64 {
    let p = node.http(0);
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let head = p.get_block_number().await.unwrap();
        let proven: Value = p
            .raw_request("proofbox_provenHead".into(), ())
            .await
            .unwrap();
        if proven["block"]
            .as_str()
            .map(|b| u64::from_str_radix(&b[2..], 16).unwrap())
            == Some(head)
        {
            return head;
        }
        if tokio::time::Instant::now() > deadline {
            let status: Value = p
                .raw_request("proofbox_provingStatus".into(), ())
                .await
                .unwrap();
            panic!("proving does not reach head {head}: {status:#}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Fetches every proof over JSON-RPC and checks it: batches follow each other from
/// block 1 to `head`, each bundle verifies and states the batch's roots (as the block
/// headers over RPC give them) and the net diff of its blocks.
async fn check_all(node: &Node, head: u64) -> Vec<ProvenBatch> {
    let p = node.http(0);
    let mut batches: Vec<ProvenBatch> = Vec::new();
    loop {
        let i = batches.len() as u64;
        let b: Option<ProvenBatch> = p
            .raw_request("proofbox_getProof".into(), (U256::from(i),))
            .await
            .unwrap();
        let Some(b) = b else { break };
        batches.push(b);
    }
    assert!(!batches.is_empty());
    let mut next = 1;
    for b in &batches {
        assert_eq!(
            b.first_block, next,
            "batch {} starts where the last ended",
            b.index
        );
        assert!(b.last_block >= b.first_block);
        next = b.last_block + 1;
        let root = |n: u64| {
            let p = p.clone();
            async move {
                let block: Value = p
                    .raw_request("eth_getBlockByNumber".into(), (format!("{n:#x}"), false))
                    .await
                    .unwrap();
                block["postStateRoot"].as_str().unwrap().to_string()
            }
        };
        assert_eq!(b.pre_root.hex(), root(b.first_block - 1).await);
        assert_eq!(b.post_root.hex(), root(b.last_block).await);
        let diffs: Vec<_> = (b.first_block..=b.last_block)
            .map(|n| node.seq.read().chain.block(n).unwrap().diff.clone())
            .collect();
        let net = net_diff(&diffs).unwrap();
        assert_eq!(b.updates, net.len() as u64);
        let expected = TransitionStatement {
            pre_root: b.pre_root.to_digest(),
            post_root: b.post_root.to_digest(),
            diff_commitment: net.commitment(),
            block_number: b.last_block,
        };
        let bundle = TransitionProof::from_bytes(&b.bundle).unwrap();
        Verifier::default()
            .verify_transition_chunks(&bundle, &expected)
            .unwrap_or_else(|e| panic!("batch {}: {e}", b.index));
        let by_block: ProvenBatch = p
            .raw_request(
                "proofbox_getProofByBlock".into(),
                (U256::from(b.last_block),),
            )
            .await
            .unwrap();
        assert_eq!(by_block.index, b.index);
    }
    assert_eq!(next, head + 1, "the proofs cover every block");
    batches
}

/// The state-transition jobs the appliance holds.
async fn appliance_jobs(addr: SocketAddr) -> Vec<Value> {
    common::tls();
    let list: Value = reqwest::Client::new()
        .get(format!("http://{addr}/v1/jobs?limit=1000"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    list["jobs"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_block_is_proven_once_and_the_proofs_are_published_in_order() {
    let app_dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let appliance = Appliance::start(app_dir.path(), addr).await;
    let node = Node::start(sequencer_config(None)).await;
    let handle = proving::start(&node.seq, proving_config(addr)).unwrap();

    // A follower of the proof stream from the first batch.
    let ws = node.ws(0).await;
    let mut sub = ws
        .subscribe::<_, ProvenBatch>(("proofs", json!({ "fromBatch": 0 })))
        .channel_size(1024)
        .await
        .unwrap();

    transfers(&node, 0, 30).await;
    let head = proven_to_head(&node, Duration::from_secs(120)).await;
    let batches = check_all(&node, head).await;
    for b in &batches {
        let got = tokio::time::timeout(Duration::from_secs(20), sub.recv())
            .await
            .expect("a proof in time")
            .unwrap();
        assert_eq!(&got, b, "the stream delivers each proof once, in order");
    }
    // One job per batch: nothing was proven twice.
    let jobs = appliance_jobs(addr).await;
    assert_eq!(jobs.len(), batches.len(), "{jobs:#?}");
    assert!(jobs.iter().all(|j| j["status"] == "succeeded"));
    let status: Value = node
        .http(0)
        .raw_request("proofbox_provingStatus".into(), ())
        .await
        .unwrap();
    assert_eq!(status["lagBlocks"], 0);
    assert_eq!(status["provenBatches"], batches.len() as u64);
    handle.stop();
    appliance.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_appliance_down_or_restarting_and_a_sequencer_restart_prove_each_batch_once() {
    let app_dir = tempfile::tempdir().unwrap();
    let seq_dir = tempfile::tempdir().unwrap();
    let addr = free_addr();

    // The appliance is not up yet: batches wait, nothing is lost.
    let node = Node::start(sequencer_config(Some(seq_dir.path().to_path_buf()))).await;
    let handle = proving::start(&node.seq, proving_config(addr)).unwrap();
    transfers(&node, 0, 10).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let status: Value = node
        .http(0)
        .raw_request("proofbox_provingStatus".into(), ())
        .await
        .unwrap();
    assert_eq!(status["provenBatches"], 0, "{status:#}");
    assert_eq!(status["appliances"][0]["reachable"], false, "{status:#}");
    assert!(!status["inFlight"].as_array().unwrap().is_empty());

    // It comes up: proving catches up.
    let appliance = Appliance::start(app_dir.path(), addr).await;
    proven_to_head(&node, Duration::from_secs(120)).await;

    // It restarts while batches are being proven.
    transfers(&node, 10, 10).await;
    appliance.stop().await;
    transfers(&node, 20, 10).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let appliance = Appliance::start(app_dir.path(), addr).await;

    // The sequencer stops abruptly (its proving tasks are dropped mid-flight), and
    // restarts from its data directory: the journal resumes every pending batch.
    transfers(&node, 30, 10).await;
    let before: Value = node
        .http(0)
        .raw_request("proofbox_provingStatus".into(), ())
        .await
        .unwrap();
    eprintln!("before the restart: {before:#}");
    drop(handle);
    drop(node);
    let node = Node::start(sequencer_config(Some(seq_dir.path().to_path_buf()))).await;
    let handle = proving::start(&node.seq, proving_config(addr)).unwrap();
    transfers(&node, 40, 10).await;
    let head = proven_to_head(&node, Duration::from_secs(180)).await;
    let batches = check_all(&node, head).await;

    // Each batch's attempt is one job; a restart resubmits with the same key and gets
    // the same job back.
    let jobs = appliance_jobs(addr).await;
    eprintln!("{} batches, {} jobs", batches.len(), jobs.len());
    assert_eq!(jobs.len(), batches.len(), "{jobs:#?}");
    assert!(jobs.iter().all(|j| j["status"] == "succeeded"), "{jobs:#?}");
    handle.stop();
    appliance.stop().await;
    let _ = dev_accounts(1);
}
