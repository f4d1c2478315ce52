//! The one request type every backend proves.

use proofbox_backend_api::FieldId;
use serde::{Deserialize, Serialize};

use crate::circuits::{CircuitId, MAX_INPUT_BYTES, Statement};
use crate::config::FriPreset;

/// A proof request: what to prove, independent of where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofRequest {
    pub circuit: CircuitId,
    #[serde(default)]
    pub field: FieldId,
    /// log2 of the trace rows.
    pub log_rows: u8,
    #[serde(default)]
    pub fri: FriPreset,
    /// Seed of the inputs not given in `input`.
    #[serde(default)]
    pub seed: u64,
    /// Optional input bytes, absorbed into the first instances' inputs.
    #[serde(default)]
    pub input: Vec<u8>,
}

impl ProofRequest {
    /// A request with the defaults: KoalaBear, the standard FRI preset, seed 0, no input.
    pub fn new(circuit: CircuitId, log_rows: u8) -> Self {
        Self {
            circuit,
            field: FieldId::default(),
            log_rows,
            fri: FriPreset::default(),
            seed: 0,
            input: Vec::new(),
        }
    }

    /// Checks the request against the circuit's limits before any work starts.
    pub fn validate(&self) -> Result<(), RequestError> {
        let (min, max) = (self.circuit.min_log_rows(), self.circuit.max_log_rows());
        if self.log_rows < min || self.log_rows > max {
            return Err(RequestError::LogRowsOutOfRange {
                circuit: self.circuit,
                log_rows: self.log_rows,
                min,
                max,
            });
        }
        if !self.circuit.fields().contains(&self.field) {
            return Err(RequestError::FieldNotSupported {
                circuit: self.circuit,
                field: self.field,
            });
        }
        if self.input.len() > MAX_INPUT_BYTES {
            return Err(RequestError::InputTooLarge {
                len: self.input.len(),
                max: MAX_INPUT_BYTES,
            });
        }
        let capacity = self.statement().input_capacity();
        if self.input.len() > capacity {
            return Err(RequestError::InputTooLarge {
                len: self.input.len(),
                max: capacity,
            });
        }
        Ok(())
    }

    pub fn statement(&self) -> Statement {
        Statement {
            circuit: self.circuit,
            log_rows: self.log_rows,
            seed: self.seed,
            input: self.input.clone(),
        }
    }
}

/// A request that cannot be proved as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("circuit {circuit}: log_rows {log_rows} outside the supported range {min}..={max}")]
    LogRowsOutOfRange {
        circuit: CircuitId,
        log_rows: u8,
        min: u8,
        max: u8,
    },
    #[error("input of {len} bytes exceeds the limit of {max} bytes")]
    InputTooLarge { len: usize, max: usize },
    #[error("circuit {circuit} is not defined over field {field}")]
    FieldNotSupported { circuit: CircuitId, field: FieldId },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_sizes_are_refused_with_the_limit() {
        let err = ProofRequest::new(CircuitId::Poseidon2, 40)
            .validate()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "circuit poseidon2: log_rows 40 outside the supported range 3..=20"
        );
        let mut r = ProofRequest::new(CircuitId::Blake3, 3);
        r.input = vec![0; 8 * 96 + 1];
        assert!(matches!(
            r.validate(),
            Err(RequestError::InputTooLarge { max: 768, .. })
        ));
        r.input.pop();
        r.validate().unwrap();
    }

    #[test]
    fn json_defaults() {
        let r: ProofRequest = serde_json::from_str(r#"{"circuit":"keccak","log_rows":6}"#).unwrap();
        assert_eq!(r, ProofRequest::new(CircuitId::Keccak, 6));
        assert!(
            serde_json::from_str::<ProofRequest>(r#"{"circuit":"sha256","log_rows":6}"#).is_err()
        );
    }
}
