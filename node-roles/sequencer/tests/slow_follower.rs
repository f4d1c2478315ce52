//! A follower of the block stream that stops reading: its connection's buffer fills,
//! its subscription is dropped with a reason it sees once it reads again, the
//! sequencer goes on producing blocks meanwhile, and a new subscription from its next
//! block gives every block once, in order.
//!
//! The client is a raw WebSocket (tokio-tungstenite) over a socket with a small
//! receive buffer, so that not reading really stops the bytes; the blocks it is sent
//! carry large calldata, so that the kernel's buffers fill in a few blocks.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_network::TransactionBuilder;
use alloy_primitives::{Address, TxKind, U256};
use alloy_provider::Provider;
use alloy_rpc_types_eth::TransactionRequest;
use alloy_signer::SignerSync;
use common::{Node, fast_config, receipt};
use futures_util::{SinkExt, StreamExt};
use proofbox_chain_types::Block;
use proofbox_sequencer::rpc::subs::StreamBlock;
use proofbox_sequencer::{Config, dev_accounts};
use serde_json::{Value, json};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

type Ws = WebSocketStream<TcpStream>;

/// Calldata per transaction: 100 KB of zeros (about 1 M gas each under Prague's
/// calldata floor, so 29 to a 30 M gas block: about 6 MB of JSON per block).
const CALLDATA: usize = 100_000;

fn big_tx(from: u32, nonce: u64) -> Vec<u8> {
    let signer = dev_accounts(from + 1)[from as usize].signer();
    let t = TxEip1559 {
        chain_id: 31337,
        nonce,
        gas_limit: 1_100_000,
        max_fee_per_gas: 3_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: TxKind::Call(Address::repeat_byte(0x99)),
        input: vec![0u8; CALLDATA].into(),
        ..Default::default()
    };
    let sig = signer.sign_hash_sync(&t.signature_hash()).unwrap();
    TxEnvelope::from(t.into_signed(sig)).encoded_2718()
}

/// A WebSocket whose socket takes at most a few KB before the sender must wait.
async fn raw_ws(addr: SocketAddr) -> Ws {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    tokio_tungstenite::client_async(format!("ws://{addr}"), stream)
        .await
        .unwrap()
        .0
}

async fn recv_json(ws: &mut Ws, wait: Duration) -> Option<Value> {
    loop {
        let m = tokio::time::timeout(wait, ws.next()).await.ok()??.unwrap();
        match m {
            Message::Text(t) => return Some(serde_json::from_str(&t).unwrap()),
            Message::Close(_) => return None,
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_that_stops_reading_is_dropped_and_resumes_with_every_block_once() {
    let node = Node::start(Config {
        empty_blocks: true,
        ws_buffer: 2,
        subscriber_send_timeout: Duration::from_millis(300),
        ..fast_config()
    })
    .await;
    // About 20 MB of blocks: four senders, 29 transactions each.
    let senders = 4u32;
    let per_sender = 29u64;
    for nonce in 0..per_sender {
        for from in 0..senders {
            node.seq.submit(&big_tx(from, nonce)).unwrap();
        }
    }
    let mut head = node.seq.head();
    tokio::time::timeout(
        Duration::from_secs(60),
        head.wait_for(|_| {
            let core = node.seq.read();
            (0..senders)
                .all(|i| core.state.nonce(&dev_accounts(senders)[i as usize].address) == per_sender)
        }),
    )
    .await
    .expect("the large transactions are mined")
    .unwrap();

    // Subscribe from genesis, read the subscription id, then stop reading.
    let mut ws = raw_ws(node.addr).await;
    let req = json!({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe",
                     "params": ["blocks", {"fromBlock": 0}]});
    ws.send(Message::text(req.to_string())).await.unwrap();
    let answer = recv_json(&mut ws, Duration::from_secs(10)).await.unwrap();
    let sub = answer["result"].clone();
    assert!(!sub.is_null(), "{answer}");

    // Meanwhile the sequencer goes on: blocks at its interval, a transaction mined.
    let stalled_at = node.seq.read().chain.head();
    let started = Instant::now();
    let p = node.http(5);
    let h = *p
        .send_transaction(
            TransactionRequest::default()
                .with_to(Address::repeat_byte(0x31))
                .with_value(U256::from(7)),
        )
        .await
        .unwrap()
        .tx_hash();
    let mined = receipt(&p, h).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "a transaction is mined while a follower stalls: {:?}",
        started.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(1500).saturating_sub(started.elapsed())).await;
    let moved = node.seq.read().chain.head() - stalled_at;
    assert!(
        moved >= 20,
        "only {moved} blocks in 1.5 s while a follower stalls"
    );

    // Reading again: contiguous blocks from 0, then the reason it was dropped, then
    // nothing more for that subscription.
    let mut got: Vec<Block> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let reason = loop {
        assert!(
            Instant::now() < deadline,
            "never dropped: {} blocks read",
            got.len()
        );
        let v = recv_json(&mut ws, Duration::from_secs(10))
            .await
            .expect("a final notification, not silence");
        assert_eq!(v["method"], "eth_subscription", "{v}");
        assert_eq!(v["params"]["subscription"], sub);
        if let Some(e) = v["params"].get("error") {
            break e.to_string();
        }
        let b: StreamBlock = serde_json::from_value(v["params"]["result"].clone()).unwrap();
        got.push(b.into_block());
    };
    assert!(reason.contains("too slow"), "{reason}");
    assert!(
        recv_json(&mut ws, Duration::from_millis(300))
            .await
            .is_none(),
        "nothing after the drop"
    );
    let dropped_after = got.len() as u64;
    assert!(
        dropped_after < stalled_at,
        "dropped while behind: {dropped_after} blocks of {stalled_at}"
    );
    assert!(mined.block_number.unwrap() > stalled_at);

    // Resuming from the next block with alloy's WebSocket client, up to the head.
    let target = node.seq.read().chain.head();
    let follower = node.ws(0).await;
    let mut stream = follower
        .subscribe::<_, StreamBlock>(("blocks", json!({ "fromBlock": dropped_after })))
        // Room for the stored blocks that arrive at once (alloy's default is 16).
        .channel_size(4096)
        .await
        .unwrap();
    while got.last().unwrap().number() < target {
        let b = tokio::time::timeout(Duration::from_secs(20), stream.recv())
            .await
            .expect("blocks in time")
            .unwrap();
        got.push(b.into_block());
    }
    let numbers: Vec<u64> = got.iter().map(Block::number).collect();
    assert_eq!(
        numbers,
        (0..=target).collect::<Vec<_>>(),
        "every block once, in order"
    );
    let core = node.seq.read();
    for b in &got {
        assert_eq!(b, core.chain.block(b.number()).unwrap().as_ref());
    }
}
