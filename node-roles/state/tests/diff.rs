//! Diffs: canonical order and encoding, the commitment, the wire form, and the
//! state-transition check over witnesses.

mod common;

use alloy_primitives::{Address, B256, U256};
use common::*;
use p3_field::PrimeCharacteristicRing;
use proofbox_state::{
    AccountInfo, Diff, F, Parallelism, Path, ProofError, StateError, StateKey, StateTree,
    StateValue, Update, UpdateWitness, check_transition,
};
use rand::seq::SliceRandom;

fn sample_updates(seed: u64, n: usize) -> Vec<Update> {
    let mut r = rng(seed);
    let state = random_state(&mut r, n / 2);
    random_updates(&mut r, &state, n)
}

#[test]
fn canonical_form_is_independent_of_input_order() {
    let updates = sample_updates(50, 300);
    let diff = Diff::new(updates.clone()).unwrap();
    let paths: Vec<Path> = diff
        .updates()
        .map(|u| Path::from_digest(&u.key.digest()))
        .collect();
    assert!(paths.windows(2).all(|w| w[0] < w[1]), "sorted by path");
    let mut r = rng(51);
    for _ in 0..5 {
        let mut shuffled = updates.clone();
        shuffled.shuffle(&mut r);
        let other = Diff::new(shuffled).unwrap();
        assert_eq!(other, diff);
        assert_eq!(other.encode(), diff.encode());
        assert_eq!(other.commitment(), diff.commitment());
    }
}

#[test]
fn any_change_of_a_key_or_value_changes_the_commitment() {
    let updates = sample_updates(52, 40);
    let base = Diff::new(updates.clone()).unwrap().commitment();
    let mut seen = std::collections::HashSet::from([base]);
    let mut variants = Vec::new();
    for i in 0..updates.len() {
        let u = updates[i];
        let mut push = |nu: Update| {
            let mut v = updates.clone();
            v[i] = nu;
            variants.push(v);
        };
        match u.key {
            StateKey::Account(a) => {
                let mut b = a;
                b.0[5] ^= 4;
                push(Update {
                    key: StateKey::Account(b),
                    ..u
                });
            }
            StateKey::Storage { address, slot } => {
                let mut b = address;
                b.0[19] ^= 1;
                push(Update {
                    key: StateKey::Storage { address: b, slot },
                    ..u
                });
                push(Update {
                    key: StateKey::Storage {
                        address,
                        slot: slot ^ (U256::from(1u8) << 255),
                    },
                    ..u
                });
            }
        }
        match u.value {
            None => push(Update::set(u.key, value_for(&mut rng(i as u64), &u.key))),
            Some(StateValue::Storage(x)) => {
                push(Update::delete(u.key));
                push(Update::set(u.key, StateValue::Storage(x ^ U256::from(2u8))));
            }
            Some(StateValue::Account(a)) => {
                push(Update::delete(u.key));
                for b in [
                    AccountInfo {
                        nonce: a.nonce.wrapping_add(1),
                        ..a
                    },
                    AccountInfo {
                        balance: a.balance ^ U256::from(1u8),
                        ..a
                    },
                    AccountInfo {
                        code_hash: a.code_hash ^ B256::with_last_byte(0x80),
                        ..a
                    },
                ] {
                    push(Update::set(u.key, StateValue::Account(b)));
                }
            }
        }
    }
    // Dropping or adding an update.
    variants.push(updates[1..].to_vec());
    let mut more = updates.clone();
    more.push(Update::delete(StateKey::Account(Address::repeat_byte(
        0xee,
    ))));
    variants.push(more);
    let n = variants.len();
    for v in variants {
        assert!(seen.insert(Diff::new(v).unwrap().commitment()));
    }
    assert_eq!(seen.len(), n + 1);
}

#[test]
fn canonicalization_rules_and_errors() {
    let a = Address::repeat_byte(3);
    let slot = StateKey::Storage {
        address: a,
        slot: U256::from(9u8),
    };
    // A zero storage write is a deletion.
    assert_eq!(
        Diff::new([Update::set(slot, StateValue::Storage(U256::ZERO))]).unwrap(),
        Diff::new([Update::delete(slot)]).unwrap()
    );
    assert_eq!(
        Diff::new([
            Update::delete(slot),
            Update::set(slot, StateValue::Storage(U256::MAX))
        ]),
        Err(StateError::DuplicateKey { key: slot })
    );
    assert_eq!(
        Diff::new([Update::set(
            StateKey::Account(a),
            StateValue::Storage(U256::MAX)
        )]),
        Err(StateError::KindMismatch {
            key: StateKey::Account(a),
            expected: proofbox_state::KeyKind::Account,
            got: proofbox_state::KeyKind::Storage,
        })
    );
}

