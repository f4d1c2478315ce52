//! Subscriptions over WebSocket with alloy's provider: the resumable block stream
//! across cut connections, newHeads and stateChanges; malformed requests and batches
//! over plain HTTP.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use alloy_network::TransactionBuilder;
use alloy_primitives::{Address, U256};
use alloy_provider::Provider;
use alloy_rpc_types_eth::TransactionRequest;
use common::{Node, receipt};
use proofbox_chain_types::Block;
use proofbox_sequencer::rpc::subs::StreamBlock;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn next<T: serde::de::DeserializeOwned>(s: &mut alloy_pubsub::Subscription<T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), s.recv())
        .await
        .expect("a notification in time")
        .expect("the subscription is open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_block_stream_resumes_after_cut_connections_with_every_block_once() {
    let node = Node::fast().await;
    let sender = node.http(0);
    // Transfers in the background, one block each (each waits for its receipt).
    let traffic = tokio::spawn(async move {
        for i in 0..24u64 {
            let req = TransactionRequest::default()
                .with_to(Address::repeat_byte(0x10 + (i % 4) as u8))
                .with_value(U256::from(i + 1));
            let h = *sender.send_transaction(req).await.unwrap().tx_hash();
            receipt(&sender, h).await;
        }
    });
    let mut got: Vec<Block> = Vec::new();
    // Four connections, each cut after a few blocks; each resumes from the next one.
    for round in 0..4 {
        let ws = node.ws(0).await;
        let from = got.last().map_or(0, |b| b.number() + 1);
        let mut sub = ws
            .subscribe::<_, StreamBlock>(("blocks", json!({ "fromBlock": from })))
            .await
            .unwrap();
        for _ in 0..(3 + round) {
            got.push(next(&mut sub).await.into_block());
        }
        drop(sub);
        drop(ws);
    }
    traffic.await.unwrap();
    let head = node.seq.read().chain.head();
    let ws = node.ws(0).await;
    let from = got.last().unwrap().number() + 1;
    let mut sub = ws
        .subscribe::<_, StreamBlock>(("blocks", json!({ "fromBlock": from })))
        .await
        .unwrap();
    while got.last().unwrap().number() < head {
        got.push(next(&mut sub).await.into_block());
    }
    let numbers: Vec<u64> = got.iter().map(Block::number).collect();
    assert_eq!(
        numbers,
        (0..=head).collect::<Vec<_>>(),
        "every block once, in order"
    );
    let core = node.seq.read();
    for b in &got {
        let stored = core.chain.block(b.number()).unwrap();
        assert_eq!(b, stored.as_ref());
        b.check_body().unwrap();
    }
    let txs: usize = got.iter().map(|b| b.transactions.len()).sum();
    assert_eq!(txs, 24);
    // Genesis carries the allocation.
    assert_eq!(got[0].diff.accounts().len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_heads_and_state_changes_follow_each_block() {
    let node = Node::fast().await;
    let ws = node.ws(0).await;
    let to = Address::repeat_byte(0x77);
    let mut heads = ws.subscribe_blocks().await.unwrap();
    let mut changes = ws
        .subscribe::<_, Value>(("stateChanges", vec![to]))
        .await
        .unwrap();
    let req = TransactionRequest::default()
        .with_to(to)
        .with_value(U256::from(99));
    let h = *ws.send_transaction(req).await.unwrap().tx_hash();
    let r = receipt(&ws, h).await;
    let head = next(&mut heads).await;
    assert_eq!(head.number, r.block_number.unwrap());
    assert_eq!(head.hash, r.block_hash.unwrap());
    let change = next(&mut changes).await;
    assert_eq!(change["address"], json!(to));
    assert_eq!(change["balance"], json!("0x63"));
    assert_eq!(change["blockNumber"], json!(format!("{:#x}", head.number)));
}

/// POSTs `body` and returns the response body.
async fn post(node: &Node, body: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(node.addr).await.unwrap();
    let req = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut out))
        .await
        .expect("an answer, not a hang")
        .unwrap();
    out.split("\r\n\r\n").nth(1).unwrap_or_default().to_string()
}

