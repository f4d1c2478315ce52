//! The state-transition circuit: honest traces satisfy every constraint, corrupted
//! ones violate one, random diffs of one to thousands of updates prove and verify, and
//! a changed diff value, pre-root, post-root or order is rejected; chunked proofs
//! chain into the whole diff's statement and a dropped, repeated, reordered or foreign
//! chunk is rejected. Run in release: `cargo test --release`.

use std::sync::Arc;

use p3_air::check_all_constraints;
use p3_field::{PrimeCharacteristicRing, PrimeField32};
use p3_koala_bear::KoalaBear as F;
use p3_matrix::dense::RowMajorMatrix;
use proofbox_backend_api::BackendKind;
use proofbox_backend_cpu::CpuBackend;
use proofbox_prover::transition::{
    self, ChunkStatement, ROWS_PER_SEGMENT, SpongeState, TransitionAir, TransitionInput,
    TransitionProof, TransitionStatement, col, pv,
};
use proofbox_prover::{
    BackendChoice, CircuitId, DynProver, FieldId, FriPreset, ProofArtifact, ProofRequest,
    ProveError, Prover, VerifyError, registry, verify, verify_bytes,
};
use proofbox_state::diff::record;
use proofbox_state::workload::random_transition;
use proofbox_state::{Diff, Parallelism, StateKey, StateTree, StateValue, Update};

fn input(seed: u64, keys: usize, updates: usize) -> TransitionInput {
    let (mut tree, diff) = random_transition(seed, keys, updates);
    TransitionInput::build(&mut tree, diff, 1234)
}

fn failures(trace: &RowMajorMatrix<F>, statement: &ChunkStatement) -> usize {
    check_all_constraints(
        &TransitionAir::new(),
        trace,
        &statement.public_values(),
        Some(8),
    )
    .failures
    .len()
}

fn assert_honest(input: &TransitionInput) -> TransitionStatement {
    let statement = input.chunk_statement().expect("honest witnesses");
    let trace = input.trace(0);
    assert_eq!(
        trace.values.len(),
        trace.width * input.segments() * ROWS_PER_SEGMENT
    );
    assert_eq!(failures(&trace, &statement), 0, "honest trace rejected");
    input.statement().unwrap()
}

#[test]
fn honest_traces_satisfy_every_constraint() {
    // Inserts, changes and deletions on a populated tree.
    let st = assert_honest(&input(1, 24, 7));
    assert_ne!(st.pre_root, st.post_root);
    // An empty diff leaves the root alone and commits to the empty diff.
    let st = assert_honest(&input(2, 10, 0));
    assert_eq!(st.pre_root, st.post_root);
    assert_eq!(st.diff_commitment, Diff::default().commitment());
    // Inserting into an empty tree.
    let st = assert_honest(&input(3, 0, 3));
    assert_eq!(st.pre_root, StateTree::empty_root());
    // Deleting the only key returns to the empty tree.
    let (mut tree, _) = random_transition(4, 1, 0);
    let key = *tree.iter().next().unwrap().0;
    let diff = Diff::new([Update::delete(key)]).unwrap();
    let st = assert_honest(&TransitionInput::build(&mut tree, diff, 0));
    assert_eq!(st.post_root, StateTree::empty_root());
}

