//! The state diff of a block: what it changed, per account.

use alloy_consensus::constants::KECCAK_EMPTY;
use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use proofbox_state::{AccountInfo, Diff, StateError, StateKey, StateValue, Update};
use serde::{Deserialize, Serialize};

use crate::DecodeError;

/// The version written before a diff in [`StateDiff::encode`].
pub const STATE_DIFF_VERSION: u16 = 1;

/// The keccak-256 of `code`, [`KECCAK_EMPTY`] for no code (as Ethereum defines it).
pub fn code_hash(code: &[u8]) -> B256 {
    if code.is_empty() {
        KECCAK_EMPTY
    } else {
        keccak256(code)
    }
}

/// One account's changes in a block: its fields after the block, its code if the block
/// set it, and the storage slots whose value changed (the value after the block, zero
/// for a cleared slot), sorted by slot.
///
/// A `destroyed` account is gone after the block (deleted as empty under EIP-161, or
/// self-destructed in the transaction that created it): its fields are zero, its code
/// hash is [`KECCAK_EMPTY`], and its storage lists every slot it had, cleared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountDiff {
    pub address: Address,
    pub nonce: u64,
    pub balance: U256,
    pub code_hash: B256,
    /// The code, present only when the block deployed it.
    pub code: Option<Bytes>,
    /// `(slot, value)`, slots strictly increasing.
    pub storage: Vec<(U256, U256)>,
    pub destroyed: bool,
}

impl AccountDiff {
    fn check(&self) -> Result<(), DecodeError> {
        let bad = |reason: &str| DecodeError::NotCanonical {
            address: self.address,
            reason: reason.to_string(),
        };
        if self.storage.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(bad("storage slots not strictly increasing"));
        }
        if let Some(code) = &self.code
            && code_hash(code) != self.code_hash
        {
            return Err(bad("code does not hash to code_hash"));
        }
        if self.destroyed
            && (self.nonce != 0
                || !self.balance.is_zero()
                || self.code_hash != KECCAK_EMPTY
                || self.code.is_some()
                || self.storage.iter().any(|(_, v)| !v.is_zero()))
        {
            return Err(bad("a destroyed account keeps a field, code or a slot"));
        }
        Ok(())
    }
}

/// What a block changed: accounts sorted by address, each at most once.
///
/// Built through [`StateDiff::new`] (deserialization goes through it too), so every
/// `StateDiff` is canonical and has one encoding.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "RawStateDiff")]
pub struct StateDiff {
    accounts: Vec<AccountDiff>,
}

#[derive(Deserialize)]
struct RawStateDiff {
    accounts: Vec<AccountDiff>,
}

impl TryFrom<RawStateDiff> for StateDiff {
    type Error = DecodeError;
    fn try_from(raw: RawStateDiff) -> Result<Self, DecodeError> {
        Self::new(raw.accounts)
    }
}

impl StateDiff {
    /// Checks canonical form: addresses strictly increasing, slots strictly increasing,
    /// code matching its hash, destroyed accounts empty.
    pub fn new(accounts: Vec<AccountDiff>) -> Result<Self, DecodeError> {
        if let Some(w) = accounts.windows(2).find(|w| w[0].address >= w[1].address) {
            return Err(DecodeError::NotCanonical {
                address: w[1].address,
                reason: "accounts not strictly increasing by address".into(),
            });
        }
        for a in &accounts {
            a.check()?;
        }
        Ok(Self { accounts })
    }

    pub fn accounts(&self) -> &[AccountDiff] {
        &self.accounts
    }

