//! The files of a run: JSON, CSV, Markdown and charts.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use proofbox_backend_api::{BackendKind, DeviceType, TransferStats};

use crate::error::BenchError;
use crate::report::{Measurement, Report, SCHEMA, Status};
use crate::workload::Suite;

/// Names of the files [`write_all`] writes in the output folder.
pub const JSON_FILE: &str = "results.json";
pub const CSV_FILE: &str = "results.csv";
pub const MARKDOWN_FILE: &str = "summary.md";
pub const SCHEMA_FILE: &str = "results.schema.json";
pub const CHART_DIR: &str = "charts";

/// The CSV header, one column per field of a row.
pub const CSV_COLUMNS: [&str; 32] = [
    "framework",
    "suite_version",
    "machine",
    "workload",
    "suite",
    "operation",
    "field",
    "log_rows",
    "width",
    "circuit",
    "updates",
    "size",
    "backend",
    "device",
    "device_name",
    "status",
    "time_median_s",
    "time_min_s",
    "time_max_s",
    "device_time_median_s",
    "throughput",
    "throughput_unit",
    "memory_bytes",
    "proof_bytes",
    "host_to_device_bytes",
    "device_to_host_bytes",
    "host_to_device_copies",
    "device_to_host_copies",
    "sync_waits",
    "kernel_launches",
    "seed",
    "reason",
];

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// One row per measurement; empty cells for what does not apply or was not measured.
pub fn csv(report: &Report) -> String {
    let mut out = CSV_COLUMNS.join(",");
    out.push('\n');
    for m in &report.measurements {
        let e2e = m.end_to_end.as_ref().filter(|_| m.status == Status::Passed);
        let moved = m.data_movement.as_ref();
        let cells = [
            "proofbox".to_string(),
            report.suite_version.to_string(),
            report.environment.machine.clone(),
            m.workload.clone(),
            m.suite.name().into(),
            m.operation.clone(),
            opt(m.field),
            opt(m.log_rows),
            opt(m.width),
            opt(m.circuit),
            opt(m.updates),
            m.size.to_string(),
            m.backend.name().into(),
            m.device.clone(),
            m.device_name.clone(),
            m.status.name().into(),
            opt(e2e.map(|s| s.median_s)),
            opt(e2e.map(|s| s.min_s)),
            opt(e2e.map(|s| s.max_s)),
            opt(m.device_time.as_ref().map(|s| s.median_s)),
            opt(m.throughput.as_ref().map(|t| t.value)),
            opt(m.throughput.as_ref().map(|t| t.unit.clone())),
            opt(m.memory.host_peak_delta_bytes()),
            opt(m.proof_bytes),
            opt(moved.map(|t| t.host_to_device_bytes)),
            opt(moved.map(|t| t.device_to_host_bytes)),
            opt(moved.map(|t| t.host_to_device_copies)),
            opt(moved.map(|t| t.device_to_host_copies)),
            opt(moved.map(|t| t.sync_waits)),
            opt(moved.map(|t| t.kernel_launches)),
            m.seed.to_string(),
            opt(m.reason.clone()),
        ];
        let row: Vec<String> = cells.iter().map(|c| csv_field(c)).collect();
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}

/// Seconds as a short human figure.
pub fn fmt_time(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.3} s")
    } else if s >= 1e-3 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{:.1} µs", s * 1e6)
    }
}

/// `v` scaled to a k/M/G prefix: the scaled value and the prefix ("" below 1,000).
pub(crate) fn si_prefix(v: f64) -> (f64, &'static str) {
    if v >= 1e9 {
        (v / 1e9, "G")
    } else if v >= 1e6 {
        (v / 1e6, "M")
    } else if v >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    }
}

/// A rate with a k/M/G prefix.
pub fn fmt_rate(v: f64, unit: &str) -> String {
    let (x, p) = si_prefix(v);
    if p.is_empty() {
        format!("{x:.2} {unit}")
    } else {
        format!("{x:.2} {p} {unit}")
    }
}

