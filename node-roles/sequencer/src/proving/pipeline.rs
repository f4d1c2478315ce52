//! The proving pipeline, on the async runtime (witnesses, checks and journal writes
//! on blocking threads):
//!
//! - the **planner** closes a batch when it is due ([`ProvingConfig`]), writes its
//!   plan to the journal, and computes its witnesses from the proving tree, a second
//!   state tree that stays at the last planned batch's post-state;
//! - one **batch task** per batch submits it, follows the job, checks the proof, and
//!   retries: the same idempotency key while the job may exist, a new attempt (new
//!   key, next appliance) once it certainly failed;
//! - the **publisher** publishes proofs in batch order.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alloy_primitives::Bytes;
use proofbox_chain_types::{Block, ProvenBatch, Root, net_diff};
use proofbox_circuits::transition::{TransitionStatement, digest_hex, padding_key};
use proofbox_state::{Parallelism, StateTree};
use proofbox_verifier::{TransitionProof, Verifier};
use tokio::sync::{mpsc, watch};
use tokio::task::AbortHandle;

use super::client::{Appliance, CallError, JobInfo};
use super::journal::{Entry, Pending};
use super::{ApplianceStatus, InFlight, Proofs, ProvingConfig};
use crate::Sequencer;
use crate::node::now_ms;

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// The running pipeline.
pub struct ProvingHandle {
    ctx: Arc<Ctx>,
    stop: watch::Sender<bool>,
}

impl ProvingHandle {
    /// Stops the pipeline: no new batch, no new submission. What was journaled
    /// resumes at the next start.
    pub fn stop(self) {
        self.stop.send_replace(true);
        self.abort_all();
    }

    fn abort_all(&self) {
        for a in self.ctx.tasks.lock().unwrap().drain(..) {
            a.abort();
        }
    }
}

impl Drop for ProvingHandle {
    fn drop(&mut self) {
        self.stop.send_replace(true);
        self.abort_all();
    }
}

/// One batch, ready to be proven.
struct Batch {
    index: u64,
    first_block: u64,
    last_block: u64,
    updates: u64,
    expected: TransitionStatement,
    witness: Vec<u8>,
}

struct Ctx {
    seq: Sequencer,
    proofs: Arc<Proofs>,
    cfg: ProvingConfig,
    appliances: Vec<Appliance>,
    verifier: Verifier,
    key_prefix: String,
    in_flight: AtomicUsize,
    stop: watch::Receiver<bool>,
    done: mpsc::UnboundedSender<(ProvenBatch, String)>,
    tasks: Mutex<Vec<AbortHandle>>,
}

/// Starts proving `seq`'s blocks (on the current tokio runtime): resumes the batches
/// the journal left pending, then batches new blocks as they come.
pub fn start(seq: &Sequencer, cfg: ProvingConfig) -> Result<ProvingHandle, String> {
    cfg.validate()?;
    let verifier =
        Verifier::with_min_security_bits(cfg.min_security_bits).map_err(|e| e.to_string())?;
    let appliances: Vec<Appliance> = cfg
        .appliances
        .iter()
        .map(|u| Appliance::new(u, cfg.api_key.clone(), &cfg.fri))
        .collect();
    let genesis = seq.read().chain.block(0).expect("a genesis block").hash();
    let key_prefix = format!("proofbox-sequencer/{}/{genesis:#x}", seq.config().chain_id);
    let (stop_tx, stop) = watch::channel(false);
    let (done, done_rx) = mpsc::unbounded_channel();
    let proofs = seq.proofs().clone();
    proofs.update_status(|s| {
        s.enabled = true;
        s.appliances = appliances
            .iter()
            .map(|a| ApplianceStatus {
                url: a.url.clone(),
                reachable: None,
                proofs: 0,
                last_error: None,
            })
            .collect();
    });
    let ctx = Arc::new(Ctx {
        seq: seq.clone(),
        proofs,
        cfg,
        appliances,
        verifier,
        key_prefix,
        in_flight: AtomicUsize::new(0),
        stop,
        done,
        tasks: Mutex::new(Vec::new()),
    });
    let publisher = tokio::spawn(publisher(ctx.clone(), done_rx));
    let main = tokio::spawn(run(ctx.clone()));
    ctx.tasks
        .lock()
        .unwrap()
        .extend([publisher.abort_handle(), main.abort_handle()]);
    Ok(ProvingHandle { ctx, stop: stop_tx })
}

