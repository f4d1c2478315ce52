//! The host-side planner every device backend runs its calls through: how a call's
//! work is cut to fit the device's memory, decided once for all backends from the
//! limits each device reports (as wgpu-core plans over wgpu-hal's devices).
//!
//! - [`DeviceLimits`]: the memory one call may plan to use in all (a share of the free
//!   or global memory the device reports) and the largest single buffer (OpenCL's
//!   `CL_DEVICE_MAX_MEM_ALLOC_SIZE`, wgpu's storage binding and buffer limits), in
//!   32-bit words. A limit the device does not report is unbounded.
//! - Plans are pure functions of a job's shape and the limits: [`lde`] (column
//!   batches of a coset LDE), [`leaf_hashing`] (row batches of leaf hashing),
//!   [`pair_batches`] (batches of digest pairs), [`tree`] (a tree resident in one
//!   buffer, or built layer by layer through the host) and [`lde_and_tree`] (the fused
//!   LDE and tree, or the separate calls).
//! - What cannot be split is a [`PlanError`], which names the limit, the words needed
//!   and the words available; [`PlanError::out_of_memory`] turns it into
//!   [`BackendError::OutOfMemory`].
//! - A plan that falls back to a slower path ([`TreePlan::ByLayers`],
//!   [`FusedPlan::Separate`]) says why ([`Fallback`]); [`Fallback::log`] writes it to
//!   the log (`tracing`, target `proofbox_backend_api::planner`, level `info`). Splits
//!   into batches are logged at level `debug` ([`Batches::log`]).
//!
//! Every estimate counts the buffers the device kernels allocate: an LDE of `w`
//! columns from `h` to `n` rows holds the input (`h * w`), the extension (`n * w`), the
//! coset scale factors (`h`) and the twiddles (at most `n`) at its peak
//! ([`LdeShape::words_needed`]); a tree over `r` leaves holds `2 * r - 1` digests.

use core::fmt;
use core::ops::Range;

use crate::error::BackendError;
use crate::field::DIGEST_ELEMS;

/// Words of one digest.
pub const DIGEST_WORDS: usize = DIGEST_ELEMS;

/// The share (per mille) of the memory a device reports that one call plans to use;
/// the rest is left to the driver, the kernels' code and fragmentation.
pub const BUDGET_PER_MILLE: u64 = 900;

/// What one call may allocate on a device, in 32-bit words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeviceLimits {
    /// Words all the buffers of one call may take together.
    pub budget_words: usize,
    /// Words of the largest single buffer.
    pub max_buffer_words: usize,
}

impl DeviceLimits {
    /// No limit at all (a device that reports none).
    pub const UNBOUNDED: Self = Self {
        budget_words: usize::MAX,
        max_buffer_words: usize::MAX,
    };

    /// The limits of a device that reports `memory_bytes` usable memory (the free
    /// memory, or the global memory where free memory is not reported; `None` where the
    /// device reports none) and a largest buffer of `max_buffer_bytes` (`None`: no
    /// limit beyond the memory). A call plans to use [`BUDGET_PER_MILLE`] of the memory.
    pub fn from_device(memory_bytes: Option<u64>, max_buffer_bytes: Option<u64>) -> Self {
        let words = |bytes: u64| usize::try_from(bytes / 4).unwrap_or(usize::MAX);
        Self {
            budget_words: memory_bytes.map_or(usize::MAX, |m| words(m / 1000 * BUDGET_PER_MILLE)),
            max_buffer_words: max_buffer_bytes.map_or(usize::MAX, words),
        }
    }

    /// Words of `limit`.
    pub fn words(&self, limit: Limit) -> usize {
        match limit {
            Limit::Budget => self.budget_words,
            Limit::MaxBuffer => self.max_buffer_words,
        }
    }
}

/// Which of a device's limits a plan ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    /// The memory one call may use in all.
    Budget,
    /// The largest single buffer.
    MaxBuffer,
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Budget => "the memory budget",
            Self::MaxBuffer => "the largest buffer",
        })
    }
}

/// Work that cannot be split finely enough to fit the device.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} needs {needed_words} words, more than {limit} ({available_words} words)")]
pub struct PlanError {
    /// The smallest piece that had to fit (e.g. "one column of the LDE").
    pub what: &'static str,
    pub limit: Limit,
    pub needed_words: usize,
    pub available_words: usize,
}

