//! The resident conformance suite on the CPU backend: its values against the CPU
//! backend's own non-resident calls and its opening reduction against the direct
//! evaluation of the definition ([`proofbox_conformance::resident::reference_reduction`]).

use proofbox_backend_api::Backend;
use proofbox_conformance::CpuBackend;

proofbox_conformance::resident_conformance_tests!(cpu, CpuBackend::open(0));