/// Every kind of cell, changed anywhere it matters, breaks a constraint.
#[test]
fn corrupted_traces_violate_a_constraint() {
    let input = input(5, 20, 3);
    let statement = input.chunk_statement().unwrap();
    let honest = input.trace(0);
    let w = honest.width;
    let seg = ROWS_PER_SEGMENT; // corrupt the second update (one segment each here)
    assert_eq!(input.segments(), 4);
    let cells = [
        ("key message input", seg, col::P24 + 3),
        ("key digest", seg + 20, col::KEY + 2),
        ("leaf message value", seg + 3, col::P24 + 5),
        ("old value", seg + 20, col::OLD_V + 7),
        ("new value", seg + 25, col::NEW_V + 30),
        ("old leaf", seg + 9, col::OLD_LEAF),
        ("presence flag", seg + 20, col::NEW_PRESENT),
        ("kind", seg + 20, col::KIND),
        ("address", seg + 20, col::ADDR + 9),
        ("slot", seg + 30, col::SLOT + 15),
        ("active flag", seg + 10, col::ACTIVE),
        ("old sibling", seg + 12, col::OLD + 12),
        ("new node input", seg + 12, col::NEW + 2),
        ("old path output", seg + 30, col::OLD + col::P16_OUT),
        ("permutation internals", seg + 30, col::NEW + 40),
        ("width-24 internals", seg + 11, col::P24 + 100),
        ("neighbor leaf message", seg + 13, col::P24 + 2),
        ("neighbor leaf", seg + 20, col::NB_LEAF + 1),
        ("path bit", seg + 17, col::BIT),
        ("bit remainder", seg + 17, col::REM),
        ("low-bits flag", seg + 5, col::LOW),
        ("high-bits flag", seg + 27, col::HIGH),
        ("neighbor path bit", seg + 17, col::NB_BIT),
        ("element", seg + 5, col::ELEMENT),
        ("head flag", seg + 5, col::HEAD),
        ("old occupancy", seg + 20, col::OLD_EMPTY),
        ("new occupancy", seg + 20, col::NEW_LONE),
        ("sibling empty flag", seg + 29, col::SIB_EMPTY),
        ("sibling lone flag", seg + 29, col::SIB_LONE),
        ("pass flag", seg + 3, col::PASS_OLD),
        ("carried new node", seg + 31, col::CARRY + 3),
        ("deep sibling", seg + 5, col::DEEP + 3),
        ("carried root", seg + 3, col::ROOT + 1),
        ("diff sponge capacity", seg + 9, col::DCAP + 4),
        ("diff sponge output", seg + 20, col::DOUT),
        ("first row root", 0, col::ROOT),
        ("last row root", 4 * seg - 1, col::CARRY + 7),
    ];
    for (what, row, c) in cells {
        let mut t = honest.clone();
        t.values[row * w + c] += F::ONE;
        assert!(failures(&t, &statement) > 0, "corrupted {what} accepted");
    }
    // The public values are constrained too, the diff sponge's start and end included.
    for i in [
        pv::PRE_ROOT,
        pv::POST_ROOT + 1,
        pv::DIFF_COMMITMENT + 1,
        pv::SPONGE_IN_CAP,
        pv::SPONGE_IN_CAP + 7,
        pv::SPONGE_IN_OUT + 3,
        pv::SPONGE_OUT_CAP + 5,
    ] {
        let mut pv = statement.public_values();
        pv[i] += F::ONE;
        let report = check_all_constraints(&TransitionAir::new(), &honest, &pv, Some(1));
        assert!(!report.is_ok(), "public value {i} not constrained");
    }
}

/// A key element below `2^24 - 1` also has the 31-bit decomposition `x + p`. A trace
/// that walks that second path, consistent in every other respect (an insert into an
/// empty tree, whose walk has only empty siblings, so any path reaches the same root),
/// is rejected, at the element's last bit, by the canonicity check alone.
#[test]
fn non_canonical_path_bits_are_rejected() {
    use alloy_primitives::{Address, U256};
    let p = 0x7f00_0001u32;
    let key = (0u64..)
        .map(|i| StateKey::Storage {
            address: Address::ZERO,
            slot: U256::from(i),
        })
        .find(|k| k.digest()[0].as_canonical_u32() < (1 << 24) - 1)
        .unwrap();
    let mut tree = StateTree::new();
    let diff = Diff::new([Update::set(key, StateValue::Storage(U256::from(5u8)))]).unwrap();
    let input = TransitionInput::build(&mut tree, diff, 0);
    let honest = input.chunk_statement().unwrap();
    let mut path = proofbox_state::Path::from_digest(&key.digest());
    assert!(path.0[0] + p < 1 << 31);
    path.0[0] += p;
    let t = input.trace_with_path(0, path);
    let report = check_all_constraints(&TransitionAir::new(), &t, &honest.public_values(), None);
    assert!(!report.is_ok(), "a non-canonical path was accepted");
    // K[0]'s bits occupy rows 0..=30 of the update's one segment; its last bit's row
    // holds the check.
    assert!(
        report.failures.iter().all(|f| f.row == 30),
        "{:?}",
        report.failures
    );
}

