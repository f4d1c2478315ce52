//! The runner: for each workload, inputs from the seed, the CPU backend's reference,
//! then on every device warm-up calls and timed repetitions, each output checked.

mod check;
mod fit;

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Instant, SystemTime};

use proofbox_backend_api::{
    Backend, BackendError, BackendKind, DeviceInfo, FieldId, TransferStats,
};
use proofbox_backend_cpu::CpuBackend;
use proofbox_prover::transition::{self, TransitionInput, TransitionStatement};
use proofbox_prover::{ProofRequest, ProveError, verify_bytes};
use proofbox_state::Parallelism;

use crate::device::{BenchDevice, Opened, SkippedBackend, kernel_on};
use crate::env::{self, reset_peak_rss, self_status};
use crate::error::BenchError;
use crate::inputs;
use crate::report::{
    Measurement, MemoryUse, Report, RunInfo, SCHEMA_VERSION, Stats, Status, Throughput,
};
use crate::workload::{
    KernelOp, PROOF_FRI, STATE_PRESTATE_KEYS, SUITE_VERSION, Spec, Suite, Workload, matches,
    quick_workloads, standard_workloads,
};

pub use check::check_kernel_output;
use fit::{does_not_fit, needs};

/// What to run and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunConfig {
    pub suites: Vec<Suite>,
    /// The backends asked for (recorded; the devices are opened by the caller).
    pub backends: Vec<BackendKind>,
    /// The quick set instead of the standard one.
    pub quick: bool,
    /// `*` patterns on workload ids; empty runs every workload of the set.
    pub filters: Vec<String>,
    /// At most [`crate::workload::MAX_SEED`].
    pub seed: u64,
    /// Untimed, checked calls before the repetitions.
    pub warmup: u32,
    /// Timed, checked calls.
    pub repetitions: u32,
    /// The machine's label in the reports (default: the host name).
    pub machine: Option<String>,
    /// The command line, recorded as given.
    pub command: String,
    /// Host memory the runner may plan to use, instead of `MemAvailable` (tests).
    pub host_memory_limit: Option<u64>,
}

/// The seed of a run when none is given.
pub const DEFAULT_SEED: u64 = 0x5EED_2026;

impl RunConfig {
    /// The standard (or quick) defaults: every suite, warm-up 1, 5 repetitions (3 for
    /// the quick set).
    pub fn new(quick: bool) -> Self {
        Self {
            suites: Suite::ALL.to_vec(),
            backends: BackendKind::ALL.to_vec(),
            quick,
            filters: Vec::new(),
            seed: DEFAULT_SEED,
            warmup: 1,
            repetitions: if quick { 3 } else { 5 },
            machine: None,
            command: String::new(),
            host_memory_limit: None,
        }
    }

    /// The workloads this configuration selects, in run order.
    pub fn workloads(&self) -> Vec<Workload> {
        let set = if self.quick {
            quick_workloads()
        } else {
            standard_workloads()
        };
        set.into_iter()
            .filter(|w| self.suites.contains(&w.suite()))
            .filter(|w| self.filters.is_empty() || self.filters.iter().any(|p| matches(p, &w.id)))
            .collect()
    }
}

