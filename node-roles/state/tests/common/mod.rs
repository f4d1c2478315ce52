//! Random keys, values and diffs for the tests.
#![allow(dead_code)]

use std::collections::BTreeMap;

use alloy_primitives::{Address, B256, U256};
use proofbox_state::{AccountInfo, StateKey, StateValue, Update};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

pub fn u256(rng: &mut StdRng) -> U256 {
    match rng.random_range(0..4u8) {
        0 => U256::from(rng.random_range(0..16u64)),
        1 => U256::MAX - U256::from(rng.random::<u8>()),
        _ => U256::from_limbs([rng.random(), rng.random(), rng.random(), rng.random()]),
    }
}

pub fn key(rng: &mut StdRng) -> StateKey {
    // Few addresses, so accounts and their slots mix.
    let address = Address::from_slice(&rng.random::<[u8; 20]>());
    if rng.random_bool(0.3) {
        StateKey::Account(address)
    } else {
        StateKey::Storage {
            address,
            slot: u256(rng),
        }
    }
}

pub fn value_for(rng: &mut StdRng, key: &StateKey) -> StateValue {
    match key {
        StateKey::Account(_) => StateValue::Account(AccountInfo {
            nonce: rng.random(),
            balance: u256(rng),
            code_hash: B256::from(rng.random::<[u8; 32]>()),
        }),
        StateKey::Storage { .. } => {
            // Never zero: a zero storage write is a deletion.
            let mut v = u256(rng);
            if v == U256::ZERO {
                v = U256::from(1u8);
            }
            StateValue::Storage(v)
        }
    }
}

pub fn random_state(rng: &mut StdRng, n: usize) -> BTreeMap<StateKey, StateValue> {
    let mut m = BTreeMap::new();
    while m.len() < n {
        let k = key(rng);
        let v = value_for(rng, &k);
        m.insert(k, v);
    }
    m
}

/// `n` updates to distinct keys of `state` or new keys: inserts, changes, deletions
/// of present keys and deletions of absent ones.
pub fn random_updates(
    rng: &mut StdRng,
    state: &BTreeMap<StateKey, StateValue>,
    n: usize,
) -> Vec<Update> {
    let present: Vec<StateKey> = state.keys().copied().collect();
    let mut keys = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    while out.len() < n {
        let k = if !present.is_empty() && rng.random_bool(0.5) {
            present[rng.random_range(0..present.len())]
        } else {
            key(rng)
        };
        if !keys.insert(k) {
            continue;
        }
        let u = if rng.random_bool(0.3) {
            Update::delete(k)
        } else {
            Update::set(k, value_for(rng, &k))
        };
        out.push(u);
    }
    out
}

/// `state` with `updates` applied.
pub fn applied(
    state: &BTreeMap<StateKey, StateValue>,
    updates: &[Update],
) -> BTreeMap<StateKey, StateValue> {
    let mut m = state.clone();
    for u in updates {
        match u.value {
            Some(v) => m.insert(u.key, v),
            None => m.remove(&u.key),
        };
    }
    m
}

/// `release` in optimized builds, `debug` otherwise: the tree hashes 248 nodes per
/// update, about 50 times slower unoptimized, so debug runs take smaller cases.
pub fn sized(release: usize, debug: usize) -> usize {
    if cfg!(debug_assertions) {
        debug
    } else {
        release
    }
}
