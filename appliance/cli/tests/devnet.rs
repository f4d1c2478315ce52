//! `proofbox devnet` as a process: it prints its endpoints, blocks are built under
//! `--load`, proven on the appliance and followed by the full node; SIGINT stops it
//! cleanly, and a second start on the same data directory resumes.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use alloy_provider::{Provider, ProviderBuilder};
use serde_json::Value;

struct Devnet {
    child: Child,
    sequencer: String,
    full: String,
    status: String,
    lines: mpsc::Receiver<String>,
}

fn start(dir: &Path) -> Devnet {
    let mut child = Command::new(env!("CARGO_BIN_EXE_proofbox"))
        .args([
            "devnet",
            "--base-port",
            "0",
            "--load",
            "40",
            "--devices",
            "cpu:0",
        ])
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
    let status = url(&lines, "status ");
    Devnet {
        child,
        sequencer,
        full,
        status,
        lines,
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_devnet_builds_proves_and_follows_blocks_stops_on_sigint_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path());
    let proven = reached(&d, 15).await;
    // The load moved balances: the transfers' recipients hold ether.
    let seq = provider(&d.sequencer);
    let mut to = [0x55u8; 20];
    to[19] = 0;
    let to = alloy_primitives::Address::from(to);
    assert!(seq.get_balance(to).await.unwrap() > alloy_primitives::U256::ZERO);
    status_page_in_a_browser(&d);
    let out = interrupt(d);
    assert!(out.iter().any(|l| l == "stopped"), "{out:#?}");
    assert!(
        out.iter().any(|l| l.starts_with("latest ")),
        "a status line: {out:#?}"
    );

    // A second start resumes: nothing proven is lost and proving goes on.
    let d = start(dir.path());
    let status: Value = provider(&d.sequencer)
        .raw_request("proofbox_provingStatus".into(), ())
        .await
        .unwrap();
    assert!(
        status["provenBlock"].as_u64().unwrap() >= proven,
        "{status:#}"
    );
    reached(&d, proven + 10).await;
    interrupt(d);
}

/// The status page loaded twice in headless Chromium: its script ran (it counts its
/// updates in `data-updates`) and the latest head it shows advanced.
fn status_page_in_a_browser(d: &Devnet) {
    let Some(chromium) = ["chromium", "chromium-browser"].into_iter().find(|c| {
        Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    }) else {
        if std::env::var("PROOFBOX_REQUIRE_CHROMIUM").is_ok_and(|v| v == "1") {
            panic!("PROOFBOX_REQUIRE_CHROMIUM=1 but no chromium is installed");
        }
        proofbox_conformance::skip("devnet status page in a browser: chromium is not installed");
        return;
    };
    let load = || {
        let out = Command::new(chromium)
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom"])
            .arg("--virtual-time-budget=3000")
            .arg(&d.status)
            .stderr(Stdio::null())
            .output()
            .unwrap();
        let dom = String::from_utf8_lossy(&out.stdout).into_owned();
        let updates = between(&dom, "data-updates=\"", "\"");
        let latest = between(&dom, "<span id=\"latest\">", "<");
        (
            updates.parse::<u64>().unwrap_or(0),
            latest.parse::<u64>().unwrap_or(0),
            dom,
        )
    };
    let (u1, l1, dom) = load();
    assert!(u1 >= 1, "the page's script updated it: {dom}");
    assert!(dom.contains("cpu:0"), "the jobs by device: {dom}");
    std::thread::sleep(Duration::from_secs(2));
    let (u2, l2, dom) = load();
    assert!(
        u2 >= 1 && l2 > l1,
        "the latest head advances ({l1} then {l2}): {dom}"
    );
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> &'a str {
    s.split_once(start)
        .and_then(|(_, rest)| rest.split_once(end))
        .map_or("", |(v, _)| v)
}
