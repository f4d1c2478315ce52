//! The state-transition circuit on the shapes the tree takes: keys whose paths share a
//! whole digest element (31 bits, so each walk takes two segments), lone leaves pushed
//! down across a segment boundary and floated back up, and a walk that hides what its
//! deepest sibling is (a deletion that keeps a lone neighbor from floating up, a
//! branch shown with made-up children) rejected. Run in release: `cargo test --release`.

use std::collections::HashMap;
use std::sync::Arc;

use alloy_primitives::{Address, U256};
use p3_air::check_all_constraints;
use p3_field::{PrimeCharacteristicRing, PrimeField32};
use p3_koala_bear::KoalaBear as F;
use proofbox_backend_cpu::CpuBackend;
use proofbox_prover::transition::{self, ChunkStatement, TransitionAir, TransitionInput, col};
use proofbox_prover::{FriPreset, Prover};
use proofbox_state::{Diff, ProofError, StateKey, StateTree, StateValue, Update};

/// Two storage keys whose digests agree in element 0 (a birthday search over about
/// 2^16 keys): their paths share at least 31 bits, so each one's walk takes two
/// segments.
fn keys_sharing_an_element() -> (StateKey, StateKey) {
    let mut seen: HashMap<u32, StateKey> = HashMap::new();
    for i in 0u64.. {
        let key = StateKey::Storage {
            address: Address::repeat_byte(0x5a),
            slot: U256::from(i),
        };
        let e0 = key.digest()[0].as_canonical_u32();
        if let Some(other) = seen.insert(e0, key) {
            return (other, key);
        }
    }
    unreachable!()
}

fn value(x: u64) -> StateValue {
    StateValue::Storage(U256::from(x))
}

fn failures(input: &TransitionInput, statement: &ChunkStatement) -> usize {
    check_all_constraints(
        &TransitionAir::new(),
        &input.trace(0),
        &statement.public_values(),
        Some(8),
    )
    .failures
    .len()
}

fn prove_and_verify(tree: &mut StateTree, diff: Diff) -> TransitionInput {
    let pre = tree.root();
    let input = TransitionInput::build(tree, diff.clone(), 3);
    let statement = input.chunk_statement().expect("honest witnesses");
    assert_eq!(failures(&input, &statement), 0, "honest trace rejected");
    let a = Prover::new(CpuBackend::new())
        .prove_transition(&input, FriPreset::Standard, Arc::new(()))
        .unwrap();
    transition::verify_diff(&a, &pre, &tree.root(), &diff, 3).unwrap();
    input
}

#[test]
fn paths_that_take_two_segments_prove_through_pushdown_and_float() {
    let (a, b) = keys_sharing_an_element();
    let shared = proofbox_state::Path::from_digest(&a.digest())
        .common_prefix(&proofbox_state::Path::from_digest(&b.digest()));
    assert!(shared >= 31, "{shared}");
    let mut tree = StateTree::from_entries(
        (0..20u64)
            .map(|i| {
                (
                    StateKey::Account(Address::with_last_byte(i as u8)),
                    value(0),
                )
            })
            .map(|(k, _)| {
                (
                    k,
                    StateValue::Account(proofbox_state::AccountInfo {
                        nonce: 1,
                        ..Default::default()
                    }),
                )
            }),
    )
    .unwrap();
    // a alone in its part of the tree.
    let input = prove_and_verify(&mut tree, Diff::new([Update::set(a, value(7))]).unwrap());
    assert_eq!(transition::segments_of(&input.witnesses[0]), 1);
    // Inserting b pushes a down beside it, past level 31: two segments, with a as the
    // neighbor the old walk passes up.
    let input = prove_and_verify(&mut tree, Diff::new([Update::set(b, value(8))]).unwrap());
    let w = &input.witnesses[0];
    assert_eq!(w.proof.neighbor.map(|n| n.key), Some(a));
    assert_eq!(transition::segments_of(w), 2);
    assert_eq!(tree.depth_of(&a), shared + 1);
    // Changing both, then deleting b: a floats back up.
    prove_and_verify(
        &mut tree,
        Diff::new([Update::set(a, value(9)), Update::set(b, value(10))]).unwrap(),
    );
    let input = prove_and_verify(&mut tree, Diff::new([Update::delete(b)]).unwrap());
    assert_eq!(input.witnesses[0].proof.neighbor.map(|n| n.key), Some(a));
    assert!(tree.depth_of(&a) < 31);
}

