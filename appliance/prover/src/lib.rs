//! The ProofBox prover interface.
//!
//! One request type ([`ProofRequest`]: circuit, field, size, FRI preset, seed,
//! optional input), one proof artifact ([`ProofArtifact`]), [`Prover::prove`],
//! independent of the backend. [`Prover`] is generic over
//! [`proofbox_backend_api::Backend`]; [`registry::open`] picks a backend by name at
//! run time and hands back a [`DynProver`]; with `auto` it trusts only a device that
//! passes its [`selftest`] against the CPU backend.
//!
//! Plonky3's `p3-uni-stark` does the proving. The [`adapters`] route its LDEs and its
//! Merkle hashing through the chosen backend, and [`config`] fixes the configuration
//! (Poseidon2 Merkle commitments, FRI presets): the stock path. On the device
//! backends the prover takes the [`resident`] path instead: the same prover loop and
//! PCS over matrices kept on the device, making the same proofs. The circuits live in
//! `proofbox-circuits` and verification in `proofbox-verifier` (re-exported here as
//! [`circuits`] and [`verifier`]), which use stock Plonky3 types only, so what we
//! verify is what a third party verifies.

pub mod adapters;
pub mod config;
pub mod memory;
pub mod progress;
mod prover;
pub mod registry;
mod request;
pub mod resident;
pub mod selftest;

pub use proofbox_circuits as circuits;
pub use proofbox_verifier as verifier;
pub use proofbox_verifier::artifact;

/// The state-transition circuit (`proofbox_circuits::transition`) and the checks of
/// its proofs and bundles (`proofbox-verifier`), in one place.
pub mod transition {
    pub use proofbox_circuits::transition::*;
    pub use proofbox_verifier::{
        BUNDLE_MAGIC, TransitionProof, verify_diff, verify_diff_chunks, verify_transition,
        verify_transition_chunks,
    };
}

pub use progress::{Progress, Stage};
pub use proofbox_backend_api::{BackendKind, FieldId};
pub use proofbox_circuits::{CircuitField, CircuitId, Statement};
pub use proofbox_verifier::{
    ArtifactError, FORMAT_VERSION, FriParams, FriPreset, MAGIC, ProofArtifact, Verified, Verifier,
    VerifyError, verify, verify_air, verify_bytes,
};
pub use prover::{DynProver, ProveError, Prover, install_panic_hook, public_values};
pub use registry::BackendChoice;
pub use request::{ProofRequest, RequestError};
pub use selftest::{SelfTestError, SelfTestReport};
