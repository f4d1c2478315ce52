//! The circuits ProofBox proves: Plonky3's Poseidon2, Keccak-f and Blake3 AIRs, each
//! sized by log2 of its trace rows, with inputs drawn deterministically from a seed
//! and optional input bytes.

use core::fmt;
use core::str::FromStr;

use p3_air::{Air, AirBuilder, BaseAir};
use p3_baby_bear::{
    BABYBEAR_POSEIDON2_HALF_FULL_ROUNDS, BABYBEAR_POSEIDON2_PARTIAL_ROUNDS_16,
    BABYBEAR_POSEIDON2_RC_16_EXTERNAL_FINAL, BABYBEAR_POSEIDON2_RC_16_EXTERNAL_INITIAL,
    BABYBEAR_POSEIDON2_RC_16_INTERNAL, BabyBear, GenericPoseidon2LinearLayersBabyBear,
};
use p3_field::PrimeCharacteristicRing;
use p3_field::extension::BinomiallyExtendable;
use p3_koala_bear::{
    GenericPoseidon2LinearLayersKoalaBear, KOALABEAR_POSEIDON2_HALF_FULL_ROUNDS,
    KOALABEAR_POSEIDON2_PARTIAL_ROUNDS_16, KOALABEAR_POSEIDON2_RC_16_EXTERNAL_FINAL,
    KOALABEAR_POSEIDON2_RC_16_EXTERNAL_INITIAL, KOALABEAR_POSEIDON2_RC_16_INTERNAL, KoalaBear,
};
use p3_matrix::dense::RowMajorMatrix;
use p3_poseidon2_air::{RoundConstants, VectorizedPoseidon2Air};
use p3_symmetric::CryptographicHasher;
use proofbox_backend_api::{Backend, BackendField, DIGEST_ELEMS, Digest, FieldId};

use crate::artifact::ProofArtifact;
use crate::config::{Config, stock};
use crate::prover::{ProveError, VerifyError, prove_air, verify_air};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

/// Poseidon2 permutations per trace row in the Poseidon2 circuit.
pub const POSEIDON2_PER_ROW: usize = 8;
/// Trace rows per Keccak-f permutation.
pub const KECCAK_ROWS_PER_PERM: usize = 24;
/// The largest optional input, in bytes.
pub const MAX_INPUT_BYTES: usize = 1 << 20;
/// Public values every proof carries: the statement digest.
pub const NUM_PUBLIC_VALUES: usize = DIGEST_ELEMS;

/// The circuits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CircuitId {
    /// Poseidon2 permutations (width 16, the field's standard round constants),
    /// `p3-poseidon2-air`'s vectorized AIR, 8 permutations per row.
    Poseidon2,
    /// Keccak-f\[1600\] permutations, `p3-keccak-air`, 24 rows per permutation.
    Keccak,
    /// Blake3 compressions, `p3-blake3-air`, one per row.
    Blake3,
    /// State transitions ([`crate::transition`]): a diff applied to the Poseidon2
    /// state tree, 256 rows per update, KoalaBear only. Requests by size prove a
    /// seeded random diff of `2^(log_rows - 8)` updates; real diffs go through
    /// [`crate::Prover::prove_transition`].
    #[serde(rename = "state-transition")]
    StateTransition,
}

