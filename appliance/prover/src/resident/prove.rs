//! The prover loop of a resident proof: `p3_uni_stark::prove_with_preprocessed`
//! (0.8) step for step, for AIRs without preprocessed columns and without zero
//! knowledge (ProofBox's circuits), over [`ResidentPcs`]. The transcript
//! (`StarkProverTranscript`: trace commitment, public values, `alpha`, quotient
//! commitment, the out-of-domain grinding, `zeta`, the opening argument) is the stock
//! one, so the proof is the proof `p3_uni_stark::prove` makes with the same PCS.
//!
//! The quotient is committed through one seam, [`commit_quotient`]: the AIR's
//! constraints compiled to a constraint program and evaluated by the backend where the
//! trace's extension lies, the values kept there, extended chunk by chunk and
//! committed there ([`super::quotient`]). [`quotient_values`] brings the values to the
//! host instead (the seam's reference).

use std::sync::Arc;

use p3_air::symbolic::AirLayout;
use p3_commit::{Pcs, PolynomialSpace, UnivariateStarkPcs};
use p3_field::coset::TwoAdicMultiplicativeCoset;
use p3_fri::FriProverError;
use p3_matrix::Matrix;
use p3_matrix::dense::RowMajorMatrix;
use p3_uni_stark::{
    Commitments, OpenedValues, Proof, ProvingError, QuotientAir, StarkConfig, StarkGenericConfig,
    StarkProverTranscript, StarkShape, get_log_num_quotient_chunks_for_domain,
};
use p3_util::log2_strict_usize;
use proofbox_backend_api::quotient::{ConstraintProgram, QuotientShape};
use proofbox_backend_api::resident::{ResidentBackend, ResidentField};
use proofbox_verifier::FriParams;

use super::fri::ResidentFriMmcs;
use super::mmcs::{Commitment, ResidentData};
use super::pcs::ResidentPcs;
use super::quotient::commit_quotient;
use crate::config::{Challenge, Challenger};
use crate::progress::{Progress, Stage};

/// The STARK configuration of a resident proof: the stock configuration with
/// [`ResidentPcs`] in place of `TwoAdicFriPcs`.
pub type ResidentConfig<B, F> = StarkConfig<ResidentPcs<B, F>, Challenge<F>, Challenger<F>>;

/// The resident configuration on `backend` for FRI parameters `params`. FRI's folded
/// codewords are committed on the device ([`ResidentFriMmcs`]).
pub fn config<B: ResidentBackend, F: ResidentField>(
    backend: Arc<B>,
    params: &FriParams,
) -> ResidentConfig<B, F> {
    let fri = params.to_plonky3(ResidentFriMmcs::<B, F>::new(backend.clone()));
    StarkConfig::new(
        ResidentPcs::new(backend, fri),
        Challenger::<F>::new(F::poseidon2_16()),
    )
}

/// The seam the quotient is computed through: the values of
/// `sum_j alpha^j C_j(x) / Z_H(x)` at every point `x` of `quotient_domain`, natural
/// order (the vector `p3_uni_stark::quotient_values` returns), for the trace committed
/// in `trace` (its extension resident on the device, rows bit-reversed).
///
/// The AIR's constraints are compiled into a constraint program
/// (`proofbox_constraints::compile`) that the backend evaluates where the extension
/// lies ([`ResidentBackend::eval_quotient`]): only the values come back, 16 bytes a
/// point. An AIR the compiler does not take (preprocessed columns, extension-field
/// constraints) is evaluated on the host instead ([`quotient_values_on_host`]), said
/// in the log. A backend failure unwinds with a [`crate::adapters::BackendFailure`]
/// payload, as every backend failure of a proof does.
#[allow(clippy::too_many_arguments)]
pub fn quotient_values<B, F, A>(
    pcs: &ResidentPcs<B, F>,
    air: &A,
    public_values: &[F],
    layout: AirLayout,
    trace_domain: TwoAdicMultiplicativeCoset<F>,
    quotient_domain: TwoAdicMultiplicativeCoset<F>,
    trace: &ResidentData<B, F>,
    alpha: Challenge<F>,
) -> Vec<Challenge<F>>
where
    B: ResidentBackend,
    F: ResidentField,
    A: QuotientAir<ResidentConfig<B, F>>,
{
    match compiled_quotient::<B, F, A>(air, trace_domain, quotient_domain) {
        Some((program, shape)) => pcs
            .backend()
            .eval_quotient(&program, trace.matrix(), shape, alpha, public_values)
            .unwrap_or_else(|e| crate::adapters::fail(e)),
        None => quotient_values_on_host(
            pcs,
            air,
            public_values,
            layout,
            trace_domain,
            quotient_domain,
            trace,
            alpha,
        ),
    }
}

