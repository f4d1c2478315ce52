//! `proofbox node sequencer` killed with SIGKILL and restarted on its data directory
//! comes back with the same blocks, state root and height, and every transaction it
//! acknowledged, and goes on from there; `proofbox node full` killed the same way
//! resumes from its database and catches up.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alloy_network::{EthereumWallet, TransactionBuilder};
use alloy_primitives::{Address, B256, U256};
use alloy_provider::{Provider, ProviderBuilder};
use alloy_rpc_types_eth::{BlockNumberOrTag, TransactionRequest};
use proofbox_sequencer::dev_accounts;
use serde_json::Value;

mod common;
use common::{Proc, provider, spawn_node};

/// Starts the sequencer on port 0 (10 ms blocks) and returns it with the address it
/// printed.
fn start(dir: &Path) -> (Proc, SocketAddr) {
    start_with(dir, "10")
}

fn start_with(dir: &Path, block_time_ms: &str) -> (Proc, SocketAddr) {
    let dir = dir.to_str().unwrap();
    spawn_node(&[
        "node",
        "sequencer",
        "--listen",
        "127.0.0.1:0",
        "--block-time-ms",
        block_time_ms,
        "--data-dir",
        dir,
    ])
}

async fn status(p: &impl Provider) -> Value {
    p.raw_request("proofbox_status".into(), ()).await.unwrap()
}

async fn mined(p: &impl Provider, hash: B256) -> Option<(u64, B256)> {
    p.get_transaction_receipt(hash)
        .await
        .unwrap()
        .map(|r| (r.block_number.unwrap(), r.block_hash.unwrap()))
}

fn transfer(i: u64) -> TransactionRequest {
    TransactionRequest::default()
        .with_to(Address::repeat_byte(0x20 + (i % 5) as u8))
        .with_value(U256::from(1 + i))
        .with_nonce(i)
        .with_gas_limit(21_000)
        .with_max_fee_per_gas(3_000_000_000)
        .with_max_priority_fee_per_gas(1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_and_restart_loses_no_announced_block() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) = start(dir.path());
    let p = provider(addr);
    // Fire transactions without waiting, note those with receipts, then SIGKILL while
    // blocks are still being built.
    let mut hashes = Vec::new();
    for i in 0..40 {
        hashes.push(*p.send_transaction(transfer(i)).await.unwrap().tx_hash());
    }
    let mut seen = Vec::new();
    for h in &hashes {
        if let Some(at) = mined(&p, *h).await {
            seen.push((*h, at));
        }
    }
    let before = status(&p).await;
    child.0.kill().unwrap(); // SIGKILL
    child.0.wait().unwrap();
    assert!(
        !seen.is_empty(),
        "some transactions were mined before the kill"
    );

    let (mut child, addr) = start(dir.path());
    let p = provider(addr);
    let after = status(&p).await;
    // Everything announced before the kill is there, in the same block.
    for (h, at) in &seen {
        assert_eq!(mined(&p, *h).await.as_ref(), Some(at), "{h}");
    }
    let head = after["head"].as_u64().unwrap();
    assert!(head >= before["head"].as_u64().unwrap());
    // Every acknowledged transaction is mined: from the block log, or from the pool
    // journal after the restart.
    for h in &hashes {
        wait_mined(&p, *h).await;
    }
    // The restarted head's root is the root the block header carries.
    let block: Value = p
        .raw_request(
            "eth_getBlockByNumber".into(),
            (BlockNumberOrTag::Number(head), false),
        )
        .await
        .unwrap();
    assert_eq!(block["postStateRoot"], after["stateRoot"]);
    // The nonce goes on from the restored state.
    let nonce = p
        .get_transaction_count(dev_accounts(1)[0].address)
        .await
        .unwrap();
    assert_eq!(nonce, 40);
    let head = status(&p).await["head"].as_u64().unwrap();
    let h = *p.send_transaction(transfer(nonce)).await.unwrap().tx_hash();
    assert_eq!(wait_mined(&p, h).await.0, head + 1);

    // A second kill and restart after a quiet period: exactly the same state.
    let quiet = status(&p).await;
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let (mut child, addr) = start(dir.path());
    let p = provider(addr);
    assert_eq!(status(&p).await, quiet);
    child.0.kill().unwrap();
    child.0.wait().unwrap();
}

