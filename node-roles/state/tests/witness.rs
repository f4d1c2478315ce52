//! The transition witness encoding: round trips, its size, and every malformed or
//! tampered form refused with an error that says what is wrong.

mod common;

use common::*;
use p3_field::PrimeCharacteristicRing;
use proofbox_state::witness::{MAGIC, VERSION};
use proofbox_state::{
    Diff, ProofError, StateKey, StateTree, TransitionWitness, WitnessDecodeError, check_transition,
};

fn sample(seed: u64, keys: usize, updates: usize) -> (StateTree, TransitionWitness) {
    let mut r = rng(seed);
    let state = random_state(&mut r, keys);
    let ups = random_updates(&mut r, &state, updates);
    let diff = Diff::new(ups).unwrap();
    let mut t = StateTree::from_entries(state.iter().map(|(k, v)| (*k, *v))).unwrap();
    let tw = t.transition_witness(&diff, 42, &StateKey::Account(Default::default()));
    (t, tw)
}

#[test]
fn witnesses_round_trip_and_check() {
    let (t, tw) = sample(60, sized(3000, 500), sized(1000, 200));
    let bytes = tw.to_bytes();
    assert_eq!(bytes[..4], MAGIC);
    let back = TransitionWitness::from_bytes(&bytes).unwrap();
    assert_eq!(back, tw);
    let diff = back.diff().unwrap();
    assert_eq!(
        check_transition(&back.pre_root, &diff, &back.witnesses),
        Ok(t.root())
    );
    assert_eq!(back.padding.apply(&t.root()), Ok(t.root()));
    // Only the siblings on each path, each distinct digest once: well under 1 KiB
    // per update for a state of a few thousand keys.
    let per_update = bytes.len() / tw.witnesses.len();
    assert!(per_update < 1024, "{per_update} bytes per update");
    // An empty diff carries its padding witness alone.
    let (t, tw) = sample(61, 50, 0);
    let back = TransitionWitness::from_bytes(&tw.to_bytes()).unwrap();
    assert!(back.witnesses.is_empty());
    assert_eq!(back.padding.apply(&t.root()), Ok(t.root()));
}

#[test]
fn malformed_witnesses_are_refused() {
    let (_, tw) = sample(62, 200, 40);
    let bytes = tw.to_bytes();
    let mut b = bytes.clone();
    b[0] ^= 1;
    assert_eq!(
        TransitionWitness::from_bytes(&b),
        Err(WitnessDecodeError::Magic)
    );
    let mut b = bytes.clone();
    b[4..6].copy_from_slice(&(VERSION + 1).to_le_bytes());
    assert_eq!(
        TransitionWitness::from_bytes(&b),
        Err(WitnessDecodeError::Version(VERSION + 1))
    );
    for cut in [0, 3, 6, 7, bytes.len() / 2, bytes.len() - 1] {
        assert!(
            TransitionWitness::from_bytes(&bytes[..cut]).is_err(),
            "cut at {cut}"
        );
    }
    // Witnesses out of canonical order.
    let mut swapped = tw.clone();
    swapped.witnesses.swap(3, 4);
    assert!(matches!(
        TransitionWitness::from_bytes(&swapped.to_bytes()),
        Err(WitnessDecodeError::Order { update: 3, .. })
    ));
    // A key twice.
    let mut twice = tw.clone();
    twice.witnesses[5] = twice.witnesses[4].clone();
    assert!(matches!(
        TransitionWitness::from_bytes(&twice.to_bytes()),
        Err(WitnessDecodeError::Order { .. })
    ));
    // A digest element at or above p: the first digest's first element, right after
    // the header, the root, the block number (one byte) and the table's length.
    let mut distinct = std::collections::HashSet::new();
    for w in tw.witnesses.iter().chain([&tw.padding]) {
        distinct.extend(w.proof.siblings.iter().flatten().copied());
        distinct.extend(w.deep_children.into_iter().flatten());
    }
    let len_bytes = postcard::to_allocvec(&(distinct.len() as u32))
        .unwrap()
        .len();
    let mut b = bytes.clone();
    b[6 + 32 + 1 + len_bytes + 3] = 0xff;
    assert_eq!(
        TransitionWitness::from_bytes(&b),
        Err(WitnessDecodeError::NonCanonical { index: 0 })
    );
}

#[test]
fn a_tampered_witness_is_refused_naming_its_update() {
    let (_, tw) = sample(63, 300, 30);
    let diff = tw.diff().unwrap();
    for i in [0, 11, 29] {
        let mut bad = tw.clone();
        let level = bad.witnesses[i]
            .proof
            .siblings
            .iter()
            .position(|s| s.is_some())
            .unwrap();
        bad.witnesses[i].proof.siblings[level].as_mut().unwrap()[2] += proofbox_state::F::ONE;
        let back = TransitionWitness::from_bytes(&bad.to_bytes()).unwrap();
        assert_eq!(
            check_transition(&back.pre_root, &diff, &back.witnesses),
            Err(ProofError::WitnessRoot { index: i })
        );
    }
}