fn fmt_bytes(b: u64) -> String {
    let gib = b as f64 / (1u64 << 30) as f64;
    if gib >= 1.0 {
        format!("{gib:.1} GiB")
    } else {
        format!("{:.0} MiB", b as f64 / (1u64 << 20) as f64)
    }
}

/// Bytes in the largest binary unit that keeps a whole number in front (`0 B`,
/// `256 KiB`, `1.5 MiB`).
fn fmt_size(b: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if b < 1024 {
        return format!("{b} B");
    }
    let mut v = b as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if v.fract() == 0.0 {
        format!("{v:.0} {}", UNITS[unit])
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// The CPU backend's median for each workload, for speed-ups.
pub fn cpu_medians(report: &Report) -> HashMap<&str, f64> {
    report
        .measurements
        .iter()
        .filter(|m| m.backend == BackendKind::Cpu)
        .filter_map(|m| Some((m.workload.as_str(), m.median_s()?)))
        .collect()
}

/// Speed-up of `m` over the CPU backend on the same workload.
pub fn speedup(m: &Measurement, cpu: &HashMap<&str, f64>) -> Option<f64> {
    Some(cpu.get(m.workload.as_str())? / m.median_s()?)
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The summary: environment, method, then one table per suite.
pub fn markdown(report: &Report, charts: &[PathBuf]) -> String {
    let env = &report.environment;
    let run = &report.run;
    let mut s = String::new();
    let _ = writeln!(s, "# ProofBox benchmark: {}\n", env.machine);
    let _ = writeln!(
        s,
        "Suite version {}, {} set; schema {}; seed {}; warm-up {}, {} repetitions; {} to {}.\n",
        report.suite_version,
        if run.quick { "quick" } else { "standard" },
        report.schema_version,
        run.seed,
        run.warmup,
        run.repetitions,
        run.started_at,
        run.finished_at
    );
    if !run.filters.is_empty() {
        let _ = writeln!(s, "Workloads matching: `{}`.\n", run.filters.join("`, `"));
    }
    if run.interrupted {
        let _ = writeln!(
            s,
            "**Interrupted**: the run was stopped before every workload ran; these are the {} measurements made until then.\n",
            report.measurements.len()
        );
    }
    let _ = writeln!(s, "## Environment\n");
    let _ = writeln!(
        s,
        "- CPU: {} ({} logical cores{}{}; SIMD {})",
        env.cpu.model.as_deref().unwrap_or("unknown"),
        env.cpu.logical_cores,
        env.cpu
            .physical_cores
            .map(|p| format!(", {p} physical"))
            .unwrap_or_default(),
        env.cpu
            .sockets
            .map(|p| format!(", {p} socket(s)"))
            .unwrap_or_default(),
        if env.cpu.simd.is_empty() {
            "none found".into()
        } else {
            env.cpu.simd.join(", ")
        }
    );
    let _ = writeln!(
        s,
        "- Memory: {} total, {} available at the start",
        env.memory
            .total_bytes
            .map(fmt_bytes)
            .unwrap_or("unknown".into()),
        env.memory
            .available_bytes
            .map(fmt_bytes)
            .unwrap_or("unknown".into())
    );
    let _ = writeln!(
        s,
        "- OS: {}, kernel {}, {}",
        env.os.name.as_deref().unwrap_or("unknown"),
        env.os.kernel.as_deref().unwrap_or("unknown"),
        env.os.arch
    );
    let _ = writeln!(
        s,
        "- ProofBox {} (commit {}); {}; profile {} (opt-level {}), target {}; rustflags `{}`; target features {}",
        env.proofbox.version,
        env.proofbox.commit,
        env.build.rustc,
        env.build.profile,
        env.build.opt_level,
        env.build.target,
        env.build.rustflags,
        if env.build.target_features.is_empty() {
            "none of note".to_string()
        } else {
            env.build.target_features.join(", ")
        }
    );
    for p in &env.opencl_platforms {
        let _ = writeln!(
            s,
            "- OpenCL platform: {} ({}), {}",
            p.name, p.vendor, p.version
        );
    }
    let _ = writeln!(
        s,
        "\n| device | backend | name | type | memory | driver | device-only time |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    for d in &env.devices {
        let ty = match (d.backend, d.device_type) {
            (BackendKind::Cpu, _) => "host CPU".to_string(),
            (_, DeviceType::Cpu) => "CPU driver (emulation, not an accelerator)".to_string(),
            (_, t) => format!("{t:?}").to_lowercase(),
        };
        let mut driver = d.driver.clone().unwrap_or_default();
        if let Some(b) = d.api.get("wgpu_backend") {
            driver = format!("{driver} [wgpu backend {b}]");
        }
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} |",
            d.id,
            d.backend,
            md_cell(&d.name),
            ty,
            if d.memory_bytes > 0 {
                fmt_bytes(d.memory_bytes)
            } else {
                "not reported".into()
            },
            md_cell(&driver),
            md_cell(&d.device_timing)
        );
    }
    if !report.skipped_backends.is_empty() {
        let _ = writeln!(s, "\nNot measured:\n");
        for b in &report.skipped_backends {
            let _ = writeln!(
                s,
                "- {}{}: {}",
                b.backend,
                b.device
                    .as_deref()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default(),
                b.reason
            );
        }
    }

    let count = |st: Status| {
        report
            .measurements
            .iter()
            .filter(|m| m.status == st)
            .count()
    };
    let _ = writeln!(s, "\n## Results\n");
    let failed: Vec<&Measurement> = report.failures().collect();
    if failed.is_empty() {
        let _ = writeln!(
            s,
            "All {} measurements run passed their checks; {} skipped.\n",
            count(Status::Passed),
            count(Status::Skipped)
        );
    } else {
        let _ = writeln!(
            s,
            "**{} measurement(s) FAILED their check** (no time is reported for them); {} passed, {} skipped.\n",
            failed.len(),
            count(Status::Passed),
            count(Status::Skipped)
        );
        for m in &failed {
            let _ = writeln!(
                s,
                "- FAILED {} on {}: {}",
                m.workload,
                m.device,
                m.reason.as_deref().unwrap_or("")
            );
        }
        s.push('\n');
    }
    let _ = writeln!(
        s,
        "Times are end to end (transfers included), median of the repetitions with min and max; \"device\" is the median time the device spent in kernels (see the device table for how each device measures it; for proofs, the part of the proof spent in the backend's kernels); throughput at the end-to-end median; \"vs CPU\" is the CPU backend's median over this one's (above 1: faster than the CPU backend); \"to device\", \"to host\" and \"waits\" are the bytes copied each way and the times the host blocked on the device during the last repetition (zero on the CPU backend, whose data never leaves host memory).\n"
    );
    let cpu = cpu_medians(report);
    for suite in Suite::ALL {
        let rows: Vec<&Measurement> = report
            .measurements
            .iter()
            .filter(|m| m.suite == suite && m.status == Status::Passed)
            .collect();
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(s, "### {suite}\n");
        let proofs = suite == Suite::Proofs;
        let _ = writeln!(
            s,
            "| workload | device | median | min | max | device | throughput | vs CPU | to device | to host | waits |{}",
            if proofs { " proof size |" } else { "" }
        );
        let _ = writeln!(
            s,
            "|---|---|---|---|---|---|---|---|---|---|---|{}",
            if proofs { "---|" } else { "" }
        );
        for m in rows {
            let e = m
                .end_to_end
                .as_ref()
                .expect("a passed measurement has times");
            let t = m
                .throughput
                .as_ref()
                .map(|t| fmt_rate(t.value, &t.unit))
                .unwrap_or_default();
            let moved = |f: fn(&TransferStats) -> String| {
                m.data_movement.as_ref().map_or_else(|| "-".into(), f)
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |{}",
                m.workload,
                m.device,
                fmt_time(e.median_s),
                fmt_time(e.min_s),
                fmt_time(e.max_s),
                m.device_time
                    .as_ref()
                    .map_or_else(|| "-".into(), |d| fmt_time(d.median_s)),
                t,
                speedup(m, &cpu)
                    .map(|x| format!("{x:.2}"))
                    .unwrap_or_else(|| "-".into()),
                moved(|t| fmt_size(t.host_to_device_bytes)),
                moved(|t| fmt_size(t.device_to_host_bytes)),
                moved(|t| t.sync_waits.to_string()),
                if proofs {
                    format!(
                        " {} |",
                        m.proof_bytes.map(|b| b.to_string()).unwrap_or_default()
                    )
                } else {
                    String::new()
                }
            );
        }
        s.push('\n');
    }
    let skipped: Vec<&Measurement> = report
        .measurements
        .iter()
        .filter(|m| m.status == Status::Skipped)
        .collect();
    if !skipped.is_empty() {
        let _ = writeln!(s, "### Skipped\n");
        for m in skipped {
            let _ = writeln!(
                s,
                "- {} on {}: {}",
                m.workload,
                m.device,
                m.reason.as_deref().unwrap_or("")
            );
        }
        s.push('\n');
    }
    if !charts.is_empty() {
        let _ = writeln!(s, "## Charts\n");
        for c in charts {
            let name = c.file_name().and_then(|n| n.to_str()).unwrap_or("chart");
            let _ = writeln!(s, "![{name}]({CHART_DIR}/{name})");
        }
    }
    s
}

fn write(path: &Path, text: &str) -> Result<(), BenchError> {
    std::fs::write(path, text).map_err(|e| BenchError::io(path, e))
}

/// What [`write_all`] wrote.
#[derive(Debug, Clone)]
pub struct Written {
    pub json: PathBuf,
    pub csv: PathBuf,
    pub markdown: PathBuf,
    pub schema: PathBuf,
    pub charts: Vec<PathBuf>,
}

/// Writes the JSON, CSV, Markdown, the schema and the charts into `dir` (created if
/// needed).
pub fn write_all(report: &Report, dir: &Path) -> Result<Written, BenchError> {
    std::fs::create_dir_all(dir).map_err(|e| BenchError::io(dir, e))?;
    let charts = crate::chart::write_charts(report, &dir.join(CHART_DIR))?;
    let w = Written {
        json: dir.join(JSON_FILE),
        csv: dir.join(CSV_FILE),
        markdown: dir.join(MARKDOWN_FILE),
        schema: dir.join(SCHEMA_FILE),
        charts,
    };
    write(&w.json, &report.to_json())?;
    write(&w.csv, &csv(report))?;
    write(&w.markdown, &markdown(report, &w.charts))?;
    write(&w.schema, SCHEMA)?;
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"x\""), "\"say \"\"x\"\"\"");
        assert_eq!(csv_field("plain"), "plain");
    }

    #[test]
    fn sizes_pick_a_unit() {
        assert_eq!(fmt_size(0), "0 B");
        assert_eq!(fmt_size(1023), "1023 B");
        assert_eq!(fmt_size(256 << 10), "256 KiB");
        assert_eq!(fmt_size(3 << 19), "1.5 MiB");
        assert_eq!(fmt_size(5 << 30), "5 GiB");
    }

    #[test]
    fn human_figures() {
        assert_eq!(fmt_time(1.5), "1.500 s");
        assert_eq!(fmt_time(0.0123), "12.30 ms");
        assert_eq!(fmt_time(0.0000123), "12.3 µs");
        assert_eq!(fmt_rate(2.5e7, "elements/s"), "25.00 M elements/s");
        assert_eq!(fmt_rate(12.0, "updates/s"), "12.00 updates/s");
    }
}
