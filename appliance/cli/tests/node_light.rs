//! `proofbox node light` as a process, checking a real replica's answers: an
//! appliance (`proofbox serve`, CPU), a sequencer proving on it, a replica, and the
//! light client asking the replica for Merkle proofs through a relay that can lie. The
//! light client answers what the proven state says; when the replica's answers are
//! altered (a wrong balance, another account's Merkle proof) it reports the lie,
//! answers an error that says so, and never passes the lie on.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use alloy_network::TransactionBuilder;
use alloy_primitives::{Address, U256};
use alloy_provider::{Provider, ProviderBuilder};
use alloy_rpc_types_eth::TransactionRequest;
use proofbox_sequencer::dev_accounts;
use serde_json::{Value, json};

mod common;
use common::{appliance, free_port, provider, spawn_node, tls};

const KEY: &str = "light-process-test-key-0123456789";
const HONEST: u8 = 0;
const WRONG_BALANCE: u8 = 1;
const FORGED_PROOF: u8 = 2;

/// A JSON-RPC relay to `upstream` (HTTP) that alters `eth_getProof` answers as `mode`
/// says: the balance raised by one, or the account's Merkle proof swapped for another
/// account's (valid, but not this account's).
async fn lying_relay(upstream: String, mode: Arc<AtomicU8>) -> SocketAddr {
    let client = reqwest::Client::new();
    let relay = move |body: axum::body::Bytes| {
        let (client, upstream, mode) = (client.clone(), upstream.clone(), mode.clone());
        async move {
            let forward = |body: Value| {
                let (client, upstream) = (client.clone(), upstream.clone());
                async move {
                    client
                        .post(&upstream)
                        .json(&body)
                        .send()
                        .await
                        .unwrap()
                        .json::<Value>()
                        .await
                        .unwrap()
                }
            };
            let request: Value = serde_json::from_slice(&body).unwrap();
            let mut answer = forward(request.clone()).await;
            if request["method"] == "eth_getProof" && answer["result"].is_object() {
                let result = &mut answer["result"];
                match mode.load(Ordering::SeqCst) {
                    WRONG_BALANCE => {
                        let balance: U256 = result["balance"].as_str().unwrap().parse().unwrap();
                        result["balance"] = json!(format!("{:#x}", balance + U256::from(1)));
                    }
                    FORGED_PROOF => {
                        let mut other = request.clone();
                        other["params"][0] = json!(dev_accounts(3)[2].address);
                        let other = forward(other).await;
                        result["accountProof"] = other["result"]["accountProof"].clone();
                    }
                    _ => {}
                }
            }
            axum::Json(answer)
        }
    };
    let app = axum::Router::new().route("/", axum::routing::post(relay));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_light_client_process_catches_a_replica_that_lies() {
    tls();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _app = appliance(&dir.path().join("appliance"), port, KEY);
    let seq_dir = dir.path().join("sequencer");
    let (_seq, seq_addr, printed) = common::spawn_node_printing(&[
        "node",
        "sequencer",
        "--listen",
        "127.0.0.1:0",
        "--block-time-ms",
        "10",
        "--batch-blocks",
        "3",
        "--batch-interval-ms",
        "200",
        "--appliance",
        &format!("http://127.0.0.1:{port}"),
        "--api-key",
        KEY,
        "--data-dir",
        seq_dir.to_str().unwrap(),
    ]);
    // The checkpoint: the genesis root the sequencer prints at its first start.
    let genesis = printed
        .iter()
        .find_map(|l| l.split_once("head 0, state root ").map(|(_, r)| r.trim()))
        .unwrap_or_else(|| panic!("the sequencer prints its genesis root: {printed:?}"))
        .to_string();
    let (_replica, replica_addr) = spawn_node(&[
        "node",
        "replica",
        "--sequencer",
        &format!("ws://{seq_addr}"),
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        dir.path().join("replica").to_str().unwrap(),
    ]);
    let mode = Arc::new(AtomicU8::new(HONEST));
    let relay = lying_relay(format!("http://{replica_addr}"), mode.clone()).await;
    let (_light, light_addr) = spawn_node(&[
        "node",
        "light",
        "--checkpoint",
        &format!("0:{genesis}"),
        "--proofs",
        &format!("ws://{seq_addr}"),
        "--node",
        &format!("http://{relay}"),
        "--listen",
        "127.0.0.1:0",
    ]);

    // Transfers, then quiet until the light client has proven them.
    let seq = provider(seq_addr);
    let to = Address::repeat_byte(0x5a);
    for i in 0..9u64 {
        let req = TransactionRequest::default()
            .with_to(to)
            .with_value(U256::from(100 + i))
            .with_nonce(i)
            .with_gas_limit(21_000)
            .with_max_fee_per_gas(3_000_000_000)
            .with_max_priority_fee_per_gas(1);
        let _ = seq.send_transaction(req).await.unwrap();
    }
    let expected = U256::from((0..9u64).map(|i| 100 + i).sum::<u64>());
    let light =
        ProviderBuilder::new().connect_http(format!("http://{light_addr}").parse().unwrap());
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        // Until the proven state has every transfer (answers in between may be "retry
        // later" while the replica and the light client are at different proven heads).
        if light.get_balance(to).await.ok() == Some(expected) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the light client never proves the transfers"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let sender = dev_accounts(1)[0].address;
    assert_eq!(
        light.get_balance(sender).await.unwrap(),
        seq.get_balance(sender).await.unwrap()
    );
    assert_eq!(light.get_transaction_count(sender).await.unwrap(), 9);
    let status: Value = light
        .raw_request("proofbox_lightStatus".into(), ())
        .await
        .unwrap();
    assert!(status["lies"].as_array().unwrap().is_empty(), "{status}");

    // The replica's answers altered: each lie is caught, reported, never passed on.
    for (m, what) in [
        (WRONG_BALANCE, "a wrong balance"),
        (FORGED_PROOF, "another account's proof"),
    ] {
        mode.store(m, Ordering::SeqCst);
        let err = light.get_balance(to).await.unwrap_err().to_string();
        assert!(err.contains("the node lied"), "{what}: {err}");
    }
    let status: Value = light
        .raw_request("proofbox_lightStatus".into(), ())
        .await
        .unwrap();
    let lies = status["lies"].as_array().unwrap();
    assert_eq!(lies.len(), 2, "{status}");
    // Honest again: answered again.
    mode.store(HONEST, Ordering::SeqCst);
    assert_eq!(light.get_balance(to).await.unwrap(), expected);
}
