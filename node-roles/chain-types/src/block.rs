//! A block as the sequencer logs and streams it: header, transactions, receipts, diff.

use alloy_primitives::B256;
use proofbox_state::F;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{
    DecodeError, Header, Receipt, Root, SignedTx, StateDiff, receipts_root, transactions_root,
};

/// The version written before a block in [`Block::encode`].
pub const BLOCK_ENCODING_VERSION: u16 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    pub header: Header,
    pub transactions: Vec<SignedTx>,
    pub receipts: Vec<Receipt>,
    pub diff: StateDiff,
}

impl Block {
    pub fn hash(&self) -> B256 {
        self.header.hash()
    }

    pub fn number(&self) -> u64 {
        self.header.number
    }

    /// The canonical encoding: postcard of `(BLOCK_ENCODING_VERSION, self)`, each
    /// transaction as its EIP-2718 bytes.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(&(BLOCK_ENCODING_VERSION, self)).expect("a block serializes")
    }

    /// Reads [`Block::encode`]; every transaction is decoded and recovered again.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let malformed = |e: postcard::Error| DecodeError::Malformed {
            what: "block",
            reason: e.to_string(),
        };
        let (version, rest) = postcard::take_from_bytes::<u16>(bytes).map_err(malformed)?;
        if version != BLOCK_ENCODING_VERSION {
            return Err(DecodeError::Version {
                what: "block",
                expected: BLOCK_ENCODING_VERSION,
                got: version,
            });
        }
        let (block, rest) = postcard::take_from_bytes::<Self>(rest).map_err(malformed)?;
        if !rest.is_empty() {
            return Err(DecodeError::Malformed {
                what: "block",
                reason: format!("{} trailing bytes", rest.len()),
            });
        }
        Ok(block)
    }

    /// Checks that the header commits to the body: the transactions and receipts roots,
    /// one receipt per transaction, the gas used, and the diff commitment. Returns the
    /// first difference. (Whether the state roots are right needs the state.)
    pub fn check_body(&self) -> Result<(), String> {
        check_bodies(std::slice::from_ref(self), false)
            .pop()
            .expect("one block, one result")
    }

    /// The part of [`Block::check_body`] that concerns the transactions and receipts:
    /// one receipt per transaction, the transactions and receipts roots (the Ethereum
    /// tries, keccak-hashed), and the gas used. Nothing here concerns the state.
    pub fn check_transactions_and_receipts(&self) -> Result<(), String> {
        let h = &self.header;
        if self.receipts.len() != self.transactions.len() {
            return Err(format!(
                "{} receipts for {} transactions",
                self.receipts.len(),
                self.transactions.len()
            ));
        }
        let tx_root = transactions_root(&self.transactions);
        if tx_root != h.transactions_root {
            return Err(format!(
                "transactions root: header {}, body {tx_root}",
                h.transactions_root
            ));
        }
        let r_root = receipts_root(&self.receipts);
        if r_root != h.receipts_root {
            return Err(format!(
                "receipts root: header {}, body {r_root}",
                h.receipts_root
            ));
        }
        let gas = self.receipts.last().map_or(0, |r| r.cumulative_gas_used);
        if gas != h.gas_used {
            return Err(format!("gas used: header {}, receipts {gas}", h.gas_used));
        }
        Ok(())
    }

    /// The part of [`Block::check_body`] that concerns the state: the diff decodes
    /// into tree updates and the header's diff commitment is their sponge.
    pub fn check_diff(&self) -> Result<(), String> {
        check_diffs(std::slice::from_ref(self), false)
            .pop()
            .expect("one block, one result")
    }

    /// The diff's field encoding (`proofbox_state::Diff::encode`), whose sponge the
    /// header's diff commitment must be.
    fn diff_message(&self) -> Result<Vec<F>, String> {
        let diff = self
            .diff
            .to_state_diff()
            .map_err(|e| format!("diff: {e}"))?;
        Ok(diff.encode())
    }
}

/// Hashes the messages of the blocks whose earlier checks passed (one sponge each, in
/// the SIMD lanes together) and compares each with its header's diff commitment.
fn commitments(
    blocks: &[Block],
    checked: Vec<Result<Vec<F>, String>>,
    par: bool,
) -> Vec<Result<(), String>> {
    let messages: Vec<&[F]> = checked
        .iter()
        .filter_map(|c| c.as_ref().ok().map(Vec::as_slice))
        .collect();
    let mut digests = proofbox_state::hash::hash_ragged(&messages, par).into_iter();
    blocks
        .iter()
        .zip(checked)
        .map(|(b, c)| {
            c?;
            let c = Root::from_digest(&digests.next().expect("one digest per message"));
            if c != b.header.diff_commitment {
                return Err(format!(
                    "diff commitment: header {}, diff {c}",
                    b.header.diff_commitment
                ));
            }
            Ok(())
        })
        .collect()
}

/// [`Block::check_diff`] of each of `blocks`, the same results, the diff commitments
/// hashed together (one sponge per block, several blocks' sponges in the SIMD lanes of
/// one permutation); with `par`, the diffs decoded and the groups of sponges hashed
/// across cores.
pub fn check_diffs(blocks: &[Block], par: bool) -> Vec<Result<(), String>> {
    let checked: Vec<Result<Vec<F>, String>> = if par {
        blocks.par_iter().map(Block::diff_message).collect()
    } else {
        blocks.iter().map(Block::diff_message).collect()
    };
    commitments(blocks, checked, par)
}

