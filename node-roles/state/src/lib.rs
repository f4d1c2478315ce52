//! The Poseidon2 state commitment of ProofBox's node roles.
//!
//! The EVM state is a flat key-value map: account leaves keyed by address (nonce,
//! balance, code hash) and storage leaves keyed by address and slot. It is committed
//! by a sparse Merkle tree of depth [`DEPTH`] = 248 over KoalaBear, hashed with the
//! very Poseidon2 sponge and compression the project's STARK commitments use
//! (`proofbox_backend_api::{LeafHasher, NodeCompressor}`):
//!
//! - [`encoding`]: keys and values as 16-bit limbs (256-bit values round-trip exactly),
//!   domain-tagged messages, key digests and leaf digests;
//! - [`Path`]: a key's position, all 248 bits of its 8-element key digest, so two keys
//!   share a path only if Poseidon2 collides; the leaf also commits to the key digest;
//! - [`StateTree`]: the tree, stored compactly (about two nodes per key), with batch
//!   updates that rebuild each touched node once and split subtrees across cores;
//! - [`StateProof`]: inclusion and exclusion proofs, checked from the root alone;
//! - [`Diff`]: canonical update sets, their field encoding and Poseidon2
//!   [`Diff::commitment`], and [`UpdateWitness`]es for the state-transition proof.
//!
//! `docs/state.md` specifies every encoding and algorithm; `docs/trust-model.md` says
//! what the commitment and the proofs built on it guarantee.

pub mod diff;
pub mod encoding;
mod error;
pub mod hash;
pub mod path;
pub mod proof;
pub mod reference;
pub mod tree;
pub mod workload;

pub use diff::{Diff, Update, UpdateWitness, check_transition};
pub use encoding::{AccountInfo, KeyKind, StateKey, StateValue};
pub use error::{EncodingError, ProofError, StateError};
pub use path::Path;
pub use proof::{StateProof, verify_exclusion, verify_inclusion};
pub use tree::{Parallelism, StateTree};

/// The field of the state tree: KoalaBear, the project's default.
pub type F = p3_koala_bear::KoalaBear;

/// A digest: 8 field elements, like every Merkle digest of the project.
pub type Digest = proofbox_backend_api::Digest<F>;

/// The depth of the tree: 8 digest elements of 31 bits each.
pub const DEPTH: usize = 8 * path::BITS_PER_ELEMENT;
