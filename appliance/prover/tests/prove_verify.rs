//! Prove/verify round trips, tampering, stock-Plonky3 equivalence, and backend
//! failures. Run in release: `cargo test --release`.

use std::sync::{Arc, Mutex};

use p3_matrix::dense::RowMajorMatrix;
use p3_uni_stark::Proof;
use proofbox_backend_api::{Backend, BackendError, BackendField, BackendKind, DeviceInfo, Digest};
use proofbox_backend_cpu::CpuBackend;
use proofbox_prover::config::{FriPreset, stock};
use proofbox_prover::{
    ArtifactError, BackendChoice, CircuitField, CircuitId, FieldId, ProofArtifact, ProofRequest,
    ProveError, Prover, Stage, VerifyError, registry, verify, verify_bytes,
};

fn request(circuit: CircuitId, field: FieldId) -> ProofRequest {
    let mut r = ProofRequest::new(circuit, circuit.min_log_rows());
    r.field = field;
    r.seed = 42;
    if circuit.input_bytes_per_instance() > 0 {
        r.input = b"proofbox".to_vec();
    }
    r
}

fn prove_cpu(req: &ProofRequest) -> ProofArtifact {
    Prover::new(CpuBackend::new())
        .prove(req, Arc::new(()))
        .expect("proof")
}

#[test]
fn every_circuit_and_field_round_trips() {
    for circuit in CircuitId::ALL {
        for &field in circuit.fields() {
            let artifact = prove_cpu(&request(circuit, field));
            let bytes = artifact.to_bytes();
            let back = verify_bytes(&bytes).unwrap_or_else(|e| panic!("{circuit}/{field}: {e}"));
            assert_eq!(back, artifact);
        }
    }
}

#[test]
fn benchmark_preset_round_trips() {
    let mut req = request(CircuitId::Poseidon2, FieldId::KoalaBear);
    req.fri = FriPreset::Benchmark;
    let a = prove_cpu(&req);
    assert_eq!(a.fri, FriPreset::Benchmark.params());
    verify(&a).unwrap();
}

#[test]
fn tampered_proofs_are_rejected() {
    let artifact = prove_cpu(&request(CircuitId::Blake3, FieldId::KoalaBear));
    let bytes = artifact.to_bytes();

    // A flipped byte anywhere in the Plonky3 proof.
    let proof_start = bytes.len() - artifact.proof.len();
    for offset in [
        0,
        artifact.proof.len() / 3,
        artifact.proof.len() / 2,
        artifact.proof.len() - 1,
    ] {
        let mut bad = bytes.clone();
        bad[proof_start + offset] ^= 0x01;
        assert!(
            verify_bytes(&bad).is_err(),
            "flipped proof byte {offset} accepted"
        );
    }

    // An altered public value: caught against the statement...
    let mut bad = artifact.clone();
    bad.public_values[0] = (bad.public_values[0] + 1) % FieldId::KoalaBear.modulus();
    assert!(matches!(verify(&bad), Err(VerifyError::StatementMismatch)));
    // ...and by the Plonky3 verifier itself, which never saw those values.
    let pv: Vec<p3_koala_bear::KoalaBear> = proofbox_prover::public_values(&bad);
    let config = stock::config::<p3_koala_bear::KoalaBear>(&bad.fri);
    let air = proofbox_prover::circuits::WithStatement(p3_blake3_air::Blake3Air {});
    assert!(matches!(
        proofbox_prover::verify_air(&config, &air, &bad, &pv),
        Err(VerifyError::Rejected(_))
    ));

    // A different seed or input: the statement no longer matches.
    let mut bad = artifact.clone();
    bad.seed += 1;
    assert!(matches!(verify(&bad), Err(VerifyError::StatementMismatch)));

    // The wrong circuit (with public values recomputed so only the AIR differs).
    let mut bad = artifact.clone();
    bad.circuit = CircuitId::Poseidon2;
    bad.log_rows = artifact.log_rows;
    let digest: Digest<p3_koala_bear::KoalaBear> = bad.statement().digest();
    bad.public_values = digest
        .iter()
        .map(p3_field::PrimeField32::as_canonical_u32)
        .collect();
    let err = verify(&bad).unwrap_err();
    assert!(
        matches!(err, VerifyError::Rejected(_) | VerifyError::Artifact(_)),
        "{err}"
    );

    // The wrong field.
    let mut bad = artifact.clone();
    bad.field = FieldId::BabyBear;
    assert!(verify(&bad).is_err());

    // A claimed size the proof is not for.
    let mut bad = artifact.clone();
    bad.log_rows += 1;
    let digest: Digest<p3_koala_bear::KoalaBear> = bad.statement().digest();
    bad.public_values = digest
        .iter()
        .map(p3_field::PrimeField32::as_canonical_u32)
        .collect();
    assert!(matches!(
        verify(&bad),
        Err(VerifyError::DegreeMismatch { .. })
    ));

    // Framing.
    assert!(matches!(
        verify_bytes(b"hello"),
        Err(VerifyError::Artifact(ArtifactError::NotAProof))
    ));
    let mut bad = bytes.clone();
    bad[8] = 9;
    assert!(matches!(
        verify_bytes(&bad),
        Err(VerifyError::Artifact(ArtifactError::UnsupportedVersion {
            found: 9,
            ..
        }))
    ));
    assert!(matches!(
        verify_bytes(&bytes[..bytes.len() - 10]),
        Err(VerifyError::Artifact(ArtifactError::Malformed(_)))
    ));
    let mut bad = bytes.clone();
    bad.push(0);
    assert!(matches!(
        verify_bytes(&bad),
        Err(VerifyError::Artifact(ArtifactError::Malformed(_)))
    ));
}

