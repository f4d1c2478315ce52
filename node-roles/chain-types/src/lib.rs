//! The chain types every ProofBox node role shares.
//!
//! - [`Root`]: a Poseidon2 digest of the state tree (8 KoalaBear elements) as it
//!   travels in headers and over JSON-RPC: 64 hex digits (each element's canonical
//!   `u32` as 8 digits), or 32 bytes ([`Root::to_b256`], the elements big-endian) where
//!   an Ethereum field holds 32 bytes;
//! - [`Header`]: a block header (number, parent hash, timestamp, coinbase, transactions and
//!   receipts roots, pre- and post-state roots, diff commitment, gas used and limit,
//!   base fee) and its [`Header::hash`];
//! - [`SignedTx`]: an Ethereum signed transaction (legacy, EIP-2930, EIP-1559) decoded
//!   and signature-recovered with `alloy`'s `TxEnvelope`; other types are refused
//!   (decoded unrecovered, [`unrecovered_transactions`], it recovers its sender on
//!   first use);
//! - [`Receipt`] with its logs, and the Ethereum receipts root;
//! - [`StateDiff`]: what a block changed, per account (the shape of OP flashblocks'
//!   `metadata.accounts` and MegaETH's `stateChanges`), its canonical versioned
//!   encoding and its mapping onto the state tree's [`proofbox_state::Diff`];
//! - [`Block`]: header, transactions, receipts and diff, as the sequencer logs and
//!   streams it, and [`check_bodies`]: the body checks of several blocks, their diff
//!   commitments hashed together in the SIMD lanes ([`check_diffs`]: only the part
//!   that concerns the state; [`Block::check_transactions_and_receipts`]: the rest);
//! - [`net_diff`]: the net tree diff of consecutive blocks, and [`ProvenBatch`]: a
//!   state-transition proof of such a batch as the sequencer publishes it;
//! - [`account_proof`]: `eth_getProof`'s answer (Merkle proofs of an account and its
//!   slots), as a replica serves it and a light client checks it;
//! - [`params::positional`]: JSON-RPC positional parameters whose trailing optional
//!   ones (a block tag) may be left out, as Ethereum clients do.
//!
//! `docs/nodes.md` specifies the encodings.

pub mod account_proof;
mod block;
mod diff;
mod error;
mod header;
pub mod params;
mod proof;
mod receipt;
mod root;
mod tx;

pub use block::{BLOCK_ENCODING_VERSION, Block, check_bodies, check_diffs};
pub use diff::{AccountDiff, STATE_DIFF_VERSION, StateDiff, code_hash, net_diff};
pub use error::{DecodeError, TxError};
pub use header::{HEADER_ENCODING_VERSION, Header};
pub use proof::ProvenBatch;
pub use receipt::{Receipt, receipts_root, transactions_root};
pub use root::Root;
pub use tx::{SignedTx, unrecovered_transactions};
