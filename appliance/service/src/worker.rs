//! Workers: dedicated threads (never the async runtime) that take jobs from the store
//! in priority then arrival order and prove them, `workers_per_device` per device.
//!
//! A failure of one proof (a backend error, a prover error, even a panic) ends that
//! attempt only: the job is retried, sent to the CPU, or failed; the process goes on.
//!
//! No proof is stored unchecked: every proof is verified (`proofbox-verifier`, under
//! the configured floor) from the very bytes that would be stored before its job
//! becomes `succeeded`; a state transition with a witness is proved as a bundle of
//! chained proofs ([`crate::transition`]), which must also state exactly the statement
//! stored at submission. A proof that does not verify marks its device faulty (it takes
//! no more jobs; `/v1/devices`, `/readyz`, the `proofbox_device_faults_total` metric
//! and a log line naming device and job say so), and the job is retried, on the CPU
//! where fallback is on.

use std::collections::{BTreeMap, HashMap};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use proofbox_backend_api::{BackendKind, FieldId};
use proofbox_prover::{CircuitId, DynProver, ProveError, Stage};
use proofbox_verifier::{TransitionProof, Verifier, VerifyError};

use crate::fleet::Capacity;
use crate::store::{
    Claimant, Finished, JobRecord, JobStore, Outcome, ROUTE_ANY, Recovery, StoreError,
};
use crate::transition;
use crate::types::TransitionStatementView;

/// A device this appliance proves on.
#[derive(Clone)]
pub struct DeviceSlot {
    pub id: String,
    pub kind: BackendKind,
    pub fields: Vec<FieldId>,
    pub workers: usize,
    pub prover: Arc<dyn DynProver>,
}

impl DeviceSlot {
    /// Whether a worker of this device may take a job with `route`.
    pub fn accepts(&self, route: &str) -> bool {
        route == ROUTE_ANY
            || route.strip_prefix("backend:") == Some(self.kind.name())
            || route.strip_prefix("device:") == Some(self.id.as_str())
    }

    /// The largest size of each shape this device takes ([`Capacity::of`]), capped at
    /// `max_log_rows`.
    pub fn capacity(&self, max_log_rows: u8) -> Capacity {
        Capacity::of(
            self.prover.device(),
            proofbox_prover::memory::host_memory_bytes(),
            max_log_rows,
        )
    }

    /// Every route a worker of this device takes ([`DeviceSlot::accepts`]).
    pub fn routes(&self) -> [String; 3] {
        [
            ROUTE_ANY.to_string(),
            format!("backend:{}", self.kind.name()),
            format!("device:{}", self.id),
        ]
    }
}

/// Retry and checking policy.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub max_attempts: u32,
    /// Send the next attempt of an `auto` job that failed on a device to the CPU
    /// (set only when the appliance has a CPU device).
    pub fallback_to_cpu: bool,
    /// What every proof must pass before its job succeeds.
    pub verifier: Verifier,
    /// Deadline of one attempt at up to 2^16 rows, in seconds; scaled by
    /// `rows / 2^16` above ([`Policy::deadline`]).
    pub job_deadline_secs: u64,
}

impl Policy {
    /// What follows a failed attempt (`attempts` so far, on a device of `kind`, for a
    /// job routed `route`): failed after `max_attempts`; else queued again, on the CPU
    /// when fallback is on and the job let the appliance choose.
    pub(crate) fn after_failure(
        &self,
        attempts: u32,
        kind: BackendKind,
        route: &str,
        error: String,
        proving_ms: u64,
    ) -> Outcome {
        if attempts >= self.max_attempts {
            Outcome::Failed { error, proving_ms }
        } else if self.fallback_to_cpu && kind != BackendKind::Cpu && route == ROUTE_ANY {
            Outcome::Retry {
                error,
                route: Some(format!("backend:{}", BackendKind::Cpu.name())),
            }
        } else {
            Outcome::Retry { error, route: None }
        }
    }

    /// The deadline of one attempt at a proof of `2^log_rows` rows.
    pub fn deadline(&self, log_rows: u8) -> Duration {
        let scale = 1u64 << log_rows.saturating_sub(16).min(16);
        Duration::from_secs(self.job_deadline_secs.saturating_mul(scale))
    }

