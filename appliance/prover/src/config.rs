//! The Plonky3 configuration ProofBox proves with: types, FRI presets, and the stock
//! (adapter-free) configuration third parties verify with.

use std::sync::Arc;

use p3_challenger::DuplexChallenger;
use p3_commit::ExtensionMmcs;
use p3_dft::Radix2DitParallel;
use p3_field::Field;
use p3_field::extension::BinomialExtensionField;
use p3_fri::{FriParameters, TwoAdicFriPcs};
use p3_merkle_tree::MerkleTreeMmcs;
use p3_uni_stark::StarkConfig;
use proofbox_backend_api::{Backend, BackendField, DIGEST_ELEMS, LeafHasher, NodeCompressor};
use serde::{Deserialize, Serialize};

use crate::adapters::{BackendCompressor, BackendDft, BackendHasher, StageTracker};

/// The challenge field: the degree-4 binomial extension (about 124 bits).
pub type Challenge<F> = BinomialExtensionField<F, 4>;

/// The Fiat-Shamir challenger: a Poseidon2 width-16 duplex sponge, rate 8.
pub type Challenger<F> = DuplexChallenger<F, <F as BackendField>::Perm16, 16, 8>;

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

/// Stock Plonky3 types with no ProofBox code in them. Proofs made with [`Config`]
/// serialize to the same bytes as proofs of this configuration and verify under it.
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

/// Named FRI parameter sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FriPreset {
    /// About 100 bits of conjectured security (the default): blowup 4, 42 queries,
    /// 16 bits of query grinding. See `docs/proof-format.md`.
    #[default]
    Standard,
    /// Exactly Plonky3's `FriParameters::new_benchmark`: blowup 2, 100 queries, 16 bits
    /// of query grinding. Used to compare figures with Plonky3's own.
    Benchmark,
}

impl FriPreset {
    pub const ALL: [FriPreset; 2] = [Self::Standard, Self::Benchmark];

    pub const fn name(self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::Benchmark => "benchmark",
        }
    }

    pub const fn params(self) -> FriParams {
        match self {
            Self::Standard => FriParams {
                log_blowup: 2,
                log_final_poly_len: 0,
                max_log_arity: 1,
                num_queries: 42,
                batch_proof_of_work_bits: 0,
                commit_proof_of_work_bits: 0,
                query_proof_of_work_bits: 16,
            },
            Self::Benchmark => FriParams {
                log_blowup: 1,
                log_final_poly_len: 0,
                max_log_arity: 1,
                num_queries: 100,
                batch_proof_of_work_bits: 0,
                commit_proof_of_work_bits: 0,
                query_proof_of_work_bits: 16,
            },
        }
    }
}

impl core::str::FromStr for FriPreset {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown FRI preset {s:?} (expected standard or benchmark)"))
    }
}

/// FRI parameters as they travel in a proof artifact (every number explicit, so a
/// verifier needs no preset table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FriParams {
    pub log_blowup: u8,
    pub log_final_poly_len: u8,
    pub max_log_arity: u8,
    pub num_queries: u16,
    pub batch_proof_of_work_bits: u8,
    pub commit_proof_of_work_bits: u8,
    pub query_proof_of_work_bits: u8,
}

impl FriParams {
    /// Conjectured security in bits (ethSTARK conjecture, as Plonky3 states it):
    /// `log_blowup * num_queries + query_proof_of_work_bits`, capped by the
    /// challenge field's ~124 bits.
    pub fn conjectured_security_bits(&self) -> u32 {
        let bits =
            self.log_blowup as u32 * self.num_queries as u32 + self.query_proof_of_work_bits as u32;
        bits.min(124)
    }

    /// Checks the parameters against what a verifier will accept.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=4).contains(&self.log_blowup) {
            return Err(format!("log_blowup {} outside 1..=4", self.log_blowup));
        }
        if self.num_queries == 0 || self.num_queries > 1000 {
            return Err(format!("num_queries {} outside 1..=1000", self.num_queries));
        }
        if self.max_log_arity == 0 || self.max_log_arity > 4 {
            return Err(format!(
                "max_log_arity {} outside 1..=4",
                self.max_log_arity
            ));
        }
        if self.log_final_poly_len > 8 {
            return Err(format!(
                "log_final_poly_len {} above 8",
                self.log_final_poly_len
            ));
        }
        if [
            self.batch_proof_of_work_bits,
            self.commit_proof_of_work_bits,
            self.query_proof_of_work_bits,
        ]
        .iter()
        .any(|&b| b > 30)
        {
            return Err("proof-of-work bits above 30".into());
        }
        Ok(())
    }

    pub fn to_plonky3<M>(&self, mmcs: M) -> FriParameters<M> {
        FriParameters {
            log_blowup: self.log_blowup as usize,
            log_final_poly_len: self.log_final_poly_len as usize,
            max_log_arity: self.max_log_arity as usize,
            num_queries: self.num_queries as usize,
            batch_proof_of_work_bits: self.batch_proof_of_work_bits as usize,
            commit_proof_of_work_bits: self.commit_proof_of_work_bits as usize,
            query_proof_of_work_bits: self.query_proof_of_work_bits as usize,
            mmcs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn benchmark_preset_equals_plonky3_new_benchmark() {
        let ours = FriPreset::Benchmark.params().to_plonky3(());
        let theirs = FriParameters::new_benchmark(());
        assert_eq!(ours.log_blowup, theirs.log_blowup);
        assert_eq!(ours.log_final_poly_len, theirs.log_final_poly_len);
        assert_eq!(ours.max_log_arity, theirs.max_log_arity);
        assert_eq!(ours.num_queries, theirs.num_queries);
        assert_eq!(
            ours.batch_proof_of_work_bits,
            theirs.batch_proof_of_work_bits
        );
        assert_eq!(
            ours.commit_proof_of_work_bits,
            theirs.commit_proof_of_work_bits
        );
        assert_eq!(
            ours.query_proof_of_work_bits,
            theirs.query_proof_of_work_bits
        );
    }

    #[test]
    fn standard_preset_reaches_100_conjectured_bits() {
        assert_eq!(
            FriPreset::Standard.params().conjectured_security_bits(),
            100
        );
        assert!(FriPreset::Benchmark.params().conjectured_security_bits() >= 100);
        for p in FriPreset::ALL {
            p.params().validate().unwrap();
        }
    }
}
