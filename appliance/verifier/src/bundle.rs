//! State-transition proofs as a verifier holding roots and a diff checks them: one
//! proof of a whole diff, or a bundle of chained proofs ([`TransitionProof`]), whose
//! byte format lives here.

use proofbox_circuits::transition::{ChainError, Digest, TransitionStatement, chain};
use proofbox_state::Diff;
use serde::{Deserialize, Serialize};

use crate::error::VerifyError;
use crate::verifier::{CHUNK_ALONE, Verified, Verifier, transition_statement};

/// The proof of a state transition as a sequence of chained proofs ("chunks"), each an
/// ordinary state-transition [`crate::ProofArtifact`]: what
/// the prover's `prove_transition_chunks` returns and
/// [`Verifier::verify_transition_chunks`] checks. A single proof of a whole diff is a bundle of one chunk.
///
/// Bytes ([`TransitionProof::to_bytes`]): [`BUNDLE_MAGIC`], the format version (u16,
/// little-endian), then the postcard encoding of the chunks (a length, then each
/// artifact's postcard body, without its own magic and version).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransitionProof {
    pub chunks: Vec<crate::ProofArtifact>,
}

/// The first eight bytes of an encoded [`TransitionProof`].
pub const BUNDLE_MAGIC: [u8; 8] = *b"PBOXTRB\0";

impl TransitionProof {
    /// [`BUNDLE_MAGIC`], [`crate::artifact::FORMAT_VERSION`] (u16, little-endian), then the
    /// postcard body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&BUNDLE_MAGIC);
        out.extend_from_slice(&crate::artifact::FORMAT_VERSION.to_le_bytes());
        postcard::to_io(self, &mut out).expect("writing to a Vec cannot fail");
        out
    }

    /// Parses a bundle, rejecting anything that is not exactly one well-formed bundle
    /// of a supported version (at most [`crate::artifact::MAX_ARTIFACT_BYTES`] bytes).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, crate::artifact::ArtifactError> {
        use crate::artifact::ArtifactError;
        let max = crate::artifact::MAX_ARTIFACT_BYTES;
        if bytes.len() > max {
            return Err(ArtifactError::TooLarge {
                len: bytes.len(),
                max,
            });
        }
        if bytes.len() < BUNDLE_MAGIC.len() + 2 || bytes[..BUNDLE_MAGIC.len()] != BUNDLE_MAGIC {
            return Err(ArtifactError::NotAProof);
        }
        let version = u16::from_le_bytes([bytes[8], bytes[9]]);
        if version != crate::artifact::FORMAT_VERSION {
            return Err(ArtifactError::UnsupportedVersion {
                found: version,
                supported: crate::artifact::FORMAT_VERSION,
            });
        }
        let (bundle, rest) = postcard::take_from_bytes::<Self>(&bytes[10..])
            .map_err(|e| ArtifactError::Malformed(e.to_string()))?;
        if !rest.is_empty() {
            return Err(ArtifactError::Malformed(format!(
                "{} trailing bytes",
                rest.len()
            )));
        }
        Ok(bundle)
    }

    /// The proofs' sizes in their own framing ([`crate::ProofArtifact::to_bytes`]),
    /// summed.
    pub fn proof_bytes(&self) -> usize {
        self.chunks.iter().map(|a| a.to_bytes().len()).sum()
    }
}

impl Verifier {
    /// Verifies a bundle of chained state-transition proofs and returns the statement
    /// of the whole diff they prove: there is at least one chunk; every chunk is a
    /// state-transition artifact; chunk 0 starts with the diff sponge at the header
    /// state; each next chunk starts at the previous one's post-state root and diff
    /// sponge state at the same block number; and every proof passes
    /// [`Verifier::verify`]'s checks (floor included). The public values are checked
    /// before any proof.
    pub fn verify_bundle(&self, bundle: &TransitionProof) -> Result<Verified, VerifyError> {
        let stated = stated(bundle, || VerifyError::Chain(CHUNK_ALONE.into()))?;
        let mut weakest = u32::MAX;
        for chunk in &bundle.chunks {
            weakest = weakest.min(self.verify_proof(chunk)?);
        }
        let first = &bundle.chunks[0];
        Ok(Verified {
            log_rows: bundle.chunks.iter().map(|c| c.log_rows).max().unwrap_or(0),
            transition: Some(stated),
            ..self.verified(first, weakest, bundle.chunks.len())
        })
    }