fn code(v: &Value) -> i64 {
    v["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("no error in {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_json_rpc_errors_and_batches_are_answered() {
    let node = Node::fast().await;
    let call = |method: &str, params: Value| {
        json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string()
    };
    let cases: Vec<(String, i64)> = vec![
        ("{not json".into(), -32700),
        ("[]".into(), -32600),
        (call("no_such_method", json!([])), -32601),
        (call("eth_getBalance", json!(["0xzz"])), -32602),
        (call("eth_getBalance", json!([1, 2, 3, 4])), -32602),
        (call("eth_sendRawTransaction", json!(["0x"])), -32000),
        (call("eth_sendRawTransaction", json!(["0x02c0"])), -32000),
        (call("eth_sendRawTransaction", json!(["nothex"])), -32602),
        (call("eth_getLogs", json!([{"fromBlock": "zz"}])), -32602),
        (call("eth_call", json!([{"to": "0x01"}])), -32602),
        (
            call("eth_feeHistory", json!(["0x1", "latest", "x"])),
            -32602,
        ),
        (
            call(
                "eth_getBalance",
                json!(["0x0000000000000000000000000000000000000001", "0x99"]),
            ),
            -32000,
        ),
    ];
    for (body, expected) in cases {
        let out = post(&node, &body).await;
        let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{body}: {e}: {out}"));
        let v = if v.is_array() { v[0].clone() } else { v };
        assert_eq!(code(&v), expected, "{body} -> {v}");
    }
    // A batch: answered by an array, ids matching, a bad member answered on its own.
    let batch = json!([
        {"jsonrpc": "2.0", "id": 7, "method": "eth_chainId", "params": []},
        {"jsonrpc": "2.0", "id": 8, "method": "eth_blockNumber", "params": []},
        {"jsonrpc": "2.0", "id": 9, "method": "eth_getCode", "params": ["bad"]},
        {"jsonrpc": "2.0", "id": 10, "method": "net_version", "params": []},
    ]);
    let v: Value = serde_json::from_str(&post(&node, &batch.to_string()).await).unwrap();
    let by_id: BTreeMap<i64, Value> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_i64().unwrap(), r.clone()))
        .collect();
    assert_eq!(by_id.len(), 4);
    assert_eq!(by_id[&7]["result"], json!("0x7a69"));
    assert_eq!(by_id[&10]["result"], json!("31337"));
    assert_eq!(code(&by_id[&9]), -32602);
    // Unknown blocks and transactions are null, not errors.
    let v: Value = serde_json::from_str(
        &post(
            &node,
            &call("eth_getBlockByNumber", json!(["0xffff", false])),
        )
        .await,
    )
    .unwrap();
    assert_eq!(v["result"], Value::Null);
    // A trailing block tag may be left out (it means `latest`), as clients do; a
    // missing required parameter is still refused.
    let funded = format!("{:#x}", node.seq.config().alloc()[0].0);
    let balance = |params: Value| {
        let body = call("eth_getBalance", params);
        let node = &node;
        async move { serde_json::from_str::<Value>(&post(node, &body).await).unwrap() }
    };
    let tagged = balance(json!([funded, "latest"])).await;
    let untagged = balance(json!([funded])).await;
    assert!(tagged["result"].is_string(), "{tagged}");
    assert_eq!(untagged["result"], tagged["result"], "{untagged}");
    assert_eq!(code(&balance(json!([])).await), -32602);
    let body = call("eth_getStorageAt", json!([funded, "0x0"]));
    let v: Value = serde_json::from_str(&post(&node, &body).await).unwrap();
    assert!(v["result"].is_string(), "{v}");
    // Still serving.
    let p = node.http(0);
    assert_eq!(p.get_chain_id().await.unwrap(), 31337);
    assert_eq!(
        p.get_client_version().await.unwrap(),
        "proofbox-sequencer/0.1.0"
    );
}
