//! The hardware seam of ProofBox.
//!
//! A STARK prover spends almost all of its time in two kernels: the batched coset
//! low-degree extension (a DFT over a 31-bit field) and the construction of Poseidon2
//! Merkle trees over the extended matrices. [`Backend`] bundles those kernels for one
//! device, together with device discovery. Every backend (CPU, CUDA, wgpu, OpenCL)
//! implements it, and every backend must return values **bit-identical** to the CPU
//! backend's: the conformance suite (`proofbox-conformance`) checks that.
//!
//! Design rules, after wgpu-hal:
//! - Static dispatch: the prover is generic over `B: Backend`. Choosing a backend by
//!   name at run time happens one level up, in the prover's dyn layer.
//! - The caller validates shapes and sizes (see [`validate`]). A backend reports only
//!   what the caller could not foresee: a missing driver, running out of device
//!   memory, a device lost mid-call, a kernel that failed to build.
//! - Field elements cross the seam in Plonky3's own types ([`BackendField`] is sealed
//!   to KoalaBear and BabyBear); device backends reinterpret them as their 32-bit
//!   Montgomery words, the representation the kernels work in.

mod error;
mod field;
mod info;
pub mod kernel_tables;
pub mod planner;
pub mod quotient;
pub mod readback;
pub mod resident;
pub mod timing;
pub mod transfer;
pub mod validate;

pub use error::BackendError;
pub use field::{BackendField, DIGEST_ELEMS, Digest, FieldId, LeafHasher, NodeCompressor};
pub use info::{BackendKind, BackendReport, DeviceInfo, DeviceType};
pub use resident::{
    Ext, OpeningClaim, ReducedOpening, ResidentBackend, ResidentField, ResidentMatrix,
};
use std::time::Duration;

use p3_matrix::dense::RowMajorMatrix;
pub use timing::KernelClock;
pub use transfer::{TransferCounters, TransferStats};

/// An extension (bit-reversed rows) and the digest layers of its Merkle tree.
pub type LdeAndTree<F> = (RowMajorMatrix<F>, Vec<Vec<Digest<F>>>);

