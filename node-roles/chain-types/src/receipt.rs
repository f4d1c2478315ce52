//! Receipts, logs and the Ethereum tries over a block's transactions and receipts.

use alloy_consensus::{ReceiptEnvelope, TxType};
use alloy_primitives::{Address, B256, Log};
use serde::{Deserialize, Serialize};

use crate::SignedTx;

/// The outcome of one transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Receipt {
    /// The EIP-2718 type of the transaction: 0, 1 or 2.
    pub tx_type: u8,
    /// EIP-658 status: true unless the transaction reverted or halted.
    pub success: bool,
    /// Gas used by the block up to and including this transaction.
    pub cumulative_gas_used: u64,
    /// Gas this transaction used (after refunds).
    pub gas_used: u64,
    /// The price per gas the sender paid (base fee plus the effective tip).
    pub effective_gas_price: u128,
    /// The address of the contract a creation deployed, if it succeeded.
    pub contract_address: Option<Address>,
    pub logs: Vec<Log>,
}

impl Receipt {
    /// The Ethereum receipt (status, cumulative gas, bloom, logs) under its type.
    pub fn to_envelope(&self) -> ReceiptEnvelope {
        let ty = TxType::try_from(self.tx_type).unwrap_or(TxType::Legacy);
        let receipt = alloy_consensus::Receipt {
            status: self.success.into(),
            cumulative_gas_used: self.cumulative_gas_used,
            logs: self.logs.clone(),
        };
        ReceiptEnvelope::from_typed(ty, receipt.with_bloom())
    }
}

/// The Ethereum receipts trie root of `receipts` (as in an Ethereum header).
pub fn receipts_root(receipts: &[Receipt]) -> B256 {
    let envelopes: Vec<ReceiptEnvelope> = receipts.iter().map(Receipt::to_envelope).collect();
    alloy_consensus::proofs::calculate_receipt_root(&envelopes)
}

/// The Ethereum transactions trie root of `txs` (as in an Ethereum header).
pub fn transactions_root(txs: &[SignedTx]) -> B256 {
    let envelopes: Vec<&alloy_consensus::TxEnvelope> = txs.iter().map(SignedTx::envelope).collect();
    alloy_consensus::proofs::calculate_transaction_root(&envelopes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::{Bytes, LogData};

    #[test]
    fn the_receipts_root_commits_to_status_gas_and_logs() {
        let log = Log {
            address: Address::repeat_byte(7),
            data: LogData::new_unchecked(vec![B256::repeat_byte(1)], Bytes::from_static(b"x")),
        };
        let r = Receipt {
            tx_type: 2,
            success: true,
            cumulative_gas_used: 50_000,
            gas_used: 50_000,
            effective_gas_price: 1,
            contract_address: None,
            logs: vec![log],
        };
        let base = receipts_root(std::slice::from_ref(&r));
        assert_eq!(receipts_root(&[]), alloy_consensus::EMPTY_ROOT_HASH);
        for other in [
            Receipt {
                success: false,
                ..r.clone()
            },
            Receipt {
                cumulative_gas_used: 1,
                ..r.clone()
            },
            Receipt {
                logs: vec![],
                ..r.clone()
            },
            Receipt {
                tx_type: 0,
                ..r.clone()
            },
        ] {
            assert_ne!(receipts_root(&[other]), base);
        }
        let bin = postcard::to_allocvec(&r).unwrap();
        assert_eq!(postcard::from_bytes::<Receipt>(&bin).unwrap(), r);
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<Receipt>(&json).unwrap(), r);
    }
}
