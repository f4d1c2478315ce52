//! The verifier's security floor: genuinely valid proofs with one FRI query are
//! refused by the default verifier and accepted by a verifier whose floor is 0, for
//! every kind of proof (benchmark circuits, state transitions, bundles). Also the
//! state-transition limits of one proof. Run in release: `cargo test --release`.

use std::sync::Arc;

use proofbox_backend_cpu::CpuBackend;
use proofbox_prover::transition::{
    MAX_UPDATES_PER_PROOF, TransitionInput, TransitionProof, seeded_input,
};
use proofbox_prover::{
    CircuitId, FieldId, FriParams, FriPreset, ProofArtifact, ProofRequest, ProveError, Prover,
    Verifier, VerifyError, verify,
};

/// One query, no grinding: about two bits of conjectured security.
fn one_query() -> FriParams {
    FriParams {
        num_queries: 1,
        query_proof_of_work_bits: 0,
        ..FriPreset::Standard.params()
    }
}

fn weak_proof(circuit: CircuitId, field: FieldId) -> ProofArtifact {
    let mut req = ProofRequest::new(circuit, circuit.min_log_rows());
    req.field = field;
    Prover::new(CpuBackend::new())
        .prove_with_insecure_params(&req, one_query(), Arc::new(()))
        .expect("a weak proof is still a proof")
}

#[test]
fn one_query_proofs_are_refused_by_the_default_floor_and_valid_without_one() {
    let open = Verifier::with_min_security_bits(0).unwrap();
    for circuit in CircuitId::ALL {
        let field = circuit.fields()[0];
        let a = weak_proof(circuit, field);
        assert_eq!(a.fri.conjectured_security_bits(), 2, "{circuit}");

        let err = verify(&a).unwrap_err();
        assert!(
            matches!(err, VerifyError::InsufficientSecurity { bits: 2, min: 100 }),
            "{circuit}: {err}"
        );
        let msg = err.to_string();
        assert!(msg.contains("2 bits") && msg.contains("100 bits"), "{msg}");
        // Through the bytes as well (what the CLI and the service read).
        assert!(matches!(
            Verifier::default().verify_any_bytes(&a.to_bytes()),
            Err(VerifyError::InsufficientSecurity { .. })
        ));

        // The same proof is valid: a verifier that demands nothing accepts it.
        let v = open.verify(&a).unwrap_or_else(|e| panic!("{circuit}: {e}"));
        assert_eq!((v.security_bits, v.min_security_bits), (2, 0));
        // And a floor just above its bits refuses it.
        assert!(
            Verifier::with_min_security_bits(3)
                .unwrap()
                .verify(&a)
                .is_err()
        );
    }
}

#[test]
fn the_floor_applies_to_state_transition_checks_and_bundles() {
    let prover = Prover::new(CpuBackend::new());
    let input = seeded_input(7, 1);
    let statement = input.statement().unwrap();
    let mut req = ProofRequest::new(CircuitId::StateTransition, 5);
    req.seed = 7;
    let weak = prover
        .prove_with_insecure_params(&req, one_query(), Arc::new(()))
        .unwrap();
    assert_eq!(weak.seed, 0, "a state-transition artifact carries no seed");
    let open = Verifier::with_min_security_bits(0).unwrap();
    let v = open.verify_transition(&weak, &statement).unwrap();
    assert_eq!(v.transition, Some(statement));
    assert!(matches!(
        Verifier::default().verify_transition(&weak, &statement),
        Err(VerifyError::InsufficientSecurity { bits: 2, .. })
    ));

    // A bundle is as strong as its weakest chunk.
    let strong = prover.prove(&req, Arc::new(())).expect("a standard proof");
    let bundle = TransitionProof { chunks: vec![weak] };
    assert!(matches!(
        Verifier::default().verify_bundle(&bundle),
        Err(VerifyError::InsufficientSecurity { .. })
    ));
    let good = TransitionProof {
        chunks: vec![strong.clone()],
    };
    let v = Verifier::default().verify_bundle(&good).unwrap();
    assert_eq!(v.security_bits, 100);
    assert_eq!(v.transition, Some(statement));
    // The bundle's bytes verify through the same entry point as an artifact's.
    assert_eq!(
        Verifier::default()
            .verify_any_bytes(&good.to_bytes())
            .unwrap(),
        v
    );
}

#[test]
fn a_state_transition_artifact_with_a_seed_or_input_is_refused() {
    let a = Prover::new(CpuBackend::new())
        .prove(
            &ProofRequest::new(CircuitId::StateTransition, 5),
            Arc::new(()),
        )
        .unwrap();
    verify(&a).unwrap();
    let mut seeded = a.clone();
    seeded.seed = 5;
    assert!(matches!(verify(&seeded), Err(VerifyError::Parameters(_))));
    let mut with_input = a;
    with_input.input = vec![1];
    assert!(matches!(
        verify(&with_input),
        Err(VerifyError::Parameters(_))
    ));
}

#[test]
fn floors_above_what_any_proof_reaches_are_refused() {
    assert!(Verifier::with_min_security_bits(124).is_ok());
    let err = Verifier::with_min_security_bits(125).unwrap_err();
    assert!(err.to_string().contains("125"), "{err}");
}

#[test]
fn a_diff_larger_than_one_proof_is_refused_before_work_naming_the_chunked_call() {
    let (mut tree, diff) =
        proofbox_state::workload::random_transition(1, 16, MAX_UPDATES_PER_PROOF + 1);
    let input = TransitionInput::build(&mut tree, diff, 0);
    let err = Prover::new(CpuBackend::new())
        .prove_transition(&input, FriPreset::Standard, Arc::new(()))
        .unwrap_err();
    assert!(
        matches!(err, ProveError::DiffTooLarge { updates, max }
            if updates == MAX_UPDATES_PER_PROOF + 1 && max == MAX_UPDATES_PER_PROOF),
        "{err}"
    );
    assert!(err.to_string().contains("prove_transition_chunks"), "{err}");
}