fn prover() -> Prover<CpuBackend> {
    Prover::new(CpuBackend::new())
}

#[test]
fn transitions_prove_and_verify_and_tampering_fails() {
    let (mut tree, diff) = random_transition(7, 40, 21);
    let pre = tree.root();
    let pre_tree = tree.clone();
    let input = TransitionInput::build(&mut tree, diff.clone(), 77);
    let post = tree.root();
    let a = prover()
        .prove_transition(&input, FriPreset::Standard, Arc::new(()))
        .unwrap();
    assert_eq!(a.circuit, CircuitId::StateTransition);
    assert_eq!(a.log_rows, 10, "21 updates take 32 segments of 32 rows");
    transition::verify_diff(&a, &pre, &post, &diff, 77).unwrap();
    verify_bytes(&a.to_bytes()).unwrap();

    // One value of the diff changed: another commitment.
    let mut updates: Vec<Update> = diff.updates().copied().collect();
    let i = updates.iter().position(|u| u.value.is_some()).unwrap();
    updates[i].value = Some(match updates[i].value.unwrap() {
        StateValue::Storage(x) => StateValue::Storage(x ^ alloy_primitives::U256::from(2u8)),
        StateValue::Account(mut acc) => {
            acc.nonce ^= 1;
            StateValue::Account(acc)
        }
    });
    let changed = Diff::new(updates).unwrap();
    assert!(matches!(
        transition::verify_diff(&a, &pre, &post, &changed, 77),
        Err(VerifyError::StatementMismatch)
    ));
    // Other roots or block number.
    let other = StateTree::empty_root();
    assert!(transition::verify_diff(&a, &other, &post, &diff, 77).is_err());
    assert!(transition::verify_diff(&a, &pre, &other, &diff, 77).is_err());
    assert!(transition::verify_diff(&a, &pre, &post, &diff, 78).is_err());

    // The artifact's public values rewritten: the proof itself fails (or, for the
    // sponge's start, the proof no longer starts a diff and is refused alone).
    for at in [0, 8, 16, 24, 28, 36, 44, 51] {
        let mut bad = a.clone();
        bad.public_values[at] = (bad.public_values[at] + 1) % 0x7f00_0001;
        let err = verify(&bad).expect_err("a rewritten public value");
        let sponge_start = (28..44).contains(&at);
        assert!(
            match err {
                VerifyError::Rejected(_) => !sponge_start,
                VerifyError::Chain(_) => sponge_start,
                _ => false,
            },
            "public value {at} rewritten: {err}"
        );
    }

    // The same updates applied in another order: the trace absorbs the records in
    // that order, so the proof cannot state the canonical diff's commitment...
    let mut t = pre_tree.clone();
    let mut reversed = Vec::new();
    for u in diff.updates().rev() {
        let one = Diff::new([*u]).unwrap();
        reversed.extend(t.apply_with_witnesses(&one, Parallelism::Sequential));
    }
    assert_eq!(t.root(), post, "order does not change the post-state");
    let mut shuffled = input.clone();
    shuffled.witnesses = reversed;
    assert!(
        matches!(
            prover().prove_transition(&shuffled, FriPreset::Standard, Arc::new(())),
            Err(ProveError::Transition(_))
        ),
        "witnesses out of canonical order are refused before proving"
    );
    let canonical = input.chunk_statement().unwrap();
    let forged = prover()
        .prove_transition_trace(
            shuffled.trace(2),
            &canonical,
            FriPreset::Standard,
            Arc::new(()),
        )
        .unwrap();
    assert!(matches!(verify(&forged), Err(VerifyError::Rejected(_))));
    // ...and with the commitment of the order it did absorb, it verifies as that
    // order, which is not the canonical diff a verifier holds.
    let mut m = vec![F::from_u32(5)];
    m.resize(16, F::ZERO);
    for u in diff.updates().rev() {
        m.extend(record(u));
    }
    let reordered = ChunkStatement {
        sponge_out: SpongeState::header().absorb(diff.updates().rev()),
        ..canonical
    };
    assert_eq!(reordered.sponge_out.output, proofbox_state::hash::hash(&m));
    assert_ne!(reordered.sponge_out, canonical.sponge_out);
    let honest_other_order = prover()
        .prove_transition_trace(
            shuffled.trace(2),
            &reordered,
            FriPreset::Standard,
            Arc::new(()),
        )
        .unwrap();
    verify(&honest_other_order).unwrap();
    assert!(matches!(
        transition::verify_diff(&honest_other_order, &pre, &post, &diff, 77),
        Err(VerifyError::StatementMismatch)
    ));
}