/// Rebuilds the proving tree from the journal, resumes pending batches, plans.
async fn run(ctx: Arc<Ctx>) {
    let rebuilt = {
        let ctx = ctx.clone();
        tokio::task::spawn_blocking(move || rebuild(&ctx)).await
    };
    let (tree, through, resumed) = match rebuilt {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return ctx.halt(format!("resuming from the proving journal: {e}")),
        Err(e) => return ctx.halt(format!("resuming from the proving journal: {e}")),
    };
    let next_index = ctx.proofs.count() + resumed.len() as u64;
    if !resumed.is_empty() {
        tracing::info!(
            batches = resumed.len(),
            "resuming batches the proving journal left pending"
        );
    }
    for (batch, p) in resumed {
        ctx.begin(&batch, p.attempt);
        ctx.spawn_batch(batch, p.attempt, p.job);
    }
    planner(ctx, tree, through, next_index).await;
}

/// The proving tree at the end of the published and pending batches, and the pending
/// batches with their witnesses.
#[allow(clippy::type_complexity)]
fn rebuild(ctx: &Ctx) -> Result<(StateTree, u64, Vec<(Batch, Pending)>), String> {
    let genesis = ctx
        .seq
        .read()
        .chain
        .block(0)
        .cloned()
        .expect("a genesis block");
    let mut tree = StateTree::new();
    let root = tree.apply(
        &genesis.diff.to_state_diff().map_err(|e| e.to_string())?,
        Parallelism::Parallel,
    );
    if Root::from_digest(&root) != genesis.header.post_state_root {
        return Err("the genesis diff does not give the genesis root".into());
    }
    let mut through = 0;
    for (first, last) in ctx.proofs.published_ranges() {
        if first != through + 1 {
            return Err(format!(
                "a published batch starts at block {first}, after {through}"
            ));
        }
        let blocks = ctx.blocks(first, last)?;
        let net = net_diff(blocks.iter().map(|b| &b.diff)).map_err(|e| e.to_string())?;
        let root = tree.apply(&net, Parallelism::Parallel);
        if Root::from_digest(&root)
            != blocks
                .last()
                .expect("a batch has blocks")
                .header
                .post_state_root
        {
            return Err(format!(
                "blocks {first}..={last} do not give their post-state root"
            ));
        }
        through = last;
    }
    let mut resumed = Vec::new();
    for p in ctx.proofs.pending() {
        if p.first_block != through + 1 {
            return Err(format!(
                "a pending batch starts at block {}, after {through}",
                p.first_block
            ));
        }
        let batch = witness(ctx, &mut tree, p.index, p.first_block, p.last_block)?;
        through = p.last_block;
        resumed.push((batch, p));
    }
    Ok((tree, through, resumed))
}

/// Batch `index` of blocks `first..=last`: its net diff's witnesses against `tree`,
/// which moves to the batch's post-state.
fn witness(
    ctx: &Ctx,
    tree: &mut StateTree,
    index: u64,
    first: u64,
    last: u64,
) -> Result<Batch, String> {
    let blocks = ctx.blocks(first, last)?;
    let pre = ctx.blocks(first - 1, first - 1)?[0].header.post_state_root;
    let post = blocks
        .last()
        .expect("a batch has blocks")
        .header
        .post_state_root;
    if Root::from_digest(&tree.root()) != pre {
        return Err(format!(
            "the proving tree is not at block {}'s post-state root",
            first - 1
        ));
    }
    let net = net_diff(blocks.iter().map(|b| &b.diff)).map_err(|e| e.to_string())?;
    let tw = tree.transition_witness(&net, last, &padding_key());
    if Root::from_digest(&tree.root()) != post {
        return Err(format!(
            "blocks {first}..={last}: the net diff does not give block {last}'s post-state root"
        ));
    }
    Ok(Batch {
        index,
        first_block: first,
        last_block: last,
        updates: net.len() as u64,
        expected: TransitionStatement {
            pre_root: pre.to_digest(),
            post_root: post.to_digest(),
            diff_commitment: net.commitment(),
            block_number: last,
        },
        witness: tw.to_bytes(),
    })
}

