//! How much memory a proof needs, estimated from the peaks the benchmark suite measured
//! (`docs/benchmarks.md`): what the service admits jobs by and the benchmark suite
//! skips workloads by. An estimate, stated as one: about 1.3x the peak measured on the
//! CPU backend for every circuit at 2^14..2^16 rows, and 4.5 GiB against the 3.2 GiB
//! measured for a state-transition proof of 1,000 updates.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use p3_baby_bear::BabyBear;
use p3_koala_bear::KoalaBear;
use proofbox_backend_api::{DIGEST_ELEMS, DeviceInfo, DeviceType, FieldId};
use proofbox_circuits::transition::{self, ROWS_PER_SEGMENT};
use proofbox_circuits::{CircuitId, Statement};
use proofbox_verifier::FriParams;
use serde::{Deserialize, Serialize};

/// Bytes a proof needs on the host and, for a device backend, on the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Needs {
    pub host: u64,
    pub device: Option<u64>,
}

/// Columns of a circuit's trace over `field`, read off its smallest trace once.
pub fn trace_width(circuit: CircuitId, field: FieldId) -> usize {
    if circuit == CircuitId::StateTransition {
        return transition::NUM_TRANSITION_COLS;
    }
    static WIDTHS: OnceLock<Mutex<HashMap<(CircuitId, FieldId), usize>>> = OnceLock::new();
    let mut widths = WIDTHS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    *widths.entry((circuit, field)).or_insert_with(|| {
        let s = Statement {
            circuit,
            log_rows: circuit.min_log_rows(),
            seed: 0,
            input: Vec::new(),
        };
        match field {
            FieldId::KoalaBear => s.trace::<KoalaBear>(0).width,
            FieldId::BabyBear => s.trace::<BabyBear>(0).width,
        }
    })
}

/// One proof of `2^log_rows` rows: the trace, its extension kept for the openings, one
/// more trace-sized buffer for the quotient and copies, and the Merkle digests; a device
/// backend also holds the trace and its extension on the device and stages them on the
/// host. `witness_bytes` adds what the input carries beyond the trace (a state
/// transition's witnesses).
fn proof(
    width: usize,
    log_rows: u8,
    fri: &FriParams,
    on_device: bool,
    witness_bytes: u64,
) -> Needs {
    let rows = 1u64 << log_rows;
    let blowup = 1u64 << fri.log_blowup;
    let trace = rows * width as u64 * 4;
    let digests = 2 * rows * blowup * DIGEST_ELEMS as u64 * 4;
    let host = trace * (2 + blowup) + digests + witness_bytes;
    Needs {
        host: host + if on_device { trace * (1 + blowup) } else { 0 },
        device: on_device.then_some(trace * (1 + blowup) + digests),
    }
}

/// A proof of `circuit` at `2^log_rows` rows (a state transition of `2^(log_rows - 8)`
/// updates: one proof, not chunks).
pub fn proof_needs(
    circuit: CircuitId,
    field: FieldId,
    log_rows: u8,
    fri: &FriParams,
    on_device: bool,
) -> Needs {
    let witnesses = if circuit == CircuitId::StateTransition {
        // About 32 siblings per update with their options, about 2 KiB.
        ((1u64 << log_rows) / ROWS_PER_SEGMENT as u64) * 2048
    } else {
        0
    };
    proof(
        trace_width(circuit, field),
        log_rows,
        fri,
        on_device,
        witnesses,
    )
}

/// A diff of `updates` updates proved in chained proofs of at most `max_chunk`
/// updates, one after the other: the largest chunk's proof is the peak, plus every
/// chunk's witnesses.
pub fn transition_needs(
    updates: usize,
    max_chunk: usize,
    fri: &FriParams,
    on_device: bool,
) -> Needs {
    let chunk = updates.max(1).next_power_of_two().min(max_chunk.max(1));
    // One segment per update, as for states of up to about 2^30 keys.
    let log_rows = (chunk * ROWS_PER_SEGMENT).trailing_zeros() as u8;
    proof(
        transition::NUM_TRANSITION_COLS,
        log_rows,
        fri,
        on_device,
        updates as u64 * 2048,
    )
}

