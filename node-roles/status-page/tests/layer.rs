//! The layer on a real jsonrpsee server: `GET /` and `GET /status.json` answer the
//! page and the status, while JSON-RPC over HTTP POST and over a WebSocket on the
//! same port answer as before, and other GETs reach the server.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::{SinkExt, StreamExt};
use jsonrpsee::RpcModule;
use jsonrpsee::server::Server;
use proofbox_status_page::{Figure, Reading, Role, StatusPage};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

struct Counter(Arc<AtomicU64>);

impl Role for Counter {
    fn name(&self) -> &'static str {
        "counter"
    }
    fn figures(&self) -> &'static [Figure] {
        const FIGURES: &[Figure] = &[Figure::new("head", "head")];
        FIGURES
    }
    fn chart(&self) -> &'static str {
        "head"
    }
    fn read(&self) -> Reading {
        let head = self.0.load(Ordering::SeqCst);
        let mut figures = serde_json::Map::new();
        figures.insert("head".into(), head.into());
        Reading {
            head: Some(head),
            chart: Some(head as f64),
            figures,
            lies: Vec::new(),
        }
    }
}

#[tokio::test]
async fn the_page_and_json_rpc_share_the_port() {
    // reqwest's TLS provider is the application's to install.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let head = Arc::new(AtomicU64::new(7));
    let page = StatusPage::new(Counter(head.clone()));
    let server = Server::builder()
        .set_http_middleware(tower::ServiceBuilder::new().layer(page.layer()))
        .build("127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    let mut module = RpcModule::new(());
    module.register_method("answer", |_, _, _| 42u64).unwrap();
    let handle = server.start(module);
    page.sample_until(handle.clone().stopped());
    let http = reqwest::Client::new();
    let base = format!("http://{addr}");

    let s: Value = http
        .get(format!("{base}/status.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(s["role"], "counter");
    assert_eq!(s["head"], 7);
    head.store(9, Ordering::SeqCst);
    let r = http.get(&base).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = r.text().await.unwrap();
    assert!(html.contains("data-key=\"head\">9</td>"), "{html}");

    // JSON-RPC over HTTP POST, on `/` as before.
    let r: Value = http
        .post(&base)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "answer", "params": []}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["result"], 42, "{r}");
    // Another GET reaches the server, which refuses it as before.
    let r = http.get(format!("{base}/other")).send().await.unwrap();
    assert_eq!(r.status(), 405);

    // A WebSocket on `/`.
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/"))
        .await
        .unwrap();
    ws.send(Message::text(
        json!({"jsonrpc": "2.0", "id": 2, "method": "answer", "params": []}).to_string(),
    ))
    .await
    .unwrap();
    let reply = loop {
        match ws.next().await.unwrap().unwrap() {
            Message::Text(t) => break serde_json::from_str::<Value>(&t).unwrap(),
            _ => continue,
        }
    };
    assert_eq!(reply["result"], 42, "{reply}");

    handle.stop().unwrap();
    handle.stopped().await;
}