#[test]
fn empty_and_single_key_diffs_prove() {
    for (keys, updates) in [(5, 0), (0, 1)] {
        let (mut tree, diff) = random_transition(8, keys, updates);
        let pre = tree.root();
        let input = TransitionInput::build(&mut tree, diff.clone(), 0);
        let a = prover()
            .prove_transition(&input, FriPreset::Standard, Arc::new(()))
            .unwrap();
        assert_eq!(a.log_rows, 5, "one segment");
        transition::verify_diff(&a, &pre, &tree.root(), &diff, 0).unwrap();
    }
}

/// Random diffs from one update to thousands prove and verify against the roots and
/// the diff the node holds. The largest is proved as the benchmark suite proves large
/// diffs, in chained proofs (here of 512 updates, 2^14 rows each), and one changed value
/// anywhere in it fails the bundle.
#[test]
fn random_diffs_of_one_to_thousands_of_updates_prove_and_verify() {
    for (seed, keys, updates) in [(31, 2, 1), (32, 9, 2), (33, 60, 37), (34, 300, 255)] {
        let (mut tree, diff) = random_transition(seed, keys, updates);
        let pre = tree.root();
        let input = TransitionInput::build(&mut tree, diff.clone(), seed);
        let a = prover()
            .prove_transition(&input, FriPreset::Standard, Arc::new(()))
            .unwrap();
        let segments = updates.next_power_of_two();
        assert_eq!(1usize << a.log_rows, segments * ROWS_PER_SEGMENT);
        transition::verify_diff(&a, &pre, &tree.root(), &diff, seed).unwrap();
    }

    let (mut tree, diff) = random_transition(35, 2500, 2000);
    let pre = tree.root();
    let chunks = TransitionInput::build_chunks(&mut tree, diff.clone(), 9, 512);
    let post = tree.root();
    assert_ne!(pre, post);
    let b = prover()
        .prove_transition_chunks(&chunks, FriPreset::Standard, Arc::new(()))
        .unwrap();
    let log_rows: Vec<u8> = b.chunks.iter().map(|a| a.log_rows).collect();
    assert_eq!(
        log_rows,
        [14, 14, 14, 14],
        "2,000 updates: 3 x 512 + 464 padded"
    );
    transition::verify_diff_chunks(&b, &pre, &post, &diff, 9).unwrap();

    for i in [0, 1234, 1999] {
        let other = with_changed(&diff, i);
        assert!(
            transition::verify_diff_chunks(&b, &pre, &post, &other, 9).is_err(),
            "update {i} changed"
        );
    }
}

