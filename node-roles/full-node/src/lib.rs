//! The ProofBox full node: trusts nothing the sequencer says about execution.
//!
//! It follows the sequencer's `blocks` stream (resuming from its next block after a
//! drop or a restart), and for every block checks that the header commits to the body
//! (transactions and receipts roots, gas, diff commitment), re-executes the
//! transactions with revm against its own state ([`verify`], the sequencer's own
//! execution code over a redb-backed `DatabaseRef`), compares receipts and state diff,
//! and recomputes the Poseidon2 state root. The first difference stops it from
//! following that chain; it is logged, counted (`full_node_mismatches_total`), kept
//! in the database and shown by `proofbox_status`.
//!
//! - [`store`]: blocks, the transaction index and the flat state in redb, one write
//!   transaction per block;
//! - [`verify`]: re-execution and the first difference;
//! - [`node`]: [`FullNode`]: import and following;
//! - [`rpc`]: the read-only JSON-RPC methods;
//! - [`page`]: the status page's view of the node (served beside JSON-RPC).
//!
//! What it trusts: the genesis block (block 0) as the stream delivers it, and the
//! chain id it is configured with.

pub mod node;
pub mod page;
pub mod rpc;
pub mod store;
pub mod verify;

pub use node::{FullNode, ImportError, Mismatch};
