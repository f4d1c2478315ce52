//! Data movement per proof in the suite's reports: zeros on the CPU backend, the
//! counted copies, waits and launches of each device backend that runs here (on the
//! prover's resident path), in the JSON record, the CSV columns and the Markdown
//! table.

use proofbox_backend_api::{BackendKind, FieldId, TransferStats};
use proofbox_bench::workload::PROOF_FRI;
use proofbox_bench::{RunConfig, Status, Suite, open_devices, output, run};
use proofbox_prover::CircuitId;
use proofbox_prover::memory::trace_width;

/// Rows of the quick set's Poseidon2 proof.
const LOG_ROWS: u32 = 8;

fn poseidon2_proof_config(kind: BackendKind) -> RunConfig {
    let mut c = RunConfig::new(true);
    c.backends = vec![BackendKind::Cpu, kind];
    c.suites = vec![Suite::Proofs];
    c.filters = vec![format!("proofs/poseidon2/koalabear/log{LOG_ROWS}")];
    c.warmup = 0;
    c.repetitions = 1;
    c
}

#[test]
fn a_proof_reports_what_each_device_backend_moved() {
    for kind in [BackendKind::Wgpu, BackendKind::Opencl, BackendKind::Cuda] {
        let opened = open_devices(&[BackendKind::Cpu, kind], &[]);
        if let Some(s) = opened.skipped.iter().find(|s| s.backend == kind) {
            proofbox_conformance::require_or_skip(kind, "data movement of a proof", &s.reason);
            continue;
        }
        let report = run(&poseidon2_proof_config(kind), opened, &()).unwrap();
        assert!(report.measurements.len() >= 2, "{:?}", report.measurements);
        // Device backends prove on the resident path: the trace goes to the device, its
        // extension never comes back whole (the quotient reads the quotient domain's
        // rows, half of it at Poseidon2's two chunks and blowup 4).
        let width = trace_width(CircuitId::Poseidon2, FieldId::KoalaBear) as u64;
        let trace_bytes = width << LOG_ROWS << 2;
        let lde_bytes = trace_bytes << PROOF_FRI.params().log_blowup;
        for m in &report.measurements {
            assert_eq!(
                m.status,
                Status::Passed,
                "{} on {}: {:?}",
                m.workload,
                m.device,
                m.reason
            );
            let t = m
                .data_movement
                .expect("a passed proof reports its data movement");
            if m.backend == BackendKind::Cpu {
                assert_eq!(t, TransferStats::default(), "the CPU backend moves nothing");
                continue;
            }
            println!(
                "{} on {}: to device {} B in {} copies ({} B of tables), to host {} B in {} \
                 copies, {} waits, {} kernel launches (trace {trace_bytes} B, its LDE \
                 {lde_bytes} B)",
                m.workload,
                m.device,
                t.host_to_device_bytes,
                t.host_to_device_copies,
                t.table_bytes,
                t.device_to_host_bytes,
                t.device_to_host_copies,
                t.sync_waits,
                t.kernel_launches
            );
            assert!(t.data_to_device_bytes() >= trace_bytes, "{t:?}");
            assert!(t.device_to_host_bytes < lde_bytes, "{t:?}");
            assert!(
                t.host_to_device_copies > 0 && t.device_to_host_copies > 0,
                "{t:?}"
            );
            assert!(t.sync_waits > 0, "{t:?}");
            assert!(t.kernel_launches > 0, "{t:?}");

            // The CSV row and the Markdown table carry the same figures.
            let csv = output::csv(&report);
            let row = csv
                .lines()
                .find(|l| l.contains(&format!(",{},", m.device)))
                .expect("a CSV row per measurement");
            // Names and device descriptions may hold quoted commas: match the run of
            // data-movement cells, which follow the proof size.
            let after = |name: &str| output::CSV_COLUMNS.iter().position(|c| *c == name);
            assert_eq!(
                (after("host_to_device_bytes"), after("kernel_launches")),
                (
                    after("proof_bytes").map(|i| i + 1),
                    after("proof_bytes").map(|i| i + 6)
                )
            );
            let cells = format!(
                ",{},{},{},{},{},{},{},",
                m.proof_bytes.unwrap(),
                t.host_to_device_bytes,
                t.device_to_host_bytes,
                t.host_to_device_copies,
                t.device_to_host_copies,
                t.sync_waits,
                t.kernel_launches
            );
            assert!(row.contains(&cells), "{row} lacks {cells}");
            let md = output::markdown(&report, &[]);
            let line = md
                .lines()
                .find(|l| l.starts_with(&format!("| {} | {} |", m.workload, m.device)))
                .expect("a Markdown row per passed measurement");
            assert!(line.contains(&format!(" {} |", t.sync_waits)), "{line}");
        }
    }
}
