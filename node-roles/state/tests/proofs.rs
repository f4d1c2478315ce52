//! Inclusion and exclusion proofs: round trips, and forgeries of every part rejected.

mod common;

use alloy_primitives::U256;
use common::*;
use p3_field::PrimeCharacteristicRing;
use proofbox_state::hash::EMPTY;
use proofbox_state::{
    AccountInfo, DEPTH, Digest, F, ProofError, StateKey, StateProof, StateTree, StateValue,
    verify_exclusion, verify_inclusion,
};

fn setup(seed: u64, n: usize) -> (StateTree, Vec<(StateKey, StateValue)>) {
    let mut r = rng(seed);
    let state = random_state(&mut r, n);
    let t = StateTree::from_entries(state.iter().map(|(k, v)| (*k, *v))).unwrap();
    (t, state.into_iter().collect())
}

fn bump(d: &Digest, i: usize) -> Digest {
    let mut d = *d;
    d[i] += F::ONE;
    d
}

#[test]
fn inclusion_and_exclusion_round_trip() {
    let (t, entries) = setup(40, sized(400, 100));
    let root = t.root();
    for (k, v) in &entries {
        let (got, proof) = t.prove(k);
        assert_eq!(got, Some(*v));
        verify_inclusion(&root, k, v, &proof).unwrap();
        assert_eq!(
            verify_exclusion(&root, k, &proof),
            Err(ProofError::RootMismatch)
        );
        // About log2(400) levels, far fewer than the deepest a leaf can sit.
        assert!(proof.siblings.len() < 40, "{}", proof.siblings.len());
        assert!(
            proof.neighbor.is_none(),
            "an inclusion proof has no neighbor"
        );
        let bytes = postcard::to_allocvec(&proof).unwrap();
        assert_eq!(postcard::from_bytes::<StateProof>(&bytes).unwrap(), proof);
    }
    let mut r = rng(41);
    for _ in 0..sized(200, 50) {
        let k = key(&mut r);
        let (got, proof) = t.prove(&k);
        assert_eq!(got, None);
        verify_exclusion(&root, &k, &proof).unwrap();
        let v = value_for(&mut r, &k);
        assert!(verify_inclusion(&root, &k, &v, &proof).is_err());
    }
    // The empty tree: every key is absent, with an empty proof.
    let empty = StateTree::new();
    let (_, proof) = empty.prove(&entries[0].0);
    assert_eq!(proof, StateProof::default());
    verify_exclusion(&StateTree::empty_root(), &entries[0].0, &proof).unwrap();
    // A tree of one key: its root is that key's leaf; the key's proof is empty, and
    // another key's exclusion names the lone leaf as its neighbor.
    let one = StateTree::from_entries([entries[0]]).unwrap();
    let (_, proof) = one.prove(&entries[0].0);
    assert_eq!(proof, StateProof::default());
    verify_inclusion(&one.root(), &entries[0].0, &entries[0].1, &proof).unwrap();
    let (_, proof) = one.prove(&entries[1].0);
    assert_eq!(proof.non_empty(), 1);
    assert_eq!(proof.neighbor.map(|n| n.key), Some(entries[0].0));
    verify_exclusion(&one.root(), &entries[1].0, &proof).unwrap();
}

