//! [`ResidentPcs`]: Plonky3's `TwoAdicFriPcs` (p3-fri 0.8) over device-resident
//! matrices. Same domains, commitments, transcript and proof as the stock PCS of
//! `proofbox_verifier::config::stock`, step for step:
//!
//! - **commit**: each matrix's evaluations are brought onto the subgroup `H` (a
//!   matrix on a shifted coset, as the quotient chunks of an AIR evaluated on the host
//!   are, is re-evaluated on the host: one inverse coset DFT and one DFT of its own
//!   size), the matrices of one
//!   commitment are placed side by side, and [`ResidentBackend::lde_resident`] extends
//!   them onto `g K` (`g = F::GENERATOR`, rows bit-reversed) on the device, where
//!   [`ResidentBackend::commit`] builds the tree; only the root comes back. The stock
//!   PCS extends evaluations on `s H` with the shift `g / s`: the same polynomials on
//!   the same coset, so the same values, and the same tree (the stock tree hashes the
//!   rows of equal-height matrices concatenated).
//! - **quotient commit** ([`super::quotient`]): the quotient's chunks, resident
//!   where the backend evaluated them, are extended chunk by chunk with the stock
//!   shifts `g / s_i` there and committed in one tree; nothing is kept on the host.
//! - **open**: the claimed values `f(z)` are interpolated on the host from the
//!   evaluations on `H` kept at commit time (no transfer; the stock PCS interpolates
//!   the same polynomials over the first rows of the extension), or, for a
//!   commitment kept without them (the resident quotient), on the device from the
//!   extension's first rows (one extension element per column back); the transcript
//!   (`PcsProverTranscript`: claims, batch grinding, `alpha`) is the stock one; the
//!   opening reduction runs on the device
//!   ([`ResidentBackend::reduce_openings_resident`]) and its results stay there;
//!   FRI is `p3_fri::prover::prove_fri` step for step over them
//!   (`super::fri_prove`: codewords folded and committed on the device, the query
//!   phase read in one call). A schedule with a round of arity above 2 reads the
//!   reduced openings back and runs the stock `prove_fri` (codewords folded on the
//!   host, committed on the device by [`ResidentFriMmcs`]).
//! - **quotient**: [`UnivariateStarkPcs::get_evaluations_on_domain`] reads the rows
//!   of the trace's extension on the quotient domain from the device (the host
//!   evaluation's input; the prover evaluates the constraints on the device instead).
//!
//! The proof's type differs from the stock one only in naming [`ResidentMmcs`]
//! where the stock proof names `MerkleTreeMmcs`; both serialize to the same bytes.
//!
//! Limits (checked, each a [`BackendError::InvalidInput`] unwinding as a backend
//! failure): the matrices of one commitment have one height; a commitment of several
//! matrices is opened at one point common to all of them (the reduction's claims
//! take whole resident matrices).

use std::marker::PhantomData;
use std::sync::Arc;

use p3_commit::{
    CommitmentOpening, Mmcs, OpenedValues, OpeningRequest, Pcs, PeriodicLdeTable, PolynomialSpace,
    UnivariateStarkPcs,
};
use p3_dft::{Radix2DitParallel, TwoAdicSubgroupDft};
use p3_field::coset::TwoAdicMultiplicativeCoset;
use p3_fri::verifier::{FriError, PowPhase};
use p3_fri::{
    BatchMultiOpening, FriParameters, FriProof, FriProverError, PcsProverTranscript, PcsShape,
    PcsVerifierTranscript, TwoAdicFriFolding, TwoAdicFriFoldingForMmcs,
    build_periodic_lde_table_two_adic, prover, verifier,
};
use p3_matrix::Matrix;
use p3_matrix::bitrev::{BitReversedMatrixView, BitReversibleMatrix};
use p3_matrix::dense::RowMajorMatrix;
use p3_matrix::interpolation::Interpolate;
use p3_matrix::util::reverse_matrix_index_bits;
use p3_merkle_tree::MerkleTreeError;
use p3_util::log2_strict_usize;
use proofbox_backend_api::BackendError;
use proofbox_backend_api::resident::{
    OpeningClaim, OpeningPoint, ResidentBackend, ResidentField, ResidentMatrix,
};

