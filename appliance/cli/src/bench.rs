//! `proofbox bench` and `proofbox bench compare`: arguments, the progress bar and the
//! closing lines. The suite itself is `proofbox_bench`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use proofbox_bench::{Event, RunConfig, Status, Suite, open_devices, output};
use proofbox_prover::BackendKind;
use tokio::signal::unix::SignalKind;

/// `all` or one backend kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendSel {
    All,
    Kind(BackendKind),
}

impl std::str::FromStr for BackendSel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("all") {
            Ok(Self::All)
        } else {
            s.parse::<BackendKind>().map(Self::Kind).map_err(|_| {
                format!("unknown backend {s:?} (expected all, cpu, cuda, wgpu or opencl)")
            })
        }
    }
}

/// `all` or one suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuiteSel {
    All,
    One(Suite),
}

impl std::str::FromStr for SuiteSel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("all") {
            Ok(Self::All)
        } else {
            s.parse::<Suite>().map(Self::One)
        }
    }
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    #[command(subcommand)]
    command: Option<BenchCommand>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Put reports (results.json of earlier runs) side by side, with the ratio of each
    /// to the first; print the table and write compare.md and compare.csv.
    Compare {
        /// Two or more results.json files; the first is the baseline.
        #[arg(required = true, num_args = 2..)]
        reports: Vec<PathBuf>,
        /// Folder for compare.md and compare.csv.
        #[arg(long, default_value = "proofbox-bench-compare")]
        out: PathBuf,
    },
}

#[derive(Args)]
struct RunArgs {
    /// Backends to measure: all, or a comma-separated list of cpu, cuda, wgpu, opencl.
    #[arg(long, default_value = "all", value_delimiter = ',')]
    backend: Vec<BackendSel>,
    /// Only these devices (ids as `proofbox devices` lists them; repeat or comma-separate).
    #[arg(long, value_delimiter = ',')]
    device: Vec<String>,
    /// Suites: all, or a comma-separated list of kernels, proofs, state.
    #[arg(long, default_value = "all", value_delimiter = ',')]
    suite: Vec<SuiteSel>,
    /// The quick set: a small fixed subset that runs in well under a minute.
    #[arg(long)]
    quick: bool,
    /// Only workloads whose id matches PATTERN (`*` matches anything, slashes too;
    /// repeat for several), e.g. 'kernels/*/koalabear/log16/w16'.
    #[arg(long, value_name = "PATTERN")]
    only: Vec<String>,
    /// Folder for results.json, results.csv, summary.md and charts/.
    #[arg(long, default_value = "proofbox-bench")]
    out: PathBuf,
    /// Seed of every input (recorded in the report), below 2^53.
    #[arg(long, value_parser = clap::value_parser!(u64).range(..=proofbox_bench::workload::MAX_SEED))]
    seed: Option<u64>,
    /// Untimed, checked calls before the repetitions [default: 1].
    #[arg(long)]
    warmup: Option<u32>,
    /// Timed, checked calls [default: 5, or 3 with --quick].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    repetitions: Option<u32>,
    /// The machine's label in the reports [default: the host name].
    #[arg(long)]
    machine: Option<String>,
    /// List the selected workloads and exit.
    #[arg(long)]
    list: bool,
}

pub fn bench(args: BenchArgs) -> Result<ExitCode> {
    match args.command {
        Some(BenchCommand::Compare { reports, out }) => compare(&reports, &out),
        None => run(args.run),
    }
}

fn compare(reports: &[PathBuf], out: &std::path::Path) -> Result<ExitCode> {
    let c = proofbox_bench::compare::compare_files(reports)?;
    print!("{}", c.text());
    let [md, csv] = c.write(out)?;
    eprintln!("wrote {} and {}", md.display(), csv.display());
    Ok(ExitCode::SUCCESS)
}

