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
use p3_uni_stark::{Proof, QuotientAir, StarkGenericConfig, Val};
use proofbox_backend_api::resident::ResidentBackend;
use proofbox_backend_api::{Backend, BackendError, BackendField, BackendKind, DeviceInfo, FieldId};
use proofbox_circuits::transition::{
    ChunkStatement, MAX_UPDATES_PER_PROOF, TransitionAir, TransitionInput, check_chunks,
};
use proofbox_circuits::{CircuitField, CircuitId, WithStatement};
use proofbox_verifier::{FriParams, FriPreset, ProofArtifact, TransitionProof};
use serde::Serialize;

use crate::adapters::{BackendFailure, StageTracker};
use crate::config::{self, Config};
use crate::progress::{Progress, Stage};
use crate::request::{ProofRequest, RequestError};
use crate::resident::{self, ProveFn, ResidentConfig, ResidentPaths};
use crate::selftest::{self, SelfTestError, SelfTestReport};

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
    #[error(
        "a diff of {updates} updates is more than one proof carries ({max}): prove it in \
         chained proofs (TransitionInput::build_chunks, then prove_transition_chunks)"
    )]
    DiffTooLarge { updates: usize, max: usize },
}

/// Proves requests on backend `B` (static dispatch all the way down).
///
/// Two paths ([`Prover::new`], [`Prover::resident`]): the stock path runs Plonky3's
/// `TwoAdicFriPcs` with the backend's kernels behind its DFT and hashing traits (every
/// extension comes back to the host); the resident path ([`crate::resident`]) keeps
/// the extensions and their trees on the device. Both make the same proofs.
pub struct Prover<B> {
    backend: Arc<B>,
    resident: Option<ResidentPaths<B>>,
}

impl<B: Backend> Prover<B> {
    /// A prover on the stock path.
    pub fn new(backend: B) -> Self {
        Self {
            backend: Arc::new(backend),
            resident: None,
        }
    }

    /// A prover on the resident path ([`crate::resident`]), which falls back to the
    /// stock path for a proof whose matrices do not fit the device (logged at `warn`).
    pub fn resident(backend: B) -> Self
    where
        B: ResidentBackend,
    {
        Self {
            backend: Arc::new(backend),
            resident: Some(ResidentPaths::new()),
        }
    }

    /// Whether proofs take the resident path first.
    pub fn is_resident(&self) -> bool {
        self.resident.is_some()
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
        self.prove_with(req, req.fri.params(), progress)
    }

    /// Proves `req` with FRI parameters `fri` as given, however weak: one query, no
    /// proof of work. For tests that show verifiers refuse weak proofs. Neither the
    /// CLI nor the service reaches it (they take a [`FriPreset`], and [`DynProver`]
    /// does not have it), and the default verifier refuses what it makes below 100
    /// conjectured bits.
    pub fn prove_with_insecure_params(
        &self,
        req: &ProofRequest,
        fri: FriParams,
        progress: Arc<dyn Progress>,
    ) -> Result<ProofArtifact, ProveError> {
        fri.validate()
            .map_err(|e| ProveError::Prover(format!("FRI parameters: {e}")))?;
        self.prove_with(req, fri, progress)
    }

