//! What a proof of a benchmark circuit states, its digest (the public values), the
//! trace that proves it, and the wrapper that gives a stock AIR those public values.

use p3_air::{Air, AirBuilder, BaseAir, BoundaryPublic};
use p3_field::PrimeCharacteristicRing;
use p3_matrix::dense::RowMajorMatrix;
use p3_symmetric::CryptographicHasher;
use proofbox_backend_api::{BackendField, Digest, FieldId};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::field::CircuitField;
use crate::id::{CircuitId, MAX_INPUT_BYTES, NUM_PUBLIC_VALUES};

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
    fn num_periodic_columns(&self) -> usize {
        self.0.num_periodic_columns()
    }
    fn periodic_columns(&self) -> std::borrow::Cow<'_, [Vec<F>]>
    where
        F: Clone,
    {
        self.0.periodic_columns()
    }
    /// The wrapped AIR's: the wrapper adds no constraint, so a proof opens exactly
    /// the next-row columns the stock AIR declares (none for Poseidon2 and Blake3,
    /// every column for Keccak).
    fn main_next_row_columns(&self) -> Vec<usize> {
        self.0.main_next_row_columns()
    }
    fn preprocessed_next_row_columns(&self) -> Vec<usize> {
        self.0.preprocessed_next_row_columns()
    }
    fn num_constraints(&self) -> Option<usize> {
        self.0.num_constraints()
    }
    fn max_constraint_degree(&self) -> Option<usize> {
        self.0.max_constraint_degree()
    }
    fn num_public_values(&self) -> usize {
        NUM_PUBLIC_VALUES
    }
    fn public_boundary_io(&self) -> &[BoundaryPublic] {
        self.0.public_boundary_io()
    }
    fn assumes_boolean_trace(&self) -> bool {
        self.0.assumes_boolean_trace()
    }
}

impl<AB: AirBuilder, A: Air<AB>> Air<AB> for WithStatement<A> {
    fn eval(&self, builder: &mut AB) {
        self.0.eval(builder)
    }
}

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

    /// Checks the statement against its circuit's limits for `field`: the size range,
    /// the field, the input length. What a prover checks before any work and a
    /// verifier before reading a proof.
    pub fn validate(&self, field: FieldId) -> Result<(), RequestError> {
        let (min, max) = (self.circuit.min_log_rows(), self.circuit.max_log_rows());
        if self.log_rows < min || self.log_rows > max {
            return Err(RequestError::LogRowsOutOfRange {
                circuit: self.circuit,
                log_rows: self.log_rows,
                min,
                max,
            });
        }
        if !self.circuit.fields().contains(&field) {
            return Err(RequestError::FieldNotSupported {
                circuit: self.circuit,
                field,
            });
        }
        if self.input.len() > MAX_INPUT_BYTES {
            return Err(RequestError::InputTooLarge {
                len: self.input.len(),
                max: MAX_INPUT_BYTES,
            });
        }
        let capacity = self.input_capacity();
        if self.input.len() > capacity {
            return Err(RequestError::InputTooLarge {
                len: self.input.len(),
                max: capacity,
            });
        }
        Ok(())
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
                unreachable!(
                    "the state-transition trace is built by crate::transition::TransitionInput"
                )
            }
        }
    }
}

/// A statement that cannot be proved (or verified) as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("circuit {circuit}: log_rows {log_rows} outside the supported range {min}..={max}")]
    LogRowsOutOfRange {
        circuit: CircuitId,
        log_rows: u8,
        min: u8,
        max: u8,
    },
    #[error("input of {len} bytes exceeds the limit of {max} bytes")]
    InputTooLarge { len: usize, max: usize },
    #[error("circuit {circuit} is not defined over field {field}")]
    FieldNotSupported { circuit: CircuitId, field: FieldId },
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
    use p3_baby_bear::BabyBear;
    use p3_koala_bear::KoalaBear;
    use p3_matrix::Matrix;
    use p3_symmetric::Permutation;

    use super::*;
    use crate::POSEIDON2_PER_ROW;

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