impl PlanError {
    fn new(what: &'static str, limit: Limit, needed_words: usize, limits: &DeviceLimits) -> Self {
        Self {
            what,
            limit,
            needed_words,
            available_words: limits.words(limit),
        }
    }

    /// The error a backend returns for it.
    pub fn out_of_memory(&self, device: &str) -> BackendError {
        BackendError::OutOfMemory {
            device: device.into(),
            needed_bytes: (self.needed_words as u64).saturating_mul(4),
            available_bytes: (self.available_words as u64).saturating_mul(4),
        }
    }
}

/// `total` items (columns, rows or pairs) in consecutive batches of at most
/// `per_batch`; the last batch may be shorter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Batches {
    pub total: usize,
    /// At least 1.
    pub per_batch: usize,
}

impl Batches {
    fn new(total: usize, per_batch: usize) -> Self {
        Self {
            total,
            per_batch: per_batch.min(total).max(1),
        }
    }

    /// Whether everything goes in one batch (or there is nothing to do).
    pub fn is_whole(&self) -> bool {
        self.per_batch >= self.total
    }

    /// How many batches.
    pub fn count(&self) -> usize {
        self.total.div_ceil(self.per_batch)
    }

    /// The ranges of the batches, in order.
    pub fn ranges(&self) -> impl Iterator<Item = Range<usize>> + '_ {
        (0..self.total)
            .step_by(self.per_batch)
            .map(|a| a..(a + self.per_batch).min(self.total))
    }

    /// Logs a split (level `debug`); one whole batch is not logged.
    pub fn log(&self, device: &str, call: &str, items: &str) {
        if !self.is_whole() {
            tracing::debug!(
                device,
                call,
                total = self.total,
                per_batch = self.per_batch,
                batches = self.count(),
                "{items} split into batches to fit the device"
            );
        }
    }
}

/// The shape of a coset LDE: `2^log_h` rows of `width` columns, extended by
/// `2^added_bits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LdeShape {
    pub log_h: usize,
    pub added_bits: usize,
    pub width: usize,
}

impl LdeShape {
    /// Rows of the input.
    pub fn rows(&self) -> usize {
        1 << self.log_h
    }

    /// Rows of the extension.
    pub fn lde_rows(&self) -> usize {
        1 << (self.log_h + self.added_bits)
    }

    /// Words an LDE of `w` of these columns holds on the device at its peak: input,
    /// extension, coset scale factors and twiddles.
    pub fn words_needed(&self, w: usize) -> usize {
        let (h, n) = (self.rows(), self.lde_rows());
        (h + n) * w + h + n
    }
}

/// Checks that buffers kept whole on the device (a resident matrix, its extension,
/// the reduction's accumulators: work that is not split) fit: `total_words` in all
/// against the budget, the largest of them, `largest_words`, against the largest
/// buffer. `what` names the work in the error.
pub fn whole(
    limits: &DeviceLimits,
    what: &'static str,
    total_words: usize,
    largest_words: usize,
) -> Result<(), PlanError> {
    if total_words > limits.budget_words {
        return Err(PlanError::new(what, Limit::Budget, total_words, limits));
    }
    if largest_words > limits.max_buffer_words {
        return Err(PlanError::new(
            what,
            Limit::MaxBuffer,
            largest_words,
            limits,
        ));
    }
    Ok(())
}

/// Column batches for an LDE. A batch's budget is counted as if each of its columns
/// brought its own tables (`words_needed(1)` a column), which errs on the safe side.
/// What cannot be split is one column whose tables and buffers exceed the budget, or
/// whose extension exceeds the largest buffer.
pub fn lde(limits: &DeviceLimits, shape: &LdeShape) -> Result<Batches, PlanError> {
    if shape.width == 0 {
        return Ok(Batches::new(0, 1));
    }
    let per_column = shape.words_needed(1);
    let by_budget = limits.budget_words / per_column;
    if by_budget == 0 {
        return Err(PlanError::new(
            "one column of the LDE",
            Limit::Budget,
            per_column,
            limits,
        ));
    }
    let n = shape.lde_rows();
    let by_buffer = limits.max_buffer_words / n;
    if by_buffer == 0 {
        return Err(PlanError::new(
            "one column of the extension",
            Limit::MaxBuffer,
            n,
            limits,
        ));
    }
    Ok(Batches::new(shape.width, by_budget.min(by_buffer)))
}

