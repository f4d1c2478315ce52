//! The block's state diff, built once the block has run.
//!
//! - Fields of an account: what the `CacheDB` holds after the last transaction (every
//!   transaction is committed to it).
//! - Storage: the slots some transaction changed, recorded as `(address, slot)` pairs
//!   while the block runs, read back from the cache at the end.
//! - Accounts created or self-destructed in the block (rare): gathered transaction by
//!   transaction from then on, as their storage is cleared on the way.
//!
//! What differs from the pre-state is kept: reads are not writes, and a slot written
//! back to its old value drops out.

use std::collections::BTreeMap;

use alloy_primitives::{Address, B256, Bytes, U256};
use proofbox_chain_types::{AccountDiff, StateDiff};
use revm::DatabaseRef;
use revm::database::{AccountState, Cache, DbAccount};
use revm::primitives::KECCAK_EMPTY;
use revm::state::{Account, Bytecode, EvmState};

use super::StateReadError;

/// One account's state at the end of the block, as far as the diff needs it.
#[derive(Default)]
pub(super) struct Touched {
    pub(super) nonce: u64,
    pub(super) balance: U256,
    pub(super) code_hash: B256,
    /// The code of the account's last creation in the block.
    pub(super) code: Option<Bytecode>,
    /// Slots written in the block, with their last value.
    pub(super) storage: BTreeMap<U256, U256>,
    pub(super) destroyed: bool,
}

/// Folds one transaction's changes to an account into `t`.
pub(super) fn gather_account(t: &mut Touched, account: &Account) {
    if account.is_selfdestructed() {
        t.destroyed = true;
        t.nonce = 0;
        t.balance = U256::ZERO;
        t.code_hash = KECCAK_EMPTY;
        t.code = None;
        t.storage.values_mut().for_each(|v| *v = U256::ZERO);
        for slot in account.storage.keys() {
            t.storage.insert(*slot, U256::ZERO);
        }
        return;
    }
    if account.is_created() {
        // A new contract starts with empty storage, whatever was there before.
        t.storage.values_mut().for_each(|v| *v = U256::ZERO);
        t.code = account.info.code.clone();
    }
    t.destroyed = false;
    t.nonce = account.info.nonce;
    t.balance = account.info.balance;
    t.code_hash = account.info.code_hash;
    for (slot, value) in &account.storage {
        if value.is_changed() {
            t.storage.insert(*slot, value.present_value);
        }
    }
}

/// What a block's transactions changed beyond what the cache keeps.
#[derive(Default)]
pub(super) struct BlockChanges {
    /// `(address, slot)` of every storage write to an account never created or
    /// self-destructed in the block, in execution order, repeats included.
    slots: Vec<(Address, U256)>,
    /// The accounts created or self-destructed in the block, gathered from the
    /// transaction that did it on.
    special: BTreeMap<Address, Touched>,
}

impl BlockChanges {
    /// Records a transaction's changes; `cache` is the state before they are committed.
    pub(super) fn record(&mut self, state: &EvmState, cache: &Cache) {
        for (address, account) in state {
            if !account.is_touched() {
                continue;
            }
            let special = account.is_created()
                || account.is_selfdestructed()
                || (!self.special.is_empty() && self.special.contains_key(address));
            if !special {
                for (slot, value) in &account.storage {
                    if value.is_changed() {
                        self.slots.push((*address, *slot));
                    }
                }
                continue;
            }
            if !self.special.contains_key(address) {
                // The slots written before, with their values so far.
                let stored = cache.accounts.get(address).map(|a| &a.storage);
                let storage = self
                    .slots
                    .iter()
                    .filter(|(a, _)| a == address)
                    .map(|(_, slot)| {
                        let value = stored.and_then(|s| s.get(slot)).copied();
                        (*slot, value.unwrap_or_default())
                    })
                    .collect();
                let t = Touched {
                    storage,
                    ..Default::default()
                };
                self.special.insert(*address, t);
            }
            let t = self.special.get_mut(address).expect("inserted above");
            gather_account(t, account);
        }
    }