#[test]
fn encoding_layout() {
    let a = Address::repeat_byte(0x11);
    let acct = StateKey::Account(a);
    let slot = StateKey::Storage {
        address: a,
        slot: U256::from(1u8),
    };
    let d = Diff::new([
        Update::set(acct, StateValue::Account(AccountInfo::default())),
        Update::delete(slot),
    ])
    .unwrap();
    let m = d.encode();
    // A header block, then a 64-element record per update.
    assert_eq!(m.len(), 16 + 2 * 64);
    assert_eq!(m[0], F::from_u32(5));
    assert!(m[1..16].iter().all(|x| *x == F::ZERO));
    let (first, second) = (&m[16..80], &m[80..144]);
    // Canonical order is by path, so find each record by its key tag.
    let (acct_rec, slot_rec) = if first[0] == F::ONE {
        (first, second)
    } else {
        (second, first)
    };
    assert_eq!(acct_rec[0], F::ONE);
    assert!(acct_rec[11..27].iter().all(|x| *x == F::ZERO), "no slot");
    assert_eq!(acct_rec[27], F::ONE, "present");
    assert_eq!(slot_rec[0], F::TWO);
    assert_eq!(slot_rec[11], F::ONE, "slot 1, least significant limb first");
    assert_eq!(slot_rec[27], F::ZERO, "a deletion");
    assert!(slot_rec[28..].iter().all(|x| *x == F::ZERO));
    assert_eq!(Diff::default().encode().len(), 16);
}

#[test]
fn diffs_travel_as_postcard_and_are_recanonicalized() {
    let updates = sample_updates(53, 50);
    let diff = Diff::new(updates.clone()).unwrap();
    let bytes = postcard::to_allocvec(&diff).unwrap();
    assert_eq!(postcard::from_bytes::<Diff>(&bytes).unwrap(), diff);
    // A hand-made list in any order decodes to the canonical diff...
    let mut reversed = updates.clone();
    reversed.reverse();
    let bytes = postcard::to_allocvec(&reversed).unwrap();
    assert_eq!(postcard::from_bytes::<Diff>(&bytes).unwrap(), diff);
    // ...and one with a key twice is refused.
    let mut dup = updates.clone();
    dup.push(updates[0]);
    let bytes = postcard::to_allocvec(&dup).unwrap();
    assert!(postcard::from_bytes::<Diff>(&bytes).is_err());
}

/// Whether `check_transition` rejects `ws` naming witness `index`.
fn rejects(pre: &proofbox_state::Digest, diff: &Diff, ws: &[UpdateWitness], index: usize) -> bool {
    match check_transition(pre, diff, ws) {
        Err(ProofError::WitnessRoot { index: i })
        | Err(ProofError::WitnessShape { index: i, .. }) => i == index,
        _ => false,
    }
}

#[test]
fn forged_witnesses_are_rejected() {
    let mut r = rng(54);
    let state = random_state(&mut r, 100);
    let updates = random_updates(&mut r, &state, 30);
    let diff = Diff::new(updates).unwrap();
    let mut t = StateTree::from_entries(state.iter().map(|(k, v)| (*k, *v))).unwrap();
    let pre = t.root();
    let ws = t.apply_with_witnesses(&diff, Parallelism::Sequential);
    let post = t.root();
    assert_eq!(check_transition(&pre, &diff, &ws), Ok(post));

    assert_eq!(
        check_transition(&pre, &diff, &ws[1..]),
        Err(ProofError::WitnessCount {
            expected: 30,
            got: 29
        })
    );
    let mut swapped = ws.clone();
    swapped.swap(3, 4);
    assert_eq!(
        check_transition(&pre, &diff, &swapped),
        Err(ProofError::WitnessMismatch { index: 3 })
    );
    for i in [0, 7, 29] {
        // A wrong old value.
        let mut f = ws.clone();
        f[i].old_value = match f[i].old_value {
            None => Some(value_for(&mut r, &f[i].key)),
            Some(_) => None,
        };
        assert!(rejects(&pre, &diff, &f, i), "old value of {i}");
        // A wrong sibling.
        let mut f = ws.clone();
        let level = f[i]
            .proof
            .siblings
            .iter()
            .position(|s| s.is_some())
            .unwrap();
        f[i].proof.siblings[level] = None;
        assert!(rejects(&pre, &diff, &f, i), "sibling of {i}");
        // A sibling altered.
        let mut f = ws.clone();
        let d = f[i].proof.siblings[level].as_mut().unwrap();
        d[5] += proofbox_state::F::ONE;
        assert_eq!(
            check_transition(&pre, &diff, &f),
            Err(ProofError::WitnessRoot { index: i })
        );
        // A new value other than the diff's.
        let mut f = ws.clone();
        f[i].new_value = Some(value_for(&mut r, &f[i].key));
        assert_eq!(
            check_transition(&pre, &diff, &f),
            Err(ProofError::WitnessMismatch { index: i })
        );
    }
    // The wrong pre-state root.
    assert_eq!(
        check_transition(&post, &diff, &ws),
        Err(ProofError::WitnessRoot { index: 0 })
    );
}