/// Runs `run` on each column batch of the row-major `values` (`batches.total`
/// columns) and assembles what it returns (the batch's columns, row-major, over
/// `out_rows` rows) into one row-major matrix of `out_rows` rows. One whole batch is
/// handed over as it is, without a copy.
pub fn run_column_batches<T: Copy + Default, E>(
    values: &[T],
    batches: &Batches,
    out_rows: usize,
    mut run: impl FnMut(&[T], usize) -> Result<Vec<T>, E>,
) -> Result<Vec<T>, E> {
    let width = batches.total;
    if batches.is_whole() {
        return run(values, width);
    }
    let mut out = vec![T::default(); out_rows * width];
    let mut sub = Vec::with_capacity(values.len() / width * batches.per_batch);
    for cols in batches.ranges() {
        let cb = cols.len();
        sub.clear();
        for row in values.chunks_exact(width) {
            sub.extend_from_slice(&row[cols.clone()]);
        }
        let part = run(&sub, cb)?;
        for (dst, src) in out.chunks_exact_mut(width).zip(part.chunks_exact(cb)) {
            dst[cols.clone()].copy_from_slice(src);
        }
    }
    Ok(out)
}

/// Where the digests of leaf hashing go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Digests {
    /// Into one resident buffer of `words` (the call's digests, or a tree's layers),
    /// allocated before the batches and counted against the budget.
    Resident { words: usize },
    /// Into a scratch buffer per batch, read back after each batch.
    PerBatch,
}

/// Leaf hashing: `rows` messages of `len` words each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeafHashing {
    pub rows: usize,
    pub len: usize,
    /// Words each message of a batch keeps in a buffer of its own while it is hashed
    /// (the sponge state of kernels that absorb in several launches; 0 for none).
    pub state_words: usize,
    pub digests: Digests,
}

/// Row batches for leaf hashing: the messages of a batch, their states and (per
/// batch) their digests within the budget left beside the resident digests, and each
/// buffer within the largest buffer.
pub fn leaf_hashing(limits: &DeviceLimits, job: &LeafHashing) -> Result<Batches, PlanError> {
    let mut budget = limits.budget_words;
    let mut row_digest = 0;
    match job.digests {
        Digests::Resident { words } => {
            if words > limits.max_buffer_words {
                return Err(PlanError::new(
                    "the digest buffer",
                    Limit::MaxBuffer,
                    words,
                    limits,
                ));
            }
            budget = budget
                .checked_sub(words)
                .ok_or_else(|| PlanError::new("the digest buffer", Limit::Budget, words, limits))?;
        }
        Digests::PerBatch => row_digest = DIGEST_WORDS,
    }
    if job.rows == 0 {
        return Ok(Batches::new(0, 1));
    }
    let per_row = job.len + job.state_words + row_digest;
    let by_budget = budget / per_row.max(1);
    if by_budget == 0 {
        return Err(PlanError {
            what: "one message",
            limit: Limit::Budget,
            needed_words: per_row,
            available_words: budget,
        });
    }
    let widest = job.len.max(job.state_words).max(row_digest).max(1);
    let by_buffer = limits.max_buffer_words / widest;
    if by_buffer == 0 {
        return Err(PlanError::new(
            "one message",
            Limit::MaxBuffer,
            widest,
            limits,
        ));
    }
    Ok(Batches::new(job.rows, by_budget.min(by_buffer)))
}

/// Batches of digest pairs for compression: each pair's two inputs and its output lie
/// in one buffer.
pub fn pair_batches(limits: &DeviceLimits, pairs: usize) -> Result<Batches, PlanError> {
    let per_pair = 3 * DIGEST_WORDS;
    let by_budget = limits.budget_words / per_pair;
    if by_budget == 0 {
        return Err(PlanError::new(
            "one pair of digests",
            Limit::Budget,
            per_pair,
            limits,
        ));
    }
    let by_buffer = limits.max_buffer_words / per_pair;
    if by_buffer == 0 {
        return Err(PlanError::new(
            "one pair of digests",
            Limit::MaxBuffer,
            per_pair,
            limits,
        ));
    }
    Ok(Batches::new(pairs, by_budget.min(by_buffer)))
}

