use crate::encoding::{KeyKind, StateKey};

/// A value that does not decode from field elements.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodingError {
    #[error("limb {index} is {value}, not below 2^16")]
    LimbOutOfRange { index: usize, value: u32 },
    #[error("expected {expected} limbs, got {got}")]
    Length { expected: usize, got: usize },
}

/// A diff or an update the state cannot take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("key {key:?} is a {expected} key but was given a {got} value")]
    KindMismatch {
        key: StateKey,
        expected: KeyKind,
        got: KeyKind,
    },
    #[error("key {key:?} appears more than once in the diff")]
    DuplicateKey { key: StateKey },
    /// Two different keys with the same 248-bit path, i.e. a Poseidon2 collision.
    #[error("keys {first:?} and {second:?} have the same key digest")]
    PathCollision { first: StateKey, second: StateKey },
}

/// Why a Merkle proof or an update witness was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("proof has {got} sibling levels, more than the tree's {max}")]
    TooLong { max: usize, got: usize },
    #[error(
        "sibling at level {level} is not in canonical form (an empty digest written out, \
         an empty deepest sibling, or a neighbor the proof has no use for)"
    )]
    NonCanonical { level: usize },
    #[error(
        "the neighbor is not the deepest sibling's leaf, or does not split from the key's \
         path at the deepest level"
    )]
    NeighborMismatch,
    #[error(
        "the deepest sibling's children are missing, wrong, or given where the walk does \
         not need them"
    )]
    DeepChildren,
    #[error("key {key:?} is a {expected} key but the claimed value is a {got} value")]
    KindMismatch {
        key: StateKey,
        expected: KeyKind,
        got: KeyKind,
    },
    #[error("the proof does not lead to the root it was checked against")]
    RootMismatch,
    #[error("{got} witnesses for a diff of {expected} updates")]
    WitnessCount { expected: usize, got: usize },
    #[error("witness {index} is not for update {index} of the diff (key or new value differ)")]
    WitnessMismatch { index: usize },
    #[error("witness {index}: its old leaf and siblings do not lead to the root before it")]
    WitnessRoot { index: usize },
    #[error("malformed witness: {0}")]
    Malformed(String),
    #[error("witness {index}: {source}")]
    WitnessShape {
        index: usize,
        source: Box<ProofError>,
    },
}