    /// Verifies a bundle and checks that it states `expected` (roots, diff commitment,
    /// block number).
    pub fn verify_transition_chunks(
        &self,
        bundle: &TransitionProof,
        expected: &TransitionStatement,
    ) -> Result<Verified, VerifyError> {
        // The statement is compared before any proving work: a wrong one costs nothing.
        // A lone proof that does not start a diff does not state `expected` either.
        let stated = stated(bundle, || VerifyError::StatementMismatch)?;
        if stated != *expected {
            return Err(VerifyError::StatementMismatch);
        }
        self.verify_bundle(bundle)
    }

    /// Verifies one state-transition artifact and checks that it states `expected`:
    /// [`Verifier::verify_transition_chunks`] on a bundle of this one proof.
    pub fn verify_transition(
        &self,
        artifact: &crate::ProofArtifact,
        expected: &TransitionStatement,
    ) -> Result<Verified, VerifyError> {
        self.verify_transition_chunks(
            &TransitionProof {
                chunks: vec![artifact.clone()],
            },
            expected,
        )
    }

    /// What a replica holding `diff` checks: the proof takes `pre_root` to `post_root`
    /// through exactly this diff (its commitment is recomputed here) at
    /// `block_number`.
    pub fn verify_diff(
        &self,
        artifact: &crate::ProofArtifact,
        pre_root: &Digest,
        post_root: &Digest,
        diff: &Diff,
        block_number: u64,
    ) -> Result<Verified, VerifyError> {
        self.verify_transition(
            artifact,
            &diff_statement(pre_root, post_root, diff, block_number),
        )
    }

    /// [`Verifier::verify_diff`] for a bundle: the chained proofs take `pre_root` to
    /// `post_root` through exactly this diff at `block_number`, whatever the chunk
    /// sizes.
    pub fn verify_diff_chunks(
        &self,
        bundle: &TransitionProof,
        pre_root: &Digest,
        post_root: &Digest,
        diff: &Diff,
        block_number: u64,
    ) -> Result<Verified, VerifyError> {
        self.verify_transition_chunks(
            bundle,
            &diff_statement(pre_root, post_root, diff, block_number),
        )
    }
}

/// What a bundle's public values state, checked for chaining before any proof; `lone`
/// is the error for a single proof that does not start a diff.
fn stated(
    bundle: &TransitionProof,
    lone: impl FnOnce() -> VerifyError,
) -> Result<TransitionStatement, VerifyError> {
    let statements = bundle
        .chunks
        .iter()
        .map(transition_statement)
        .collect::<Result<Vec<_>, _>>()?;
    chain(&statements).map_err(|e| match e {
        ChainError::NotFromHeader if statements.len() == 1 => lone(),
        e => VerifyError::Chain(e.to_string()),
    })
}

fn diff_statement(
    pre_root: &Digest,
    post_root: &Digest,
    diff: &Diff,
    block_number: u64,
) -> TransitionStatement {
    TransitionStatement {
        pre_root: *pre_root,
        post_root: *post_root,
        diff_commitment: diff.commitment(),
        block_number,
    }
}

/// [`Verifier::verify_transition_chunks`] with the default verifier.
pub fn verify_transition_chunks(
    bundle: &TransitionProof,
    expected: &TransitionStatement,
) -> Result<Verified, VerifyError> {
    Verifier::default().verify_transition_chunks(bundle, expected)
}

/// [`Verifier::verify_transition`] with the default verifier.
pub fn verify_transition(
    artifact: &crate::ProofArtifact,
    expected: &TransitionStatement,
) -> Result<Verified, VerifyError> {
    Verifier::default().verify_transition(artifact, expected)
}

/// [`Verifier::verify_diff`] with the default verifier.
pub fn verify_diff(
    artifact: &crate::ProofArtifact,
    pre_root: &Digest,
    post_root: &Digest,
    diff: &Diff,
    block_number: u64,
) -> Result<Verified, VerifyError> {
    Verifier::default().verify_diff(artifact, pre_root, post_root, diff, block_number)
}

/// [`Verifier::verify_diff_chunks`] with the default verifier.
pub fn verify_diff_chunks(
    bundle: &TransitionProof,
    pre_root: &Digest,
    post_root: &Digest,
    diff: &Diff,
    block_number: u64,
) -> Result<Verified, VerifyError> {
    Verifier::default().verify_diff_chunks(bundle, pre_root, post_root, diff, block_number)
}
