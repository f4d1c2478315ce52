//! The suite's correctness check against a deliberately faulty backend: a wrong result
//! is a failed measurement with no time and no throughput, never a speed.

use p3_matrix::dense::RowMajorMatrix;
use proofbox_backend_api::{Backend, BackendError, BackendField, BackendKind, DeviceInfo, Digest};
use proofbox_backend_cpu::CpuBackend;
use proofbox_bench::device::{BenchDevice, Opened};
use proofbox_bench::{RunConfig, Status, Suite, output, run};
use proofbox_prover::Prover;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// One element of every LDE is changed.
    LdeValue,
    /// One leaf digest of every tree is changed.
    Digest,
}

/// The CPU backend with one value flipped.
struct Faulty {
    inner: CpuBackend,
    fault: Fault,
    info: DeviceInfo,
}

impl Faulty {
    fn new(fault: Fault) -> Self {
        let inner = CpuBackend::new();
        let mut info = inner.device().clone();
        info.id = format!("faulty-{fault:?}:0").to_lowercase();
        info.name = format!("CPU backend with a wrong {fault:?}");
        Self { inner, fault, info }
    }
}

impl Backend for Faulty {
    const KIND: BackendKind = BackendKind::Cpu;

    fn probe() -> Result<Vec<DeviceInfo>, BackendError> {
        CpuBackend::probe()
    }

    fn open(_: usize) -> Result<Self, BackendError> {
        Ok(Self::new(Fault::LdeValue))
    }

    fn device(&self) -> &DeviceInfo {
        &self.info
    }

    fn coset_lde_batch<F: BackendField>(
        &self,
        mat: RowMajorMatrix<F>,
        added_bits: usize,
        shift: F,
    ) -> Result<RowMajorMatrix<F>, BackendError> {
        let mut out = self.inner.coset_lde_batch(mat, added_bits, shift)?;
        if self.fault == Fault::LdeValue {
            let mid = out.values.len() / 2;
            out.values[mid] += F::ONE;
        }
        Ok(out)
    }

    fn hash_rows<F: BackendField>(
        &self,
        input: &[F],
        out: &mut [Digest<F>],
    ) -> Result<(), BackendError> {
        self.inner.hash_rows(input, out)?;
        if self.fault == Fault::Digest
            && let Some(d) = out.last_mut()
        {
            d[3] += F::ONE;
        }
        Ok(())
    }

    fn compress_pairs<F: BackendField>(
        &self,
        input: &[[Digest<F>; 2]],
        out: &mut [Digest<F>],
    ) -> Result<(), BackendError> {
        self.inner.compress_pairs(input, out)
    }
}

fn opened(faults: &[Fault]) -> Opened {
    let mut devices: Vec<Box<dyn BenchDevice>> = vec![Box::new(Prover::new(CpuBackend::new()))];
    for &f in faults {
        devices.push(Box::new(Prover::new(Faulty::new(f))));
    }
    Opened {
        devices,
        skipped: Vec::new(),
    }
}

fn quick_config(filters: &[&str]) -> RunConfig {
    let mut c = RunConfig::new(true);
    c.backends = vec![BackendKind::Cpu];
    c.filters = filters.iter().map(|s| s.to_string()).collect();
    c.warmup = 0;
    c.repetitions = 2;
    c
}

#[test]
fn a_wrong_lde_value_or_digest_is_a_failure_not_a_speed() {
    let config = quick_config(&["kernels/*"]);
    let report = run(&config, opened(&[Fault::LdeValue, Fault::Digest]), &()).unwrap();
    let ops = ["lde", "commit", "lde-commit"];
    for m in &report.measurements {
        let faulty = m.device.starts_with("faulty");
        // Which fault this operation can see: an LDE value (lde, lde-commit) or a leaf
        // digest (commit, lde-commit).
        let caught = match (m.device.as_str(), m.operation.as_str()) {
            (_, _) if !faulty => false,
            ("faulty-ldevalue:0", op) => op != "commit",
            ("faulty-digest:0", op) => op != "lde",
            (d, _) => panic!("unexpected device {d}"),
        };
        assert!(ops.contains(&m.operation.as_str()));
        if caught {
            assert_eq!(m.status, Status::Failed, "{} on {}", m.workload, m.device);
            let reason = m.reason.as_deref().unwrap();
            assert!(
                reason.starts_with("wrong result on call 1 of 2: "),
                "{reason}"
            );
            let what = if m.device == "faulty-ldevalue:0" {
                "LDE value: first difference at row"
            } else {
                "Merkle root: first difference"
            };
            assert!(reason.contains(what), "{reason}");
            assert!(m.end_to_end.is_none() && m.device_time.is_none());
            assert!(m.throughput.is_none());
        } else {
            assert_eq!(
                m.status,
                Status::Passed,
                "{} on {}: {:?}",
                m.workload,
                m.device,
                m.reason
            );
            assert_eq!(m.end_to_end.as_ref().unwrap().samples_s.len(), 2);
            assert!(m.throughput.as_ref().unwrap().value > 0.0);
        }
    }
    // 4 quick kernel workloads on 3 devices; 2 + 2 + 2 wrong results (lde-commit in
    // both fields is seen by both faults, lde by one, commit by the other).
    assert_eq!(report.measurements.len(), 12);
    assert_eq!(report.failures().count(), 6);

    // The reports carry no figure for a failure either.
    let csv = output::csv(&report);
    for line in csv.lines().filter(|l| l.contains(",failed,")) {
        let cells: Vec<&str> = line.split(',').collect();
        let col = |name: &str| cells[output::CSV_COLUMNS.iter().position(|c| *c == name).unwrap()];
        assert_eq!(col("time_median_s"), "");
        assert_eq!(col("throughput"), "");
    }
    let md = output::markdown(&report, &[]);
    assert!(md.contains("6 measurement(s) FAILED"), "{md}");
    assert!(!md.contains("| kernels/lde/koalabear/log12/w16 | faulty-ldevalue:0 |"));
}

#[test]
fn a_proof_from_a_faulty_backend_fails() {
    let mut config = quick_config(&["proofs/poseidon2/*"]);
    config.suites = vec![Suite::Proofs];
    config.repetitions = 1;
    let report = run(&config, opened(&[Fault::Digest]), &()).unwrap();
    assert_eq!(report.measurements.len(), 2);
    let cpu = &report.measurements[0];
    assert_eq!(cpu.status, Status::Passed, "{:?}", cpu.reason);
    assert!(cpu.proof_bytes.unwrap() > 0);
    let bad = &report.measurements[1];
    assert_eq!(bad.status, Status::Failed);
    assert!(bad.end_to_end.is_none() && bad.throughput.is_none());
    assert!(
        bad.reason.as_deref().unwrap().contains("does not verify"),
        "{:?}",
        bad.reason
    );
}

#[test]
fn a_workload_that_does_not_fit_is_skipped_with_the_reason() {
    let mut config = quick_config(&["kernels/lde/koalabear/*"]);
    config.host_memory_limit = Some(1 << 20);
    let report = run(&config, opened(&[]), &()).unwrap();
    let m = &report.measurements[0];
    assert_eq!(m.status, Status::Skipped);
    let reason = m.reason.as_deref().unwrap();
    assert!(
        reason == "needs about 1.5 MiB of host memory (estimate), machine has 1.0 MiB available",
        "{reason}"
    );
    assert!(m.end_to_end.is_none());
    assert_eq!(
        m.memory.host_estimate_bytes,
        16 * 4096 * 4 * (1 + 2 + 1 + 2)
    );
}
