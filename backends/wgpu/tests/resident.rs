//! The resident conformance suite on `wgpu:0` (Mesa lavapipe in CI). Without an
//! adapter the tests print `skipped: ...`; `PROOFBOX_REQUIRE_WGPU=1` makes that a
//! failure.

use proofbox_backend_api::Backend;
use proofbox_backend_wgpu::WgpuBackend;

proofbox_conformance::resident_conformance_tests!(wgpu_backend, WgpuBackend::open(0));
proofbox_conformance::kept_quotient_conformance_tests!(wgpu_kept, WgpuBackend::open(0));
