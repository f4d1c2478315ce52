//! The state-transition trace's columns: one `#[repr(C)]` struct, read through
//! `Borrow` as `p3-keccak-air` and `p3-poseidon2-air` read theirs. The order of the
//! fields is the order of the columns.

use core::borrow::{Borrow, BorrowMut};
use core::mem::{offset_of, size_of};

use p3_koala_bear::{
    GenericPoseidon2LinearLayersKoalaBear, KOALABEAR_POSEIDON2_HALF_FULL_ROUNDS,
    KOALABEAR_POSEIDON2_PARTIAL_ROUNDS_16, KOALABEAR_POSEIDON2_PARTIAL_ROUNDS_24,
    KOALABEAR_POSEIDON2_RC_16_EXTERNAL_FINAL, KOALABEAR_POSEIDON2_RC_16_EXTERNAL_INITIAL,
    KOALABEAR_POSEIDON2_RC_16_INTERNAL, KOALABEAR_POSEIDON2_RC_24_EXTERNAL_FINAL,
    KOALABEAR_POSEIDON2_RC_24_EXTERNAL_INITIAL, KOALABEAR_POSEIDON2_RC_24_INTERNAL, KoalaBear,
};
use p3_poseidon2_air::{FullRound, Poseidon2Air, Poseidon2Cols, RoundConstants};
use proofbox_state::encoding::VALUE_SLOTS;

type F = KoalaBear;

/// Full rounds at each end of KoalaBear's Poseidon2.
const HALF: usize = KOALABEAR_POSEIDON2_HALF_FULL_ROUNDS;
/// Partial rounds of the width-16 permutation.
const PARTIAL_16: usize = KOALABEAR_POSEIDON2_PARTIAL_ROUNDS_16;
/// Partial rounds of the width-24 permutation.
const PARTIAL_24: usize = KOALABEAR_POSEIDON2_PARTIAL_ROUNDS_24;

/// The columns of one width-16 permutation (S-box degree 3, no S-box registers).
pub type Perm16Cols<T> = Poseidon2Cols<T, 16, 3, 0, HALF, PARTIAL_16>;
/// The columns of one width-24 permutation.
pub type Perm24Cols<T> = Poseidon2Cols<T, 24, 3, 0, HALF, PARTIAL_24>;

/// `p3-poseidon2-air`'s AIR of the width-16 permutation: a node compression.
pub(crate) type P16Air =
    Poseidon2Air<F, GenericPoseidon2LinearLayersKoalaBear, 16, 3, 0, HALF, PARTIAL_16>;
/// `p3-poseidon2-air`'s AIR of the width-24 permutation: the key, leaf and diff sponge.
pub(crate) type P24Air =
    Poseidon2Air<F, GenericPoseidon2LinearLayersKoalaBear, 24, 3, 0, HALF, PARTIAL_24>;

pub(crate) fn rc16() -> RoundConstants<F, 16, HALF, PARTIAL_16> {
    RoundConstants::new(
        KOALABEAR_POSEIDON2_RC_16_EXTERNAL_INITIAL,
        KOALABEAR_POSEIDON2_RC_16_INTERNAL,
        KOALABEAR_POSEIDON2_RC_16_EXTERNAL_FINAL,
    )
}

pub(crate) fn rc24() -> RoundConstants<F, 24, HALF, PARTIAL_24> {
    RoundConstants::new(
        KOALABEAR_POSEIDON2_RC_24_EXTERNAL_INITIAL,
        KOALABEAR_POSEIDON2_RC_24_INTERNAL,
        KOALABEAR_POSEIDON2_RC_24_EXTERNAL_FINAL,
    )
}

/// One row of the state-transition trace. The three permutations are checked on
/// every row by `p3-poseidon2-air`'s constraints; the update's fields (`kind` to
/// `active`, and `root`) are constant within a segment; `bit` to `high` walk the key's
/// path; `diff_capacity` and `diff_output` carry the diff sponge.
#[repr(C)]
pub struct TransitionCols<T> {
    /// The width-24 permutation: key message, leaf messages, diff record blocks.
    pub sponge: Perm24Cols<T>,
    /// The width-16 permutation of the old path's compression at this row's level.
    pub old_path: Perm16Cols<T>,
    /// The width-16 permutation of the new path's compression at this row's level.
    pub new_path: Perm16Cols<T>,
    /// 0 for an account key, 1 for a storage key.
    pub kind: T,
    /// The address as ten 16-bit limbs.
    pub address: [T; 10],
    /// The storage slot as sixteen 16-bit limbs (zero for an account key).
    pub slot: [T; 16],
    /// Whether the key has a value before the update.
    pub old_present: T,
    /// Whether the key has a value after the update.
    pub new_present: T,
    /// The value slots before the update (zero when absent).
    pub old_value: [T; VALUE_SLOTS],
    /// The value slots after the update (zero when absent).
    pub new_value: [T; VALUE_SLOTS],
    /// The key digest `K`.
    pub key: [T; 8],
    /// The hash of the old leaf message.
    pub old_leaf: [T; 8],
    /// The hash of the new leaf message.
    pub new_leaf: [T; 8],
    /// 1 for a segment of the diff's updates, 0 for a padding segment.
    pub active: T,
    /// The path bit of this row's tree level.
    pub bit: T,
    /// The key element's remaining bits from this row's bit up.
    pub rem: T,
    /// Whether any of the element's bits 0..=min(i, 23) is set.
    pub low: T,
    /// Whether all of the element's bits 24..=i are set.
    pub high: T,
    /// The state root before this segment's update.
    pub root: [T; 8],
    /// The diff sponge's capacity.
    pub diff_capacity: [T; 8],
    /// The diff sponge's output.
    pub diff_output: [T; 8],
}

