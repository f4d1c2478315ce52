//! The input commitments of a resident proof: Merkle trees that lie with their
//! matrices on the device, opened with exactly the proofs the stock `MerkleTreeMmcs`
//! (arity 2, cap height 0) makes.
//!
//! - [`ResidentData`] is one commitment: one resident matrix (the committed matrices
//!   of equal height side by side: the stock tree hashes the rows of equal-height
//!   matrices concatenated, so this is the same tree), the widths that split it back
//!   into the committed matrices, and, where the committing code kept it, the matrix's
//!   evaluations on the small domain the claimed openings are interpolated from.
//! - [`ResidentMmcs`] is the `Mmcs` FRI opens the inputs through: rows come back with
//!   [`ResidentBackend::read_rows`], and the pruned authentication paths of
//!   `MerkleTreeMmcs::open_multi_batch` in one call for all layers
//!   ([`ResidentBackend::read_nodes`]): only the boundary siblings the proof carries
//!   come back. Verification is the stock `MerkleTreeMmcs`.
//! - The matrices are on the device, so `Mmcs::get_matrices` has nothing to lend;
//!   heights come from [`ResidentData`] itself.

use std::sync::Arc;

use p3_commit::{BatchOpening, BatchOpeningRef, Mmcs};
use p3_matrix::dense::RowMajorMatrix;
use p3_matrix::{Dimensions, Matrix};
use p3_merkle_tree::{MerkleCap, MerkleTreeError, PrunedMerklePaths};
use proofbox_backend_api::BackendError;
use proofbox_backend_api::resident::{ResidentBackend, ResidentField, ResidentMatrix};
use proofbox_verifier::config::stock;

use crate::adapters::fail;

/// The stock input MMCS, whose commitments and proofs resident ones equal.
type Stock<F> = stock::ValMmcs<F>;
/// A commitment: the Merkle cap of height 0 (the root).
pub type Commitment<F> = <Stock<F> as Mmcs<F>>::Commitment;
/// The pruned authentication paths of a multi-opening.
pub type MultiProof<F> = PrunedMerklePaths<F, { proofbox_backend_api::DIGEST_ELEMS }>;

/// The rows opened at each query: `rows[q][m]` is committed matrix `m`'s row.
pub type OpenedRows<F> = Vec<Vec<Vec<F>>>;

/// One commitment of a resident proof (see the [module docs](self)).
pub struct ResidentData<B: ResidentBackend, F: ResidentField> {
    pub(crate) matrix: B::Matrix<F>,
    /// The committed matrices' widths, in order; they sum to the matrix's width.
    pub(crate) widths: Vec<usize>,
    /// The matrix's evaluations on `low_shift * H`, `|H| = height >> log_blowup`,
    /// natural row order, when the committing code had them on the host.
    pub(crate) low: Option<LowEvaluations<F>>,
}

/// Evaluations of every column of a committed matrix on the coset `shift * H` of the
/// order of the polynomials' degree bound, natural row order.
pub struct LowEvaluations<F> {
    pub(crate) values: RowMajorMatrix<F>,
    pub(crate) shift: F,
}

impl<B: ResidentBackend, F: ResidentField> ResidentData<B, F> {
    /// Rows of the committed matrices (one height for all).
    pub fn height(&self) -> usize {
        self.matrix.height()
    }

    /// The committed matrices' widths, in commit order.
    pub fn widths(&self) -> &[usize] {
        &self.widths
    }

    /// The resident matrix (the committed matrices side by side).
    pub fn matrix(&self) -> &B::Matrix<F> {
        &self.matrix
    }

    /// The columns of committed matrix `idx` in the resident matrix.
    pub(crate) fn columns(&self, idx: usize) -> core::ops::Range<usize> {
        let start: usize = self.widths[..idx].iter().sum();
        start..start + self.widths[idx]
    }

