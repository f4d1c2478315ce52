//! Discovery without a context: the driver's presence and version, the device count,
//! each device described for [`DeviceInfo`], and driver errors in words.

use cudarc::driver::sys::CUdevice_attribute;
use cudarc::driver::{DriverError, result, sys};
use proofbox_backend_api::{BackendError, BackendKind, DeviceInfo, DeviceType, FieldId};

pub(crate) fn unavailable(reason: impl Into<String>) -> BackendError {
    BackendError::Unavailable {
        backend: BackendKind::Cuda,
        reason: reason.into(),
    }
}

/// The name of a driver error (`CUDA_ERROR_...`) and its description.
pub(crate) fn describe_error(e: &DriverError) -> String {
    let name = e
        .error_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|_| format!("{:?}", e.0));
    match e.error_string() {
        Ok(s) => format!("{name}: {}", s.to_string_lossy()),
        Err(_) => name,
    }
}

/// Errors after which the context cannot be used again.
pub(crate) fn is_sticky(e: &DriverError) -> bool {
    use sys::cudaError_enum as E;
    matches!(
        e.0,
        E::CUDA_ERROR_ILLEGAL_ADDRESS
            | E::CUDA_ERROR_LAUNCH_FAILED
            | E::CUDA_ERROR_LAUNCH_TIMEOUT
            | E::CUDA_ERROR_ECC_UNCORRECTABLE
            | E::CUDA_ERROR_HARDWARE_STACK_ERROR
            | E::CUDA_ERROR_ILLEGAL_INSTRUCTION
            | E::CUDA_ERROR_MISALIGNED_ADDRESS
            | E::CUDA_ERROR_INVALID_ADDRESS_SPACE
            | E::CUDA_ERROR_INVALID_PC
            | E::CUDA_ERROR_DEVICE_UNAVAILABLE
            | E::CUDA_ERROR_NO_DEVICE
            | E::CUDA_ERROR_CONTEXT_IS_DESTROYED
            | E::CUDA_ERROR_DEINITIALIZED
    )
}

/// Whether the driver library can be loaded. Never panics.
pub(crate) fn driver_present() -> bool {
    // SAFETY: only tries to dlopen the candidate library names.
    std::panic::catch_unwind(|| unsafe { sys::is_culib_present() }).unwrap_or(false)
}

/// Runs a driver call that may panic inside cudarc (a symbol missing from an old
/// driver), turning the panic into an error.
pub(crate) fn guarded<T>(
    what: &str,
    f: impl FnOnce() -> Result<T, DriverError>,
) -> Result<T, String> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{what}: {}", describe_error(&e))),
        Err(_) => Err(format!(
            "{what}: the CUDA driver library lacks a needed symbol"
        )),
    }
}

/// The driver's CUDA version, e.g. `12.8`.
pub(crate) fn driver_version() -> Result<String, String> {
    let v = guarded("cuDriverGetVersion", || {
        let mut v = 0;
        // SAFETY: valid out-pointer.
        unsafe { sys::cuDriverGetVersion(&mut v) }.result()?;
        Ok(v)
    })?;
    Ok(format!("{}.{}", v / 1000, (v % 1000) / 10))
}

/// What discovery reports about one device, and its compute capability.
pub(crate) fn describe(
    ordinal: usize,
    driver: &str,
    nvrtc: Option<(i32, i32)>,
) -> Result<(DeviceInfo, u32, u32), String> {
    guarded("device query", || {
        let dev = result::device::get(ordinal as i32)?;
        let name = result::device::get_name(dev)?;
        // SAFETY: `dev` is a valid device handle from `cuDeviceGet`.
        let memory = unsafe { result::device::total_mem(dev) }?;
        let attr = |a| unsafe { result::device::get_attribute(dev, a) };
        let sms = attr(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)?;
        let major = attr(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)?;
        let minor = attr(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)?;
        let cc = (10 * major + minor) as u32;
        let nvrtc = match nvrtc {
            Some((a, b)) => format!("NVRTC {a}.{b}"),
            None => "no NVRTC".into(),
        };
        let info = DeviceInfo {
            id: format!("cuda:{ordinal}"),
            backend: BackendKind::Cuda,
            name,
            vendor: "NVIDIA".into(),
            device_type: DeviceType::Gpu,
            memory_bytes: memory as u64,
            compute_units: sms.max(0) as u32,
            fields: if nvrtc.starts_with("NVRTC") {
                FieldId::ALL.to_vec()
            } else {
                Vec::new()
            },
            driver: Some(format!(
                "CUDA driver {driver}, compute capability {major}.{minor}, {sms} SMs, {nvrtc}"
            )),
        };
        Ok((info, cc, sms.max(1) as u32))
    })
}

/// Initialises the driver and counts the GPUs, or says why the backend cannot run.
pub(crate) fn device_count() -> Result<(usize, String), BackendError> {
    if !driver_present() {
        return Err(unavailable(
            "no NVIDIA driver: libcuda.so could not be loaded",
        ));
    }
    guarded("cuInit", result::init).map_err(unavailable)?;
    let driver = driver_version().map_err(unavailable)?;
    let count = guarded("cuDeviceGetCount", result::device::get_count).map_err(unavailable)?;
    if count <= 0 {
        return Err(unavailable(format!(
            "the CUDA driver ({driver}) shows no GPU"
        )));
    }
    Ok((count as usize, driver))
}
