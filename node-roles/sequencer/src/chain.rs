//! The chain in memory: blocks by number, hash and transaction, the genesis block,
//! and the import of a block whose diff is trusted (the sequencer's own log).

use std::collections::HashMap;
use std::sync::Arc;

use alloy_primitives::{Address, B256, U256};
use proofbox_chain_types::{
    AccountDiff, Block, Header, Root, StateDiff, code_hash, receipts_root, transactions_root,
};

use crate::state::MemState;

/// Every block, and indexes over them.
#[derive(Debug, Default)]
pub struct Chain {
    blocks: Vec<Arc<Block>>,
    by_hash: HashMap<B256, u64>,
    txs: HashMap<B256, (u64, usize)>,
}

impl Chain {
    /// The newest block's number.
    pub fn head(&self) -> u64 {
        self.blocks.len().saturating_sub(1) as u64
    }

    pub fn head_block(&self) -> &Arc<Block> {
        self.blocks.last().expect("the chain has a genesis block")
    }

    pub fn block(&self, number: u64) -> Option<&Arc<Block>> {
        self.blocks.get(usize::try_from(number).ok()?)
    }

    pub fn block_by_hash(&self, hash: &B256) -> Option<&Arc<Block>> {
        self.block(*self.by_hash.get(hash)?)
    }

    /// The block holding transaction `hash`, and its index there.
    pub fn tx(&self, hash: &B256) -> Option<(&Arc<Block>, usize)> {
        let (n, i) = self.txs.get(hash)?;
        Some((self.block(*n)?, *i))
    }

    /// Appends `block` (its number must be the next one).
    pub fn push(&mut self, block: Arc<Block>) {
        assert_eq!(block.number(), self.blocks.len() as u64, "blocks in order");
        self.by_hash.insert(block.hash(), block.number());
        for (i, tx) in block.transactions.iter().enumerate() {
            self.txs.insert(tx.hash(), (block.number(), i));
        }
        self.blocks.push(block);
    }
}

/// The state and the chain, kept consistent under one lock.
#[derive(Debug, Default)]
pub struct Core {
    pub state: MemState,
    pub chain: Chain,
}

impl Core {
    /// Applies a block whose diff is trusted after checking that it extends the head,
    /// that its header commits to its body, and that the roots match the state. Used to
    /// replay the sequencer's own log.
    pub fn import_trusted(&mut self, block: Block) -> Result<(), String> {
        let head = self.chain.head_block();
        let h = &block.header;
        if h.number != head.number() + 1 {
            return Err(format!("block {} after head {}", h.number, head.number()));
        }
        if h.parent_hash != head.hash() {
            return Err(format!(
                "block {}: parent hash {} is not the head's {}",
                h.number,
                h.parent_hash,
                head.hash()
            ));
        }
        block
            .check_body()
            .map_err(|e| format!("block {}: {e}", h.number))?;
        if h.pre_state_root != self.state.root() {
            return Err(format!(
                "block {}: pre-state root {} is not the state's {}",
                h.number,
                h.pre_state_root,
                self.state.root()
            ));
        }
        let root = self
            .state
            .apply(&block.diff)
            .map_err(|e| format!("block {}: {e}", h.number))?;
        if root != h.post_state_root {
            return Err(format!(
                "block {}: post-state root {} but the diff gives {root}",
                h.number, h.post_state_root
            ));
        }
        self.state.push_block_hash(block.hash());
        self.chain.push(Arc::new(block));
        Ok(())
    }
}

/// The genesis block of an allocation: number 0, timestamp 0, no transactions, a diff
/// creating every allocated account; and the state and chain holding it.
pub fn genesis(alloc: &[(Address, U256)], gas_limit: u64, base_fee: u64) -> Result<Core, String> {
    let mut merged = std::collections::BTreeMap::new();
    for (a, v) in alloc {
        *merged.entry(*a).or_insert(U256::ZERO) += *v;
    }
    let accounts = merged
        .into_iter()
        .filter(|(_, v)| !v.is_zero())
        .map(|(address, balance)| AccountDiff {
            address,
            nonce: 0,
            balance,
            code_hash: code_hash(&[]),
            code: None,
            storage: vec![],
            destroyed: false,
        })
        .collect();
    let diff = StateDiff::new(accounts).map_err(|e| e.to_string())?;
    let commitment = diff
        .to_state_diff()
        .map_err(|e| e.to_string())?
        .commitment();
    let mut state = MemState::new();
    let pre = state.root();
    let post = state.apply(&diff).map_err(|e| e.to_string())?;
    let header = Header {
        number: 0,
        parent_hash: B256::ZERO,
        timestamp_ms: 0,
        coinbase: Address::ZERO,
        transactions_root: transactions_root(&[]),
        receipts_root: receipts_root(&[]),
        pre_state_root: pre,
        post_state_root: post,
        diff_commitment: Root::from_digest(&commitment),
        gas_used: 0,
        gas_limit,
        base_fee,
    };
    let block = Block {
        header,
        transactions: vec![],
        receipts: vec![],
        diff,
    };
    state.push_block_hash(block.hash());
    let mut chain = Chain::default();
    chain.push(Arc::new(block));
    Ok(Core { state, chain })
}
