//! State-transition proving times: seeded diffs of the given sizes (the
//! `proofbox_state::workload` standard workload) proved on one backend, each proof
//! verified against the statement the node computed natively.
//!
//! `cargo run --release -p proofbox-benches --bin transition-proofs -- [--backend cpu]
//! [--device ID] [--reps N] UPDATES...` prints one Markdown row per size: witness
//! generation (applying the diff to the tree), trace generation, proving (min and
//! median of the repetitions), verification, proof size and the process's peak memory.
//! Proofs are not measured in timed tests; the figures go to `docs/benchmarks.md`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use proofbox_prover::FriPreset;
use proofbox_prover::registry::{self, BackendChoice};
use proofbox_prover::transition::{self, TransitionInput};

fn peak_rss_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut backend = "cpu".to_string();
    let mut device = None;
    let mut reps = 3usize;
    let mut sizes = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--backend" => backend = args.next().ok_or("--backend needs a value")?,
            "--device" => device = Some(args.next().ok_or("--device needs a value")?),
            "--reps" => reps = args.next().ok_or("--reps needs a value")?.parse()?,
            n => sizes.push(n.parse::<usize>().map_err(|_| format!("not a size: {n}"))?),
        }
    }
    if sizes.is_empty() {
        sizes = vec![1000];
    }
    let choice: BackendChoice = backend.parse()?;
    let prover = registry::open(choice, device.as_deref())?;
    println!(
        "backend {} device {} ({})",
        prover.backend_kind(),
        prover.device().id,
        prover.device().name
    );
    println!(
        "| updates | trace rows | witnesses | trace | prove min | prove median | verify | proof | peak RSS |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for n in sizes {
        let t = Instant::now();
        let (mut tree, diff) = proofbox_state::workload::random_transition(n as u64, n.max(16), n);
        let input = TransitionInput::build(&mut tree, diff, 1);
        let witnesses = t.elapsed();
        let statement = input.statement()?;
        let t = Instant::now();
        let trace = input.trace(2);
        let trace_time = t.elapsed();
        drop(trace);
        let mut times = Vec::with_capacity(reps);
        let mut last = None;
        for _ in 0..reps {
            let t = Instant::now();
            let a = prover.prove_transition(&input, FriPreset::Standard, Arc::new(()))?;
            times.push(t.elapsed());
            last = Some(a);
        }
        times.sort();
        let a = last.expect("at least one repetition");
        let t = Instant::now();
        transition::verify_transition(&a, &statement)?;
        let verify = t.elapsed();
        println!(
            "| {n} | 2^{} | {} | {} | {} | {} | {:.1} ms | {} KiB | {} MiB |",
            a.log_rows,
            secs(witnesses),
            secs(trace_time),
            secs(times[0]),
            secs(times[times.len() / 2]),
            verify.as_secs_f64() * 1e3,
            a.to_bytes().len() / 1024,
            peak_rss_mib().map_or("?".into(), |m| m.to_string()),
        );
    }
    Ok(())
}