/// Our adapters produce the same commitments as stock Plonky3 on the same trace.
macro_rules! same_commitments_as_stock {
    ($name:ident, $field:ty) => {
        #[test]
        fn $name() {
            type F = $field;
            let req = {
                let mut r = request(CircuitId::Poseidon2, <F as BackendField>::ID);
                r.log_rows = 5;
                r
            };
            let ours = prove_cpu(&req);
            let ours: Proof<stock::Config<F>> = postcard::from_bytes(&ours.proof).unwrap();

            let statement = req.statement();
            let fri = req.fri.params();
            let trace: RowMajorMatrix<F> = statement.trace(fri.log_blowup as usize);
            let public_values = statement.digest::<F>();
            let config = stock::config::<F>(&fri);
            let theirs = p3_uni_stark::prove(
                &config,
                &<F as CircuitField>::poseidon2_air(),
                trace,
                &public_values,
            )
            .unwrap();

            let enc = |x: &dyn erased::Ser| x.bytes();
            assert_eq!(
                enc(&ours.commitments.trace),
                enc(&theirs.commitments.trace),
                "trace commitment"
            );
            assert_eq!(
                enc(&ours.commitments.quotient_chunks),
                enc(&theirs.commitments.quotient_chunks),
                "quotient commitment"
            );
            assert_eq!(
                ours.opened_values.trace_local,
                theirs.opened_values.trace_local
            );
        }
    };
}

mod erased {
    pub trait Ser {
        fn bytes(&self) -> Vec<u8>;
    }
    impl<T: serde::Serialize> Ser for T {
        fn bytes(&self) -> Vec<u8> {
            postcard::to_allocvec(self).unwrap()
        }
    }
}

same_commitments_as_stock!(
    same_commitments_as_stock_plonky3_koalabear,
    p3_koala_bear::KoalaBear
);
same_commitments_as_stock!(
    same_commitments_as_stock_plonky3_babybear,
    p3_baby_bear::BabyBear
);

#[test]
fn stages_are_reported_in_order() {
    let stages = Arc::new(Mutex::new(Vec::new()));
    let sink = stages.clone();
    let progress = move |s: Stage| sink.lock().unwrap().push(s);
    Prover::new(CpuBackend::new())
        .prove(
            &request(CircuitId::Keccak, FieldId::KoalaBear),
            Arc::new(progress),
        )
        .unwrap();
    assert_eq!(
        *stages.lock().unwrap(),
        vec![
            Stage::Trace,
            Stage::Commit,
            Stage::Quotient,
            Stage::Open,
            Stage::Finish
        ]
    );
}

