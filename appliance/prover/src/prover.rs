//! `prove` and `verify`, generic over the backend, and the dyn layer that picks a
//! backend at run time.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use p3_air::{Air, DebugConstraintBuilder};
use p3_baby_bear::BabyBear;
use p3_blake3_air::Blake3Air;
use p3_challenger::GrindingChallenger;
use p3_field::PrimeField32;
use p3_keccak_air::KeccakAir;
use p3_koala_bear::KoalaBear;
use p3_matrix::Matrix;
use p3_matrix::dense::RowMajorMatrix;
use p3_uni_stark::{
    Proof, QuotientAir, StarkGenericConfig, SymbolicAirBuilder, Val, VerifierConstraintFolder,
};
use proofbox_backend_api::{Backend, BackendError, BackendField, BackendKind, DeviceInfo, FieldId};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::adapters::{BackendFailure, StageTracker};
use crate::artifact::{ArtifactError, ProofArtifact};
use crate::circuits::{CircuitField, CircuitId, WithStatement};
use crate::config::{self, FriParams, FriPreset, stock};
use crate::progress::{Progress, Stage};
use crate::request::{ProofRequest, RequestError};
use crate::selftest::{self, SelfTestError, SelfTestReport};
use crate::transition::{self, ChunkStatement, TransitionAir, TransitionInput, TransitionProof};

/// Why a proof was not produced.
#[derive(Debug, thiserror::Error)]
pub enum ProveError {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error("backend failed: {0}")]
    Backend(#[from] BackendError),
    #[error("field {field} is not supported by device {device}")]
    UnsupportedField { field: FieldId, device: String },
    #[error("prover failed: {0}")]
    Prover(String),
    #[error("state transition refused: {0}")]
    Transition(String),
}

/// Why a proof was rejected.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    #[error("invalid proof parameters: {0}")]
    Parameters(String),
    #[error("public values do not match the statement (circuit, size, seed and input)")]
    StatementMismatch,
    #[error("proof is for 2^{proof} rows but claims 2^{claimed}")]
    DegreeMismatch { proof: usize, claimed: u8 },
    #[error("proof rejected: {0}")]
    Rejected(String),
    #[error("state-transition proofs do not chain: {0}")]
    Chain(String),
}

/// Proves requests on backend `B` (static dispatch all the way down).
pub struct Prover<B> {
    backend: Arc<B>,
}

impl<B: Backend> Prover<B> {
    pub fn new(backend: B) -> Self {
        Self {
            backend: Arc::new(backend),
        }
    }

    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// Proves `req`, reporting stages to `progress`. A backend failure fails this
    /// proof only.
    pub fn prove(
        &self,
        req: &ProofRequest,
        progress: Arc<dyn Progress>,
    ) -> Result<ProofArtifact, ProveError> {
        req.validate()?;
        if !self.backend.device().fields.contains(&req.field) {
            return Err(ProveError::UnsupportedField {
                field: req.field,
                device: self.backend.device().id.clone(),
            });
        }
        let fri = req.fri.params();
        if req.circuit == CircuitId::StateTransition {
            progress.stage(Stage::Trace);
            let updates = req.circuit.instances(req.log_rows);
            let input = transition::seeded_input(req.seed, updates);
            let mut artifact = self.prove_transition(&input, req.fri, progress)?;
            artifact.seed = req.seed;
            return Ok(artifact);
        }
        let tracker = StageTracker::new(progress.clone());
        let result = catch_unwind(AssertUnwindSafe(|| match req.field {
            FieldId::KoalaBear => self.prove_in::<KoalaBear>(req, &fri, tracker, &*progress),
            FieldId::BabyBear => self.prove_in::<BabyBear>(req, &fri, tracker, &*progress),
        }));
        let (public_values, proof) = match result {
            Ok(r) => r?,
            Err(payload) => return Err(panic_to_error(payload)),
        };
        progress.stage(Stage::Finish);
        Ok(ProofArtifact {
            circuit: req.circuit,
            field: req.field,
            log_rows: req.log_rows,
            fri,
            seed: req.seed,
            input: req.input.clone(),
            public_values,
            proof,
        })
    }

