//! The sequencer's state, all in memory: accounts, storage and code in hash maps, and
//! the Poseidon2 state tree over them.

use std::collections::HashMap;
use std::convert::Infallible;

use alloy_primitives::{Address, B256, U256};
use proofbox_chain_types::{Root, StateDiff};
use proofbox_state::{Parallelism, StateTree};
use revm::DatabaseRef;
use revm::bytecode::Bytecode;
use revm::primitives::KECCAK_EMPTY;
use revm::state::AccountInfo;

/// Accounts, storage, code, block hashes and the state tree.
#[derive(Debug, Default)]
pub struct MemState {
    accounts: HashMap<Address, (u64, U256, B256)>,
    storage: HashMap<Address, HashMap<U256, U256>>,
    codes: HashMap<B256, Bytecode>,
    block_hashes: Vec<B256>,
    tree: StateTree,
}

impl MemState {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn root(&self) -> Root {
        Root::from_digest(&self.tree.root())
    }

    /// The hash of every block so far, by number.
    pub fn push_block_hash(&mut self, hash: B256) {
        self.block_hashes.push(hash);
    }

    pub fn height(&self) -> Option<u64> {
        (self.block_hashes.len() as u64).checked_sub(1)
    }

    /// Applies a block's diff; returns the new state root.
    pub fn apply(&mut self, diff: &StateDiff) -> Result<Root, proofbox_state::StateError> {
        let tree_diff = diff.to_state_diff()?;
        for a in diff.accounts() {
            if a.destroyed {
                self.accounts.remove(&a.address);
                self.storage.remove(&a.address);
                continue;
            }
            self.accounts
                .insert(a.address, (a.nonce, a.balance, a.code_hash));
            if let Some(code) = &a.code {
                self.codes
                    .insert(a.code_hash, Bytecode::new_raw(code.clone()));
            }
            if !a.storage.is_empty() {
                let slots = self.storage.entry(a.address).or_default();
                for (slot, value) in &a.storage {
                    if value.is_zero() {
                        slots.remove(slot);
                    } else {
                        slots.insert(*slot, *value);
                    }
                }
            }
        }
        let parallelism = if tree_diff.len() >= 256 {
            Parallelism::Parallel
        } else {
            Parallelism::Sequential
        };
        Ok(Root::from_digest(&self.tree.apply(&tree_diff, parallelism)))
    }

    pub fn nonce(&self, a: &Address) -> u64 {
        self.accounts.get(a).map_or(0, |x| x.0)
    }

    pub fn balance(&self, a: &Address) -> U256 {
        self.accounts.get(a).map_or(U256::ZERO, |x| x.1)
    }

    pub fn code(&self, a: &Address) -> Option<Bytecode> {
        let hash = self.accounts.get(a)?.2;
        self.codes.get(&hash).cloned()
    }

    pub fn storage_at(&self, a: &Address, slot: &U256) -> U256 {
        self.storage
            .get(a)
            .and_then(|s| s.get(slot))
            .copied()
            .unwrap_or_default()
    }

    /// Accounts in the state (the tree also counts storage leaves).
    pub fn accounts(&self) -> usize {
        self.accounts.len()
    }

    pub fn tree(&self) -> &StateTree {
        &self.tree
    }
}

impl DatabaseRef for MemState {
    type Error = Infallible;

    fn basic_ref(&self, address: Address) -> Result<Option<AccountInfo>, Infallible> {
        Ok(self
            .accounts
            .get(&address)
            .map(|(nonce, balance, code_hash)| {
                let mut info = AccountInfo::default().with_code_hash(*code_hash);
                info.nonce = *nonce;
                info.balance = *balance;
                if *code_hash != KECCAK_EMPTY {
                    info.code = self.codes.get(code_hash).cloned();
                }
                info
            }))
    }

    fn code_by_hash_ref(&self, code_hash: B256) -> Result<Bytecode, Infallible> {
        Ok(self.codes.get(&code_hash).cloned().unwrap_or_default())
    }

    fn storage_ref(&self, address: Address, index: U256) -> Result<U256, Infallible> {
        Ok(self.storage_at(&address, &index))
    }

    fn block_hash_ref(&self, number: u64) -> Result<B256, Infallible> {
        Ok(self
            .block_hashes
            .get(number as usize)
            .copied()
            .unwrap_or_default())
    }
}