/// Polls until `hash` is in a block.
async fn wait_mined(p: &impl Provider, hash: B256) -> (u64, B256) {
    for _ in 0..2000 {
        if let Some(at) = mined(p, hash).await {
            return at;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("{hash} is not mined");
}

/// A provider signing with development account `i`.
fn sender(addr: SocketAddr, i: u32) -> impl Provider + Clone {
    common::tls();
    ProviderBuilder::new()
        .wallet(EthereumWallet::from(
            dev_accounts(i + 1)[i as usize].signer(),
        ))
        .connect_http(format!("http://{addr}").parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_acknowledged_pending_transaction() {
    let dir = tempfile::tempdir().unwrap();
    // Blocks a minute apart: what is sent is still pending at the kill.
    let (mut child, addr) = start_with(dir.path(), "60000");
    // Four senders submit back to back; the SIGKILL lands while some are in flight.
    let acked = Arc::new(Mutex::new(Vec::new()));
    let senders: Vec<_> = (0..4)
        .map(|i| {
            let acked = acked.clone();
            tokio::spawn(async move {
                let p = sender(addr, i);
                for n in 0.. {
                    match p.send_transaction(transfer(n)).await {
                        Ok(pending) => acked.lock().unwrap().push(*pending.tx_hash()),
                        Err(_) => return, // the sequencer is gone
                    }
                }
            })
        })
        .collect();
    while acked.lock().unwrap().len() < 40 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    child.0.kill().unwrap(); // SIGKILL
    child.0.wait().unwrap();
    for s in senders {
        s.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();

    // Restarted (blocks still a minute apart): no block, every one of them pending.
    let (mut child, addr) = start_with(dir.path(), "60000");
    let p = provider(addr);
    assert_eq!(head(&p).await, 0);
    for h in &acked {
        let tx = p.get_transaction_by_hash(*h).await.unwrap();
        assert_eq!(tx.map(|t| t.block_number), Some(None), "{h} is pending");
    }
    child.0.kill().unwrap();
    child.0.wait().unwrap();

    // Restarted with 10 ms blocks: every one of them is mined.
    let (mut child, addr) = start(dir.path());
    let p = provider(addr);
    for h in &acked {
        wait_mined(&p, *h).await;
    }
    child.0.kill().unwrap();
    child.0.wait().unwrap();
}

async fn head(p: &impl Provider) -> u64 {
    status(p).await["head"].as_u64().unwrap()
}

/// Waits until the full node's head is the sequencer's.
async fn caught_up(full: &impl Provider, seq: &impl Provider) {
    for _ in 0..3000 {
        if head(full).await == head(seq).await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the full node does not catch up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_node_killed_and_restarted_catches_up_to_the_same_root() {
    let seq_dir = tempfile::tempdir().unwrap();
    let full_dir = tempfile::tempdir().unwrap();
    let (mut seq, seq_addr) = start(seq_dir.path());
    let ws = format!("ws://{seq_addr}");
    let full_args = |dir: &Path| {
        vec![
            "node".to_string(),
            "full".into(),
            "--sequencer".into(),
            ws.clone(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--data-dir".into(),
            dir.to_str().unwrap().into(),
        ]
    };
    let args = full_args(full_dir.path());
    let (mut full, full_addr) = spawn_node(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let p = provider(seq_addr);
    for i in 0..20 {
        let _pending = p.send_transaction(transfer(i)).await.unwrap();
    }
    let f = provider(full_addr);
    while p
        .get_transaction_count(dev_accounts(1)[0].address)
        .await
        .unwrap()
        < 20
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    caught_up(&f, &p).await;
    // SIGKILL the full node while the sequencer goes on.
    full.0.kill().unwrap();
    full.0.wait().unwrap();
    for i in 20..30 {
        let _pending = p.send_transaction(transfer(i)).await.unwrap();
    }
    while p
        .get_transaction_count(dev_accounts(1)[0].address)
        .await
        .unwrap()
        < 30
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (mut full, full_addr) = spawn_node(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let f = provider(full_addr);
    caught_up(&f, &p).await;
    let (fs, ss) = (status(&f).await, status(&p).await);
    assert_eq!(fs["stateRoot"], ss["stateRoot"]);
    assert_eq!(fs["following"], true);
    assert_eq!(
        f.get_balance(Address::repeat_byte(0x21)).await.unwrap(),
        p.get_balance(Address::repeat_byte(0x21)).await.unwrap()
    );
    full.0.kill().unwrap();
    full.0.wait().unwrap();
    seq.0.kill().unwrap();
    seq.0.wait().unwrap();
}
