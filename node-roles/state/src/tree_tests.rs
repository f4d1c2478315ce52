//! Edge cases of the tree with forced key digests ([`crate::encoding::forced`]): keys
//! whose paths share long prefixes, down to all 247 leading bits, which real keys only
//! reach by finding Poseidon2 near-collisions.

use alloy_primitives::{Address, U256};

use super::*;
use crate::Update;
use crate::diff::check_transition;
use crate::encoding::{forced, leaf_digest};
use crate::reference::root_of_leaves;

/// `base` and copies of it whose paths first differ from it at each of `levels`.
fn paths(levels: &[usize]) -> Vec<Path> {
    let base = Path([
        0x1234_5678,
        0x0765_4321,
        0x5555_5555,
        0x2aaa_aaaa,
        1,
        2,
        3,
        0x7eff_ffff,
    ]);
    let mut out = vec![base];
    for &l in levels {
        out.push(base.with_bit(l, !base.bit(l)));
    }
    out
}

/// Storage keys of a made-up address (`tag` keeps tests apart) with forced digests.
fn forced_keys(tag: u8, paths: &[Path]) -> Vec<StateKey> {
    paths
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let key = StateKey::Storage {
                address: Address::repeat_byte(tag),
                slot: U256::from(i),
            };
            forced::set(key, p.to_digest());
            key
        })
        .collect()
}

fn value(i: usize, salt: u64) -> StateValue {
    StateValue::Storage(U256::from(salt * 1000 + i as u64 + 1))
}

fn expected(state: &[(StateKey, StateValue)]) -> Digest {
    root_of_leaves(
        state
            .iter()
            .map(|(k, v)| {
                let d = k.digest();
                (Path::from_digest(&d), leaf_digest(&d, v))
            })
            .collect(),
    )
}

/// Every key of `keys` proves its presence (with its value) or absence.
fn check_proofs(t: &StateTree, keys: &[StateKey]) {
    let root = t.root();
    for k in keys {
        let (v, proof) = t.prove(k);
        assert_eq!(proof.verify(&root, k, v.as_ref()), Ok(()), "{k:?}");
    }
}

/// Applies `updates` with witnesses and checks them against the roots.
fn apply_checked(t: &mut StateTree, updates: Vec<Update>, par: Parallelism) -> Digest {
    let diff = Diff::new(updates).unwrap();
    let pre = t.root();
    let ws = t.apply_with_witnesses(&diff, par);
    assert_eq!(check_transition(&pre, &diff, &ws), Ok(t.root()));
    t.root()
}

#[test]
fn keys_sharing_long_path_prefixes() {
    let levels = [247, 246, 240, 217, 186, 93, 62, 31, 30, 1, 0];
    let keys = forced_keys(1, &paths(&levels));
    let state: Vec<(StateKey, StateValue)> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (*k, value(i, 1)))
        .collect();
    let want = expected(&state);
    for par in [Parallelism::Sequential, Parallelism::Parallel] {
        // One batch.
        let mut t = StateTree::new();
        let batch = state.iter().map(|(k, v)| Update::set(*k, *v)).collect();
        assert_eq!(apply_checked(&mut t, batch, par), want);
        check_proofs(&t, &keys);
        // The two keys that share 247 bits sit at the bottom.
        assert_eq!(t.depth_of(&keys[0]), DEPTH);
        // One at a time, in an order that pushes lone leaves down at every depth.
        let mut t1 = StateTree::new();
        for (k, v) in state.iter().rev() {
            let _ = apply_checked(&mut t1, vec![Update::set(*k, *v)], par);
            check_proofs(&t1, &keys);
        }
        assert_eq!(t1.root(), want);
        assert_eq!(t1.stored_nodes(), t.stored_nodes());
        // Delete every other one, then the rest, checking as lone leaves float up.
        let mut kept = state.clone();
        for (k, _) in state.iter().step_by(2) {
            let _ = apply_checked(&mut t, vec![Update::delete(*k)], par);
            kept.retain(|(o, _)| o != k);
            assert_eq!(t.root(), expected(&kept));
            check_proofs(&t, &keys);
        }
        let dels = kept.iter().map(|(k, _)| Update::delete(*k)).collect();
        assert_eq!(apply_checked(&mut t, dels, par), StateTree::empty_root());
        assert_eq!(t.stored_nodes(), 0);
    }
}

#[test]
fn a_lone_leaf_is_pushed_down_by_an_insert_and_floats_up_after_a_deletion() {
    for split in [0, 5, 30, 31, 61, 62, 200, 247] {
        let p = paths(&[split]);
        let keys = forced_keys(2 + (split % 200) as u8, &p);
        let (a, b) = (keys[0], keys[1]);
        let mut t = StateTree::new();
        let _ = apply_checked(
            &mut t,
            vec![Update::set(a, value(0, 2))],
            Parallelism::Sequential,
        );
        let lone = t.root();
        assert_eq!(
            lone,
            leaf_digest(&a.digest(), &value(0, 2)),
            "a lone key's leaf is the root"
        );
        // The exclusion proof of b names a as its neighbor, split where they split.
        let (_, ex) = t.prove(&b);
        assert_eq!(ex.siblings.len(), split + 1);
        assert_eq!(ex.neighbor.map(|n| n.key), Some(a));
        // Insert b: a is pushed down to depth split + 1, beside b.
        let _ = apply_checked(
            &mut t,
            vec![Update::set(b, value(1, 2))],
            Parallelism::Sequential,
        );
        assert_eq!(t.depth_of(&a), split + 1);
        assert_eq!(t.depth_of(&b), split + 1);
        assert_eq!(t.root(), expected(&[(a, value(0, 2)), (b, value(1, 2))]));
        check_proofs(&t, &keys);
        // Delete b: a floats back up to the root.
        let _ = apply_checked(&mut t, vec![Update::delete(b)], Parallelism::Sequential);
        assert_eq!(t.root(), lone);
        assert_eq!(t.depth_of(&a), 0);
        assert_eq!(t.stored_nodes(), 1);
    }
}

#[test]
fn a_proof_for_one_key_never_proves_another() {
    // Two keys whose paths share 240 bits: each one's proof, checked for the other
    // (present with its value, or absent), fails.
    let keys = forced_keys(3, &paths(&[240, 100]));
    let state: Vec<_> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (*k, value(i, 3)))
        .collect();
    let t = StateTree::from_entries(state.iter().copied()).unwrap();
    let root = t.root();
    for (i, (k, v)) in state.iter().enumerate() {
        let (_, proof) = t.prove(k);
        for (j, (o, w)) in state.iter().enumerate() {
            if i != j {
                assert!(proof.verify(&root, o, Some(w)).is_err());
                assert!(proof.verify(&root, o, Some(v)).is_err());
                assert!(proof.verify(&root, o, None).is_err());
            }
        }
        assert!(proof.verify(&root, k, None).is_err());
    }
}
