//! Circuit identifiers, their sizes and limits.

use core::fmt;
use core::str::FromStr;

use proofbox_backend_api::{DIGEST_ELEMS, FieldId};
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
    /// state tree, one 32-row segment per 31 levels of each update's path, KoalaBear
    /// only. A request with a witness as input proves that witness's diff; a request
    /// by size alone proves a seeded diff of `2^(log_rows - 5)` updates
    /// ([`crate::transition::seeded_input`]).
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
                "State-tree transitions (KoalaBear): the diff of the transition witness given as input (or, with no input, a seeded diff), 32 trace rows per 31 levels of each update's path"
            }
        }
    }

    /// The smallest log2 trace height accepted.
    pub const fn min_log_rows(self) -> u8 {
        match self {
            Self::Keccak => 5,
            Self::StateTransition => crate::transition::LOG_ROWS_PER_SEGMENT,
            _ => 3,
        }
    }

    /// The largest log2 trace height accepted, by provers and verifiers alike. For the
    /// benchmark circuits, chosen so that the trace and its LDE fit in a few GiB with
    /// the default (4x) blowup; for the state transition, 2^15 segments in one proof
    /// (about 13 GiB peak on the CPU backend: larger diffs are proved in chained
    /// proofs, [`crate::transition::TransitionInput::build_chunks`]).
    pub const fn max_log_rows(self) -> u8 {
        match self {
            Self::Poseidon2 => 20,
            Self::Keccak => 20,
            Self::Blake3 => 20,
            // 2^15 segments; the trace is 807 columns wide.
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
            Self::StateTransition => rows / crate::transition::ROWS_PER_SEGMENT,
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
