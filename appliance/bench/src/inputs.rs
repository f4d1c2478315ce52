//! Inputs drawn from a seed: the same seed gives the same inputs on every machine,
//! whatever the thread count.

use alloy_primitives::{Address, B256, U256};
use p3_matrix::dense::RowMajorMatrix;
use proofbox_backend_api::{BackendField, FieldId};
use proofbox_state::{AccountInfo, Diff, StateKey, StateTree, StateValue, Update};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rayon::prelude::*;

use crate::device::FieldMatrix;

/// Elements drawn from one generator: chunks get generators seeded from the seed and
/// their index, so the matrix is filled in parallel and still depends on the seed alone.
const CHUNK: usize = 1 << 16;

fn chunk_seed(seed: u64, chunk: usize) -> u64 {
    // SplitMix64 of (seed, chunk).
    let mut z = seed ^ (chunk as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A `height x width` matrix of uniformly random field elements.
pub fn matrix<F: BackendField>(seed: u64, height: usize, width: usize) -> RowMajorMatrix<F> {
    let mut values = vec![F::ZERO; height * width];
    values
        .par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(i, chunk)| {
            let mut rng = StdRng::seed_from_u64(chunk_seed(seed, i));
            for v in chunk {
                *v = F::from_u32(rng.random_range(0..F::ORDER_U32));
            }
        });
    RowMajorMatrix::new(values, width)
}

/// [`matrix`] in the field named.
pub fn field_matrix(field: FieldId, seed: u64, height: usize, width: usize) -> FieldMatrix {
    match field {
        FieldId::KoalaBear => FieldMatrix::KoalaBear(matrix(seed, height, width)),
        FieldId::BabyBear => FieldMatrix::BabyBear(matrix(seed, height, width)),
    }
}

fn key(r: &mut StdRng) -> StateKey {
    let address = Address::from_slice(&r.random::<[u8; 20]>());
    if r.random_bool(0.3) {
        StateKey::Account(address)
    } else {
        StateKey::Storage {
            address,
            slot: U256::from_limbs(r.random()),
        }
    }
}

fn value(r: &mut StdRng, k: &StateKey) -> StateValue {
    match k {
        StateKey::Account(_) => StateValue::Account(AccountInfo {
            nonce: r.random(),
            balance: U256::from_limbs(r.random()),
            code_hash: B256::from(r.random::<[u8; 32]>()),
        }),
        // Non-zero: a zero storage value deletes the slot.
        StateKey::Storage { .. } => {
            StateValue::Storage(U256::from_limbs(r.random()) | U256::from(1u8))
        }
    }
}

/// A state of `keys` random keys (30 % accounts, 70 % storage slots), and a diff of
/// `updates` updates to it: the first half change present keys, the rest set new keys.
pub fn state_and_diff(seed: u64, keys: usize, updates: usize) -> (StateTree, Diff) {
    let mut r = StdRng::seed_from_u64(seed);
    let entries: Vec<(StateKey, StateValue)> = (0..keys)
        .map(|_| {
            let k = key(&mut r);
            (k, value(&mut r, &k))
        })
        .collect();
    let tree = StateTree::from_entries(entries.iter().copied()).expect("random keys are distinct");
    let changes = updates / 2;
    let mut list: Vec<Update> = entries
        .iter()
        .take(changes.min(keys))
        .map(|(k, _)| Update::set(*k, value(&mut r, k)))
        .collect();
    while list.len() < updates {
        let k = key(&mut r);
        list.push(Update::set(k, value(&mut r, &k)));
    }
    let diff = Diff::new(list).expect("random keys are distinct");
    (tree, diff)
}

#[cfg(test)]
mod tests {
    use super::*;
    use p3_koala_bear::KoalaBear;

    #[test]
    fn inputs_depend_on_the_seed_alone() {
        let a = matrix::<KoalaBear>(5, 1 << 10, 200);
        let b = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(|| matrix::<KoalaBear>(5, 1 << 10, 200));
        assert_eq!(a, b);
        assert_ne!(a, matrix::<KoalaBear>(6, 1 << 10, 200));
        let (t1, d1) = state_and_diff(3, 64, 10);
        let (t2, d2) = state_and_diff(3, 64, 10);
        assert_eq!(t1.root(), t2.root());
        assert_eq!(d1, d2);
        assert_eq!(d1.len(), 10);
    }
}
