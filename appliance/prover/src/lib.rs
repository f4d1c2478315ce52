//! The ProofBox prover interface.
//!
//! One request type ([`ProofRequest`]: circuit, field, size, FRI preset, seed,
//! optional input), one proof artifact ([`ProofArtifact`]), [`Prover::prove`] and
//! [`verify`], independent of the backend. [`Prover`] is generic over
//! [`proofbox_backend_api::Backend`]; [`registry::open`] picks a backend by name at
//! run time and hands back a [`DynProver`]; with `auto` it trusts only a device that
//! passes its [`selftest`] against the CPU backend.
//!
//! Plonky3's `p3-uni-stark` does the proving. The [`adapters`] route its LDEs and its
//! Merkle hashing through the chosen backend, and [`config`] fixes the configuration
//! (Poseidon2 Merkle commitments, FRI presets). Verification uses stock Plonky3 types
//! only ([`config::stock`]), so what we verify is what a third party verifies.

pub mod adapters;
pub mod artifact;
pub mod circuits;
pub mod config;
pub mod progress;
mod prover;
pub mod registry;
mod request;
pub mod selftest;
pub mod transition;

pub use artifact::{ArtifactError, FORMAT_VERSION, MAGIC, ProofArtifact};
pub use circuits::{CircuitField, CircuitId, Statement};
pub use config::{FriParams, FriPreset};
pub use progress::{Progress, Stage};
pub use proofbox_backend_api::{BackendKind, FieldId};
pub use prover::{
    DynProver, ProveError, Prover, VerifyError, install_panic_hook, public_values, verify,
    verify_air, verify_bytes,
};
pub use registry::BackendChoice;
pub use request::{ProofRequest, RequestError};
pub use selftest::{SelfTestError, SelfTestReport};