    /// Proves a state transition: checks the witnesses natively first (a wrong one is
    /// a [`ProveError::Transition`]), then builds the trace and proves it. The input
    /// may be a chunk of a bundle ([`TransitionInput::build_chunks`]); its proof then
    /// states that chunk ([`transition::ChunkStatement`]).
    pub fn prove_transition(
        &self,
        input: &TransitionInput,
        fri: FriPreset,
        progress: Arc<dyn Progress>,
    ) -> Result<ProofArtifact, ProveError> {
        let statement = input
            .chunk_statement()
            .map_err(|e| ProveError::Transition(e.to_string()))?;
        self.prove_checked_transition(input, &statement, fri, progress)
    }

    /// Proves a diff in chunks ([`TransitionInput::build_chunks`]), one proof per
    /// chunk, in order: checks every chunk's witnesses and that the chunks chain into
    /// one diff's transition first ([`transition::check_chunks`]; a failure is a
    /// [`ProveError::Transition`] before any proving work). Peak memory is that of the
    /// largest chunk's proof.
    pub fn prove_transition_chunks(
        &self,
        chunks: &[TransitionInput],
        fri: FriPreset,
        progress: Arc<dyn Progress>,
    ) -> Result<TransitionProof, ProveError> {
        let statements =
            transition::check_chunks(chunks).map_err(|e| ProveError::Transition(e.to_string()))?;
        let chunks = chunks
            .iter()
            .zip(&statements)
            .map(|(c, s)| self.prove_checked_transition(c, s, fri, progress.clone()))
            .collect::<Result<_, _>>()?;
        Ok(TransitionProof { chunks })
    }

    fn prove_checked_transition(
        &self,
        input: &TransitionInput,
        statement: &ChunkStatement,
        fri: FriPreset,
        progress: Arc<dyn Progress>,
    ) -> Result<ProofArtifact, ProveError> {
        progress.stage(Stage::Trace);
        let trace = input.trace(fri.params().log_blowup as usize);
        self.prove_transition_trace(trace, statement, fri, progress)
    }

    /// Proves a state-transition trace for `statement` as given, unchecked: for tests
    /// that need proofs of wrong statements. [`Prover::prove_transition`] is the API.
    #[doc(hidden)]
    pub fn prove_transition_trace(
        &self,
        trace: RowMajorMatrix<KoalaBear>,
        statement: &ChunkStatement,
        fri: FriPreset,
        progress: Arc<dyn Progress>,
    ) -> Result<ProofArtifact, ProveError> {
        if !self.backend.device().fields.contains(&FieldId::KoalaBear) {
            return Err(ProveError::UnsupportedField {
                field: FieldId::KoalaBear,
                device: self.backend.device().id.clone(),
            });
        }
        let params = fri.params();
        let log_rows = trace.height().trailing_zeros() as u8;
        let public_values = statement.public_values();
        let tracker = StageTracker::new(progress.clone());
        let result = catch_unwind(AssertUnwindSafe(|| {
            let config = config::config::<B, KoalaBear>(self.backend.clone(), &params, tracker);
            prove_air(&config, &TransitionAir::new(), trace, &public_values)
        }));
        let proof = match result {
            Ok(r) => r?,
            Err(payload) => return Err(panic_to_error(payload)),
        };
        progress.stage(Stage::Finish);
        Ok(ProofArtifact {
            circuit: CircuitId::StateTransition,
            field: FieldId::KoalaBear,
            log_rows,
            fri: params,
            seed: 0,
            input: Vec::new(),
            public_values: public_values.iter().map(|v| v.as_canonical_u32()).collect(),
            proof,
        })
    }

