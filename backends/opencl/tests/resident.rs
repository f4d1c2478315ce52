//! The resident conformance suite on the first OpenCL device (PoCL's CPU device in
//! CI). Without an OpenCL platform the tests print `skipped: ...`;
//! `PROOFBOX_REQUIRE_OPENCL=1` makes that a failure.

use proofbox_backend_api::Backend;
use proofbox_backend_opencl::OpenclBackend;

proofbox_conformance::resident_conformance_tests!(opencl, OpenclBackend::open(0));
