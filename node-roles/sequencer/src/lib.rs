//! The ProofBox sequencer: Ethereum transactions in; blocks, state diffs and state
//! roots out.
//!
//! - [`config`]: settings and the development genesis (the standard mnemonic's first
//!   accounts, prefunded);
//! - [`pool`]: admission with Ethereum's checks and messages, per-sender nonce queues;
//! - [`pool_log`]: the pool journal, every admitted transaction synced before its
//!   hash is returned, replayed through admission at start;
//! - [`exec`]: block execution with revm over any `DatabaseRef` (the full node runs
//!   the same code), `eth_call` and gas estimation;
//! - [`state`]: the in-memory state (maps for accounts, storage and code, and the
//!   Poseidon2 state tree over them);
//! - [`chain`]: blocks and their indexes, the genesis block, trusted import;
//! - [`log`]: the append-only, checksummed block log, synced before a block is
//!   announced and replayed at start;
//! - [`node`]: the running [`Sequencer`] (pool, producer thread, head);
//! - [`proving`]: batches of blocks proven through ProofBox appliances, checked and
//!   published in order, with a journal that makes proving exactly-once across
//!   restarts;
//! - [`rpc`]: the JSON-RPC server (HTTP and WebSocket on one port): the Ethereum
//!   methods, MegaETH's realtime ones, and the resumable block stream.
//!
//! `docs/nodes.md` describes the roles, the RPC methods and the stream protocol.

pub mod chain;
pub mod config;
pub mod exec;
pub mod log;
pub mod node;
pub mod pool;
pub mod pool_log;
pub mod proving;
pub mod state;

pub use config::{Config, DEV_MNEMONIC, DevAccount, dev_accounts};
pub use node::{ProduceError, Sequencer, StartError};
pub mod rpc;