impl CircuitId {
    pub const ALL: [CircuitId; 4] = [
        Self::Poseidon2,
        Self::Keccak,
        Self::Blake3,
        Self::StateTransition,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Self::Poseidon2 => "poseidon2",
            Self::Keccak => "keccak",
            Self::Blake3 => "blake3",
            Self::StateTransition => "state-transition",
        }
    }

    /// The fields the circuit is defined over.
    pub const fn fields(self) -> &'static [FieldId] {
        match self {
            Self::StateTransition => &[FieldId::KoalaBear],
            _ => &FieldId::ALL,
        }
    }

    /// Public values of its proofs.
    pub const fn num_public_values(self) -> usize {
        match self {
            Self::StateTransition => crate::transition::NUM_PUBLIC_VALUES,
            _ => NUM_PUBLIC_VALUES,
        }
    }

    /// Stable one-byte code used in the proof format.
    pub const fn code(self) -> u8 {
        match self {
            Self::Poseidon2 => 1,
            Self::Keccak => 2,
            Self::Blake3 => 3,
            Self::StateTransition => 4,
        }
    }

    pub const fn description(self) -> &'static str {
        match self {
            Self::Poseidon2 => "Poseidon2 permutations (width 16), 8 per trace row",
            Self::Keccak => "Keccak-f[1600] permutations, 24 trace rows each",
            Self::Blake3 => "Blake3 compression functions, one per trace row",
            Self::StateTransition => {
                "State-tree transitions (KoalaBear): a seeded random diff, 256 trace rows per update"
            }
        }
    }

    /// The smallest log2 trace height accepted.
    pub const fn min_log_rows(self) -> u8 {
        match self {
            Self::Keccak => 5,
            Self::StateTransition => crate::transition::LOG_ROWS_PER_UPDATE,
            _ => 3,
        }
    }

    /// The largest log2 trace height accepted. Chosen so that the trace and its LDE
    /// fit in a few GiB with the default (4x) blowup.
    pub const fn max_log_rows(self) -> u8 {
        match self {
            Self::Poseidon2 => 20,
            Self::Keccak => 20,
            Self::Blake3 => 20,
            // 4,096 updates; the trace is ~720 columns wide.
            Self::StateTransition => 20,
        }
    }

    /// Permutations (or compressions) proved at `log_rows`.
    pub const fn instances(self, log_rows: u8) -> usize {
        let rows = 1usize << log_rows;
        match self {
            Self::Poseidon2 => rows * POSEIDON2_PER_ROW,
            Self::Keccak => rows / KECCAK_ROWS_PER_PERM,
            Self::Blake3 => rows,
            Self::StateTransition => rows / crate::transition::ROWS_PER_UPDATE,
        }
    }

    /// Input bytes one instance absorbs from the request's input.
    pub const fn input_bytes_per_instance(self) -> usize {
        match self {
            // 16 elements, 3 bytes each (every 24-bit value is a valid element).
            Self::Poseidon2 => 16 * 3,
            // 25 lanes of 8 bytes.
            Self::Keccak => 25 * 8,
            // 24 words of 4 bytes.
            Self::Blake3 => 24 * 4,
            // The seeded workload takes no input bytes.
            Self::StateTransition => 0,
        }
    }
}

impl fmt::Display for CircuitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for CircuitId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!(
                    "unknown circuit {s:?} (expected poseidon2, keccak, blake3 or state-transition)"
                )
            })
    }
}

/// An AIR with the statement digest as its public values. The digest enters the
/// Fiat-Shamir transcript (so a proof is bound to it), and no constraint reads it:
/// the benchmark circuits have no public inputs of their own.
#[derive(Debug, Clone)]
pub struct WithStatement<A>(pub A);

impl<F, A: BaseAir<F>> BaseAir<F> for WithStatement<A> {
    fn width(&self) -> usize {
        self.0.width()
    }
    fn preprocessed_trace(&self) -> Option<RowMajorMatrix<F>> {
        self.0.preprocessed_trace()
    }
    fn preprocessed_width(&self) -> usize {
        self.0.preprocessed_width()
    }
    fn max_constraint_degree(&self) -> Option<usize> {
        self.0.max_constraint_degree()
    }
    fn num_public_values(&self) -> usize {
        NUM_PUBLIC_VALUES
    }
}

impl<AB: AirBuilder, A: Air<AB>> Air<AB> for WithStatement<A> {
    fn eval(&self, builder: &mut AB) {
        self.0.eval(builder)
    }
}

/// Fields the circuits are instantiated over.
pub trait CircuitField: BackendField + BinomiallyExtendable<4> {
    /// The vectorized Poseidon2 AIR for this field's width-16 permutation.
    type Poseidon2Air: Clone + Send + Sync;

    fn poseidon2_air() -> WithStatement<Self::Poseidon2Air>;

    fn poseidon2_trace(inputs: Vec<[Self; 16]>, extra_capacity_bits: usize)
    -> RowMajorMatrix<Self>;

    /// Proves the Poseidon2 circuit (per field, so that the AIR's type is concrete).
    fn prove_poseidon2<B: Backend>(
        config: &Config<B, Self>,
        trace: RowMajorMatrix<Self>,
        public_values: &[Self],
    ) -> Result<Vec<u8>, ProveError>;

    /// Verifies a Poseidon2 circuit proof with the stock configuration.
    fn verify_poseidon2(
        config: &stock::Config<Self>,
        artifact: &ProofArtifact,
        public_values: &[Self],
    ) -> Result<(), VerifyError>;
}