async fn planner(ctx: Arc<Ctx>, mut tree: StateTree, mut through: u64, mut next_index: u64) {
    let mut head = ctx.seq.head();
    let mut stop = ctx.stop.clone();
    loop {
        if *stop.borrow() {
            return;
        }
        let top = *head.borrow_and_update();
        if let Some(last) = ctx.due(through, top) {
            let (index, first) = (next_index, through + 1);
            let entry = Entry::Planned {
                index,
                first_block: first,
                last_block: last,
            };
            if let Err(e) = ctx.record(entry).await {
                return ctx.halt(format!("writing the proving journal: {e}"));
            }
            ctx.proofs.update_status(|s| s.planned_block = Some(last));
            let job = {
                let ctx = ctx.clone();
                tokio::task::spawn_blocking(move || {
                    let b = witness(&ctx, &mut tree, index, first, last);
                    (tree, b)
                })
                .await
            };
            let batch = match job {
                Ok((t, Ok(b))) => {
                    tree = t;
                    b
                }
                Ok((_, Err(e))) => return ctx.halt(format!("batch {index}: {e}")),
                Err(e) => return ctx.halt(format!("batch {index}: {e}")),
            };
            tracing::debug!(
                batch = index,
                first,
                last,
                updates = batch.updates,
                "batch planned"
            );
            through = last;
            next_index += 1;
            ctx.begin(&batch, 0);
            ctx.spawn_batch(batch, 0, None);
            continue;
        }
        tokio::select! {
            _ = head.changed() => {}
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            _ = stop.changed() => {}
        }
    }
}

/// What a batch task's following of a job came to.
enum Followed {
    Proof(ProvenBatch),
    /// The job ended without a usable proof.
    Failed(String),
    /// The appliance does not know the job.
    Lost,
    Stopped,
}

impl Ctx {
    fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    fn halt(&self, why: String) {
        tracing::error!("proving stops: {why}");
        metrics::counter!("sequencer_proving_halts_total").increment(1);
        self.proofs
            .update_status(|s| s.last_error = Some(format!("proving stopped: {why}")));
    }

    fn blocks(&self, first: u64, last: u64) -> Result<Vec<Arc<Block>>, String> {
        let core = self.seq.read();
        (first..=last)
            .map(|n| {
                core.chain.block(n).cloned().ok_or_else(|| {
                    format!("block {n} is not in the chain (head {})", core.chain.head())
                })
            })
            .collect()
    }

    /// The last block of the next batch, if one is due now.
    fn due(&self, through: u64, top: u64) -> Option<u64> {
        if top <= through {
            return None;
        }
        let cfg = &self.cfg;
        let core = self.seq.read();
        let first = through + 1;
        let first_ts = core.chain.block(first)?.header.timestamp_ms;
        let (mut last, mut updates) = (first, 0usize);
        for n in first..=top {
            let u = core.chain.block(n)?.diff.updates();
            if n > first && updates + u > cfg.max_batch_updates {
                break;
            }
            updates += u;
            last = n;
        }
        drop(core);
        let full = last < top || updates >= cfg.max_batch_updates;
        let due = last - first + 1 >= cfg.batch_blocks
            || now_ms().saturating_sub(first_ts) >= cfg.batch_interval.as_millis() as u64;
        let in_flight = self.in_flight.load(Ordering::SeqCst);
        let room = in_flight < cfg.max_in_flight;
        (due && room || full && in_flight < 2 * cfg.max_in_flight).then_some(last)
    }

    async fn record(&self, entry: Entry) -> Result<(), String> {
        let proofs = self.proofs.clone();
        tokio::task::spawn_blocking(move || proofs.record(&entry))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }

