use core::fmt;
use core::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::BackendError;
use crate::field::FieldId;

/// The families of backends ProofBox knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    Cpu,
    Cuda,
    Wgpu,
    Opencl,
}

impl BackendKind {
    /// Every kind, in the order `auto` prefers them (fastest first, CPU last).
    pub const ALL: [BackendKind; 4] = [Self::Cuda, Self::Wgpu, Self::Opencl, Self::Cpu];

    pub const fn name(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Cuda => "cuda",
            Self::Wgpu => "wgpu",
            Self::Opencl => "opencl",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for BackendKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!("unknown backend {s:?} (expected cpu, cuda, wgpu, opencl or auto)")
            })
    }
}

/// The kind of hardware behind a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceType {
    /// A discrete or integrated GPU.
    Gpu,
    /// An FPGA or another accelerator card.
    Accelerator,
    /// A CPU: the host itself, or a CPU driver of a device API (PoCL, lavapipe).
    Cpu,
    /// Anything the driver does not classify.
    #[default]
    Other,
}

/// What a device is and can do, as discovery reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// Stable identifier, `<backend>:<ordinal>` (e.g. `cpu:0`, `cuda:1`, `opencl:0:1`).
    pub id: String,
    pub backend: BackendKind,
    pub name: String,
    pub vendor: String,
    /// GPU, accelerator or CPU. `auto` skips CPU drivers of device APIs (which are
    /// slower than the CPU backend).
    #[serde(default)]
    pub device_type: DeviceType,
    /// Memory the device can use, in bytes (host RAM for the CPU).
    pub memory_bytes: u64,
    /// Cores, multiprocessors or compute units.
    pub compute_units: u32,
    /// The fields this device's kernels support.
    pub fields: Vec<FieldId>,
    /// Driver or runtime version, where the backend can tell.
    pub driver: Option<String>,
}

/// One backend's answer to discovery: its devices, or why it cannot run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendReport {
    pub backend: BackendKind,
    pub available: bool,
    /// Why the backend is unavailable (`None` when available).
    pub reason: Option<String>,
    pub devices: Vec<DeviceInfo>,
}

impl BackendReport {
    /// Builds a report from a backend's `probe` result.
    pub fn from_probe(backend: BackendKind, probe: Result<Vec<DeviceInfo>, BackendError>) -> Self {
        match probe {
            Ok(devices) if devices.is_empty() => Self {
                backend,
                available: false,
                reason: Some("no device found".into()),
                devices,
            },
            Ok(devices) => Self {
                backend,
                available: true,
                reason: None,
                devices,
            },
            Err(BackendError::Unavailable { reason, .. }) => Self {
                backend,
                available: false,
                reason: Some(reason),
                devices: Vec::new(),
            },
            Err(e) => Self {
                backend,
                available: false,
                reason: Some(e.to_string()),
                devices: Vec::new(),
            },
        }
    }
}
