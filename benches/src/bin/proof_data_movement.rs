//! Data movement per proof: Poseidon2 proofs (KoalaBear, the benchmark suite's FRI
//! preset) of the given sizes on every device of the chosen backends, with what each
//! proof moved between host and device memory (`Backend::transfer_stats`) beside its
//! time and the CPU backend's.
//!
//! `cargo run --release -p proofbox-benches --bin proof-data-movement -- [--reps N]
//! [--backends cpu,wgpu,opencl] LOG_ROWS...` prints one Markdown row per device and
//! size: the median proving time of `N` proofs (after one warm-up; min and max in
//! brackets), the bytes and copies each way (and the part of the host-to-device bytes
//! that are the backend's own tables), the waits for the device and the kernel
//! launches of the last proof, and the size of the trace's extension for comparison.
//! Every proof is verified. The load average is printed before and after. Proofs are
//! not measured in timed tests; the figures go to `docs/benchmarks.md`.

use std::time::Instant;

use proofbox_bench::workload::PROOF_FRI;
use proofbox_bench::{BenchDevice, open_devices};
use proofbox_prover::memory::trace_width;
use proofbox_prover::{BackendKind, CircuitId, FieldId, ProofRequest, verify_bytes};

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn mib(bytes: u64) -> String {
    format!("{:.2} MiB", bytes as f64 / f64::from(1u32 << 20))
}

fn time(s: f64) -> String {
    if s < 1.0 {
        format!("{:.0} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}

/// Median, min and max of `samples` (not empty).
fn spread(samples: &mut [f64]) -> (f64, f64, f64) {
    samples.sort_by(f64::total_cmp);
    let n = samples.len();
    let median = if n % 2 == 1 {
        samples[n / 2]
    } else {
        (samples[n / 2 - 1] + samples[n / 2]) / 2.0
    };
    (median, samples[0], samples[n - 1])
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A proof that falls back from the resident path says so (`warn`); the backend
    // failure behind it unwinds by design and stays out of stderr.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    proofbox_prover::install_panic_hook();
    let mut reps = 3usize;
    let mut kinds = vec![BackendKind::Cpu, BackendKind::Wgpu, BackendKind::Opencl];
    let mut sizes: Vec<u8> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--reps" => reps = args.next().ok_or("--reps needs a value")?.parse()?,
            "--backends" => {
                kinds = args
                    .next()
                    .ok_or("--backends needs a value")?
                    .split(',')
                    .map(|k| k.parse::<BackendKind>().map_err(|e| e.to_string()))
                    .collect::<Result<_, _>>()?;
            }
            n => sizes.push(
                n.parse()
                    .map_err(|_| format!("not a log2 row count: {n}"))?,
            ),
        }
    }
    if sizes.is_empty() {
        sizes = vec![12, 14];
    }
    if reps == 0 {
        return Err("--reps must be at least 1".into());
    }
    let (circuit, field) = (CircuitId::Poseidon2, FieldId::KoalaBear);
    let opened = open_devices(&kinds, &[]);
    for s in &opened.skipped {
        eprintln!("skipped: {}: {}", s.backend, s.reason);
    }
    println!("load average at the start: {}", load_average());
    println!(
        "\n| log2 rows | device | prove (median, min..max) | to device (tables) | copies | to host | copies | waits | launches | trace LDE |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let width = trace_width(circuit, field) as u64;
    for log_rows in sizes {
        let lde_bytes = (width << log_rows << PROOF_FRI.params().log_blowup) * 4;
        let req = ProofRequest {
            circuit,
            field,
            log_rows,
            fri: PROOF_FRI,
            seed: 1,
            input: Vec::new(),
        };
        for d in &opened.devices {
            let d: &dyn BenchDevice = d.as_ref();
            let mut samples = Vec::with_capacity(reps);
            let mut moved = None;
            for rep in 0..=reps {
                let before = d.transfer_stats();
                let start = Instant::now();
                let artifact = d.prove(&req)?;
                let t = start.elapsed().as_secs_f64();
                moved = Some(d.transfer_stats().since(&before));
                verify_bytes(&artifact.to_bytes())?;
                if rep > 0 {
                    samples.push(t);
                }
            }
            let m = moved.expect("at least one proof");
            let (median, min, max) = spread(&mut samples);
            println!(
                "| {log_rows} | {} ({}) | {} ({}..{}) | {} ({}) | {} | {} | {} | {} | {} | {} |",
                d.info().id,
                d.info().name,
                time(median),
                time(min),
                time(max),
                mib(m.host_to_device_bytes),
                mib(m.table_bytes),
                m.host_to_device_copies,
                mib(m.device_to_host_bytes),
                m.device_to_host_copies,
                m.sync_waits,
                m.kernel_launches,
                mib(lde_bytes)
            );
        }
    }
    println!("\nload average at the end: {}", load_average());
    Ok(())
}