    /// Counts a batch in flight and shows it.
    fn begin(&self, b: &Batch, attempt: u32) {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        metrics::gauge!("sequencer_batches_in_flight")
            .set(self.in_flight.load(Ordering::SeqCst) as f64);
        let f = InFlight {
            index: b.index,
            first_block: b.first_block,
            last_block: b.last_block,
            updates: b.updates,
            attempt,
            state: "submitting".into(),
            appliance: None,
            job: None,
        };
        self.proofs.update_status(|s| s.in_flight.push(f));
    }

    fn show(&self, index: u64, attempt: u32, state: &str, appliance: &str, job: Option<&str>) {
        self.proofs.update_status(|s| {
            if let Some(f) = s.in_flight.iter_mut().find(|f| f.index == index) {
                f.attempt = attempt;
                f.state = state.to_string();
                f.appliance = Some(appliance.to_string());
                f.job = job.map(str::to_string);
            }
        });
    }

    fn seen(&self, at: usize, reachable: bool, error: Option<String>) {
        self.proofs.update_status(|s| {
            if let Some(a) = s.appliances.get_mut(at) {
                a.reachable = Some(reachable);
                if error.is_some() {
                    a.last_error = error;
                }
            }
        });
    }

    fn key(&self, index: u64, attempt: u32) -> String {
        format!("{}/batch-{index}/attempt-{attempt}", self.key_prefix)
    }

    fn spawn_batch(self: &Arc<Self>, batch: Batch, attempt: u32, job: Option<(String, String)>) {
        let handle = tokio::spawn(prove_batch(self.clone(), Arc::new(batch), attempt, job));
        let mut tasks = self.tasks.lock().unwrap();
        tasks.retain(|t| !t.is_finished());
        tasks.push(handle.abort_handle());
    }

    /// Sleeps `backoff` (doubling it up to [`BACKOFF_MAX`]), or until stopped.
    async fn pause(&self, backoff: &mut Duration) {
        let mut stop = self.stop.clone();
        tokio::select! {
            _ = tokio::time::sleep(*backoff) => {}
            _ = stop.changed() => {}
        }
        *backoff = (*backoff * 2).min(BACKOFF_MAX);
    }

    /// Journals the end of an attempt that gave no proof.
    async fn fail(&self, b: &Batch, attempt: u32, reason: String) {
        tracing::warn!(batch = b.index, attempt, "proving attempt failed: {reason}");
        metrics::counter!("sequencer_proving_retries_total").increment(1);
        self.proofs
            .update_status(|s| s.last_error = Some(format!("batch {}: {reason}", b.index)));
        let entry = Entry::Failed {
            index: b.index,
            attempt,
            reason,
        };
        if let Err(e) = self.record(entry).await {
            tracing::error!("writing the proving journal: {e}");
        }
    }

    /// Follows job `id` on appliance `at` to its end.
    async fn follow(&self, b: &Batch, at: usize, id: &str, attempt: u32) -> Followed {
        let app = &self.appliances[at];
        let mut unreachable: Option<Instant> = None;
        let mut backoff = BACKOFF_MIN;
        loop {
            if self.stopped() {
                return Followed::Stopped;
            }
            let outcome = match app.job(id).await {
                Ok(info) => {
                    self.seen(at, true, None);
                    unreachable = None;
                    match info.status.as_str() {
                        "succeeded" => {
                            self.show(b.index, attempt, "verifying", &app.url, Some(id));
                            match app.proof(id).await {
                                Ok(bytes) => return self.check(b, &app.url, &info, bytes).await,
                                Err(CallError::Refused { .. } | CallError::NotFound) => Err(
                                    format!("job {id} succeeded but its proof is not available"),
                                ),
                                Err(e) => Err(e.to_string()),
                            }
                        }
                        "failed" | "cancelled" => {
                            return Followed::Failed(format!(
                                "job {id} on {} {}: {}",
                                app.url,
                                info.status,
                                info.error.as_deref().unwrap_or("no reason given")
                            ));
                        }
                        state => {
                            self.show(b.index, attempt, state, &app.url, Some(id));
                            Ok(())
                        }
                    }
                }
                Err(CallError::NotFound) => return Followed::Lost,
                Err(e) => {
                    self.seen(at, false, Some(e.to_string()));
                    let since = *unreachable.get_or_insert_with(Instant::now);
                    if since.elapsed() >= self.cfg.abandon_after {
                        return Followed::Failed(format!(
                            "appliance {} unreachable for {:?} with job {id}: {e}",
                            app.url, self.cfg.abandon_after
                        ));
                    }
                    Err(e.to_string())
                }
            };
            match outcome {
                Ok(()) => {
                    backoff = BACKOFF_MIN;
                    let mut stop = self.stop.clone();
                    tokio::select! {
                        _ = tokio::time::sleep(self.cfg.poll_interval) => {}
                        _ = stop.changed() => {}
                    }
                }
                Err(e) => {
                    tracing::debug!(batch = b.index, job = id, "following the job: {e}");
                    self.pause(&mut backoff).await;
                }
            }
        }
    }

