//! `proofbox node replica` as a process following `proofbox node sequencer` (no
//! proving): its latest head reaches the sequencer's and its state agrees; killed
//! with SIGKILL it restarts from its data directory (the genesis snapshot) and
//! catches up; SIGINT stops it with exit status 0.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use alloy_network::TransactionBuilder;
use alloy_primitives::{Address, U256};
use alloy_provider::Provider;
use alloy_rpc_types_eth::TransactionRequest;
use proofbox_sequencer::dev_accounts;
use serde_json::Value;

mod common;
use common::{Proc, provider, spawn_node};

fn replica(seq: SocketAddr, dir: &Path) -> (Proc, SocketAddr) {
    spawn_node(&[
        "node",
        "replica",
        "--sequencer",
        &format!("ws://{seq}"),
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        dir.to_str().unwrap(),
    ])
}

async fn status(p: &impl Provider, method: &str) -> Value {
    p.raw_request(method.to_string().into(), ()).await.unwrap()
}

/// Sends transfers with nonces `from..to` and waits until the sequencer mined them.
async fn transfers(seq: &impl Provider, from: u64, to: u64) {
    for i in from..to {
        let req = TransactionRequest::default()
            .with_to(Address::repeat_byte(0x40 + (i % 5) as u8))
            .with_value(U256::from(1 + i))
            .with_nonce(i)
            .with_gas_limit(21_000)
            .with_max_fee_per_gas(3_000_000_000)
            .with_max_priority_fee_per_gas(1);
        let _pending = seq.send_transaction(req).await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while seq
        .get_transaction_count(dev_accounts(1)[0].address)
        .await
        .unwrap()
        < to
    {
        assert!(Instant::now() < deadline, "the sequencer does not mine");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until the replica's latest head is the sequencer's; returns its status.
async fn caught_up(rep: &impl Provider, seq: &impl Provider) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let head = status(seq, "proofbox_status").await["head"].as_u64();
        let s = status(rep, "proofbox_replicaStatus").await;
        if s["latest"].as_u64() == head {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "the replica does not catch up: {s:#}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn same_state(rep: &impl Provider, seq: &impl Provider) {
    let mut addresses = vec![dev_accounts(1)[0].address];
    addresses.extend((0..5).map(|i| Address::repeat_byte(0x40 + i)));
    for a in addresses {
        assert_eq!(
            rep.get_balance(a).await.unwrap(),
            seq.get_balance(a).await.unwrap(),
            "{a}"
        );
        assert_eq!(
            rep.get_transaction_count(a).await.unwrap(),
            seq.get_transaction_count(a).await.unwrap(),
            "{a}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_replica_follows_restarts_after_kill_9_and_exits_cleanly() {
    let seq_dir = tempfile::tempdir().unwrap();
    let rep_dir = tempfile::tempdir().unwrap();
    let (_seq, seq_addr) = spawn_node(&[
        "node",
        "sequencer",
        "--listen",
        "127.0.0.1:0",
        "--block-time-ms",
        "10",
        "--data-dir",
        seq_dir.path().to_str().unwrap(),
    ]);
    let seq = provider(seq_addr);
    let (mut rep_proc, rep_addr) = replica(seq_addr, rep_dir.path());
    let rep = provider(rep_addr);

    transfers(&seq, 0, 10).await;
    let s = caught_up(&rep, &seq).await;
    assert_eq!(s["role"], "replica");
    assert_eq!(s["following"], true, "{s:#}");
    assert_eq!(s["refused"], serde_json::json!([]));
    // No proofs without an appliance: the proven head is the genesis.
    assert_eq!(s["proven"], 0, "{s:#}");
    same_state(&rep, &seq).await;

    // SIGKILL; the sequencer goes on; the replica restarts from its snapshot.
    rep_proc.0.kill().unwrap();
    rep_proc.0.wait().unwrap();
    transfers(&seq, 10, 20).await;
    let (mut rep_proc, rep_addr) = replica(seq_addr, rep_dir.path());
    let rep = provider(rep_addr);
    caught_up(&rep, &seq).await;
    same_state(&rep, &seq).await;

    // SIGINT: a clean exit.
    let pid = rep_proc.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = rep_proc.0.try_wait().unwrap() {
            assert!(status.success(), "the replica exits cleanly: {status}");
            break;
        }
        assert!(Instant::now() < deadline, "the replica does not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
}
