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
/// every row by `p3-poseidon2-air`'s constraints. The update's fields (`kind` to
/// `neighbor_leaf`) are constant over the update's segments; `element` and `head` over
/// one segment; the rest belong to the row: `bit` to `high` walk the key digest's
/// element, `neighbor_bit` to `neighbor_high` the neighbor's, `old_empty` to `pass_new`
/// say how each walk combines its node with the sibling, `diff_capacity` and
/// `diff_output` carry the diff sponge, and `absorb`, `head_start` and `end` are
/// products of other columns, kept as columns to hold the constraints' degree to 3.
#[repr(C)]
pub struct TransitionCols<T> {
    /// The width-24 permutation: key message, leaf messages, diff record blocks, the
    /// neighbor's leaf message.
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
    /// 1 for an update of the diff, 0 for a padding update.
    pub active: T,
    /// The state root before this update.
    pub root: [T; 8],
    /// The neighbor's kind (0 account, 1 storage): the lone leaf that is the path's
    /// deepest sibling, when the walk needs to know it is a leaf.
    pub neighbor_kind: T,
    /// The neighbor's key digest.
    pub neighbor_key: [T; 8],
    /// The neighbor's value slots.
    pub neighbor_value: [T; VALUE_SLOTS],
    /// The hash of the neighbor's leaf message.
    pub neighbor_leaf: [T; 8],
    /// The deepest sibling, when a walk with an empty node meets it and it is a branch:
    /// a segment's last row shows it is the compression of two children.
    pub deep: [T; 8],
    /// One-hot: the element of `K` this segment walks (element `j`: levels
    /// `31 j + 30` at row 0 up to `31 j` at row 30).
    pub element: [T; 8],
    /// 1 for an update's first segment, which also hashes its messages.
    pub head: T,
    /// The path bit of this row's tree level.
    pub bit: T,
    /// The key element's remaining bits from this row's bit up.
    pub rem: T,
    /// Whether any of the element's bits 0..=min(i, 23) is set.
    pub low: T,
    /// Whether all of the element's bits 24..=i are set.
    pub high: T,
    /// `bit` to `high` for the neighbor's key digest.
    pub neighbor_bit: T,
    pub neighbor_rem: T,
    pub neighbor_low: T,
    pub neighbor_high: T,
    /// Whether the old walk's node at this row is empty.
    pub old_empty: T,
    /// Whether the old walk's node at this row is one lone leaf.
    pub old_lone: T,
    /// The same for the new walk.
    pub new_empty: T,
    pub new_lone: T,
    /// Whether the sibling is empty (all zeros).
    pub sibling_empty: T,
    /// Whether the sibling is the neighbor's leaf.
    pub sibling_lone: T,
    /// A witness that the sibling is not all zeros: `sum sibling[i] * inverse[i]` is 1
    /// where `sibling_empty` is 0.
    pub inverse: [T; 8],
    /// Whether this row's level is above the one where the neighbor splits off (the
    /// neighbor's path agrees with the key's there).
    pub above: T,
    /// Whether the old walk passes a node up unhashed at this row.
    pub pass_old: T,
    /// The same for the new walk.
    pub pass_new: T,
    /// The new walk's node, handed from row 30 over row 31 to the next segment (row
    /// 31's new-walk permutation checks the deepest sibling's children instead).
    pub carry: [T; 8],
    /// Whether a walk with an empty node meets a branch sibling at this row.
    pub many: T,
    /// Whether this segment has had such a row: its last row must show `deep`'s
    /// children.
    pub need: T,
    /// The diff sponge's capacity.
    pub diff_capacity: [T; 8],
    /// The diff sponge's output.
    pub diff_output: [T; 8],
    /// `active * head`: this segment absorbs its update's record into the diff sponge.
    pub absorb: T,
    /// `head` on row 0: an update starts here.
    pub head_start: T,
    /// `element[0]` on row 31: an update ends here.
    pub end: T,
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
    pub const ROOT: usize = at!(root);
    pub const NB_KIND: usize = at!(neighbor_kind);
    pub const NB_KEY: usize = at!(neighbor_key);
    pub const NB_V: usize = at!(neighbor_value);
    pub const NB_LEAF: usize = at!(neighbor_leaf);
    pub const ELEMENT: usize = at!(element);
    pub const HEAD: usize = at!(head);
    pub const BIT: usize = at!(bit);
    pub const REM: usize = at!(rem);
    pub const LOW: usize = at!(low);
    pub const HIGH: usize = at!(high);
    pub const NB_BIT: usize = at!(neighbor_bit);
    pub const OLD_EMPTY: usize = at!(old_empty);
    pub const OLD_LONE: usize = at!(old_lone);
    pub const NEW_EMPTY: usize = at!(new_empty);
    pub const NEW_LONE: usize = at!(new_lone);
    pub const SIB_EMPTY: usize = at!(sibling_empty);
    pub const SIB_LONE: usize = at!(sibling_lone);
    pub const INVERSE: usize = at!(inverse);
    pub const ABOVE: usize = at!(above);
    pub const PASS_OLD: usize = at!(pass_old);
    pub const PASS_NEW: usize = at!(pass_new);
    pub const DEEP: usize = at!(deep);
    pub const CARRY: usize = at!(carry);
    pub const MANY: usize = at!(many);
    pub const NEED: usize = at!(need);
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
        assert_eq!(col::WIDTH, 825);
        // inputs, 4 beginning full rounds (post only: no S-box registers), the
        // partial rounds (one post-S-box column each), 3 ending full rounds.
        assert_eq!(col::P16_OUT, 16 + 4 * 16 + PARTIAL_16 + 3 * 16);
        assert_eq!(col::P24_OUT, 24 + 4 * 24 + PARTIAL_24 + 3 * 24);
        assert_eq!(col::OLD, col::P24_COLS);
        assert_eq!(col::NEW, col::OLD + col::P16_COLS);
        assert_eq!(col::KIND, col::NEW + col::P16_COLS);
        assert_eq!(col::DOUT + 8 + 3, col::WIDTH);
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
        assert_eq!(cols.end as usize, col::WIDTH - 1);
    }
}