/// Words of every digest layer of a tree over `rows` leaves (`rows` a power of two).
pub fn tree_words(rows: usize) -> usize {
    (2 * rows).saturating_sub(1) * DIGEST_WORDS
}

/// Why a call takes a slower path than its one-shot form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fallback {
    /// What did not fit (e.g. "the digest layers").
    pub what: &'static str,
    pub limit: Limit,
    pub needed_words: usize,
    pub available_words: usize,
    /// The path taken instead.
    pub instead: &'static str,
}

impl fmt::Display for Fallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} need {} words, more than {} ({} words): {}",
            self.what, self.needed_words, self.limit, self.available_words, self.instead
        )
    }
}

impl Fallback {
    /// Writes the fallback to the log (level `info`).
    pub fn log(&self, device: &str, call: &str) {
        tracing::info!(
            device,
            call,
            what = self.what,
            limit = %self.limit,
            needed_words = self.needed_words,
            available_words = self.available_words,
            "does not fit the device: {}",
            self.instead
        );
    }
}

/// How a Merkle tree is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreePlan {
    /// Every layer in one resident buffer; the leaves hashed in these row batches
    /// into it, then the compressions on the device.
    Resident { leaf_batches: Batches },
    /// The layers do not fit together: the leaves hashed with the device's row-batched
    /// leaf hashing and each layer compressed in batches of pairs, through the host.
    ByLayers(Fallback),
}

/// The plan of a tree over `rows` messages of `len` words (`state_words` as in
/// [`LeafHashing`]): resident where the layers fit one buffer and leave room in the
/// budget for one message at least, layer by layer otherwise. A message wider than the
/// largest buffer cannot be hashed on any path.
pub fn tree(
    limits: &DeviceLimits,
    rows: usize,
    len: usize,
    state_words: usize,
) -> Result<TreePlan, PlanError> {
    let words = tree_words(rows);
    let by_layers = |what, limit, needed_words| {
        Ok(TreePlan::ByLayers(Fallback {
            what,
            limit,
            needed_words,
            available_words: limits.words(limit),
            instead: "building the tree layer by layer through the host",
        }))
    };
    if words > limits.max_buffer_words {
        return by_layers("the digest layers", Limit::MaxBuffer, words);
    }
    let job = LeafHashing {
        rows,
        len,
        state_words,
        digests: Digests::Resident { words },
    };
    match leaf_hashing(limits, &job) {
        Ok(leaf_batches) => Ok(TreePlan::Resident { leaf_batches }),
        Err(e) if e.limit == Limit::Budget => by_layers(
            "the digest layers and one message",
            Limit::Budget,
            words.saturating_add(len + state_words),
        ),
        Err(e) => Err(e),
    }
}

/// How an LDE followed by the tree of its rows runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FusedPlan {
    /// The extension stays on the device and is hashed where it lies: the extension,
    /// its inputs and tables, the layers and the sponge states fit together.
    Fused,
    /// They do not: the LDE in column batches, then the tree over the rows read back.
    Separate(Fallback),
}

/// The plan of [`crate::Backend::lde_and_merkle_tree`] (`state_words` as in
/// [`LeafHashing`]).
pub fn lde_and_tree(limits: &DeviceLimits, shape: &LdeShape, state_words: usize) -> FusedPlan {
    let n = shape.lde_rows();
    let layers = tree_words(n);
    let states = n.saturating_mul(state_words);
    let total = shape
        .words_needed(shape.width)
        .saturating_add(layers)
        .saturating_add(states);
    let separate = |what, limit, needed_words| {
        FusedPlan::Separate(Fallback {
            what,
            limit,
            needed_words,
            available_words: limits.words(limit),
            instead: "the LDE in column batches, then the tree over its rows",
        })
    };
    if total > limits.budget_words {
        return separate("the extension and its tree", Limit::Budget, total);
    }
    let max = limits.max_buffer_words;
    let extension = n.saturating_mul(shape.width);
    if extension > max {
        return separate("the extension", Limit::MaxBuffer, extension);
    }
    if layers > max {
        return separate("the digest layers", Limit::MaxBuffer, layers);
    }
    if states > max {
        return separate("the sponge states", Limit::MaxBuffer, states);
    }
    FusedPlan::Fused
}

#[cfg(test)]
mod tests;
