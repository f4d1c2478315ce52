//! The verifier: a policy (the security floor) and the checks, with stock Plonky3 types
//! only.

use std::panic::{AssertUnwindSafe, catch_unwind};

use p3_air::Air;
use p3_baby_bear::BabyBear;
use p3_blake3_air::Blake3Air;
use p3_challenger::GrindingChallenger;
use p3_keccak_air::KeccakAir;
use p3_koala_bear::KoalaBear;
use p3_uni_stark::{Proof, StarkGenericConfig, SymbolicAirBuilder, Val, VerifierConstraintFolder};
use proofbox_backend_api::FieldId;
use proofbox_circuits::transition::{ChunkStatement, TransitionAir, TransitionStatement};
use proofbox_circuits::{CircuitField, CircuitId, WithStatement};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::artifact::{ArtifactError, ProofArtifact};
use crate::bundle::{BUNDLE_MAGIC, TransitionProof};
use crate::config::stock;
use crate::error::{FloorError, VerifyError};
use crate::params::MAX_SECURITY_BITS;

/// Why a state-transition proof that does not start a diff is refused on its own.
pub(crate) const CHUNK_ALONE: &str = "this proof continues a diff sponge started by an \
     earlier proof: it is a chunk of a bundle, verify the whole bundle";

/// The floor a [`Verifier`] starts with: 100 conjectured bits.
pub const DEFAULT_MIN_SECURITY_BITS: u32 = 100;

/// What a verifier demands of every proof beyond validity: at least
/// `min_security_bits` of conjectured security
/// ([`crate::FriParams::conjectured_security_bits`]), computed by the verifier from the
/// proof's parameters and compared before any other work. A proof cannot lower it:
/// the floor is the verifier's, set by whoever runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verifier {
    min_security_bits: u32,
}

impl Default for Verifier {
    fn default() -> Self {
        Self {
            min_security_bits: DEFAULT_MIN_SECURITY_BITS,
        }
    }
}

/// What a verified proof (or bundle) states, and with what security.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verified {
    pub circuit: CircuitId,
    pub field: FieldId,
    /// log2 of the trace rows (for a bundle, of its largest proof).
    pub log_rows: u8,
    /// The proof's conjectured security (for a bundle, its weakest proof's).
    pub security_bits: u32,
    /// The floor it was checked against.
    pub min_security_bits: u32,
    /// Proofs checked: 1, or a bundle's chunks.
    pub proofs: usize,
    /// For a state transition, the whole diff's statement the proof (or bundle) proves.
    pub transition: Option<TransitionStatement>,
}

impl Verifier {
    /// A verifier with the default floor ([`DEFAULT_MIN_SECURITY_BITS`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// A verifier with a floor of `min_security_bits` (0 accepts any parameters, for
    /// tests and experiments); above [`MAX_SECURITY_BITS`] no proof could pass.
    pub fn with_min_security_bits(min_security_bits: u32) -> Result<Self, FloorError> {
        if min_security_bits > MAX_SECURITY_BITS {
            return Err(FloorError {
                requested: min_security_bits,
                max: MAX_SECURITY_BITS,
            });
        }
        Ok(Self { min_security_bits })
    }

    pub fn min_security_bits(&self) -> u32 {
        self.min_security_bits
    }

    /// Verifies one artifact. A state-transition artifact must prove a whole diff (its
    /// diff sponge starts at the header state): a chunk from the middle of a bundle
    /// is refused here and verified only within its bundle
    /// ([`Verifier::verify_bundle`]).
    pub fn verify(&self, artifact: &ProofArtifact) -> Result<Verified, VerifyError> {
        if artifact.circuit == CircuitId::StateTransition {
            let statement = transition_statement(artifact)?;
            if !statement.starts_a_diff() {
                return Err(VerifyError::Chain(CHUNK_ALONE.into()));
            }
            let security_bits = self.verify_proof(artifact)?;
            return Ok(Verified {
                transition: Some(statement.ends(statement.pre_root)),
                ..self.verified(artifact, security_bits, 1)
            });
        }
        let security_bits = self.verify_proof(artifact)?;
        Ok(self.verified(artifact, security_bits, 1))
    }

