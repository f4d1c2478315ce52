//! The versioned proof artifact. `docs/proof-format.md` specifies it byte for byte.

use proofbox_backend_api::FieldId;
use serde::{Deserialize, Serialize};

use proofbox_circuits::{CircuitId, Statement};

use crate::params::FriParams;

/// The first eight bytes of every artifact.
pub const MAGIC: [u8; 8] = *b"PBOXPRF\0";
/// The format version this build writes and reads. Version 2: Poseidon2 and Blake3
/// proofs open no next row (their AIRs read none), and state-transition artifacts
/// carry seed 0 and no input (nothing a proof does not bind).
pub const FORMAT_VERSION: u16 = 2;
/// The largest artifact read, in bytes.
pub const MAX_ARTIFACT_BYTES: usize = 256 << 20;

/// A proof and everything needed to verify it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofArtifact {
    pub circuit: CircuitId,
    pub field: FieldId,
    pub log_rows: u8,
    pub fri: FriParams,
    pub seed: u64,
    pub input: Vec<u8>,
    /// The statement digest, as canonical field values.
    pub public_values: Vec<u32>,
    /// The Plonky3 `Proof`, postcard-encoded.
    pub proof: Vec<u8>,
}

impl core::fmt::Debug for ProofArtifact {
    /// Everything but the proof bytes, which are summarised by their length.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ProofArtifact")
            .field("circuit", &self.circuit)
            .field("field", &self.field)
            .field("log_rows", &self.log_rows)
            .field("fri", &self.fri)
            .field("seed", &self.seed)
            .field("input_len", &self.input.len())
            .field("public_values", &self.public_values)
            .field("proof_len", &self.proof.len())
            .finish()
    }
}

impl ProofArtifact {
    pub fn statement(&self) -> Statement {
        Statement {
            circuit: self.circuit,
            log_rows: self.log_rows,
            seed: self.seed,
            input: self.input.clone(),
        }
    }

    /// `MAGIC`, the version (u16, little-endian), then the postcard body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.proof.len() + self.input.len() + 128);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        postcard::to_io(self, &mut out).expect("writing to a Vec cannot fail");
        out
    }

    /// Parses an artifact, rejecting anything that is not exactly one well-formed
    /// artifact of a supported version.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ArtifactError> {
        if bytes.len() > MAX_ARTIFACT_BYTES {
            return Err(ArtifactError::TooLarge {
                len: bytes.len(),
                max: MAX_ARTIFACT_BYTES,
            });
        }
        if bytes.len() < MAGIC.len() + 2 || bytes[..MAGIC.len()] != MAGIC {
            return Err(ArtifactError::NotAProof);
        }
        let version = u16::from_le_bytes([bytes[8], bytes[9]]);
        if version != FORMAT_VERSION {
            return Err(ArtifactError::UnsupportedVersion {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let (artifact, rest) = postcard::take_from_bytes::<Self>(&bytes[10..])
            .map_err(|e| ArtifactError::Malformed(e.to_string()))?;
        if !rest.is_empty() {
            return Err(ArtifactError::Malformed(format!(
                "{} trailing bytes",
                rest.len()
            )));
        }
        Ok(artifact)
    }
}

/// Why bytes are not a readable artifact.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArtifactError {
    #[error("not a ProofBox proof (bad magic)")]
    NotAProof,
    #[error("proof format version {found} is not supported (this build reads version {supported})")]
    UnsupportedVersion { found: u16, supported: u16 },
    #[error("proof of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge { len: usize, max: usize },
    #[error("malformed proof artifact: {0}")]
    Malformed(String),
}
