//! The fields circuits are instantiated over, with each field's Poseidon2 AIR.

use p3_baby_bear::{
    BABYBEAR_POSEIDON2_HALF_FULL_ROUNDS, BABYBEAR_POSEIDON2_PARTIAL_ROUNDS_16,
    BABYBEAR_POSEIDON2_RC_16_EXTERNAL_FINAL, BABYBEAR_POSEIDON2_RC_16_EXTERNAL_INITIAL,
    BABYBEAR_POSEIDON2_RC_16_INTERNAL, BabyBear, GenericPoseidon2LinearLayersBabyBear,
};
use p3_field::extension::BinomiallyExtendable;
use p3_koala_bear::{
    GenericPoseidon2LinearLayersKoalaBear, KOALABEAR_POSEIDON2_HALF_FULL_ROUNDS,
    KOALABEAR_POSEIDON2_PARTIAL_ROUNDS_16, KOALABEAR_POSEIDON2_RC_16_EXTERNAL_FINAL,
    KOALABEAR_POSEIDON2_RC_16_EXTERNAL_INITIAL, KOALABEAR_POSEIDON2_RC_16_INTERNAL, KoalaBear,
};
use p3_matrix::dense::RowMajorMatrix;
use p3_poseidon2_air::{RoundConstants, VectorizedPoseidon2Air};
use proofbox_backend_api::BackendField;

use crate::id::POSEIDON2_PER_ROW;
use crate::statement::WithStatement;

/// Fields the circuits are instantiated over.
pub trait CircuitField: BackendField + BinomiallyExtendable<4> {
    /// The vectorized Poseidon2 AIR for this field's width-16 permutation.
    type Poseidon2Air: Clone + Send + Sync;

    fn poseidon2_air() -> WithStatement<Self::Poseidon2Air>;

    fn poseidon2_trace(inputs: Vec<[Self; 16]>, extra_capacity_bits: usize)
    -> RowMajorMatrix<Self>;
}

macro_rules! poseidon2_field {
    ($field:ty, $layers:ty, $sbox_degree:expr, $sbox_registers:expr, $half:expr, $partial:expr,
     $rc_init:expr, $rc_internal:expr, $rc_final:expr) => {
        impl CircuitField for $field {
            type Poseidon2Air = VectorizedPoseidon2Air<
                $field,
                $layers,
                16,
                $sbox_degree,
                $sbox_registers,
                $half,
                $partial,
                POSEIDON2_PER_ROW,
            >;

            fn poseidon2_air() -> WithStatement<Self::Poseidon2Air> {
                WithStatement(VectorizedPoseidon2Air::new(RoundConstants::new(
                    $rc_init,
                    $rc_internal,
                    $rc_final,
                )))
            }

            fn poseidon2_trace(
                inputs: Vec<[Self; 16]>,
                extra_capacity_bits: usize,
            ) -> RowMajorMatrix<Self> {
                p3_poseidon2_air::generate_vectorized_trace_rows::<
                    $field,
                    $layers,
                    16,
                    $sbox_degree,
                    $sbox_registers,
                    $half,
                    $partial,
                    POSEIDON2_PER_ROW,
                >(
                    inputs,
                    &RoundConstants::new($rc_init, $rc_internal, $rc_final),
                    extra_capacity_bits,
                )
            }
        }
    };
}

poseidon2_field!(
    KoalaBear,
    GenericPoseidon2LinearLayersKoalaBear,
    3,
    0,
    KOALABEAR_POSEIDON2_HALF_FULL_ROUNDS,
    KOALABEAR_POSEIDON2_PARTIAL_ROUNDS_16,
    KOALABEAR_POSEIDON2_RC_16_EXTERNAL_INITIAL,
    KOALABEAR_POSEIDON2_RC_16_INTERNAL,
    KOALABEAR_POSEIDON2_RC_16_EXTERNAL_FINAL
);

poseidon2_field!(
    BabyBear,
    GenericPoseidon2LinearLayersBabyBear,
    7,
    1,
    BABYBEAR_POSEIDON2_HALF_FULL_ROUNDS,
    BABYBEAR_POSEIDON2_PARTIAL_ROUNDS_16,
    BABYBEAR_POSEIDON2_RC_16_EXTERNAL_INITIAL,
    BABYBEAR_POSEIDON2_RC_16_INTERNAL,
    BABYBEAR_POSEIDON2_RC_16_EXTERNAL_FINAL
);
