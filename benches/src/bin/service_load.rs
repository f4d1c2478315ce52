//! Loopback load generator for the appliance service: submits small proof jobs as
//! fast as `--concurrency` connections allow against a running `proofbox serve`, and
//! reports submissions per second and submit latency percentiles (the time to a
//! `202 Accepted`, which includes the durable commit of the job).
//!
//! ```sh
//! proofbox serve --data-dir /tmp/pb &
//! cargo run --release -p proofbox-benches --bin service-load -- \
//!     --server http://127.0.0.1:8080 --api-key "$(cat /tmp/pb/api-key)" \
//!     --requests 2000 --concurrency 16
//! ```
//!
//! Not a test: figures go to `docs/benchmarks.md`.

use std::sync::Arc;
use std::time::{Duration, Instant};

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_string())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let server = arg(&args, "--server", "http://127.0.0.1:8080");
    let key = arg(&args, "--api-key", "");
    let requests: usize = arg(&args, "--requests", "2000").parse()?;
    let concurrency: usize = arg(&args, "--concurrency", "16").parse()?;
    let log_rows: u8 = arg(&args, "--log-rows", "3").parse()?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    let url = Arc::new(format!("{}/v1/jobs", server.trim_end_matches('/')));
    let key = Arc::new(key);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, url, key, next) = (client.clone(), url.clone(), key.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0usize;
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= requests {
                    break;
                }
                let body = serde_json::json!({
                    "circuit": "poseidon2", "log_rows": log_rows, "seed": n as u64
                });
                let t = Instant::now();
                let r = client
                    .post(url.as_str())
                    .bearer_auth(key.as_str())
                    .json(&body)
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().as_u16() == 202 => {
                        let _ = r.bytes().await;
                        latencies.push(t.elapsed());
                    }
                    _ => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await?;
        latencies.extend(l);
        errors += e;
    }
    let elapsed = start.elapsed();
    latencies.sort();
    if latencies.is_empty() {
        return Err(format!("no submission succeeded ({errors} errors)").into());
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{} submissions ({errors} errors) in {:.2} s with {concurrency} connections: {:.0} submissions/s; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        latencies.len(),
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        ms(percentile(&latencies, 0.50)),
        ms(percentile(&latencies, 0.99)),
        ms(*latencies.last().unwrap()),
    );
    Ok(())
}