    fn prove_with(
        &self,
        req: &ProofRequest,
        fri: FriParams,
        progress: Arc<dyn Progress>,
    ) -> Result<ProofArtifact, ProveError> {
        req.validate()?;
        if !self.backend.device().fields.contains(&req.field) {
            return Err(ProveError::UnsupportedField {
                field: req.field,
                device: self.backend.device().id.clone(),
            });
        }
        if req.circuit == CircuitId::StateTransition {
            // The seeded workload's seed is not part of the statement (the public
            // values are): the artifact carries seed 0.
            progress.stage(Stage::Trace);
            let updates = req.circuit.instances(req.log_rows);
            let input = proofbox_circuits::transition::seeded_input(req.seed, updates);
            let statement = input
                .chunk_statement()
                .map_err(|e| ProveError::Transition(e.to_string()))?;
            let trace = input.trace(fri.log_blowup as usize);
            return self.prove_transition_trace_with(trace, &statement, fri, progress);
        }
        let (public_values, proof) = self.with_fallback(|resident| {
            let tracker = StageTracker::new(progress.clone());
            catch_unwind(AssertUnwindSafe(|| match req.field {
                FieldId::KoalaBear => {
                    self.prove_in::<KoalaBear>(req, &fri, tracker, &*progress, resident)
                }
                FieldId::BabyBear => {
                    self.prove_in::<BabyBear>(req, &fri, tracker, &*progress, resident)
                }
            }))
            .unwrap_or_else(|payload| Err(panic_to_error(payload)))
        })?;
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
    /// states that chunk ([`ChunkStatement`]).
    pub fn prove_transition(
        &self,
        input: &TransitionInput,
        fri: FriPreset,
        progress: Arc<dyn Progress>,
    ) -> Result<ProofArtifact, ProveError> {
        check_size(input)?;
        let statement = input
            .chunk_statement()
            .map_err(|e| ProveError::Transition(e.to_string()))?;
        self.prove_checked_transition(input, &statement, fri, progress)
    }

    /// Proves a state transition with FRI parameters `fri` as given, however weak: the
    /// state-transition form of [`Prover::prove_with_insecure_params`], for tests that
    /// show followers refuse weak proofs of true statements. Neither the CLI nor the
    /// service reaches it.
    pub fn prove_transition_with_insecure_params(
        &self,
        input: &TransitionInput,
        fri: FriParams,
        progress: Arc<dyn Progress>,
    ) -> Result<ProofArtifact, ProveError> {
        fri.validate()
            .map_err(|e| ProveError::Prover(format!("FRI parameters: {e}")))?;
        check_size(input)?;
        let statement = input
            .chunk_statement()
            .map_err(|e| ProveError::Transition(e.to_string()))?;
        progress.stage(Stage::Trace);
        let trace = input.trace(fri.log_blowup as usize);
        self.prove_transition_trace_with(trace, &statement, fri, progress)
    }

    /// Proves a diff in chunks ([`TransitionInput::build_chunks`]), one proof per
    /// chunk, in order: checks every chunk's witnesses and that the chunks chain into
    /// one diff's transition first ([`check_chunks`]; a failure is a
    /// [`ProveError::Transition`] before any proving work). Peak memory is that of the
    /// largest chunk's proof.
    pub fn prove_transition_chunks(
        &self,
        chunks: &[TransitionInput],
        fri: FriPreset,
        progress: Arc<dyn Progress>,
    ) -> Result<TransitionProof, ProveError> {
        chunks.iter().try_for_each(check_size)?;
        let statements = check_chunks(chunks).map_err(|e| ProveError::Transition(e.to_string()))?;
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
        self.prove_transition_trace_with(trace, statement, fri.params(), progress)
    }

    fn prove_transition_trace_with(
        &self,
        trace: RowMajorMatrix<KoalaBear>,
        statement: &ChunkStatement,
        params: FriParams,
        progress: Arc<dyn Progress>,
    ) -> Result<ProofArtifact, ProveError> {
        if !self.backend.device().fields.contains(&FieldId::KoalaBear) {
            return Err(ProveError::UnsupportedField {
                field: FieldId::KoalaBear,
                device: self.backend.device().id.clone(),
            });
        }
        let log_rows = trace.height().trailing_zeros() as u8;
        let public_values = statement.public_values();
        // The resident attempt takes a copy: a fallback proves the trace again.
        let mut trace = Some(trace);
        let proof = self.with_fallback(|resident| {
            let trace = match (resident, trace.take()) {
                (true, Some(t)) => {
                    let copy = t.clone();
                    trace = Some(t);
                    copy
                }
                (_, Some(t)) => t,
                (_, None) => unreachable!("the stock path runs at most once, last"),
            };
            let tracker = StageTracker::new(progress.clone());
            catch_unwind(AssertUnwindSafe(|| match &self.resident {
                Some(paths) if resident => (paths.koala_bear)(
                    &self.backend,
                    CircuitId::StateTransition,
                    trace,
                    &public_values,
                    &params,
                    &*progress,
                ),
                _ => {
                    let config =
                        config::config::<B, KoalaBear>(self.backend.clone(), &params, tracker);
                    prove_air(&config, &TransitionAir::new(), trace, &public_values)
                }
            }))
            .unwrap_or_else(|payload| Err(panic_to_error(payload)))
        })?;
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

    /// Runs `attempt` on the resident path where this prover has one, and again on the
    /// stock path if the device lacked memory for it.
    fn with_fallback<T>(
        &self,
        mut attempt: impl FnMut(bool) -> Result<T, ProveError>,
    ) -> Result<T, ProveError> {
        if self.resident.is_none() {
            return attempt(false);
        }
        match attempt(true) {
            Err(ProveError::Backend(e @ BackendError::OutOfMemory { .. })) => {
                tracing::warn!(
                    device = %self.backend.device().id,
                    reason = %e,
                    "the proof's matrices do not fit the device: proving on the stock path \
                     (extensions on the host)"
                );
                attempt(false)
            }
            other => other,
        }
    }

    fn prove_in<F: ProveField>(
        &self,
        req: &ProofRequest,
        fri: &FriParams,
        tracker: StageTracker,
        progress: &dyn Progress,
        resident: bool,
    ) -> Result<(Vec<u32>, Vec<u8>), ProveError> {
        progress.stage(Stage::Trace);
        let statement = req.statement();
        let trace = statement.trace::<F>(fri.log_blowup as usize);
        let public_values = statement.digest::<F>().to_vec();
        if let Some(paths) = self.resident.as_ref().filter(|_| resident) {
            let proof = F::resident_fn(paths)(
                &self.backend,
                req.circuit,
                trace,
                &public_values,
                fri,
                progress,
            )?;
            return Ok((
                public_values.iter().map(|v| v.as_canonical_u32()).collect(),
                proof,
            ));
        }
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

fn prove_air<SC, A>(
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

/// Refuses an input larger than one proof carries, before any work.
fn check_size(input: &TransitionInput) -> Result<(), ProveError> {
    if input.diff.len() > MAX_UPDATES_PER_PROOF
        || input.segments() > proofbox_circuits::transition::MAX_SEGMENTS_PER_PROOF
    {
        return Err(ProveError::DiffTooLarge {
            updates: input.diff.len(),
            max: MAX_UPDATES_PER_PROOF,
        });
    }
    Ok(())
}

/// Fields the benchmark circuits are proved over, each with its Poseidon2 AIR's
/// concrete type (and, for KoalaBear, the state-transition AIR).
pub(crate) trait ProveField: CircuitField {
    fn prove_poseidon2<B: Backend>(
        config: &Config<B, Self>,
        trace: RowMajorMatrix<Self>,
        public_values: &[Self],
    ) -> Result<Vec<u8>, ProveError>;

    fn prove_poseidon2_resident<B: ResidentBackend>(
        config: &ResidentConfig<B, Self>,
        trace: RowMajorMatrix<Self>,
        public_values: &[Self],
        progress: &dyn Progress,
    ) -> Result<Vec<u8>, ProveError>;

    fn prove_transition_resident<B: ResidentBackend>(
        config: &ResidentConfig<B, Self>,
        trace: RowMajorMatrix<Self>,
        public_values: &[Self],
        progress: &dyn Progress,
    ) -> Result<Vec<u8>, ProveError>;

    /// This field's entry point of the resident path.
    fn resident_fn<B>(paths: &ResidentPaths<B>) -> ProveFn<B, Self>;
}

macro_rules! prove_field {
    ($($field:ty, $paths:ident, $transition:expr);*) => {$(
        impl ProveField for $field {
            fn prove_poseidon2<B: Backend>(
                config: &Config<B, Self>,
                trace: RowMajorMatrix<Self>,
                public_values: &[Self],
            ) -> Result<Vec<u8>, ProveError> {
                prove_air(config, &<$field>::poseidon2_air(), trace, public_values)
            }

            fn prove_poseidon2_resident<B: ResidentBackend>(
                config: &ResidentConfig<B, Self>,
                trace: RowMajorMatrix<Self>,
                public_values: &[Self],
                progress: &dyn Progress,
            ) -> Result<Vec<u8>, ProveError> {
                resident::prove_air(config, &<$field>::poseidon2_air(), trace, public_values, progress)
            }

            fn prove_transition_resident<B: ResidentBackend>(
                config: &ResidentConfig<B, Self>,
                trace: RowMajorMatrix<Self>,
                public_values: &[Self],
                progress: &dyn Progress,
            ) -> Result<Vec<u8>, ProveError> {
                #[allow(clippy::redundant_closure_call)]
                ($transition)(config, trace, public_values, progress)
            }

            fn resident_fn<B>(paths: &ResidentPaths<B>) -> ProveFn<B, Self> {
                paths.$paths
            }
        }
    )*};
}
prove_field!(
    KoalaBear, koala_bear, |config, trace, public_values: &[KoalaBear], progress| {
        resident::prove_air(config, &TransitionAir::new(), trace, public_values, progress)
    };
    BabyBear, baby_bear, |_config, _trace, _public_values: &[BabyBear], _progress| {
        Err(ProveError::UnsupportedField {
            field: FieldId::BabyBear,
            device: "the state-transition circuit (KoalaBear only)".into(),
        })
    }
);

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
        check_chunks(chunks).map_err(|e| ProveError::Transition(e.to_string()))?;
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
        let mut report = selftest::self_test(&*self.backend)?;
        if let Some(paths) = &self.resident {
            let start = std::time::Instant::now();
            for &field in &report.fields {
                match field {
                    FieldId::KoalaBear => self.check_resident::<KoalaBear>(paths)?,
                    FieldId::BabyBear => self.check_resident::<BabyBear>(paths)?,
                }
            }
            report.duration += start.elapsed();
        }
        Ok(report)
    }
}

impl<B: Backend> Prover<B> {
    /// The resident part of the self-test: a small proof on the resident path,
    /// byte for byte against the CPU backend's stock proof
    /// ([`selftest::resident_check_request`]).
    fn check_resident<F: ProveField>(&self, paths: &ResidentPaths<B>) -> Result<(), SelfTestError> {
        let device = self.backend.device().id.clone();
        let (req, fri) = selftest::resident_check_request(F::ID);
        let statement = req.statement();
        let trace = statement.trace::<F>(fri.log_blowup as usize);
        let public_values = statement.digest::<F>().to_vec();
        let want = Prover::new(proofbox_backend_cpu::CpuBackend::new())
            .prove_with_insecure_params(&req, fri, Arc::new(()))
            .expect("the CPU backend proves the self-test's request")
            .proof;
        let got = catch_unwind(AssertUnwindSafe(|| {
            F::resident_fn(paths)(&self.backend, req.circuit, trace, &public_values, &fri, &())
        }))
        .unwrap_or_else(|payload| Err(panic_to_error(payload)));
        let kernel = selftest::Kernel::ResidentProof;
        let got = match got {
            Ok(got) => got,
            Err(ProveError::Backend(source)) => {
                return Err(SelfTestError::Backend {
                    device,
                    field: F::ID,
                    kernel,
                    source,
                });
            }
            Err(e) => {
                return Err(SelfTestError::Panic {
                    device,
                    field: F::ID,
                    kernel,
                    message: e.to_string(),
                });
            }
        };
        let differs = got
            .iter()
            .zip(&want)
            .position(|(a, b)| a != b)
            .or((got.len() != want.len()).then(|| got.len().min(want.len())));
        match differs {
            None => Ok(()),
            Some(index) => {
                let window = |bytes: &[u8]| {
                    bytes[index.min(bytes.len())..(index + 8).min(bytes.len())]
                        .iter()
                        .map(|&b| u32::from(b))
                        .collect()
                };
                Err(SelfTestError::Mismatch {
                    device,
                    field: F::ID,
                    kernel,
                    part: format!("proof bytes ({} against {})", got.len(), want.len()),
                    index,
                    got: window(&got),
                    expected: window(&want),
                })
            }
        }
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