use super::fri::ResidentFriMmcs;
use super::fri_prove;
use super::mmcs::{Commitment, LowEvaluations, ResidentData, ResidentMmcs};
use crate::adapters::fail;
use crate::config::{Challenge, Challenger};

/// The FRI proof of a resident opening (see the [module docs](self)).
pub type ResidentFriProof<B, F> =
    FriProof<Challenge<F>, ResidentFriMmcs<B, F>, F, Vec<BatchMultiOpening<F, ResidentMmcs<B, F>>>>;

/// `TwoAdicFriPcs` over device-resident matrices (see the [module docs](self)).
pub struct ResidentPcs<B, F: ResidentField> {
    backend: Arc<B>,
    mmcs: ResidentMmcs<B, F>,
    fri: FriParameters<ResidentFriMmcs<B, F>>,
    dft: Radix2DitParallel<F>,
}

impl<B, F: ResidentField> Clone for ResidentPcs<B, F> {
    fn clone(&self) -> Self {
        Self {
            backend: self.backend.clone(),
            mmcs: self.mmcs.clone(),
            fri: self.fri.clone(),
            dft: self.dft.clone(),
        }
    }
}

impl<B: ResidentBackend, F: ResidentField> ResidentPcs<B, F> {
    /// The PCS on `backend` with FRI parameters `fri` (whose MMCS commits the folded
    /// codewords on the device, [`ResidentFriMmcs`]).
    pub fn new(backend: Arc<B>, fri: FriParameters<ResidentFriMmcs<B, F>>) -> Self {
        Self {
            mmcs: ResidentMmcs::new(backend.clone()),
            backend,
            fri,
            dft: Radix2DitParallel::default(),
        }
    }

    pub fn backend(&self) -> &Arc<B> {
        &self.backend
    }

    pub fn fri(&self) -> &FriParameters<ResidentFriMmcs<B, F>> {
        &self.fri
    }

    /// The input MMCS the commitments are made and opened with.
    pub fn mmcs(&self) -> &ResidentMmcs<B, F> {
        &self.mmcs
    }

    /// Commits matrices of evaluations on their domains: extension and tree on the
    /// device ([module docs](self)).
    pub fn commit_resident(
        &self,
        evaluations: Vec<(TwoAdicMultiplicativeCoset<F>, RowMajorMatrix<F>)>,
    ) -> Result<(Commitment<F>, ResidentData<B, F>), BackendError> {
        let height = evaluations.first().map_or(0, |(_, m)| m.height());
        if height == 0 || evaluations.iter().any(|(_, m)| m.height() != height) {
            return Err(BackendError::invalid(
                "a resident commitment takes one or more matrices of one non-zero height",
            ));
        }
        let widths: Vec<usize> = evaluations.iter().map(|(_, m)| m.width).collect();
        let on_subgroup: Vec<RowMajorMatrix<F>> = evaluations
            .into_iter()
            .map(|(domain, evals)| {
                assert_eq!(domain.size(), evals.height());
                self.onto_subgroup(domain.shift(), evals)
            })
            .collect();
        let values = side_by_side(on_subgroup);
        let low = LowEvaluations {
            values: values.clone(),
            shift: F::ONE,
        };
        let matrix = self
            .backend
            .lde_resident(values, self.fri.log_blowup, F::GENERATOR)?;
        self.mmcs.commit_resident(matrix, widths, Some(low))
    }

    /// Evaluations on `shift * H` re-evaluated on `H` (unchanged when `shift` is one).
    fn onto_subgroup(&self, shift: F, evals: RowMajorMatrix<F>) -> RowMajorMatrix<F> {
        if shift == F::ONE {
            return evals;
        }
        let coeffs = self.dft.coset_idft_batch(evals, shift);
        self.dft.dft_batch(coeffs).to_row_major_matrix()
    }