#[test]
fn wrong_witnesses_and_fields_are_refused() {
    let mut bad = input(9, 10, 3);
    bad.witnesses[1].old_value = Some(StateValue::Storage(alloy_primitives::U256::from(9u8)));
    let err = prover()
        .prove_transition(&bad, FriPreset::Standard, Arc::new(()))
        .unwrap_err();
    assert!(matches!(err, ProveError::Transition(_)), "{err}");
    let mut missing = input(9, 10, 3);
    missing.witnesses.pop();
    assert!(
        prover()
            .prove_transition(&missing, FriPreset::Standard, Arc::new(()))
            .is_err()
    );
    let mut req = ProofRequest::new(CircuitId::StateTransition, 9);
    req.field = FieldId::BabyBear;
    let err = prover().prove(&req, Arc::new(())).unwrap_err();
    assert!(
        err.to_string().contains("not defined over field babybear"),
        "{err}"
    );
    let mut req = ProofRequest::new(CircuitId::StateTransition, 9);
    req.input = vec![1];
    assert!(prover().prove(&req, Arc::new(())).is_err());
}

/// Requests by size prove a seeded diff of 2^(log_rows - 5) updates.
#[test]
fn requests_by_size_prove_seeded_diffs() {
    let mut req = ProofRequest::new(CircuitId::StateTransition, 10);
    req.seed = 3;
    let a = prover().prove(&req, Arc::new(())).unwrap();
    // The seed chose the workload; the statement is the public values alone.
    assert_eq!(a.seed, 0);
    assert_eq!(a.log_rows, 10);
    let back = verify_bytes(&a.to_bytes()).unwrap();
    let expected = transition::seeded_input(3, 32).statement().unwrap();
    transition::verify_transition(&back, &expected).unwrap();
}

/// Device backends prove state transitions with the CPU backend's trace commitment.
#[test]
fn device_backends_prove_transitions() {
    let input = input(10, 12, 2);
    let statement = input.statement().unwrap();
    let cpu = prover()
        .prove_transition(&input, FriPreset::Standard, Arc::new(()))
        .unwrap();
    for kind in [BackendKind::Wgpu, BackendKind::Opencl, BackendKind::Cuda] {
        let report = registry::report(kind);
        if !report.available {
            let reason = report.reason.unwrap_or_default();
            let what = format_args!("{kind} state transitions");
            if reason == "not built into this binary" {
                proofbox_conformance::skip(format_args!("{what}: {reason}"));
            } else {
                proofbox_conformance::require_or_skip(kind, what, reason);
            }
            continue;
        }
        for device in &report.devices {
            let prover = registry::open(BackendChoice::Kind(kind), Some(&device.id)).unwrap();
            let a = prover
                .prove_transition(&input, FriPreset::Standard, Arc::new(()))
                .unwrap_or_else(|e| panic!("{}: {e}", device.id));
            transition::verify_transition(&a, &statement)
                .unwrap_or_else(|e| panic!("{}: {e}", device.id));
            assert_eq!(a.public_values, cpu.public_values);
            assert_eq!(
                trace_commitment(&a.proof),
                trace_commitment(&cpu.proof),
                "{}",
                device.id
            );
        }
    }
}

fn trace_commitment(proof: &[u8]) -> Vec<u8> {
    let p: p3_uni_stark::Proof<proofbox_prover::config::stock::Config<F>> =
        postcard::from_bytes(proof).unwrap();
    postcard::to_allocvec(&p.commitments.trace).unwrap()
}