    fn prove_in<F: CircuitField>(
        &self,
        req: &ProofRequest,
        fri: &FriParams,
        tracker: StageTracker,
        progress: &dyn Progress,
    ) -> Result<(Vec<u32>, Vec<u8>), ProveError> {
        progress.stage(Stage::Trace);
        let statement = req.statement();
        let trace = statement.trace::<F>(fri.log_blowup as usize);
        let public_values = statement.digest::<F>().to_vec();
        let config = config::config::<B, F>(self.backend.clone(), fri, tracker);
        let proof = match req.circuit {
            CircuitId::Poseidon2 => F::prove_poseidon2(&config, trace, &public_values),
            CircuitId::Keccak => {
                prove_air(&config, &WithStatement(KeccakAir {}), trace, &public_values)
            }
            CircuitId::Blake3 => {
                prove_air(&config, &WithStatement(Blake3Air {}), trace, &public_values)
            }
            CircuitId::StateTransition => unreachable!("proved by prove_transition"),
        }?;
        Ok((
            public_values.iter().map(|v| v.as_canonical_u32()).collect(),
            proof,
        ))
    }
}

pub(crate) fn prove_air<SC, A>(
    config: &SC,
    air: &A,
    trace: RowMajorMatrix<Val<SC>>,
    public_values: &[Val<SC>],
) -> Result<Vec<u8>, ProveError>
where
    SC: StarkGenericConfig,
    SC::Challenger: GrindingChallenger<Witness = Val<SC>>,
    A: QuotientAir<SC> + for<'a> Air<DebugConstraintBuilder<'a, Val<SC>>>,
    Proof<SC>: Serialize,
{
    let proof = p3_uni_stark::prove(config, air, trace, public_values)
        .map_err(|e| ProveError::Prover(e.to_string()))?;
    postcard::to_allocvec(&proof)
        .map_err(|e| ProveError::Prover(format!("serializing the proof: {e}")))
}

fn panic_to_error(payload: Box<dyn std::any::Any + Send>) -> ProveError {
    if let Some(BackendFailure(e)) = payload.downcast_ref::<BackendFailure>() {
        return ProveError::Backend(e.clone());
    }
    let msg = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into());
    ProveError::Prover(format!("internal error: {msg}"))
}

/// Verifies an artifact with stock Plonky3 types only (no backend, no adapters).
pub fn verify(artifact: &ProofArtifact) -> Result<(), VerifyError> {
    check_parameters(artifact)?;
    let result = catch_unwind(AssertUnwindSafe(|| {
        match (artifact.circuit, artifact.field) {
            (CircuitId::StateTransition, _) => verify_transition_proof(artifact),
            (_, FieldId::KoalaBear) => verify_in::<KoalaBear>(artifact),
            (_, FieldId::BabyBear) => verify_in::<BabyBear>(artifact),
        }
    }));
    match result {
        Ok(r) => r,
        Err(payload) => Err(VerifyError::Rejected(match panic_to_error(payload) {
            ProveError::Prover(m) => m,
            other => other.to_string(),
        })),
    }
}

/// Parses and verifies artifact bytes.
pub fn verify_bytes(bytes: &[u8]) -> Result<ProofArtifact, VerifyError> {
    let artifact = ProofArtifact::from_bytes(bytes)?;
    verify(&artifact)?;
    Ok(artifact)
}

fn check_parameters(a: &ProofArtifact) -> Result<(), VerifyError> {
    let req = ProofRequest {
        circuit: a.circuit,
        field: a.field,
        log_rows: a.log_rows,
        fri: Default::default(),
        seed: a.seed,
        input: a.input.clone(),
    };
    req.validate()
        .map_err(|e| VerifyError::Parameters(e.to_string()))?;
    a.fri.validate().map_err(VerifyError::Parameters)?;
    let expected = a.circuit.num_public_values();
    if a.public_values.len() != expected {
        return Err(VerifyError::Parameters(format!(
            "{} public values, expected {expected}",
            a.public_values.len()
        )));
    }
    Ok(())
}

/// A state-transition proof against the public values it carries (the statement is
/// those values: the caller compares them with the roots and diff it knows and checks
/// where the diff sponge starts, see [`transition::verify_transition`] and
/// [`transition::verify_transition_chunks`]).
fn verify_transition_proof(a: &ProofArtifact) -> Result<(), VerifyError> {
    let statement = ChunkStatement::from_public_values(&a.public_values).ok_or_else(|| {
        VerifyError::Parameters("public values are not a state-transition statement".into())
    })?;
    let config = stock::config::<KoalaBear>(&a.fri);
    verify_air(
        &config,
        &TransitionAir::new(),
        a,
        &statement.public_values(),
    )
}