macro_rules! poseidon2_field {
    ($field:ty, $layers:ty, $sbox_degree:expr, $sbox_registers:expr, $half:expr, $partial:expr,
     $rc_init:expr, $rc_internal:expr, $rc_final:expr) => {
        impl CircuitField for $field {
            type Poseidon2Air = VectorizedPoseidon2Air<
                $field,
                $layers,
                16,
                $sbox_degree,
                $sbox_registers,
                $half,
                $partial,
                POSEIDON2_PER_ROW,
            >;

            fn poseidon2_air() -> WithStatement<Self::Poseidon2Air> {
                WithStatement(VectorizedPoseidon2Air::new(RoundConstants::new(
                    $rc_init,
                    $rc_internal,
                    $rc_final,
                )))
            }

            fn poseidon2_trace(
                inputs: Vec<[Self; 16]>,
                extra_capacity_bits: usize,
            ) -> RowMajorMatrix<Self> {
                p3_poseidon2_air::generate_vectorized_trace_rows::<
                    $field,
                    $layers,
                    16,
                    $sbox_degree,
                    $sbox_registers,
                    $half,
                    $partial,
                    POSEIDON2_PER_ROW,
                >(
                    inputs,
                    &RoundConstants::new($rc_init, $rc_internal, $rc_final),
                    extra_capacity_bits,
                )
            }

            fn prove_poseidon2<B: Backend>(
                config: &Config<B, Self>,
                trace: RowMajorMatrix<Self>,
                public_values: &[Self],
            ) -> Result<Vec<u8>, ProveError> {
                prove_air(config, &Self::poseidon2_air(), trace, public_values)
            }

            fn verify_poseidon2(
                config: &stock::Config<Self>,
                artifact: &ProofArtifact,
                public_values: &[Self],
            ) -> Result<(), VerifyError> {
                verify_air(config, &Self::poseidon2_air(), artifact, public_values)
            }
        }
    };
}

poseidon2_field!(
    KoalaBear,
    GenericPoseidon2LinearLayersKoalaBear,
    3,
    0,
    KOALABEAR_POSEIDON2_HALF_FULL_ROUNDS,
    KOALABEAR_POSEIDON2_PARTIAL_ROUNDS_16,
    KOALABEAR_POSEIDON2_RC_16_EXTERNAL_INITIAL,
    KOALABEAR_POSEIDON2_RC_16_INTERNAL,
    KOALABEAR_POSEIDON2_RC_16_EXTERNAL_FINAL
);

poseidon2_field!(
    BabyBear,
    GenericPoseidon2LinearLayersBabyBear,
    7,
    1,
    BABYBEAR_POSEIDON2_HALF_FULL_ROUNDS,
    BABYBEAR_POSEIDON2_PARTIAL_ROUNDS_16,
    BABYBEAR_POSEIDON2_RC_16_EXTERNAL_INITIAL,
    BABYBEAR_POSEIDON2_RC_16_INTERNAL,
    BABYBEAR_POSEIDON2_RC_16_EXTERNAL_FINAL
);

/// What a proof is about, short of the trace: the circuit, its size, and where its
/// inputs come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    pub circuit: CircuitId,
    pub log_rows: u8,
    pub seed: u64,
    pub input: Vec<u8>,
}

impl Statement {
    /// The statement digest (the proof's public values): the seam's Poseidon2 leaf
    /// sponge over `[circuit code, log_rows, seed in three 22-bit limbs, input length
    /// in two 24-bit limbs, the input packed 3 bytes per element (little-endian)]`.
    pub fn digest<F: BackendField>(&self) -> Digest<F> {
        let mut elems = vec![
            F::from_u32(self.circuit.code() as u32),
            F::from_u32(self.log_rows as u32),
            F::from_u32((self.seed & 0x3f_ffff) as u32),
            F::from_u32(((self.seed >> 22) & 0x3f_ffff) as u32),
            F::from_u32((self.seed >> 44) as u32),
            F::from_u32((self.input.len() & 0xff_ffff) as u32),
            F::from_u32((self.input.len() >> 24) as u32),
        ];
        elems.extend(self.input.chunks(3).map(pack24::<F>));
        F::leaf_hasher().hash_iter(elems)
    }

    /// Input bytes this statement's circuit can absorb at its size.
    pub fn input_capacity(&self) -> usize {
        self.circuit.instances(self.log_rows) * self.circuit.input_bytes_per_instance()
    }