/// The AIR's constraints compiled into a constraint program
/// (`proofbox_constraints::compile`) and the quotient's shape for these domains, or
/// `None` (said in the log) where the compiler does not take the AIR and the quotient
/// is evaluated on the host.
pub(crate) fn compiled_quotient<B, F, A>(
    air: &A,
    trace_domain: TwoAdicMultiplicativeCoset<F>,
    quotient_domain: TwoAdicMultiplicativeCoset<F>,
) -> Option<(ConstraintProgram<F>, QuotientShape)>
where
    B: ResidentBackend,
    F: ResidentField,
    A: QuotientAir<ResidentConfig<B, F>>,
{
    let name = std::any::type_name::<A>();
    match proofbox_constraints::compile::<F, A>(air, name) {
        Ok(program) => Some((
            program,
            QuotientShape {
                log_trace_height: trace_domain.log_size(),
                log_quotient_degree: quotient_domain.log_size() - trace_domain.log_size(),
            },
        )),
        Err(e) => {
            tracing::info!(air = name, reason = %e, "the quotient is evaluated on the host");
            None
        }
    }
}

/// [`quotient_values`] on the host: the trace's rows on the quotient domain are read
/// from the device (`quotient_domain.size() x width` words) and Plonky3's own
/// `quotient_values` folds the constraints. The reference the device evaluation is
/// checked against, and the path of an AIR the constraint compiler does not take.
#[allow(clippy::too_many_arguments)]
pub fn quotient_values_on_host<B, F, A>(
    pcs: &ResidentPcs<B, F>,
    air: &A,
    public_values: &[F],
    layout: AirLayout,
    trace_domain: TwoAdicMultiplicativeCoset<F>,
    quotient_domain: TwoAdicMultiplicativeCoset<F>,
    trace: &ResidentData<B, F>,
    alpha: Challenge<F>,
) -> Vec<Challenge<F>>
where
    B: ResidentBackend,
    F: ResidentField,
    A: QuotientAir<ResidentConfig<B, F>>,
{
    let on_quotient_domain = pcs.get_evaluations_on_domain(trace, 0, quotient_domain);
    p3_uni_stark::quotient_values::<ResidentConfig<B, F>, A, _>(
        pcs,
        air,
        public_values,
        layout,
        trace_domain,
        quotient_domain,
        &on_quotient_domain,
        None,
        alpha,
    )
}

/// A proof's failure: the PCS phase that failed and why.
pub type ResidentProvingError = ProvingError<FriProverError>;

/// Proves `trace` for `air` over the resident configuration `config`, reporting the
/// commit, quotient and opening stages to `progress` (see the [module docs](self)).
///
/// # Panics
///
/// When the AIR has preprocessed columns or boundary public values (neither is
/// supported by the stock prover without preprocessed data either), and, in debug
/// builds, when the trace violates a constraint. A backend failure unwinds with a
/// [`crate::adapters::BackendFailure`] payload, as on the stock path.
#[allow(clippy::multiple_bound_locations)]
pub fn prove<
    B: ResidentBackend,
    F: ResidentField,
    #[cfg(debug_assertions)] A: for<'a> p3_air::Air<p3_air::DebugConstraintBuilder<'a, F>>,
    #[cfg(not(debug_assertions))] A,