    /// Parses and verifies artifact bytes.
    pub fn verify_bytes(&self, bytes: &[u8]) -> Result<(ProofArtifact, Verified), VerifyError> {
        let artifact = ProofArtifact::from_bytes(bytes)?;
        let verified = self.verify(&artifact)?;
        Ok((artifact, verified))
    }

    /// Verifies bytes that hold either one artifact or a bundle of chained
    /// state-transition proofs (told apart by their magic).
    pub fn verify_any_bytes(&self, bytes: &[u8]) -> Result<Verified, VerifyError> {
        if bytes.starts_with(&BUNDLE_MAGIC) {
            self.verify_bundle(&TransitionProof::from_bytes(bytes)?)
        } else {
            self.verify_bytes(bytes).map(|(_, v)| v)
        }
    }

    /// The checks every proof passes, a chunk of a bundle included: well-formed
    /// parameters, the statement within its circuit's limits, the security floor, the
    /// public values, then the proof itself (stock Plonky3 verifier, under
    /// `catch_unwind`: a malformed proof is rejected, never a crash). Returns the
    /// proof's conjectured security.
    pub(crate) fn verify_proof(&self, a: &ProofArtifact) -> Result<u32, VerifyError> {
        a.fri.validate().map_err(VerifyError::Parameters)?;
        a.statement()
            .validate(a.field)
            .map_err(|e| VerifyError::Parameters(e.to_string()))?;
        let bits = a.fri.conjectured_security_bits();
        if bits < self.min_security_bits {
            return Err(VerifyError::InsufficientSecurity {
                bits,
                min: self.min_security_bits,
            });
        }
        let expected = a.circuit.num_public_values();
        if a.public_values.len() != expected {
            return Err(VerifyError::Parameters(format!(
                "{} public values, expected {expected}",
                a.public_values.len()
            )));
        }
        if a.circuit == CircuitId::StateTransition && (a.seed != 0 || !a.input.is_empty()) {
            return Err(VerifyError::Parameters(
                "a state-transition artifact carries seed 0 and no input (its statement is its \
                 public values)"
                    .into(),
            ));
        }
        let result = catch_unwind(AssertUnwindSafe(|| match (a.circuit, a.field) {
            (CircuitId::StateTransition, _) => verify_transition_proof(a),
            (_, FieldId::KoalaBear) => verify_benchmark::<KoalaBear>(a),
            (_, FieldId::BabyBear) => verify_benchmark::<BabyBear>(a),
        }));
        match result {
            Ok(r) => r.map(|()| bits),
            Err(payload) => Err(VerifyError::Rejected(format!(
                "internal error: {}",
                panic_message(&payload)
            ))),
        }
    }

    pub(crate) fn verified(
        &self,
        a: &ProofArtifact,
        security_bits: u32,
        proofs: usize,
    ) -> Verified {
        Verified {
            circuit: a.circuit,
            field: a.field,
            log_rows: a.log_rows,
            security_bits,
            min_security_bits: self.min_security_bits,
            proofs,
            transition: None,
        }
    }
}

/// Verifies an artifact with the default verifier ([`Verifier::default`]).
pub fn verify(artifact: &ProofArtifact) -> Result<Verified, VerifyError> {
    Verifier::default().verify(artifact)
}

/// Parses and verifies artifact bytes with the default verifier.
pub fn verify_bytes(bytes: &[u8]) -> Result<ProofArtifact, VerifyError> {
    Verifier::default().verify_bytes(bytes).map(|(a, _)| a)
}

fn panic_message(payload: &Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into())
}

/// The chunk statement a state-transition artifact's public values state.
pub(crate) fn transition_statement(a: &ProofArtifact) -> Result<ChunkStatement, VerifyError> {
    if a.circuit != CircuitId::StateTransition {
        return Err(VerifyError::Parameters(format!(
            "a {} proof, not a state transition",
            a.circuit
        )));
    }
    ChunkStatement::from_public_values(&a.public_values).ok_or_else(|| {
        VerifyError::Parameters("public values are not a state-transition statement".into())
    })
}

