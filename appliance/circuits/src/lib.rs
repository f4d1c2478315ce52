//! The circuits ProofBox proves, on Plonky3 alone: what the prover and the verifier
//! (`proofbox-verifier`) share, and nothing that runs on a device.
//!
//! - [`CircuitId`]: the circuits, their sizes and limits.
//! - [`Statement`]: what a benchmark-circuit proof states (circuit, size, seed,
//!   input), its digest (the proof's public values) and its trace.
//! - [`WithStatement`]: Plonky3's stock Poseidon2, Keccak-f and Blake3 AIRs with the
//!   statement digest as public values, nothing else changed.
//! - [`CircuitField`]: KoalaBear and BabyBear, each with its Poseidon2 AIR.
//! - [`transition`]: the state-transition circuit (AIR, columns, periodic schedule,
//!   statements and chaining, prover input and trace generation).
//!
//! Dependencies: Plonky3's crates, and ProofBox's state encoding (`proofbox-state`)
//! and hashing seam (`proofbox-backend-api`), which depend on Plonky3 alone. An
//! independent verifier can take the AIRs from here (`docs/proof-format.md`).

mod field;
mod id;
mod statement;
pub mod transition;

pub use field::CircuitField;
pub use id::{
    CircuitId, KECCAK_ROWS_PER_PERM, MAX_INPUT_BYTES, NUM_PUBLIC_VALUES, POSEIDON2_PER_ROW,
};
pub use proofbox_backend_api::FieldId;
pub use statement::{RequestError, Statement, WithStatement};
