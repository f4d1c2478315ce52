//! Choosing a backend by name at run time: discovery across every backend compiled
//! into this build, and opening a prover on a named device. With `auto`, a device is
//! trusted only after it passes its self-test ([`crate::selftest`]).

use core::fmt;
use core::str::FromStr;
use std::path::PathBuf;

use proofbox_backend_api::{Backend, BackendError, BackendKind, BackendReport, DeviceType};
use proofbox_backend_cpu::CpuBackend;
use serde::{Deserialize, Serialize};

use crate::prover::{DynProver, Prover};

/// `auto` or one backend kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendChoice {
    /// The first backend in [`BackendKind::ALL`] order (accelerators first, the CPU
    /// last) with a device that is not a CPU driver of a device API and that passes
    /// its self-test ([`first_trusted`]).
    #[default]
    Auto,
    Kind(BackendKind),
}

impl fmt::Display for BackendChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Kind(k) => k.fmt(f),
        }
    }
}

impl FromStr for BackendChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("auto") {
            Ok(Self::Auto)
        } else {
            s.parse().map(Self::Kind)
        }
    }
}

fn not_built(kind: BackendKind) -> BackendError {
    BackendError::Unavailable {
        backend: kind,
        reason: "not built into this binary".into(),
    }
}

/// Discovery for one backend kind.
pub fn report(kind: BackendKind) -> BackendReport {
    let probe = match kind {
        BackendKind::Cpu => CpuBackend::probe(),
        #[cfg(feature = "wgpu")]
        BackendKind::Wgpu => proofbox_backend_wgpu::WgpuBackend::probe(),
        #[cfg(feature = "cuda")]
        BackendKind::Cuda => proofbox_backend_cuda::CudaBackend::probe(),
        #[cfg(feature = "opencl")]
        BackendKind::Opencl => proofbox_backend_opencl::OpenclBackend::probe(),
        // Reached for backends whose Cargo feature is off.
        #[allow(unreachable_patterns)]
        other => Err(not_built(other)),
    };
    BackendReport::from_probe(kind, probe)
}

/// Discovery for every backend kind, available or not.
pub fn reports() -> Vec<BackendReport> {
    BackendKind::ALL.into_iter().map(report).collect()
}

/// Opens a prover on backend `B`'s device; `prover` picks the path: the stock one
/// ([`Prover::new`]) for the CPU backend, the resident one ([`Prover::resident`]) for
/// the device backends.
fn open_kind<B: Backend>(
    device: Option<&str>,
    skip_emulated: bool,
    open: impl FnOnce(usize) -> Result<B, BackendError>,
    prover: fn(B) -> Prover<B>,
) -> Result<Box<dyn DynProver>, BackendError> {
    let devices = B::probe()?;
    let ordinal =
        match device {
            // `auto` wants real hardware: a device API's CPU driver (PoCL, lavapipe) is
            // slower than the CPU backend.
            None if skip_emulated => devices
                .iter()
                .position(|d| d.device_type != DeviceType::Cpu)
                .ok_or_else(|| BackendError::Unavailable {
                    backend: B::KIND,
                    reason: "only CPU-emulated devices".into(),
                })?,
            None => 0,
            Some(id) => devices.iter().position(|d| d.id == id).ok_or_else(|| {
                BackendError::UnknownDevice {
                    backend: B::KIND,
                    device: id.to_string(),
                    available: devices.len(),
                }
            })?,
        };
    if devices.is_empty() {
        return Err(BackendError::Unavailable {
            backend: B::KIND,
            reason: "no device found".into(),
        });
    }
    Ok(Box::new(prover(open(ordinal)?)))
}

/// How backends are opened, beyond the choice of backend and device.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenOptions {
    /// A precompiled OpenCL program binary (an Intel FPGA `.aocx`, an AMD/Xilinx
    /// `.xclbin`, or a binary the OpenCL backend wrote for the device) to load instead
    /// of compiling the kernels from source. It applies to the `opencl` backend only:
    /// with `auto` it selects `opencl`, with another backend it is an error, and a file
    /// that cannot be read is an error before any device is opened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opencl_binary: Option<PathBuf>,
}

/// Opens a prover on `choice`, on the device with id `device` (e.g. `cpu:0`) or the
/// backend's first device.
pub fn open(
    choice: BackendChoice,
    device: Option<&str>,
) -> Result<Box<dyn DynProver>, BackendError> {
    open_with(choice, device, &OpenOptions::default())
}

/// [`open`] with [`OpenOptions`].
pub fn open_with(
    choice: BackendChoice,
    device: Option<&str>,
    options: &OpenOptions,
) -> Result<Box<dyn DynProver>, BackendError> {
    let choice = match (choice, &options.opencl_binary) {
        (BackendChoice::Auto, Some(_)) => BackendChoice::Kind(BackendKind::Opencl),
        (BackendChoice::Kind(kind), Some(path)) if kind != BackendKind::Opencl => {
            return Err(BackendError::invalid(format!(
                "an OpenCL program binary ({}) applies to the opencl backend, not {kind}",
                path.display()
            )));
        }
        (choice, _) => choice,
    };
    if let Some(path) = &options.opencl_binary
        && let Err(e) = std::fs::metadata(path)
    {
        return Err(BackendError::invalid(format!(
            "OpenCL binary {}: {e}",
            path.display()
        )));
    }
    match choice {
        BackendChoice::Kind(kind) => open_kind_dyn(kind, device, false, options),
        BackendChoice::Auto => {
            if let Some(id) = device {
                let kind = id
                    .split(':')
                    .next()
                    .and_then(|k| k.parse::<BackendKind>().ok())
                    .ok_or_else(|| {
                        BackendError::invalid(format!("device id {id:?} names no backend"))
                    })?;
                return open_kind_dyn(kind, Some(id), false, options);
            }
            first_trusted(BackendKind::ALL.map(|kind| {
                Candidate::new(kind, move || {
                    open_kind_dyn(kind, None, kind != BackendKind::Cpu, options)
                })
            }))
        }
    }
}

