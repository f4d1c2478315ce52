//! The ProofBox verifier: checks proofs with stock Plonky3 code, under a security floor
//! the verifier sets, never the proof.
//!
//! - [`Verifier`]: the policy (a minimum of conjectured security bits, default
//!   [`DEFAULT_MIN_SECURITY_BITS`]) and every check: one artifact
//!   ([`Verifier::verify`]), a bundle of chained state-transition proofs
//!   ([`Verifier::verify_bundle`]), a transition against the roots and diff a replica
//!   holds ([`Verifier::verify_diff`], [`Verifier::verify_diff_chunks`]).
//! - [`ProofArtifact`] and [`TransitionProof`]: the versioned byte formats
//!   (`docs/proof-format.md`).
//! - [`FriParams`] and [`FriPreset`]: FRI parameters as a proof carries them, and their
//!   conjectured security ([`FriParams::conjectured_security_bits`]).
//! - [`config::stock`]: the Plonky3 configuration with no ProofBox code in it.
//!
//! This crate depends on Plonky3 and `proofbox-circuits` only: no device API, no
//! service, no async runtime, so a light client links just this to check a proof.

pub mod artifact;
mod bundle;
pub mod config;
mod error;
mod params;
mod verifier;

pub use artifact::{ArtifactError, FORMAT_VERSION, MAGIC, MAX_ARTIFACT_BYTES, ProofArtifact};
pub use bundle::{
    BUNDLE_MAGIC, TransitionProof, verify_diff, verify_diff_chunks, verify_transition,
    verify_transition_chunks,
};
pub use error::{FloorError, VerifyError};
pub use params::{FriParams, FriPreset, MAX_SECURITY_BITS};
pub use proofbox_circuits::{CircuitId, FieldId};
pub use verifier::{
    DEFAULT_MIN_SECURITY_BITS, Verified, Verifier, verify, verify_air, verify_bytes,
};
