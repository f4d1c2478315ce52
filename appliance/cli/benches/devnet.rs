//! The whole network on one machine, measured: `proofbox devnet` as a process, under
//! sustained transfer load, for each device given.
//!
//! - **Proving lag**: for each load, the sequencer's `proofbox_provingStatus`
//!   (`lagBlocks`, `lagMs`: blocks and time between the latest and the proven head)
//!   sampled every 250 ms; the trend of the lag (least-squares slope, seconds of lag
//!   per second) says whether it stays bounded or grows (above 0.1 s/s: proving
//!   falls behind).
//! - **Light-client answers**: `eth_getBalance` through the light client (the Merkle
//!   proof fetched from the replica and checked against its proven root) beside the
//!   same question to the replica directly (trusted, no proof), sequential requests
//!   on keep-alive connections over loopback, p50/p99.
//!
//! `cargo bench -p proofbox-cli --bench devnet -- --devices cpu:0,opencl:0
//! --loads 50,200,800 --seconds 30 --answers 500`
//!
//! Every device runs in a devnet of its own (`--devices <id>`); a device the machine
//! lacks makes the devnet fail to start, reported and skipped. Figures:
//! `docs/benchmarks.md`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use proofbox_sequencer::dev_accounts;
use reqwest::blocking::Client;
use serde_json::{Value, json};

struct Args {
    devices: Vec<String>,
    loads: Vec<u64>,
    seconds: u64,
    answers: usize,
    block_time_ms: u64,
    batch_blocks: u64,
}

