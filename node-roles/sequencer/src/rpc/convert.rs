//! Chain types as alloy's JSON-RPC types.
//!
//! An Ethereum header has no fields for the Poseidon2 roots, so a block's JSON carries
//! them twice: `stateRoot` is the post-state root in its 32-byte form
//! (`Root::to_b256`: the 8 elements big-endian), and extra fields `preStateRoot`,
//! `postStateRoot` and `diffCommitment` hold the 64-hex-digit forms, with
//! `timestampMs`. `hash` is `Header::hash`, not keccak of the header's RLP.

use std::sync::Arc;

use alloy_consensus::Transaction as _;
use alloy_consensus::transaction::Recovered;
use alloy_consensus::{
    ReceiptEnvelope, ReceiptWithBloom, TxType, constants::EMPTY_OMMER_ROOT_HASH,
};
use alloy_primitives::{Bloom, U256, logs_bloom};
use alloy_rpc_types_eth::{
    Block as RpcBlock, BlockTransactions, Header as RpcHeader, Log, Transaction, TransactionReceipt,
};
use alloy_serde::{OtherFields, WithOtherFields};
use proofbox_chain_types::{Block, SignedTx};

/// A block header as `eth_getBlockBy*` and `newHeads` show it.
pub fn header(block: &Block) -> WithOtherFields<RpcHeader> {
    let h = &block.header;
    let bloom: Bloom = block
        .receipts
        .iter()
        .fold(Bloom::default(), |acc, r| acc | logs_bloom(r.logs.iter()));
    let inner = alloy_consensus::Header {
        parent_hash: h.parent_hash,
        ommers_hash: EMPTY_OMMER_ROOT_HASH,
        beneficiary: h.coinbase,
        state_root: h.post_state_root.to_b256(),
        transactions_root: h.transactions_root,
        receipts_root: h.receipts_root,
        logs_bloom: bloom,
        number: h.number,
        gas_limit: h.gas_limit,
        gas_used: h.gas_used,
        timestamp: h.timestamp_secs(),
        base_fee_per_gas: Some(h.base_fee),
        ..Default::default()
    };
    let mut other = OtherFields::default();
    other.insert("preStateRoot".into(), h.pre_state_root.hex().into());
    other.insert("postStateRoot".into(), h.post_state_root.hex().into());
    other.insert("diffCommitment".into(), h.diff_commitment.hex().into());
    other.insert(
        "timestampMs".into(),
        format!("{:#x}", h.timestamp_ms).into(),
    );
    WithOtherFields {
        inner: RpcHeader {
            hash: block.hash(),
            inner,
            total_difficulty: Some(U256::ZERO),
            size: Some(U256::from(block.encode().len())),
        },
        other,
    }
}

/// A transaction, in a block at `index` or pending (`None`).
pub fn transaction(tx: &SignedTx, at: Option<(&Block, usize)>) -> Transaction {
    let (block_hash, block_number, transaction_index, effective_gas_price, block_timestamp) =
        match at {
            Some((b, i)) => (
                Some(b.hash()),
                Some(b.number()),
                Some(i as u64),
                Some(b.receipts[i].effective_gas_price),
                Some(b.header.timestamp_secs()),
            ),
            None => (None, None, None, None, None),
        };
    Transaction {
        inner: Recovered::new_unchecked(tx.envelope().clone(), tx.sender()),
        block_hash,
        block_number,
        transaction_index,
        effective_gas_price,
        block_timestamp,
    }
}

/// A block with its transactions as hashes, or in full.
pub fn block(
    b: &Block,
    full: bool,
) -> WithOtherFields<RpcBlock<Transaction, WithOtherFields<RpcHeader>>> {
    let transactions = if full {
        BlockTransactions::Full(
            b.transactions
                .iter()
                .enumerate()
                .map(|(i, tx)| transaction(tx, Some((b, i))))
                .collect(),
        )
    } else {
        BlockTransactions::Hashes(b.transactions.iter().map(SignedTx::hash).collect())
    };
    WithOtherFields::new(RpcBlock {
        header: header(b),
        uncles: vec![],
        transactions,
        withdrawals: None,
    })
}

/// Every log of a block with its position (the block's log index counts across
/// transactions).
pub fn block_logs(b: &Block) -> Vec<Log> {
    let mut out = Vec::new();
    for (i, r) in b.receipts.iter().enumerate() {
        for log in &r.logs {
            out.push(Log {
                inner: log.clone(),
                block_hash: Some(b.hash()),
                block_number: Some(b.number()),
                block_timestamp: Some(b.header.timestamp_secs()),
                transaction_hash: Some(b.transactions[i].hash()),
                transaction_index: Some(i as u64),
                log_index: Some(out.len() as u64),
                removed: false,
            });
        }
    }
    out
}

/// The receipt of transaction `index` of `b`.
pub fn receipt(b: &Arc<Block>, index: usize) -> TransactionReceipt {
    let r = &b.receipts[index];
    let tx = &b.transactions[index];
    let first_log: usize = b.receipts[..index].iter().map(|r| r.logs.len()).sum();
    let logs: Vec<Log> = block_logs(b)
        .into_iter()
        .skip(first_log)
        .take(r.logs.len())
        .collect();
    let receipt = alloy_consensus::Receipt {
        status: r.success.into(),
        cumulative_gas_used: r.cumulative_gas_used,
        logs,
    };
    let with_bloom = ReceiptWithBloom {
        receipt,
        logs_bloom: logs_bloom(r.logs.iter()),
    };
    let ty = TxType::try_from(r.tx_type).unwrap_or(TxType::Legacy);
    TransactionReceipt {
        inner: ReceiptEnvelope::from_typed(ty, with_bloom),
        transaction_hash: tx.hash(),
        transaction_index: Some(index as u64),
        block_hash: Some(b.hash()),
        block_number: Some(b.number()),
        gas_used: r.gas_used,
        effective_gas_price: r.effective_gas_price,
        blob_gas_used: None,
        blob_gas_price: None,
        from: tx.sender(),
        to: tx.envelope().to(),
        contract_address: r.contract_address,
    }
}