/// A state-transition proof against the public values it carries (its statement is
/// those values: callers compare them with the roots and diff they know).
fn verify_transition_proof(a: &ProofArtifact) -> Result<(), VerifyError> {
    let statement = transition_statement(a)?;
    let config = stock::config::<KoalaBear>(&a.fri);
    verify_air(
        &config,
        &TransitionAir::new(),
        a,
        &statement.public_values(),
    )
}

/// A benchmark-circuit proof: its public values must be the digest of the statement
/// the artifact names.
fn verify_benchmark<F: StockAir>(a: &ProofArtifact) -> Result<(), VerifyError> {
    let p = F::ID.modulus();
    if a.public_values.iter().any(|&v| v >= p) {
        return Err(VerifyError::Parameters(
            "public value not below the field modulus".into(),
        ));
    }
    let public_values: Vec<F> = a.public_values.iter().map(|&v| F::from_u32(v)).collect();
    if public_values[..] != a.statement().digest::<F>()[..] {
        return Err(VerifyError::StatementMismatch);
    }
    F::verify_stock(a, &public_values)
}

/// One macro body per field, so that each field's Poseidon2 AIR type is concrete.
macro_rules! stock_air_for {
    ($($field:ty),*) => {
        /// A field whose benchmark circuits verify with the stock configuration.
        trait StockAir: CircuitField {
            fn verify_stock(a: &ProofArtifact, public_values: &[Self]) -> Result<(), VerifyError>;
        }
        $(impl StockAir for $field {
            fn verify_stock(a: &ProofArtifact, public_values: &[Self]) -> Result<(), VerifyError> {
                let config = stock::config::<$field>(&a.fri);
                match a.circuit {
                    CircuitId::Poseidon2 => {
                        verify_air(&config, &<$field>::poseidon2_air(), a, public_values)
                    }
                    CircuitId::Keccak => {
                        verify_air(&config, &WithStatement(KeccakAir {}), a, public_values)
                    }
                    CircuitId::Blake3 => {
                        verify_air(&config, &WithStatement(Blake3Air {}), a, public_values)
                    }
                    CircuitId::StateTransition => {
                        unreachable!("verified by verify_transition_proof")
                    }
                }
            }
        })*
    };
}
stock_air_for!(KoalaBear, BabyBear);

/// Verifies the artifact's proof bytes against `air` under `config`, with the public
/// values given (not re-derived): the lowest layer, which applies no floor (the
/// caller chose `config`). [`Verifier::verify`] is the API.
pub fn verify_air<SC, A>(
    config: &SC,
    air: &A,
    a: &ProofArtifact,
    public_values: &[Val<SC>],
) -> Result<(), VerifyError>
where
    SC: StarkGenericConfig,
    SC::Challenger: GrindingChallenger<Witness = Val<SC>>,
    A: Air<SymbolicAirBuilder<Val<SC>>> + for<'a> Air<VerifierConstraintFolder<'a, SC>>,
    Proof<SC>: DeserializeOwned,
{
    let (proof, rest) = postcard::take_from_bytes::<Proof<SC>>(&a.proof).map_err(|e| {
        VerifyError::Artifact(ArtifactError::Malformed(format!("Plonky3 proof: {e}")))
    })?;
    if !rest.is_empty() {
        return Err(VerifyError::Artifact(ArtifactError::Malformed(format!(
            "{} bytes after the Plonky3 proof",
            rest.len()
        ))));
    }
    if proof.degree_bits != a.log_rows as usize {
        return Err(VerifyError::DegreeMismatch {
            proof: proof.degree_bits,
            claimed: a.log_rows,
        });
    }
    p3_uni_stark::verify(config, air, &proof, public_values)
        .map_err(|e| VerifyError::Rejected(format!("{e:?}")))
}
