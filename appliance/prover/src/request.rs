//! The one request type every backend proves.

use proofbox_backend_api::FieldId;
use serde::{Deserialize, Serialize};

pub use proofbox_circuits::RequestError;
use proofbox_circuits::{CircuitId, Statement};
use proofbox_verifier::FriPreset;

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

    /// Checks the request against the circuit's limits before any work starts (the
    /// limits the verifier applies too, [`Statement::validate`]).
    pub fn validate(&self) -> Result<(), RequestError> {
        self.statement().validate(self.field)
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
