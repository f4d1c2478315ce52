//! Why a proof was rejected.

use crate::artifact::ArtifactError;

/// Why a proof (or a bundle of chained proofs) was rejected.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    #[error("invalid proof parameters: {0}")]
    Parameters(String),
    #[error(
        "proof has {bits} bits of conjectured security, below this verifier's floor of {min} bits"
    )]
    InsufficientSecurity { bits: u32, min: u32 },
    #[error("public values do not match the statement (circuit, size, seed and input)")]
    StatementMismatch,
    #[error("proof is for 2^{proof} rows but claims 2^{claimed}")]
    DegreeMismatch { proof: usize, claimed: u8 },
    #[error("proof rejected: {0}")]
    Rejected(String),
    #[error("state-transition proofs do not chain: {0}")]
    Chain(String),
}

/// A security floor no parameters can reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a floor of {requested} bits is above the {max} bits any proof can be credited with")]
pub struct FloorError {
    pub requested: u32,
    pub max: u32,
}