    /// The evaluations the claimed openings are interpolated from: kept at commit
    /// time, or else read from the device (the first `height >> log_blowup` rows of
    /// the extension: the coset `g H` in bit-reversed order).
    fn low_evaluations(
        &self,
        data: &ResidentData<B, F>,
    ) -> Result<LowEvaluations<F>, BackendError> {
        if let Some(low) = &data.low {
            return Ok(LowEvaluations {
                values: low.values.clone(),
                shift: low.shift,
            });
        }
        let rows = data.height() >> self.fri.log_blowup;
        let read = self
            .backend
            .read_rows(&data.matrix, &(0..rows).collect::<Vec<_>>())?;
        let mut values = RowMajorMatrix::new(read.concat(), data.matrix.width());
        reverse_matrix_index_bits(&mut values);
        Ok(LowEvaluations {
            values,
            shift: F::GENERATOR,
        })
    }

    /// `f(z)` of every column of every committed matrix at each of its points.
    fn opened_values(
        &self,
        data: &ResidentData<B, F>,
        points: &[Vec<Challenge<F>>],
    ) -> Result<Vec<Vec<Vec<Challenge<F>>>>, BackendError> {
        if points.len() != data.widths.len() {
            return Err(BackendError::invalid(format!(
                "{} point lists for a commitment of {} matrices",
                points.len(),
                data.widths.len()
            )));
        }
        // Every column at each distinct point: from the evaluations kept on the host,
        // else interpolated where the extension lies (one element per column back).
        let mut at: Vec<(Challenge<F>, Vec<Challenge<F>>)> = Vec::new();
        let mut opened = Vec::with_capacity(points.len());
        for (m, points) in points.iter().enumerate() {
            let mut per_point = Vec::with_capacity(points.len());
            for &z in points {
                let i = match at.iter().position(|(p, _)| *p == z) {
                    Some(i) => i,
                    None => {
                        let all = match &data.low {
                            Some(low) => low.values.interpolate_coset(low.shift, z),
                            None => self.interpolate_on_device(data, z)?,
                        };
                        at.push((z, all));
                        at.len() - 1
                    }
                };
                per_point.push(at[i].1[data.columns(m)].to_vec());
            }
            opened.push(per_point);
        }
        Ok(opened)
    }

    /// The reduction's claims of one commitment: its resident matrix with every point
    /// and the openings of all its columns there.
    fn claim_points(
        data: &ResidentData<B, F>,
        points: &[Vec<Challenge<F>>],
        opened: &[Vec<Vec<Challenge<F>>>],
    ) -> Result<Vec<OpeningPoint<F>>, BackendError> {
        if data.widths.len() == 1 {
            return Ok(points[0].iter().copied().zip(opened[0].clone()).collect());
        }
        match points.first().map(Vec::as_slice) {
            Some(&[z]) if points.iter().all(|p| p.as_slice() == [z]) => Ok(vec![(
                z,
                opened.iter().flat_map(|m| m[0].clone()).collect(),
            )]),
            _ => Err(BackendError::invalid(
                "a resident commitment of several matrices is opened at one point common \
                 to all of them",
            )),
        }
    }
}

/// Matrices of one height placed side by side (the one matrix itself, uncopied).
fn side_by_side<F: Clone + Send + Sync>(mut mats: Vec<RowMajorMatrix<F>>) -> RowMajorMatrix<F> {
    if mats.len() == 1 {
        return mats.pop().expect("one");
    }
    let height = mats[0].height();
    let width: usize = mats.iter().map(|m| m.width).sum();
    let mut values = Vec::with_capacity(height * width);
    for r in 0..height {
        for m in &mats {
            values.extend_from_slice(&m.values[r * m.width..(r + 1) * m.width]);
        }
    }
    RowMajorMatrix::new(values, width)
}