    /// The execution trace, with `extra_capacity_bits` of spare capacity reserved
    /// for the LDE.
    pub fn trace<F: CircuitField>(&self, extra_capacity_bits: usize) -> RowMajorMatrix<F> {
        let n = self.circuit.instances(self.log_rows);
        let mut rng = StdRng::seed_from_u64(self.seed);
        let per = self.circuit.input_bytes_per_instance();
        let chunk = |i: usize| -> &[u8] {
            let start = (i * per).min(self.input.len());
            &self.input[start..((i + 1) * per).min(self.input.len())]
        };
        match self.circuit {
            CircuitId::Poseidon2 => {
                let inputs = (0..n)
                    .map(|i| {
                        let bytes = chunk(i);
                        core::array::from_fn(|j| match bytes.get(3 * j..) {
                            Some(rest) if !rest.is_empty() => {
                                pack24::<F>(&rest[..rest.len().min(3)])
                            }
                            _ => F::from_u32(rng.random_range(0..F::ORDER_U32)),
                        })
                    })
                    .collect();
                F::poseidon2_trace(inputs, extra_capacity_bits)
            }
            CircuitId::Keccak => {
                let inputs = (0..n)
                    .map(|i| {
                        let bytes = chunk(i);
                        core::array::from_fn(|j| match bytes.get(8 * j..) {
                            Some(rest) if !rest.is_empty() => le_u64(&rest[..rest.len().min(8)]),
                            _ => rng.random::<u64>(),
                        })
                    })
                    .collect();
                p3_keccak_air::generate_trace_rows::<F>(inputs, extra_capacity_bits)
            }
            CircuitId::Blake3 => {
                let inputs = (0..n)
                    .map(|i| {
                        let bytes = chunk(i);
                        core::array::from_fn(|j| match bytes.get(4 * j..) {
                            Some(rest) if !rest.is_empty() => {
                                le_u64(&rest[..rest.len().min(4)]) as u32
                            }
                            _ => rng.random::<u32>(),
                        })
                    })
                    .collect();
                p3_blake3_air::generate_trace_rows::<F>(inputs, extra_capacity_bits)
            }
            CircuitId::StateTransition => {
                unreachable!("the state-transition trace is built by crate::transition")
            }
        }
    }
}

fn pack24<F: PrimeCharacteristicRing>(bytes: &[u8]) -> F {
    F::from_u32(le_u64(bytes) as u32)
}

fn le_u64(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .rev()
        .fold(0u64, |acc, &b| (acc << 8) | b as u64)
}

#[cfg(test)]
mod tests {
    use p3_matrix::Matrix;
    use p3_symmetric::Permutation;

    use super::*;

    #[test]
    fn names_round_trip() {
        for c in CircuitId::ALL {
            assert_eq!(c.name().parse::<CircuitId>(), Ok(c));
        }
        assert!("sha256".parse::<CircuitId>().is_err());
    }

    #[test]
    fn input_bytes_reach_the_trace() {
        let base = Statement {
            circuit: CircuitId::Blake3,
            log_rows: 3,
            seed: 1,
            input: vec![],
        };
        let with_input = Statement {
            input: vec![1, 2, 3, 4],
            ..base.clone()
        };
        let a = base.trace::<KoalaBear>(0);
        let b = with_input.trace::<KoalaBear>(0);
        assert_eq!(a.height(), 8);
        assert_ne!(a.values, b.values);
        assert_ne!(base.digest::<KoalaBear>(), with_input.digest::<KoalaBear>());
    }

    /// The Poseidon2 circuit proves the very permutation the Merkle hashing uses:
    /// the first permutation's input and output sit in the trace's first row.
    fn poseidon2_trace_matches_permutation<F: CircuitField>() {
        let st = Statement {
            circuit: CircuitId::Poseidon2,
            log_rows: 3,
            seed: 9,
            input: (0u8..48).collect(),
        };
        let trace = st.trace::<F>(0);
        let row = trace.row_slice(0).unwrap().to_vec();
        let input: [F; 16] = core::array::from_fn(|j| pack24::<F>(&st.input[3 * j..3 * j + 3]));
        assert_eq!(&row[..16], &input[..], "inputs start the row");
        let output = F::poseidon2_16().permute(input);
        let width = trace.width / POSEIDON2_PER_ROW;
        assert_eq!(
            &row[width - 16..width],
            &output[..],
            "outputs end the first permutation"
        );
    }

    #[test]
    fn poseidon2_trace_matches_permutation_koalabear() {
        poseidon2_trace_matches_permutation::<KoalaBear>();
    }

    #[test]
    fn poseidon2_trace_matches_permutation_babybear() {
        poseidon2_trace_matches_permutation::<BabyBear>();
    }
}