    /// Verifies a proof against the batch's statement, under this sequencer's floor.
    async fn check(&self, b: &Batch, url: &str, info: &JobInfo, bytes: Vec<u8>) -> Followed {
        let verifier = self.verifier;
        let expected = b.expected;
        let checked = tokio::task::spawn_blocking(move || {
            let bundle = TransitionProof::from_bytes(&bytes).map_err(|e| e.to_string())?;
            verifier
                .verify_transition_chunks(&bundle, &expected)
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(bytes)
        })
        .await;
        match checked {
            Ok(Ok(bytes)) => Followed::Proof(ProvenBatch {
                index: b.index,
                first_block: b.first_block,
                last_block: b.last_block,
                pre_root: Root::from_digest(&b.expected.pre_root),
                post_root: Root::from_digest(&b.expected.post_root),
                diff_commitment: Root::from_digest(&b.expected.diff_commitment),
                updates: b.updates,
                bundle: Bytes::from(bytes),
                proved_by: Some(match &info.device_used {
                    Some(d) => format!("{url} job {} on {d}", info.id),
                    None => format!("{url} job {}", info.id),
                }),
            }),
            Ok(Err(e)) => {
                metrics::counter!("sequencer_proofs_refused_total").increment(1);
                tracing::error!(batch = b.index, job = %info.id, appliance = url, "the appliance's proof does not verify: {e}");
                let why = format!(
                    "the proof of job {} from {url} does not verify: {e}",
                    info.id
                );
                let lie = format!("batch {}: {why}", b.index);
                self.proofs.update_status(|s| s.lie(lie));
                Followed::Failed(why)
            }
            Err(e) => Followed::Failed(e.to_string()),
        }
    }
}

/// Whether the statement the appliance names is the batch's.
fn names(info: &JobInfo, expected: &TransitionStatement) -> Result<(), String> {
    let Some(s) = &info.statement else {
        return Ok(());
    };
    let same = s.pre_root == digest_hex(&expected.pre_root)
        && s.post_root == digest_hex(&expected.post_root)
        && s.diff_commitment == digest_hex(&expected.diff_commitment)
        && s.block_number == expected.block_number;
    if same {
        Ok(())
    } else {
        Err(format!(
            "job {} names another statement than the batch's",
            info.id
        ))
    }
}