/// `FriParameters::validate_input_height` (crate-private in p3-fri 0.8): a committed
/// height FRI cannot fold down to its final polynomial, refused before any transcript
/// step.
fn validate_input_height<M>(
    fri: &FriParameters<M>,
    log_input_height: usize,
) -> Result<(), FriProverError> {
    if fri.log_final_poly_len == 0 {
        return Ok(());
    }
    let log_final_height = fri
        .log_final_poly_len
        .checked_add(fri.log_blowup)
        .ok_or(FriProverError::FinalHeightOverflow)?;
    if log_input_height <= log_final_height {
        return Err(FriProverError::InputHeightTooSmall {
            log_input_height,
            log_final_height,
        });
    }
    Ok(())
}

type ResidentFriError<B, F> =
    FriError<<ResidentFriMmcs<B, F> as Mmcs<Challenge<F>>>::Error, MerkleTreeError>;

impl<B: ResidentBackend, F: ResidentField> Pcs<Challenge<F>, Challenger<F>> for ResidentPcs<B, F> {
    type Domain = TwoAdicMultiplicativeCoset<F>;
    type Commitment = Commitment<F>;
    type ProverData = ResidentData<B, F>;
    type Proof = ResidentFriProof<B, F>;
    type Error = ResidentFriError<B, F>;
    type ProverError = FriProverError;

    fn natural_domain_for_degree(&self, degree: usize) -> Self::Domain {
        TwoAdicMultiplicativeCoset::new(F::ONE, log2_strict_usize(degree))
            .expect("degree within the field's two-adicity")
    }

    fn commit(
        &self,
        evaluations: impl IntoIterator<Item = (Self::Domain, RowMajorMatrix<F>)>,
    ) -> Result<(Self::Commitment, Self::ProverData), Self::ProverError> {
        Ok(self
            .commit_resident(evaluations.into_iter().collect())
            .unwrap_or_else(|e| fail(e)))
    }

