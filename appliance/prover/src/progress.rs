//! Progress reporting for long proofs.

use serde::{Deserialize, Serialize};

/// The stages of one proof, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Generating the execution trace.
    Trace,
    /// LDE and Merkle commitment of the trace.
    Commit,
    /// Quotient polynomial: evaluation, LDE and commitment.
    Quotient,
    /// Out-of-domain openings and FRI.
    Open,
    /// Serializing the proof artifact.
    Finish,
}

impl Stage {
    pub const fn name(self) -> &'static str {
        match self {
            Self::Trace => "trace",
            Self::Commit => "commit",
            Self::Quotient => "quotient",
            Self::Open => "open",
            Self::Finish => "finish",
        }
    }
}

/// Receives stage changes. Called from prover threads: keep it cheap.
pub trait Progress: Send + Sync {
    fn stage(&self, stage: Stage);
}

/// No reporting.
impl Progress for () {
    fn stage(&self, _stage: Stage) {}
}

impl<F: Fn(Stage) + Send + Sync> Progress for F {
    fn stage(&self, stage: Stage) {
        self(stage)
    }
}