/// A device that disappears after a number of kernel calls.
struct VanishingBackend {
    inner: CpuBackend,
    info: DeviceInfo,
    calls_left: Mutex<usize>,
}

impl VanishingBackend {
    fn new(calls: usize) -> Self {
        let inner = CpuBackend::new();
        let mut info = inner.device().clone();
        info.id = "vanishing:0".into();
        Self {
            inner,
            info,
            calls_left: Mutex::new(calls),
        }
    }

    fn tick(&self) -> Result<(), BackendError> {
        let mut left = self.calls_left.lock().unwrap();
        if *left == 0 {
            return Err(BackendError::DeviceLost {
                device: self.info.id.clone(),
                reason: "device removed".into(),
            });
        }
        *left -= 1;
        Ok(())
    }
}

impl Backend for VanishingBackend {
    const KIND: BackendKind = BackendKind::Cpu;
    fn probe() -> Result<Vec<DeviceInfo>, BackendError> {
        Ok(vec![Self::new(0).info])
    }
    fn open(_: usize) -> Result<Self, BackendError> {
        Ok(Self::new(0))
    }
    fn device(&self) -> &DeviceInfo {
        &self.info
    }
    fn coset_lde_batch<F: BackendField>(
        &self,
        mat: RowMajorMatrix<F>,
        added_bits: usize,
        shift: F,
    ) -> Result<RowMajorMatrix<F>, BackendError> {
        self.tick()?;
        self.inner.coset_lde_batch(mat, added_bits, shift)
    }
    fn hash_rows<F: BackendField>(
        &self,
        input: &[F],
        out: &mut [Digest<F>],
    ) -> Result<(), BackendError> {
        self.tick()?;
        self.inner.hash_rows(input, out)
    }
    fn compress_pairs<F: BackendField>(
        &self,
        input: &[[Digest<F>; 2]],
        out: &mut [Digest<F>],
    ) -> Result<(), BackendError> {
        self.tick()?;
        self.inner.compress_pairs(input, out)
    }
}

#[test]
fn a_vanishing_device_fails_the_job_not_the_process() {
    proofbox_prover::install_panic_hook();
    // A whole proof at this size makes under 30 kernel calls: these fail it in the
    // LDE, in leaf hashing and in compression.
    for calls in [0, 1, 2, 5, 20] {
        let prover = Prover::new(VanishingBackend::new(calls));
        let err = prover
            .prove(&request(CircuitId::Blake3, FieldId::BabyBear), Arc::new(()))
            .unwrap_err();
        assert!(
            matches!(err, ProveError::Backend(BackendError::DeviceLost { .. })),
            "after {calls} calls: {err}"
        );
    }
    // The process and the CPU backend carry on.
    verify(&prove_cpu(&request(CircuitId::Blake3, FieldId::BabyBear))).unwrap();
}

#[test]
fn registry_proves_through_the_dyn_layer() {
    let prover = registry::open(BackendChoice::Auto, None).unwrap();
    assert_eq!(prover.backend_kind(), BackendKind::Cpu);
    let a = prover
        .prove(
            &request(CircuitId::Poseidon2, FieldId::BabyBear),
            Arc::new(()),
        )
        .unwrap();
    verify(&a).unwrap();
}

#[test]
fn invalid_requests_fail_before_work() {
    let mut r = request(CircuitId::Keccak, FieldId::KoalaBear);
    r.log_rows = 40;
    let err = Prover::new(CpuBackend::new())
        .prove(&r, Arc::new(()))
        .unwrap_err();
    assert!(err.to_string().contains("supported range 5..=20"), "{err}");
}