    /// Splits full rows into the committed matrices' rows.
    pub(crate) fn split_row(&self, row: &[F]) -> Vec<Vec<F>> {
        (0..self.widths.len())
            .map(|m| row[self.columns(m)].to_vec())
            .collect()
    }
}

/// The `Mmcs` over resident matrices (see the [module docs](self)).
pub struct ResidentMmcs<B, F: ResidentField> {
    backend: Arc<B>,
    stock: Stock<F>,
}

impl<B, F: ResidentField> Clone for ResidentMmcs<B, F> {
    fn clone(&self) -> Self {
        Self {
            backend: self.backend.clone(),
            stock: self.stock.clone(),
        }
    }
}

impl<B: ResidentBackend, F: ResidentField> ResidentMmcs<B, F> {
    pub fn new(backend: Arc<B>) -> Self {
        Self {
            backend,
            stock: Stock::<F>::new(F::leaf_hasher(), F::node_compressor(), 0),
        }
    }

    pub fn backend(&self) -> &Arc<B> {
        &self.backend
    }

    /// Commits a resident matrix split into committed matrices of `widths`: the tree
    /// is built where the matrix lies and only the root comes back.
    pub fn commit_resident(
        &self,
        mut matrix: B::Matrix<F>,
        widths: Vec<usize>,
        low: Option<LowEvaluations<F>>,
    ) -> Result<(Commitment<F>, ResidentData<B, F>), BackendError> {
        debug_assert_eq!(widths.iter().sum::<usize>(), matrix.width());
        let root = self.backend.commit(&mut matrix)?;
        Ok((
            MerkleCap::new(vec![root]),
            ResidentData {
                matrix,
                widths,
                low,
            },
        ))
    }

    /// The rows `indices` of every committed matrix, and the pruned authentication
    /// paths `MerkleTreeMmcs::open_multi_batch` gives for them.
    pub fn open_resident(
        &self,
        indices: &[usize],
        data: &ResidentData<B, F>,
    ) -> Result<(OpenedRows<F>, MultiProof<F>), BackendError> {
        let rows = self.backend.read_rows(&data.matrix, indices)?;
        let opened = rows.iter().map(|r| data.split_row(r)).collect();
        let proof = self.pruned_paths(indices, data)?;
        Ok((opened, proof))
    }

    /// The boundary siblings of the paths from `indices` to the root, in the order the
    /// stock pruning emits them: level by level from the leaves, then by group, then by
    /// position in the group; a sibling that covers a queried node is left out.
    pub(crate) fn pruned_paths(
        &self,
        indices: &[usize],
        data: &ResidentData<B, F>,
    ) -> Result<MultiProof<F>, BackendError> {
        let wanted = pruned_siblings(data.height(), indices);
        let sibling_hashes = if wanted.is_empty() {
            Vec::new()
        } else {
            self.backend.read_nodes(&data.matrix, &wanted)?
        };
        Ok(PrunedMerklePaths { sibling_hashes })
    }
}

/// The tree nodes (`(layer, index)`, layer 0 the leaves' digests) whose digests the
/// pruned paths from leaves `indices` to the root carry, in the order the stock
/// pruning emits them: level by level from the leaves, then by group, then by
/// position in the group; a sibling that covers a queried node is left out. Which
/// nodes these are depends on the indices only, so every layer's digests can be read
/// in one call.
pub(crate) fn pruned_siblings(height: usize, indices: &[usize]) -> Vec<(usize, usize)> {
    let levels = height.trailing_zeros() as usize;
    let mut nodes: Vec<usize> = indices.to_vec();
    nodes.sort_unstable();
    nodes.dedup();
    let mut wanted = Vec::new();
    for level in 0..levels {
        if nodes.is_empty() {
            break;
        }
        let mut parents = Vec::with_capacity(nodes.len());
        let mut i = 0;
        while i < nodes.len() {
            let group = nodes[i] / 2;
            for k in 0..2 {
                let child = 2 * group + k;
                if i < nodes.len() && nodes[i] == child {
                    i += 1;
                } else {
                    wanted.push((level, child));
                }
            }
            parents.push(group);
        }
        nodes = parents;
    }
    wanted
}