/// Every way to alter one part of a valid proof statement, each of which must fail.
fn forgeries(
    key: &StateKey,
    value: Option<&StateValue>,
    proof: &StateProof,
    other_key: &StateKey,
) -> Vec<(String, StateKey, Option<StateValue>, StateProof)> {
    let mut out = Vec::new();
    let v = value.copied();
    // The value: present/absent swapped, each field of it changed.
    match v {
        Some(StateValue::Account(a)) => {
            out.push(("absent".into(), *key, None, proof.clone()));
            for (name, b) in [
                (
                    "nonce",
                    AccountInfo {
                        nonce: a.nonce ^ 1,
                        ..a
                    },
                ),
                (
                    "balance",
                    AccountInfo {
                        balance: a.balance ^ U256::from(1u8) << 200,
                        ..a
                    },
                ),
                (
                    "code hash",
                    AccountInfo {
                        code_hash: a.code_hash ^ alloy_primitives::B256::with_last_byte(1),
                        ..a
                    },
                ),
            ] {
                out.push((
                    name.into(),
                    *key,
                    Some(StateValue::Account(b)),
                    proof.clone(),
                ));
            }
            // A leaf of the other kind under this key.
            out.push((
                "kind".into(),
                *key,
                Some(StateValue::Storage(U256::from(1u8))),
                proof.clone(),
            ));
        }
        Some(StateValue::Storage(x)) => {
            out.push(("absent".into(), *key, None, proof.clone()));
            out.push((
                "value".into(),
                *key,
                Some(StateValue::Storage(x ^ U256::from(1u8))),
                proof.clone(),
            ));
            out.push((
                "kind".into(),
                *key,
                Some(StateValue::Account(AccountInfo::default())),
                proof.clone(),
            ));
        }
        None => {
            let fake = match key {
                StateKey::Account(_) => StateValue::Account(AccountInfo::default()),
                StateKey::Storage { .. } => StateValue::Storage(U256::from(1u8)),
            };
            out.push(("present".into(), *key, Some(fake), proof.clone()));
        }
    }
    // The key: another key (another path), and each component changed.
    out.push(("other key".into(), *other_key, v, proof.clone()));
    match *key {
        StateKey::Account(a) => {
            let mut b = a;
            b.0[19] ^= 1;
            out.push(("address".into(), StateKey::Account(b), v, proof.clone()));
        }
        StateKey::Storage { address, slot } => {
            let mut b = address;
            b.0[0] ^= 0x80;
            out.push((
                "address".into(),
                StateKey::Storage { address: b, slot },
                v,
                proof.clone(),
            ));
            out.push((
                "slot".into(),
                StateKey::Storage {
                    address,
                    slot: slot ^ U256::from(1u8),
                },
                v,
                proof.clone(),
            ));
        }
    }
    // Each sibling: a present one altered in each element, an absent one filled in,
    // or filled in with the default digest it stands for.
    for level in 0..proof.siblings.len() {
        let mut p = proof.clone();
        match proof.siblings[level] {
            Some(d) => {
                for i in 0..8 {
                    p.siblings[level] = Some(bump(&d, i));
                    out.push((format!("sibling {level} element {i}"), *key, v, p.clone()));
                }
                p.siblings[level] = None;
                out.push((format!("sibling {level} dropped"), *key, v, p));
            }
            None => {
                p.siblings[level] = Some(bump(&EMPTY, level % 8));
                out.push((format!("sibling {level} invented"), *key, v, p.clone()));
                p.siblings[level] = Some(EMPTY);
                out.push((format!("sibling {level} written out"), *key, v, p));
            }
        }
    }
    // The path: siblings moved one level (as if the path bits or index were shifted),
    // and the proof reversed.
    let mut p = proof.clone();
    p.siblings.rotate_left(1);
    out.push(("siblings shifted".into(), *key, v, p));
    let mut p = proof.clone();
    p.siblings.reverse();
    out.push(("siblings reversed".into(), *key, v, p));
    // The length.
    let mut p = proof.clone();
    p.siblings.pop();
    out.push(("truncated".into(), *key, v, p));
    let mut p = proof.clone();
    p.siblings.push(None);
    out.push(("extended".into(), *key, v, p));
    let mut p = proof.clone();
    p.siblings.push(Some(bump(&EMPTY, 2)));
    out.push(("extended with a sibling".into(), *key, v, p));
    // The neighbor: altered, dropped, or invented.
    match &proof.neighbor {
        Some(n) => {
            let mut p = proof.clone();
            p.neighbor = None;
            out.push(("neighbor dropped".into(), *key, v, p));
            let mut p = proof.clone();
            p.neighbor.as_mut().unwrap().key = *other_key;
            out.push(("neighbor key".into(), *key, v, p));
            let mut p = proof.clone();
            p.neighbor.as_mut().unwrap().value = match n.value {
                StateValue::Account(mut a) => {
                    a.nonce ^= 1;
                    StateValue::Account(a)
                }
                StateValue::Storage(x) => StateValue::Storage(x ^ U256::from(4u8)),
            };
            out.push(("neighbor value".into(), *key, v, p));
        }
        None => {
            let mut p = proof.clone();
            p.neighbor = Some(proofbox_state::Neighbor {
                key: *other_key,
                value: StateValue::Storage(U256::from(1u8)),
            });
            out.push(("neighbor invented".into(), *key, v, p));
        }
    }
    out
}

