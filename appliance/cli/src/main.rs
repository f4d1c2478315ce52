//! `proofbox`: list devices, prove and verify from the command line; run the
//! appliance service (`serve`) and talk to it (`submit`, `status`, `cancel`); run the
//! vendor benchmark suite (`bench`, `bench compare`); run a node role (`node`).

mod bench;
mod client;
mod devnet;
mod node;
mod verify;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use proofbox_prover::registry::{self, BackendChoice};
use proofbox_prover::{CircuitId, FieldId, FriPreset, ProofArtifact, ProofRequest, Stage};
use proofbox_service::types::{JobStatus, JobView, SubmitJob};
use proofbox_verifier::{Verified, Verifier};
use serde_json::json;

use crate::client::Client;

/// ProofBox: a hardware-accelerated STARK proving appliance.
#[derive(Parser)]
#[command(name = "proofbox", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List every backend, available or not (with the reason), and its devices.
    Devices {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Prove one circuit and write the proof artifact.
    Prove(ProveArgs),
    /// Verify a proof artifact, or a bundle of chained state-transition proofs.
    /// Exit 1 if it does not verify, or is weaker than the security floor.
    Verify {
        /// The proof file.
        proof: PathBuf,
        #[command(flatten)]
        floor: verify::FloorArgs,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Prove and verify the default workload (Poseidon2, KoalaBear, 2^14 rows) on
    /// the best available backend: the quickest way to see ProofBox work.
    Demo {
        /// Where to write the proof.
        #[arg(long, default_value = "proof.bin")]
        out: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run the appliance service: REST API, persistent job store, workers per device.
    /// Settings: defaults, then --config, then PROOFBOX_* variables, then these flags
    /// (docs/api.md lists every key).
    Serve {
        /// Address to listen on [default: 127.0.0.1:8080].
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Directory of the job store and the generated API key [default: proofbox-data].
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// TOML configuration file.
        #[arg(long, env = "PROOFBOX_CONFIG")]
        config: Option<PathBuf>,
        /// Create the job store even if `jobs.redb` exists but is no job store (empty,
        /// or another file): it is moved aside first. A missing store is always created.
        #[arg(long)]
        init: bool,
        /// Where jobs are kept: `embedded` (jobs.redb in the data directory) or a
        /// PostgreSQL URL shared by a fleet of appliances, `postgres://user@host/db`
        /// (docs/fleet.md) [default: embedded].
        #[arg(long)]
        store: Option<String>,
    },
    /// Submit a proof job to a running service.
    Submit(SubmitArgs),
    /// Show a job of a running service.
    Status {
        /// The job id.
        id: String,
        #[command(flatten)]
        server: ServerArgs,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Cancel a queued or running job (a running proof finishes; its result is dropped).
    Cancel {
        /// The job id.
        id: String,
        #[command(flatten)]
        server: ServerArgs,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run the vendor benchmark suite (fixed, versioned workloads, every output checked
    /// against the CPU backend), or compare reports with `bench compare A.json B.json`.
    /// See docs/benchmarking.md. Exit 1 if any measurement failed its check.
    Bench(bench::BenchArgs),
    /// Run a node role: `node sequencer`, `node full` (docs/nodes.md).
    #[command(subcommand)]
    Node(node::NodeCommand),
    /// The whole system on one machine: an appliance, a sequencer proving its blocks
    /// on it, a full node; endpoints, keys and a live status line (docs/nodes.md).
    Devnet(devnet::DevnetArgs),
}

#[derive(Args)]
struct ServerArgs {
    /// URL of the service.
    #[arg(long, env = "PROOFBOX_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// API key (sent as `Authorization: Bearer`).
    #[arg(long, env = "PROOFBOX_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
}

impl ServerArgs {
    fn client(&self) -> Result<Client> {
        Client::new(&self.server, self.api_key.clone())
    }
}

/// What to prove and where: the arguments `prove` and `submit` share.
#[derive(Args)]
struct RequestArgs {
    /// Circuit: poseidon2, keccak, blake3 or state-transition (KoalaBear only: a
    /// seeded diff of 2^(log-rows - 5) one-segment updates, or, with `submit`, the
    /// transition witness given as `--input`).
    #[arg(long)]
    circuit: CircuitId,
    /// log2 of the trace rows. Optional only when `submit` sends a state-transition
    /// witness: there it bounds the largest proof of the bundle (the service's
    /// default when absent).
    #[arg(long)]
    log_rows: Option<u8>,
    /// Field: koalabear or babybear.
    #[arg(long, default_value = "koalabear")]
    field: FieldId,
    /// Backend: auto, cpu, cuda, wgpu or opencl.
    #[arg(long, default_value = "auto")]
    backend: BackendChoice,
    /// Device id as `proofbox devices` (or a service's `GET /v1/devices`) lists it
    /// (e.g. cpu:0).
    #[arg(long)]
    device: Option<String>,
    /// FRI parameters: standard (~100 bits) or benchmark (Plonky3's benchmark set).
    #[arg(long, default_value = "standard")]
    fri: FriPreset,
    /// Seed of the generated inputs.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// A file whose bytes become the first inputs of the circuit.
    #[arg(long)]
    input: Option<PathBuf>,
}

impl RequestArgs {
    /// The request, with the input file read.
    fn request(&self) -> Result<ProofRequest> {
        let log_rows = self
            .log_rows
            .ok_or_else(|| anyhow!("--log-rows is required for circuit {}", self.circuit))?;
        self.read(log_rows)
    }

    /// The request with the input file read and `log_rows` as given.
    fn read(&self, log_rows: u8) -> Result<ProofRequest> {
        Ok(ProofRequest {
            circuit: self.circuit,
            field: self.field,
            log_rows,
            fri: self.fri,
            seed: self.seed,
            input: match &self.input {
                Some(p) => std::fs::read(p).with_context(|| format!("reading {}", p.display()))?,
                None => Vec::new(),
            },
        })
    }
}

#[derive(Args)]
struct SubmitArgs {
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    request: RequestArgs,
    /// Higher runs first (-1000..=1000).
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    priority: i32,
    /// Makes resubmitting safe: the same key returns the same job [default: random,
    /// reused for this command's own retries].
    #[arg(long)]
    idempotency_key: Option<String>,
    /// Wait until the job ends; exit 1 unless it succeeded.
    #[arg(long)]
    wait: bool,
    /// Wait, then download the proof, verify it here and write it to this file.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print JSON (the job as the API reports it) instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ProveArgs {
    #[command(flatten)]
    request: RequestArgs,
    /// A precompiled OpenCL program binary (.aocx for Intel FPGA SDK, .xclbin for
    /// AMD/Xilinx Vitis) to load instead of compiling the kernels from source; implies
    /// the opencl backend.
    #[arg(long, value_name = "FILE")]
    opencl_binary: Option<PathBuf>,
    /// Where to write the proof.
    #[arg(long)]
    out: PathBuf,
    /// Write the proof without verifying it first (by default a proof that does not
    /// verify under the default floor is an error and nothing is written).
    #[arg(long)]
    no_verify: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The service logs its jobs at `info`; the one-shot commands stay quiet.
    let default_filter = match cli.command {
        Command::Serve { .. } | Command::Node(_) => "info",
        Command::Devnet(_) => "warn",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default_filter.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    proofbox_prover::install_panic_hook();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes on one line.
fn one_line(e: &anyhow::Error) -> String {
    e.chain()
        .map(|c| c.to_string().replace('\n', " "))
        .collect::<Vec<_>>()
        .join(": ")
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Devices { json } => devices(json),
        Command::Prove(args) => {
            let req = args.request.request()?;
            let options = registry::OpenOptions {
                opencl_binary: args.opencl_binary.clone(),
            };
            let report = prove(
                &req,
                args.request.backend,
                args.request.device.as_deref(),
                &options,
                &args.out,
                !args.no_verify,
            )?;
            print_prove(&report, args.json);
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify { proof, floor, json } => verify::verify(&proof, floor, json),
        Command::Demo { out, json } => {
            let req = ProofRequest::new(CircuitId::Poseidon2, 14);
            let report = prove(
                &req,
                BackendChoice::Auto,
                None,
                &registry::OpenOptions::default(),
                &out,
                true,
            )?;
            print_prove(&report, json);
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve {
            listen,
            data_dir,
            config,
            init,
            store,
        } => serve(listen, data_dir, config, init, store),
        Command::Submit(args) => submit(args),
        Command::Node(cmd) => node::run(cmd),
        Command::Devnet(args) => devnet::run(args),
        Command::Status { id, server, json } => {
            let job = server.client()?.job(&id)?;
            print_job(&job, json);
            Ok(ExitCode::SUCCESS)
        }
        Command::Cancel { id, server, json } => {
            let job = server.client()?.cancel(&id)?;
            print_job(&job, json);
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(args) => bench::bench(args),
    }
}

fn serve(
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    file: Option<PathBuf>,
    init: bool,
    store: Option<String>,
) -> Result<ExitCode> {
    let mut config = proofbox_service::Config::from_file(file.as_deref())?;
    config.apply_env(|k| std::env::var(k).ok())?;
    if let Some(l) = listen {
        config.listen = l;
    }
    if let Some(d) = data_dir {
        config.data_dir = d;
    }
    config.init |= init;
    if let Some(s) = store {
        config.store = s;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(proofbox_service::serve(config, |service, addr| {
        let devices: Vec<_> = service.devices().iter().map(|d| d.id.as_str()).collect();
        let auth = match service.key_file() {
            Some(path) => format!("API key in {}", path.display()),
            None if service.config().keyless() => "no API key (keyless on loopback)".into(),
            None => format!("{} API key(s) configured", service.config().api_keys.len()),
        };
        println!(
            "proofbox: serving http://{addr} (data in {}; {}; devices {}; {auth})",
            service.config().data_dir.display(),
            service.store(),
            devices.join(", ")
        );
        let _ = std::io::stdout().flush();
    }))?;
    println!("proofbox: stopped");
    Ok(ExitCode::SUCCESS)
}

fn submit(args: SubmitArgs) -> Result<ExitCode> {
    let witness =
        args.request.circuit == CircuitId::StateTransition && args.request.input.is_some();
    let req = if witness {
        // A transition witness: its encoding, its Merkle paths and the chunk size are
        // checked by the service (422 `invalid_witness` or `invalid_request`); 0 asks
        // for the service's default largest proof.
        args.request.read(args.request.log_rows.unwrap_or(0))?
    } else {
        let req = args.request.request()?;
        req.validate()?;
        req
    };
    let job = SubmitJob {
        circuit: req.circuit.name().into(),
        log_rows: req.log_rows.into(),
        field: Some(req.field.name().into()),
        fri: Some(req.fri.name().into()),
        seed: Some(req.seed),
        input_base64: (!req.input.is_empty()).then(|| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(&req.input)
        }),
        backend: Some(args.request.backend.to_string()),
        device: args.request.device.clone(),
        priority: Some(args.priority),
    };
    let client = args.server.client()?;
    let key = args
        .idempotency_key
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let mut view = client.submit(&job, &key)?;
    if !args.wait && args.out.is_none() {
        if args.json {
            println!("{}", serde_json::to_string(&view)?);
        } else {
            println!("{}", view.id);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut shown = String::new();
    while !view.status.is_terminal() {
        let now = format!(
            "{}{}",
            view.status,
            view.stage
                .as_deref()
                .map(|s| format!(": {s}"))
                .unwrap_or_default()
        );
        if now != shown && !args.json {
            eprintln!("job {}: {now}", view.id);
            shown = now;
        }
        std::thread::sleep(Duration::from_millis(250));
        view = client.job(&view.id)?;
    }
    if view.status != JobStatus::Succeeded {
        if args.json {
            println!("{}", serde_json::to_string(&view)?);
        }
        return Err(anyhow!(
            "job {} {}{}",
            view.id,
            view.status,
            view.error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        ));
    }
    if let Some(out) = &args.out {
        let bytes = client.proof(&view.id)?;
        // One artifact, or the bundle of chained proofs of a witness job.
        Verifier::default()
            .verify_any_bytes(&bytes)
            .map_err(|e| anyhow!("the proof of job {} does not verify: {e}", view.id))?;
        std::fs::write(out, &bytes).with_context(|| format!("writing {}", out.display()))?;
        if !args.json {
            eprintln!(
                "job {}: proof verified, {} bytes written to {}",
                view.id,
                bytes.len(),
                out.display()
            );
        }
    }
    print_job(&view, args.json);
    Ok(ExitCode::SUCCESS)
}

fn print_job(j: &JobView, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string(j).expect("a job view serializes")
        );
        return;
    }
    let mut line = format!(
        "{} {}: {} 2^{} rows over {}",
        j.id, j.status, j.circuit, j.log_rows, j.field
    );
    if let Some(stage) = &j.stage {
        line.push_str(&format!(", stage {stage}"));
    }
    if let Some(d) = &j.device_used {
        line.push_str(&format!(", on {d}"));
    }
    if let Some(q) = j.queue_ms {
        line.push_str(&format!(", queued {q} ms"));
    }
    if let Some(p) = j.proving_ms {
        line.push_str(&format!(", proved in {p} ms"));
    }
    if let Some(b) = j.proof_bytes {
        line.push_str(&format!(", proof {b} bytes"));
    }
    line.push_str(&format!(", attempts {}", j.attempts));
    if let Some(e) = &j.error {
        line.push_str(&format!(", error: {e}"));
    }
    println!("{line}");
}

fn devices(json: bool) -> Result<ExitCode> {
    let reports = registry::reports();
    if json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    for r in &reports {
        if r.available {
            writeln!(out, "{}: available", r.backend)?;
        } else {
            writeln!(
                out,
                "{}: unavailable: {}",
                r.backend,
                r.reason.as_deref().unwrap_or("unknown")
            )?;
        }
        for d in &r.devices {
            let fields: Vec<_> = d.fields.iter().map(|f| f.name()).collect();
            let mut facts = vec![
                format!("{:?}", d.device_type).to_lowercase(),
                d.vendor.clone(),
            ];
            if d.compute_units > 0 {
                facts.push(format!("{} compute units", d.compute_units));
            }
            if d.memory_bytes > 0 {
                facts.push(format!(
                    "{:.1} GiB",
                    d.memory_bytes as f64 / (1u64 << 30) as f64
                ));
            }
            facts.push(format!("fields: {}", fields.join(", ")));
            if let Some(driver) = &d.driver {
                facts.push(format!("driver: {driver}"));
            }
            writeln!(out, "  {:<12} {} ({})", d.id, d.name, facts.join("; "))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

struct ProveReport {
    artifact: ProofArtifact,
    /// What the verifier said of the proof before it was written (`None` with
    /// `--no-verify`), and how long it took.
    verified: Option<(Verified, Duration)>,
    bytes: usize,
    backend: String,
    device: String,
    elapsed: Duration,
    out: PathBuf,
}

fn prove(
    req: &ProofRequest,
    backend: BackendChoice,
    device: Option<&str>,
    options: &registry::OpenOptions,
    out: &std::path::Path,
    check: bool,
) -> Result<ProveReport> {
    req.validate()?;
    let prover = registry::open_with(backend, device, options)?;
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed} {msg}").expect("valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    let label = format!(
        "proving {} 2^{} rows over {} on {}",
        req.circuit,
        req.log_rows,
        req.field,
        prover.device().id
    );
    bar.set_message(label.clone());
    let progress_bar = bar.clone();
    let progress = move |s: Stage| progress_bar.set_message(format!("{label}: {}", s.name()));
    let start = Instant::now();
    let artifact = prover.prove(req, Arc::new(progress));
    bar.finish_and_clear();
    let artifact = artifact?;
    let elapsed = start.elapsed();
    let bytes = artifact.to_bytes();
    let verified = if check {
        let start = Instant::now();
        let (_, v) = Verifier::default().verify_bytes(&bytes).map_err(|e| {
            anyhow!(
                "the proof made on {} does not verify ({e}); nothing was written",
                prover.device().id
            )
        })?;
        Some((v, start.elapsed()))
    } else {
        None
    };
    std::fs::write(out, &bytes).with_context(|| format!("writing {}", out.display()))?;
    Ok(ProveReport {
        artifact,
        verified,
        bytes: bytes.len(),
        backend: prover.backend_kind().to_string(),
        device: prover.device().id.clone(),
        elapsed,
        out: out.to_path_buf(),
    })
}

fn print_prove(r: &ProveReport, json: bool) {
    let a = &r.artifact;
    if json {
        println!(
            "{}",
            json!({
                "circuit": a.circuit,
                "field": a.field,
                "log_rows": a.log_rows,
                "fri": a.fri,
                "conjectured_security_bits": a.fri.conjectured_security_bits(),
                "backend": r.backend,
                "device": r.device,
                "prove_ms": r.elapsed.as_secs_f64() * 1e3,
                "proof_bytes": r.bytes,
                "out": r.out,
                "verified": r.verified.is_some(),
                "verify_ms": r.verified.as_ref().map(|(_, t)| t.as_secs_f64() * 1e3),
            })
        );
    } else {
        println!(
            "proved {} 2^{} rows over {} on {} in {:.2} s: {} ({} bytes)",
            a.circuit,
            a.log_rows,
            a.field,
            r.device,
            r.elapsed.as_secs_f64(),
            r.out.display(),
            r.bytes
        );
        match &r.verified {
            Some((v, t)) => println!(
                "verified in {:.1} ms ({} bits conjectured, floor {})",
                t.as_secs_f64() * 1e3,
                v.security_bits,
                v.min_security_bits
            ),
            None => println!("not verified (--no-verify)"),
        }
    }
}