/// [`Block::check_body`] of each of `blocks` (its transactions and receipts first, then
/// its diff), the same checks and results, with the
/// diff commitments hashed together: one Poseidon2 sponge per block as ever, several
/// blocks' sponges in the SIMD lanes of one permutation
/// (`proofbox_state::hash::hash_ragged`). With `par`, the blocks' other checks (the
/// transactions and receipts tries) and the groups of sponges run across cores.
pub fn check_bodies(blocks: &[Block], par: bool) -> Vec<Result<(), String>> {
    let one = |b: &Block| {
        b.check_transactions_and_receipts()?;
        b.diff_message()
    };
    let checked: Vec<Result<Vec<F>, String>> = if par {
        blocks.par_iter().map(one).collect()
    } else {
        blocks.iter().map(one).collect()
    };
    commitments(blocks, checked, par)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tx::tests::transfer_1559;
    use alloy_primitives::{Address, U256};

    fn block() -> Block {
        let transactions = vec![SignedTx::decode(&transfer_1559(0)).unwrap()];
        let receipts = vec![Receipt {
            tx_type: 2,
            success: true,
            cumulative_gas_used: 21_000,
            gas_used: 21_000,
            effective_gas_price: 1_000_000_001,
            contract_address: None,
            logs: vec![],
        }];
        let diff = StateDiff::new(vec![crate::AccountDiff {
            address: Address::repeat_byte(0x11),
            nonce: 0,
            balance: U256::from(5),
            code_hash: crate::code_hash(&[]),
            code: None,
            storage: vec![],
            destroyed: false,
        }])
        .unwrap();
        let header = Header {
            number: 1,
            parent_hash: B256::repeat_byte(9),
            timestamp_ms: 1000,
            coinbase: Address::ZERO,
            transactions_root: transactions_root(&transactions),
            receipts_root: receipts_root(&receipts),
            pre_state_root: Root([1; 8]),
            post_state_root: Root([2; 8]),
            diff_commitment: Root::from_digest(&diff.to_state_diff().unwrap().commitment()),
            gas_used: 21_000,
            gas_limit: 30_000_000,
            base_fee: 1_000_000_000,
        };
        Block {
            header,
            transactions,
            receipts,
            diff,
        }
    }

    #[test]
    fn round_trips_and_checks_its_body() {
        let b = block();
        b.check_body().unwrap();
        assert_eq!(Block::decode(&b.encode()).unwrap(), b);
        let mut v = b.encode();
        v[0] = 9;
        assert!(matches!(
            Block::decode(&v),
            Err(DecodeError::Version { .. })
        ));
    }

    #[test]
    fn an_altered_body_is_caught() {
        let mut r = block();
        r.receipts[0].success = false;
        assert!(r.check_body().unwrap_err().starts_with("receipts root"));
        let mut d = block();
        d.diff = StateDiff::default();
        assert!(d.check_body().unwrap_err().starts_with("diff commitment"));
        let mut t = block();
        t.transactions
            .push(SignedTx::decode(&transfer_1559(1)).unwrap());
        assert!(t.check_body().unwrap_err().contains("receipts for"));
        let mut g = block();
        g.header.gas_used = 1;
        assert!(g.check_body().unwrap_err().starts_with("gas used"));
    }

    #[test]
    fn the_state_and_the_transactions_and_receipts_are_checked_apart() {
        let mut blocks: Vec<Block> = (0..20).map(|_| block()).collect();
        blocks[2].receipts[0].success = false;
        blocks[5].transactions.clear();
        blocks[5].receipts.clear();
        blocks[9].diff = StateDiff::default();
        for par in [false, true] {
            let diffs = check_diffs(&blocks, par);
            for (i, (b, d)) in blocks.iter().zip(&diffs).enumerate() {
                assert_eq!(*d, b.check_diff());
                let tries = b.check_transactions_and_receipts();
                match i {
                    2 => assert!(tries.unwrap_err().starts_with("receipts root")),
                    5 => assert!(tries.unwrap_err().starts_with("transactions root")),
                    _ => tries.unwrap(),
                }
                match i {
                    9 => assert!(d.as_ref().unwrap_err().starts_with("diff commitment")),
                    _ => assert_eq!(*d, Ok(())),
                }
                // Together they are the whole body check, the transactions first.
                let whole = b.check_transactions_and_receipts().and(b.check_diff());
                assert_eq!(whole, b.check_body());
            }
        }
    }

    #[test]
    fn bodies_checked_together_give_each_blocks_own_result() {
        // Good blocks around a forged diff, a forged receipt and a forged commitment,
        // more of them than one group of SIMD lanes holds.
        let mut blocks: Vec<Block> = (0..40).map(|_| block()).collect();
        blocks[3].diff = StateDiff::default();
        blocks[17].receipts[0].success = false;
        blocks[30].header.diff_commitment = Root([7; 8]);
        for par in [false, true] {
            let results = check_bodies(&blocks, par);
            assert_eq!(results.len(), blocks.len());
            for (b, r) in blocks.iter().zip(&results) {
                assert_eq!(*r, b.check_body());
            }
            assert!(
                results[3]
                    .as_ref()
                    .unwrap_err()
                    .starts_with("diff commitment")
            );
            assert!(
                results[17]
                    .as_ref()
                    .unwrap_err()
                    .starts_with("receipts root")
            );
            assert!(
                results[30]
                    .as_ref()
                    .unwrap_err()
                    .starts_with("diff commitment")
            );
            assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 37);
        }
        assert!(check_bodies(&[], true).is_empty());
    }
}