#[test]
fn forged_proofs_are_rejected_in_every_part() {
    let (t, entries) = setup(42, 200);
    let root = t.root();
    let mut r = rng(43);
    let absent = key(&mut r);
    let mut checked = 0;
    let cases: Vec<(StateKey, Option<StateValue>)> = entries
        .iter()
        .take(sized(6, 2))
        .map(|(k, v)| (*k, Some(*v)))
        .chain([(absent, None)])
        .chain(
            // An account and a storage slot explicitly.
            entries
                .iter()
                .find(|(k, _)| matches!(k, StateKey::Account(_)))
                .map(|(k, v)| (*k, Some(*v))),
        )
        .collect();
    for (k, v) in cases {
        let (got, proof) = t.prove(&k);
        assert_eq!(got, v);
        proof.verify(&root, &k, v.as_ref()).unwrap();
        let other = entries.iter().map(|e| e.0).find(|o| *o != k).unwrap();
        for (what, fk, fv, fp) in forgeries(&k, v.as_ref(), &proof, &other) {
            let res = fp.verify(&root, &fk, fv.as_ref());
            assert!(res.is_err(), "forgery accepted: {what} for {k:?}");
            checked += 1;
        }
        // And the honest statement under another root.
        let wrong_root = bump(&root, 3);
        assert_eq!(
            proof.verify(&wrong_root, &k, v.as_ref()),
            Err(ProofError::RootMismatch)
        );
    }
    assert!(checked > 4 * 40, "{checked} forgeries");
}

#[test]
fn forgery_errors_say_what_is_wrong() {
    let (t, entries) = setup(44, 20);
    let root = t.root();
    let (k, v) = entries[0];
    let (_, proof) = t.prove(&k);
    let mut p = proof.clone();
    p.siblings.resize(DEPTH + 1, Some(bump(&EMPTY, 0)));
    assert_eq!(
        p.verify(&root, &k, Some(&v)),
        Err(ProofError::TooLong {
            max: DEPTH,
            got: DEPTH + 1
        })
    );
    let mut p = proof.clone();
    p.siblings.push(Some(EMPTY));
    let level = proof.siblings.len();
    assert_eq!(
        p.verify(&root, &k, Some(&v)),
        Err(ProofError::NonCanonical { level })
    );
    let mut p = proof.clone();
    p.siblings.push(None);
    assert_eq!(
        p.verify(&root, &k, Some(&v)),
        Err(ProofError::NonCanonical { level })
    );
    let wrong = match v {
        StateValue::Account(_) => StateValue::Storage(U256::from(5u8)),
        StateValue::Storage(_) => StateValue::Account(AccountInfo::default()),
    };
    assert!(matches!(
        proof.verify(&root, &k, Some(&wrong)),
        Err(ProofError::KindMismatch { .. })
    ));
    // A neighbor that is not the deepest sibling's leaf.
    let mut r = rng(45);
    let absent = key(&mut r);
    let (_, ex) = t.prove(&absent);
    let mut p = ex.clone();
    p.neighbor = Some(proofbox_state::Neighbor {
        key: entries[1].0,
        value: entries[1].1,
    });
    if ex.neighbor.map(|n| n.key) != Some(entries[1].0) {
        assert_eq!(
            p.verify(&root, &absent, None),
            Err(ProofError::NeighborMismatch)
        );
    }
}
