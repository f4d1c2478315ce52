//! The resident prover path against the stock path: with no grinding (the only
//! nondeterminism of a proof) the two make byte-identical proofs, which verify with
//! the stock verifier; with grinding their commitments are equal. On the CPU backend
//! for every circuit and field, on OpenCL (PoCL in CI) and wgpu (lavapipe in CI) for
//! Poseidon2 and the state transition. Each device test prints what a resident proof
//! moves between host and device against the stock path (`--nocapture`). Without a
//! device the device tests print `skipped: ...`. On each device, the quotient stage of a
//! resident proof moves no data either way and brings back only its root. Run in
//! release.

use std::sync::Arc;

use p3_field::{Field, PrimeCharacteristicRing};
use p3_koala_bear::KoalaBear;
use p3_uni_stark::Proof;
use proofbox_backend_api::{Backend, BackendError, ResidentBackend, TransferStats};
use proofbox_backend_cpu::CpuBackend;
use proofbox_conformance::open_or_skip;
use proofbox_prover::config::{Challenge, FriPreset, stock};
use proofbox_prover::transition::{TransitionInput, seeded_input};
use proofbox_prover::{
    CircuitField, CircuitId, FieldId, FriParams, ProofArtifact, ProofRequest, Prover, Verifier,
    VerifyError, resident,
};

/// The standard preset without grinding: proofs are then a function of the input.
fn no_grinding() -> FriParams {
    FriParams {
        query_proof_of_work_bits: 0,
        ..FriPreset::Standard.params()
    }
}

fn request(circuit: CircuitId, field: FieldId) -> ProofRequest {
    let mut r = ProofRequest::new(circuit, circuit.min_log_rows());
    r.field = field;
    r.seed = 7;
    if circuit.input_bytes_per_instance() > 0 {
        r.input = b"resident".to_vec();
    }
    r
}

fn prove<B: Backend>(p: &Prover<B>, req: &ProofRequest, fri: FriParams) -> ProofArtifact {
    p.prove_with_insecure_params(req, fri, Arc::new(()))
        .unwrap_or_else(|e| panic!("{} {}: {e}", req.circuit, req.field))
}

fn open_verifier() -> Verifier {
    Verifier::with_min_security_bits(0).unwrap()
}

type StockProof<F> = Proof<stock::Config<F>>;

fn stock_proof<F: CircuitField>(a: &ProofArtifact) -> StockProof<F> {
    postcard::from_bytes(&a.proof).expect("a stock proof")
}

/// The commitments of two proofs (trace, quotient chunks, every FRI round) are equal.
fn same_commitments<F: CircuitField>(a: &ProofArtifact, b: &ProofArtifact) {
    let (a, b) = (stock_proof::<F>(a), stock_proof::<F>(b));
    assert_eq!(a.commitments.trace, b.commitments.trace);
    assert_eq!(a.commitments.quotient_chunks, b.commitments.quotient_chunks);
    assert_eq!(
        a.opening_proof.commit_phase_commits,
        b.opening_proof.commit_phase_commits
    );
}

#[test]
fn cpu_resident_proofs_are_the_stock_proofs_for_every_circuit() {
    let stock_path = Prover::new(CpuBackend::new());
    let resident_path = Prover::resident(CpuBackend::new());
    assert!(resident_path.is_resident() && !stock_path.is_resident());
    for circuit in CircuitId::ALL {
        for &field in circuit.fields() {
            let req = request(circuit, field);
            let want = prove(&stock_path, &req, no_grinding());
            let got = prove(&resident_path, &req, no_grinding());
            assert_eq!(got, want, "{circuit}/{field}: the proofs differ");
            open_verifier()
                .verify(&got)
                .unwrap_or_else(|e| panic!("{circuit}/{field}: {e}"));
        }
    }
}

#[test]
fn cpu_resident_proofs_with_grinding_verify_and_share_commitments() {
    let req = request(CircuitId::Poseidon2, FieldId::BabyBear);
    let fri = FriPreset::Standard.params();
    let want = prove(&Prover::new(CpuBackend::new()), &req, fri);
    let got = prove(&Prover::resident(CpuBackend::new()), &req, fri);
    Verifier::default().verify(&got).unwrap();
    same_commitments::<p3_baby_bear::BabyBear>(&got, &want);
}

