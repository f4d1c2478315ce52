//! The periodic columns (period [`ROWS_PER_SEGMENT`]) that say what each row of a
//! segment does, in the order the AIR reads them ([`per`]).
//!
//! | rows | width-24 permutation (an update's first segment only) | width-16 permutations |
//! |---|---|---|
//! | 0-1 | key message, 2 blocks: the key digest `K` | level `31 j + 30 - r` at row `r` |
//! | 2-4 | old leaf message, 3 blocks | ... |
//! | 5-7 | new leaf message, 3 blocks | ... |
//! | 8-11 | the update's diff record, 4 blocks, continuing the diff sponge | ... |
//! | 12-14 | the neighbor's leaf message, 3 blocks | ... |
//! | 15-30 | - | ... down to level `31 j` at row 30 |
//! | 31 | - | none: the nodes are passed on to the next segment |
//!
//! Row `r < 31` of a segment that walks element `j` of `K` reads bit `r` of that
//! element (least significant first), the path bit of level `31 j + 30 - r`.

use p3_field::PrimeCharacteristicRing;
use p3_koala_bear::KoalaBear;

use super::ROWS_PER_SEGMENT;

type F = KoalaBear;

/// Rows of a segment with a tree level: 0..=30.
pub const TREE_ROWS: usize = 31;
/// Rows of an update's first segment whose width-24 permutation hashes a message.
pub const SPONGE_ROWS: usize = 15;

/// Periodic columns.
pub mod per {
    /// Row `r` of the segment, for `r` in `0..15`.
    pub const ROW: usize = 0;
    /// Rows with a tree level (0..=30).
    pub const TREE: usize = 15;
    /// The segment's last row (31).
    pub const LAST: usize = 16;
    /// Bits 0..=22 of an element: the next bit is ORed into `low`.
    pub const LOW_OR: usize = 17;
    /// Bits 23..=29: `low` is kept.
    pub const LOW_HOLD: usize = 18;
    /// Bit 24: `high` starts.
    pub const HIGH_START: usize = 19;
    /// Bits 24..=29: the next bit is ANDed into `high`.
    pub const HIGH_AND: usize = 20;
    /// Bit 30, an element's last.
    pub const ELEM_END: usize = 21;
    /// Bits 0..=29: the remainder halves into the next row.
    pub const IN_ELEM: usize = 22;
    /// Rows whose width-24 output capacity feeds the next row's input.
    pub const CHAIN: usize = 23;
    /// Rows that start a sponge (zero capacity).
    pub const FRESH: usize = 24;
    pub const COUNT: usize = 25;
}

/// The periodic columns' values over one segment: column `c` of [`per`] at index `c`.
pub fn periodic_table() -> Vec<Vec<F>> {
    let mut cols = vec![vec![F::ZERO; ROWS_PER_SEGMENT]; per::COUNT];
    let mut set = |c: usize, r: usize| cols[c][r] = F::ONE;
    for r in 0..SPONGE_ROWS {
        set(per::ROW + r, r);
    }
    for i in 0..TREE_ROWS {
        set(per::TREE, i);
        if i <= 22 {
            set(per::LOW_OR, i);
        }
        if (23..=29).contains(&i) {
            set(per::LOW_HOLD, i);
        }
        if i == 24 {
            set(per::HIGH_START, i);
        }
        if (24..=29).contains(&i) {
            set(per::HIGH_AND, i);
        }
        if i == 30 {
            set(per::ELEM_END, i);
        }
        if i <= 29 {
            set(per::IN_ELEM, i);
        }
    }
    set(per::LAST, ROWS_PER_SEGMENT - 1);
    for r in [0, 2, 3, 5, 6, 8, 9, 10, 12, 13] {
        set(per::CHAIN, r);
    }
    for r in [0, 2, 5, 12] {
        set(per::FRESH, r);
    }
    cols
}
