//! FRI over resident codewords: `p3_fri::prover::prove_fri` (p3-fri 0.8) step for
//! step, with every codeword folded and committed where the reduced openings were
//! computed.
//!
//! - **inputs**: the reduced openings of each height stay on the device
//!   ([`ResidentBackend::reduce_openings_resident`]).
//! - **commit phase** (arity 2 each round, the schedule of ProofBox's presets): the
//!   codeword is read as rows of two extension elements ([`ResidentBackend::reshape`],
//!   no copy; the rows `ExtensionMmcs` hashes), committed in place (the root comes
//!   back), and folded with the round's challenge ([`ResidentBackend::fri_fold`]),
//!   the next reduced opening of the folded height added with `beta^2` in the same
//!   call. Only the final codeword (`final_poly_len << log_blowup` elements) comes
//!   back, for the final polynomial.
//! - **transcript**: p3-fri's own [`FriShape`] and [`ProverTranscript`], so the
//!   commitments, challenges, grinding and query indices are the stock ones.
//! - **query phase**: the input openings as `open_inputs` makes them
//!   ([`ResidentMmcs`]); for each round, the queried pairs and the digests of their
//!   pruned paths read from the device, each in one copy.
//!
//! A schedule with a round of higher arity (a `max_log_arity` above 1) is proved
//! with the reduced openings read back and the stock `prove_fri`
//! ([`super::pcs::ResidentPcs`] decides).

use p3_commit::{Mmcs, OpeningRequest};
use p3_dft::{Radix2DFTSmallBatch, TwoAdicSubgroupDft};
use p3_field::{BasedVectorSpace, PrimeCharacteristicRing};
use p3_fri::{
    BatchMultiOpening, CommitPhaseMultiStep, FriParameters, FriProof, FriProverError, FriShape,
    ProverTranscript,
};
use p3_matrix::dense::RowMajorMatrix;
use p3_util::{log2_strict_usize, reverse_slice_index_bits};
use proofbox_backend_api::BackendError;
use proofbox_backend_api::resident::{EXT_DEGREE, ResidentBackend, ResidentField, ResidentReduced};

use super::fri::ResidentFriMmcs;
use super::mmcs::{Commitment, ResidentData, ResidentMmcs};
use super::pcs::ResidentFriProof;
use crate::adapters::fail;
use crate::config::{Challenge, Challenger};

/// The stock fold schedule of `params` for inputs of `input_log_heights` (largest
/// first), when every round has arity 2: the schedule this module proves.
pub(crate) fn arity_two_shape<M>(
    params: &FriParameters<M>,
    input_log_heights: &[usize],
    log_global_max_height: usize,
) -> Option<FriShape> {
    // `TwoAdicFriFolding` adds no query index bits.
    let shape = FriShape::new(params, input_log_heights, log_global_max_height);
    shape.log_arities.iter().all(|&a| a == 1).then_some(shape)
}

/// The openings of one round: each query's sibling and the pruned paths.
type RoundOpening<B, F> = CommitPhaseMultiStep<Challenge<F>, ResidentFriMmcs<B, F>>;

/// One committed round: the codeword as rows of pairs, its tree on the device.
type Round<B, F> = ResidentData<B, F>;