/// The resident loop is `p3_uni_stark::prove` step for step: the stock prover over
/// the same resident configuration makes the same proof.
#[test]
fn the_resident_loop_is_the_stock_loop_over_the_resident_pcs() {
    let req = request(CircuitId::Poseidon2, FieldId::KoalaBear);
    let statement = req.statement();
    let fri = no_grinding();
    let trace = statement.trace::<KoalaBear>(fri.log_blowup as usize);
    let public_values = statement.digest::<KoalaBear>().to_vec();
    let air = KoalaBear::poseidon2_air();
    let config = resident::config::<_, KoalaBear>(Arc::new(CpuBackend::new()), &fri);
    let ours = resident::prove(&config, &air, trace.clone(), &public_values, &()).unwrap();
    let theirs = p3_uni_stark::prove(&config, &air, trace, &public_values).unwrap();
    assert_eq!(
        postcard::to_allocvec(&ours).unwrap(),
        postcard::to_allocvec(&theirs).unwrap()
    );
}

#[test]
fn a_resident_cpu_prover_passes_its_self_test_with_a_resident_proof() {
    use proofbox_prover::DynProver;
    let report = Prover::resident(CpuBackend::new()).self_test().unwrap();
    assert_eq!(report.fields, vec![FieldId::KoalaBear, FieldId::BabyBear]);
}

#[test]
fn a_tampered_resident_opening_is_rejected() {
    let req = request(CircuitId::Poseidon2, FieldId::KoalaBear);
    let good = prove(&Prover::resident(CpuBackend::new()), &req, no_grinding());
    open_verifier().verify(&good).unwrap();
    let mut proof = stock_proof::<KoalaBear>(&good);
    proof.opened_values.trace_local[0] += Challenge::<KoalaBear>::ONE;
    let bad = ProofArtifact {
        proof: postcard::to_allocvec(&proof).unwrap(),
        ..good.clone()
    };
    assert!(matches!(
        open_verifier().verify(&bad),
        Err(VerifyError::Rejected(_))
    ));
    // A flipped byte in an input opening's Merkle path, read from the device.
    let mut proof = stock_proof::<KoalaBear>(&good);
    let path = &mut proof.opening_proof.input_openings[0].opening_proof;
    path.sibling_hashes[0][0] += KoalaBear::ONE;
    let bad = ProofArtifact {
        proof: postcard::to_allocvec(&proof).unwrap(),
        ..good
    };
    assert!(open_verifier().verify(&bad).is_err());
}

