//! The sequencer's state, all in memory: accounts, storage and code in hash maps
//! ([`FlatState`]), and the Poseidon2 state tree over them ([`MemState`]).

use std::collections::HashMap;
use std::convert::Infallible;

use alloy_primitives::{Address, B256, U256};
use proofbox_chain_types::{Root, StateDiff};
use proofbox_state::{Diff, Parallelism, StateTree};
use revm::DatabaseRef;
use revm::bytecode::Bytecode;
use revm::primitives::KECCAK_EMPTY;
use revm::state::AccountInfo;

/// Accounts, storage and code in hash maps, without a tree: what reads and calls need,
/// updated by a diff in map writes only (no hashing).
#[derive(Debug, Default, Clone)]
pub struct FlatState {
    accounts: HashMap<Address, (u64, U256, B256)>,
    storage: HashMap<Address, HashMap<U256, U256>>,
    codes: HashMap<B256, Bytecode>,
}

impl FlatState {
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes a block's diff: accounts, their code and slots (a zero value removes a
    /// slot, a destroyed account goes with its storage).
    pub fn apply(&mut self, diff: &StateDiff) {
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

    /// Accounts in the state.
    pub fn accounts(&self) -> usize {
        self.accounts.len()
    }

    fn basic(&self, address: &Address) -> Option<AccountInfo> {
        self.accounts
            .get(address)
            .map(|(nonce, balance, code_hash)| {
                let mut info = AccountInfo::default().with_code_hash(*code_hash);
                info.nonce = *nonce;
                info.balance = *balance;
                if *code_hash != KECCAK_EMPTY {
                    info.code = self.codes.get(code_hash).cloned();
                }
                info
            })
    }
}

/// Reads for calls without block hashes (`BLOCKHASH` reads zero).
impl DatabaseRef for FlatState {
    type Error = Infallible;

    fn basic_ref(&self, address: Address) -> Result<Option<AccountInfo>, Infallible> {
        Ok(self.basic(&address))
    }

    fn code_by_hash_ref(&self, code_hash: B256) -> Result<Bytecode, Infallible> {
        Ok(self.codes.get(&code_hash).cloned().unwrap_or_default())
    }

    fn storage_ref(&self, address: Address, index: U256) -> Result<U256, Infallible> {
        Ok(self.storage_at(&address, &index))
    }

    fn block_hash_ref(&self, _number: u64) -> Result<B256, Infallible> {
        Ok(B256::ZERO)
    }
}

/// Accounts, storage, code, block hashes and the state tree.
#[derive(Debug, Default)]
pub struct MemState {
    flat: FlatState,
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
        self.flat.apply(diff);
        Ok(self.apply_tree(&tree_diff))
    }

    /// Applies consecutive blocks' diffs with one tree update: `diffs` to the maps in
    /// order, and `net`, which must be their net diff (`proofbox_chain_types::net_diff`),
    /// to the tree. Returns the new state root.
    pub fn apply_net<'a>(
        &mut self,
        diffs: impl IntoIterator<Item = &'a StateDiff>,
        net: &Diff,
    ) -> Root {
        for d in diffs {
            self.flat.apply(d);
        }
        self.apply_tree(net)
    }

    fn apply_tree(&mut self, tree_diff: &Diff) -> Root {
        let parallelism = if tree_diff.len() >= 256 {
            Parallelism::Parallel
        } else {
            Parallelism::Sequential
        };
        Root::from_digest(&self.tree.apply(tree_diff, parallelism))
    }

    pub fn nonce(&self, a: &Address) -> u64 {
        self.flat.nonce(a)
    }

    pub fn balance(&self, a: &Address) -> U256 {
        self.flat.balance(a)
    }

    pub fn code(&self, a: &Address) -> Option<Bytecode> {
        self.flat.code(a)
    }

    pub fn storage_at(&self, a: &Address, slot: &U256) -> U256 {
        self.flat.storage_at(a, slot)
    }

    /// Accounts in the state (the tree also counts storage leaves).
    pub fn accounts(&self) -> usize {
        self.flat.accounts()
    }

    pub fn tree(&self) -> &StateTree {
        &self.tree
    }

    /// The accounts, storage and code without the tree.
    pub fn flat(&self) -> &FlatState {
        &self.flat
    }
}

impl DatabaseRef for MemState {
    type Error = Infallible;

    fn basic_ref(&self, address: Address) -> Result<Option<AccountInfo>, Infallible> {
        self.flat.basic_ref(address)
    }

    fn code_by_hash_ref(&self, code_hash: B256) -> Result<Bytecode, Infallible> {
        self.flat.code_by_hash_ref(code_hash)
    }

    fn storage_ref(&self, address: Address, index: U256) -> Result<U256, Infallible> {
        self.flat.storage_ref(address, index)
    }

    fn block_hash_ref(&self, number: u64) -> Result<B256, Infallible> {
        Ok(self
            .block_hashes
            .get(number as usize)
            .copied()
            .unwrap_or_default())
    }
}