    /// Every account the block touched, by address, with its final state.
    pub(super) fn finish(mut self, cache: &Cache) -> Vec<(Address, Touched)> {
        let mut committed: Vec<(&Address, &DbAccount)> = cache
            .accounts
            .iter()
            .filter(|(address, a)| {
                // `Touched` or `StorageCleared`: committed at least once; `NotExisting`
                // without a self-destruct: read, found absent, never written.
                matches!(
                    a.account_state,
                    AccountState::Touched | AccountState::StorageCleared
                ) && !self.special.contains_key(*address)
            })
            .collect();
        committed.sort_unstable_by_key(|(address, _)| *address);
        let mut touched: Vec<(Address, Touched)> = committed
            .into_iter()
            .map(|(address, a)| {
                let t = Touched {
                    nonce: a.info.nonce,
                    balance: a.info.balance,
                    code_hash: a.info.code_hash,
                    ..Default::default()
                };
                (*address, t)
            })
            .collect();
        self.slots.sort_unstable();
        self.slots.dedup();
        let mut at = 0;
        for group in self.slots.chunk_by(|x, y| x.0 == y.0) {
            let address = group[0].0;
            // Not there: a special account, whose slots were gathered with it.
            let Ok(i) = touched[at..].binary_search_by_key(&address, |(a, _)| *a) else {
                continue;
            };
            at += i;
            let stored = cache.accounts.get(&address).map(|a| &a.storage);
            touched[at].1.storage = group
                .iter()
                .map(|(_, slot)| {
                    let value = stored.and_then(|s| s.get(slot)).copied();
                    (*slot, value.unwrap_or_default())
                })
                .collect();
        }
        if !self.special.is_empty() {
            touched.extend(self.special);
            touched.sort_unstable_by_key(|(address, _)| *address);
        }
        touched
    }
}

/// The block's diff: every touched account (sorted by address) whose fields, code or
/// storage differ from `pre`; accounts left empty (EIP-161) or self-destructed are
/// destroyed.
pub(super) fn finish_diff<DB: DatabaseRef>(
    pre: &DB,
    touched: impl IntoIterator<Item = (Address, Touched)>,
) -> Result<StateDiff, StateReadError> {
    let read = |e: DB::Error| StateReadError(e.to_string());
    let mut accounts = Vec::new();
    for (address, t) in touched {
        let before = pre.basic_ref(address).map_err(read)?;
        let empty =
            t.destroyed || (t.nonce == 0 && t.balance.is_zero() && t.code_hash == KECCAK_EMPTY);
        let mut storage = Vec::new();
        for (slot, value) in &t.storage {
            let old = pre.storage_ref(address, *slot).map_err(read)?;
            let new = if empty { U256::ZERO } else { *value };
            if old != new {
                storage.push((*slot, new));
            }
        }
        if empty {
            if before.is_some() || !storage.is_empty() {
                accounts.push(AccountDiff {
                    address,
                    nonce: 0,
                    balance: U256::ZERO,
                    code_hash: KECCAK_EMPTY,
                    code: None,
                    storage,
                    destroyed: true,
                });
            }
            continue;
        }
        let code_changed = before.as_ref().map_or(KECCAK_EMPTY, |b| b.code_hash) != t.code_hash;
        let unchanged = before.as_ref().is_some_and(|b| {
            b.nonce == t.nonce && b.balance == t.balance && b.code_hash == t.code_hash
        });
        if unchanged && storage.is_empty() {
            continue;
        }
        let code: Option<Bytes> = if code_changed {
            t.code.as_ref().map(|c| c.original_bytes())
        } else {
            None
        };
        accounts.push(AccountDiff {
            address,
            nonce: t.nonce,
            balance: t.balance,
            code_hash: t.code_hash,
            code,
            storage,
            destroyed: false,
        });
    }
    StateDiff::new(accounts).map_err(|e| StateReadError(format!("built a bad diff: {e}")))
}
