//! Discovery never panics: with no driver or no GPU the backend is `Unavailable` with a
//! reason; with GPUs every device is described.

use proofbox_backend_api::{Backend, BackendError, BackendKind, BackendReport, DeviceType};
use proofbox_backend_cuda::CudaBackend;

/// Whether this machine shows an NVIDIA device node at all.
fn has_nvidia_device_node() -> bool {
    std::path::Path::new("/dev/nvidiactl").exists()
}

#[test]
fn probe_lists_gpus_or_says_why_not() {
    match CudaBackend::probe() {
        Ok(devices) => {
            assert!(!devices.is_empty(), "probe succeeded with no devices");
            for (i, d) in devices.iter().enumerate() {
                assert_eq!(d.id, format!("cuda:{i}"));
                assert_eq!(d.backend, BackendKind::Cuda);
                assert_eq!(d.device_type, DeviceType::Gpu);
                assert!(d.memory_bytes > 0 && d.compute_units > 0, "{d:?}");
                let driver = d.driver.as_deref().unwrap_or_default();
                assert!(driver.contains("compute capability"), "{driver}");
            }
        }
        Err(BackendError::Unavailable { backend, reason }) => {
            assert_eq!(backend, BackendKind::Cuda);
            assert!(!reason.is_empty());
            println!("cuda unavailable: {reason}");
        }
        Err(e) => panic!("probe failed with something other than Unavailable: {e}"),
    }
}

#[test]
fn without_a_driver_probe_and_open_are_unavailable() {
    if has_nvidia_device_node() {
        proofbox_conformance::skip("this machine has an NVIDIA device node");
        return;
    }
    let probe = CudaBackend::probe();
    let Err(BackendError::Unavailable { reason, .. }) = &probe else {
        panic!("expected Unavailable without a GPU, got {probe:?}");
    };
    assert!(
        reason.contains("libcuda") || reason.contains("no GPU") || reason.contains("cuInit"),
        "reason does not say what is missing: {reason}"
    );
    let report = BackendReport::from_probe(BackendKind::Cuda, probe.clone());
    assert!(!report.available);
    assert_eq!(report.reason.as_deref(), Some(reason.as_str()));
    for ordinal in [0, 1, usize::MAX] {
        assert!(
            matches!(
                CudaBackend::open(ordinal),
                Err(BackendError::Unavailable { .. })
            ),
            "open({ordinal}) without a GPU"
        );
    }
}

#[test]
fn open_past_the_last_device_is_unknown_device() {
    let Ok(devices) = CudaBackend::probe() else {
        proofbox_conformance::skip("no CUDA device");
        return;
    };
    let n = devices.len();
    assert!(matches!(
        CudaBackend::open(n),
        Err(BackendError::UnknownDevice { available, .. }) if available == n
    ));
}