impl<B: ResidentBackend, F: ResidentField> Mmcs<F> for ResidentMmcs<B, F> {
    type ProverData<M> = ResidentData<B, F>;
    type Commitment = Commitment<F>;
    type Proof = <Stock<F> as Mmcs<F>>::Proof;
    type MultiProof = MultiProof<F>;
    type Error = MerkleTreeError;

    /// Uploads equal-height matrices side by side and commits them on the device.
    fn commit<M: Matrix<F>>(&self, inputs: Vec<M>) -> (Self::Commitment, ResidentData<B, F>) {
        let height = inputs.first().map_or(0, |m| m.height());
        assert!(
            height.is_power_of_two() && inputs.iter().all(|m| m.height() == height),
            "resident commitments take matrices of one power-of-two height"
        );
        let widths: Vec<usize> = inputs.iter().map(|m| m.width()).collect();
        let width: usize = widths.iter().sum();
        let mut values = Vec::with_capacity(height * width);
        for r in 0..height {
            for m in &inputs {
                values.extend(m.row(r).expect("row within height"));
            }
        }
        let matrix = self
            .backend
            .upload_matrix(RowMajorMatrix::new(values, width))
            .unwrap_or_else(|e| fail(e));
        self.commit_resident(matrix, widths, None)
            .unwrap_or_else(|e| fail(e))
    }

    fn open_batch<M: Matrix<F>>(
        &self,
        index: usize,
        data: &ResidentData<B, F>,
    ) -> BatchOpening<F, Self> {
        let row = self
            .backend
            .read_rows(&data.matrix, &[index])
            .unwrap_or_else(|e| fail(e));
        let path = self
            .backend
            .merkle_path(&data.matrix, index)
            .unwrap_or_else(|e| fail(e));
        BatchOpening::new(data.split_row(&row[0]), path)
    }

    /// # Panics
    ///
    /// Always: resident matrices lie on the device (read them with
    /// [`ResidentBackend::read_rows`]; heights come from
    /// [`Mmcs::get_matrix_heights`]).
    fn get_matrices<'a, M: Matrix<F>>(&self, _data: &'a ResidentData<B, F>) -> Vec<&'a M> {
        panic!("resident matrices lie on the device: read their rows through the backend")
    }

    fn get_matrix_heights<M: Matrix<F>>(&self, data: &ResidentData<B, F>) -> Vec<usize> {
        vec![data.height(); data.widths.len()]
    }

    fn get_max_height<M: Matrix<F>>(&self, data: &ResidentData<B, F>) -> usize {
        data.height()
    }

    fn verify_batch(
        &self,
        commit: &Self::Commitment,
        dimensions: &[Dimensions],
        index: usize,
        opening: BatchOpeningRef<'_, F, Self>,
    ) -> Result<(), Self::Error> {
        self.stock.verify_batch(
            commit,
            dimensions,
            index,
            BatchOpeningRef::new(opening.opened_values, opening.opening_proof),
        )
    }

    fn open_multi_batch<M: Matrix<F>>(
        &self,
        indices: &[usize],
        data: &ResidentData<B, F>,
    ) -> (Vec<Vec<Vec<F>>>, Self::MultiProof) {
        self.open_resident(indices, data)
            .unwrap_or_else(|e| fail(e))
    }

    fn verify_multi_batch<R: AsRef<[F]> + PartialEq>(
        &self,
        commit: &Self::Commitment,
        dimensions: &[Dimensions],
        indices: &[usize],
        opened_values: &[Vec<R>],
        proof: &Self::MultiProof,
    ) -> Result<(), Self::Error> {
        self.stock
            .verify_multi_batch(commit, dimensions, indices, opened_values, proof)
    }
}
