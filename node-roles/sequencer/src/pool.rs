//! The mempool: Ethereum's admission checks, nonce-ordered queues per sender, and the
//! selection of a block's candidates in order of arrival.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

use alloy_consensus::Transaction as _;
use alloy_primitives::{Address, B256, U256};
use proofbox_chain_types::SignedTx;
use revm::handler::validation::validate_initial_tx_gas;

use crate::exec::{SPEC, tx_env};

/// Why a transaction is refused. The messages are geth's, which client libraries
/// match on; JSON-RPC answers them with code -32000.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    #[error("{0}")]
    Decode(#[from] proofbox_chain_types::TxError),
    #[error("invalid chain id")]
    ChainId { expected: u64, got: Option<u64> },
    #[error("nonce too low")]
    NonceTooLow { next: u64, got: u64 },
    #[error("nonce too high")]
    NonceTooHigh { next: u64, got: u64 },
    #[error("insufficient funds for gas * price + value")]
    InsufficientFunds { balance: U256, cost: U256 },
    #[error("intrinsic gas too low")]
    IntrinsicGas { got: u64 },
    #[error("exceeds block gas limit")]
    GasLimit { limit: u64, got: u64 },
    #[error("max fee per gas less than block base fee")]
    FeeCapTooLow { base_fee: u64, got: u128 },
    #[error("max priority fee per gas higher than max fee per gas")]
    TipAboveFeeCap,
    #[error("already known")]
    AlreadyKnown,
    #[error("replacement transaction underpriced")]
    ReplacementUnderpriced,
    #[error("txpool is full")]
    Full,
    /// The transaction could not be made durable: it is not pending.
    #[error("{0}")]
    Journal(#[from] crate::pool_log::JournalError),
}

/// What admission needs to know of the state and the chain.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    pub chain_id: u64,
    pub gas_limit: u64,
    pub base_fee: u64,
    pub limit: usize,
    pub max_nonce_gap: u64,
}