fn run(args: RunArgs) -> Result<ExitCode> {
    let mut config = RunConfig::new(args.quick);
    config.backends = if args.backend.contains(&BackendSel::All) {
        BackendKind::ALL.to_vec()
    } else {
        args.backend
            .iter()
            .filter_map(|b| match b {
                BackendSel::Kind(k) => Some(*k),
                BackendSel::All => None,
            })
            .collect()
    };
    config.suites = if args.suite.contains(&SuiteSel::All) {
        Suite::ALL.to_vec()
    } else {
        args.suite
            .iter()
            .filter_map(|s| match s {
                SuiteSel::One(s) => Some(*s),
                SuiteSel::All => None,
            })
            .collect()
    };
    config.filters = args.only.clone();
    if let Some(s) = args.seed {
        config.seed = s;
    }
    if let Some(w) = args.warmup {
        config.warmup = w;
    }
    if let Some(r) = args.repetitions {
        config.repetitions = r;
    }
    config.machine = args.machine.clone();
    config.command = std::env::args().collect::<Vec<_>>().join(" ");

    if args.list {
        for w in config.workloads() {
            println!("{}", w.id);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let unknown = proofbox_bench::device::unknown_devices(&config.backends, &args.device);
    if let Some(d) = unknown.first() {
        bail!(proofbox_bench::BenchError::UnknownDevice {
            device: d.clone(),
            backends: config
                .backends
                .iter()
                .map(|b| b.name())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }

    let opened = open_devices(&config.backends, &args.device);
    let bar = ProgressBar::hidden();
    let observer = |e: Event<'_>| match e {
        Event::SkippedBackend(s) => bar.suspend(|| {
            let what = match &s.device {
                Some(d) => format!("{} ({d})", s.backend),
                None => s.backend.to_string(),
            };
            eprintln!("skipped {what}: {}", s.reason)
        }),
        Event::Start { total } => {
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            bar.set_length(total as u64);
            bar.set_style(
                ProgressStyle::with_template("{bar:30} {pos}/{len} {elapsed_precise} {msg}")
                    .expect("valid template"),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
        }
        Event::Begin { workload, device } => bar.set_message(format!("{workload} on {device}")),
        Event::Done(m) => {
            match m.status {
                Status::Failed => bar.suspend(|| {
                    eprintln!(
                        "FAILED {} on {}: {}",
                        m.workload,
                        m.device,
                        m.reason.as_deref().unwrap_or("")
                    )
                }),
                Status::Skipped => bar.suspend(|| {
                    eprintln!(
                        "skipped {} on {}: {}",
                        m.workload,
                        m.device,
                        m.reason.as_deref().unwrap_or("")
                    )
                }),
                Status::Passed => {}
            }
            bar.inc(1);
        }
    };
    let stop = interrupt_flag(bar.clone());
    let report = proofbox_bench::run_until(&config, opened, &observer, &stop);
    bar.finish_and_clear();
    let report = report?;
    let written = output::write_all(&report, &args.out)?;
    let count = |s: Status| report.measurements.iter().filter(|m| m.status == s).count();
    let (passed, failed, skipped) = (
        count(Status::Passed),
        count(Status::Failed),
        count(Status::Skipped),
    );
    println!(
        "bench: {passed} passed, {failed} failed, {skipped} skipped; results in {} ({}, {}, {}, {} charts)",
        args.out.display(),
        output::JSON_FILE,
        output::CSV_FILE,
        output::MARKDOWN_FILE,
        written.charts.len()
    );
    if failed > 0 {
        eprintln!(
            "error: {failed} measurement(s) failed their correctness check or errored; no time is reported for them"
        );
        return Ok(ExitCode::FAILURE);
    }
    if report.run.interrupted {
        eprintln!("bench: interrupted; the results hold the measurements made until then");
        return Ok(ExitCode::from(130));
    }
    Ok(ExitCode::SUCCESS)
}

/// A flag set by the first Ctrl-C (the run then stops after the workload in
/// progress and writes what it measured); a second Ctrl-C exits at once.
fn interrupt_flag(bar: ProgressBar) -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let set = flag.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    match runtime {
        Ok(runtime) => {
            // Registered before the run starts, so no Ctrl-C falls through to the
            // default action.
            let first =
                runtime.block_on(async { tokio::signal::unix::signal(SignalKind::interrupt()) });
            match first {
                Ok(mut signals) => {
                    std::thread::spawn(move || {
                        runtime.block_on(async {
                            if signals.recv().await.is_some() {
                                set.store(true, Ordering::SeqCst);
                                bar.suspend(|| {
                                    eprintln!(
                                        "interrupted: finishing the workload in progress, then writing the results (Ctrl-C again to quit now)"
                                    )
                                });
                                if signals.recv().await.is_some() {
                                    std::process::exit(130);
                                }
                            }
                        })
                    });
                }
                Err(e) => eprintln!("warning: Ctrl-C will end the run without results: {e}"),
            }
        }
        Err(e) => eprintln!("warning: Ctrl-C will end the run without results: {e}"),
    }
    flag
}
