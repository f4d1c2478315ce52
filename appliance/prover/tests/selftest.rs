//! Devices prove themselves first: the self-test passes on correct backends, fails on
//! each fault of the conformance suite's faulty backend naming the kernel and what
//! differed, and `auto` never picks a device that fails it.

use std::sync::Arc;

use proofbox_backend_api::{BackendError, BackendKind, DeviceInfo, FieldId};
use proofbox_backend_cpu::CpuBackend;
use proofbox_conformance::faulty::{Fault, FaultyBackend};
use proofbox_conformance::require_or_skip;
use proofbox_prover::registry::{self, Candidate, first_trusted};
use proofbox_prover::selftest::{self, ADDED_BITS, Kernel, LOG_ROWS, WIDTH};
use proofbox_prover::transition::TransitionInput;
use proofbox_prover::{
    BackendChoice, DynProver, FriPreset, ProofArtifact, ProofRequest, ProveError, Prover,
    SelfTestError,
};

fn faulty(fault: Fault) -> Prover<FaultyBackend> {
    Prover::new(FaultyBackend::new(fault))
}

#[test]
fn the_cpu_backend_passes_in_every_field() {
    let report = Prover::new(CpuBackend::new()).self_test().unwrap();
    assert_eq!(report.device, "cpu:0");
    assert_eq!(report.fields, FieldId::ALL);
    // The wrapper without a fault passes too: what fails below is the fault.
    faulty(Fault::None).self_test().unwrap();
}

#[test]
fn every_fault_fails_the_self_test_naming_the_kernel() {
    for fault in Fault::ALL {
        let err = faulty(fault).self_test().unwrap_err();
        let kernel = err.kernel().map(Kernel::name);
        assert_eq!(kernel, fault.kernel(), "fault {fault}: {err}");
        let m = err.to_string();
        assert!(m.contains("faulty:0"), "{m}");
        assert!(m.contains(fault.kernel().unwrap()), "{m}");
        // The device's first field is tested first.
        assert!(m.contains("koalabear"), "{m}");
    }
}

#[test]
fn a_mismatch_says_where_and_what_differed() {
    let rows = 1 << (LOG_ROWS + ADDED_BITS);
    let expect = |fault, kernel, part: &str, index| match faulty(fault).self_test() {
        Err(SelfTestError::Mismatch {
            device,
            field,
            kernel: k,
            part: p,
            index: i,
            got,
            expected,
        }) => {
            assert_eq!(
                (device.as_str(), field, k, p.as_str(), i),
                ("faulty:0", FieldId::KoalaBear, kernel, part, index),
                "fault {fault}"
            );
            assert_ne!(got, expected);
            // One element of an extension, or the eight of a digest.
            let len = if kernel == Kernel::CosetLde { 1 } else { 8 };
            assert_eq!((got.len(), expected.len()), (len, len));
        }
        other => panic!("fault {fault}: {other:?}"),
    };
    // Each fault changes the last value of its result (see `Fault`).
    let generator = format!(
        "shift generator ({})",
        selftest::lde_shifts::<proofbox_conformance::KoalaBear>()[0].1
    );
    expect(Fault::Lde, Kernel::CosetLde, &generator, rows * WIDTH - 1);
    let one = "shift one (1)";
    expect(Fault::LdeFixedShift, Kernel::CosetLde, one, 0);
    expect(
        Fault::HashRows,
        Kernel::HashRows,
        "extension rows",
        rows - 1,
    );
    expect(
        Fault::CompressPairs,
        Kernel::CompressPairs,
        "pairs of leaf digests",
        rows / 2 - 1,
    );
    let layers = LOG_ROWS + ADDED_BITS + 1;
    let below_root = format!("layer {} of {layers}", layers - 2);
    expect(Fault::TreeLayer, Kernel::MerkleTree, &below_root, 1);
}

#[test]
fn a_backend_error_fails_the_self_test() {
    let err = faulty(Fault::DeviceLost).self_test().unwrap_err();
    assert!(
        matches!(
            &err,
            SelfTestError::Backend {
                kernel: Kernel::CompressPairs,
                source: BackendError::DeviceLost { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("device lost"), "{err}");
}

fn candidate<'a>(p: impl DynProver + 'static) -> Candidate<'a> {
    let kind = p.backend_kind();
    Candidate::new(kind, move || Ok(Box::new(p)))
}

/// A prover that implements only the required methods, hence no self-test.
struct Untested(Prover<CpuBackend>);

impl DynProver for Untested {
    fn backend_kind(&self) -> BackendKind {
        BackendKind::Cpu
    }
    fn device(&self) -> &DeviceInfo {
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
fn auto_passes_over_devices_that_fail_their_self_test() {
    let unavailable = Candidate::new(BackendKind::Cuda, || {
        Err(BackendError::Unavailable {
            backend: BackendKind::Cuda,
            reason: "no driver".into(),
        })
    });
    let picked = first_trusted([
        unavailable,
        candidate(faulty(Fault::CompressPairs)),
        candidate(faulty(Fault::TreeLayer)),
        candidate(Untested(Prover::new(CpuBackend::new()))),
        candidate(faulty(Fault::DeviceLost)),
        candidate(Prover::new(CpuBackend::new())),
        candidate(faulty(Fault::None)),
    ])
    .unwrap();
    assert_eq!(picked.device().id, "cpu:0");
    picked.self_test().unwrap();
}

#[test]
fn auto_with_no_trusted_device_says_what_failed_last() {
    let err = first_trusted([candidate(faulty(Fault::TreeLayer))])
        .err()
        .unwrap();
    match &err {
        BackendError::Kernel {
            device,
            kernel,
            message,
        } => {
            assert_eq!(
                (device.as_str(), kernel.as_str()),
                ("faulty:0", "merkle_tree")
            );
            assert!(message.contains("layer"), "{message}");
        }
        other => panic!("{other}"),
    }
    // A backend error is passed on as it is.
    let err = first_trusted([candidate(faulty(Fault::DeviceLost))])
        .err()
        .unwrap();
    assert!(matches!(err, BackendError::DeviceLost { .. }), "{err}");
    let err = first_trusted([candidate(Untested(Prover::new(CpuBackend::new())))])
        .err()
        .unwrap();
    assert!(err.to_string().contains("no self-test"), "{err}");
    assert!(first_trusted([]).is_err());
}

#[test]
fn auto_opens_a_device_that_passed() {
    let p = registry::open(BackendChoice::Auto, None).unwrap();
    p.self_test().unwrap();
}

/// The self-test on the first device of `kind`, or a skip line where it has none.
fn device_passes(kind: BackendKind) {
    match registry::open(BackendChoice::Kind(kind), None) {
        Ok(p) => {
            let report = p.self_test().unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(report.fields, p.device().fields);
            println!(
                "{}: self-test passed in {:?}",
                report.device, report.duration
            );
        }
        Err(e) => require_or_skip(kind, format_args!("{kind} self-test"), e),
    }
}

#[test]
fn opencl_devices_pass() {
    device_passes(BackendKind::Opencl);
}

#[test]
fn wgpu_devices_pass() {
    device_passes(BackendKind::Wgpu);
}

#[test]
fn cuda_devices_pass() {
    device_passes(BackendKind::Cuda);
}
