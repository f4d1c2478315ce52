//! The Plonky3 configuration ProofBox proves with: the verifier's configuration
//! (`proofbox_verifier::config`) with the DFT and Merkle hashing routed through a
//! backend. Proofs made with it verify under [`stock`].

use std::sync::Arc;

use p3_commit::ExtensionMmcs;
use p3_field::Field;
use p3_fri::TwoAdicFriPcs;
use p3_merkle_tree::MerkleTreeMmcs;
use p3_uni_stark::StarkConfig;
use proofbox_backend_api::{Backend, BackendField, DIGEST_ELEMS};
pub use proofbox_verifier::config::{Challenge, Challenger, stock};
pub use proofbox_verifier::{FriParams, FriPreset};

use crate::adapters::{BackendCompressor, BackendDft, BackendHasher, StageTracker};

/// Merkle commitments of base-field matrices, hashing through a backend.
pub type ValMmcs<B, F> = MerkleTreeMmcs<
    <F as Field>::Packing,
    <F as Field>::Packing,
    BackendHasher<B, F>,
    BackendCompressor<B, F>,
    2,
    DIGEST_ELEMS,
>;
/// Merkle commitments of extension-field matrices (FRI's folded codewords).
pub type ChallengeMmcs<B, F> = ExtensionMmcs<F, Challenge<F>, ValMmcs<B, F>>;
/// The polynomial commitment scheme: FRI over two-adic cosets.
pub type Pcs<B, F> = TwoAdicFriPcs<F, BackendDft<B>, ValMmcs<B, F>, ChallengeMmcs<B, F>>;
/// The whole STARK configuration for backend `B` and field `F`.
pub type Config<B, F> = StarkConfig<Pcs<B, F>, Challenge<F>, Challenger<F>>;

/// The configuration for backend `backend`, reporting stages to `tracker`.
pub fn config<B: Backend, F: BackendField>(
    backend: Arc<B>,
    params: &FriParams,
    tracker: StageTracker,
) -> Config<B, F> {
    let val_mmcs = ValMmcs::<B, F>::new(
        BackendHasher::new(backend.clone()),
        BackendCompressor::new(backend.clone(), tracker.clone()),
        0,
    );
    let fri = params.to_plonky3(ChallengeMmcs::<B, F>::new(val_mmcs.clone()));
    let pcs = Pcs::<B, F>::new(BackendDft::new(backend, tracker), val_mmcs, fri);
    StarkConfig::new(pcs, Challenger::<F>::new(F::poseidon2_16()))
}