/// Proves Poseidon2 (KoalaBear) and the state transition on `device` on both paths
/// and checks them against the CPU backend's stock proofs; prints what each proof
/// moved.
fn check_device<B: ResidentBackend>(open: impl Fn() -> Result<B, BackendError>) {
    let Some(stock_dev) = open_or_skip(open()) else {
        return;
    };
    let resident_dev = Prover::resident(open().expect("opened once"));
    let stock_dev = Prover::new(stock_dev);
    let cpu = Prover::new(CpuBackend::new());
    let id = resident_dev.backend().device().id.clone();

    for log_rows in [3, 6] {
        let mut req = request(CircuitId::Poseidon2, FieldId::KoalaBear);
        req.log_rows = log_rows;
        let want = prove(&cpu, &req, no_grinding());
        let (got, moved) = measured(&resident_dev, |p| prove(p, &req, no_grinding()));
        let (old, old_moved) = measured(&stock_dev, |p| prove(p, &req, no_grinding()));
        assert_eq!(
            got, want,
            "{id}: the resident Poseidon2 proof differs from the CPU's"
        );
        assert_eq!(old, want);
        open_verifier().verify(&got).unwrap();
        report(
            &id,
            &format!("poseidon2 2^{log_rows} koala-bear"),
            &moved,
            &old_moved,
        );
        // The resident path sends the trace and FRI's folded codewords, never an
        // extension nor the quotient (`quotient_stage_moves_only_its_root`).
        let caller = |s: &TransferStats| s.host_to_device_bytes - s.table_bytes;
        assert!(
            caller(&moved) < caller(&old_moved),
            "{id}: a resident proof sends less of the caller's data than the stock path"
        );
        // The trace once and nothing else: the quotient chunks are extended where
        // they were computed and FRI folds on the device.
        let width = proofbox_prover::memory::trace_width(CircuitId::Poseidon2, FieldId::KoalaBear);
        let trace_bytes = (1u64 << log_rows) * width as u64 * 4;
        assert_eq!(
            caller(&moved),
            trace_bytes,
            "{id}: a resident proof sends {} B of data for a trace of {trace_bytes} B",
            caller(&moved)
        );
        // Reads come back in one copy per call, FRI's trees are built and folded on
        // the device and its query phase is one read: waits in tens, fewer than the
        // stock path's.
        assert!(
            moved.sync_waits <= 30 && moved.sync_waits < old_moved.sync_waits,
            "{id}: a resident proof waited {} times, the stock path {}",
            moved.sync_waits,
            old_moved.sync_waits
        );
        // The quotient is evaluated on the device: no extension, and not the trace on
        // the quotient domain, comes back (at 2^3 the queried rows still dominate).
        if log_rows == 6 {
            assert!(
                moved.device_to_host_bytes * 4 < old_moved.device_to_host_bytes,
                "{id}: a resident proof brings back {} B, the stock path {} B",
                moved.device_to_host_bytes,
                old_moved.device_to_host_bytes
            );
        }
    }

    let input: TransitionInput = seeded_input(3, 4);
    let fri = no_grinding();
    let want = cpu
        .prove_transition_with_insecure_params(&input, fri, Arc::new(()))
        .unwrap();
    let (got, moved) = measured(&resident_dev, |p| {
        p.prove_transition_with_insecure_params(&input, fri, Arc::new(()))
            .unwrap()
    });
    let (_, old_moved) = measured(&stock_dev, |p| {
        p.prove_transition_with_insecure_params(&input, fri, Arc::new(()))
            .unwrap()
    });
    assert_eq!(got, want, "{id}: the resident transition proof differs");
    assert!(
        moved.device_to_host_bytes * 4 < old_moved.device_to_host_bytes,
        "{id}: a resident transition proof brings back {} B, the stock path {} B",
        moved.device_to_host_bytes,
        old_moved.device_to_host_bytes
    );
    open_verifier().verify(&got).unwrap();
    // With grinding: the same commitments, and the default verifier accepts it.
    let graded = resident_dev
        .prove_transition(&input, FriPreset::Standard, Arc::new(()))
        .unwrap();
    Verifier::default().verify(&graded).unwrap();
    let cpu_graded = cpu
        .prove_transition(&input, FriPreset::Standard, Arc::new(()))
        .unwrap();
    same_commitments::<KoalaBear>(&graded, &cpu_graded);
    report(&id, "state transition 4 updates", &moved, &old_moved);
}

/// Proves Poseidon2 (KoalaBear, `2^6` rows) on the resident path of `open()` and
/// checks what the quotient stage (evaluation, chunk extensions, commitment) moved:
/// no data either way, only the quotient's root back. The quotient's values (16 B a
/// point) do not come back, and its chunks are not sent.
fn quotient_stage_moves_only_its_root<B: ResidentBackend>(
    open: impl Fn() -> Result<B, BackendError>,
) {
    use std::sync::Mutex;

    use proofbox_prover::Stage;
    let Some(backend) = open_or_skip(open()) else {
        return;
    };
    let backend = Arc::new(backend);
    let id = backend.device().id.clone();
    let fri = no_grinding();
    let mut req = request(CircuitId::Poseidon2, FieldId::KoalaBear);
    req.log_rows = 6;
    let statement = req.statement();
    let trace = statement.trace::<KoalaBear>(fri.log_blowup as usize);
    let public_values = statement.digest::<KoalaBear>().to_vec();
    let air = KoalaBear::poseidon2_air();
    let config = resident::config::<_, KoalaBear>(backend.clone(), &fri);
    let marks: Mutex<Vec<(Stage, TransferStats)>> = Mutex::new(Vec::new());
    let progress = |stage: Stage| {
        marks
            .lock()
            .unwrap()
            .push((stage, backend.transfer_stats()))
    };
    resident::prove(&config, &air, trace, &public_values, &progress).unwrap();
    let marks = marks.into_inner().unwrap();
    let at = |stage: Stage| {
        marks
            .iter()
            .find(|(s, _)| *s == stage)
            .map(|(_, stats)| *stats)
            .unwrap_or_else(|| panic!("{id}: no {stage:?} stage was reported"))
    };
    let quotient = at(Stage::Open).since(&at(Stage::Quotient));
    let root_bytes = (proofbox_backend_api::DIGEST_ELEMS * 4) as u64;
    assert!(
        quotient.data_to_device_bytes() == 0 && quotient.device_to_host_bytes == root_bytes,
        "{id}: the quotient stage moved {} B of data to the device and {} B back, expected 0 \
         and the root's {root_bytes} B ({quotient:?})",
        quotient.data_to_device_bytes(),
        quotient.device_to_host_bytes
    );
    assert!(quotient.kernel_launches > 0, "{id}: {quotient:?}");
}