#[test]
fn a_walk_that_hides_its_deepest_sibling_is_rejected() {
    // A deletion beside a lone leaf: withholding the neighbor would let the new walk
    // hash the empty node with the leaf instead of floating the leaf up, a root of no
    // state. Natively the witness is refused; in the circuit the walk must then show
    // the sibling is a branch, and made-up children do not compress to it.
    let (a, b) = keys_sharing_an_element();
    let mut tree = StateTree::from_entries([(a, value(1)), (b, value(2))]).unwrap();
    let diff = Diff::new([Update::delete(b)]).unwrap();
    let mut input = TransitionInput::build(&mut tree, diff, 0);
    assert!(input.witnesses[0].proof.neighbor.is_some());
    input.witnesses[0].proof.neighbor = None;
    input.witnesses[0].deep_children = Some([[F::ONE; 8], [F::TWO; 8]]);
    assert!(matches!(
        input.chunk_statement(),
        Err(ProofError::WitnessShape { index: 0, .. })
    ));
    // The statement the forged trace would prove: the post-state root it computes.
    let trace = input.trace(0);
    let last = trace.values.len() / trace.width - 1;
    let forged_root: [F; 8] =
        core::array::from_fn(|i| trace.values[last * trace.width + col::CARRY + i]);
    assert_ne!(forged_root, tree.root(), "a root of no state");
    let statement = ChunkStatement {
        pre_root: input.pre_root,
        post_root: forged_root,
        block_number: 0,
        sponge_in: input.sponge_start,
        sponge_out: input.sponge_start.absorb(input.diff.updates()),
    };
    let report = check_all_constraints(
        &TransitionAir::new(),
        &trace,
        &statement.public_values(),
        None,
    );
    assert!(!report.is_ok(), "a hidden lone neighbor was accepted");
    // Without any children the walk cannot claim a branch either.
    input.witnesses[0].deep_children = None;
    let report = check_all_constraints(
        &TransitionAir::new(),
        &input.trace(0),
        &statement.public_values(),
        None,
    );
    assert!(!report.is_ok(), "an unshown branch was accepted");
}

/// What a node sends a prover for a diff, the compact witness encoding, decodes into
/// chained inputs that prove the diff with no tree on the prover's side; a tampered
/// witness is refused naming its update.
#[test]
fn a_diff_sent_as_a_compact_witness_proves_in_chunks() {
    use proofbox_state::TransitionWitness;
    let (mut tree, diff) = proofbox_state::workload::random_transition(21, 3000, 600);
    let pre = tree.root();
    let tw = tree.transition_witness(&diff, 5, &transition::padding_key());
    let bytes = tw.to_bytes();
    let received = TransitionWitness::from_bytes(&bytes).unwrap();
    let chunks = TransitionInput::chunks_from_witness(received.clone(), 256).unwrap();
    assert_eq!(chunks.len(), 3);
    let b = Prover::new(CpuBackend::new())
        .prove_transition_chunks(&chunks, FriPreset::Standard, Arc::new(()))
        .unwrap();
    transition::verify_diff_chunks(&b, &pre, &tree.root(), &diff, 5).unwrap();
    // One sibling of update 300 altered in transit: refused before proving, naming it.
    let mut bad = received;
    let w = &mut bad.witnesses[300];
    let level = w.proof.siblings.iter().position(|s| s.is_some()).unwrap();
    w.proof.siblings[level].as_mut().unwrap()[0] += F::ONE;
    assert_eq!(
        TransitionInput::chunks_from_witness(bad, 256).unwrap_err(),
        ProofError::WitnessRoot { index: 300 }
    );
}
