use std::path::PathBuf;

/// What can stop the suite from running or from writing its reports. A workload that
/// fails its check is not an error: it is a failed [`crate::Measurement`].
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("no workload matches the chosen suites and filters ({filters})")]
    NoWorkloads { filters: String },
    #[error("no device to measure: {reasons}")]
    NoDevices { reasons: String },
    #[error("unknown device {device:?}: not a device of the chosen backends ({backends})")]
    UnknownDevice { device: String, backends: String },
    #[error("{}: {message}", path.display())]
    Io { path: PathBuf, message: String },
    #[error("report: {0}")]
    Json(String),
    #[error("report schema version {found} is not supported (expected {expected}.x)")]
    SchemaVersion {
        found: String,
        expected: &'static str,
    },
    #[error("chart {chart}: {message}")]
    Chart { chart: String, message: String },
    #[error("compare needs at least two reports, got {got}")]
    CompareInputs { got: usize },
}

impl BenchError {
    pub(crate) fn io(path: &std::path::Path, e: impl std::fmt::Display) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    }
}
