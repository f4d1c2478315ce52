//! Loopback load generator for the appliance service: submits small proof jobs as
//! fast as `--concurrency` connections allow against a running `proofbox serve`, and
//! reports submissions per second and submit latency percentiles (the time to a
//! `202 Accepted`, which includes the durable commit of the job), then reads the
//! status of every submitted job the same way (`GET /v1/jobs/{id}`).
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
    let base = server.trim_end_matches('/').to_string();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let report = |what: &str, r: &Phase| {
        println!(
            "{} {what} ({} errors) in {:.2} s with {concurrency} connections: {:.0} /s; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            r.latencies.len(),
            r.errors,
            r.elapsed.as_secs_f64(),
            r.latencies.len() as f64 / r.elapsed.as_secs_f64(),
            ms(percentile(&r.latencies, 0.50)),
            ms(percentile(&r.latencies, 0.99)),
            ms(*r.latencies.last().unwrap()),
        )
    };

    // Submissions: the time to the `202 Accepted` (a durable commit).
    let url = format!("{base}/v1/jobs");
    let submit = phase(concurrency, requests, {
        let (client, key) = (client.clone(), key.clone());
        move |n| {
            let body = serde_json::json!({
                "circuit": "poseidon2", "log_rows": log_rows, "seed": n as u64
            });
            client.post(url.as_str()).bearer_auth(&key).json(&body)
        }
    })
    .await?;
    if submit.latencies.is_empty() {
        return Err(format!("no submission succeeded ({} errors)", submit.errors).into());
    }
    report("submissions", &submit);

    // Status reads of the submitted jobs (`GET /v1/jobs/{id}`), while the worker proves.
    let ids = Arc::new(submit.ids);
    let status = phase(concurrency, ids.len(), {
        let (client, key, ids) = (client.clone(), key.clone(), ids.clone());
        move |n| {
            client
                .get(format!("{base}/v1/jobs/{}", ids[n]))
                .bearer_auth(&key)
        }
    })
    .await?;
    report("status reads", &status);
    Ok(())
}

/// The outcome of one phase: latencies of the successful requests, sorted, the ids of
/// the jobs they name, errors and wall time.
struct Phase {
    latencies: Vec<Duration>,
    ids: Vec<String>,
    errors: usize,
    elapsed: Duration,
}

/// Sends `requests` requests built by `make(n)` over `concurrency` connections.
async fn phase(
    concurrency: usize,
    requests: usize,
    make: impl Fn(usize) -> reqwest::RequestBuilder + Send + Sync + 'static,
) -> Result<Phase, Box<dyn std::error::Error>> {
    let make = Arc::new(make);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (make, next) = (make.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let (mut latencies, mut ids, mut errors) = (Vec::new(), Vec::new(), 0usize);
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= requests {
                    break;
                }
                let t = Instant::now();
                match make(n).send().await {
                    Ok(r) if r.status().is_success() => {
                        let body = r.bytes().await.unwrap_or_default();
                        latencies.push(t.elapsed());
                        if let Some(id) = serde_json::from_slice::<serde_json::Value>(&body)
                            .ok()
                            .and_then(|v| v["id"].as_str().map(str::to_string))
                        {
                            ids.push(id);
                        }
                    }
                    _ => errors += 1,
                }
            }
            (latencies, ids, errors)
        }));
    }
    let mut out = Phase {
        latencies: Vec::new(),
        ids: Vec::new(),
        errors: 0,
        elapsed: Duration::ZERO,
    };
    for t in tasks {
        let (l, i, e) = t.await?;
        out.latencies.extend(l);
        out.ids.extend(i);
        out.errors += e;
    }
    out.elapsed = start.elapsed();
    out.latencies.sort();
    Ok(out)
}
