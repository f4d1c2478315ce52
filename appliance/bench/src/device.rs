//! The devices a run measures, behind one object-safe trait, and how they are opened.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use p3_baby_bear::BabyBear;
use p3_koala_bear::KoalaBear;
use p3_matrix::dense::RowMajorMatrix;
use proofbox_backend_api::{
    Backend, BackendError, BackendField, BackendKind, DeviceInfo, Digest, FieldId, TransferStats,
};
use proofbox_prover::transition::TransitionInput;
use proofbox_prover::{ProofArtifact, ProofRequest, ProveError, Prover};
use serde::{Deserialize, Serialize};

use crate::workload::{KernelOp, LDE_ADDED_BITS};

/// A matrix over one of the two fields.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldMatrix {
    KoalaBear(RowMajorMatrix<KoalaBear>),
    BabyBear(RowMajorMatrix<BabyBear>),
}

impl FieldMatrix {
    pub fn field(&self) -> FieldId {
        match self {
            Self::KoalaBear(_) => FieldId::KoalaBear,
            Self::BabyBear(_) => FieldId::BabyBear,
        }
    }
}

/// What one kernel call returned, in one field.
#[derive(Debug, Clone, PartialEq)]
pub struct Output<F> {
    /// The extension (bit-reversed rows), for `lde` and `lde-commit`.
    pub lde: Option<RowMajorMatrix<F>>,
    /// Every digest layer of the tree, leaves first, for `commit` and `lde-commit`.
    pub layers: Option<Vec<Vec<Digest<F>>>>,
}

/// What one kernel call returned.
#[derive(Debug, Clone, PartialEq)]
pub enum KernelOutput {
    KoalaBear(Output<KoalaBear>),
    BabyBear(Output<BabyBear>),
}

/// A device the suite measures: a backend's kernels and a prover on it.
///
/// Implemented for every [`Prover<B>`]; tests wrap backends (a deliberately faulty
/// one, for instance) the same way.
pub trait BenchDevice: Send + Sync {
    fn kind(&self) -> BackendKind;

    fn info(&self) -> &DeviceInfo;

    /// Runs one kernel call on a copy of `input`, timing the call alone (the copy
    /// is made before the clock starts): upload, kernels and readback, end to end.
    fn kernel(
        &self,
        op: KernelOp,
        input: &FieldMatrix,
    ) -> Result<(Duration, KernelOutput), BackendError>;

    /// Proves `req` on this device.
    fn prove(&self, req: &ProofRequest) -> Result<ProofArtifact, ProveError>;

    /// Proves a state transition (witnesses already built, one input per chunk:
    /// `TransitionInput::build_chunks`), end to end: one chained proof per chunk.
    fn prove_transition(
        &self,
        chunks: &[TransitionInput],
    ) -> Result<proofbox_prover::transition::TransitionProof, ProveError>;

    /// The backend's transfer counters so far ([`Backend::transfer_stats`]): bytes and
    /// copies each way, waits for the device, kernel launches. All zeros on the CPU
    /// backend, whose data never leaves host memory.
    fn transfer_stats(&self) -> TransferStats;

    /// Turns the backend's kernel timing on or off
    /// ([`Backend::set_kernel_timing`]); whether the device measures it.
    fn set_kernel_timing(&self, on: bool) -> bool;

    /// Kernel time on the device since the last call ([`Backend::take_kernel_time`]).
    fn take_kernel_time(&self) -> Result<Option<Duration>, BackendError>;

    /// What the device's API says about it beyond [`DeviceInfo`] (wgpu: the adapter's
    /// graphics backend and driver).
    fn api_info(&self) -> BTreeMap<String, String>;
}

fn run_kernel<B: Backend, F: BackendField>(
    backend: &B,
    op: KernelOp,
    input: &RowMajorMatrix<F>,
) -> Result<(Duration, Output<F>), BackendError> {
    let shift = F::GENERATOR;
    match op {
        KernelOp::Lde => {
            let m = input.clone();
            let start = Instant::now();
            let lde = backend.coset_lde_batch(m, LDE_ADDED_BITS, shift)?;
            let t = start.elapsed();
            Ok((
                t,
                Output {
                    lde: Some(lde),
                    layers: None,
                },
            ))
        }
        KernelOp::Commit => {
            let start = Instant::now();
            let layers = backend.merkle_tree(&[input])?;
            let t = start.elapsed();
            Ok((
                t,
                Output {
                    lde: None,
                    layers: Some(layers),
                },
            ))
        }
        KernelOp::LdeCommit => {
            let m = input.clone();
            let start = Instant::now();
            let (lde, layers) = backend.lde_and_merkle_tree(m, LDE_ADDED_BITS, shift)?;
            let t = start.elapsed();
            Ok((
                t,
                Output {
                    lde: Some(lde),
                    layers: Some(layers),
                },
            ))
        }
    }
}

/// Runs one kernel call on any backend (the runner's reference uses this on the CPU
/// backend).
pub fn kernel_on<B: Backend>(
    backend: &B,
    op: KernelOp,
    input: &FieldMatrix,
) -> Result<(Duration, KernelOutput), BackendError> {
    Ok(match input {
        FieldMatrix::KoalaBear(m) => {
            let (t, o) = run_kernel(backend, op, m)?;
            (t, KernelOutput::KoalaBear(o))
        }
        FieldMatrix::BabyBear(m) => {
            let (t, o) = run_kernel(backend, op, m)?;
            (t, KernelOutput::BabyBear(o))
        }
    })
}