/// A backend `auto` may pick: its kind and how to open a prover on it.
pub struct Candidate<'a> {
    pub kind: BackendKind,
    open: Box<dyn FnOnce() -> Result<Box<dyn DynProver>, BackendError> + 'a>,
}

impl<'a> Candidate<'a> {
    pub fn new(
        kind: BackendKind,
        open: impl FnOnce() -> Result<Box<dyn DynProver>, BackendError> + 'a,
    ) -> Self {
        Self {
            kind,
            open: Box::new(open),
        }
    }
}

/// The first of `candidates` (in order of preference) that opens and passes its
/// self-test ([`DynProver::self_test`]): how `auto` picks a device. A candidate that
/// does not open is passed over; one that fails its self-test is passed over with a
/// warning that says what differed. With none left, the last candidate's error.
pub fn first_trusted<'a>(
    candidates: impl IntoIterator<Item = Candidate<'a>>,
) -> Result<Box<dyn DynProver>, BackendError> {
    let mut last = None;
    for Candidate { kind, open } in candidates {
        let prover = match open() {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!(backend = %kind, error = %e, "auto: backend not opened");
                last = Some(e);
                continue;
            }
        };
        match prover.self_test() {
            Ok(report) => {
                tracing::info!(
                    backend = %kind,
                    device = %report.device,
                    fields = ?report.fields,
                    duration = ?report.duration,
                    "auto: device passed its self-test"
                );
                return Ok(prover);
            }
            Err(e) => {
                tracing::warn!(
                    backend = %kind,
                    device = %prover.device().id,
                    error = %e,
                    "auto: device failed its self-test, trying the next backend"
                );
                last = Some(e.into());
            }
        }
    }
    Err(last.unwrap_or_else(|| not_built(BackendKind::Cpu)))
}

fn open_kind_dyn(
    kind: BackendKind,
    device: Option<&str>,
    skip_emulated: bool,
    options: &OpenOptions,
) -> Result<Box<dyn DynProver>, BackendError> {
    match kind {
        BackendKind::Cpu => open_kind(device, skip_emulated, CpuBackend::open, Prover::new),
        #[cfg(feature = "wgpu")]
        BackendKind::Wgpu => open_kind(
            device,
            skip_emulated,
            proofbox_backend_wgpu::WgpuBackend::open,
            Prover::resident,
        ),
        #[cfg(feature = "cuda")]
        BackendKind::Cuda => open_kind(
            device,
            skip_emulated,
            proofbox_backend_cuda::CudaBackend::open,
            Prover::resident,
        ),
        #[cfg(feature = "opencl")]
        BackendKind::Opencl => {
            use proofbox_backend_opencl::{KernelSource, OpenclBackend};
            let source = match &options.opencl_binary {
                Some(path) => KernelSource::Binary(path.clone()),
                None => KernelSource::Source,
            };
            open_kind(
                device,
                skip_emulated,
                |ordinal| OpenclBackend::open_with(ordinal, source),
                Prover::resident,
            )
        }
        // Reached for backends whose Cargo feature is off.
        #[allow(unreachable_patterns)]
        other => {
            let _ = options;
            Err(not_built(other))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_parse() {
        assert_eq!("auto".parse::<BackendChoice>(), Ok(BackendChoice::Auto));
        assert_eq!(
            "cpu".parse::<BackendChoice>(),
            Ok(BackendChoice::Kind(BackendKind::Cpu))
        );
        assert!("tpu".parse::<BackendChoice>().is_err());
    }

    #[test]
    fn every_kind_reports() {
        let r = reports();
        assert_eq!(r.len(), BackendKind::ALL.len());
        let cpu = r.iter().find(|r| r.backend == BackendKind::Cpu).unwrap();
        assert!(cpu.available && cpu.devices.len() == 1);
        for other in r.iter().filter(|r| !r.available) {
            assert!(other.reason.as_deref().is_some_and(|s| !s.is_empty()));
        }
    }

    #[test]
    fn unknown_devices_are_refused() {
        let err = open(BackendChoice::Kind(BackendKind::Cpu), Some("cpu:7"))
            .err()
            .unwrap();
        assert!(
            matches!(err, BackendError::UnknownDevice { available: 1, .. }),
            "{err}"
        );
        assert!(open(BackendChoice::Auto, Some("tpu:0")).is_err());
        let p = open(BackendChoice::Auto, Some("cpu:0")).unwrap();
        assert_eq!(p.device().id, "cpu:0");
    }
}
