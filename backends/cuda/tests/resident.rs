//! The resident conformance suites (`resident_conformance_tests!`,
//! `kept_quotient_conformance_tests!`) on the first CUDA
//! device. Without an NVIDIA driver and GPU the tests print `skipped: ...`;
//! `PROOFBOX_REQUIRE_CUDA=1` makes that a failure.

use proofbox_backend_api::Backend;
use proofbox_backend_cuda::CudaBackend;

proofbox_conformance::resident_conformance_tests!(cuda, CudaBackend::open(0));
proofbox_conformance::kept_quotient_conformance_tests!(cuda_kept, CudaBackend::open(0));
