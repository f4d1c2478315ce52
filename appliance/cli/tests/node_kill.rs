//! `proofbox node sequencer` killed with SIGKILL and restarted on its data directory
//! comes back with the same blocks, state root and height, and goes on from there.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use alloy_network::{EthereumWallet, TransactionBuilder};
use alloy_primitives::{Address, B256, U256};
use alloy_provider::{Provider, ProviderBuilder};
use alloy_rpc_types_eth::{BlockNumberOrTag, TransactionRequest};
use proofbox_sequencer::dev_accounts;
use serde_json::Value;

/// Starts the sequencer on port 0 and returns it with the address it printed.
fn start(dir: &Path) -> (Child, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_proofbox"))
        .args([
            "node",
            "sequencer",
            "--listen",
            "127.0.0.1:0",
            "--block-time-ms",
            "10",
        ])
        .arg("--data-dir")
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("the sequencer prints its address")
            .unwrap();
        if let Some(rest) = line.strip_prefix("listening on ") {
            break rest.split_whitespace().next().unwrap().parse().unwrap();
        }
    };
    // Keep draining stdout so the child never blocks on it.
    std::thread::spawn(move || for _ in lines {});
    (child, addr)
}

fn provider(addr: SocketAddr) -> impl Provider + Clone {
    // reqwest is built without a default TLS provider in this workspace.
    let _ = rustls::crypto::ring::default_provider().install_default();
    ProviderBuilder::new()
        .wallet(EthereumWallet::from(dev_accounts(1)[0].signer()))
        .connect_http(format!("http://{addr}").parse().unwrap())
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
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
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
    // The restarted head's root is the root the block header carries.
    let block: Value = p
        .raw_request(
            "eth_getBlockByNumber".into(),
            (BlockNumberOrTag::Number(head), false),
        )
        .await
        .unwrap();
    assert_eq!(block["postStateRoot"], after["stateRoot"]);
    // Transactions sent but not in a logged block are gone with the pool; the nonce
    // goes on from the restored state.
    let nonce = p
        .get_transaction_count(dev_accounts(1)[0].address)
        .await
        .unwrap();
    let h = *p.send_transaction(transfer(nonce)).await.unwrap().tx_hash();
    let mut at = None;
    for _ in 0..1000 {
        at = mined(&p, h).await;
        if at.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(at.unwrap().0, head + 1);

    // A second kill and restart after a quiet period: exactly the same state.
    let quiet = status(&p).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let (mut child, addr) = start(dir.path());
    let p = provider(addr);
    assert_eq!(status(&p).await, quiet);
    child.kill().unwrap();
    child.wait().unwrap();
}
