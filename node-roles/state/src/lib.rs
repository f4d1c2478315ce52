//! The Poseidon2 state commitment of ProofBox's node roles.
//!
//! The EVM state is a flat key-value map: account leaves keyed by address (nonce,
//! balance, code hash) and storage leaves keyed by address and slot. It is committed
//! by a sparse Merkle tree over KoalaBear in which each leaf sits at the shortest
//! prefix of its key's path that no other key shares (at most [`DEPTH`] = 248 levels),
//! hashed with the very Poseidon2 sponge and compression the project's STARK
//! commitments use (`proofbox_backend_api::{LeafHasher, NodeCompressor}`):
//!
//! - [`encoding`]: keys and values as 16-bit limbs (256-bit values round-trip exactly),
//!   domain-tagged messages, key digests and leaf digests;
//! - [`Path`]: a key's position, all 248 bits of its 8-element key digest, so two keys
//!   share a path only if Poseidon2 collides; the leaf also commits to the key digest;
//! - [`StateTree`]: the tree (each branch's two children stored together, about 1.44
//!   branches per key), with batch updates that hash each touched node once and split
//!   subtrees across cores; an update hashes about `log2(N)` nodes for `N` keys;
//! - [`StateProof`]: inclusion and exclusion proofs, as long as the path is deep,
//!   checked from the root alone ([`proof::walk`] is the rule they follow);
//! - [`Diff`]: canonical update sets, their field encoding and Poseidon2
//!   [`Diff::commitment`], and [`UpdateWitness`]es for the state-transition proof;
//! - [`TransitionWitness`]: what a node sends a prover for a diff, in a compact,
//!   versioned encoding.
//!
//! `docs/state.md` specifies every encoding and algorithm and argues soundness;
//! `docs/trust-model.md` says what the commitment and the proofs built on it
//! guarantee.

mod alloc;
pub mod diff;
pub mod encoding;
mod error;
pub mod hash;
pub mod path;
pub mod proof;
pub mod reference;
mod store;
pub mod tree;
pub mod witness;
pub mod workload;

pub use diff::{Diff, Update, UpdateWitness, check_transition};
pub use encoding::{AccountInfo, KeyKind, StateKey, StateValue};
pub use error::{EncodingError, ProofError, StateError};
pub use path::Path;
pub use proof::{Neighbor, StateProof, verify_exclusion, verify_inclusion};
pub use tree::{Parallelism, StateTree};
pub use witness::{TransitionWitness, WitnessDecodeError};

/// The field of the state tree: KoalaBear, the project's default.
pub type F = p3_koala_bear::KoalaBear;

/// A digest: 8 field elements, like every Merkle digest of the project.
pub type Digest = proofbox_backend_api::Digest<F>;

/// The deepest a leaf can sit: a path has 8 digest elements of 31 bits each.
pub const DEPTH: usize = 8 * path::BITS_PER_ELEMENT;