/// Every device backend built in and available here proves with the same
/// commitments as the CPU backend, and its proofs verify.
#[test]
fn device_backends_prove_with_cpu_commitments() {
    use proofbox_prover::registry;
    let mut req = request(CircuitId::Poseidon2, FieldId::KoalaBear);
    req.log_rows = 4;
    let cpu = prove_cpu(&req);
    let cpu_proof: Proof<stock::Config<p3_koala_bear::KoalaBear>> =
        postcard::from_bytes(&cpu.proof).unwrap();
    for kind in [BackendKind::Wgpu, BackendKind::Opencl, BackendKind::Cuda] {
        let report = registry::report(kind);
        if !report.available {
            let reason = report.reason.unwrap_or_default();
            let what = format_args!("{kind} full proofs");
            if reason == "not built into this binary" {
                proofbox_conformance::skip(format_args!("{what}: {reason}"));
            } else {
                proofbox_conformance::require_or_skip(kind, what, reason);
            }
            continue;
        }
        for device in &report.devices {
            for field in FieldId::ALL {
                let mut req = req.clone();
                req.field = field;
                let prover = registry::open(BackendChoice::Kind(kind), Some(&device.id)).unwrap();
                let a = prover
                    .prove(&req, Arc::new(()))
                    .unwrap_or_else(|e| panic!("{}: {e}", device.id));
                verify(&a).unwrap_or_else(|e| panic!("{}: {e}", device.id));
                if field == FieldId::KoalaBear {
                    let p: Proof<stock::Config<p3_koala_bear::KoalaBear>> =
                        postcard::from_bytes(&a.proof).unwrap();
                    let enc = |x: &dyn erased::Ser| x.bytes();
                    assert_eq!(
                        enc(&p.commitments.trace),
                        enc(&cpu_proof.commitments.trace),
                        "{}",
                        device.id
                    );
                    assert_eq!(
                        enc(&p.commitments.quotient_chunks),
                        enc(&cpu_proof.commitments.quotient_chunks),
                        "{}",
                        device.id
                    );
                }
            }
        }
    }
}

/// A program binary the OpenCL backend wrote for its device, loaded again through
/// `OpenOptions::opencl_binary` (the path an FPGA bitstream takes), proves with the
/// CPU backend's commitments.
#[cfg(feature = "opencl")]
#[test]
fn opencl_program_binaries_prove_like_source() {
    use proofbox_backend_opencl::OpenclBackend;
    use proofbox_prover::registry::{self, OpenOptions};
    let built = match OpenclBackend::open(0) {
        Ok(b) => b,
        Err(e) => {
            proofbox_conformance::require_or_skip(
                BackendKind::Opencl,
                "opencl program binaries",
                e,
            );
            return;
        }
    };
    let path =
        std::env::temp_dir().join(format!("proofbox-opencl-binary-{}.bin", std::process::id()));
    std::fs::write(&path, built.program_binary().unwrap()).unwrap();
    let options = OpenOptions {
        opencl_binary: Some(path.clone()),
    };
    let mut req = request(CircuitId::Poseidon2, FieldId::KoalaBear);
    req.log_rows = 4;
    let prover =
        registry::open_with(BackendChoice::Auto, Some(&built.device().id), &options).unwrap();
    assert_eq!(prover.backend_kind(), BackendKind::Opencl);
    let a = prover.prove(&req, Arc::new(())).unwrap();
    verify(&a).unwrap();
    let cpu = prove_cpu(&req);
    let commitments = |bytes: &[u8]| {
        let p: Proof<stock::Config<p3_koala_bear::KoalaBear>> =
            postcard::from_bytes(bytes).unwrap();
        let enc = |x: &dyn erased::Ser| x.bytes();
        (
            enc(&p.commitments.trace),
            enc(&p.commitments.quotient_chunks),
        )
    };
    assert_eq!(commitments(&a.proof), commitments(&cpu.proof));
    // A binary for another backend is refused before any work.
    let err = registry::open_with(BackendChoice::Kind(BackendKind::Cpu), None, &options)
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("applies to the opencl backend"),
        "{err}"
    );
    std::fs::remove_file(&path).unwrap();
}
