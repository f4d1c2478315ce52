//! Whether a workload fits: its memory estimate against the device's and the host's.

use proofbox_backend_api::{BackendKind, DIGEST_ELEMS, DeviceType};
use proofbox_prover::memory;
use proofbox_prover::transition;

use crate::device::BenchDevice;
use crate::env::meminfo;
use crate::workload::{KernelOp, LDE_ADDED_BITS, PROOF_FRI, STATE_PRESTATE_KEYS, Spec, Workload};

/// Bytes in GiB, or MiB below one GiB.
pub(super) fn gib(bytes: u64) -> String {
    let gib = bytes as f64 / (1u64 << 30) as f64;
    if gib >= 1.0 {
        format!("{gib:.1} GiB")
    } else {
        format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
    }
}

/// Memory a workload is estimated to need.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Needs {
    pub(super) host: u64,
    pub(super) device: Option<u64>,
}

/// What `w` is estimated to need on `device` (proofs: [`memory`], the prover's
/// estimates from measured peaks).
pub(super) fn needs(w: &Workload, device: &dyn BenchDevice) -> Needs {
    let on_device = device.kind() != BackendKind::Cpu;
    match w.spec {
        Spec::Kernel {
            op,
            log_rows,
            width,
            ..
        } => {
            let rows = 1u64 << log_rows;
            let n = rows * width as u64 * 4;
            let (out, digests) = match op {
                KernelOp::Lde => (n << LDE_ADDED_BITS, 0),
                KernelOp::Commit => (0, 2 * rows * DIGEST_ELEMS as u64 * 4),
                KernelOp::LdeCommit => (
                    n << LDE_ADDED_BITS,
                    2 * (rows << LDE_ADDED_BITS) * DIGEST_ELEMS as u64 * 4,
                ),
            };
            let copy = if op == KernelOp::Commit { 0 } else { n };
            // Input, the reference, the call's copy of the input and its output; a
            // device backend also stages its words on the host.
            let staging = if on_device { n + out + digests } else { 0 };
            Needs {
                host: n + (out + digests) + copy + (out + digests) + staging,
                device: on_device.then_some(n + out + digests),
            }
        }
        Spec::Proof {
            circuit,
            field,
            log_rows,
        } => memory::proof_needs(circuit, field, log_rows, &PROOF_FRI.params(), on_device).into(),
        Spec::StateApply { updates } => Needs {
            // Two trees (the pre-state and a working copy) of about 1 KiB per key.
            host: 2 * (STATE_PRESTATE_KEYS + updates) as u64 * 1024,
            device: None,
        },
        Spec::StateTransition { updates } => memory::transition_needs(
            updates,
            transition::DEFAULT_CHUNK_UPDATES,
            &PROOF_FRI.params(),
            on_device,
        )
        .into(),
    }
}

impl From<memory::Needs> for Needs {
    fn from(n: memory::Needs) -> Self {
        Self {
            host: n.host,
            device: n.device,
        }
    }
}

/// Why `needs` does not fit, or `None`.
pub(super) fn does_not_fit(
    needs: Needs,
    device: &dyn BenchDevice,
    host_limit: Option<u64>,
) -> Option<String> {
    let info = device.info();
    let mut host = needs.host;
    // A CPU driver of a device API (PoCL, lavapipe) allocates "device" memory on the host.
    if info.device_type == DeviceType::Cpu
        && let Some(d) = needs.device
    {
        host += d;
    }
    let available = host_limit.or_else(|| meminfo("MemAvailable"));
    if let Some(avail) = available
        && host as f64 > avail as f64 * 0.9
    {
        return Some(format!(
            "needs about {} of host memory (estimate), machine has {} available",
            gib(host),
            gib(avail)
        ));
    }
    if let Some(d) = needs.device
        && info.memory_bytes > 0
        && d as f64 > info.memory_bytes as f64 * 0.9
    {
        return Some(format!(
            "needs about {} of device memory (estimate), device has {}",
            gib(d),
            gib(info.memory_bytes)
        ));
    }
    None
}
