//! Proving exactly once across `kill -9`: `proofbox serve` (CPU) and
//! `proofbox node sequencer --appliance ...` as real processes. The sequencer is
//! killed with SIGKILL while batches are being proven and restarted on its data
//! directory; the appliance is killed and restarted too. Afterwards every block is
//! covered by exactly one published proof, each proof verifies and states its
//! blocks' roots and net diff, and the appliance holds exactly one job per batch.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use alloy_network::TransactionBuilder;
use alloy_primitives::{Address, U256};
use alloy_provider::{Provider, ProviderBuilder, WsConnect};
use alloy_rpc_types_eth::TransactionRequest;
use proofbox_chain_types::{Block, ProvenBatch, net_diff};
use proofbox_circuits::transition::TransitionStatement;
use proofbox_sequencer::dev_accounts;
use proofbox_sequencer::rpc::subs::StreamBlock;
use proofbox_verifier::{TransitionProof, Verifier};
use serde_json::{Value, json};

mod common;
use common::{Proc, appliance, free_port, provider};

const KEY: &str = "proving-kill-test-key-0123456789";

/// The sequencer proving on the appliance at `port`; returns it and its address.
fn sequencer(dir: &Path, port: u16) -> (Proc, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_proofbox"))
        .args([
            "node",
            "sequencer",
            "--listen",
            "127.0.0.1:0",
            "--block-time-ms",
            "10",
        ])
        .args(["--batch-blocks", "3", "--batch-interval-ms", "200"])
        .args(["--appliance", &format!("http://127.0.0.1:{port}")])
        .args(["--api-key", KEY, "--data-dir"])
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
    std::thread::spawn(move || for _ in lines {});
    (Proc(child), addr)
}

/// Sends transfers with nonces `from..to` without waiting for receipts.
async fn send(p: &impl Provider, from: u64, to: u64) {
    for i in from..to {
        let req = TransactionRequest::default()
            .with_to(Address::repeat_byte(0x40 + (i % 5) as u8))
            .with_value(U256::from(1 + i))
            .with_nonce(i)
            .with_gas_limit(21_000)
            .with_max_fee_per_gas(3_000_000_000)
            .with_max_priority_fee_per_gas(1);
        let _ = p.send_transaction(req).await.unwrap();
        if i % 4 == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn status(p: &impl Provider) -> Value {
    p.raw_request("proofbox_provingStatus".into(), ())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_sequencer_and_appliance_proves_every_block_exactly_once() {
    let seq_dir = tempfile::tempdir().unwrap();
    let app_dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let app = appliance(app_dir.path(), port, KEY);
    let (seq, addr) = sequencer(seq_dir.path(), port);
    let p = provider(addr);

    // Transactions, then SIGKILL while proving is under way.
    send(&p, 0, 24).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while status(&p).await["provenBatches"].as_u64().unwrap() == 0 {
        assert!(
            Instant::now() < deadline,
            "no proof: {:#}",
            status(&p).await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    send(&p, 24, 36).await;
    drop(seq); // SIGKILL

    // The appliance is killed too, and both come back.
    drop(app);
    let _app = appliance(app_dir.path(), port, KEY);
    let (_seq, addr) = sequencer(seq_dir.path(), port);
    let p = provider(addr);
    let nonce = p
        .get_transaction_count(dev_accounts(1)[0].address)
        .await
        .unwrap();
    send(&p, nonce, nonce + 12).await;
    while p
        .get_transaction_count(dev_accounts(1)[0].address)
        .await
        .unwrap()
        < nonce + 12
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Proving catches up with the head.
    let deadline = Instant::now() + Duration::from_secs(180);
    let head = loop {
        let head = p.get_block_number().await.unwrap();
        let s = status(&p).await;
        if s["provenBlock"].as_u64() == Some(head) {
            break head;
        }
        assert!(
            Instant::now() < deadline,
            "proving does not catch up: {s:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    // Every block, from the stream, to check the proofs against.
    let ws = ProviderBuilder::new()
        .connect_ws(WsConnect::new(format!("ws://{addr}")))
        .await
        .unwrap();
    let mut sub = ws
        .subscribe::<_, StreamBlock>(("blocks", json!({ "fromBlock": 0 })))
        // Room for the stored blocks that arrive at once (alloy's default is 16).
        .channel_size(4096)
        .await
        .unwrap();
    let mut blocks: Vec<Block> = Vec::new();
    while blocks.len() as u64 <= head {
        let b = tokio::time::timeout(Duration::from_secs(20), sub.recv())
            .await
            .unwrap()
            .unwrap();
        blocks.push(b.into_block());
    }

    let mut next = 1u64;
    let mut batches = 0u64;
    loop {
        let b: Option<ProvenBatch> = p
            .raw_request("proofbox_getProof".into(), (U256::from(batches),))
            .await
            .unwrap();
        let Some(b) = b else { break };
        assert_eq!(
            b.first_block, next,
            "batch {} follows the one before",
            b.index
        );
        let range = &blocks[b.first_block as usize..=b.last_block as usize];
        let net = net_diff(range.iter().map(|x| &x.diff)).unwrap();
        let expected = TransitionStatement {
            pre_root: blocks[b.first_block as usize - 1]
                .header
                .post_state_root
                .to_digest(),
            post_root: blocks[b.last_block as usize]
                .header
                .post_state_root
                .to_digest(),
            diff_commitment: net.commitment(),
            block_number: b.last_block,
        };
        Verifier::default()
            .verify_transition_chunks(&TransitionProof::from_bytes(&b.bundle).unwrap(), &expected)
            .unwrap_or_else(|e| panic!("batch {}: {e}", b.index));
        next = b.last_block + 1;
        batches += 1;
    }
    assert_eq!(next, head + 1, "the proofs cover every block");

    // One job per batch on the appliance: nothing was proven twice.
    let jobs: Value = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/v1/jobs?limit=1000"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jobs = jobs["jobs"].as_array().unwrap();
    assert_eq!(jobs.len() as u64, batches, "{jobs:#?}");
    assert!(jobs.iter().all(|j| j["status"] == "succeeded"), "{jobs:#?}");
}
