//! The report of one run: what `results.json` holds (`docs/benchmarking.md` and
//! `docs/benchmarking.schema.json` document it field by field).

use std::path::Path;

use proofbox_backend_api::{BackendKind, FieldId, TransferStats};
use proofbox_prover::CircuitId;
use serde::{Deserialize, Serialize};

use crate::device::SkippedBackend;
use crate::env::Environment;
use crate::error::BenchError;
use crate::workload::Suite;

/// The version of the JSON layout. A reader accepts reports of the same major
/// version; fields are only added within one.
pub const SCHEMA_VERSION: &str = "1.2";

/// The JSON Schema of [`Report`] (draft 2020-12).
pub const SCHEMA: &str = include_str!("../../../docs/benchmarking.schema.json");

/// One run of the suite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: String,
    pub suite_version: u32,
    pub run: RunInfo,
    pub environment: Environment,
    /// Backends (or devices) not measured, and why.
    pub skipped_backends: Vec<SkippedBackend>,
    pub measurements: Vec<Measurement>,
}

/// How the run was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    /// RFC 3339, UTC.
    pub started_at: String,
    pub finished_at: String,
    /// The seed every workload's inputs derive from.
    pub seed: u64,
    pub quick: bool,
    pub suites: Vec<Suite>,
    pub backends: Vec<BackendKind>,
    /// `--only` patterns (empty: every workload of the set).
    pub filters: Vec<String>,
    pub warmup: u32,
    pub repetitions: u32,
    /// The command line, as given.
    pub command: String,
    /// The run was stopped before every workload ran (Ctrl-C): the measurements are
    /// those made until then. Absent in reports from before schema 1.1 (read as
    /// `false`).
    #[serde(default)]
    pub interrupted: bool,
}

/// Passed (timed and checked), failed (wrong result or error: no time recorded), or
/// skipped (not run, with the reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Passed,
    Failed,
    Skipped,
}

impl Status {
    pub const fn name(self) -> &'static str {
        match self {
            Self::Passed => "passed",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
        }
    }
}

/// Times of the repetitions, in seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub min_s: f64,
    pub median_s: f64,
    pub max_s: f64,
    pub mean_s: f64,
    /// Every repetition, in order.
    pub samples_s: Vec<f64>,
}

impl Stats {
    /// Statistics of non-empty samples.
    pub fn of(samples: &[f64]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        Some(Self {
            min_s: sorted[0],
            median_s: median,
            max_s: sorted[n - 1],
            mean_s: sorted.iter().sum::<f64>() / n as f64,
            samples_s: samples.to_vec(),
        })
    }
}

/// Work per second at the median time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Throughput {
    pub value: f64,
    /// `elements/s`, `permutations/s`, `compressions/s` or `updates/s`.
    pub unit: String,
}

/// Host memory around the measured repetitions.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MemoryUse {
    /// The runner's estimate of what the workload needs on the host (inputs,
    /// reference, outputs), used to skip workloads that do not fit.
    pub host_estimate_bytes: u64,
    /// The same for the device's memory (`null` for the CPU backend and the state suite).
    pub device_estimate_bytes: Option<u64>,
    /// The process's resident set before the repetitions.
    pub host_rss_before_bytes: Option<u64>,
    /// The process's peak resident set during the repetitions (`VmHWM`, reset before
    /// them; `null` where the OS does not allow the reset).
    pub host_peak_rss_bytes: Option<u64>,
}

impl MemoryUse {
    /// Peak host memory the operation added above what the runner already held.
    pub fn host_peak_delta_bytes(&self) -> Option<u64> {
        Some(
            self.host_peak_rss_bytes?
                .saturating_sub(self.host_rss_before_bytes?),
        )
    }
}

/// One workload on one device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    pub workload: String,
    pub suite: Suite,
    pub operation: String,
    pub field: Option<FieldId>,
    pub log_rows: Option<u8>,
    pub width: Option<usize>,
    pub circuit: Option<CircuitId>,
    pub updates: Option<usize>,
    /// Rows (kernels, proofs) or updates (state).
    pub size: u64,
    pub backend: BackendKind,
    pub device: String,
    pub device_name: String,
    pub status: Status,
    /// Why it failed or was skipped.
    pub reason: Option<String>,
    /// What every output was checked against.
    pub check: String,
    /// This workload's input seed (derived from the run's seed and the workload id).
    pub seed: u64,
    pub warmup: u32,
    pub repetitions: u32,
    /// Wall time of each call as the caller sees it, transfers included. `null`
    /// unless passed.
    pub end_to_end: Option<Stats>,
    /// Time on the device alone, where measured (see `device_time_note`); `null`
    /// otherwise, never estimated.
    pub device_time: Option<Stats>,
    pub device_time_note: String,
    /// At the median end-to-end time. `null` unless passed.
    pub throughput: Option<Throughput>,
    pub memory: MemoryUse,
    /// Bytes of the proof artifact (proof workloads).
    pub proof_bytes: Option<u64>,
    /// What the last repetition moved between host and device memory: bytes and
    /// copies each way, waits for the device, kernel launches (all zeros on the CPU
    /// backend). `null` unless passed, and for workloads without a backend
    /// (`state/apply`). Added in 1.2 (absent, read as `null`, before).
    #[serde(default)]
    pub data_movement: Option<TransferStats>,
}

impl Measurement {
    /// The median end-to-end time of a passed measurement.
    pub fn median_s(&self) -> Option<f64> {
        (self.status == Status::Passed)
            .then(|| self.end_to_end.as_ref().map(|s| s.median_s))
            .flatten()
    }
}

impl Report {
    pub fn failures(&self) -> impl Iterator<Item = &Measurement> {
        self.measurements
            .iter()
            .filter(|m| m.status == Status::Failed)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report serializes")
    }

    /// Parses a report, refusing another major schema version.
    pub fn from_json(text: &str) -> Result<Self, BenchError> {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| BenchError::Json(e.to_string()))?;
        let found = v
            .get("schema_version")
            .and_then(|s| s.as_str())
            .unwrap_or("missing")
            .to_string();
        if found.split('.').next() != SCHEMA_VERSION.split('.').next() {
            return Err(BenchError::SchemaVersion {
                found,
                expected: SCHEMA_VERSION,
            });
        }
        serde_json::from_value(v).map_err(|e| BenchError::Json(e.to_string()))
    }

    /// Reads a report from a file.
    pub fn read(path: &Path) -> Result<Self, BenchError> {
        let text = std::fs::read_to_string(path).map_err(|e| BenchError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        Self::from_json(&text).map_err(|e| match e {
            BenchError::Json(m) => BenchError::Json(format!("{}: {m}", path.display())),
            other => other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats() {
        let s = Stats::of(&[3.0, 1.0, 2.0, 10.0]).unwrap();
        assert_eq!((s.min_s, s.median_s, s.max_s), (1.0, 2.5, 10.0));
        assert_eq!(s.samples_s, vec![3.0, 1.0, 2.0, 10.0]);
        assert_eq!(Stats::of(&[4.0, 1.0, 2.0]).unwrap().median_s, 2.0);
        assert!(Stats::of(&[]).is_none());
    }
}