    pub fn account(&self, address: &Address) -> Option<&AccountDiff> {
        self.accounts
            .binary_search_by(|a| a.address.cmp(address))
            .ok()
            .map(|i| &self.accounts[i])
    }

    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }

    /// The number of state tree updates this diff makes (accounts plus slots).
    pub fn updates(&self) -> usize {
        self.accounts.iter().map(|a| 1 + a.storage.len()).sum()
    }

    /// The canonical encoding: postcard of the version (`u16`) followed by postcard of
    /// the diff (accounts in order; each: address, nonce, balance, code hash, optional
    /// code, storage pairs, destroyed flag).
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(&(STATE_DIFF_VERSION, self)).expect("a diff serializes")
    }

    /// Reads [`StateDiff::encode`]: refuses another version, trailing bytes and
    /// non-canonical diffs.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let malformed = |e: postcard::Error| DecodeError::Malformed {
            what: "state diff",
            reason: e.to_string(),
        };
        let (version, rest) = postcard::take_from_bytes::<u16>(bytes).map_err(malformed)?;
        if version != STATE_DIFF_VERSION {
            return Err(DecodeError::Version {
                what: "state diff",
                expected: STATE_DIFF_VERSION,
                got: version,
            });
        }
        let (diff, rest) = postcard::take_from_bytes::<Self>(rest).map_err(malformed)?;
        if !rest.is_empty() {
            return Err(DecodeError::Malformed {
                what: "state diff",
                reason: format!("{} trailing bytes", rest.len()),
            });
        }
        Ok(diff)
    }

    /// The state tree updates: an account becomes an account leaf (nonce, balance,
    /// code hash) or, destroyed, its deletion; a storage write becomes a storage leaf
    /// (a zero value deletes it).
    pub fn to_state_diff(&self) -> Result<Diff, StateError> {
        let mut updates = Vec::with_capacity(self.updates());
        for a in &self.accounts {
            let key = StateKey::Account(a.address);
            updates.push(if a.destroyed {
                Update::delete(key)
            } else {
                Update::set(
                    key,
                    StateValue::Account(AccountInfo {
                        nonce: a.nonce,
                        balance: a.balance,
                        code_hash: a.code_hash,
                    }),
                )
            });
            for (slot, value) in &a.storage {
                updates.push(Update::set(
                    StateKey::Storage {
                        address: a.address,
                        slot: *slot,
                    },
                    StateValue::Storage(*value),
                ));
            }
        }
        Diff::new(updates)
    }
}

