//! The state tree against the naive reference, batches against single updates, and
//! the per-update witnesses against the roots they must connect.

mod common;

use std::collections::BTreeMap;

use alloy_primitives::{Address, U256};
use common::*;
use proofbox_state::{
    Diff, Parallelism, StateKey, StateTree, StateValue, Update, check_transition, reference,
};

fn tree_of(state: &BTreeMap<StateKey, StateValue>) -> StateTree {
    StateTree::from_entries(state.iter().map(|(k, v)| (*k, *v))).unwrap()
}

#[test]
fn the_empty_tree_and_the_empty_diff() {
    let mut t = StateTree::new();
    assert_eq!(t.root(), StateTree::empty_root());
    assert_eq!(t.root(), reference::root(&BTreeMap::new()));
    let empty = Diff::new([]).unwrap();
    assert_eq!(empty.commitment(), Diff::default().commitment());
    assert_eq!(
        t.apply(&empty, Parallelism::Parallel),
        StateTree::empty_root()
    );

    let state = random_state(&mut rng(1), 50);
    let mut t = tree_of(&state);
    let root = t.root();
    assert_ne!(root, StateTree::empty_root());
    assert!(
        t.apply_with_witnesses(&empty, Parallelism::Parallel)
            .is_empty()
    );
    assert_eq!(t.root(), root);
    assert_eq!(check_transition(&root, &empty, &[]), Ok(root));
}

#[test]
fn insert_into_and_delete_from_an_empty_tree() {
    let mut r = rng(2);
    for _ in 0..4 {
        let k = key(&mut r);
        let v = value_for(&mut r, &k);
        let mut t = StateTree::new();
        let root = t.insert(k, v).unwrap();
        assert_eq!(root, reference::root(&BTreeMap::from([(k, v)])));
        assert_eq!(t.get(&k), Some(v));
        assert_eq!(t.stored_nodes(), 1, "a lone leaf is one single at the root");
        assert_eq!(t.remove(k), StateTree::empty_root());
        assert!(t.is_empty());
        assert_eq!(t.stored_nodes(), 0);
        // Deleting an absent key from the empty tree changes nothing.
        assert_eq!(t.remove(k), StateTree::empty_root());
    }
}

#[test]
fn insert_then_delete_returns_to_the_previous_root() {
    let mut r = rng(3);
    let state = random_state(&mut r, 300);
    let mut t = tree_of(&state);
    let root = t.root();
    let stored = t.stored_nodes();
    for _ in 0..20 {
        let k = key(&mut r);
        let v = value_for(&mut r, &k);
        assert_ne!(t.insert(k, v).unwrap(), root);
        assert_eq!(t.remove(k), root);
        assert_eq!(t.stored_nodes(), stored);
    }
    // The same as one batch each way.
    let news: Vec<Update> = (0..200)
        .map(|_| {
            let k = key(&mut r);
            Update::set(k, value_for(&mut r, &k))
        })
        .collect();
    let ins = Diff::new(news.clone()).unwrap();
    let del = Diff::new(news.iter().map(|u| Update::delete(u.key))).unwrap();
    let _ = t.apply(&ins, Parallelism::Parallel);
    assert_eq!(t.len(), 500);
    assert_eq!(t.apply(&del, Parallelism::Parallel), root);
    assert_eq!(t.stored_nodes(), stored);
}

/// One random case: a tree of `initial` keys and a diff of `n` updates.
fn check_random_batch(seed: u64, initial: usize, n: usize) {
    let mut r = rng(seed);
    let state = random_state(&mut r, initial);
    let updates = random_updates(&mut r, &state, n);
    let expected_state = applied(&state, &updates);
    let expected = reference::root(&expected_state);
    let diff = Diff::new(updates.clone()).unwrap();

    let base = tree_of(&state);
    let pre_root = base.root();
    assert_eq!(
        pre_root,
        reference::root(&state),
        "seed {seed}: initial tree"
    );

    let mut seq = base.clone();
    let seq_witnesses = seq.apply_with_witnesses(&diff, Parallelism::Sequential);
    let mut par = base.clone();
    let par_witnesses = par.apply_with_witnesses(&diff, Parallelism::Parallel);
    let mut plain = base.clone();
    let plain_root = plain.apply(&diff, Parallelism::Parallel);
    let mut one_by_one = base.clone();
    for u in &updates {
        let _ = one_by_one.apply(&Diff::new([*u]).unwrap(), Parallelism::Sequential);
    }

    assert_eq!(seq.root(), expected, "seed {seed}: sequential batch");
    assert_eq!(par.root(), expected, "seed {seed}: parallel batch");
    assert_eq!(plain_root, expected, "seed {seed}: batch without witnesses");
    assert_eq!(one_by_one.root(), expected, "seed {seed}: one by one");
    assert_eq!(seq_witnesses, par_witnesses);
    assert_eq!(
        check_transition(&pre_root, &diff, &seq_witnesses),
        Ok(expected),
        "seed {seed}: witnesses connect the roots"
    );
    assert_eq!(seq.len(), expected_state.len());
    assert_eq!(seq.stored_nodes(), one_by_one.stored_nodes());
    for (k, v) in &expected_state {
        assert_eq!(seq.get(k), Some(*v));
    }
    for w in &seq_witnesses {
        assert_eq!(w.old_value, state.get(&w.key).copied());
    }
}

#[test]
fn random_batches_agree_with_the_reference_single_updates_and_each_other() {
    for (seed, initial, n) in [
        (10, 0, 1),
        (11, 1, 1),
        (12, 0, 2),
        (13, 5, 3),
        (14, 40, 17),
        (15, 200, 100),
        (16, 0, 150),
        (17, sized(300, 60), sized(1000, 200)),
    ] {
        check_random_batch(seed, initial, n);
    }
}

#[test]
fn a_batch_of_thousands_of_updates() {
    // Thousands of updates (1,000 in debug builds, 3,000 optimized).
    check_random_batch(20, sized(1000, 100), sized(3000, 1000));
}

#[test]
fn single_inserts_and_deletes_split_and_collapse_chains() {
    // Storage slots of one address, inserted then deleted one at a time, checked
    // against the reference as lone chains split and collapse.
    let mut r = rng(30);
    let address = Address::repeat_byte(7);
    let keys: Vec<StateKey> = (0..64u64)
        .map(|i| StateKey::Storage {
            address,
            slot: U256::from(i),
        })
        .collect();
    let mut t = StateTree::new();
    let mut state = BTreeMap::new();
    for (i, k) in keys.iter().enumerate() {
        let v = value_for(&mut r, k);
        let _ = t.insert(*k, v).unwrap();
        state.insert(*k, v);
        if i % 8 == 7 {
            assert_eq!(t.root(), reference::root(&state));
        }
    }
    for k in keys.iter().step_by(3) {
        let _ = t.remove(*k);
        state.remove(k);
        assert_eq!(t.root(), reference::root(&state));
    }
}

#[test]
fn storage_zero_is_absence() {
    let k = StateKey::Storage {
        address: Address::repeat_byte(1),
        slot: U256::from(3u8),
    };
    let mut t = StateTree::new();
    let _ = t.insert(k, StateValue::Storage(U256::MAX)).unwrap();
    assert_eq!(t.get(&k), Some(StateValue::Storage(U256::MAX)));
    assert_eq!(
        t.insert(k, StateValue::Storage(U256::ZERO)).unwrap(),
        StateTree::empty_root()
    );
    assert_eq!(t.get(&k), None);
}