/// What the runner tells its caller as it goes.
#[derive(Debug)]
pub enum Event<'a> {
    /// The run starts: `total` measurements planned.
    Start { total: usize },
    /// A backend or device that will not be measured.
    SkippedBackend(&'a SkippedBackend),
    /// A measurement starts.
    Begin { workload: &'a str, device: &'a str },
    /// A measurement ended (passed, failed or skipped).
    Done(&'a Measurement),
}

/// Receives [`Event`]s (the CLI draws a progress bar from them).
pub trait Observer {
    fn event(&self, event: Event<'_>);
}

impl Observer for () {
    fn event(&self, _: Event<'_>) {}
}

impl<F: Fn(Event<'_>)> Observer for F {
    fn event(&self, event: Event<'_>) {
        self(event)
    }
}

/// Timed calls of one measurement and what they saw.
struct Calls {
    samples: Vec<f64>,
    /// Kernel time of each timed call, when the device measured every one.
    device_samples: Option<Vec<f64>>,
    memory: MemoryUse,
    /// What the last call moved (see [`BenchDevice::transfer_stats`]).
    transfers: Option<TransferStats>,
    proof_bytes: Option<u64>,
}

/// How one call ended: its time, or why the measurement stops.
enum CallError {
    Wrong(String),
    Skip(String),
    Error(String),
}

/// Runs `warmup` untimed and `reps` timed calls of `call` (which checks its own
/// output), stopping at the first wrong result or error. The device's kernel time is
/// read around every call (see [`BenchDevice::take_kernel_time`]).
fn repeat(
    warmup: u32,
    reps: u32,
    device: &dyn BenchDevice,
    mut call: impl FnMut() -> Result<(f64, Option<u64>), CallError>,
) -> Result<Calls, (u32, CallError)> {
    let total = warmup + reps;
    let mut samples = Vec::with_capacity(reps as usize);
    let mut device_samples = Some(Vec::with_capacity(reps as usize));
    let mut memory = MemoryUse::default();
    let mut transfers = None;
    let mut proof_bytes = None;
    for i in 0..total {
        if i == warmup {
            memory.host_rss_before_bytes = self_status("VmRSS");
            if !reset_peak_rss() {
                memory.host_rss_before_bytes = None;
            }
        }
        let last = i + 1 == total;
        let counted_from = device.transfer_stats();
        let kernel_time = |i: u32| {
            device
                .take_kernel_time()
                .map_err(|e| (i + 1, backend_error(e)))
        };
        // Whatever ran before this call is not its kernel time.
        kernel_time(i)?;
        let (t, bytes) = call().map_err(|e| (i + 1, e))?;
        let kernels = kernel_time(i)?;
        if last {
            transfers = Some(device.transfer_stats().since(&counted_from));
        }
        if i >= warmup {
            samples.push(t);
            match (kernels, device_samples.as_mut()) {
                (Some(k), Some(d)) => d.push(k.as_secs_f64()),
                _ => device_samples = None,
            }
        }
        proof_bytes = bytes.or(proof_bytes);
    }
    if memory.host_rss_before_bytes.is_some() {
        memory.host_peak_rss_bytes = self_status("VmHWM");
    }
    Ok(Calls {
        samples,
        device_samples,
        memory,
        transfers,
        proof_bytes,
    })
}

fn backend_error(e: BackendError) -> CallError {
    match e {
        BackendError::OutOfMemory { .. } => CallError::Skip(e.to_string()),
        BackendError::Unavailable { .. } => CallError::Skip(e.to_string()),
        other => CallError::Error(other.to_string()),
    }
}

/// The runner's state across workloads.
struct Run<'a> {
    config: &'a RunConfig,
    observer: &'a dyn Observer,
    reference: CpuBackend,
    measurements: Vec<Measurement>,
    /// Whether each device (by id) measures kernel time.
    timed: HashMap<String, bool>,
}

impl Run<'_> {
    fn base(&self, w: &Workload, device: &dyn BenchDevice, check: &str) -> Measurement {
        self.base_on(w, device.kind(), device.info(), check)
    }

    fn base_on(
        &self,
        w: &Workload,
        kind: BackendKind,
        info: &DeviceInfo,
        check: &str,
    ) -> Measurement {
        let timed = self.timed.get(&info.id).copied().unwrap_or(false);
        let note = match w.spec {
            Spec::StateApply { .. } => {
                "the state tree runs on the host without a backend: end-to-end only".to_string()
            }
            Spec::Proof { .. } | Spec::StateTransition { .. } if timed => format!(
                "time the device spent in the backend's kernels during the proof (the rest of the \
                 proof runs on the host): {}",
                env::device_timing(kind, timed)
            ),
            _ => env::device_timing(kind, timed).to_string(),
        };
        Measurement {
            workload: w.id.clone(),
            suite: w.suite(),
            operation: w.operation().into(),
            field: w.field(),
            log_rows: w.log_rows(),
            width: w.width(),
            circuit: w.circuit(),
            updates: w.updates(),
            size: w.size(),
            backend: kind,
            device: info.id.clone(),
            device_name: info.name.clone(),
            status: Status::Skipped,
            reason: None,
            check: check.into(),
            seed: w.seed(self.config.seed),
            warmup: self.config.warmup,
            repetitions: self.config.repetitions,
            end_to_end: None,
            device_time: None,
            device_time_note: note,
            throughput: None,
            memory: MemoryUse::default(),
            proof_bytes: None,
            data_movement: None,
        }
    }

    fn push(&mut self, m: Measurement) {
        self.observer.event(Event::Done(&m));
        self.measurements.push(m);
    }

    /// Opens the measurement of a proof workload on `d`: the record with its memory
    /// estimate and the `Begin` event. `None` once it is recorded as skipped: `d`
    /// lacks `field`, or the workload does not fit.
    fn begin_proof(
        &mut self,
        w: &Workload,
        d: &dyn BenchDevice,
        check: &str,
        field: FieldId,
    ) -> Option<Measurement> {
        let mut m = self.base(w, d, check);
        let need = needs(w, d);
        m.memory.host_estimate_bytes = need.host;
        m.memory.device_estimate_bytes = need.device;
        self.observer.event(Event::Begin {
            workload: &w.id,
            device: &d.info().id,
        });
        if !d.info().fields.contains(&field) {
            self.skip(m, format!("the device does not support {field}"));
            return None;
        }
        if let Some(why) = does_not_fit(need, d, self.config.host_memory_limit) {
            self.skip(m, why);
            return None;
        }
        Some(m)
    }

    fn skip(&mut self, mut m: Measurement, reason: String) {
        m.status = Status::Skipped;
        m.reason = Some(reason);
        self.push(m);
    }

    /// Records the outcome of [`repeat`].
    fn finish(
        &mut self,
        w: &Workload,
        mut m: Measurement,
        outcome: Result<Calls, (u32, CallError)>,
    ) {
        let total = self.config.warmup + self.config.repetitions;
        match outcome {
            Ok(calls) => {
                let stats = Stats::of(&calls.samples);
                let (work, unit) = w.work();
                m.status = Status::Passed;
                m.throughput = stats.as_ref().map(|s| Throughput {
                    value: work / s.median_s,
                    unit: unit.into(),
                });
                if !matches!(w.spec, Spec::StateApply { .. }) {
                    m.device_time = calls.device_samples.as_deref().and_then(Stats::of);
                    m.data_movement = calls.transfers;
                }
                m.end_to_end = stats;
                m.memory.host_rss_before_bytes = calls.memory.host_rss_before_bytes;
                m.memory.host_peak_rss_bytes = calls.memory.host_peak_rss_bytes;
                m.proof_bytes = calls.proof_bytes;
            }
            Err((call, CallError::Wrong(why))) => {
                m.status = Status::Failed;
                m.reason = Some(format!("wrong result on call {call} of {total}: {why}"));
            }
            Err((call, CallError::Error(why))) => {
                m.status = Status::Failed;
                m.reason = Some(format!("error on call {call} of {total}: {why}"));
            }
            Err((_, CallError::Skip(why))) => {
                m.status = Status::Skipped;
                m.reason = Some(why);
            }
        }
        self.push(m);
    }

    fn kernel(&mut self, w: &Workload, devices: &[Box<dyn BenchDevice>]) {
        let Spec::Kernel {
            op,
            field,
            log_rows,
            width,
        } = w.spec
        else {
            unreachable!("a kernel workload")
        };
        let check = match op {
            KernelOp::Lde => "bit-identical to the CPU backend: every LDE value",
            KernelOp::Commit => "bit-identical to the CPU backend: every digest of every layer",
            KernelOp::LdeCommit => {
                "bit-identical to the CPU backend: every LDE value, every digest of every layer"
            }
        };
        // Decide first, so that inputs are drawn only if some device runs.
        let mut plan = Vec::new();
        for d in devices {
            let mut m = self.base(w, d.as_ref(), check);
            let need = needs(w, d.as_ref());
            m.memory.host_estimate_bytes = need.host;
            m.memory.device_estimate_bytes = need.device;
            if !d.info().fields.contains(&field) {
                self.observer.event(Event::Begin {
                    workload: &w.id,
                    device: &d.info().id,
                });
                self.skip(m, format!("the device does not support {field}"));
            } else if let Some(why) = does_not_fit(need, d.as_ref(), self.config.host_memory_limit)
            {
                self.observer.event(Event::Begin {
                    workload: &w.id,
                    device: &d.info().id,
                });
                self.skip(m, why);
            } else {
                plan.push((d, m));
            }
        }
        if plan.is_empty() {
            return;
        }
        let input = inputs::field_matrix(field, w.seed(self.config.seed), 1 << log_rows, width);
        let reference = kernel_on(&self.reference, op, &input);
        for (d, m) in plan {
            self.observer.event(Event::Begin {
                workload: &w.id,
                device: &d.info().id,
            });
            let outcome = match &reference {
                Ok((_, want)) => repeat(
                    self.config.warmup,
                    self.config.repetitions,
                    d.as_ref(),
                    || {
                        let (t, got) = d.kernel(op, &input).map_err(backend_error)?;
                        check_kernel_output(&got, want).map_err(CallError::Wrong)?;
                        Ok((t.as_secs_f64(), None))
                    },
                ),
                Err(e) => Err((
                    0,
                    CallError::Error(format!("the CPU reference failed: {e}")),
                )),
            };
            self.finish(w, m, outcome);
        }
    }

    fn proof(&mut self, w: &Workload, devices: &[Box<dyn BenchDevice>]) {
        let Spec::Proof {
            circuit,
            field,
            log_rows,
        } = w.spec
        else {
            unreachable!("a proof workload")
        };
        let req = ProofRequest {
            circuit,
            field,
            log_rows,
            fri: PROOF_FRI,
            seed: w.seed(self.config.seed),
            input: Vec::new(),
        };
        for d in devices {
            let Some(m) = self.begin_proof(
                w,
                d.as_ref(),
                "every proof verified with stock Plonky3 (verify_bytes)",
                field,
            ) else {
                continue;
            };
            let outcome = repeat(
                self.config.warmup,
                self.config.repetitions,
                d.as_ref(),
                || {
                    let start = Instant::now();
                    let artifact = d.prove(&req).map_err(prove_error)?;
                    let t = start.elapsed().as_secs_f64();
                    let bytes = artifact.to_bytes();
                    let verified = verify_bytes(&bytes)
                        .map_err(|e| CallError::Wrong(format!("the proof does not verify: {e}")))?;
                    if verified.circuit != circuit
                        || verified.field != field
                        || verified.log_rows != log_rows
                    {
                        return Err(CallError::Wrong("the proof is of another statement".into()));
                    }
                    Ok((t, Some(bytes.len() as u64)))
                },
            );
            self.finish(w, m, outcome);
        }
    }

    fn state_apply(&mut self, w: &Workload, devices: &[Box<dyn BenchDevice>]) {
        let Spec::StateApply { updates } = w.spec else {
            unreachable!("a state workload")
        };
        let check = "root equals a single-threaded recomputation (Parallelism::Sequential)";
        let Some(cpu) = devices.iter().find(|d| d.kind() == BackendKind::Cpu) else {
            // Recorded against the CPU, the only place it runs.
            let info = Backend::device(&self.reference).clone();
            let m = self.base_on(w, BackendKind::Cpu, &info, check);
            self.observer.event(Event::Begin {
                workload: &w.id,
                device: &m.device,
            });
            self.skip(
                m,
                "the state tree runs on the host CPU only; choose the cpu backend to measure it"
                    .into(),
            );
            return;
        };
        let mut m = self.base(w, cpu.as_ref(), check);
        let need = needs(w, cpu.as_ref());
        m.memory.host_estimate_bytes = need.host;
        self.observer.event(Event::Begin {
            workload: &w.id,
            device: &cpu.info().id,
        });
        if let Some(why) = does_not_fit(need, cpu.as_ref(), self.config.host_memory_limit) {
            self.skip(m, why);
            return;
        }
        let (tree, diff) =
            inputs::state_and_diff(w.seed(self.config.seed), STATE_PRESTATE_KEYS, updates);
        let expected = tree.clone().apply(&diff, Parallelism::Sequential);
        let outcome = repeat(
            self.config.warmup,
            self.config.repetitions,
            cpu.as_ref(),
            || {
                let mut t = tree.clone();
                let start = Instant::now();
                let root = t.apply(&diff, Parallelism::Parallel);
                let elapsed = start.elapsed().as_secs_f64();
                drop(t);
                if root != expected {
                    return Err(CallError::Wrong(format!(
                        "root {root:?}, expected {expected:?}"
                    )));
                }
                Ok((elapsed, None))
            },
        );
        self.finish(w, m, outcome);
    }

    /// The state-transition proofs: the witnesses of the seeded diff of `state/apply`
    /// (`inputs::state_and_diff`) built once on the host, in chunks of at most
    /// `transition::DEFAULT_CHUNK_UPDATES` updates (10k updates: 3 chained proofs of
    /// at most 2^17 rows), then proved on each device; every bundle is checked against the
    /// statement computed natively (roots, diff commitment, block number) and
    /// verified, chain included.
    fn run_state_transition(&mut self, w: &Workload, devices: &[Box<dyn BenchDevice>]) {
        let Spec::StateTransition { updates } = w.spec else {
            unreachable!("a state-transition workload")
        };
        let mut prepared: Option<(Vec<TransitionInput>, TransitionStatement)> = None;
        for d in devices {
            let Some(m) = self.begin_proof(
                w,
                d.as_ref(),
                "proof verified against the natively computed roots and diff commitment",
                FieldId::KoalaBear,
            ) else {
                continue;
            };
            let (chunks, statement) = prepared.get_or_insert_with(|| {
                let (mut tree, diff) =
                    inputs::state_and_diff(w.seed(self.config.seed), STATE_PRESTATE_KEYS, updates);
                let chunks = TransitionInput::build_chunks(
                    &mut tree,
                    diff,
                    updates as u64,
                    transition::DEFAULT_CHUNK_UPDATES,
                );
                let statement =
                    transition::statement_of_chunks(&chunks).expect("witnesses from the tree");
                (chunks, statement)
            });
            let outcome = repeat(
                self.config.warmup,
                self.config.repetitions,
                d.as_ref(),
                || {
                    let start = Instant::now();
                    let bundle = d.prove_transition(chunks).map_err(prove_error)?;
                    let t = start.elapsed().as_secs_f64();
                    transition::verify_transition_chunks(&bundle, statement)
                        .map_err(|e| CallError::Wrong(format!("the proof does not verify: {e}")))?;
                    Ok((t, Some(bundle.to_bytes().len() as u64)))
                },
            );
            self.finish(w, m, outcome);
        }
    }
}

/// How a failed proof counts: a backend's failure as its error, a field the device
/// lacks as a skip, anything else as an error.
fn prove_error(e: ProveError) -> CallError {
    match e {
        ProveError::Backend(b) => backend_error(b),
        ProveError::UnsupportedField { .. } => CallError::Skip(e.to_string()),
        other => CallError::Error(other.to_string()),
    }
}

fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// Measures the workloads `config` selects on the devices `opened`, and returns the
/// report. Wrong results are failed measurements in the report, not errors; errors
/// are for runs that cannot start (no workload, no device).
pub fn run(
    config: &RunConfig,
    opened: Opened,
    observer: &dyn Observer,
) -> Result<Report, BenchError> {
    run_until(config, opened, observer, &AtomicBool::new(false))
}

/// [`run`], stopping early once `stop` is set: the workload in progress finishes, the
/// rest are not run, and the report (marked `interrupted`) holds what was measured.
pub fn run_until(
    config: &RunConfig,
    opened: Opened,
    observer: &dyn Observer,
    stop: &AtomicBool,
) -> Result<Report, BenchError> {
    let workloads = config.workloads();
    if workloads.is_empty() {
        return Err(BenchError::NoWorkloads {
            filters: if config.filters.is_empty() {
                format!(
                    "suites {}",
                    config
                        .suites
                        .iter()
                        .map(|s| s.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            } else {
                config.filters.join(", ")
            },
        });
    }
    for s in &opened.skipped {
        observer.event(Event::SkippedBackend(s));
    }
    if opened.devices.is_empty() {
        return Err(BenchError::NoDevices {
            reasons: opened
                .skipped
                .iter()
                .map(|s| format!("{}: {}", s.backend, s.reason))
                .collect::<Vec<_>>()
                .join("; "),
        });
    }
    let devices = &opened.devices;
    let total: usize = workloads
        .iter()
        .map(|w| match w.spec {
            Spec::StateApply { .. } => 1,
            _ => devices.len(),
        })
        .sum();
    observer.event(Event::Start { total });
    let started_at = now();
    let timed: Vec<bool> = devices.iter().map(|d| d.set_kernel_timing(true)).collect();
    let environment = env::capture(config.machine.as_deref(), devices, &timed);
    let mut run = Run {
        config,
        observer,
        reference: CpuBackend::new(),
        measurements: Vec::new(),
        timed: devices
            .iter()
            .zip(&timed)
            .map(|(d, &t)| (d.info().id.clone(), t))
            .collect(),
    };
    let mut interrupted = false;
    for w in &workloads {
        if stop.load(Ordering::SeqCst) {
            interrupted = true;
            break;
        }
        match w.spec {
            Spec::Kernel { .. } => run.kernel(w, devices),
            Spec::Proof { .. } => run.proof(w, devices),
            Spec::StateApply { .. } => run.state_apply(w, devices),
            Spec::StateTransition { .. } => run.run_state_transition(w, devices),
        }
    }
    for d in devices {
        d.set_kernel_timing(false);
    }
    Ok(Report {
        schema_version: SCHEMA_VERSION.into(),
        suite_version: SUITE_VERSION,
        run: RunInfo {
            started_at,
            finished_at: now(),
            seed: config.seed,
            quick: config.quick,
            suites: config.suites.clone(),
            backends: config.backends.clone(),
            filters: config.filters.clone(),
            warmup: config.warmup,
            repetitions: config.repetitions,
            command: config.command.clone(),
            interrupted,
        },
        environment,
        skipped_backends: opened.skipped,
        measurements: run.measurements,
    })
}
