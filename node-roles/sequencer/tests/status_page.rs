//! The sequencer's status page on its JSON-RPC port: `GET /status.json` and `GET /`
//! follow the head as transactions come (over JSON-RPC on the same port, HTTP and
//! WebSocket), and show throughput.

mod common;

use std::time::{Duration, Instant};

use alloy_network::TransactionBuilder;
use alloy_primitives::{Address, U256};
use alloy_provider::Provider;
use alloy_rpc_types_eth::TransactionRequest;
use common::{Node, receipt};
use serde_json::{Value, json};

async fn page_status(http: &reqwest::Client, node: &Node) -> Value {
    let r = http
        .get(format!("{}/status.json", node.http_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_follows_the_head_beside_json_rpc() {
    common::tls();
    let node = Node::fast().await;
    let http = reqwest::Client::new();
    let s = page_status(&http, &node).await;
    assert_eq!(s["role"], "sequencer", "{s}");
    assert_eq!(s["latest"], 0, "blocks only with transactions: {s}");
    assert_eq!(s["proven"], Value::Null, "{s}");
    assert_eq!(s["proving"], "off (no appliance)", "{s}");
    assert_eq!(s["inFlight"], 0, "{s}");
    assert_eq!(s["lies"], json!([]), "{s}");
    // The page's first sample (at block 0) is taken before the transfers come.
    let deadline = Instant::now() + Duration::from_secs(10);
    while page_status(&http, &node).await["history"]
        .as_array()
        .unwrap()
        .is_empty()
    {
        assert!(Instant::now() < deadline, "no sample taken");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Transfers over JSON-RPC (HTTP POST on the same port), then a WebSocket client.
    let p = node.http(0);
    for i in 0..3u64 {
        let req = TransactionRequest::default()
            .with_to(Address::repeat_byte(0x44))
            .with_value(U256::from(1 + i))
            .with_nonce(i)
            .with_gas_limit(21_000)
            .with_max_fee_per_gas(3_000_000_000)
            .with_max_priority_fee_per_gas(1);
        let hash = *p.send_transaction(req).await.unwrap().tx_hash();
        receipt(&p, hash).await;
    }
    let ws = node.ws(1).await;
    let head = ws.get_block_number().await.unwrap();
    assert!(head >= 1, "{head}");
    let s = page_status(&http, &node).await;
    assert_eq!(s["latest"], head, "{s}");
    assert_eq!(s["lagBlocks"], head, "nothing is proven: {s}");
    assert_eq!(
        s["stateRoot"],
        node.seq.read().state.root().hex(),
        "the head's root: {s}"
    );

    // Throughput, from the samples taken once a second.
    let deadline = Instant::now() + Duration::from_secs(10);
    let s = loop {
        let s = page_status(&http, &node).await;
        if s["txPerSec"].as_f64().is_some_and(|r| r > 0.0) {
            break s;
        }
        assert!(Instant::now() < deadline, "no throughput: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(s["blocksPerSec"].as_f64().unwrap() > 0.0, "{s}");
    assert!(!s["history"].as_array().unwrap().is_empty(), "{s}");

    let r = http.get(node.http_url()).send().await.unwrap();
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
    );
    let html = r.text().await.unwrap();
    assert!(html.contains("<title>ProofBox sequencer</title>"), "{html}");
    assert!(
        html.contains(&format!("data-key=\"latest\">{head}</td>")),
        "{html}"
    );
    assert!(html.contains("pb.poll("), "the page polls: {html}");
}

/// An appliance that lies: it forwards every request to a real appliance
/// (`target`) and hands back every proof cut short.
async fn lying_appliance(target: String) -> String {
    async fn forward(
        axum::extract::State(target): axum::extract::State<String>,
        req: axum::extract::Request,
    ) -> axum::response::Response {
        let (parts, body) = req.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let mut r = reqwest::Client::new()
            .request(parts.method.clone(), format!("{target}{path}"))
            .body(body);
        for (k, v) in &parts.headers {
            if k != http::header::HOST && k != http::header::CONTENT_LENGTH {
                r = r.header(k, v);
            }
        }
        let resp = r.send().await.unwrap();
        let status = resp.status();
        let content_type = resp.headers().get(http::header::CONTENT_TYPE).cloned();
        let mut bytes = resp.bytes().await.unwrap().to_vec();
        if status.is_success() && parts.uri.path().ends_with("/proof") {
            bytes.truncate(bytes.len() / 2);
        }
        let mut out = axum::response::Response::new(axum::body::Body::from(bytes));
        *out.status_mut() = status;
        if let Some(t) = content_type {
            out.headers_mut().insert(http::header::CONTENT_TYPE, t);
        }
        out
    }
    let app = axum::Router::new().fallback(forward).with_state(target);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// A proof an appliance delivered that does not verify is a lie the sequencer's page
/// lists (as `proofbox_provingStatus` does); the batch is proven on the honest
/// appliance, and the page's proven head reaches the head. Run in release.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proof_that_does_not_verify_is_a_lie_on_the_page() {
    common::tls();
    let app_dir = tempfile::tempdir().unwrap();
    let appliance = proofbox_service::start(proofbox_service::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: app_dir.path().to_path_buf(),
        allow_keyless_on_loopback: true,
        devices: vec!["cpu:0".into()],
        ..proofbox_service::Config::default()
    })
    .await
    .unwrap();
    let honest = format!("http://{}", appliance.addr());
    let liar = lying_appliance(honest.clone()).await;
    let node = Node::fast().await;
    // Batch 0 goes to the first appliance: the liar.
    let proving = proofbox_sequencer::proving::start(
        &node.seq,
        proofbox_sequencer::proving::ProvingConfig {
            appliances: vec![liar.clone(), honest],
            batch_blocks: 100,
            batch_interval: Duration::from_millis(200),
            poll_interval: Duration::from_millis(50),
            ..Default::default()
        },
    )
    .unwrap();
    let http = reqwest::Client::new();
    let s = page_status(&http, &node).await;
    assert_eq!(s["proving"], "on", "{s}");
    assert_eq!(s["lies"], json!([]), "{s}");

    let p = node.http(0);
    let req = TransactionRequest::default()
        .with_to(Address::repeat_byte(0x45))
        .with_value(U256::from(7))
        .with_nonce(0)
        .with_gas_limit(21_000)
        .with_max_fee_per_gas(3_000_000_000)
        .with_max_priority_fee_per_gas(1);
    let hash = *p.send_transaction(req).await.unwrap().tx_hash();
    receipt(&p, hash).await;
    let head = p.get_block_number().await.unwrap();

    let deadline = Instant::now() + Duration::from_secs(120);
    let s = loop {
        let s = page_status(&http, &node).await;
        if s["proven"] == head {
            break s;
        }
        assert!(Instant::now() < deadline, "not proven: {s:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let lies = s["lies"].as_array().unwrap();
    assert_eq!(lies.len(), 1, "{s:#}");
    let lie = lies[0].as_str().unwrap();
    assert!(
        lie.starts_with("batch 0: ") && lie.contains(&liar) && lie.contains("does not verify"),
        "{lie}"
    );
    assert_eq!(s["lagBlocks"], 0, "{s:#}");
    let status: Value = p
        .raw_request("proofbox_provingStatus".into(), ())
        .await
        .unwrap();
    assert_eq!(status["lies"], s["lies"], "{status:#}");
    let html = http
        .get(node.http_url())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("<li class=\"lie\">batch 0: "), "{html}");
    assert!(
        html.contains(&format!("data-key=\"proven\">{head}</td>")),
        "{html}"
    );
    proving.stop();
    appliance.shutdown().await.unwrap();
}
