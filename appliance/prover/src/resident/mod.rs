//! The resident prover path: the STARK prover over device-resident matrices.
//!
//! The stock path (`crate::config`) runs Plonky3's `TwoAdicFriPcs`, which holds every
//! extension on the host: each LDE comes back from the device whole and its Merkle
//! tree goes back in batches of rows. On this path the extension and its tree stay
//! where the backend made them ([`ResidentBackend`]):
//!
//! - [`pcs::ResidentPcs`] is `TwoAdicFriPcs` over resident matrices: commitments
//!   are `lde_resident` + `commit` on the device; openings reduce on the device
//!   (`reduce_openings_resident`), and FRI (`fri_prove`) folds and commits every
//!   codeword there (`fri_fold`), reading back the roots, the final codeword and, in
//!   one call, every queried row and pruned Merkle path (`read_openings`).
//! - [`fri::ResidentFriMmcs`] is the MMCS type FRI's proof names (the stock
//!   `ExtensionMmcs` verifies); schedules with rounds of higher arity (no preset has
//!   one) fold on the host and commit each codeword through it.
//! - [`prove::prove`] is `p3_uni_stark::prove`'s loop over it, with the quotient
//!   committed through one seam, [`quotient::commit_quotient`]: the AIR's constraints
//!   evaluated on the device (`ResidentBackend::eval_quotient_resident`), the values
//!   left there, each chunk extended there with its coset shift
//!   (`lde_resident_groups`) and committed; its claimed openings interpolated there
//!   (`interpolate_resident`).
//!
//! **Invariant:** a resident proof's commitments (trace, quotient chunks, FRI rounds),
//! transcript and proof bytes are the stock path's: the proof deserializes as the
//! stock configuration's proof (`proofbox_verifier::config::stock`) and verifies
//! there. What crosses to the device: the trace once, plus the backend's tables. What
//! comes back: the roots, the quotient chunks' openings at `zeta` (one extension
//! element per column), the final FRI codeword, and the rows and digests of every
//! query of every commitment in one read.
//!
//! [`crate::Prover::resident`] proves on this path and falls back to the stock path,
//! with a log line, when the device lacks memory for a whole matrix.

pub mod fri;
mod fri_prove;
pub mod mmcs;
pub mod pcs;
pub mod prove;
pub mod quotient;

use std::sync::Arc;

use p3_air::{Air, DebugConstraintBuilder};
use p3_blake3_air::Blake3Air;
use p3_keccak_air::KeccakAir;
use p3_koala_bear::KoalaBear;
use p3_matrix::dense::RowMajorMatrix;
use p3_uni_stark::QuotientAir;
use proofbox_backend_api::resident::{ResidentBackend, ResidentField};
use proofbox_circuits::{CircuitId, WithStatement};
use proofbox_verifier::FriParams;

pub use fri::ResidentFriMmcs;
pub use mmcs::{ResidentData, ResidentMmcs};
pub use pcs::ResidentPcs;
pub use prove::{ResidentConfig, config, prove, quotient_values};

use crate::progress::Progress;
use crate::prover::{ProveError, ProveField};

/// Proves one circuit's trace on the resident path, the proof serialized as the
/// stock path serializes it (postcard).
pub(crate) type ProveFn<B, F> = fn(
    &Arc<B>,
    CircuitId,
    RowMajorMatrix<F>,
    &[F],
    &FriParams,
    &dyn Progress,
) -> Result<Vec<u8>, ProveError>;

/// The resident path's entry points for one backend, monomorphised where the backend
/// is known to keep matrices resident.
pub(crate) struct ResidentPaths<B> {
    pub(crate) koala_bear: ProveFn<B, KoalaBear>,
    pub(crate) baby_bear: ProveFn<B, p3_baby_bear::BabyBear>,
}

impl<B: ResidentBackend> ResidentPaths<B> {
    pub(crate) fn new() -> Self {
        Self {
            koala_bear: prove_circuit::<B, KoalaBear>,
            baby_bear: prove_circuit::<B, p3_baby_bear::BabyBear>,
        }
    }
}

fn prove_circuit<B: ResidentBackend, F: ProveField>(
    backend: &Arc<B>,
    circuit: CircuitId,
    trace: RowMajorMatrix<F>,
    public_values: &[F],
    fri: &FriParams,
    progress: &dyn Progress,
) -> Result<Vec<u8>, ProveError> {
    let config = config::<B, F>(backend.clone(), fri);
    match circuit {
        CircuitId::Poseidon2 => {
            F::prove_poseidon2_resident(&config, trace, public_values, progress)
        }
        CircuitId::Keccak => prove_air(
            &config,
            &WithStatement(KeccakAir {}),
            trace,
            public_values,
            progress,
        ),
        CircuitId::Blake3 => prove_air(
            &config,
            &WithStatement(Blake3Air {}),
            trace,
            public_values,
            progress,
        ),
        CircuitId::StateTransition => {
            F::prove_transition_resident(&config, trace, public_values, progress)
        }
    }
}

/// [`prove`], the proof serialized.
pub(crate) fn prove_air<B, F, A>(
    config: &ResidentConfig<B, F>,
    air: &A,
    trace: RowMajorMatrix<F>,
    public_values: &[F],
    progress: &dyn Progress,
) -> Result<Vec<u8>, ProveError>
where
    B: ResidentBackend,
    F: ResidentField,
    A: QuotientAir<ResidentConfig<B, F>> + for<'a> Air<DebugConstraintBuilder<'a, F>>,
{
    let proof = prove(config, air, trace, public_values, progress)
        .map_err(|e| ProveError::Prover(e.to_string()))?;
    postcard::to_allocvec(&proof)
        .map_err(|e| ProveError::Prover(format!("serializing the proof: {e}")))
}
