//! The Plonky3 configuration ProofBox proofs are made and verified in: the challenge
//! field, the Fiat-Shamir challenger, and the stock (ProofBox-free) configuration
//! third parties verify with.

use p3_challenger::DuplexChallenger;
use p3_commit::ExtensionMmcs;
use p3_dft::Radix2DitParallel;
use p3_field::Field;
use p3_field::extension::BinomialExtensionField;
use p3_fri::TwoAdicFriPcs;
use p3_merkle_tree::MerkleTreeMmcs;
use p3_uni_stark::StarkConfig;
use proofbox_backend_api::{BackendField, DIGEST_ELEMS, LeafHasher, NodeCompressor};

use crate::params::FriParams;

/// The challenge field: the degree-4 binomial extension (about 124 bits).
pub type Challenge<F> = BinomialExtensionField<F, 4>;

/// The Fiat-Shamir challenger: a Poseidon2 width-16 duplex sponge, rate 8.
pub type Challenger<F> = DuplexChallenger<F, <F as BackendField>::Perm16, 16, 8>;

/// Stock Plonky3 types with no ProofBox code in them. Proofs made by any ProofBox
/// backend serialize to the same bytes as proofs of this configuration and verify
/// under it.
pub mod stock {
    use super::*;

    pub type ValMmcs<F> = MerkleTreeMmcs<
        <F as Field>::Packing,
        <F as Field>::Packing,
        LeafHasher<F>,
        NodeCompressor<F>,
        2,
        DIGEST_ELEMS,
    >;
    pub type ChallengeMmcs<F> = ExtensionMmcs<F, Challenge<F>, ValMmcs<F>>;
    pub type Pcs<F> = TwoAdicFriPcs<F, Radix2DitParallel<F>, ValMmcs<F>, ChallengeMmcs<F>>;
    pub type Config<F> = StarkConfig<Pcs<F>, Challenge<F>, Challenger<F>>;

    /// The stock configuration for `params`.
    pub fn config<F: BackendField>(params: &FriParams) -> Config<F> {
        let val_mmcs = ValMmcs::<F>::new(F::leaf_hasher(), F::node_compressor(), 0);
        let fri = params.to_plonky3(ChallengeMmcs::<F>::new(val_mmcs.clone()));
        let pcs = Pcs::<F>::new(Radix2DitParallel::default(), val_mmcs, fri);
        StarkConfig::new(pcs, Challenger::<F>::new(F::poseidon2_16()))
    }
}
