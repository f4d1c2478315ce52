//! Errors of decoding chain types.

use alloy_primitives::Address;

/// Why raw bytes are not an acceptable signed transaction. The messages are the ones
/// Ethereum clients expect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    /// Not a valid EIP-2718 envelope (bad RLP, trailing bytes, unknown type byte).
    #[error("invalid transaction encoding: {reason}")]
    Encoding { reason: String },
    /// A known type this chain does not accept (EIP-4844 blobs, EIP-7702).
    #[error("transaction type not supported")]
    UnsupportedType { ty: u8 },
    /// The signature does not recover to an address.
    #[error("invalid sender")]
    InvalidSender,
}

/// Why bytes are not a canonical encoding of a chain type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("{what}: unsupported encoding version {got} (expected {expected})")]
    Version {
        what: &'static str,
        expected: u16,
        got: u16,
    },
    #[error("{what}: {reason}")]
    Malformed { what: &'static str, reason: String },
    #[error("state diff not canonical: {reason} (account {address})")]
    NotCanonical { address: Address, reason: String },
    #[error("transaction {index}: {source}")]
    Transaction { index: usize, source: TxError },
}
