//! State-transition proving times: seeded diffs of the given sizes (the
//! `proofbox_state::workload` standard workload) proved on one backend, each proof
//! verified against the statement the node computed natively.
//!
//! `cargo run --release -p proofbox-benches --bin transition-proofs -- [--backend cpu]
//! [--device ID] [--reps N] [--chunk MAX] [--keys N] UPDATES...` prints one Markdown row
//! per size (the state holds `--keys` keys before the diff, by default as many as the
//! diff has updates, at least 16):
//! witness generation (applying the diff to the tree), trace generation, proving (min
//! and median of the repetitions), verification, proof size and the process's peak
//! memory. With `--chunk MAX` (a power of two) a diff is proved as a bundle of chained
//! proofs of at most `MAX` updates each (`TransitionInput::build_chunks`), and
//! "trace", "prove", "verify" and "proof" are totals over the bundle; without it, one
//! proof. Proofs are not measured in timed tests; the figures go to
//! `docs/benchmarks.md`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use proofbox_prover::FriPreset;
use proofbox_prover::ProofArtifact;
use proofbox_prover::registry::{self, BackendChoice};
use proofbox_prover::transition::{self, TransitionInput, TransitionProof};

fn peak_rss_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// The bundle's trace sizes: `2^18` for one proof, `10 x 2^18` or `3 x 2^16 + 2^14`
/// for chunks.
fn rows(chunks: &[ProofArtifact]) -> String {
    let mut groups: Vec<(u8, usize)> = Vec::new();
    for a in chunks {
        match groups.last_mut() {
            Some((log, n)) if *log == a.log_rows => *n += 1,
            _ => groups.push((a.log_rows, 1)),
        }
    }
    groups
        .iter()
        .map(|&(log, n)| match n {
            1 => format!("2^{log}"),
            n => format!("{n} x 2^{log}"),
        })
        .collect::<Vec<_>>()
        .join(" + ")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut backend = "cpu".to_string();
    let mut device = None;
    let mut reps = 3usize;
    let mut chunk: Option<usize> = None;
    let mut keys: Option<usize> = None;
    let mut sizes = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--backend" => backend = args.next().ok_or("--backend needs a value")?,
            "--device" => device = Some(args.next().ok_or("--device needs a value")?),
            "--reps" => reps = args.next().ok_or("--reps needs a value")?.parse()?,
            "--keys" => keys = Some(args.next().ok_or("--keys needs a value")?.parse()?),
            "--chunk" => {
                let c: usize = args.next().ok_or("--chunk needs a value")?.parse()?;
                if !c.is_power_of_two() {
                    return Err(format!("--chunk {c} is not a power of two").into());
                }
                chunk = Some(c);
            }
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
    match chunk {
        Some(c) => println!("chunks of at most {c} updates"),
        None => println!("one proof per diff"),
    }
    println!(
        "| updates | trace rows | witnesses | trace | prove min | prove median | verify | proof | peak RSS |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for n in sizes {
        let (mut tree, diff) =
            proofbox_state::workload::random_transition(n as u64, keys.unwrap_or(n.max(16)), n);
        // What a node would send a prover for this diff, in the compact encoding.
        let encoded = tree
            .clone()
            .transition_witness(&diff, 1, &transition::padding_key())
            .to_bytes()
            .len();
        eprintln!(
            "{n} updates on {} keys: the transition witness encodes to {encoded} bytes ({} per update)",
            tree.len(),
            encoded / n.max(1)
        );
        let t = Instant::now();
        let inputs = match chunk {
            Some(c) => TransitionInput::build_chunks(&mut tree, diff, 1, c),
            None => vec![TransitionInput::build(&mut tree, diff, 1)],
        };
        let witnesses = t.elapsed();
        let statement = transition::statement_of_chunks(&inputs)?;
        let mut trace_time = Duration::ZERO;
        for input in &inputs {
            let t = Instant::now();
            let trace = input.trace(2);
            trace_time += t.elapsed();
            drop(trace);
        }
        let mut times = Vec::with_capacity(reps);
        let mut last: Option<TransitionProof> = None;
        for _ in 0..reps {
            let t = Instant::now();
            let b = prover.prove_transition_chunks(&inputs, FriPreset::Standard, Arc::new(()))?;
            times.push(t.elapsed());
            last = Some(b);
        }
        times.sort();
        let b = last.expect("at least one repetition");
        let t = Instant::now();
        transition::verify_transition_chunks(&b, &statement)?;
        let verify = t.elapsed();
        println!(
            "| {n} | {} | {} | {} | {} | {} | {:.1} ms | {} KiB | {} MiB |",
            rows(&b.chunks),
            secs(witnesses),
            secs(trace_time),
            secs(times[0]),
            secs(times[times.len() / 2]),
            verify.as_secs_f64() * 1e3,
            b.to_bytes().len() / 1024,
            peak_rss_mib().map_or("?".into(), |m| m.to_string()),
        );
    }
    Ok(())
}