impl Rules {
    /// The sequencer's admission rules.
    pub fn of(c: &crate::Config) -> Self {
        Self {
            chain_id: c.chain_id,
            gas_limit: c.gas_limit,
            base_fee: c.base_fee,
            limit: c.pool_limit,
            max_nonce_gap: c.max_nonce_gap,
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    tx: SignedTx,
    seq: u64,
}

/// Pending transactions by sender and nonce.
#[derive(Debug, Default)]
pub struct Mempool {
    by_sender: HashMap<Address, BTreeMap<u64, Entry>>,
    hashes: HashMap<B256, (Address, u64)>,
    seq: u64,
}

impl Mempool {
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    pub fn contains(&self, hash: &B256) -> bool {
        self.hashes.contains_key(hash)
    }

    pub fn get(&self, hash: &B256) -> Option<&SignedTx> {
        let (sender, nonce) = self.hashes.get(hash)?;
        self.by_sender.get(sender)?.get(nonce).map(|e| &e.tx)
    }

    /// The nonce after `sender`'s consecutive pending transactions from `state_nonce`.
    pub fn pending_nonce(&self, sender: &Address, state_nonce: u64) -> u64 {
        let mut n = state_nonce;
        if let Some(q) = self.by_sender.get(sender) {
            while q.contains_key(&n) {
                n += 1;
            }
        }
        n
    }

    /// Checks `tx` against `rules` and the sender's `state_nonce` and `balance`, then
    /// queues it. A transaction ahead of the sender's next nonce waits (up to
    /// `max_nonce_gap` ahead); one with the nonce of a pending one replaces it if it
    /// pays at least 10% more.
    pub fn add(
        &mut self,
        tx: SignedTx,
        rules: &Rules,
        state_nonce: u64,
        balance: U256,
    ) -> Result<B256, PoolError> {
        let hash = tx.hash();
        if self.hashes.contains_key(&hash) {
            return Err(PoolError::AlreadyKnown);
        }
        let e = tx.envelope();
        if let Some(got) = e.chain_id()
            && got != rules.chain_id
        {
            return Err(PoolError::ChainId {
                expected: rules.chain_id,
                got: Some(got),
            });
        }
        if e.gas_limit() > rules.gas_limit {
            return Err(PoolError::GasLimit {
                limit: rules.gas_limit,
                got: e.gas_limit(),
            });
        }
        // revm's own intrinsic gas rule (and EIP-7623's calldata floor).
        if validate_initial_tx_gas(tx_env(&tx), SPEC, false, false, u64::MAX, None).is_err() {
            return Err(PoolError::IntrinsicGas { got: e.gas_limit() });
        }
        if let Some(tip) = e.max_priority_fee_per_gas()
            && tip > e.max_fee_per_gas()
        {
            return Err(PoolError::TipAboveFeeCap);
        }
        if e.max_fee_per_gas() < u128::from(rules.base_fee) {
            return Err(PoolError::FeeCapTooLow {
                base_fee: rules.base_fee,
                got: e.max_fee_per_gas(),
            });
        }
        let nonce = e.nonce();
        if nonce < state_nonce {
            return Err(PoolError::NonceTooLow {
                next: state_nonce,
                got: nonce,
            });
        }
        if nonce > state_nonce + rules.max_nonce_gap {
            return Err(PoolError::NonceTooHigh {
                next: state_nonce,
                got: nonce,
            });
        }
        let cost = U256::from(e.gas_limit()) * U256::from(e.max_fee_per_gas()) + e.value();
        if cost > balance {
            return Err(PoolError::InsufficientFunds { balance, cost });
        }
        let sender = tx.sender();
        if let Some(old) = self.by_sender.get(&sender).and_then(|q| q.get(&nonce)) {
            let o = old.tx.envelope();
            let bumped = |new: u128, old: u128| new >= old + old / 10;
            let old_tip = o.max_priority_fee_per_gas().unwrap_or(o.max_fee_per_gas());
            let new_tip = e.max_priority_fee_per_gas().unwrap_or(e.max_fee_per_gas());
            if !bumped(e.max_fee_per_gas(), o.max_fee_per_gas()) || !bumped(new_tip, old_tip) {
                return Err(PoolError::ReplacementUnderpriced);
            }
            let old_hash = old.tx.hash();
            self.hashes.remove(&old_hash);
        } else if self.hashes.len() >= rules.limit {
            return Err(PoolError::Full);
        }
        self.seq += 1;
        self.by_sender
            .entry(sender)
            .or_default()
            .insert(nonce, Entry { tx, seq: self.seq });
        self.hashes.insert(hash, (sender, nonce));
        Ok(hash)
    }

    /// The executable transactions (each sender's run of consecutive nonces from its
    /// state nonce), in order of arrival, each sender's in nonce order.
    pub fn candidates(&self, state_nonce: impl Fn(&Address) -> u64) -> Vec<SignedTx> {
        let mut runs: Vec<Vec<&Entry>> = Vec::new();
        for (sender, q) in &self.by_sender {
            let mut n = state_nonce(sender);
            let mut run = Vec::new();
            while let Some(e) = q.get(&n) {
                run.push(e);
                n += 1;
            }
            if !run.is_empty() {
                run.reverse();
                runs.push(run);
            }
        }
        let mut heap: BinaryHeap<Reverse<(u64, usize)>> = runs
            .iter()
            .enumerate()
            .map(|(i, r)| Reverse((r.last().unwrap().seq, i)))
            .collect();
        let mut out = Vec::new();
        while let Some(Reverse((_, i))) = heap.pop() {
            let e = runs[i].pop().unwrap();
            out.push(e.tx.clone());
            if let Some(next) = runs[i].last() {
                heap.push(Reverse((next.seq, i)));
            }
        }
        out
    }

    /// Drops `hash` (included in a block, or refused by execution).
    pub fn remove(&mut self, hash: &B256) {
        if let Some((sender, nonce)) = self.hashes.remove(hash)
            && let Some(q) = self.by_sender.get_mut(&sender)
        {
            q.remove(&nonce);
            if q.is_empty() {
                self.by_sender.remove(&sender);
            }
        }
    }

    /// Drops every transaction of `sender` below its new `state_nonce`.
    pub fn prune(&mut self, sender: &Address, state_nonce: u64) {
        if let Some(q) = self.by_sender.get_mut(sender) {
            let keep = q.split_off(&state_nonce);
            for e in q.values() {
                self.hashes.remove(&e.tx.hash());
            }
            *q = keep;
            if q.is_empty() {
                self.by_sender.remove(sender);
            }
        }
    }

    /// Every pooled transaction's EIP-2718 bytes, in order of arrival (what the pool
    /// journal is rewritten with).
    pub fn in_arrival_order(&self) -> Vec<alloy_primitives::Bytes> {
        let mut all: Vec<&Entry> = self.by_sender.values().flat_map(|q| q.values()).collect();
        all.sort_by_key(|e| e.seq);
        all.into_iter().map(|e| e.tx.encoded()).collect()
    }

    /// The sum of the gas limits of every pooled transaction.
    pub fn total_gas(&self) -> u64 {
        self.by_sender
            .values()
            .flat_map(|q| q.values())
            .map(|e| e.tx.gas_limit())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
    use alloy_eips::eip2718::Encodable2718;
    use alloy_primitives::TxKind;
    use alloy_signer::SignerSync;

    const RULES: Rules = Rules {
        chain_id: 31337,
        gas_limit: 30_000_000,
        base_fee: 1_000_000_000,
        limit: 4,
        max_nonce_gap: 8,
    };

    fn tx(from: u32, nonce: u64, max_fee: u128) -> SignedTx {
        let t = TxEip1559 {
            chain_id: 31337,
            nonce,
            gas_limit: 21_000,
            max_fee_per_gas: max_fee,
            max_priority_fee_per_gas: max_fee - 1_000_000_000,
            to: TxKind::Call(Address::repeat_byte(1)),
            ..Default::default()
        };
        let signer = crate::dev_accounts(from + 1)[from as usize].signer();
        let sig = signer.sign_hash_sync(&t.signature_hash()).unwrap();
        SignedTx::decode(&TxEnvelope::from(t.into_signed(sig)).encoded_2718()).unwrap()
    }

    const RICH: U256 = U256::MAX;

    #[test]
    fn candidates_come_in_arrival_order_each_sender_in_nonce_order() {
        let mut pool = Mempool::default();
        let a1 = pool.add(tx(0, 1, 2_000_000_000), &RULES, 0, RICH).unwrap();
        let b0 = pool.add(tx(1, 0, 2_000_000_000), &RULES, 0, RICH).unwrap();
        let a0 = pool.add(tx(0, 0, 2_000_000_000), &RULES, 0, RICH).unwrap();
        let got: Vec<B256> = pool.candidates(|_| 0).iter().map(SignedTx::hash).collect();
        // a0 arrived last but a1 needs it first; b0 arrived before a0.
        assert_eq!(got, vec![b0, a0, a1]);
        // A sender whose state nonce is past a gap has nothing executable.
        assert_eq!(pool.candidates(|_| 5).len(), 0);
        assert_eq!(pool.pending_nonce(&crate::dev_accounts(1)[0].address, 0), 2);
        assert_eq!(pool.total_gas(), 63_000);
        let arrived: Vec<B256> = pool
            .in_arrival_order()
            .iter()
            .map(|raw| SignedTx::decode(raw).unwrap().hash())
            .collect();
        assert_eq!(arrived, vec![a1, b0, a0]);
        pool.prune(&crate::dev_accounts(1)[0].address, 1);
        assert!(!pool.contains(&a0) && pool.contains(&a1));
        pool.remove(&b0);
        assert_eq!(pool.len(), 1);
    }

    #[test]
    fn replacements_must_pay_ten_percent_more_and_the_pool_is_bounded() {
        let mut pool = Mempool::default();
        let first = pool.add(tx(0, 0, 2_000_000_000), &RULES, 0, RICH).unwrap();
        assert_eq!(
            pool.add(tx(0, 0, 2_100_000_000), &RULES, 0, RICH),
            Err(PoolError::ReplacementUnderpriced)
        );
        let second = pool.add(tx(0, 0, 2_300_000_000), &RULES, 0, RICH).unwrap();
        assert!(!pool.contains(&first) && pool.contains(&second));
        assert_eq!(pool.len(), 1);
        for n in 1..4 {
            pool.add(tx(0, n, 2_000_000_000), &RULES, 0, RICH).unwrap();
        }
        assert_eq!(
            pool.add(tx(1, 0, 2_000_000_000), &RULES, 0, RICH),
            Err(PoolError::Full)
        );
        assert_eq!(
            pool.add(tx(0, 9, 2_000_000_000), &RULES, 0, RICH),
            Err(PoolError::NonceTooHigh { next: 0, got: 9 })
        );
    }
}
