//! The periodic columns (period [`ROWS_PER_UPDATE`]) that say what each row of a
//! segment does, in the order the AIR reads them ([`per`]), and where a row sits on
//! the key's path.
//!
//! | rows | width-24 permutation | width-16 permutations |
//! |---|---|---|
//! | 0-1 | key message, 2 blocks: the key digest `K` | - |
//! | 2-4 | old leaf message, 3 blocks | - |
//! | 5-7 | new leaf message, 3 blocks | - |
//! | 8-11 | the update's diff record, 4 blocks, continuing the diff sponge | levels 247-244 |
//! | 12-255 | - | levels 243-0 |

use p3_field::PrimeCharacteristicRing;
use p3_koala_bear::KoalaBear;

use super::ROWS_PER_UPDATE;

type F = KoalaBear;

/// Rows of a segment before the first tree level.
pub const TREE_START: usize = 8;

/// Periodic columns.
pub mod per {
    /// Row `r` of the segment, for `r` in `0..12`.
    pub const ROW: usize = 0;
    /// Rows with a tree level (8..=255).
    pub const TREE: usize = 12;
    /// Tree rows followed by a tree row (8..=254).
    pub const TREE_NEXT: usize = 13;
    /// The segment's last row.
    pub const SEG_END: usize = 14;
    /// The first row of `K[j]`'s bits, `j` in `0..8`.
    pub const ELEM_START: usize = 15;
    /// Bits 0..=22 of an element: the next bit is ORed into `low`.
    pub const LOW_OR: usize = 23;
    /// Bits 23..=29: `low` is kept.
    pub const LOW_HOLD: usize = 24;
    /// Bit 24: `high` starts.
    pub const HIGH_START: usize = 25;
    /// Bits 24..=29: the next bit is ANDed into `high`.
    pub const HIGH_AND: usize = 26;
    /// Bit 30, an element's last.
    pub const ELEM_END: usize = 27;
    /// Bits 0..=29: the remainder halves into the next row.
    pub const IN_ELEM: usize = 28;
    /// Rows whose width-24 output capacity feeds the next row's input.
    pub const CHAIN: usize = 29;
    /// Rows that start a sponge (zero capacity).
    pub const FRESH: usize = 30;
    pub const COUNT: usize = 31;
}

/// Position of a tree row within its segment: `(element index j of K, bit index i)`.
pub fn tree_position(row: usize) -> Option<(usize, usize)> {
    (TREE_START..ROWS_PER_UPDATE).contains(&row).then(|| {
        let t = row - TREE_START;
        (7 - t / 31, t % 31)
    })
}

/// The periodic columns' values over one segment: column `c` of [`per`] at index `c`.
pub fn periodic_table() -> Vec<Vec<F>> {
    let mut cols = vec![vec![F::ZERO; ROWS_PER_UPDATE]; per::COUNT];
    let mut set = |c: usize, r: usize| cols[c][r] = F::ONE;
    for r in 0..12 {
        set(per::ROW + r, r);
    }
    for r in 0..ROWS_PER_UPDATE {
        if r >= TREE_START {
            set(per::TREE, r);
            if r + 1 < ROWS_PER_UPDATE {
                set(per::TREE_NEXT, r);
            }
        }
        if let Some((j, i)) = tree_position(r) {
            if i == 0 {
                set(per::ELEM_START + j, r);
            }
            if i <= 22 {
                set(per::LOW_OR, r);
            }
            if (23..=29).contains(&i) {
                set(per::LOW_HOLD, r);
            }
            if i == 24 {
                set(per::HIGH_START, r);
            }
            if (24..=29).contains(&i) {
                set(per::HIGH_AND, r);
            }
            if i == 30 {
                set(per::ELEM_END, r);
            }
            if i <= 29 {
                set(per::IN_ELEM, r);
            }
        }
    }
    set(per::SEG_END, ROWS_PER_UPDATE - 1);
    for r in [0, 2, 3, 5, 6, 8, 9, 10] {
        set(per::CHAIN, r);
    }
    for r in [0, 2, 5] {
        set(per::FRESH, r);
    }
    cols
}