fn measured<B: Backend, T>(p: &Prover<B>, run: impl FnOnce(&Prover<B>) -> T) -> (T, TransferStats) {
    let before = p.backend().transfer_stats();
    let out = run(p);
    (out, p.backend().transfer_stats().since(&before))
}

fn report(id: &str, what: &str, resident: &TransferStats, stock: &TransferStats) {
    for (path, s) in [("resident", resident), ("stock", stock)] {
        println!(
            "{id} {what} {path}: to device {} B in {} copies ({} B tables), back {} B in {} \
             copies, {} waits, {} launches",
            s.host_to_device_bytes,
            s.host_to_device_copies,
            s.table_bytes,
            s.device_to_host_bytes,
            s.device_to_host_copies,
            s.sync_waits,
            s.kernel_launches
        );
    }
}

#[cfg(feature = "opencl")]
#[test]
fn opencl_resident_proofs_are_the_cpu_stock_proofs() {
    check_device(|| proofbox_backend_opencl::OpenclBackend::open(0));
}

#[cfg(feature = "opencl")]
#[test]
fn opencl_keeps_the_quotient_on_the_device() {
    quotient_stage_moves_only_its_root(|| proofbox_backend_opencl::OpenclBackend::open(0));
}

#[cfg(feature = "opencl")]
#[test]
fn opencl_without_memory_for_a_matrix_falls_back_to_the_stock_path() {
    use proofbox_backend_opencl::OpenclBackend;
    let Some(b) = open_or_skip(OpenclBackend::open(0)) else {
        return;
    };
    proofbox_prover::install_panic_hook();
    // 16 KiB: Poseidon2's trace is hundreds of columns wide, so its extension does not
    // fit whole (checked first); the stock path splits its calls into batches that do.
    b.set_memory_limit(Some(16 << 10));
    let req = request(CircuitId::Poseidon2, FieldId::KoalaBear);
    let fri = no_grinding();
    let trace = req.statement().trace::<KoalaBear>(fri.log_blowup as usize);
    assert!(matches!(
        b.lde_resident(trace, fri.log_blowup as usize, KoalaBear::GENERATOR),
        Err(BackendError::OutOfMemory { .. })
    ));
    let p = Prover::resident(b);
    let want = prove(&Prover::new(CpuBackend::new()), &req, fri);
    let got = p
        .prove_with_insecure_params(&req, fri, Arc::new(()))
        .expect("the stock path after the resident one ran out of memory");
    assert_eq!(got, want);
}

#[cfg(feature = "wgpu")]
#[test]
fn wgpu_resident_proofs_are_the_cpu_stock_proofs() {
    check_device(|| proofbox_backend_wgpu::WgpuBackend::open(0));
}

#[cfg(feature = "wgpu")]
#[test]
fn wgpu_keeps_the_quotient_on_the_device() {
    quotient_stage_moves_only_its_root(|| proofbox_backend_wgpu::WgpuBackend::open(0));
}

#[cfg(not(all(feature = "opencl", feature = "wgpu")))]
#[test]
fn device_backends_not_built() {
    proofbox_conformance::require_or_skip(
        proofbox_backend_api::BackendKind::Opencl,
        "resident device proofs",
        "a device backend is not built into this test binary",
    );
}