/// The net change of consecutive blocks as one state tree diff: every key the blocks
/// wrote, with the value of its last write (a key created and then deleted within
/// the blocks is a deletion). What one state-transition proof of a batch of blocks
/// proves, and what a replica recomputes from the diffs it applied.
pub fn net_diff<'a>(diffs: impl IntoIterator<Item = &'a StateDiff>) -> Result<Diff, StateError> {
    let mut last: std::collections::HashMap<StateKey, Update> = std::collections::HashMap::new();
    for d in diffs {
        for u in d.to_state_diff()?.updates() {
            last.insert(u.key, *u);
        }
    }
    Diff::new(last.into_values())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proofbox_state::{Parallelism, StateTree};

    fn account(byte: u8) -> AccountDiff {
        AccountDiff {
            address: Address::repeat_byte(byte),
            nonce: 1,
            balance: U256::from(1000),
            code_hash: KECCAK_EMPTY,
            code: None,
            storage: vec![],
            destroyed: false,
        }
    }

    fn contract(byte: u8) -> AccountDiff {
        let code = Bytes::from_static(&[0x60, 0x00, 0x60, 0x00, 0xf3]);
        AccountDiff {
            code_hash: keccak256(&code),
            code: Some(code),
            storage: vec![(U256::from(1), U256::from(10)), (U256::from(2), U256::ZERO)],
            ..account(byte)
        }
    }

    #[test]
    fn encoding_round_trips_and_is_versioned() {
        let d = StateDiff::new(vec![account(1), contract(2)]).unwrap();
        let bytes = d.encode();
        assert_eq!(StateDiff::decode(&bytes).unwrap(), d);
        assert_eq!(&bytes[..1], &[STATE_DIFF_VERSION as u8]);
        let mut v2 = bytes.clone();
        v2[0] = 2;
        assert!(matches!(
            StateDiff::decode(&v2),
            Err(DecodeError::Version { got: 2, .. })
        ));
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(
            StateDiff::decode(&trailing),
            Err(DecodeError::Malformed { .. })
        ));
        assert!(StateDiff::decode(&bytes[..bytes.len() - 1]).is_err());
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<StateDiff>(&json).unwrap(), d);
    }

    #[test]
    fn non_canonical_diffs_are_refused() {
        assert!(StateDiff::new(vec![account(2), account(1)]).is_err());
        assert!(StateDiff::new(vec![account(1), account(1)]).is_err());
        let mut unsorted = contract(1);
        unsorted.storage.reverse();
        assert!(StateDiff::new(vec![unsorted]).is_err());
        let mut wrong_code = contract(1);
        wrong_code.code_hash = B256::ZERO;
        assert!(StateDiff::new(vec![wrong_code]).is_err());
        let mut destroyed = account(1);
        destroyed.destroyed = true;
        assert!(StateDiff::new(vec![destroyed]).is_err());
        // Deserializing goes through the same checks.
        let json = serde_json::json!({"accounts": [account(2), account(1)]});
        assert!(serde_json::from_value::<StateDiff>(json).is_err());
    }

    #[test]
    fn maps_onto_the_state_tree() {
        let d = StateDiff::new(vec![account(1), contract(2)]).unwrap();
        let diff = d.to_state_diff().unwrap();
        // Two accounts and one storage leaf; the zero slot is a deletion.
        assert_eq!(diff.len(), 4);
        let mut tree = StateTree::new();
        let root = tree.apply(&diff, Parallelism::Sequential);
        assert_eq!(tree.len(), 3);
        assert_eq!(root, tree.root());
        assert_eq!(
            tree.get(&StateKey::Account(Address::repeat_byte(2))),
            Some(StateValue::Account(AccountInfo {
                nonce: 1,
                balance: U256::from(1000),
                code_hash: contract(2).code_hash,
            }))
        );
        assert_eq!(
            tree.get(&StateKey::Storage {
                address: Address::repeat_byte(2),
                slot: U256::from(1)
            }),
            Some(StateValue::Storage(U256::from(10)))
        );
        // Destroying account 1 and clearing the slot empties those leaves.
        let gone = AccountDiff {
            nonce: 0,
            balance: U256::ZERO,
            destroyed: true,
            ..account(1)
        };
        let mut cleared = contract(2);
        cleared.code = None;
        cleared.storage = vec![(U256::from(1), U256::ZERO)];
        let d2 = StateDiff::new(vec![gone, cleared]).unwrap();
        let root2 = tree.apply(&d2.to_state_diff().unwrap(), Parallelism::Sequential);
        assert_eq!(tree.len(), 1);
        assert_ne!(root2, root);
        assert_eq!(tree.get(&StateKey::Account(Address::repeat_byte(1))), None);
    }

    #[test]
    fn the_net_diff_of_blocks_takes_each_keys_last_write_and_gives_the_same_root() {
        let first = StateDiff::new(vec![account(1), contract(2)]).unwrap();
        let mut later = account(1);
        later.nonce = 2;
        let mut cleared = contract(2);
        cleared.code = None;
        cleared.storage = vec![(U256::from(1), U256::ZERO)];
        let second = StateDiff::new(vec![later, cleared, account(3)]).unwrap();
        let net = net_diff([&first, &second]).unwrap();
        // Accounts 1, 2 and 3, and slots 1 and 2 of account 2 (slot 2 was written zero:
        // a deletion), once each.
        assert_eq!(net.len(), 5);
        let mut step = StateTree::new();
        let _ = step.apply(&first.to_state_diff().unwrap(), Parallelism::Sequential);
        let stepwise = step.apply(&second.to_state_diff().unwrap(), Parallelism::Sequential);
        let mut once = StateTree::new();
        assert_eq!(once.apply(&net, Parallelism::Sequential), stepwise);
        assert_eq!(net_diff([&second, &first]).unwrap().len(), 5);
        assert_ne!(
            net_diff([&second, &first]).unwrap(),
            net,
            "order matters: the last write wins"
        );
        assert!(net_diff([]).unwrap().is_empty());
    }
}