fn args() -> Args {
    let mut a = Args {
        devices: vec!["cpu:0".into()],
        loads: vec![50, 200, 800],
        seconds: 30,
        answers: 500,
        block_time_ms: 100,
        batch_blocks: 10,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--devices" => a.devices = value().split(',').map(str::to_string).collect(),
            "--loads" => {
                a.loads = value()
                    .split(',')
                    .map(|l| l.parse().expect("--loads: numbers"))
                    .collect()
            }
            "--seconds" => a.seconds = value().parse().expect("--seconds: a number"),
            "--answers" => a.answers = value().parse().expect("--answers: a number"),
            "--block-time-ms" => a.block_time_ms = value().parse().expect("a number"),
            "--batch-blocks" => a.batch_blocks = value().parse().expect("a number"),
            // What `cargo bench` passes to every bench target.
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

struct Devnet {
    child: Child,
    sequencer: String,
    replica: String,
    light: String,
    _dir: tempfile::TempDir,
}

impl Devnet {
    fn start(device: &str, load: u64, a: &Args) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_proofbox"))
            .args(["devnet", "--load", &load.to_string()])
            .args(["--base-port", "0", "--devices", device, "--plain"])
            .args(["--block-time-ms", &a.block_time_ms.to_string()])
            .args(["--batch-blocks", &a.batch_blocks.to_string()])
            .arg("--data-dir")
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start proofbox devnet");
        let (tx, lines) = mpsc::channel();
        let out = BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            for l in out.lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        let mut urls = std::collections::HashMap::new();
        let deadline = Instant::now() + Duration::from_secs(180);
        while urls.len() < 3 {
            match lines.recv_timeout(Duration::from_millis(200)) {
                Ok(l) => {
                    for role in ["sequencer ", "replica ", "light "] {
                        if let Some(rest) = l.trim_start().strip_prefix(role) {
                            let url = rest.split_whitespace().next().unwrap_or_default();
                            urls.insert(role.trim(), url.to_string());
                        }
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = child.wait().ok();
                    eprintln!("skipped: devnet on {device}: exited at start ({status:?})");
                    return None;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if Instant::now() > deadline {
                        let _ = child.kill();
                        eprintln!("skipped: devnet on {device}: no endpoints after 180 s");
                        return None;
                    }
                }
            }
        }
        Some(Self {
            child,
            sequencer: urls["sequencer"].clone(),
            replica: urls["replica"].clone(),
            light: urls["light"].clone(),
            _dir: dir,
        })
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rpc(client: &Client, url: &str, method: &str, params: Value) -> Result<Value, String> {
    let r: Value = client
        .post(url)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
        .send()
        .and_then(|r| r.json())
        .map_err(|e| e.to_string())?;
    match r.get("result") {
        Some(v) => Ok(v.clone()),
        None => Err(r["error"].to_string()),
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        0.0
    } else {
        xs.iter().sum::<f64>() / xs.len() as f64
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Samples the proving lag for `seconds` after a warm-up of a quarter of that.
fn lag(d: &Devnet, client: &Client, device: &str, load: u64, seconds: u64) {
    let status = |c: &Client| rpc(c, &d.sequencer, "proofbox_provingStatus", json!([]));
    let warm = Duration::from_secs(seconds / 4);
    let start = Instant::now();
    while start.elapsed() < warm {
        std::thread::sleep(Duration::from_millis(250));
    }
    let first = status(client).expect("proving status");
    let t0 = Instant::now();
    let mut samples = Vec::new();
    while t0.elapsed() < Duration::from_secs(seconds) {
        if let Ok(s) = status(client) {
            samples.push((
                t0.elapsed().as_secs_f64(),
                s["lagBlocks"].as_f64().unwrap_or(0.0),
                s["lagMs"].as_f64().unwrap_or(0.0),
            ));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let last = status(client).expect("proving status");
    let elapsed = t0.elapsed().as_secs_f64();
    let blocks = last["latestBlock"].as_f64().unwrap() - first["latestBlock"].as_f64().unwrap();
    let batches =
        last["provenBatches"].as_f64().unwrap() - first["provenBatches"].as_f64().unwrap();
    let proven =
        last["provenBlock"].as_f64().unwrap_or(0.0) - first["provenBlock"].as_f64().unwrap_or(0.0);
    // The transfers the sequencer actually included (what the load generator sent
    // may fall short of the load asked for).
    let (from, to) = (
        first["latestBlock"].as_u64().unwrap() + 1,
        last["latestBlock"].as_u64().unwrap(),
    );
    let included: usize = (from..=to)
        .filter_map(|n| {
            rpc(
                client,
                &d.sequencer,
                "eth_getBlockByNumber",
                json!([format!("{n:#x}"), false]),
            )
            .ok()
        })
        .map(|b| b["transactions"].as_array().map_or(0, Vec::len))
        .sum();
    let half = samples.len() / 2;
    let (a, b) = samples.split_at(half);
    let lag_blocks = |s: &[(f64, f64, f64)]| mean(&s.iter().map(|x| x.1).collect::<Vec<_>>());
    let lag_ms = |s: &[(f64, f64, f64)]| mean(&s.iter().map(|x| x.2).collect::<Vec<_>>());
    let max_ms = samples.iter().map(|x| x.2).fold(0.0, f64::max);
    // The lag's trend: least-squares slope of lag (s) over time (s). A lag that
    // keeps pace with the clock (nothing proven) grows at 1 s/s; a bounded one at 0.
    let n = samples.len() as f64;
    let (mt, ml) = (
        samples.iter().map(|x| x.0).sum::<f64>() / n,
        samples.iter().map(|x| x.2 / 1e3).sum::<f64>() / n,
    );
    let slope = samples
        .iter()
        .map(|x| (x.0 - mt) * (x.2 / 1e3 - ml))
        .sum::<f64>()
        / samples
            .iter()
            .map(|x| (x.0 - mt).powi(2))
            .sum::<f64>()
            .max(1e-9);
    let grows = slope > 0.1;
    println!(
        "lag {device} load {load}/s ({:.0} transactions/s included): {blocks:.0} blocks built, {proven:.0} proven in {batches:.0} \
         batches over {elapsed:.1} s; lag blocks {:.1} -> {:.1}, lag ms {:.0} -> {:.0} (max {max_ms:.0}), trend {slope:+.3} s/s; {} \
         [load average {}]",
        included as f64 / elapsed,
        lag_blocks(a),
        lag_blocks(b),
        lag_ms(a),
        lag_ms(b),
        if grows { "GROWS" } else { "bounded" },
        load_average()
    );
}

/// Light-client answers against the replica's own, `n` of each, interleaved.
fn answers(d: &Devnet, client: &Client, device: &str, n: usize) {
    let address = dev_accounts(1)[0].address.to_string();
    // The light client answers once it has a proven root.
    let deadline = Instant::now() + Duration::from_secs(180);
    while rpc(
        client,
        &d.light,
        "eth_getBalance",
        json!([address, "latest"]),
    )
    .is_err()
    {
        assert!(Instant::now() < deadline, "the light client never answers");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (mut light, mut replica, mut failed) = (Vec::new(), Vec::new(), 0);
    for _ in 0..n {
        let t = Instant::now();
        match rpc(
            client,
            &d.light,
            "eth_getBalance",
            json!([address, "latest"]),
        ) {
            Ok(_) => light.push(t.elapsed()),
            Err(_) => failed += 1,
        }
        let t = Instant::now();
        if rpc(
            client,
            &d.replica,
            "eth_getBalance",
            json!([address, "safe"]),
        )
        .is_ok()
        {
            replica.push(t.elapsed());
        }
    }
    light.sort();
    replica.sort();
    let ms = |x: Duration| x.as_secs_f64() * 1e3;
    println!(
        "answers {device}: light client eth_getBalance (proof fetched and checked) p50 {:.3} ms \
         p99 {:.3} ms ({} answers, {failed} errors); replica \
         eth_getBalance p50 {:.3} ms p99 {:.3} ms [load average {}]",
        ms(percentile(&light, 0.5)),
        ms(percentile(&light, 0.99)),
        light.len(),
        ms(percentile(&replica, 0.5)),
        ms(percentile(&replica, 0.99)),
        load_average()
    );
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let a = args();
    let client = Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    for device in &a.devices {
        for (i, &load) in a.loads.iter().enumerate() {
            let Some(d) = Devnet::start(device, load, &a) else {
                break;
            };
            if i == 0 && a.answers > 0 {
                answers(&d, &client, device, a.answers);
            }
            lag(&d, &client, device, load, a.seconds);
        }
    }
}