/// The kernels of a STARK prover on one device.
///
/// Output conventions every implementation follows exactly:
/// - [`Backend::coset_lde_batch`] returns the extension in **bit-reversed row order**
///   (row `bitrev(i)` holds the evaluations at `shift * g^i`, `g` generating the
///   subgroup of order `height << added_bits`), the order FRI commits to.
/// - [`Backend::hash_rows`] hashes each row with the Poseidon2 width-24 padding-free
///   sponge (rate 16, 8 output elements) of [`LeafHasher`].
/// - [`Backend::compress_pairs`] compresses two digests with the width-16 truncated
///   Poseidon2 permutation of [`NodeCompressor`].
///
/// Only [`Backend::coset_lde_batch`], [`Backend::hash_rows`] and
/// [`Backend::compress_pairs`] are required; [`Backend::merkle_tree`] and
/// [`Backend::lde_and_merkle_tree`] have default implementations built on them that a
/// device backend overrides to keep data resident on the device. Kernel timing
/// ([`Backend::set_kernel_timing`], [`Backend::take_kernel_time`]) defaults to "not
/// measured"; see [`timing`]. Transfer accounting ([`Backend::transfer_counters`],
/// [`Backend::transfer_stats`]) defaults to "nothing crosses a device boundary" (all
/// zeros), which is true of the CPU backend only; see [`transfer`].
pub trait Backend: Send + Sync + 'static {
    /// Which family this backend belongs to.
    const KIND: BackendKind;

    /// Lists the devices this backend can drive, or says why it cannot run here.
    fn probe() -> Result<Vec<DeviceInfo>, BackendError>
    where
        Self: Sized;

    /// Opens the device with the given ordinal (an index into [`Backend::probe`]).
    fn open(ordinal: usize) -> Result<Self, BackendError>
    where
        Self: Sized;

    /// The device this instance runs on.
    fn device(&self) -> &DeviceInfo;

    /// Low-degree extension of every column of `mat` from the subgroup of order
    /// `mat.height()` onto the coset `shift * K`, `|K| = mat.height() << added_bits`.
    /// The input holds evaluations over the subgroup in natural order; the output
    /// rows are in bit-reversed order.
    fn coset_lde_batch<F: BackendField>(
        &self,
        mat: RowMajorMatrix<F>,
        added_bits: usize,
        shift: F,
    ) -> Result<RowMajorMatrix<F>, BackendError>;

    /// Hashes `out.len()` messages of equal length, laid out back to back in `input`,
    /// into one digest each.
    fn hash_rows<F: BackendField>(
        &self,
        input: &[F],
        out: &mut [Digest<F>],
    ) -> Result<(), BackendError>;

    /// Compresses each pair of digests into one.
    fn compress_pairs<F: BackendField>(
        &self,
        input: &[[Digest<F>; 2]],
        out: &mut [Digest<F>],
    ) -> Result<(), BackendError>;

    /// Builds a binary Merkle tree over the rows of equal-height matrices (each leaf
    /// hashes one row of every matrix, concatenated in order). The height must be a
    /// power of two. Returns every digest layer, leaves' digests first, root last.
    ///
    /// The root equals the commitment Plonky3's `MerkleTreeMmcs` (arity 2, cap
    /// height 0) makes of the same matrices.
    fn merkle_tree<F: BackendField>(
        &self,
        leaves: &[&RowMajorMatrix<F>],
    ) -> Result<Vec<Vec<Digest<F>>>, BackendError> {
        let height = validate::merkle_leaves(leaves).map_err(BackendError::invalid)?;
        let mut layer = vec![[F::ZERO; DIGEST_ELEMS]; height];
        if let [m] = leaves {
            // One matrix: its rows already lie back to back.
            self.hash_rows(&m.values[..height * m.width], &mut layer)?;
        } else {
            let width: usize = leaves.iter().map(|m| m.width).sum();
            let mut messages = Vec::with_capacity(height * width);
            for row in 0..height {
                for m in leaves {
                    messages.extend_from_slice(&m.values[row * m.width..(row + 1) * m.width]);
                }
            }
            self.hash_rows(&messages, &mut layer)?;
        }
        self.compress_to_root(layer)
    }

    /// Every layer of the tree above `leaves` (a power-of-two number of digests),
    /// built with [`Backend::compress_pairs`] one layer at a time: `leaves` first, the
    /// root last.
    fn compress_to_root<F: BackendField>(
        &self,
        leaves: Vec<Digest<F>>,
    ) -> Result<Vec<Vec<Digest<F>>>, BackendError> {
        let mut layers = vec![leaves];
        while layers.last().map_or(0, Vec::len) > 1 {
            let prev = layers.last().expect("non-empty");
            let (pairs, _) = prev.as_chunks::<2>();
            let mut next = vec![[F::ZERO; DIGEST_ELEMS]; pairs.len()];
            self.compress_pairs(pairs, &mut next)?;
            layers.push(next);
        }
        Ok(layers)
    }

    /// The LDE of `mat` followed by the Merkle tree of its rows, in one call so that a
    /// device backend can keep the extension resident between the two kernels.
    /// Returns the extension (bit-reversed rows) and the tree's digest layers.
    fn lde_and_merkle_tree<F: BackendField>(
        &self,
        mat: RowMajorMatrix<F>,
        added_bits: usize,
        shift: F,
    ) -> Result<LdeAndTree<F>, BackendError> {
        let lde = self.coset_lde_batch(mat, added_bits, shift)?;
        let layers = self.merkle_tree(&[&lde])?;
        Ok((lde, layers))
    }

    /// Turns measuring kernel time on the device on or off (off when opened: it
    /// costs an event or a query per launch). Returns whether this backend measures
    /// it; `false` means [`Backend::take_kernel_time`] always returns `None`.
    fn set_kernel_timing(&self, on: bool) -> bool {
        let _ = on;
        false
    }

    /// The time the device spent running kernels since timing was turned on or since
    /// the last call, as the device measured it (transfers and host work excluded),
    /// and resets it; `None` while timing is off or unsupported. Calls made from
    /// several threads at once are counted once, not summed.
    fn take_kernel_time(&self) -> Result<Option<Duration>, BackendError> {
        Ok(None)
    }

    /// The counters of the data this backend moves between host and device memory,
    /// the times it waits for the device and the kernels it launches ([`transfer`]);
    /// `None` for a backend whose data never leaves host memory (the CPU backend). A
    /// device backend returns its counters and counts every copy, wait and launch of
    /// every call in them.
    fn transfer_counters(&self) -> Option<&TransferCounters> {
        None
    }

    /// The limits this backend plans its calls against ([`planner::DeviceLimits`]: the
    /// memory one call may use and the largest single buffer), from what the device
    /// reports now (and any lower limit the caller set). The planner's batches and a
    /// call's [`BackendError::OutOfMemory`] follow from them. Unbounded for a backend
    /// whose data stays in host memory (the CPU backend).
    fn device_limits(&self) -> Result<planner::DeviceLimits, BackendError> {
        Ok(planner::DeviceLimits::UNBOUNDED)
    }

    /// A snapshot of [`Backend::transfer_counters`] (they only grow: subtract two
    /// snapshots with [`TransferStats::since`]). All zeros for a backend without
    /// counters: the CPU backend moves nothing between host and device and never
    /// waits for one.
    fn transfer_stats(&self) -> TransferStats {
        self.transfer_counters()
            .map(TransferCounters::snapshot)
            .unwrap_or_default()
    }
}

/// The root (last layer's single digest) of layers returned by [`Backend::merkle_tree`].
pub fn merkle_root<F: Copy>(layers: &[Vec<Digest<F>>]) -> Option<Digest<F>> {
    layers.last().and_then(|l| l.first()).copied()
}