/// Why `needs` does not fit `device` on a host with `host_bytes` of memory (`None`:
/// it fits, or the device does not report its memory). A device API's CPU driver
/// (PoCL, lavapipe) allocates its "device" memory on the host.
pub fn does_not_fit(needs: Needs, device: &DeviceInfo, host_bytes: Option<u64>) -> Option<String> {
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    let mut host = needs.host;
    if device.device_type == DeviceType::Cpu
        && let Some(d) = needs.device
    {
        host += d;
    }
    if let Some(limit) = host_bytes
        && host > limit
    {
        return Some(format!(
            "needs about {:.1} GiB of host memory (estimated from measured peaks), and this host has {:.1} GiB",
            gib(host),
            gib(limit)
        ));
    }
    if let Some(d) = needs.device
        && device.device_type != DeviceType::Cpu
        && device.memory_bytes > 0
        && d > device.memory_bytes
    {
        return Some(format!(
            "needs about {:.1} GiB on {} (estimated from measured peaks), which has {:.1} GiB",
            gib(d),
            device.id,
            gib(device.memory_bytes)
        ));
    }
    None
}

/// The largest `log_rows` of `circuit` over `field` that fits `device` (`None`: not even
/// the smallest).
pub fn largest_log_rows(
    circuit: CircuitId,
    field: FieldId,
    fri: &FriParams,
    device: &DeviceInfo,
    host_bytes: Option<u64>,
) -> Option<u8> {
    let on_device = device.backend != proofbox_backend_api::BackendKind::Cpu;
    (circuit.min_log_rows()..=circuit.max_log_rows())
        .rev()
        .find(|&l| {
            does_not_fit(
                proof_needs(circuit, field, l, fri, on_device),
                device,
                host_bytes,
            )
            .is_none()
        })
}

/// This host's memory (`MemTotal`), where `/proc/meminfo` says.
pub fn host_memory_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proofbox_verifier::FriPreset;

    fn device(kind: DeviceType, memory_bytes: u64) -> DeviceInfo {
        DeviceInfo {
            id: "test:0".into(),
            backend: proofbox_backend_api::BackendKind::Opencl,
            name: "test".into(),
            vendor: "test".into(),
            device_type: kind,
            memory_bytes,
            compute_units: 1,
            fields: FieldId::ALL.to_vec(),
            driver: None,
        }
    }

    #[test]
    fn estimates_grow_with_size_and_name_the_limit() {
        let fri = FriPreset::Standard.params();
        let small = proof_needs(CircuitId::Keccak, FieldId::KoalaBear, 10, &fri, true);
        let large = proof_needs(CircuitId::Keccak, FieldId::KoalaBear, 20, &fri, true);
        assert!(large.host > 500 * small.host && large.device > small.device);
        let gpu = device(DeviceType::Gpu, 1 << 30);
        let why = does_not_fit(large, &gpu, None).unwrap();
        assert!(why.contains("test:0") && why.contains("1.0 GiB"), "{why}");
        assert!(does_not_fit(small, &gpu, None).is_none());
        // A device that does not report its memory is not refused for it.
        assert!(does_not_fit(large, &device(DeviceType::Gpu, 0), None).is_none());
        // The host limit applies to everything.
        assert!(does_not_fit(small, &gpu, Some(1 << 10)).is_some());
        let largest =
            largest_log_rows(CircuitId::Keccak, FieldId::KoalaBear, &fri, &gpu, None).unwrap();
        assert!((10..20).contains(&largest), "{largest}");
    }

    #[test]
    fn the_state_transition_estimate_matches_the_measured_peak_within_a_factor() {
        // Measured: 0.46 GiB on the CPU for 1,000 updates in one proof of 2^15 rows
        // (`docs/benchmarks.md`, "State-transition proofs").
        let n = transition_needs(1000, 1024, &FriPreset::Standard.params(), false);
        let gib = n.host as f64 / (1u64 << 30) as f64;
        assert!((0.46..1.2).contains(&gib), "{gib}");
    }
}
