//! FRI's commit-phase commitments on the device: the `Mmcs` over the extension field
//! that FRI's proof names, with exactly the commitments and proofs of the stock
//! `ExtensionMmcs` over `MerkleTreeMmcs` (which verifies them). Arity-2 schedules
//! (every preset's) fold and commit on the device without it (`super::fri_prove`);
//! schedules with rounds of higher arity run the stock `prove_fri`, which commits
//! each round's codeword through it:
//!
//! - **commit**: the codeword (a matrix of `arity` extension elements a row, folded
//!   on the host) is flattened to the base field as `ExtensionMmcs` flattens it
//!   (each element's four coefficients in order), uploaded once
//!   ([`ResidentBackend::upload_matrix`]) and committed where it lies
//!   ([`ResidentBackend::commit`]): one copy up, the root back. The stock path
//!   instead sends the rows and every layer's digests through the backend's
//!   `hash_many` and `compress_many`, a round trip each.
//! - The folded codeword also stays on the host ([`Mmcs::get_matrices`] lends it to
//!   the next round's fold), so opened rows are read from it without a transfer.
//! - **open**: the pruned authentication paths of all queries in one call
//!   ([`ResidentBackend::read_nodes`]; the nodes are `mmcs::pruned_siblings`).
//! - **verify** is the stock `ExtensionMmcs` over the stock `MerkleTreeMmcs`.

use std::sync::Arc;

use p3_commit::{BatchOpening, BatchOpeningRef, ExtensionMmcs, Mmcs};
use p3_field::BasedVectorSpace;
use p3_matrix::dense::RowMajorMatrix;
use p3_matrix::{Dimensions, Matrix};
use p3_merkle_tree::MerkleTreeError;
use proofbox_backend_api::resident::{ResidentBackend, ResidentField};

use super::mmcs::{Commitment, MultiProof, ResidentData, ResidentMmcs};
use crate::adapters::fail;
use crate::config::{Challenge, stock};

/// The stock MMCS of FRI's codewords, whose commitments and proofs these equal.
type Stock<F> = ExtensionMmcs<F, Challenge<F>, stock::ValMmcs<F>>;

/// One round's commitment: the codeword's matrices on the host, its tree on the
/// device.
pub struct FriLayerData<B: ResidentBackend, F: ResidentField, M> {
    matrices: Vec<M>,
    tree: ResidentData<B, F>,
}

/// The `Mmcs<Challenge<F>>` of FRI's commit phase (see the [module docs](self)).
pub struct ResidentFriMmcs<B, F: ResidentField> {
    inner: ResidentMmcs<B, F>,
    stock: Stock<F>,
}

impl<B, F: ResidentField> Clone for ResidentFriMmcs<B, F> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            stock: self.stock.clone(),
        }
    }
}

impl<B: ResidentBackend, F: ResidentField> ResidentFriMmcs<B, F> {
    pub fn new(backend: Arc<B>) -> Self {
        Self {
            inner: ResidentMmcs::new(backend),
            stock: Stock::<F>::new(stock::ValMmcs::<F>::new(
                F::leaf_hasher(),
                F::node_compressor(),
                0,
            )),
        }
    }

    /// Row `index` of every matrix of a commitment, from the host copy.
    fn host_rows<M: Matrix<Challenge<F>>>(
        data: &FriLayerData<B, F, M>,
        index: usize,
    ) -> Vec<Vec<Challenge<F>>> {
        data.matrices
            .iter()
            .map(|m| {
                m.row(index)
                    .expect("index within height")
                    .into_iter()
                    .collect()
            })
            .collect()
    }
}

/// The base-field width of matrices of `width` extension elements.
fn base_width<F: ResidentField>(width: usize) -> usize {
    width * <Challenge<F> as BasedVectorSpace<F>>::DIMENSION
}

impl<B: ResidentBackend, F: ResidentField> Mmcs<Challenge<F>> for ResidentFriMmcs<B, F> {
    type ProverData<M> = FriLayerData<B, F, M>;
    type Commitment = Commitment<F>;
    type Proof = <Stock<F> as Mmcs<Challenge<F>>>::Proof;
    type MultiProof = MultiProof<F>;
    type Error = MerkleTreeError;

    /// Flattens matrices of one power-of-two height side by side, uploads them once
    /// and commits them on the device.
    fn commit<M: Matrix<Challenge<F>>>(
        &self,
        inputs: Vec<M>,
    ) -> (Self::Commitment, FriLayerData<B, F, M>) {
        let height = inputs.first().map_or(0, |m| m.height());
        assert!(
            height.is_power_of_two() && inputs.iter().all(|m| m.height() == height),
            "resident commitments take matrices of one power-of-two height"
        );
        let widths: Vec<usize> = inputs.iter().map(|m| base_width::<F>(m.width())).collect();
        let width: usize = widths.iter().sum();
        let mut values: Vec<F> = Vec::with_capacity(height * width);
        for r in 0..height {
            for m in &inputs {
                for x in m.row(r).expect("row within height") {
                    values.extend_from_slice(x.as_basis_coefficients_slice());
                }
            }
        }
        let backend = self.inner.backend();
        let matrix = backend
            .upload_matrix(RowMajorMatrix::new(values, width))
            .unwrap_or_else(|e| fail(e));
        let (commitment, tree) = self
            .inner
            .commit_resident(matrix, widths, None)
            .unwrap_or_else(|e| fail(e));
        (
            commitment,
            FriLayerData {
                matrices: inputs,
                tree,
            },
        )
    }

    fn open_batch<M: Matrix<Challenge<F>>>(
        &self,
        index: usize,
        data: &FriLayerData<B, F, M>,
    ) -> BatchOpening<Challenge<F>, Self> {
        let path = self
            .inner
            .backend()
            .merkle_path(data.tree.matrix(), index)
            .unwrap_or_else(|e| fail(e));
        BatchOpening::new(Self::host_rows(data, index), path)
    }

    fn get_matrices<'a, M: Matrix<Challenge<F>>>(
        &self,
        data: &'a FriLayerData<B, F, M>,
    ) -> Vec<&'a M> {
        data.matrices.iter().collect()
    }

    fn verify_batch(
        &self,
        commit: &Self::Commitment,
        dimensions: &[Dimensions],
        index: usize,
        opening: BatchOpeningRef<'_, Challenge<F>, Self>,
    ) -> Result<(), Self::Error> {
        self.stock.verify_batch(
            commit,
            dimensions,
            index,
            BatchOpeningRef::new(opening.opened_values, opening.opening_proof),
        )
    }

    /// Rows from the host copy; the pruned paths of every query from the device in
    /// one read.
    fn open_multi_batch<M: Matrix<Challenge<F>>>(
        &self,
        indices: &[usize],
        data: &FriLayerData<B, F, M>,
    ) -> (Vec<Vec<Vec<Challenge<F>>>>, Self::MultiProof) {
        let rows = indices.iter().map(|&i| Self::host_rows(data, i)).collect();
        let proof = self
            .inner
            .pruned_paths(indices, &data.tree)
            .unwrap_or_else(|e| fail(e));
        (rows, proof)
    }

    fn verify_multi_batch<R: AsRef<[Challenge<F>]> + PartialEq>(
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
