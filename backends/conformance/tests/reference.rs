//! The CPU backend against implementations that share none of its code paths, and the
//! suite against [`FaultyBackend`], one fault at a time (a suite that cannot fail
//! proves nothing).

use p3_dft::{NaiveDft, Radix2Bowers, TwoAdicSubgroupDft};
use p3_field::{Field, PrimeCharacteristicRing};
use p3_matrix::Matrix;
use p3_matrix::bitrev::BitReversibleMatrix;
use p3_matrix::dense::RowMajorMatrix;
use p3_symmetric::{CryptographicHasher, PseudoCompressionFunction};
use std::time::Duration;

use proofbox_backend_api::{
    Backend, BackendError, BackendField, BackendKind, DeviceInfo, DeviceType, Digest, FieldId,
    KernelClock,
};
use proofbox_conformance::faulty::{Fault, FaultyBackend};
use proofbox_conformance::{
    BabyBear, CpuBackend, KoalaBear, check_kernel_timing, random_matrix, run_timing_check,
};

/// A scalar, single-threaded backend on Plonky3's Bowers DFT: an independent
/// implementation of the seam to run the suite's macro on.
struct ScalarBackend {
    info: DeviceInfo,
    clock: KernelClock,
    /// How kernel timing misbehaves, for the tests of the timing check.
    timing: Timing,
}

#[derive(Clone, Copy, PartialEq)]
enum Timing {
    Honest,
    /// Says it cannot measure kernel time.
    Unsupported,
    /// Reports a time even while timing is off.
    AlwaysOn,
}

impl ScalarBackend {
    fn new() -> Self {
        Self {
            info: DeviceInfo {
                id: "scalar:0".into(),
                backend: BackendKind::Cpu,
                name: "scalar reference".into(),
                vendor: "test".into(),
                device_type: DeviceType::Cpu,
                memory_bytes: 0,
                compute_units: 1,
                fields: FieldId::ALL.to_vec(),
                driver: None,
            },
            clock: KernelClock::new(),
            timing: Timing::Honest,
        }
    }
}

impl Backend for ScalarBackend {
    const KIND: BackendKind = BackendKind::Cpu;

    fn probe() -> Result<Vec<DeviceInfo>, BackendError> {
        Ok(vec![Self::new().info])
    }

    fn open(_ordinal: usize) -> Result<Self, BackendError> {
        Ok(Self::new())
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
        let _span = self.clock.span();
        Ok(Radix2Bowers
            .coset_lde_batch(mat, added_bits, shift)
            .bit_reverse_rows()
            .to_row_major_matrix())
    }

    fn hash_rows<F: BackendField>(
        &self,
        input: &[F],
        out: &mut [Digest<F>],
    ) -> Result<(), BackendError> {
        let _span = self.clock.span();
        let hasher = F::leaf_hasher();
        let len = input.len() / out.len().max(1);
        for (d, m) in out.iter_mut().zip(input.chunks_exact(len.max(1))) {
            *d = hasher.hash_slice(m);
        }
        Ok(())
    }

    fn compress_pairs<F: BackendField>(
        &self,
        input: &[[Digest<F>; 2]],
        out: &mut [Digest<F>],
    ) -> Result<(), BackendError> {
        let _span = self.clock.span();
        let c = F::node_compressor();
        for (d, p) in out.iter_mut().zip(input) {
            *d = c.compress(*p);
        }
        Ok(())
    }

    fn set_kernel_timing(&self, on: bool) -> bool {
        self.clock.set(on);
        self.timing != Timing::Unsupported
    }

    fn take_kernel_time(&self) -> Result<Option<Duration>, BackendError> {
        Ok(match self.timing {
            Timing::Honest => self.clock.take(),
            Timing::Unsupported => None,
            Timing::AlwaysOn => Some(self.clock.take().unwrap_or(Duration::from_millis(1))),
        })
    }
}

proofbox_conformance::backend_conformance_tests!(scalar_reference, ScalarBackend::open(0));

// The faulty backend's wrapper without a fault: the CPU backend, through the trait's
// provided Merkle methods, against the CPU backend and the stock `MerkleTreeMmcs`.
proofbox_conformance::backend_conformance_tests!(
    faultless_wrapper,
    Ok::<_, BackendError>(FaultyBackend::new(Fault::None))
);

fn cpu_matches_naive_dft<F: BackendField>() {
    let cpu = CpuBackend::new();
    for log_h in 0..=8 {
        for (width, added_bits) in [(1, 1), (3, 2), (8, 1)] {
            let input = random_matrix::<F>(log_h as u64, 1 << log_h, width);
            let shift = F::GENERATOR;
            let want = NaiveDft
                .coset_lde_batch(input.clone(), added_bits, shift)
                .bit_reverse_rows()
                .to_row_major_matrix();
            let got = cpu.coset_lde_batch(input, added_bits, shift).unwrap();
            assert_eq!(got.values, want.values, "{} 2^{log_h} x {width}", F::ID);
        }
    }
}

#[test]
fn cpu_lde_matches_naive_dft_koalabear() {
    cpu_matches_naive_dft::<KoalaBear>();
}

#[test]
fn cpu_lde_matches_naive_dft_babybear() {
    cpu_matches_naive_dft::<BabyBear>();
}

#[test]
fn cpu_measures_kernel_time() {
    run_timing_check(&CpuBackend::new());
}

#[test]
fn kernel_timing_check_catches_missing_or_false_times() {
    let mut b = ScalarBackend::new();
    b.timing = Timing::Unsupported;
    let e = check_kernel_timing::<_, KoalaBear>(&b).unwrap_err();
    assert!(e.0.contains("does not measure"), "{}", e.0);
    b.timing = Timing::AlwaysOn;
    let e = check_kernel_timing::<_, KoalaBear>(&b).unwrap_err();
    assert!(e.0.contains("while timing is off"), "{}", e.0);
    let bad = FaultyBackend::new(Fault::Lde);
    let e = check_kernel_timing::<_, KoalaBear>(&bad).unwrap_err();
    assert!(e.0.contains("first difference"), "{}", e.0);
}

#[test]
fn invalid_shapes_are_refused_not_attempted() {
    let cpu = CpuBackend::new();
    let odd = RowMajorMatrix::new(vec![KoalaBear::ONE; 3], 1);
    assert!(matches!(
        cpu.coset_lde_batch(odd.clone(), 1, KoalaBear::GENERATOR),
        Err(BackendError::InvalidInput(_))
    ));
    assert!(matches!(
        cpu.merkle_tree(&[&odd]),
        Err(BackendError::InvalidInput(_))
    ));
    let huge = RowMajorMatrix::new(vec![KoalaBear::ONE; 2], 1);
    assert!(matches!(
        cpu.coset_lde_batch(huge, 40, KoalaBear::GENERATOR),
        Err(BackendError::InvalidInput(_))
    ));
    let mut out = vec![[KoalaBear::ZERO; 8]; 3];
    assert!(cpu.hash_rows(&[KoalaBear::ONE; 10], &mut out).is_err());
}