/// `diff` with update `i` given another value (a write where it deleted).
fn with_changed(diff: &Diff, i: usize) -> Diff {
    use alloy_primitives::U256;
    let mut updates: Vec<Update> = diff.updates().copied().collect();
    let u = updates[i];
    let value = match (u.key, u.value) {
        (_, Some(StateValue::Storage(x))) => StateValue::Storage(x ^ U256::from(2u8)),
        (_, Some(StateValue::Account(mut acc))) => {
            acc.nonce ^= 1;
            StateValue::Account(acc)
        }
        (StateKey::Storage { .. }, None) => StateValue::Storage(U256::from(7u8)),
        (StateKey::Account(_), None) => StateValue::Account(Default::default()),
    };
    updates[i] = Update::set(u.key, value);
    Diff::new(updates).unwrap()
}

fn bundle(chunks: &[&ProofArtifact]) -> TransitionProof {
    TransitionProof {
        chunks: chunks.iter().map(|&a| a.clone()).collect(),
    }
}

/// A diff proved in chunks of 4 updates states exactly what one proof of it states,
/// and only an intact, ordered chain of its own chunks does.
#[test]
fn chunked_proofs_chain_into_the_whole_diff() {
    let (mut tree, diff) = random_transition(11, 30, 14);
    let pre_tree = tree.clone();
    let pre = tree.root();
    let chunks = TransitionInput::build_chunks(&mut tree, diff.clone(), 55, 4);
    let post = tree.root();
    assert_eq!(
        chunks.iter().map(|c| c.diff.len()).collect::<Vec<_>>(),
        [4, 4, 4, 2]
    );
    let whole = TransitionInput::build(&mut pre_tree.clone(), diff.clone(), 55);
    let st = whole.statement().unwrap();
    assert_eq!((st.pre_root, st.post_root), (pre, post));
    assert_eq!(st.diff_commitment, diff.commitment());
    assert_eq!(transition::statement_of_chunks(&chunks).unwrap(), st);
    // Every chunk's trace is honest for its own statement; the first starts the diff.
    for (i, c) in chunks.iter().enumerate() {
        let cs = c.chunk_statement().unwrap();
        assert_eq!(cs.starts_a_diff(), i == 0);
        assert_eq!(failures(&c.trace(0), &cs), 0, "chunk {i}");
    }

    let b = prover()
        .prove_transition_chunks(&chunks, FriPreset::Standard, Arc::new(()))
        .unwrap();
    assert_eq!(b.chunks.len(), 4);
    let log_rows: Vec<u8> = b.chunks.iter().map(|a| a.log_rows).collect();
    assert_eq!(log_rows, [7, 7, 7, 6], "the last chunk pads 2 updates to 2");
    transition::verify_transition_chunks(&b, &st).unwrap();
    transition::verify_diff_chunks(&b, &pre, &post, &diff, 55).unwrap();
    let back = TransitionProof::from_bytes(&b.to_bytes()).unwrap();
    assert_eq!(back, b);
    transition::verify_transition_chunks(&back, &st).unwrap();
    assert!(TransitionProof::from_bytes(&b.chunks[0].to_bytes()).is_err());

    // One proof of the whole diff states the same, alone or as a one-chunk bundle.
    let single = prover()
        .prove_transition(&whole, FriPreset::Standard, Arc::new(()))
        .unwrap();
    transition::verify_transition(&single, &st).unwrap();
    transition::verify_transition_chunks(&bundle(&[&single]), &st).unwrap();

    let [c0, c1, c2, c3] = [0, 1, 2, 3].map(|i| &b.chunks[i]);
    let rejected = |chunks: &[&ProofArtifact]| {
        transition::verify_transition_chunks(&bundle(chunks), &st).is_err()
    };
    // Dropped, repeated and reordered chunks.
    assert!(rejected(&[]));
    assert!(matches!(
        transition::verify_transition_chunks(&bundle(&[]), &st),
        Err(VerifyError::Chain(_))
    ));
    assert!(rejected(&[c1, c2, c3]), "first chunk dropped");
    assert!(rejected(&[c0, c2, c3]), "middle chunk dropped");
    assert!(rejected(&[c0, c1, c2]), "last chunk dropped");
    assert!(rejected(&[c0, c1, c1, c2, c3]), "chunk repeated");
    assert!(rejected(&[c0, c1, c2, c3, c3]), "last chunk repeated");
    assert!(rejected(&[c0, c2, c1, c3]), "chunks swapped");
    assert!(rejected(&[c1, c0, c2, c3]), "first chunks swapped");
    assert!(matches!(
        transition::verify_transition_chunks(&bundle(&[c0, c2, c1, c3]), &st),
        Err(VerifyError::Chain(_))
    ));
    // The tail of the chain on its own, even against its own roots and sponge output:
    // it does not start at the header state.
    let tail = bundle(&[c1, c2, c3]);
    let tail_statement = TransitionStatement {
        pre_root: chunks[1].pre_root,
        ..st
    };
    assert!(transition::verify_transition_chunks(&tail, &tail_statement).is_err());
    // Another block number.
    assert!(transition::verify_diff_chunks(&b, &pre, &post, &diff, 56).is_err());
    // A chunk whose public sponge start was rewritten, or whose proof was corrupted.
    let mut bad = c2.clone();
    bad.public_values[pv::SPONGE_IN_CAP] = (bad.public_values[pv::SPONGE_IN_CAP] + 1) % 0x7f00_0001;
    assert!(rejected(&[c0, c1, &bad, c3]));
    let mut bad = c2.clone();
    bad.proof[100] ^= 1;
    assert!(rejected(&[c0, c1, &bad, c3]), "a chunk's proof corrupted");

    // A chunk of another diff: the same updates but for the last one's value. Its
    // last chunk starts where this diff's does (same roots and sponge), so the chain
    // holds, but the bundle states the other diff, which is not this one.
    let other = with_changed(&diff, diff.len() - 1);
    let mut other_tree = pre_tree.clone();
    let other_chunks = TransitionInput::build_chunks(&mut other_tree, other.clone(), 55, 4);
    assert_eq!(other_chunks[..3], chunks[..3]);
    let o3 = prover()
        .prove_transition(&other_chunks[3], FriPreset::Standard, Arc::new(()))
        .unwrap();
    let mixed = bundle(&[c0, c1, c2, &o3]);
    assert!(matches!(
        transition::verify_diff_chunks(&mixed, &pre, &post, &diff, 55),
        Err(VerifyError::StatementMismatch)
    ));
    transition::verify_diff_chunks(&mixed, &pre, &other_tree.root(), &other, 55).unwrap();
    // ...and in the middle of this diff's chain it breaks the chain.
    let o2 = prover()
        .prove_transition(&other_chunks[2], FriPreset::Standard, Arc::new(()))
        .unwrap();
    assert_eq!(o2.public_values, c2.public_values, "the same chunk");
    assert!(rejected(&[c0, c1, c2, c3, &o3]));
    assert!(rejected(&[c0, c1, &o3, c3]));

    // The prover refuses chunks that do not chain before proving anything.
    for bad in [
        vec![],
        vec![chunks[0].clone(), chunks[2].clone()],
        vec![chunks[1].clone(), chunks[2].clone(), chunks[3].clone()],
        vec![chunks[0].clone(), chunks[1].clone(), chunks[1].clone()],
    ] {
        assert!(matches!(
            prover().prove_transition_chunks(&bad, FriPreset::Standard, Arc::new(())),
            Err(ProveError::Transition(_))
        ));
    }
}

