//! The ProofBox vendor benchmark suite (`proofbox bench`).
//!
//! Fixed, versioned workloads ([`workload`]: coset LDE and Poseidon2 Merkle commit
//! kernels, whole proofs of the benchmark circuits, state-tree updates) run on every
//! device of the chosen backends, so that figures from different machines compare.
//!
//! Method ([`runner`]): inputs are drawn from a recorded seed; each workload runs
//! warm-up calls, then timed repetitions (min, median, max); **every output is
//! checked**: kernel outputs bit for bit against the CPU backend, every proof with
//! stock Plonky3's verifier, state roots against a single-threaded recomputation. A
//! wrong result is a failed measurement with no time recorded, never a speed. A
//! workload that would not fit in host or device memory is skipped with the reason.
//!
//! Device-only time: the runner turns every device's kernel timing on
//! (`Backend::set_kernel_timing`) and reads it around every call
//! (`Backend::take_kernel_time`): OpenCL profiling events, wgpu timestamp queries, CUDA
//! events, host spans on the CPU backend. A device without a timer reports
//! `device_time: null`, never an estimate.
//!
//! Outputs ([`output`]): `results.json` (the [`Report`], schema in
//! `docs/benchmarking.schema.json`), `results.csv` (one row per measurement),
//! `summary.md`, and SVG charts (throughput against size per device, speed-up against
//! the CPU backend). [`compare`] puts several reports side by side.
//!
//! `docs/benchmarking.md` is the user's guide.

pub mod chart;
pub mod compare;
pub mod device;
pub mod env;
mod error;
pub mod inputs;
pub mod output;
pub mod report;
pub mod runner;
pub mod workload;

pub use device::{BenchDevice, Opened, SkippedBackend, open_devices};
pub use error::BenchError;
pub use report::{Measurement, Report, SCHEMA, SCHEMA_VERSION, Status};
pub use runner::{Event, Observer, RunConfig, run, run_until};
pub use workload::{SUITE_VERSION, Suite, Workload};
