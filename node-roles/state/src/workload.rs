//! Seeded random states and diffs: the standard workload of the state-transition
//! benchmarks and of proof requests by size, the same on every machine for one seed.

use alloy_primitives::{Address, B256, U256};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::{AccountInfo, Diff, StateKey, StateTree, StateValue, Update};

/// A random key: 30 % accounts, 70 % storage slots with random addresses and slots.
pub fn random_key(rng: &mut StdRng) -> StateKey {
    let address = Address::from_slice(&rng.random::<[u8; 20]>());
    if rng.random_bool(0.3) {
        StateKey::Account(address)
    } else {
        StateKey::Storage {
            address,
            slot: U256::from_limbs(rng.random()),
        }
    }
}

/// A random value of `key`'s kind (never a zero storage value).
pub fn random_value(rng: &mut StdRng, key: &StateKey) -> StateValue {
    match key {
        StateKey::Account(_) => StateValue::Account(AccountInfo {
            nonce: rng.random_range(0..1_000_000),
            balance: U256::from_limbs([rng.random(), rng.random(), 0, 0]),
            code_hash: B256::from(rng.random::<[u8; 32]>()),
        }),
        // Never zero: a zero storage write is a deletion.
        StateKey::Storage { .. } => StateValue::Storage(U256::from_limbs(rng.random()) | U256::ONE),
    }
}

/// A tree of `keys` random keys (30 % accounts, 70 % storage slots) and a diff of
/// `updates` updates to it: half change an existing key, a quarter insert a new key,
/// a quarter delete an existing one (changes and deletions fall back to inserts when
/// the tree has no key left to pick). Deterministic in `seed`.
pub fn random_transition(seed: u64, keys: usize, updates: usize) -> (StateTree, Diff) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut entries = Vec::with_capacity(keys);
    let mut seen = std::collections::HashSet::with_capacity(keys + updates);
    while entries.len() < keys {
        let k = random_key(&mut rng);
        if seen.insert(k) {
            let v = random_value(&mut rng, &k);
            entries.push((k, v));
        }
    }
    let tree =
        StateTree::from_entries(entries.iter().copied()).expect("random keys do not collide");
    let mut untouched: Vec<StateKey> = entries.iter().map(|(k, _)| *k).collect();
    let mut diff = Vec::with_capacity(updates);
    while diff.len() < updates {
        let roll = rng.random_range(0..4u8);
        let existing = (roll < 3 && !untouched.is_empty())
            .then(|| untouched.swap_remove(rng.random_range(0..untouched.len())));
        let u = match (roll, existing) {
            (0 | 1, Some(k)) => Update::set(k, random_value(&mut rng, &k)),
            (2, Some(k)) => Update::delete(k),
            _ => {
                let k = random_key(&mut rng);
                if !seen.insert(k) {
                    continue;
                }
                Update::set(k, random_value(&mut rng, &k))
            }
        };
        diff.push(u);
    }
    (tree, Diff::new(diff).expect("distinct random keys"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workloads_are_deterministic_and_sized() {
        let (t1, d1) = random_transition(7, 40, 25);
        let (t2, d2) = random_transition(7, 40, 25);
        assert_eq!(t1.root(), t2.root());
        assert_eq!(d1, d2);
        assert_eq!(t1.len(), 40);
        assert_eq!(d1.len(), 25);
        let (_, d3) = random_transition(8, 40, 25);
        assert_ne!(d1, d3);
        let (t, d) = random_transition(1, 0, 5);
        assert!(t.is_empty());
        assert!(
            d.updates().all(|u| u.value.is_some()),
            "only inserts into an empty tree"
        );
    }
}