>(
    config: &ResidentConfig<B, F>,
    air: &A,
    trace: RowMajorMatrix<F>,
    public_values: &[F],
    progress: &dyn Progress,
) -> Result<Proof<ResidentConfig<B, F>>, ResidentProvingError>
where
    A: QuotientAir<ResidentConfig<B, F>>,
{
    assert!(
        air.public_boundary_io().is_empty(),
        "uni-stark does not support boundary-IO public values; bind them with AIR constraints"
    );
    assert_eq!(
        air.preprocessed_width(),
        0,
        "the resident prover takes AIRs without preprocessed columns"
    );
    #[cfg(debug_assertions)]
    p3_air::check_constraints(air, &trace, public_values);

    let degree = trace.height();
    let log_degree = log2_strict_usize(degree);
    let layout = AirLayout {
        preprocessed_width: 0,
        main_width: air.width(),
        num_public_values: air.num_public_values(),
        num_periodic_columns: air.num_periodic_columns(),
        ..Default::default()
    };
    let pcs = config.pcs();
    let trace_domain = pcs.natural_domain_for_degree(degree);
    let log_num_quotient_chunks =
        get_log_num_quotient_chunks_for_domain::<F, A>(air, layout, trace_domain, 0);
    let num_quotient_chunks = 1 << log_num_quotient_chunks;
    let mut challenger = config.initialise_challenger();

    progress.stage(Stage::Commit);
    let (trace_commit, trace_data) =
        pcs.commit([(trace_domain, trace)])
            .map_err(|source| ProvingError::Pcs {
                phase: "trace commitment",
                source,
            })?;

    let mut transcript = StarkProverTranscript::<Challenger<F>, F, Challenge<F>>::new(
        &mut challenger,
        StarkShape::new::<F, A>(
            air,
            0,
            log_degree,
            log_degree,
            num_quotient_chunks,
            false,
            config.ood_proof_of_work_bits(),
        ),
    );
    let alpha =
        transcript.constraint_phase::<Commitment<F>>(trace_commit.clone(), None, public_values);

    progress.stage(Stage::Quotient);
    let quotient_domain =
        trace_domain.create_disjoint_domain(1 << (log_degree + log_num_quotient_chunks));
    let (quotient_commit, quotient_data) = commit_quotient(
        pcs,
        air,
        public_values,
        layout,
        trace_domain,
        quotient_domain,
        &trace_data,
        alpha,
        num_quotient_chunks,
    )
    .inspect_err(|_| transcript.abort())
    .map_err(|source| ProvingError::Pcs {
        phase: "quotient commitment",
        source,
    })?;

    let commitments = Commitments {
        trace: trace_commit,
        quotient_chunks: quotient_commit,
        random: None,
    };
    let (zeta, ood_pow_witness) =
        transcript.ood_phase::<Commitment<F>>(commitments.quotient_chunks.clone(), None);
    let ood_pow_witness = ood_pow_witness.unwrap_or(F::ZERO);
    let zeta_next = trace_domain
        .next_point(zeta)
        .expect("a two-adic domain has a next point");

    progress.stage(Stage::Open);
    let main_next = !air.main_next_row_columns().is_empty();
    let trace_points = if main_next {
        vec![zeta, zeta_next]
    } else {
        vec![zeta]
    };
    let rounds = vec![
        (&trace_data, vec![trace_points]).into(),
        (&quotient_data, vec![vec![zeta]; num_quotient_chunks]).into(),
    ];
    let (opened_values, opening_proof) = transcript
        .delegate(|challenger| pcs.open_with_preprocessing(rounds, challenger, None))
        .inspect_err(|_| transcript.abort())
        .map_err(|source| ProvingError::Pcs {
            phase: "opening",
            source,
        })?;
    transcript.finish();

    let trace_local = opened_values[0][0][0].clone();
    let trace_next = main_next.then(|| opened_values[0][0][1].clone());
    let quotient_chunks = opened_values[1].iter().map(|v| v[0].clone()).collect();
    Ok(Proof {
        commitments,
        opened_values: OpenedValues {
            trace_local,
            trace_next,
            preprocessed: None,
            quotient_chunks,
            random: None,
        },
        opening_proof,
        degree_bits: log_degree,
        ood_pow_witness,
    })
}
