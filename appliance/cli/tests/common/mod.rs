//! Helpers shared by the tests that run `proofbox` as a process: a child that is
//! killed when dropped, a node started on port 0 with the address it printed, a free
//! loopback port, an alloy provider with the first development key, and an appliance
//! (`proofbox serve` on the CPU).
#![allow(dead_code)] // each test binary uses part of it

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alloy_network::EthereumWallet;
use alloy_provider::{Provider, ProviderBuilder};
use proofbox_sequencer::dev_accounts;

/// A child process killed when dropped, so a failing test leaves none behind.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Runs `proofbox ARGS` (a node role) and returns it with the address it printed on
/// its `listening on ADDR` line; its stdout is drained from then on.
pub fn spawn_node(args: &[&str]) -> (Proc, SocketAddr) {
    let (child, addr, _) = spawn_node_printing(args);
    (child, addr)
}

/// [`spawn_node`], with the lines the node printed before its address.
pub fn spawn_node_printing(args: &[&str]) -> (Proc, SocketAddr, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_proofbox"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let child = Proc(child);
    let mut lines = BufReader::new(stdout).lines();
    let mut printed = Vec::new();
    let addr = loop {
        let line = lines.next().expect("the node prints its address").unwrap();
        if let Some(rest) = line.strip_prefix("listening on ") {
            let addr = rest.split_whitespace().next().unwrap();
            break addr.trim_end_matches(',').parse().unwrap();
        }
        printed.push(line);
    };
    // Keep draining stdout so the child never blocks on it.
    std::thread::spawn(move || for _ in lines {});
    (child, addr, printed)
}

/// A loopback port free at the time of the call.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// reqwest is built without a default TLS provider in this workspace.
pub fn tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// An HTTP provider for the node at `addr`, signing with the first development key.
pub fn provider(addr: SocketAddr) -> impl Provider + Clone {
    tls();
    ProviderBuilder::new()
        .wallet(EthereumWallet::from(dev_accounts(1)[0].signer()))
        .connect_http(format!("http://{addr}").parse().unwrap())
}

/// `proofbox serve` (CPU, API key `key`) on `port` from `dir`, once `/readyz`
/// answers.
pub fn appliance(dir: &Path, port: u16, key: &str) -> Proc {
    std::fs::create_dir_all(dir).unwrap();
    let config = dir.join("proofbox.toml");
    std::fs::write(
        &config,
        format!("api_keys = [\"{key}\"]\ndevices = [\"cpu:0\"]\n"),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_proofbox"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(dir.join("data"))
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    tls();
    let client = reqwest::blocking::Client::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(child.try_wait().unwrap().is_none(), "the appliance exited");
        if client
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .is_ok_and(|r| r.status().is_success())
        {
            return Proc(child);
        }
        assert!(Instant::now() < deadline, "the appliance is not ready");
        std::thread::sleep(Duration::from_millis(50));
    }
}