/// A later chunk proved on its own is a valid proof, but not of a whole diff: its diff
/// sponge does not start at the header state, and a single proof must.
#[test]
fn a_single_proof_must_start_at_the_header_state() {
    let (mut tree, diff) = random_transition(12, 20, 6);
    let chunks = TransitionInput::build_chunks(&mut tree, diff, 3, 4);
    assert_eq!(chunks.len(), 2);
    let a = prover()
        .prove_transition(&chunks[1], FriPreset::Standard, Arc::new(()))
        .unwrap();
    // Not reported as a valid proof of a diff: it is refused alone, naming bundles.
    let err = verify(&a).unwrap_err();
    assert!(
        matches!(&err, VerifyError::Chain(m) if m.contains("bundle")),
        "{err}"
    );
    let stated = chunks[1].statement().unwrap();
    assert!(matches!(
        transition::verify_transition(&a, &stated),
        Err(VerifyError::StatementMismatch)
    ));
    // A replica holding only that chunk's updates does not accept it either.
    assert!(
        transition::verify_diff(
            &a,
            &chunks[1].pre_root,
            &stated.post_root,
            &chunks[1].diff,
            3
        )
        .is_err()
    );
    // A chunk started at a made-up sponge state, public as such: the trace satisfies
    // the constraints only with its true start in the public values.
    let mut forged = chunks[0].clone();
    forged.sponge_start.capacity[0] += F::ONE;
    let fs = forged.chunk_statement().unwrap();
    assert!(!fs.starts_a_diff());
    assert_eq!(failures(&forged.trace(0), &fs), 0);
    let claimed = ChunkStatement {
        sponge_in: SpongeState::header(),
        ..fs
    };
    assert!(failures(&forged.trace(0), &claimed) > 0);
    assert!(
        prover()
            .prove_transition_trace(forged.trace(2), &claimed, FriPreset::Standard, Arc::new(()))
            .map_or(true, |a| verify(&a).is_err())
    );
}

