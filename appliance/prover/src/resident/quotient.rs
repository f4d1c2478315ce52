//! The quotient of a resident proof, kept where the backend computes it.
//!
//! - [`commit_quotient`] is the seam the prover commits the quotient through: the
//!   AIR's constraints compiled to a constraint program and evaluated over the
//!   resident trace extension ([`ResidentBackend::eval_quotient_resident`]); the
//!   values stay there as the chunks side by side (row `r` holds the points
//!   `r d .. r d + d`, chunk `i` in columns `4i .. 4i + 4`), and
//!   [`ResidentPcs::commit_quotient_resident`] extends each chunk with its own coset
//!   shift ([`ResidentBackend::lde_resident_groups`]) and commits them in one tree.
//!   Nothing of the quotient crosses either way: only the root comes back.
//! - At opening, the chunks' claimed values at `zeta` are interpolated where the
//!   extension lies ([`ResidentBackend::interpolate_resident`], the first
//!   `height >> log_blowup` rows on `g H`): one extension element per column back.
//! - An AIR the constraint compiler does not take is evaluated on the host
//!   ([`super::prove::quotient_values_on_host`]) and committed as the stock PCS
//!   commits it ([`UnivariateStarkPcs::commit_quotient`]), said in the
//!   log.
//!
//! The stock PCS commits chunk `i` (evaluations on `s_i H`, `s_i` the `i`-th of
//! `split_domains`) as `coset_lde_batch(chunk, log_blowup, g / s_i)`, rows
//! bit-reversed, the chunks side by side in one tree: the grouped extension with the
//! shifts `g / s_i` is that matrix, so the root is the stock root.

use p3_air::symbolic::AirLayout;
use p3_commit::{PolynomialSpace, UnivariateStarkPcs};
use p3_field::coset::TwoAdicMultiplicativeCoset;
use p3_matrix::dense::RowMajorMatrix;
use p3_uni_stark::QuotientAir;
use p3_util::log2_strict_usize;
use proofbox_backend_api::BackendError;
use proofbox_backend_api::resident::{EXT_DEGREE, ResidentBackend, ResidentField, ResidentMatrix};

use super::mmcs::{Commitment, ResidentData};
use super::pcs::ResidentPcs;
use super::prove::{ResidentConfig, compiled_quotient, quotient_values_on_host};
use crate::adapters::fail;
use crate::config::Challenge;

impl<B: ResidentBackend, F: ResidentField> ResidentPcs<B, F> {
    /// Commits the resident quotient `values` of `quotient_domain` (the chunks side by
    /// side, [module docs](self)) split into `num_chunks` chunks: each chunk extended
    /// onto `g K` with the shift `g / s_i` where it lies, one tree over all of them.
    /// No evaluations are kept on the host: the claimed openings are interpolated on
    /// the device.
    pub fn commit_quotient_resident(
        &self,
        quotient_domain: TwoAdicMultiplicativeCoset<F>,
        values: B::Matrix<F>,
        num_chunks: usize,
    ) -> Result<(Commitment<F>, ResidentData<B, F>), BackendError> {
        let height = quotient_domain.size() / num_chunks.max(1);
        if !num_chunks.is_power_of_two()
            || values.height() != height
            || values.width() != EXT_DEGREE * num_chunks
        {
            return Err(BackendError::invalid(format!(
                "a quotient of {} x {} for {num_chunks} chunks of a domain of {} points \
                 (expected {height} x {})",
                values.height(),
                values.width(),
                quotient_domain.size(),
                EXT_DEGREE * num_chunks
            )));
        }
        let shifts: Vec<F> = quotient_domain
            .split_domains(num_chunks)
            .iter()
            .map(|d| F::GENERATOR / d.shift())
            .collect();
        let matrix = self
            .backend()
            .lde_resident_groups(values, self.fri().log_blowup, &shifts)?;
        self.mmcs()
            .commit_resident(matrix, vec![EXT_DEGREE; num_chunks], None)
    }

    /// Every column of a commitment kept without host evaluations at `z`, interpolated
    /// where its extension lies from its first `height >> log_blowup` rows (the coset
    /// `g H`, bit-reversed).
    pub(crate) fn interpolate_on_device(
        &self,
        data: &ResidentData<B, F>,
        z: Challenge<F>,
    ) -> Result<Vec<Challenge<F>>, BackendError> {
        let log_rows = log2_strict_usize(data.height())
            .checked_sub(self.fri().log_blowup)
            .ok_or_else(|| {
                BackendError::invalid(format!(
                    "a commitment of {} rows is below the blowup 2^{}",
                    data.height(),
                    self.fri().log_blowup
                ))
            })?;
        self.backend()
            .interpolate_resident(data.matrix(), log_rows, F::GENERATOR, z)
    }
}

/// Commits the quotient of `air` over the trace committed in `trace` (see the
/// [module docs](self)): on the device where the constraint compiler takes the AIR,
/// else evaluated on the host and committed as the stock PCS does. A backend failure
/// unwinds with a [`crate::adapters::BackendFailure`] payload, as every backend
/// failure of a proof does.
#[allow(clippy::too_many_arguments)]
pub fn commit_quotient<B, F, A>(
    pcs: &ResidentPcs<B, F>,
    air: &A,
    public_values: &[F],
    layout: AirLayout,
    trace_domain: TwoAdicMultiplicativeCoset<F>,
    quotient_domain: TwoAdicMultiplicativeCoset<F>,
    trace: &ResidentData<B, F>,
    alpha: Challenge<F>,
    num_chunks: usize,
) -> Result<(Commitment<F>, ResidentData<B, F>), p3_fri::FriProverError>
where
    B: ResidentBackend,
    F: ResidentField,
    A: QuotientAir<ResidentConfig<B, F>>,
{
    match compiled_quotient::<B, F, A>(air, trace_domain, quotient_domain) {
        Some((program, shape)) => {
            let values = pcs
                .backend()
                .eval_quotient_resident(&program, trace.matrix(), shape, alpha, public_values)
                .unwrap_or_else(|e| fail(e));
            Ok(pcs
                .commit_quotient_resident(quotient_domain, values, num_chunks)
                .unwrap_or_else(|e| fail(e)))
        }
        None => {
            let values = quotient_values_on_host(
                pcs,
                air,
                public_values,
                layout,
                trace_domain,
                quotient_domain,
                trace,
                alpha,
            );
            let flat = RowMajorMatrix::new_col(values).flatten_to_base();
            pcs.commit_quotient(quotient_domain, flat, num_chunks)
        }
    }
}
