//! The environment a run records: machine, operating system, build and devices.
//!
//! Host facts come from `/proc` and `/etc/os-release` (Linux); elsewhere they are
//! `null` rather than guessed. Build facts are captured at build time (`build.rs`).

use std::collections::BTreeMap;

use proofbox_backend_api::{BackendKind, DeviceInfo, DeviceType, FieldId};
use serde::{Deserialize, Serialize};

use crate::device::BenchDevice;
use crate::workload::SUITE_VERSION;

/// Everything recorded about where and how a run ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    /// The label of the machine (`--machine`, default the host name).
    pub machine: String,
    pub hostname: Option<String>,
    pub cpu: Cpu,
    pub memory: Memory,
    pub os: Os,
    pub proofbox: ProofBoxBuild,
    pub build: Build,
    /// Every device measured.
    pub devices: Vec<Device>,
    /// Every OpenCL platform the ICD loader shows (empty when none, or without the
    /// `opencl` feature).
    pub opencl_platforms: Vec<OpenclPlatform>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cpu {
    pub model: Option<String>,
    pub vendor: Option<String>,
    /// Threads the process may use (what rayon uses).
    pub logical_cores: usize,
    /// Physical cores, from `/proc/cpuinfo` (`null` where it does not say).
    pub physical_cores: Option<usize>,
    pub sockets: Option<usize>,
    /// SIMD features of the host CPU that the field arithmetic uses, where present.
    pub simd: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memory {
    pub total_bytes: Option<u64>,
    /// `MemAvailable` when the run started.
    pub available_bytes: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Os {
    /// `PRETTY_NAME` of `/etc/os-release`.
    pub name: Option<String>,
    pub kernel: Option<String>,
    pub arch: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofBoxBuild {
    pub version: String,
    /// The git commit built (`unknown` outside a checkout).
    pub commit: String,
    pub suite_version: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Build {
    /// `rustc -V` of the compiler that built this binary.
    pub rustc: String,
    pub profile: String,
    pub opt_level: String,
    pub target: String,
    /// The flags passed to rustc (`RUSTFLAGS`, `.cargo/config.toml`), space-separated.
    pub rustflags: String,
    /// Target features the build enabled that matter for the field arithmetic.
    pub target_features: Vec<String>,
    /// Device backends compiled in.
    pub backends_built: Vec<BackendKind>,
}

/// A device measured, as discovery reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub id: String,
    pub backend: BackendKind,
    pub name: String,
    pub vendor: String,
    pub device_type: DeviceType,
    pub memory_bytes: u64,
    pub compute_units: u32,
    pub fields: Vec<FieldId>,
    pub driver: Option<String>,
    /// API details beyond discovery (wgpu: `wgpu_backend`, `wgpu_driver`, ...).
    pub api: BTreeMap<String, String>,
    /// How this device's device-only time is measured, or why it is not.
    pub device_timing: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenclPlatform {
    pub name: String,
    pub vendor: String,
    /// `CL_PLATFORM_VERSION`, e.g. `OpenCL 3.0 PoCL 3.1`.
    pub version: String,
}

/// How device-only time is measured on a device of this kind; `measured` is what
/// the device answered when kernel timing was turned on.
pub fn device_timing(kind: BackendKind, measured: bool) -> &'static str {
    if !measured {
        return "not measured: the device offers no kernel timer; end-to-end time includes transfers";
    }
    match kind {
        BackendKind::Cpu => {
            "wall time inside the backend's kernel calls, on the host (data stays in host memory: no transfers)"
        }
        BackendKind::Opencl => {
            "sum of the kernels' OpenCL profiling events (start to end); transfers excluded"
        }
        BackendKind::Wgpu => {
            "sum of the compute passes' spans from timestamp queries; transfers and buffer copies excluded"
        }
        BackendKind::Cuda => {
            "sum of CUDA events recorded around each kernel launch; transfers excluded"
        }
    }
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// `key: value` lines of a `/proc` file.
fn proc_fields(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// A `/proc/meminfo` value in bytes.
pub fn meminfo(key: &str) -> Option<u64> {
    let text = read("/proc/meminfo")?;
    proc_fields(&text)
        .into_iter()
        .find(|(k, _)| k == key)
        .and_then(|(_, v)| v.trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

/// A `/proc/self/status` value in bytes (`VmRSS`, `VmHWM`).
pub fn self_status(key: &str) -> Option<u64> {
    let text = read("/proc/self/status")?;
    proc_fields(&text)
        .into_iter()
        .find(|(k, _)| k == key)
        .and_then(|(_, v)| v.trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

/// Resets the process's peak resident set (`VmHWM`) to its current size, so that the
/// next reading is the peak since now. Returns false where the kernel does not allow it.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn cpu() -> Cpu {
    let text = read("/proc/cpuinfo").unwrap_or_default();
    let fields = proc_fields(&text);
    let first = |key: &str| {
        fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    // Physical cores: distinct (physical id, core id) pairs.
    let mut cores = std::collections::BTreeSet::new();
    let mut sockets = std::collections::BTreeSet::new();
    let mut phys = None;
    for (k, v) in &fields {
        match k.as_str() {
            "physical id" => {
                phys = Some(v.clone());
                sockets.insert(v.clone());
            }
            "core id" => {
                cores.insert((phys.clone(), v.clone()));
            }
            _ => {}
        }
    }
    let flags = first("flags")
        .or_else(|| first("Features"))
        .unwrap_or_default();
    let simd = [
        "sse4_2",
        "avx",
        "avx2",
        "avx512f",
        "avx512ifma",
        "neon",
        "asimd",
        "sve",
    ]
    .into_iter()
    .filter(|f| flags.split_whitespace().any(|x| x == *f))
    .map(String::from)
    .collect();
    Cpu {
        model: first("model name").or_else(|| first("Model")),
        vendor: first("vendor_id").or_else(|| first("CPU implementer")),
        logical_cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        physical_cores: (!cores.is_empty()).then_some(cores.len()),
        sockets: (!sockets.is_empty()).then_some(sockets.len()),
        simd,
    }
}

fn os() -> Os {
    let name = read("/etc/os-release").and_then(|t| {
        t.lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME="))
            .map(|v| v.trim_matches('"').to_string())
    });
    Os {
        name,
        kernel: read("/proc/sys/kernel/osrelease").map(|s| s.trim().to_string()),
        arch: std::env::consts::ARCH.into(),
    }
}

/// Target features of this build that the field arithmetic and hashing use.
fn target_features() -> Vec<String> {
    let mut f = Vec::new();
    macro_rules! feature {
        ($($name:tt),*) => {$(
            if cfg!(target_feature = $name) {
                f.push($name.to_string());
            }
        )*};
    }
    feature!(
        "sse4.2",
        "avx",
        "avx2",
        "bmi2",
        "avx512f",
        "avx512ifma",
        "neon",
        "sve"
    );
    f
}

fn backends_built() -> Vec<BackendKind> {
    let mut v = vec![BackendKind::Cpu];
    if cfg!(feature = "cuda") {
        v.push(BackendKind::Cuda);
    }
    if cfg!(feature = "wgpu") {
        v.push(BackendKind::Wgpu);
    }
    if cfg!(feature = "opencl") {
        v.push(BackendKind::Opencl);
    }
    v
}

/// This binary's build.
pub fn build() -> Build {
    Build {
        rustc: env!("PROOFBOX_BENCH_RUSTC").into(),
        profile: env!("PROOFBOX_BENCH_PROFILE").into(),
        opt_level: env!("PROOFBOX_BENCH_OPT_LEVEL").into(),
        target: env!("PROOFBOX_BENCH_TARGET").into(),
        rustflags: env!("PROOFBOX_BENCH_RUSTFLAGS").into(),
        target_features: target_features(),
        backends_built: backends_built(),
    }
}

#[cfg(feature = "opencl")]
fn opencl_platforms() -> Vec<OpenclPlatform> {
    use ocl::enums::PlatformInfo;
    // The OpenCL runtime may panic inside `ocl`; a broken ICD must not end the run.
    std::panic::catch_unwind(|| {
        let Ok(ids) = ocl::core::get_platform_ids() else {
            return Vec::new();
        };
        ids.into_iter()
            .map(|id| {
                let info = |k| {
                    ocl::core::get_platform_info(id, k)
                        .map(|r| r.to_string())
                        .unwrap_or_else(|_| "unknown".into())
                };
                OpenclPlatform {
                    name: info(PlatformInfo::Name),
                    vendor: info(PlatformInfo::Vendor),
                    version: info(PlatformInfo::Version),
                }
            })
            .collect()
    })
    .unwrap_or_default()
}

#[cfg(not(feature = "opencl"))]
fn opencl_platforms() -> Vec<OpenclPlatform> {
    Vec::new()
}

fn device(d: &dyn BenchDevice, timed: bool) -> Device {
    let i: &DeviceInfo = d.info();
    Device {
        id: i.id.clone(),
        backend: d.kind(),
        name: i.name.clone(),
        vendor: i.vendor.clone(),
        device_type: i.device_type,
        memory_bytes: i.memory_bytes,
        compute_units: i.compute_units,
        fields: i.fields.clone(),
        driver: i.driver.clone(),
        api: d.api_info(),
        device_timing: device_timing(d.kind(), timed).into(),
    }
}

/// Captures the environment of a run on `devices`; `timed[i]` says whether device
/// `i` measures kernel time.
pub fn capture(
    machine: Option<&str>,
    devices: &[Box<dyn BenchDevice>],
    timed: &[bool],
) -> Environment {
    let hostname = read("/proc/sys/kernel/hostname").map(|s| s.trim().to_string());
    Environment {
        machine: machine
            .map(String::from)
            .or_else(|| hostname.clone())
            .unwrap_or_else(|| "unknown".into()),
        hostname,
        cpu: cpu(),
        memory: Memory {
            total_bytes: meminfo("MemTotal"),
            available_bytes: meminfo("MemAvailable"),
        },
        os: os(),
        proofbox: ProofBoxBuild {
            version: env!("CARGO_PKG_VERSION").into(),
            commit: env!("PROOFBOX_BENCH_COMMIT").into(),
            suite_version: SUITE_VERSION,
        },
        build: build(),
        devices: devices
            .iter()
            .enumerate()
            .map(|(i, d)| device(d.as_ref(), timed.get(i).copied().unwrap_or(false)))
            .collect(),
        opencl_platforms: opencl_platforms(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_facts_are_read() {
        let env = capture(Some("test"), &[], &[]);
        assert_eq!(env.machine, "test");
        assert!(env.cpu.logical_cores >= 1);
        assert!(!env.build.rustc.is_empty());
        if cfg!(target_os = "linux") {
            assert!(env.memory.total_bytes.unwrap() > 0);
            assert!(env.cpu.model.is_some());
            assert!(self_status("VmRSS").unwrap() > 0);
        }
    }
}