/// Columns of the state-transition trace.
pub const NUM_TRANSITION_COLS: usize = size_of::<TransitionCols<u8>>();

/// The output of a permutation (the post-state of its last full round), as an array.
pub trait PermOutput<T> {
    fn output(&self) -> &[T];
}

impl<T, const W: usize, const P: usize> PermOutput<T> for Poseidon2Cols<T, W, 3, 0, HALF, P> {
    fn output(&self) -> &[T] {
        &self.ending_full_rounds[HALF - 1].post
    }
}

impl<T> Borrow<TransitionCols<T>> for [T] {
    fn borrow(&self) -> &TransitionCols<T> {
        debug_assert_eq!(self.len(), NUM_TRANSITION_COLS);
        // SAFETY: `TransitionCols<T>` is `repr(C)` and made of `T`s only, so it has
        // the size of `NUM_TRANSITION_COLS` `T`s and the alignment of `T`.
        let (prefix, cols, suffix) = unsafe { self.align_to::<TransitionCols<T>>() };
        debug_assert!(prefix.is_empty(), "alignment should match");
        debug_assert!(suffix.is_empty(), "alignment should match");
        debug_assert_eq!(cols.len(), 1);
        &cols[0]
    }
}

impl<T> BorrowMut<TransitionCols<T>> for [T] {
    fn borrow_mut(&mut self) -> &mut TransitionCols<T> {
        debug_assert_eq!(self.len(), NUM_TRANSITION_COLS);
        // SAFETY: as for `borrow`.
        let (prefix, cols, suffix) = unsafe { self.align_to_mut::<TransitionCols<T>>() };
        debug_assert!(prefix.is_empty(), "alignment should match");
        debug_assert!(suffix.is_empty(), "alignment should match");
        debug_assert_eq!(cols.len(), 1);
        &mut cols[0]
    }
}

/// Offset of a permutation's output within its column block.
const fn output_offset<const W: usize, const P: usize>() -> usize {
    offset_of!(Poseidon2Cols<u8, W, 3, 0, HALF, P>, ending_full_rounds)
        + (HALF - 1) * size_of::<FullRound<u8, W, 3, 0>>()
        + offset_of!(FullRound<u8, W, 3, 0>, post)
}

/// Column indices of [`TransitionCols`]'s fields, for tests and tools that inspect or
/// corrupt single cells of a trace (the AIR itself reads the struct).
pub mod col {
    use super::*;

    macro_rules! at {
        ($field:ident) => {
            offset_of!(TransitionCols<u8>, $field)
        };
    }
    pub const P24: usize = at!(sponge);
    pub const OLD: usize = at!(old_path);
    pub const NEW: usize = at!(new_path);
    pub const KIND: usize = at!(kind);
    pub const ADDR: usize = at!(address);
    pub const SLOT: usize = at!(slot);
    pub const OLD_PRESENT: usize = at!(old_present);
    pub const NEW_PRESENT: usize = at!(new_present);
    pub const OLD_V: usize = at!(old_value);
    pub const NEW_V: usize = at!(new_value);
    pub const KEY: usize = at!(key);
    pub const OLD_LEAF: usize = at!(old_leaf);
    pub const NEW_LEAF: usize = at!(new_leaf);
    pub const ACTIVE: usize = at!(active);
    pub const BIT: usize = at!(bit);
    pub const REM: usize = at!(rem);
    pub const LOW: usize = at!(low);
    pub const HIGH: usize = at!(high);
    pub const ROOT: usize = at!(root);
    pub const DCAP: usize = at!(diff_capacity);
    pub const DOUT: usize = at!(diff_output);
    pub const WIDTH: usize = NUM_TRANSITION_COLS;
    /// Columns of a width-16 permutation block.
    pub const P16_COLS: usize = size_of::<Perm16Cols<u8>>();
    /// Columns of the width-24 permutation block.
    pub const P24_COLS: usize = size_of::<Perm24Cols<u8>>();
    /// Offset of the width-16 permutations' output within their blocks.
    pub const P16_OUT: usize = output_offset::<16, PARTIAL_16>();
    /// Offset of the width-24 permutation's output within its block.
    pub const P24_OUT: usize = output_offset::<24, PARTIAL_24>();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_the_documented_one() {
        assert_eq!(col::WIDTH, 721);
        // inputs, 4 beginning full rounds (post only: no S-box registers), the
        // partial rounds (one post-S-box column each), 3 ending full rounds.
        assert_eq!(col::P16_OUT, 16 + 4 * 16 + PARTIAL_16 + 3 * 16);
        assert_eq!(col::P24_OUT, 24 + 4 * 24 + PARTIAL_24 + 3 * 24);
        assert_eq!(col::OLD, col::P24_COLS);
        assert_eq!(col::NEW, col::OLD + col::P16_COLS);
        assert_eq!(col::KIND, col::NEW + col::P16_COLS);
        assert_eq!(col::DOUT + 8, col::WIDTH);
    }

    #[test]
    fn borrow_reads_the_columns_in_order() {
        let row: Vec<u32> = (0..col::WIDTH as u32).collect();
        let cols: &TransitionCols<u32> = row[..].borrow();
        assert_eq!(cols.kind as usize, col::KIND);
        assert_eq!(cols.key[3] as usize, col::KEY + 3);
        assert_eq!(
            cols.new_path.output()[2] as usize,
            col::NEW + col::P16_OUT + 2
        );
        assert_eq!(cols.diff_output[7] as usize, col::WIDTH - 1);
    }
}