    /// The deadline of one attempt at `rec`: for a state transition with a witness,
    /// that of its largest chunk's proof times its chunks.
    pub fn deadline_of(&self, rec: &JobRecord) -> Duration {
        match &rec.statement {
            Some(s) => self
                .deadline(s.rows_per_chunk.trailing_zeros() as u8)
                .saturating_mul(s.chunks.max(1)),
            None => self.deadline(rec.log_rows),
        }
    }

    /// Verifies the proof bytes of `rec` with the policy's verifier: an artifact, or
    /// for a state transition with a witness a bundle, which must state what `rec`
    /// names (its statement stored at submission).
    pub fn verify(&self, rec: &JobRecord, proof: &[u8]) -> Result<(), VerifyError> {
        let Some(stored) = witness_statement(rec) else {
            return self.verifier.verify_bytes(proof).map(|_| ());
        };
        let verified = self
            .verifier
            .verify_bundle(&TransitionProof::from_bytes(proof)?)?;
        match verified.transition {
            Some(s)
                if transition::states(stored, &s) && verified.proofs == stored.chunks as usize =>
            {
                Ok(())
            }
            stated => Err(VerifyError::Rejected(format!(
                "the bundle ({} proofs) states {}, not the statement of the job's witness \
                 ({} chunks)",
                verified.proofs,
                stated.map_or("no state transition".into(), |s| format!(
                    "pre_root {}, post_root {}, diff_commitment {}, block {}",
                    transition::hex(&s.pre_root),
                    transition::hex(&s.post_root),
                    transition::hex(&s.diff_commitment),
                    s.block_number
                )),
                stored.chunks
            ))),
        }
    }
}

/// The statement of a state transition with a witness, stored at submission.
fn witness_statement(rec: &JobRecord) -> Option<&TransitionStatementView> {
    rec.statement
        .as_ref()
        .filter(|_| rec.circuit == CircuitId::StateTransition && rec.input_len > 0)
}

/// An attempt in progress, as the deadline watchdog sees it.
struct Attempt {
    seq: u64,
    attempts: u32,
    route: String,
    device: String,
    kind: BackendKind,
    deadline: Instant,
    allowed: Duration,
}

/// What workers and the API share: the store, live stages, the wake-up signal.
pub struct Hub {
    pub store: Arc<dyn JobStore>,
    pub policy: Policy,
    stages: Mutex<HashMap<String, Stage>>,
    generation: Mutex<u64>,
    wake: Condvar,
    shutdown: AtomicBool,
    running: AtomicUsize,
    faults: Mutex<BTreeMap<String, String>>,
    attempts: Mutex<HashMap<String, Attempt>>,
    /// The appliance's `max_log_rows`: no device takes a larger job.
    max_log_rows: AtomicU8,
}

impl Hub {
    /// The hub over `store`; jobs queued by other appliances on a shared store wake
    /// its idle workers ([`JobStore::watch`]).
    pub fn new(store: Arc<dyn JobStore>, policy: Policy) -> Arc<Self> {
        let hub = Arc::new(Self {
            store,
            policy,
            stages: Mutex::default(),
            generation: Mutex::new(0),
            wake: Condvar::new(),
            shutdown: AtomicBool::new(false),
            running: AtomicUsize::new(0),
            faults: Mutex::default(),
            attempts: Mutex::default(),
            max_log_rows: AtomicU8::new(u8::MAX),
        });
        let weak = Arc::downgrade(&hub);
        hub.store.watch(Arc::new(move || {
            if let Some(hub) = weak.upgrade() {
                hub.notify();
            }
        }));
        hub
    }

    /// Caps the size of the jobs this appliance's workers take (its `max_log_rows`);
    /// set before the workers start.
    pub fn cap_log_rows(&self, max_log_rows: u8) {
        self.max_log_rows.store(max_log_rows, Ordering::SeqCst);
    }

    /// The cap of [`Hub::cap_log_rows`] (`u8::MAX` when none was set).
    pub fn max_log_rows(&self) -> u8 {
        self.max_log_rows.load(Ordering::SeqCst)
    }

    /// Marks a device faulty: its workers take no more jobs until the process
    /// restarts (and the device passes its self-test again).
    pub fn mark_faulty(&self, device: &str, reason: String) {
        let mut faults = self.faults.lock().unwrap_or_else(|p| p.into_inner());
        faults.entry(device.to_string()).or_insert(reason);
        metrics::gauge!("proofbox_devices_faulty").set(faults.len() as f64);
    }