    fn open(
        &self,
        requests: Vec<OpeningRequest<'_, Self::ProverData, Challenge<F>>>,
        challenger: &mut Challenger<F>,
    ) -> Result<(OpenedValues<Challenge<F>>, Self::Proof), Self::ProverError> {
        for req in &requests {
            validate_input_height(&self.fri, log2_strict_usize(req.prover_data.height()))?;
        }
        let log_global_max_height = requests
            .iter()
            .map(|r| log2_strict_usize(r.prover_data.height()))
            .max()
            .expect("no matrices to open");

        // The claimed values, bound before alpha is drawn.
        let all_opened_values: OpenedValues<Challenge<F>> = requests
            .iter()
            .map(|r| self.opened_values(r.prover_data, &r.points))
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| fail(e));
        let claim_points: Vec<Vec<OpeningPoint<F>>> = requests
            .iter()
            .zip(&all_opened_values)
            .map(|(r, opened)| Self::claim_points(r.prover_data, &r.points, opened))
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| fail(e));

        let mut transcript = PcsProverTranscript::<Challenger<F>, F, Challenge<F>>::new(
            challenger,
            PcsShape::from_opened_values(&self.fri, &all_opened_values),
        );
        transcript.claimed_openings(&all_opened_values);
        let (alpha, batch_pow_witness) = transcript.batch_phase();
        let batch_pow_witness = batch_pow_witness.unwrap_or(F::ZERO);

        // The reduced openings, one vector per height, largest first: on the device.
        let claims: Vec<OpeningClaim<'_, B::Matrix<F>, F>> = requests
            .iter()
            .zip(&claim_points)
            .map(|(r, points)| OpeningClaim {
                matrix: &r.prover_data.matrix,
                points,
            })
            .collect();
        let mut input_log_heights: Vec<usize> = requests
            .iter()
            .map(|r| log2_strict_usize(r.prover_data.height()))
            .collect();
        input_log_heights.sort_unstable_by(|a, b| b.cmp(a));
        input_log_heights.dedup();
        if let Some(shape) =
            fri_prove::arity_two_shape(&self.fri, &input_log_heights, log_global_max_height)
        {
            // Arity 2 every round: FRI folds and commits on the device.
            let inputs = match self
                .backend
                .reduce_openings_resident(&claims, alpha, F::GENERATOR)
            {
                Ok(inputs) => inputs,
                Err(e) => {
                    transcript.abort();
                    fail(e)
                }
            };
            let fri_proof = transcript.delegate(|challenger| {
                fri_prove::prove_fri_resident(
                    &self.fri,
                    shape,
                    inputs,
                    challenger,
                    log_global_max_height,
                    &requests,
                    &self.mmcs,
                    batch_pow_witness,
                )
            });
            return match fri_proof {
                Ok(proof) => {
                    transcript.finish();
                    Ok((all_opened_values, proof))
                }
                Err(e) => {
                    transcript.abort();
                    Err(e)
                }
            };
        }
        let fri_input: Vec<Vec<Challenge<F>>> =
            match self.backend.reduce_openings(&claims, alpha, F::GENERATOR) {
                Ok(reduced) => reduced.into_iter().map(|r| r.values).collect(),
                Err(e) => {
                    transcript.abort();
                    fail(e)
                }
            };

        let folding: TwoAdicFriFoldingForMmcs<F, ResidentMmcs<B, F>> =
            TwoAdicFriFolding(PhantomData);
        let fri_proof = transcript.delegate(|challenger| {
            prover::prove_fri(
                &folding,
                &self.fri,
                fri_input,
                challenger,
                log_global_max_height,
                &requests,
                &self.mmcs,
                batch_pow_witness,
            )
        });
        match fri_proof {
            Ok(proof) => {
                transcript.finish();
                Ok((all_opened_values, proof))
            }
            Err(e) => {
                transcript.abort();
                Err(e)
            }
        }
    }

    /// The stock verification (`TwoAdicFriPcs::verify`), with the input openings
    /// checked by the stock `MerkleTreeMmcs`.
    fn verify(
        &self,
        claims: Vec<CommitmentOpening<Challenge<F>, Self::Commitment, Self::Domain>>,
        proof: &Self::Proof,
        challenger: &mut Challenger<F>,
    ) -> Result<(), Self::Error> {
        check_canonical_pow_witnesses(&self.fri, proof)?;
        let mut transcript = PcsVerifierTranscript::<Challenger<F>, F, Challenge<F>>::new(
            challenger,
            PcsShape::from_claims(&self.fri, &claims),
        );
        transcript.claimed_openings(&claims)?;
        let alpha = transcript.batch_phase(Some(proof.batch_pow_witness))?;
        let folding: TwoAdicFriFoldingForMmcs<F, ResidentMmcs<B, F>> =
            TwoAdicFriFolding(PhantomData);
        let result = transcript.delegate(|challenger| {
            verifier::verify_fri(
                &folding, &self.fri, proof, challenger, &claims, &self.mmcs, alpha,
            )
        });
        transcript.finish();
        result
    }
}

/// `check_canonical_pow_witnesses` (crate-private in p3-fri 0.8): a witness of a phase
/// with no grinding must be zero.
fn check_canonical_pow_witnesses<B: ResidentBackend, F: ResidentField>(
    fri: &FriParameters<ResidentFriMmcs<B, F>>,
    proof: &ResidentFriProof<B, F>,
) -> Result<(), ResidentFriError<B, F>> {
    let phase = if fri.batch_proof_of_work_bits == 0 && proof.batch_pow_witness != F::ZERO {
        Some(PowPhase::Batch)
    } else if fri.commit_proof_of_work_bits == 0
        && proof.commit_pow_witnesses.iter().any(|w| *w != F::ZERO)
    {
        Some(PowPhase::CommitPhase)
    } else if fri.query_proof_of_work_bits == 0 && proof.query_pow_witness != F::ZERO {
        Some(PowPhase::Query)
    } else {
        None
    };
    match phase {
        Some(phase) => Err(FriError::NonCanonicalPowWitness { phase }),
        None => Ok(()),
    }
}