impl<B: Backend> BenchDevice for Prover<B> {
    fn kind(&self) -> BackendKind {
        B::KIND
    }

    fn info(&self) -> &DeviceInfo {
        self.backend().device()
    }

    fn kernel(
        &self,
        op: KernelOp,
        input: &FieldMatrix,
    ) -> Result<(Duration, KernelOutput), BackendError> {
        kernel_on(self.backend(), op, input)
    }

    fn prove(&self, req: &ProofRequest) -> Result<ProofArtifact, ProveError> {
        Prover::prove(self, req, Arc::new(()))
    }

    fn prove_transition(
        &self,
        chunks: &[TransitionInput],
    ) -> Result<proofbox_prover::transition::TransitionProof, ProveError> {
        Prover::prove_transition_chunks(self, chunks, crate::workload::PROOF_FRI, Arc::new(()))
    }

    fn transfer_stats(&self) -> TransferStats {
        self.backend().transfer_stats()
    }

    fn set_kernel_timing(&self, on: bool) -> bool {
        self.backend().set_kernel_timing(on)
    }

    fn take_kernel_time(&self) -> Result<Option<Duration>, BackendError> {
        self.backend().take_kernel_time()
    }

    fn api_info(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        #[cfg(feature = "wgpu")]
        if let Some(w) =
            (self.backend() as &dyn Any).downcast_ref::<proofbox_backend_wgpu::WgpuBackend>()
        {
            let a = w.adapter_info();
            out.insert("wgpu_backend".into(), format!("{:?}", a.backend));
            out.insert("wgpu_device_type".into(), format!("{:?}", a.device_type));
            out.insert("wgpu_driver".into(), a.driver.clone());
            out.insert("wgpu_driver_info".into(), a.driver_info.clone());
        }
        out
    }
}

/// A backend (or device) that a run does not measure, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedBackend {
    pub backend: BackendKind,
    /// The device, when one device of an available backend was left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    pub reason: String,
}

/// The devices opened for a run, and the backends left out.
pub struct Opened {
    pub devices: Vec<Box<dyn BenchDevice>>,
    pub skipped: Vec<SkippedBackend>,
}

fn open_one(kind: BackendKind, ordinal: usize) -> Result<Box<dyn BenchDevice>, BackendError> {
    match kind {
        BackendKind::Cpu => Ok(Box::new(Prover::new(
            proofbox_backend_cpu::CpuBackend::open(ordinal)?,
        ))),
        #[cfg(feature = "wgpu")]
        BackendKind::Wgpu => Ok(Box::new(Prover::resident(
            proofbox_backend_wgpu::WgpuBackend::open(ordinal)?,
        ))),
        #[cfg(feature = "cuda")]
        BackendKind::Cuda => Ok(Box::new(Prover::resident(
            proofbox_backend_cuda::CudaBackend::open(ordinal)?,
        ))),
        #[cfg(feature = "opencl")]
        BackendKind::Opencl => Ok(Box::new(Prover::resident(
            proofbox_backend_opencl::OpenclBackend::open(ordinal)?,
        ))),
        #[allow(unreachable_patterns)]
        other => Err(BackendError::Unavailable {
            backend: other,
            reason: "not built into this binary".into(),
        }),
    }
}

/// Opens every device of the chosen backends (CPU first, then the order of
/// [`BackendKind::ALL`]); with `only_devices` non-empty, just the devices with those
/// ids. A backend that cannot run here is skipped with its reason, never an error.
pub fn open_devices(kinds: &[BackendKind], only_devices: &[String]) -> Opened {
    let mut devices: Vec<Box<dyn BenchDevice>> = Vec::new();
    let mut skipped = Vec::new();
    let mut order: Vec<BackendKind> = kinds.to_vec();
    order.sort_by_key(|k| {
        (
            *k != BackendKind::Cpu,
            BackendKind::ALL.iter().position(|a| a == k),
        )
    });
    order.dedup();
    for kind in order {
        let report = proofbox_prover::registry::report(kind);
        if !report.available {
            skipped.push(SkippedBackend {
                backend: kind,
                device: None,
                reason: report.reason.unwrap_or_else(|| "unavailable".into()),
            });
            continue;
        }
        let wanted: Vec<(usize, &DeviceInfo)> = report
            .devices
            .iter()
            .enumerate()
            .filter(|(_, d)| only_devices.is_empty() || only_devices.contains(&d.id))
            .collect();
        if wanted.is_empty() {
            skipped.push(SkippedBackend {
                backend: kind,
                device: None,
                reason: format!(
                    "none of its devices ({}) was chosen with --device",
                    report
                        .devices
                        .iter()
                        .map(|d| d.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
            continue;
        }
        for (ordinal, info) in wanted {
            match open_one(kind, ordinal) {
                Ok(d) => devices.push(d),
                Err(e) => skipped.push(SkippedBackend {
                    backend: kind,
                    device: Some(info.id.clone()),
                    reason: format!("could not be opened: {e}"),
                }),
            }
        }
    }
    Opened { devices, skipped }
}

/// Device ids given with `--device` that no chosen backend has.
pub fn unknown_devices(kinds: &[BackendKind], only_devices: &[String]) -> Vec<String> {
    only_devices
        .iter()
        .filter(|id| {
            let kind = id
                .split(':')
                .next()
                .and_then(|k| k.parse::<BackendKind>().ok());
            !kind.is_some_and(|k| kinds.contains(&k))
        })
        .cloned()
        .collect()
}
