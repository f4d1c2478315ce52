//! Discovery: every device of every OpenCL platform, described for [`DeviceInfo`].

use std::sync::Mutex;

use ocl::enums::{DeviceInfo as ClDeviceInfo, DeviceInfoResult, PlatformInfo};
use ocl::{Device, Platform};
use proofbox_backend_api::{BackendError, BackendKind, DeviceInfo, DeviceType, FieldId};

pub(crate) fn unavailable(reason: impl Into<String>) -> BackendError {
    BackendError::Unavailable {
        backend: BackendKind::Opencl,
        reason: reason.into(),
    }
}

/// Runs an OpenCL call that may panic inside `ocl`, turning the panic into an error.
pub(crate) fn guarded<T>(what: &str, f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r.map_err(|e| format!("{what}: {e}")),
        Err(_) => Err(format!("{what}: the OpenCL runtime failed (panic)")),
    }
}

/// One device in discovery order, with its platform and position.
pub(crate) struct Found {
    pub(crate) platform: Platform,
    pub(crate) device: Device,
    pub(crate) p: usize,
    pub(crate) d: usize,
}

/// Serialises discovery and context creation: ICD loaders and drivers initialise
/// lazily, and concurrent first calls from several threads can see no device (PoCL
/// does).
pub(crate) static DISCOVERY: Mutex<()> = Mutex::new(());

/// Every device of every platform, in the ICD loader's order. The caller holds
/// [`DISCOVERY`].
pub(crate) fn enumerate() -> Result<Vec<Found>, BackendError> {
    let platforms = guarded("clGetPlatformIDs", || {
        ocl::core::get_platform_ids()
            .map(Platform::list_from_core)
            .map_err(|e| e.to_string())
    })
    .map_err(|e| unavailable(format!("no OpenCL platform: {e}")))?;
    if platforms.is_empty() {
        return Err(unavailable("no OpenCL platform is installed"));
    }
    let mut found = Vec::new();
    for (p, platform) in platforms.into_iter().enumerate() {
        let devices = guarded("clGetDeviceIDs", || {
            Device::list_all(platform).map_err(|e| e.to_string())
        })
        .map_err(unavailable)?;
        for (d, device) in devices.into_iter().enumerate() {
            found.push(Found {
                platform,
                device,
                p,
                d,
            });
        }
    }
    if found.is_empty() {
        return Err(unavailable("the OpenCL platforms show no device"));
    }
    Ok(found)
}

/// Raw device properties discovery reads.
pub(crate) struct Props {
    pub(crate) info: DeviceInfo,
    pub(crate) max_alloc_bytes: u64,
    pub(crate) global_bytes: u64,
    pub(crate) local_bytes: u64,
    pub(crate) max_group: usize,
}

pub(crate) fn describe(f: &Found) -> Result<Props, String> {
    guarded("device query", || {
        let dev = f.device;
        let err = |e: ocl::Error| e.to_string();
        let name = dev.name().map_err(err)?;
        let vendor = dev.vendor().map_err(err)?;
        let q = |k| dev.info(k).map_err(err);
        let global_bytes = match q(ClDeviceInfo::GlobalMemSize)? {
            DeviceInfoResult::GlobalMemSize(v) => v,
            _ => 0,
        };
        let max_alloc_bytes = match q(ClDeviceInfo::MaxMemAllocSize)? {
            DeviceInfoResult::MaxMemAllocSize(v) => v,
            _ => 0,
        };
        let local_bytes = match q(ClDeviceInfo::LocalMemSize)? {
            DeviceInfoResult::LocalMemSize(v) => v,
            _ => 0,
        };
        let compute_units = match q(ClDeviceInfo::MaxComputeUnits)? {
            DeviceInfoResult::MaxComputeUnits(v) => v,
            _ => 0,
        };
        let max_group = match q(ClDeviceInfo::MaxWorkGroupSize)? {
            DeviceInfoResult::MaxWorkGroupSize(v) => v,
            _ => 1,
        };
        let device_type = match q(ClDeviceInfo::Type)? {
            DeviceInfoResult::Type(t) => {
                if t.contains(ocl::flags::DeviceType::GPU) {
                    DeviceType::Gpu
                } else if t.contains(ocl::flags::DeviceType::ACCELERATOR) {
                    DeviceType::Accelerator
                } else if t.contains(ocl::flags::DeviceType::CPU) {
                    DeviceType::Cpu
                } else {
                    DeviceType::Other
                }
            }
            _ => DeviceType::Other,
        };
        let driver_version = match q(ClDeviceInfo::DriverVersion)? {
            DeviceInfoResult::DriverVersion(v) => v,
            _ => String::new(),
        };
        let platform_name = f
            .platform
            .info(PlatformInfo::Name)
            .map(|r| r.to_string())
            .unwrap_or_default();
        let platform_version = f
            .platform
            .info(PlatformInfo::Version)
            .map(|r| r.to_string())
            .unwrap_or_default();
        let info = DeviceInfo {
            id: format!("opencl:{}:{}", f.p, f.d),
            backend: BackendKind::Opencl,
            name,
            vendor,
            device_type,
            memory_bytes: global_bytes,
            compute_units,
            fields: FieldId::ALL.to_vec(),
            driver: Some(format!(
                "{platform_name} ({platform_version}), driver {driver_version}"
            )),
        };
        Ok(Props {
            info,
            max_alloc_bytes,
            global_bytes,
            local_bytes,
            max_group: max_group.max(1),
        })
    })
}