fn verify_in<F: CircuitField>(a: &ProofArtifact) -> Result<(), VerifyError> {
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
    let config = stock::config::<F>(&a.fri);
    match a.circuit {
        CircuitId::Poseidon2 => F::verify_poseidon2(&config, a, &public_values),
        CircuitId::Keccak => verify_air(&config, &WithStatement(KeccakAir {}), a, &public_values),
        CircuitId::Blake3 => verify_air(&config, &WithStatement(Blake3Air {}), a, &public_values),
        CircuitId::StateTransition => unreachable!("verified by verify_transition_proof"),
    }
}

/// Verifies the artifact's proof bytes against `air` under `config`, with the
/// public values given (not re-derived): the lowest layer of [`verify`].
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

/// A prover behind a trait object: how the CLI and the service hold "whichever
/// backend the operator chose". One virtual call per proof; everything inside is
/// monomorphised for the backend.
pub trait DynProver: Send + Sync {
    fn backend_kind(&self) -> BackendKind;
    fn device(&self) -> &DeviceInfo;
    fn prove(
        &self,
        req: &ProofRequest,
        progress: Arc<dyn Progress>,
    ) -> Result<ProofArtifact, ProveError>;
    /// [`Prover::prove_transition`].
    fn prove_transition(
        &self,
        input: &TransitionInput,
        fri: FriPreset,
        progress: Arc<dyn Progress>,
    ) -> Result<ProofArtifact, ProveError>;
    /// [`Prover::prove_transition_chunks`]. Provided: checks the chain, then proves
    /// each chunk with [`DynProver::prove_transition`].
    fn prove_transition_chunks(
        &self,
        chunks: &[TransitionInput],
        fri: FriPreset,
        progress: Arc<dyn Progress>,
    ) -> Result<TransitionProof, ProveError> {
        transition::check_chunks(chunks).map_err(|e| ProveError::Transition(e.to_string()))?;
        let chunks = chunks
            .iter()
            .map(|c| self.prove_transition(c, fri, progress.clone()))
            .collect::<Result<_, _>>()?;
        Ok(TransitionProof { chunks })
    }
    /// Checks the device against the CPU backend before it is trusted with proofs
    /// ([`selftest`]); `auto` never picks a prover that fails. Provided: fails with
    /// [`SelfTestError::Unsupported`], so that a prover that cannot check itself is not
    /// trusted either.
    fn self_test(&self) -> Result<SelfTestReport, SelfTestError> {
        Err(SelfTestError::Unsupported {
            device: self.device().id.clone(),
        })
    }
}

impl<B: Backend> DynProver for Prover<B> {
    fn backend_kind(&self) -> BackendKind {
        B::KIND
    }
    fn device(&self) -> &DeviceInfo {
        self.backend.device()
    }
    fn prove(
        &self,
        req: &ProofRequest,
        progress: Arc<dyn Progress>,
    ) -> Result<ProofArtifact, ProveError> {
        Prover::prove(self, req, progress)
    }
    fn prove_transition(
        &self,
        input: &TransitionInput,
        fri: FriPreset,
        progress: Arc<dyn Progress>,
    ) -> Result<ProofArtifact, ProveError> {
        Prover::prove_transition(self, input, fri, progress)
    }
    fn prove_transition_chunks(
        &self,
        chunks: &[TransitionInput],
        fri: FriPreset,
        progress: Arc<dyn Progress>,
    ) -> Result<TransitionProof, ProveError> {
        Prover::prove_transition_chunks(self, chunks, fri, progress)
    }
    fn self_test(&self) -> Result<SelfTestReport, SelfTestError> {
        selftest::self_test(&*self.backend)
    }
}

/// Keeps backend failures (which unwind by design and are turned into job errors)
/// out of stderr, and leaves every other panic to the previous hook.
pub fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<BackendFailure>().is_none() {
            previous(info)
        }
    }));
}

/// The public values of an artifact as field elements of `F` (for callers that
/// verify with their own configuration, see `docs/proof-format.md`).
pub fn public_values<F: BackendField>(a: &ProofArtifact) -> Vec<F> {
    a.public_values.iter().map(|&v| F::from_u32(v)).collect()
}