/// `prove_fri` over resident reduced openings (see the [module docs](self)).
/// `inputs` are the reduced openings of each height, largest first; `shape` is
/// [`arity_two_shape`]'s. A backend failure unwinds as every backend failure of a
/// proof does.
#[allow(clippy::too_many_arguments)]
pub(crate) fn prove_fri_resident<B: ResidentBackend, F: ResidentField>(
    params: &FriParameters<ResidentFriMmcs<B, F>>,
    shape: FriShape,
    inputs: Vec<ResidentReduced<B::Matrix<F>>>,
    challenger: &mut Challenger<F>,
    log_global_max_height: usize,
    requests: &[OpeningRequest<'_, ResidentData<B, F>, Challenge<F>>],
    input_mmcs: &ResidentMmcs<B, F>,
    batch_pow_witness: F,
) -> Result<ResidentFriProof<B, F>, FriProverError> {
    assert!(params.num_queries > 0, "FRI needs at least one query");
    assert!(params.log_blowup > 0, "FRI needs a blowup of at least 2");
    assert!(
        inputs.windows(2).all(|w| w[0].log_height > w[1].log_height),
        "reduced openings come one per height, largest first"
    );
    assert_eq!(
        inputs.first().map(|i| i.log_height),
        Some(log_global_max_height),
        "the largest reduced opening has the global maximum height"
    );
    let backend = input_mmcs.backend();
    let log_arities = shape.log_arities.clone();
    let final_poly_len = shape.final_poly_len;
    let mut transcript = ProverTranscript::<Challenger<F>, F, Challenge<F>>::new(challenger, shape);

    // Commit phase: commit each codeword as rows of pairs, fold it with the round's
    // challenge, roll in the reduced opening of the folded height.
    let mut inputs = inputs.into_iter().peekable();
    let mut folded = inputs.next().expect("at least one input").matrix;
    let mut commits: Vec<Commitment<F>> = Vec::with_capacity(log_arities.len());
    let mut pow_witnesses = Vec::with_capacity(log_arities.len());
    let mut rounds: Vec<Round<B, F>> = Vec::with_capacity(log_arities.len());
    for _ in &log_arities {
        let pairs = backend
            .reshape(folded, 2 * EXT_DEGREE)
            .unwrap_or_else(|e| fail(e));
        let (commit, round) = input_mmcs
            .commit_resident(pairs, vec![2 * EXT_DEGREE], None)
            .unwrap_or_else(|e| fail(e));
        let (beta, witness) = transcript.commit_round(commit.clone());
        commits.push(commit);
        pow_witnesses.push(witness.unwrap_or(F::ZERO));
        let h = round.height();
        let roll = inputs.next_if(|r| 1usize << r.log_height == h);
        let roll_in = roll.as_ref().map(|r| (&r.matrix, beta.square()));
        folded = backend
            .fri_fold(round.matrix(), beta, roll_in)
            .unwrap_or_else(|e| fail(e));
        rounds.push(round);
    }
    assert!(
        inputs.next().is_none(),
        "every reduced opening is rolled in"
    );

    // The final polynomial from the final codeword (bit-reversed evaluations).
    let mut last = backend.read_ext(&folded).unwrap_or_else(|e| fail(e));
    drop(folded);
    last.truncate(final_poly_len);
    reverse_slice_index_bits(&mut last);
    let final_poly = Radix2DFTSmallBatch::<F>::default().idft_algebra(last);

    let (indices, query_pow_witness) = transcript.query_phase(&final_poly);
    transcript.finish();

    let input_openings = requests
        .iter()
        .map(|r| {
            let bits_reduced = log_global_max_height - log2_strict_usize(r.prover_data.height());
            let reduced: Vec<usize> = indices.iter().map(|&i| i >> bits_reduced).collect();
            let (opened_values, opening_proof) = Mmcs::<F>::open_multi_batch::<RowMajorMatrix<F>>(
                input_mmcs,
                &reduced,
                r.prover_data,
            );
            BatchMultiOpening {
                opened_values,
                opening_proof,
            }
        })
        .collect();
    let commit_phase_openings =
        answer_queries(input_mmcs, &rounds, &indices).unwrap_or_else(|e| fail(e));

    Ok(FriProof {
        batch_pow_witness,
        commit_phase_commits: commits,
        commit_pow_witnesses: pow_witnesses,
        input_openings,
        commit_phase_openings,
        final_poly,
        query_pow_witness: query_pow_witness.unwrap_or(F::ZERO),
    })
}

/// p3-fri's `answer_queries` for arity 2: per round, each query's sibling in its
/// pair and the pruned paths of all queried pairs.
fn answer_queries<B: ResidentBackend, F: ResidentField>(
    mmcs: &ResidentMmcs<B, F>,
    rounds: &[Round<B, F>],
    indices: &[usize],
) -> Result<Vec<RoundOpening<B, F>>, BackendError> {
    let mut current = indices.to_vec();
    rounds
        .iter()
        .map(|round| {
            let groups: Vec<usize> = current.iter().map(|&i| i >> 1).collect();
            let (rows, opening_proof) = mmcs.open_resident(&groups, round)?;
            let sibling_values = current
                .iter()
                .zip(rows)
                .map(|(&i, row)| {
                    let words = &row[0];
                    let sibling = 1 - (i & 1);
                    let coeffs = &words[sibling * EXT_DEGREE..(sibling + 1) * EXT_DEGREE];
                    vec![ext_from_coeffs::<F>(coeffs)]
                })
                .collect();
            current = groups;
            Ok(CommitPhaseMultiStep {
                sibling_values,
                opening_proof,
            })
        })
        .collect()
}

fn ext_from_coeffs<F: ResidentField>(coeffs: &[F]) -> Challenge<F> {
    <Challenge<F> as BasedVectorSpace<F>>::from_basis_coefficients_slice(coeffs)
        .expect("four coefficients")
}
