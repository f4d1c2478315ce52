//! The ProofBox replica: holds the state without executing, and believes a root only
//! once a state-transition proof of it verifies.
//!
//! It follows the sequencer's `blocks` and `proofs` streams (one WebSocket, resuming
//! after drops) and keeps two heads:
//!
//! - **latest**: every block that extends the head (number, parent hash), whose
//!   header commits to its diff (the diff commitment;
//!   [`proofbox_chain_types::check_diffs`] for blocks that arrive together, their
//!   commitments hashed in the SIMD lanes) and whose pre-state root is the previous
//!   header's post-state root. Its diff is written to a flat
//!   state (accounts, storage, code; no tree, no revm): the replica computes no root
//!   per block, it believes roots only from proofs. Its transactions and receipts
//!   (which the proof does not cover) are checked against the header's roots off this
//!   path, by a worker thread or when first needed, and always before any of them is
//!   served ([`bodies`]).
//! - **proven**: moved by each published [`proofbox_chain_types::ProvenBatch`] once
//!   its bundle verifies under the replica's own security floor against the
//!   replica's own statement: its proven root, the root the headers claim at the
//!   batch's last block, and the net diff of the diffs it applied. The proven state
//!   (with its tree) then takes the batch's net diff in one tree update, and the
//!   resulting root must be the proof's `post_root`. A proof that arrives early
//!   waits for its blocks.
//!
//! A block or proof that does not check out is refused (logged, counted, listed in
//! `DATA_DIR/refusals.json`) and the replica re-syncs by itself: the latest state goes
//! back to the proven one, and after a back-off (doubling at each refusal until a
//! batch is proven) it follows again from the proven head.
//!
//! Modules:
//! - [`replica`]: [`Replica`], its heads, import of blocks and proofs, re-syncs;
//! - [`bodies`]: the kept blocks and the check of their transactions and receipts
//!   ([`BodyChecks`]: eager, in the background, or on use), what may be served;
//! - [`refusals`]: the refusals and their file;
//! - [`follow`]: the streams (blocks read without recovering their senders);
//! - [`snapshot`]: the proven state on disk (written atomically after each verified
//!   batch, loaded and root-checked at start);
//! - [`getproof`]: `eth_getProof`'s answer and its proofs' encoding and check;
//! - [`rpc`]: the read-only JSON-RPC (`latest` = applied, `safe`/`finalized` =
//!   proven), `proofbox_replicaStatus` and `eth_getProof`;
//! - [`page`]: the status page's view of the replica (served beside JSON-RPC).
//!
//! What it trusts: the genesis block as the stream delivers it (roots checked), the
//! STARK's soundness at its floor and Poseidon2 for the proven head; for the latest
//! head, the sequencer. It never checks that a diff is the right result of executing
//! the block: full nodes do (`docs/trust-model.md`).

pub mod bodies;
pub mod follow;
pub mod getproof;
pub mod page;
pub mod refusals;
pub mod replica;
pub mod rpc;
pub mod snapshot;

pub use bodies::{BodyChecks, Kept};
pub use replica::{Config, Head, ImportError, Refusal, Replica};