async fn prove_batch(
    ctx: Arc<Ctx>,
    b: Arc<Batch>,
    mut attempt: u32,
    mut job: Option<(String, String)>,
) {
    let n = ctx.appliances.len();
    let mut at = (b.index as usize + attempt as usize) % n;
    if let Some((url, id)) = &job {
        match ctx.appliances.iter().position(|a| &a.url == url) {
            Some(i) => at = i,
            None => {
                let why = format!("job {id} is on {url}, which is no longer configured");
                ctx.fail(&b, attempt, why).await;
                attempt += 1;
                at = (b.index as usize + attempt as usize) % n;
                job = None;
            }
        }
    }
    let mut backoff = BACKOFF_MIN;
    let mut unreachable: Option<Instant> = None;
    loop {
        if ctx.stopped() {
            return;
        }
        let app = &ctx.appliances[at];
        let id = match job.take() {
            Some((_, id)) => id,
            None => {
                ctx.show(b.index, attempt, "submitting", &app.url, None);
                match app.submit(&b.witness, &ctx.key(b.index, attempt)).await {
                    Ok(info) => {
                        ctx.seen(at, true, None);
                        if let Err(why) = names(&info, &b.expected) {
                            let lie = format!("{}: batch {}: {why}", app.url, b.index);
                            ctx.proofs.update_status(|s| s.lie(lie));
                            ctx.fail(&b, attempt, why).await;
                            (attempt, at) = (attempt + 1, (at + 1) % n);
                            continue;
                        }
                        let entry = Entry::Submitted {
                            index: b.index,
                            attempt,
                            appliance: app.url.clone(),
                            job: info.id.clone(),
                        };
                        if let Err(e) = ctx.record(entry).await {
                            // Without the record a restart would resubmit with the same
                            // key: the appliance answers with this job again.
                            tracing::error!("writing the proving journal: {e}");
                        }
                        tracing::debug!(batch = b.index, attempt, job = %info.id, appliance = %app.url, "batch submitted");
                        info.id
                    }
                    Err(CallError::NotReached(e)) => {
                        ctx.seen(at, false, Some(e.clone()));
                        let since = *unreachable.get_or_insert_with(Instant::now);
                        if n > 1 && since.elapsed() >= ctx.cfg.failover_after {
                            tracing::warn!(batch = b.index, appliance = %app.url, "appliance unreachable, sending the batch to the next one: {e}");
                            at = (at + 1) % n;
                            unreachable = None;
                        }
                        ctx.pause(&mut backoff).await;
                        continue;
                    }
                    Err(CallError::NoAnswer(e)) => {
                        ctx.seen(at, false, Some(e));
                        ctx.pause(&mut backoff).await;
                        continue;
                    }
                    Err(e @ (CallError::Refused { .. } | CallError::NotFound)) => {
                        ctx.seen(at, true, Some(e.to_string()));
                        ctx.fail(&b, attempt, format!("{}: {e}", app.url)).await;
                        (attempt, at) = (attempt + 1, (at + 1) % n);
                        ctx.pause(&mut backoff).await;
                        continue;
                    }
                }
            }
        };
        unreachable = None;
        backoff = BACKOFF_MIN;
        match ctx.follow(&b, at, &id, attempt).await {
            Followed::Proof(batch) => {
                let _ = ctx.done.send((batch, app.url.clone()));
                ctx.show(b.index, attempt, "waiting", &app.url, Some(&id));
                return;
            }
            Followed::Failed(why) => {
                ctx.fail(&b, attempt, why).await;
                (attempt, at) = (attempt + 1, (at + 1) % n);
                ctx.pause(&mut backoff).await;
            }
            Followed::Lost => {
                tracing::warn!(batch = b.index, job = %id, appliance = %app.url, "the appliance lost the job; submitting it again with the same key");
            }
            Followed::Stopped => return,
        }
    }
}

/// Publishes proofs in batch order.
async fn publisher(ctx: Arc<Ctx>, mut rx: mpsc::UnboundedReceiver<(ProvenBatch, String)>) {
    let mut waiting: BTreeMap<u64, (ProvenBatch, String)> = BTreeMap::new();
    while let Some((b, url)) = rx.recv().await {
        waiting.insert(b.index, (b, url));
        while let Some((b, url)) = waiting.remove(&ctx.proofs.count()) {
            let (index, first, last) = (b.index, b.first_block, b.last_block);
            let proofs = ctx.proofs.clone();
            let published = tokio::task::spawn_blocking(move || proofs.publish(b, &url)).await;
            match published {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return ctx.halt(format!("writing the proving journal: {e}")),
                Err(e) => return ctx.halt(format!("publishing: {e}")),
            }
            ctx.in_flight.fetch_sub(1, Ordering::SeqCst);
            metrics::counter!("sequencer_proofs_published_total").increment(1);
            metrics::gauge!("sequencer_proven_block").set(last as f64);
            metrics::gauge!("sequencer_batches_in_flight")
                .set(ctx.in_flight.load(Ordering::SeqCst) as f64);
            tracing::info!(batch = index, first, last, "proof published");
        }
    }
}
