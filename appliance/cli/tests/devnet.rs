//! `proofbox devnet` as a process: it prints its endpoints, blocks are built under
//! `--load`, proven on the appliance and followed by the full node; SIGINT stops it
//! cleanly, and a second start on the same data directory resumes.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use alloy_network::{EthereumWallet, TransactionBuilder};
use alloy_primitives::U256;
use alloy_provider::{Provider, ProviderBuilder};
use alloy_rpc_types_eth::TransactionRequest;
use proofbox_sequencer::dev_accounts;
use serde_json::Value;

struct Devnet {
    child: Child,
    sequencer: String,
    full: String,
    replica: String,
    light: String,
    status: String,
    lines: mpsc::Receiver<String>,
}

fn start(dir: &Path, load: u64) -> Devnet {
    let mut child = Command::new(env!("CARGO_BIN_EXE_proofbox"))
        .args(["devnet", "--load", &load.to_string()])
        .args(["--base-port", "0", "--devices", "cpu:0"])
        .args([
            "--plain",
            "--block-time-ms",
            "20",
            "--batch-blocks",
            "5",
            "--data-dir",
        ])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, lines) = mpsc::channel();
    let out = BufReader::new(child.stdout.take().unwrap());
    std::thread::spawn(move || {
        for l in out.lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let url = |lines: &mpsc::Receiver<String>, role: &str| loop {
        let l = lines
            .recv_timeout(Duration::from_secs(120))
            .expect("the devnet prints its endpoints");
        if let Some(rest) = l.trim_start().strip_prefix(role) {
            return rest.split_whitespace().next().unwrap().to_string();
        }
    };
    let sequencer = url(&lines, "sequencer ");
    let full = url(&lines, "full node ");
    let replica = url(&lines, "replica ");
    let light = url(&lines, "light ");
    let status = url(&lines, "status ");
    Devnet {
        child,
        sequencer,
        full,
        replica,
        light,
        status,
        lines,
    }
}

impl Drop for Devnet {
    /// A test that fails midway leaves no devnet running.
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn provider(url: &str) -> impl Provider + Clone + use<> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    ProviderBuilder::new().connect_http(url.parse().unwrap())
}

/// SIGINT, then the exit status within a minute.
fn interrupt(mut d: Devnet) -> Vec<String> {
    let pid = d.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = d.child.try_wait().unwrap() {
            assert!(status.success(), "the devnet exits cleanly: {status}");
            return d.lines.try_iter().collect();
        }
        assert!(Instant::now() < deadline, "the devnet does not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the sequencer's proven block and the full node's head reach `block`.
async fn reached(d: &Devnet, block: u64) -> u64 {
    let seq = provider(&d.sequencer);
    let full = provider(&d.full);
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let status: Value = seq
            .raw_request("proofbox_provingStatus".into(), ())
            .await
            .unwrap();
        let proven = status["provenBlock"].as_u64().unwrap_or(0);
        let full_head = full.get_block_number().await.unwrap();
        if proven >= block && full_head >= block {
            return proven;
        }
        assert!(
            Instant::now() < deadline,
            "the devnet does not reach block {block}: {status:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until every role's head is the sequencer's `head` (the replica's proven
/// head and the light client's included).
async fn all_at(d: &Devnet, head: u64) {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let replica: Value = provider(&d.replica)
            .raw_request("proofbox_replicaStatus".into(), ())
            .await
            .unwrap();
        let heads = [
            provider(&d.full).get_block_number().await.unwrap(),
            provider(&d.light).get_block_number().await.unwrap(),
            replica["proven"].as_u64().unwrap_or(0),
            replica["latest"].as_u64().unwrap_or(0),
        ];
        if heads.iter().all(|h| *h == head) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "heads {heads:?}, sequencer {head}: {replica:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_devnet_proves_blocks_every_role_agrees_it_stops_on_sigint_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let d = start(dir.path(), 0);
    // Transfers from development account 0, then quiet: every role reaches the head.
    let seq = ProviderBuilder::new()
        .wallet(EthereumWallet::from(dev_accounts(1)[0].signer()))
        .connect_http(d.sequencer.parse().unwrap());
    let to = alloy_primitives::Address::repeat_byte(0x66);
    for i in 0..20u64 {
        let req = TransactionRequest::default()
            .with_to(to)
            .with_value(U256::from(1 + i))
            .with_nonce(i)
            .with_gas_limit(21_000)
            .with_max_fee_per_gas(3_000_000_000)
            .with_max_priority_fee_per_gas(1);
        let _ = seq.send_transaction(req).await.unwrap();
    }
    while seq
        .get_transaction_count(dev_accounts(1)[0].address)
        .await
        .unwrap()
        < 20
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let head = seq.get_block_number().await.unwrap();
    let proven = reached(&d, head).await;
    all_at(&d, head).await;
    // The same balances everywhere: the light client's checked against its proven root
    // through the replica's Merkle proofs.
    let who = [to, dev_accounts(1)[0].address];
    for a in who {
        let b = seq.get_balance(a).await.unwrap();
        assert_eq!(
            provider(&d.full).get_balance(a).await.unwrap(),
            b,
            "full node, {a}"
        );
        let safe: U256 = provider(&d.replica)
            .raw_request("eth_getBalance".into(), (a, "safe"))
            .await
            .unwrap();
        assert_eq!(safe, b, "replica, {a}");
        assert_eq!(
            provider(&d.light).get_balance(a).await.unwrap(),
            b,
            "light client, {a}"
        );
    }
    assert_eq!(
        seq.get_balance(to).await.unwrap(),
        U256::from((1..=20u64).sum::<u64>())
    );
    let light: Value = provider(&d.light)
        .raw_request("proofbox_lightStatus".into(), ())
        .await
        .unwrap();
    let header: Value = seq
        .raw_request("eth_getBlockByNumber".into(), (format!("{head:#x}"), false))
        .await
        .unwrap();
    assert_eq!(
        light["root"], header["postStateRoot"],
        "the light client's root is the head's"
    );
    assert!(light["lies"].as_array().unwrap().is_empty());
    let out = interrupt(d);
    assert!(out.iter().any(|l| l == "stopped"), "{out:#?}");

    // A second start resumes, and under --load every head advances.
    let d = start(dir.path(), 40);
    let status: Value = provider(&d.sequencer)
        .raw_request("proofbox_provingStatus".into(), ())
        .await
        .unwrap();
    assert!(
        status["provenBlock"].as_u64().unwrap() >= proven,
        "{status:#}"
    );
    reached(&d, proven + 10).await;
    let mut recipient = [0x55u8; 20];
    recipient[19] = 0;
    let recipient = alloy_primitives::Address::from(recipient);
    assert!(provider(&d.sequencer).get_balance(recipient).await.unwrap() > U256::ZERO);
    status_page_in_a_browser(&d);
    role_page_in_a_browser(&d);
    let out = interrupt(d);
    assert!(
        out.iter().any(|l| l.starts_with("latest ")),
        "a status line: {out:#?}"
    );
}

/// Headless Chromium, if installed (`PROOFBOX_REQUIRE_CHROMIUM=1` makes its absence a
/// failure); otherwise `what` is reported skipped.
fn chromium(what: &str) -> Option<&'static str> {
    let found = ["chromium", "chromium-browser"].into_iter().find(|c| {
        Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if found.is_none() {
        if std::env::var("PROOFBOX_REQUIRE_CHROMIUM").is_ok_and(|v| v == "1") {
            panic!("PROOFBOX_REQUIRE_CHROMIUM=1 but no chromium is installed");
        }
        proofbox_conformance::skip(format!("{what}: chromium is not installed"));
    }
    found
}

/// The DOM of `url` after its scripts ran for three seconds of virtual time, and the
/// number of updates the page's script counted (`data-updates`).
fn load(chromium: &str, url: &str) -> (u64, String) {
    let out = Command::new(chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom"])
        .arg("--virtual-time-budget=3000")
        .arg(url)
        .stderr(Stdio::null())
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    let updates = between(&dom, "data-updates=\"", "\"").parse().unwrap_or(0);
    (updates, dom)
}

/// The devnet's status page loaded twice in headless Chromium: its script ran (it
/// counts its updates in `data-updates`) and the latest head it shows advanced.
fn status_page_in_a_browser(d: &Devnet) {
    let Some(chromium) = chromium("devnet status page in a browser") else {
        return;
    };
    let latest = |dom: &str| -> u64 {
        between(dom, "<span id=\"latest\">", "<")
            .parse()
            .unwrap_or(0)
    };
    let (u1, dom) = load(chromium, &d.status);
    let l1 = latest(&dom);
    assert!(u1 >= 1, "the page's script updated it: {dom}");
    assert!(dom.contains("cpu:0"), "the jobs by device: {dom}");
    std::thread::sleep(Duration::from_secs(2));
    let (u2, dom) = load(chromium, &d.status);
    let l2 = latest(&dom);
    assert!(
        u2 >= 1 && l2 > l1,
        "the latest head advances ({l1} then {l2}): {dom}"
    );
}

/// The sequencer's own status page, on its JSON-RPC port, loaded twice in headless
/// Chromium: its script ran and drew the lag chart, and the latest head it shows
/// advanced; the proven head it shows is one the sequencer had proven.
fn role_page_in_a_browser(d: &Devnet) {
    let Some(chromium) = chromium("the sequencer's status page in a browser") else {
        return;
    };
    let figure = |dom: &str, key: &str| -> Option<u64> {
        between(dom, &format!("data-key=\"{key}\">"), "<")
            .parse()
            .ok()
    };
    let (u1, dom) = load(chromium, &d.sequencer);
    assert!(u1 >= 1, "the page's script updated it: {dom}");
    assert!(dom.contains("<title>ProofBox sequencer</title>"), "{dom}");
    let line = between(&dom, "<polyline id=\"line\"", ">");
    assert!(
        !between(line, "points=\"", "\"").is_empty(),
        "the script drew the chart: {dom}"
    );
    let l1 = figure(&dom, "latest").expect("a latest head");
    let p1 = figure(&dom, "proven").expect("a proven head");
    assert!(p1 <= l1, "proven {p1}, latest {l1}");
    std::thread::sleep(Duration::from_secs(2));
    let (u2, dom) = load(chromium, &d.sequencer);
    let l2 = figure(&dom, "latest").expect("a latest head");
    assert!(
        u2 >= 1 && l2 > l1,
        "the latest head advances ({l1} then {l2}): {dom}"
    );
    assert!(figure(&dom, "proven") >= Some(p1), "{dom}");
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> &'a str {
    s.split_once(start)
        .and_then(|(_, rest)| rest.split_once(end))
        .map_or("", |(v, _)| v)
}