    /// Why a device is faulty, if it is.
    pub fn fault(&self, device: &str) -> Option<String> {
        self.faults
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(device)
            .cloned()
    }

    /// Every faulty device and why, by id.
    pub fn faults(&self) -> BTreeMap<String, String> {
        self.faults
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Wakes idle workers (a job was queued).
    pub fn notify(&self) {
        *self.generation.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        self.wake.notify_all();
    }

    /// The live stage of a running job.
    pub fn stage(&self, id: &str) -> Option<Stage> {
        self.stages
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .copied()
    }

    fn set_stage(&self, id: &str, stage: Option<Stage>) {
        let mut stages = self.stages.lock().unwrap_or_else(|p| p.into_inner());
        match stage {
            Some(s) => stages.insert(id.to_string(), s),
            None => stages.remove(id),
        };
    }

    /// Proofs being computed now.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    /// Stops workers from taking new jobs and new submissions from being accepted.
    pub fn begin_shutdown(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        self.notify();
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }

    fn generation(&self) -> u64 {
        *self.generation.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sleeps until a notification after `seen`, or `timeout`.
    fn wait(&self, seen: u64, timeout: Duration) {
        let guard = self.generation.lock().unwrap_or_else(|p| p.into_inner());
        let _ = self
            .wake
            .wait_timeout_while(guard, timeout, |g| {
                *g == seen && !self.shutdown.load(Ordering::SeqCst)
            })
            .map_err(|_| ());
    }
}

/// The running worker threads.
pub struct Workers {
    hub: Arc<Hub>,
    handles: Vec<JoinHandle<()>>,
}

impl Workers {
    /// Starts `slot.workers` threads for each device.
    pub fn start(hub: Arc<Hub>, slots: &[DeviceSlot]) -> Self {
        let mut handles = Vec::new();
        for slot in slots {
            for n in 0..slot.workers {
                let hub = hub.clone();
                let slot = slot.clone();
                let handle = std::thread::Builder::new()
                    .name(format!("worker-{}-{n}", slot.id))
                    .spawn(move || worker_loop(&hub, &slot))
                    .expect("spawning a worker thread");
                handles.push(handle);
            }
        }
        let watchdog = {
            let hub = hub.clone();
            std::thread::Builder::new()
                .name("deadline-watchdog".into())
                .spawn(move || watchdog_loop(&hub))
                .expect("spawning the deadline watchdog")
        };
        handles.push(watchdog);
        hub.notify();
        Self { hub, handles }
    }

    /// Stops taking jobs, waits up to `grace` for running proofs, then puts the jobs
    /// still running back in the queue (their attempt does not count).
    pub fn shutdown(self, grace: Duration) -> Result<Recovery, StoreError> {
        self.hub.begin_shutdown();
        // The others stop counting on this appliance's devices at once.
        if let Err(e) = self.hub.store.withdraw() {
            tracing::warn!("withdrawing this appliance's advertisement: {e}");
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline && self.handles.iter().any(|h| !h.is_finished()) {
            std::thread::sleep(Duration::from_millis(50));
        }
        // Threads still proving are left behind: the process exits, and their
        // outcome would be discarded anyway (the job is no longer running).
        self.hub.store.requeue_running(true)
    }
}

fn worker_loop(hub: &Arc<Hub>, slot: &DeviceSlot) {
    let mut unavailable = false;
    let routes = slot.routes();
    let routes: Vec<&str> = routes.iter().map(String::as_str).collect();
    let capacity = slot.capacity(hub.max_log_rows());
    let who = Claimant {
        routes: &routes,
        backend: slot.kind.name(),
        device: &slot.id,
        capacity: &capacity,
    };
    let idle = hub.store.idle_poll();
    while !hub.is_shutting_down() {
        if let Some(reason) = hub.fault(&slot.id) {
            tracing::warn!(device = %slot.id, "device is faulty, its worker stops: {reason}");
            return;
        }
        let seen = hub.generation();
        match hub.store.claim(&who) {
            Ok(Some((rec, input))) => {
                unavailable = false;
                run_job(hub, slot, rec, input)
            }
            Ok(None) => {
                unavailable = false;
                hub.wait(seen, idle)
            }
            // Logged once (the store logs the fault itself); polled every second.
            Err(StoreError::Unavailable { .. } | StoreError::Unreachable { .. }) if unavailable => {
                std::thread::sleep(Duration::from_secs(1));
            }
            Err(e @ (StoreError::Unavailable { .. } | StoreError::Unreachable { .. })) => {
                unavailable = true;
                tracing::warn!(device = %slot.id, "not taking jobs: {e}");
                std::thread::sleep(Duration::from_secs(1));
            }
            Err(e) => {
                tracing::error!(device = %slot.id, "taking a job: {e}");
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
}

/// Abandons attempts past their deadline: the job goes back to the queue (on the CPU
/// where fallback is on) or fails after `max_attempts`, and the device is marked
/// faulty. The hung proof's thread is left behind; its late result is discarded (the
/// store takes a result only from the job's current attempt).
fn watchdog_loop(hub: &Arc<Hub>) {
    while !hub.is_shutting_down() {
        let now = Instant::now();
        let overdue: Vec<(String, Attempt)> = {
            let mut attempts = hub.attempts.lock().unwrap_or_else(|p| p.into_inner());
            let ids: Vec<String> = attempts
                .iter()
                .filter(|(_, a)| a.deadline <= now)
                .map(|(id, _)| id.clone())
                .collect();
            ids.into_iter()
                .filter_map(|id| attempts.remove(&id).map(|a| (id, a)))
                .collect()
        };
        for (id, a) in overdue {
            let error = format!(
                "attempt {} on {}: no result within the deadline of {} s; device marked faulty",
                a.attempts,
                a.device,
                a.allowed.as_secs()
            );
            tracing::error!(job = %id, device = %a.device, "{error}");
            metrics::counter!("proofbox_device_faults_total", "backend" => a.kind.name(), "fault" => "deadline").increment(1);
            hub.mark_faulty(
                &a.device,
                format!("job {id} overran its deadline of {} s", a.allowed.as_secs()),
            );
            let outcome = hub.policy.after_failure(
                a.attempts,
                a.kind,
                &a.route,
                error,
                a.allowed.as_millis() as u64,
            );
            match hub.store.finish(a.seq, a.attempts, outcome) {
                Ok(_) => hub.notify(),
                Err(e) => tracing::error!(job = %id, "abandoning an overdue attempt: {e}"),
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn run_job(hub: &Arc<Hub>, slot: &DeviceSlot, rec: JobRecord, input: Vec<u8>) {
    hub.running.fetch_add(1, Ordering::SeqCst);
    let allowed = hub.policy.deadline_of(&rec);
    hub.attempts
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(
            rec.id.clone(),
            Attempt {
                seq: rec.seq,
                attempts: rec.attempts,
                route: rec.route.clone(),
                device: slot.id.clone(),
                kind: slot.kind,
                deadline: Instant::now() + allowed,
                allowed,
            },
        );
    let witness = witness_statement(&rec).is_some();
    let (req, input) = if witness {
        (rec.request(Vec::new()), input)
    } else {
        (rec.request(input), Vec::new())
    };
    hub.set_stage(&rec.id, Some(Stage::Trace));
    let progress = {
        let hub = hub.clone();
        let id = rec.id.clone();
        move |s: Stage| hub.set_stage(&id, Some(s))
    };
    tracing::info!(job = %rec.id, device = %slot.id, attempt = rec.attempts, "proving {} 2^{} rows", rec.circuit, rec.log_rows);
    let start = Instant::now();
    let result = catch_unwind(AssertUnwindSafe(|| {
        if witness {
            // The chunks submission checked, cut the same way.
            let chunks = transition::chunks(&input, rec.log_rows)
                .map_err(|e| ProveError::Transition(e.to_string()))?;
            slot.prover
                .prove_transition_chunks(&chunks, rec.fri, Arc::new(progress))
                .map(|b| b.to_bytes())
        } else {
            slot.prover
                .prove(&req, Arc::new(progress))
                .map(|a| a.to_bytes())
        }
    }));
    let proving_ms = start.elapsed().as_millis() as u64;
    let retry_on_cpu = |error: String| {
        hub.policy
            .after_failure(rec.attempts, slot.kind, &rec.route, error, proving_ms)
    };
    let outcome = match result {
        Ok(Ok(proof)) => match hub.policy.verify(&rec, &proof) {
            Ok(_) => Outcome::Succeeded { proof, proving_ms },
            // The request's parameters are below the floor (refused at submission;
            // a job queued before the floor was raised): not the device's fault.
            Err(e @ VerifyError::InsufficientSecurity { .. }) => Outcome::Failed {
                error: e.to_string(),
                proving_ms,
            },
            Err(e) => {
                let reason = format!("job {}: its proof does not verify: {e}", rec.id);
                tracing::error!(job = %rec.id, device = %slot.id, "device produced an invalid proof, marked faulty: {e}");
                metrics::counter!("proofbox_device_faults_total", "backend" => slot.kind.name(), "fault" => "invalid_proof").increment(1);
                hub.mark_faulty(&slot.id, reason);
                retry_on_cpu(format!(
                    "attempt {} on {}: the proof did not verify ({e}); device marked faulty",
                    rec.attempts, slot.id
                ))
            }
        },
        Ok(Err(ProveError::Backend(e))) => retry_on_cpu(format!(
            "attempt {} on {}: backend failed: {e}",
            rec.attempts, slot.id
        )),
        Ok(Err(e)) => Outcome::Failed {
            error: e.to_string(),
            proving_ms,
        },
        Err(_) => Outcome::Failed {
            error: "internal error: the prover panicked".into(),
            proving_ms,
        },
    };
    let on_time = hub
        .attempts
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&rec.id)
        .is_some();
    if !on_time {
        // The watchdog abandoned this attempt; the store discards its result.
        tracing::warn!(job = %rec.id, device = %slot.id, "a result after the deadline is discarded");
    }
    let succeeded = matches!(outcome, Outcome::Succeeded { .. });
    match finish_with_retries(hub.store.as_ref(), &rec, outcome) {
        Ok(Finished::Applied(r)) => {
            if succeeded {
                metrics::histogram!(
                    "proofbox_proving_seconds",
                    "circuit" => rec.circuit.name(),
                    "backend" => slot.kind.name()
                )
                .record(proving_ms as f64 / 1e3);
            }
            metrics::counter!(
                "proofbox_attempts_total",
                "backend" => slot.kind.name(),
                "outcome" => r.status.name()
            )
            .increment(1);
            tracing::info!(job = %r.id, status = %r.status, proving_ms, "attempt finished");
            if r.status == crate::types::JobStatus::Queued {
                hub.notify();
            }
        }
        Ok(Finished::Discarded(r)) => {
            tracing::info!(job = %r.id, status = %r.status, "result discarded");
        }
        Err(e) => {
            // The job stays `running` in the store; a restart queues it again.
            tracing::error!(job = %rec.id, "recording the result: {e}");
        }
    }
    hub.set_stage(&rec.id, None);
    hub.running.fetch_sub(1, Ordering::SeqCst);
}

/// Records an attempt's outcome. Other errors are retried three times; while the store
/// is unavailable (a storage fault) it is retried every second until the store is back,
/// so that a finished proof is not lost. If the process stops meanwhile, the job is
/// still `running` in the store and is queued again at the next start.
fn finish_with_retries(
    store: &dyn JobStore,
    rec: &JobRecord,
    outcome: Outcome,
) -> Result<Finished, StoreError> {
    let mut tries = 0;
    let mut waiting = false;
    loop {
        match store.finish(rec.seq, rec.attempts, outcome.clone()) {
            Ok(f) => {
                if waiting {
                    tracing::info!(job = %rec.id, "the job store is back: result recorded");
                }
                return Ok(f);
            }
            Err(e @ (StoreError::Unavailable { .. } | StoreError::Unreachable { .. })) => {
                if !waiting {
                    tracing::warn!(job = %rec.id, "{e}; keeping the result until it is back");
                    waiting = true;
                }
                std::thread::sleep(Duration::from_secs(1));
            }
            Err(e) if tries < 3 => {
                tries += 1;
                tracing::warn!(job = %rec.id, "recording the result failed, retrying: {e}");
                std::thread::sleep(Duration::from_millis(200 << tries));
            }
            Err(e) => return Err(e),
        }
    }
}
