//! Plonky3 plugged into the backend seam.
//!
//! Plonky3's prover is generic over a DFT (`TwoAdicSubgroupDft`) and, inside its
//! `MerkleTreeMmcs`, over a leaf hasher (`CryptographicHasher`) and a node compression
//! (`PseudoCompressionFunction`). The adapters here implement those traits on top of a
//! [`Backend`], so that `p3-uni-stark`'s prover runs its LDEs and its Merkle hashing
//! on whichever backend was chosen:
//!
//! - [`BackendDft::coset_lde_batch`] (what `TwoAdicFriPcs::commit` calls for the trace
//!   and the quotient chunks) runs on the backend; the other DFT entry points, which
//!   the prover does not use on its hot path, run Plonky3's CPU code.
//! - [`BackendHasher`] and [`BackendCompressor`] declare many lanes, so Plonky3's
//!   Merkle tree builder hands them whole batches of rows (`hash_many`) and of digest
//!   pairs (`compress_many`), which go to the backend. The per-message methods and the
//!   packed variants (used by verification) are the stock sponge and compression, so
//!   digests are the same by construction and the conformance suite checks the
//!   backend's batches against them.
//!
//! Plonky3's traits cannot return errors. A backend failure inside one of these calls
//! unwinds with a [`BackendFailure`] payload; the prover catches it at the top of the
//! job and turns it into an error for that job alone (see `crate::prover`).

use std::any::TypeId;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use p3_dft::{Radix2DitParallel, TwoAdicSubgroupDft};
use p3_matrix::bitrev::{BitReversalPerm, BitReversedMatrixView};
use p3_matrix::dense::RowMajorMatrix;
use p3_symmetric::{CryptographicHasher, PseudoCompressionFunction};
use proofbox_backend_api::{
    Backend, BackendError, BackendField, DIGEST_ELEMS, Digest, LeafHasher, NodeCompressor,
};
use proofbox_backend_cpu::CpuBackend;

use crate::progress::{Progress, Stage};

/// The payload a backend failure unwinds with.
#[derive(Debug, Clone)]
pub struct BackendFailure(pub BackendError);

/// Unwinds with `err` as a [`BackendFailure`] payload.
pub(crate) fn fail(err: BackendError) -> ! {
    std::panic::panic_any(BackendFailure(err))
}

/// Rows per batch the Merkle tree builder hands to the backend, at least.
pub const BACKEND_LANES: usize = 1024;

/// Reports prover stages from the calls it makes: the first LDE commits the trace,
/// the next ones the quotient chunks; once the quotient tree has its root, every
/// further Merkle commitment belongs to the opening (FRI).
#[derive(Clone)]
pub struct StageTracker {
    ldes: Arc<AtomicUsize>,
    opened: Arc<AtomicBool>,
    progress: Arc<dyn Progress>,
}

impl StageTracker {
    pub fn new(progress: Arc<dyn Progress>) -> Self {
        Self {
            ldes: Arc::new(AtomicUsize::new(0)),
            opened: Arc::new(AtomicBool::new(false)),
            progress,
        }
    }

    fn on_lde(&self) {
        match self.ldes.fetch_add(1, Ordering::Relaxed) {
            0 => self.progress.stage(Stage::Commit),
            1 => self.progress.stage(Stage::Quotient),
            _ => {}
        }
    }

    /// Called after a batch of compressions producing `outputs` digests: a single
    /// output is a root.
    fn on_compressed(&self, outputs: usize) {
        if outputs == 1
            && self.ldes.load(Ordering::Relaxed) >= 2
            && !self.opened.swap(true, Ordering::Relaxed)
        {
            self.progress.stage(Stage::Open);
        }
    }
}

impl Default for StageTracker {
    fn default() -> Self {
        Self::new(Arc::new(()))
    }
}

/// `TwoAdicSubgroupDft` on a backend. Plonky3 requires `Default`; a default instance
/// runs on the CPU backend (same values), and the prover never builds one.
pub struct BackendDft<B> {
    backend: Option<Arc<B>>,
    tracker: StageTracker,
}

impl<B> Clone for BackendDft<B> {
    fn clone(&self) -> Self {
        Self {
            backend: self.backend.clone(),
            tracker: self.tracker.clone(),
        }
    }
}

impl<B> BackendDft<B> {
    pub fn new(backend: Arc<B>, tracker: StageTracker) -> Self {
        Self {
            backend: Some(backend),
            tracker,
        }
    }
}

impl<B> Default for BackendDft<B> {
    fn default() -> Self {
        Self {
            backend: None,
            tracker: StageTracker::default(),
        }
    }
}

impl<B: Backend, F: BackendField> TwoAdicSubgroupDft<F> for BackendDft<B> {
    type Evaluations = BitReversedMatrixView<RowMajorMatrix<F>>;

    fn dft_batch(&self, mat: RowMajorMatrix<F>) -> Self::Evaluations {
        Radix2DitParallel::<F>::default().dft_batch(mat)
    }