/// `DynProver::prove_transition_chunks` as provided for any implementer.
struct OnlyRequired(Prover<CpuBackend>);

impl DynProver for OnlyRequired {
    fn backend_kind(&self) -> BackendKind {
        self.0.backend_kind()
    }
    fn device(&self) -> &proofbox_backend_api::DeviceInfo {
        DynProver::device(&self.0)
    }
    fn prove(
        &self,
        req: &ProofRequest,
        progress: Arc<dyn proofbox_prover::Progress>,
    ) -> Result<ProofArtifact, ProveError> {
        self.0.prove(req, progress)
    }
    fn prove_transition(
        &self,
        input: &TransitionInput,
        fri: FriPreset,
        progress: Arc<dyn proofbox_prover::Progress>,
    ) -> Result<ProofArtifact, ProveError> {
        self.0.prove_transition(input, fri, progress)
    }
}

#[test]
fn dyn_provers_prove_chunks() {
    let (mut tree, diff) = random_transition(13, 8, 5);
    let pre = tree.root();
    let chunks = TransitionInput::build_chunks(&mut tree, diff.clone(), 9, 2);
    assert_eq!(chunks.len(), 3);
    let provers: [Box<dyn DynProver>; 2] = [Box::new(prover()), Box::new(OnlyRequired(prover()))];
    for p in provers {
        let b = p
            .prove_transition_chunks(&chunks, FriPreset::Standard, Arc::new(()))
            .unwrap();
        let log_rows: Vec<u8> = b.chunks.iter().map(|a| a.log_rows).collect();
        assert_eq!(log_rows, [6, 6, 5]);
        transition::verify_diff_chunks(&b, &pre, &tree.root(), &diff, 9).unwrap();
        assert!(matches!(
            p.prove_transition_chunks(&chunks[1..], FriPreset::Standard, Arc::new(())),
            Err(ProveError::Transition(_))
        ));
    }
    // A diff no longer than a chunk is one chunk, the same input as `build`'s.
    let (mut t1, d1) = random_transition(14, 8, 4);
    let mut t2 = t1.clone();
    let one = TransitionInput::build_chunks(&mut t1, d1.clone(), 1, 4);
    assert_eq!(one, vec![TransitionInput::build(&mut t2, d1, 1)]);
    let empty = TransitionInput::build_chunks(&mut t1, Diff::default(), 1, 4);
    assert_eq!(empty.len(), 1);
    assert!(empty[0].chunk_statement().unwrap().starts_a_diff());
}
