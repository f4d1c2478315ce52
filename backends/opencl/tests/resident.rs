//! The resident conformance suite on the first OpenCL device (PoCL's CPU device in
//! CI), and resident calls against a lowered memory limit. Without an OpenCL platform
//! the tests print `skipped: ...`; `PROOFBOX_REQUIRE_OPENCL=1` makes that a failure.

use p3_koala_bear::KoalaBear;
use proofbox_backend_api::{Backend, BackendError, ResidentBackend, ResidentMatrix};
use proofbox_backend_cpu::CpuBackend;
use proofbox_backend_opencl::OpenclBackend;
use proofbox_conformance::{open_or_skip, random_matrix};

proofbox_conformance::resident_conformance_tests!(opencl, OpenclBackend::open(0));
proofbox_conformance::kept_quotient_conformance_tests!(opencl_kept, OpenclBackend::open(0));

#[test]
fn resident_calls_that_do_not_fit_are_out_of_memory_and_lose_nothing() {
    let Some(b) = open_or_skip(OpenclBackend::open(0)) else {
        return;
    };
    let cpu = CpuBackend::new();
    // 64 KiB: 16 Ki words. An LDE of 2^10 x 24 needs far more; a matrix of 2^12 x 1
    // fits, its tree (2^13 - 1 digests of 8 words) does not.
    b.set_memory_limit(Some(64 << 10));
    let wide = random_matrix::<KoalaBear>(3, 1 << 10, 24);
    assert!(matches!(
        b.lde_resident(wide, 1, KoalaBear::new(3)),
        Err(BackendError::OutOfMemory { .. })
    ));
    let tall = random_matrix::<KoalaBear>(4, 1 << 12, 1);
    let mut m = b.upload_matrix(tall.clone()).unwrap();
    assert!(matches!(
        b.commit(&mut m),
        Err(BackendError::OutOfMemory { .. })
    ));
    assert!(!m.has_tree());
    // The matrix is still there, and commits once the limit is lifted.
    b.set_memory_limit(None);
    assert_eq!(b.read_rows(&m, &[4095]).unwrap()[0], tall.values[4095..]);
    let root = b.commit(&mut m).unwrap();
    let want = cpu.merkle_tree(&[&tall]).unwrap();
    assert_eq!(Some(root), proofbox_backend_api::merkle_root(&want));
}