    fn coset_lde_batch(
        &self,
        mat: RowMajorMatrix<F>,
        added_bits: usize,
        shift: F,
    ) -> Self::Evaluations {
        self.tracker.on_lde();
        let out = match &self.backend {
            Some(b) => b.coset_lde_batch(mat, added_bits, shift),
            None => CpuBackend::new().coset_lde_batch(mat, added_bits, shift),
        };
        match out {
            Ok(bitrev) => BitReversalPerm::new_view(bitrev),
            Err(e) => fail(e),
        }
    }
}

/// The leaf hasher of the seam, with batches sent to a backend.
pub struct BackendHasher<B, F: BackendField> {
    backend: Arc<B>,
    stock: LeafHasher<F>,
}

impl<B, F: BackendField> Clone for BackendHasher<B, F> {
    fn clone(&self) -> Self {
        Self {
            backend: self.backend.clone(),
            stock: self.stock.clone(),
        }
    }
}

impl<B: Backend, F: BackendField> BackendHasher<B, F> {
    pub fn new(backend: Arc<B>) -> Self {
        Self {
            backend,
            stock: F::leaf_hasher(),
        }
    }
}

/// Reinterprets a slice of `T` as a slice of `U` when they are the same type.
fn same_type<T: 'static, U: 'static>(xs: &[T]) -> Option<&[U]> {
    (TypeId::of::<T>() == TypeId::of::<U>())
        // SAFETY: `T` and `U` are the same type.
        .then(|| unsafe { core::slice::from_raw_parts(xs.as_ptr().cast::<U>(), xs.len()) })
}

/// Mutable form of [`same_type`].
fn same_type_mut<T: 'static, U: 'static>(xs: &mut [T]) -> Option<&mut [U]> {
    (TypeId::of::<T>() == TypeId::of::<U>())
        // SAFETY: `T` and `U` are the same type.
        .then(|| unsafe { core::slice::from_raw_parts_mut(xs.as_mut_ptr().cast::<U>(), xs.len()) })
}

/// One impl for scalars and packed values (as the stock sponge has): batches of
/// scalar messages go to the backend; everything else is the stock sponge.
impl<B: Backend, F: BackendField, T> CryptographicHasher<T, [T; DIGEST_ELEMS]>
    for BackendHasher<B, F>
where
    T: Clone + 'static,
    LeafHasher<F>: CryptographicHasher<T, [T; DIGEST_ELEMS]>,
{
    const LANES: usize = BACKEND_LANES;
    const PREFER_CONTIGUOUS_INPUT: bool = true;

    fn hash_iter<I: IntoIterator<Item = T>>(&self, input: I) -> [T; DIGEST_ELEMS] {
        self.stock.hash_iter(input)
    }

    fn hash_many(&self, input: &[T], out: &mut [[T; DIGEST_ELEMS]]) {
        match (
            same_type::<T, F>(input),
            same_type_mut::<[T; DIGEST_ELEMS], Digest<F>>(out),
        ) {
            (Some(input), Some(out)) => {
                if let Err(e) = self.backend.hash_rows(input, out) {
                    fail(e)
                }
            }
            _ => self.stock.hash_many(input, out),
        }
    }
}

/// The node compression of the seam, with batches sent to a backend.
pub struct BackendCompressor<B, F: BackendField> {
    backend: Arc<B>,
    stock: NodeCompressor<F>,
    tracker: StageTracker,
}

impl<B, F: BackendField> Clone for BackendCompressor<B, F> {
    fn clone(&self) -> Self {
        Self {
            backend: self.backend.clone(),
            stock: self.stock.clone(),
            tracker: self.tracker.clone(),
        }
    }
}

impl<B: Backend, F: BackendField> BackendCompressor<B, F> {
    pub fn new(backend: Arc<B>, tracker: StageTracker) -> Self {
        Self {
            backend,
            stock: F::node_compressor(),
            tracker,
        }
    }
}

/// One impl for scalars and packed values: batches of scalar pairs go to the
/// backend; everything else is the stock compression.
impl<B: Backend, F: BackendField, T> PseudoCompressionFunction<[T; DIGEST_ELEMS], 2>
    for BackendCompressor<B, F>
where
    T: Clone + 'static,
    NodeCompressor<F>: PseudoCompressionFunction<[T; DIGEST_ELEMS], 2>,
{
    const LANES: usize = BACKEND_LANES;

    fn compress(&self, input: [[T; DIGEST_ELEMS]; 2]) -> [T; DIGEST_ELEMS] {
        self.stock.compress(input)
    }

    fn compress_many(&self, inputs: &[[[T; DIGEST_ELEMS]; 2]], out: &mut [[T; DIGEST_ELEMS]]) {
        match (
            same_type::<[[T; DIGEST_ELEMS]; 2], [Digest<F>; 2]>(inputs),
            same_type_mut::<[T; DIGEST_ELEMS], Digest<F>>(out),
        ) {
            (Some(inputs), Some(out)) => {
                if let Err(e) = self.backend.compress_pairs(inputs, out) {
                    fail(e)
                }
                self.tracker.on_compressed(out.len());
            }
            _ => self.stock.compress_many(inputs, out),
        }
    }
}