impl<B: ResidentBackend, F: ResidentField> UnivariateStarkPcs<Challenge<F>, Challenger<F>>
    for ResidentPcs<B, F>
{
    type EvaluationsOnDomain<'a> = BitReversedMatrixView<RowMajorMatrix<F>>;

    const ZK: bool = false;

    fn log_max_trace_height(&self) -> usize {
        F::TWO_ADICITY
    }

    fn log_min_trace_height(&self) -> usize {
        0
    }

    /// The chunks on their sub-domains, committed together on the device.
    fn commit_quotient(
        &self,
        quotient_domain: Self::Domain,
        quotient_evaluations: RowMajorMatrix<F>,
        num_chunks: usize,
    ) -> Result<(Self::Commitment, Self::ProverData), Self::ProverError> {
        let evals = quotient_domain.split_evals(num_chunks, quotient_evaluations);
        let domains = quotient_domain.split_domains(num_chunks);
        self.commit(domains.into_iter().zip(evals))
    }

    /// The stock extension, on the host (the resident path commits through
    /// [`Pcs::commit`] instead).
    fn get_quotient_ldes(
        &self,
        evaluations: impl IntoIterator<Item = (Self::Domain, RowMajorMatrix<F>)>,
        _num_chunks: usize,
    ) -> Result<Vec<RowMajorMatrix<F>>, Self::ProverError> {
        Ok(evaluations
            .into_iter()
            .map(|(domain, evals)| {
                assert_eq!(domain.size(), evals.height());
                let shift = F::GENERATOR / domain.shift();
                self.dft
                    .coset_lde_batch(evals, self.fri.log_blowup, shift)
                    .bit_reverse_rows()
                    .to_row_major_matrix()
            })
            .collect())
    }

    /// Uploads finished extensions and commits them on the device.
    fn commit_ldes(
        &self,
        ldes: Vec<RowMajorMatrix<F>>,
    ) -> Result<(Self::Commitment, Self::ProverData), Self::ProverError> {
        let min_height = 1 << self.fri.log_blowup;
        for lde in &ldes {
            assert!(
                lde.height() >= min_height,
                "committed LDE height {} is smaller than the blowup factor {min_height}",
                lde.height()
            );
        }
        Ok(self.mmcs.commit(ldes))
    }

    /// The rows of committed matrix `idx` on `domain`: read from the device where
    /// `domain` is a prefix of the extension (`g K'`, `K'` within `K`, as the quotient
    /// domain is), else re-evaluated on the host from the evaluations kept at commit.
    fn get_evaluations_on_domain<'a>(
        &self,
        data: &'a Self::ProverData,
        idx: usize,
        domain: Self::Domain,
    ) -> Self::EvaluationsOnDomain<'a> {
        let cols = data.columns(idx);
        if domain.shift() == F::GENERATOR && data.height() >= domain.size() {
            let rows = self
                .backend
                .read_rows(&data.matrix, &(0..domain.size()).collect::<Vec<_>>())
                .unwrap_or_else(|e| fail(e));
            let values: Vec<F> = rows
                .iter()
                .flat_map(|r| r[cols.clone()].iter().copied())
                .collect();
            return RowMajorMatrix::new(values, cols.len()).bit_reverse_rows();
        }
        let low = self.low_evaluations(data).unwrap_or_else(|e| fail(e));
        let width = low.values.width;
        let mine: Vec<F> = low
            .values
            .values
            .chunks_exact(width)
            .flat_map(|r| r[cols.clone()].iter().copied())
            .collect();
        let mut coeffs = self
            .dft
            .coset_idft_batch(RowMajorMatrix::new(mine, cols.len()), low.shift);
        coeffs.values.resize(domain.size() * cols.len(), F::ZERO);
        let mut natural = self
            .dft
            .coset_dft_batch(coeffs, domain.shift())
            .to_row_major_matrix();
        reverse_matrix_index_bits(&mut natural);
        natural.bit_reverse_rows()
    }

    fn build_periodic_lde_table(
        &self,
        periodic_cols: &[Vec<F>],
        trace_domain: Self::Domain,
        quotient_domain: Self::Domain,
    ) -> PeriodicLdeTable<F> {
        build_periodic_lde_table_two_adic(&self.dft, periodic_cols, &trace_domain, &quotient_domain)
    }
}
