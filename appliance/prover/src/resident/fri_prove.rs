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
//! - **query phase**: the input openings as `open_inputs` makes them and, for each
//!   round, the queried pairs and their pruned paths as `answer_queries` makes them:
//!   every row and digest of every commitment read from the device in one call
//!   ([`ResidentBackend::read_openings`]: one copy, one wait).
//!
//! A schedule with a round of higher arity (a `max_log_arity` above 1) is proved
//! with the reduced openings read back and the stock `prove_fri`
//! ([`super::pcs::ResidentPcs`] decides).

use p3_commit::OpeningRequest;
use p3_dft::{Radix2DFTSmallBatch, TwoAdicSubgroupDft};
use p3_field::{BasedVectorSpace, PrimeCharacteristicRing};
use p3_fri::{
    BatchMultiOpening, CommitPhaseMultiStep, FriParameters, FriProof, FriProverError, FriShape,
    ProverTranscript,
};
use p3_merkle_tree::PrunedMerklePaths;
use p3_util::{log2_strict_usize, reverse_slice_index_bits};
use proofbox_backend_api::BackendError;
use proofbox_backend_api::resident::{
    EXT_DEGREE, OpeningRead, ResidentBackend, ResidentField, ResidentReduced,
};

use super::fri::ResidentFriMmcs;
use super::mmcs::{Commitment, ResidentData, ResidentMmcs, pruned_siblings};
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

    let (input_openings, commit_phase_openings) = query_openings(
        input_mmcs,
        requests,
        &rounds,
        &indices,
        log_global_max_height,
    )
    .unwrap_or_else(|e| fail(e));

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

/// Everything the query phase opens, read from the device in one call
/// ([`ResidentBackend::read_openings`]): for each input commitment, the rows at the
/// query indices shifted to its height and the pruned paths to them (p3-fri's
/// `open_inputs`); for each round, the queried pairs and their pruned paths, each
/// query's sibling in its pair kept (p3-fri's `answer_queries` for arity 2).
fn query_openings<B: ResidentBackend, F: ResidentField>(
    mmcs: &ResidentMmcs<B, F>,
    requests: &[OpeningRequest<'_, ResidentData<B, F>, Challenge<F>>],
    rounds: &[Round<B, F>],
    indices: &[usize],
    log_global_max_height: usize,
) -> Result<QueryOpenings<B, F>, BackendError> {
    // Rows and nodes of every commitment: inputs first, then the rounds.
    let mut wanted: Vec<(&ResidentData<B, F>, Vec<usize>)> = requests
        .iter()
        .map(|r| {
            let bits = log_global_max_height - log2_strict_usize(r.prover_data.height());
            (r.prover_data, indices.iter().map(|&i| i >> bits).collect())
        })
        .collect();
    let mut current = indices.to_vec();
    for round in rounds {
        wanted.push((round, current.iter().map(|&i| i >> 1).collect()));
        current = wanted.last().expect("just pushed").1.clone();
    }
    let nodes: Vec<Vec<(usize, usize)>> = wanted
        .iter()
        .map(|(data, rows)| pruned_siblings(data.height(), rows))
        .collect();
    let reads: Vec<OpeningRead<'_, B::Matrix<F>>> = wanted
        .iter()
        .zip(&nodes)
        .map(|((data, rows), nodes)| OpeningRead {
            matrix: data.matrix(),
            rows,
            nodes,
        })
        .collect();
    let mut opened = mmcs.backend().read_openings(&reads)?.into_iter();

    let inputs = wanted[..requests.len()]
        .iter()
        .map(|(data, _)| {
            let read = opened.next().expect("one read per commitment");
            BatchMultiOpening {
                opened_values: read.rows.iter().map(|row| data.split_row(row)).collect(),
                opening_proof: PrunedMerklePaths {
                    sibling_hashes: read.nodes,
                },
            }
        })
        .collect();
    let mut queried = indices.to_vec();
    let round_openings = wanted[requests.len()..]
        .iter()
        .map(|(_, groups)| {
            let read = opened.next().expect("one read per round");
            let sibling_values = queried
                .iter()
                .zip(&read.rows)
                .map(|(&i, pair)| {
                    let sibling = 1 - (i & 1);
                    vec![ext_from_coeffs::<F>(
                        &pair[sibling * EXT_DEGREE..(sibling + 1) * EXT_DEGREE],
                    )]
                })
                .collect();
            queried.clone_from(groups);
            CommitPhaseMultiStep {
                sibling_values,
                opening_proof: PrunedMerklePaths {
                    sibling_hashes: read.nodes,
                },
            }
        })
        .collect();
    Ok((inputs, round_openings))
}

/// The input openings of a resident FRI proof, one per commitment.
type InputOpenings<B, F> = Vec<BatchMultiOpening<F, ResidentMmcs<B, F>>>;

/// A query phase's openings: the inputs', then each round's.
type QueryOpenings<B, F> = (InputOpenings<B, F>, Vec<RoundOpening<B, F>>);

fn ext_from_coeffs<F: ResidentField>(coeffs: &[F]) -> Challenge<F> {
    <Challenge<F> as BasedVectorSpace<F>>::from_basis_coefficients_slice(coeffs)
        .expect("four coefficients")
}
