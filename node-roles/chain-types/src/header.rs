//! Block headers.

use alloy_primitives::{Address, B256, keccak256};
use serde::{Deserialize, Serialize};

use crate::Root;

/// The version written before a header in [`Header::encode`].
pub const HEADER_ENCODING_VERSION: u16 = 1;

/// A block header.
///
/// Its [`Header::hash`] is the keccak-256 of [`Header::encode`], not of an Ethereum
/// header's RLP: the header carries two Poseidon2 state roots and the diff commitment,
/// which an Ethereum header has no fields for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Header {
    pub number: u64,
    /// The hash of block `number - 1`; zero for the genesis block.
    pub parent_hash: B256,
    /// Milliseconds since the Unix epoch. The EVM's `TIMESTAMP` is this in seconds.
    pub timestamp_ms: u64,
    /// The account the block's priority fees go to (`COINBASE`).
    pub coinbase: Address,
    /// The Ethereum transactions trie root of the block's transactions.
    pub transactions_root: B256,
    /// The Ethereum receipts trie root of the block's receipts.
    pub receipts_root: B256,
    /// The state root before the block (the parent's `post_state_root`).
    pub pre_state_root: Root,
    /// The state root after applying the block's diff.
    pub post_state_root: Root,
    /// `proofbox_state::Diff::commitment` of the block's diff.
    pub diff_commitment: Root,
    pub gas_used: u64,
    pub gas_limit: u64,
    /// The base fee per gas the block's transactions paid (wei).
    pub base_fee: u64,
}

impl Header {
    /// The EVM timestamp: seconds.
    pub fn timestamp_secs(&self) -> u64 {
        self.timestamp_ms / 1000
    }

    /// The canonical encoding: postcard of `(HEADER_ENCODING_VERSION, self)`.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(&(HEADER_ENCODING_VERSION, self)).expect("a header serializes")
    }

    /// keccak-256 of [`Header::encode`].
    pub fn hash(&self) -> B256 {
        keccak256(self.encode())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            number: 7,
            parent_hash: B256::repeat_byte(1),
            timestamp_ms: 1_700_000_000_123,
            coinbase: Address::repeat_byte(5),
            transactions_root: B256::repeat_byte(2),
            receipts_root: B256::repeat_byte(3),
            pre_state_root: Root([1; 8]),
            post_state_root: Root([2; 8]),
            diff_commitment: Root([3; 8]),
            gas_used: 21_000,
            gas_limit: 30_000_000,
            base_fee: 1_000_000_000,
        }
    }

    #[test]
    fn every_field_is_committed_by_the_hash() {
        let h = header();
        let base = h.hash();
        let variants: Vec<Header> = vec![
            Header {
                number: 8,
                ..h.clone()
            },
            Header {
                parent_hash: B256::ZERO,
                ..h.clone()
            },
            Header {
                timestamp_ms: 1,
                ..h.clone()
            },
            Header {
                transactions_root: B256::ZERO,
                ..h.clone()
            },
            Header {
                receipts_root: B256::ZERO,
                ..h.clone()
            },
            Header {
                pre_state_root: Root([9; 8]),
                ..h.clone()
            },
            Header {
                post_state_root: Root([9; 8]),
                ..h.clone()
            },
            Header {
                diff_commitment: Root([9; 8]),
                ..h.clone()
            },
            Header {
                gas_used: 1,
                ..h.clone()
            },
            Header {
                gas_limit: 1,
                ..h.clone()
            },
            Header {
                base_fee: 1,
                ..h.clone()
            },
        ];
        for v in variants {
            assert_ne!(v.hash(), base, "{v:?}");
        }
        assert_eq!(h.timestamp_secs(), 1_700_000_000);
        let json = serde_json::to_value(&h).unwrap();
        assert_eq!(json["postStateRoot"], Root([2; 8]).hex());
        assert_eq!(serde_json::from_value::<Header>(json).unwrap(), h);
    }
}
