//! The ProofBox replica: holds the state without executing, and believes a root only
//! once a state-transition proof of it verifies.
//!
//! It follows the sequencer's `blocks` and `proofs` streams (one WebSocket, resuming
//! after drops) and keeps two heads:
//!
//! - **latest**: every block that extends the head (number, parent hash), whose
//!   header commits to its body (`check_body`: transactions, receipts, gas, diff
//!   commitment), whose pre-state root is the replica's and whose diff, applied to
//!   the replica's state (no revm), gives the header's post-state root. A block that
//!   fails is refused, not applied, and the replica stops following.
//! - **proven**: moved by each published [`proofbox_chain_types::ProvenBatch`] once
//!   its bundle verifies under the replica's own security floor against the
//!   replica's own statement: its proven root, the root it reached at the batch's
//!   last block, and the net diff of the diffs it applied. A proof that arrives early
//!   waits for its blocks; one that does not check out is refused and the replica
//!   re-syncs from its proven state.
//!
//! Modules:
//! - [`replica`]: [`Replica`], its heads, import of blocks and proofs, refusals;
//! - [`follow`]: the streams;
//! - [`snapshot`]: the proven state on disk (written atomically after each verified
//!   batch, loaded and root-checked at start);
//! - [`getproof`]: `eth_getProof`'s answer and its proofs' encoding and check;
//! - [`rpc`]: the read-only JSON-RPC (`latest` = applied, `safe`/`finalized` =
//!   proven), `proofbox_replicaStatus` and `eth_getProof`.
//!
//! What it trusts: the genesis block as the stream delivers it (roots checked), the
//! STARK's soundness at its floor and Poseidon2 for the proven head; for the latest
//! head, the sequencer. It never checks that a diff is the right result of executing
//! the block: full nodes do (`docs/trust-model.md`).

pub mod follow;
pub mod getproof;
pub mod replica;
pub mod rpc;
pub mod snapshot;

pub use replica::{Config, Head, ImportError, Refusal, Replica};
