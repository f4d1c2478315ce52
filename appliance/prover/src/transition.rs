//! The state-transition circuit: a proof that applying exactly the updates of a diff,
//! in the diff's canonical order, to the state tree with root `pre_root` gives
//! `post_root`, where the diff is the one whose Poseidon2 commitment is
//! `diff_commitment`.
//!
//! A diff is proved by one proof or, past what one machine can prove at once, by a
//! bundle of chained proofs ([`TransitionProof`], built by
//! [`TransitionInput::build_chunks`] and [`crate::Prover::prove_transition_chunks`],
//! checked by [`verify_transition_chunks`]): each proof ("chunk") applies a run of
//! consecutive updates and continues the diff sponge where the previous one left it,
//! so the bundle states exactly what one proof of the whole diff states.
//!
//! Public values (52 KoalaBear elements, [`ChunkStatement`], offsets in [`pv`]):
//! `pre_root` (8), `post_root` (8), `diff_commitment` (8: the diff sponge's output
//! after this proof's updates), the block number as four 16-bit limbs, least
//! significant first (4; bound to the proof through the transcript, not read by a
//! constraint), then the diff sponge's capacity (8) and output (8) at the first row
//! (`sponge_in`) and its capacity at the last row (8, with `diff_commitment` the
//! `sponge_out` state). A proof of a whole diff, and a bundle's first chunk, start at
//! the state after the header block ([`SpongeState::header`]): the verifier checks
//! that, or a proof could start mid-sponge; chunk `i + 1` starts at chunk `i`'s
//! post-state root and sponge state ([`chain`]).
//!
//! # Layout
//!
//! One **segment** of [`ROWS_PER_UPDATE`] = 256 rows per update; the trace has a power
//! of two of segments, the ones past the diff's updates being *padding*: an update that
//! writes a key's current value back (old leaf = new leaf), which leaves the root as it
//! is and absorbs nothing into the diff commitment. Every row holds three Poseidon2
//! permutations, checked by `p3-poseidon2-air`'s constraints on every row: one of width
//! 24 (the sponge of keys, leaves and the diff) and two of width 16 (the node
//! compressions of the old and the new path), plus the update's fields, which are
//! constant within a segment. Periodic columns (period 256) select what each row does:
//!
//! | rows | width-24 permutation | width-16 permutations |
//! |---|---|---|
//! | 0-1 | key message, 2 blocks: the key digest `K` | - |
//! | 2-4 | old leaf message, 3 blocks | - |
//! | 5-7 | new leaf message, 3 blocks | - |
//! | 8-11 | the update's diff record, 4 blocks, continuing the diff sponge | levels 247-244 |
//! | 12-255 | - | levels 243-0 |
//!
//! Row `8 + t` compresses level `247 - t` of both paths with one sibling and one path
//! bit; the path bits are `K`'s elements decomposed least significant bit first (31
//! rows per element, `K[7]` first), with a check that each decomposition is the
//! canonical one (below `p`), so a key has exactly one path. At row 255 the old path
//! must reach the segment's root and the new path's root becomes the next segment's.
//! The diff sponge starts from the public `sponge_in` (for a whole diff, the state
//! after the header block `[5, 0 x 15]`) and its capacity and output are carried from
//! segment to segment; the last row's output is `diff_commitment` and its capacity the
//! public `sponge_out` capacity. Padding segments absorb nothing and leave the root as
//! it is, so a chunk's padding does not disturb the chain. `docs/state.md` ("The
//! state-transition proof") has the details.

use std::sync::OnceLock;

use p3_air::{Air, AirBuilder, BaseAir, WindowAccess};
use p3_field::{PrimeCharacteristicRing, PrimeField32};
use p3_koala_bear::{
    GenericPoseidon2LinearLayersKoalaBear, KOALABEAR_POSEIDON2_HALF_FULL_ROUNDS,
    KOALABEAR_POSEIDON2_PARTIAL_ROUNDS_16, KOALABEAR_POSEIDON2_PARTIAL_ROUNDS_24,
    KOALABEAR_POSEIDON2_RC_16_EXTERNAL_FINAL, KOALABEAR_POSEIDON2_RC_16_EXTERNAL_INITIAL,
    KOALABEAR_POSEIDON2_RC_16_INTERNAL, KOALABEAR_POSEIDON2_RC_24_EXTERNAL_FINAL,
    KOALABEAR_POSEIDON2_RC_24_EXTERNAL_INITIAL, KOALABEAR_POSEIDON2_RC_24_INTERNAL, KoalaBear,
};
use p3_matrix::dense::RowMajorMatrix;
use p3_poseidon2_air::{Poseidon2Air, RoundConstants, generate_trace_rows, num_cols};
use p3_symmetric::Permutation;
use p3_uni_stark::SubAirBuilder;
use proofbox_backend_api::BackendField;
use proofbox_state::diff::{DIFF_HEADER_LEN, record};
use proofbox_state::encoding::{KEY_MESSAGE_LEN, LEAF_MESSAGE_LEN, VALUE_SLOTS};
use proofbox_state::{DEPTH, Diff, Path, StateKey, StateTree, StateValue, UpdateWitness};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

type F = KoalaBear;
/// A digest: 8 elements.
pub type Digest = [F; 8];

/// Trace rows per update.
pub const ROWS_PER_UPDATE: usize = 256;
/// log2 of [`ROWS_PER_UPDATE`].
pub const LOG_ROWS_PER_UPDATE: u8 = 8;
/// Public values of a state-transition proof (see [`ChunkStatement::public_values`]).
pub const NUM_PUBLIC_VALUES: usize = 52;
/// The default largest number of updates per proof of [`TransitionInput::build_chunks`]:
/// 2^18 trace rows, about 3.2 GiB peak on the CPU backend.
pub const DEFAULT_CHUNK_UPDATES: usize = 1024;
/// Rows of a segment before the first tree level.
const TREE_START: usize = 8;

const P16_COLS: usize = num_cols::<16, 3, 0, 4, 20>();
const P24_COLS: usize = num_cols::<24, 3, 0, 4, 23>();

type P16Air = Poseidon2Air<
    F,
    GenericPoseidon2LinearLayersKoalaBear,
    16,
    3,
    0,
    KOALABEAR_POSEIDON2_HALF_FULL_ROUNDS,
    KOALABEAR_POSEIDON2_PARTIAL_ROUNDS_16,
>;
type P24Air = Poseidon2Air<
    F,
    GenericPoseidon2LinearLayersKoalaBear,
    24,
    3,
    0,
    KOALABEAR_POSEIDON2_HALF_FULL_ROUNDS,
    KOALABEAR_POSEIDON2_PARTIAL_ROUNDS_24,
>;

/// Column offsets of the trace (for tests and tools that inspect traces).
pub mod col {
    use super::{P16_COLS, P24_COLS, VALUE_SLOTS};
    pub const P24: usize = 0;
    pub const OLD: usize = P24 + P24_COLS;
    pub const NEW: usize = OLD + P16_COLS;
    /// 0 for an account key, 1 for a storage key.
    pub const KIND: usize = NEW + P16_COLS;
    pub const ADDR: usize = KIND + 1;
    pub const SLOT: usize = ADDR + 10;
    pub const OLD_PRESENT: usize = SLOT + 16;
    pub const NEW_PRESENT: usize = OLD_PRESENT + 1;
    pub const OLD_V: usize = NEW_PRESENT + 1;
    pub const NEW_V: usize = OLD_V + VALUE_SLOTS;
    pub const KEY: usize = NEW_V + VALUE_SLOTS;
    pub const OLD_LEAF: usize = KEY + 8;
    pub const NEW_LEAF: usize = OLD_LEAF + 8;
    pub const ACTIVE: usize = NEW_LEAF + 8;
    pub const BIT: usize = ACTIVE + 1;
    pub const REM: usize = BIT + 1;
    pub const LOW: usize = REM + 1;
    pub const HIGH: usize = LOW + 1;
    pub const ROOT: usize = HIGH + 1;
    pub const DCAP: usize = ROOT + 8;
    pub const DOUT: usize = DCAP + 8;
    pub const WIDTH: usize = DOUT + 8;
    pub use super::{P16_OUT, P24_OUT};
}

/// Offset of a permutation's output (the post-state of its last full round) within
/// its column block.
const fn output_offset(width: usize, partial: usize) -> usize {
    // inputs, 4 beginning full rounds (post only: no S-box registers), the partial
    // rounds (one post-S-box column each), 3 ending full rounds, then the output.
    width + 4 * width + partial + 3 * width
}
/// Offset of the width-16 permutations' output within their blocks.
pub const P16_OUT: usize = output_offset(16, 20);
/// Offset of the width-24 permutation's output within its block.
pub const P24_OUT: usize = output_offset(24, 23);

/// Periodic columns.
mod per {
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

fn rc16() -> RoundConstants<F, 16, 4, 20> {
    RoundConstants::new(
        KOALABEAR_POSEIDON2_RC_16_EXTERNAL_INITIAL,
        KOALABEAR_POSEIDON2_RC_16_INTERNAL,
        KOALABEAR_POSEIDON2_RC_16_EXTERNAL_FINAL,
    )
}

fn rc24() -> RoundConstants<F, 24, 4, 23> {
    RoundConstants::new(
        KOALABEAR_POSEIDON2_RC_24_EXTERNAL_INITIAL,
        KOALABEAR_POSEIDON2_RC_24_INTERNAL,
        KOALABEAR_POSEIDON2_RC_24_EXTERNAL_FINAL,
    )
}

/// The sponge state after the diff's header block: the diff sponge's start.
fn header_state() -> [F; 24] {
    static STATE: OnceLock<[F; 24]> = OnceLock::new();
    *STATE.get_or_init(|| {
        let mut s = [F::ZERO; 24];
        s[0] = F::from_u32(5);
        debug_assert_eq!(DIFF_HEADER_LEN, 16);
        F::poseidon2_24().permute(s)
    })
}

/// Position of a tree row within its segment: `(element index j of K, bit index i)`.
fn tree_position(row: usize) -> Option<(usize, usize)> {
    (TREE_START..ROWS_PER_UPDATE).contains(&row).then(|| {
        let t = row - TREE_START;
        (7 - t / 31, t % 31)
    })
}

fn periodic_table() -> Vec<Vec<F>> {
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

/// The state-transition AIR.
#[derive(Clone)]
pub struct TransitionAir {
    p16: P16Air,
    p24: P24Air,
    periodic: Vec<Vec<F>>,
}

impl Default for TransitionAir {
    fn default() -> Self {
        Self::new()
    }
}

impl TransitionAir {
    pub fn new() -> Self {
        Self {
            p16: Poseidon2Air::new(rc16()),
            p24: Poseidon2Air::new(rc24()),
            periodic: periodic_table(),
        }
    }
}

impl BaseAir<F> for TransitionAir {
    fn width(&self) -> usize {
        col::WIDTH
    }

    fn num_public_values(&self) -> usize {
        NUM_PUBLIC_VALUES
    }

    fn max_constraint_degree(&self) -> Option<usize> {
        Some(3)
    }

    fn num_periodic_columns(&self) -> usize {
        per::COUNT
    }

    fn periodic_columns(&self) -> std::borrow::Cow<'_, [Vec<F>]> {
        std::borrow::Cow::Borrowed(&self.periodic)
    }
}

impl<AB: AirBuilder<F = F>> Air<AB> for TransitionAir {
    fn eval(&self, builder: &mut AB) {
        // The three permutations, on every row.
        {
            let mut sub =
                SubAirBuilder::<AB, P24Air, AB::Var>::new(builder, col::P24..col::P24 + P24_COLS);
            self.p24.eval(&mut sub);
        }
        for start in [col::OLD, col::NEW] {
            let mut sub =
                SubAirBuilder::<AB, P16Air, AB::Var>::new(builder, start..start + P16_COLS);
            self.p16.eval(&mut sub);
        }

        let main = builder.main();
        let local = main.current_slice();
        let next = main.next_slice();
        let periodic: Vec<AB::Expr> = builder
            .periodic_values()
            .iter()
            .map(|&v| v.into())
            .collect();
        let public: Vec<AB::Expr> = builder.public_values().iter().map(|&v| v.into()).collect();
        let l = |c: usize| -> AB::Expr { local[c].into() };
        let n = |c: usize| -> AB::Expr { next[c].into() };
        let p = |c: usize| periodic[c].clone();
        let one = || AB::Expr::ONE;

        let in24 = |i: usize| l(col::P24 + i);
        let out24 = |i: usize| l(col::P24 + P24_OUT + i);
        let kind = l(col::KIND);
        let bit = l(col::BIT);

        // Booleans.
        for c in [col::KIND, col::OLD_PRESENT, col::NEW_PRESENT, col::ACTIVE] {
            builder.assert_bool(l(c));
        }
        builder.when(p(per::TREE)).assert_bool(bit.clone());

        // The update's fields are constant within a segment.
        let constant = (col::KIND..col::BIT).chain(col::ROOT..col::DCAP);
        for c in constant {
            builder.when(one() - p(per::SEG_END)).assert_eq(n(c), l(c));
        }

        // Padding segments write the value they read.
        {
            let mut pad = builder.when(one() - l(col::ACTIVE));
            pad.assert_eq(l(col::OLD_PRESENT), l(col::NEW_PRESENT));
            for i in 0..VALUE_SLOTS {
                pad.assert_eq(l(col::OLD_V + i), l(col::NEW_V + i));
            }
        }

        // The width-24 schedule. Key message: [1 + kind, address, slot, 0 x 5].
        assert_key_blocks(builder, p(per::ROW), p(per::ROW + 1), local);
        {
            let mut b = builder.when(p(per::ROW + 1));
            for i in 11..16 {
                b.assert_zero(in24(i));
            }
            for i in 0..8 {
                b.assert_eq(l(col::KEY + i), out24(i));
            }
        }
        // Leaf messages: [3 + kind, K, value slots (36), 0 x 3], old at rows 2-4, new
        // at rows 5-7.
        for (first, values, leaf) in [
            (2, col::OLD_V, col::OLD_LEAF),
            (5, col::NEW_V, col::NEW_LEAF),
        ] {
            {
                let mut b = builder.when(p(per::ROW + first));
                b.assert_eq(in24(0), kind.clone() + AB::Expr::from_u32(3));
                for i in 0..8 {
                    b.assert_eq(in24(1 + i), l(col::KEY + i));
                }
                for i in 0..7 {
                    b.assert_eq(in24(9 + i), l(values + i));
                }
            }
            {
                let mut b = builder.when(p(per::ROW + first + 1));
                for i in 0..16 {
                    b.assert_eq(in24(i), l(values + 7 + i));
                }
            }
            {
                let mut b = builder.when(p(per::ROW + first + 2));
                for i in 0..13 {
                    b.assert_eq(in24(i), l(values + 23 + i));
                }
                for i in 13..16 {
                    b.assert_zero(in24(i));
                }
                for i in 0..8 {
                    b.assert_eq(l(leaf + i), out24(i));
                }
            }
        }
        // The diff record: [1 + kind, address, slot, present, new value slots], rows
        // 8-11, continuing the diff sponge.
        assert_key_blocks(builder, p(per::ROW + 8), p(per::ROW + 9), local);
        {
            let mut b = builder.when(p(per::ROW + 8));
            for i in 0..8 {
                b.assert_eq(in24(16 + i), l(col::DCAP + i));
            }
        }
        {
            let mut b = builder.when(p(per::ROW + 9));
            b.assert_eq(in24(11), l(col::NEW_PRESENT));
            for i in 0..4 {
                b.assert_eq(in24(12 + i), l(col::NEW_V + i));
            }
        }
        for (row, from) in [(10, 4), (11, 20)] {
            let mut b = builder.when(p(per::ROW + row));
            for i in 0..16 {
                b.assert_eq(in24(i), l(col::NEW_V + from + i));
            }
        }
        // Sponge capacities: fresh sponges start at zero, blocks of one message chain.
        {
            let mut b = builder.when(p(per::FRESH));
            for i in 16..24 {
                b.assert_zero(in24(i));
            }
        }
        {
            let mut b = builder.when(p(per::CHAIN));
            for i in 16..24 {
                b.assert_eq(n(col::P24 + i), out24(i));
            }
        }
        // The diff sponge's carried state: updated after row 11 of an active segment,
        // kept everywhere else.
        {
            let active = l(col::ACTIVE);
            let mut b = builder.when(p(per::ROW + 11));
            for i in 0..8 {
                b.assert_eq(
                    n(col::DCAP + i),
                    l(col::DCAP + i) + active.clone() * (out24(16 + i) - l(col::DCAP + i)),
                );
                b.assert_eq(
                    n(col::DOUT + i),
                    l(col::DOUT + i) + active.clone() * (out24(i) - l(col::DOUT + i)),
                );
            }
        }
        {
            let mut b = builder.when(one() - p(per::ROW + 11) - p(per::SEG_END));
            for i in 0..8 {
                b.assert_eq(n(col::DCAP + i), l(col::DCAP + i));
                b.assert_eq(n(col::DOUT + i), l(col::DOUT + i));
            }
        }
        {
            // Across a segment boundary the diff sponge is kept too.
            let mut b = builder.when(p(per::SEG_END));
            let mut t = b.when_transition();
            for i in 0..8 {
                t.assert_eq(n(col::DCAP + i), l(col::DCAP + i));
                t.assert_eq(n(col::DOUT + i), l(col::DOUT + i));
            }
        }

        // The two paths. At a tree row, the node (the previous level's output, or the
        // leaf at the first tree row) sits left for bit 0 and right for bit 1; the
        // other half is the sibling, shared by both paths.
        let node = |base: usize, row: &dyn Fn(usize) -> AB::Expr| {
            let left = row(base);
            let right = row(base + 8);
            let b = row(col::BIT);
            left.clone() + b * (right - left)
        };
        {
            let mut b = builder.when(p(per::ROW + TREE_START));
            for i in 0..8 {
                b.assert_eq(
                    node(col::OLD + i, &l),
                    l(col::OLD_PRESENT) * l(col::OLD_LEAF + i),
                );
                b.assert_eq(
                    node(col::NEW + i, &l),
                    l(col::NEW_PRESENT) * l(col::NEW_LEAF + i),
                );
            }
        }
        {
            let mut b = builder.when(p(per::TREE_NEXT));
            for i in 0..8 {
                b.assert_eq(node(col::OLD + i, &n), l(col::OLD + P16_OUT + i));
                b.assert_eq(node(col::NEW + i, &n), l(col::NEW + P16_OUT + i));
            }
        }
        {
            let mut b = builder.when(p(per::TREE));
            for i in 0..8 {
                let left = l(col::NEW + i) - l(col::OLD + i);
                let right = l(col::NEW + 8 + i) - l(col::OLD + 8 + i);
                b.assert_zero(bit.clone() * left + (one() - bit.clone()) * right);
            }
        }
        // Roots: the old path reaches the segment's root; the new path's root is the
        // next segment's, and the last one is the post-state root.
        {
            let mut b = builder.when(p(per::SEG_END));
            for i in 0..8 {
                b.assert_eq(l(col::OLD + P16_OUT + i), l(col::ROOT + i));
            }
            let mut t = b.when_transition();
            for i in 0..8 {
                t.assert_eq(n(col::ROOT + i), l(col::NEW + P16_OUT + i));
            }
        }

        // Path bits: K[j] = sum of bits * 2^i over its 31 rows, and below p.
        for j in 0..8 {
            let mut b = builder.when(p(per::ELEM_START + j));
            b.assert_eq(l(col::REM), l(col::KEY + j));
            b.assert_eq(l(col::LOW), bit.clone());
        }
        builder
            .when(p(per::IN_ELEM))
            .assert_eq(l(col::REM), bit.clone() + n(col::REM) * AB::Expr::TWO);
        {
            let mut b = builder.when(p(per::ELEM_END));
            b.assert_eq(l(col::REM), bit.clone());
            // Bits 24..=30 all one and any of bits 0..=23 set: at least p.
            b.assert_zero(l(col::LOW) * l(col::HIGH));
        }
        builder.when(p(per::LOW_OR)).assert_eq(
            n(col::LOW),
            l(col::LOW) + n(col::BIT) - l(col::LOW) * n(col::BIT),
        );
        builder
            .when(p(per::LOW_HOLD))
            .assert_eq(n(col::LOW), l(col::LOW));
        builder
            .when(p(per::HIGH_START))
            .assert_eq(l(col::HIGH), bit.clone());
        builder
            .when(p(per::HIGH_AND))
            .assert_eq(n(col::HIGH), l(col::HIGH) * n(col::BIT));

        // Boundaries: the pre-state root and the diff sponge's start (public, so that
        // proofs chain; the verifier of a whole diff checks it is the header state) on
        // the first row, the post-state root and the diff sponge's end on the last.
        {
            let mut b = builder.when_first_row();
            for i in 0..8 {
                b.assert_eq(l(col::ROOT + i), public[pv::PRE_ROOT + i].clone());
                b.assert_eq(l(col::DCAP + i), public[pv::SPONGE_IN_CAP + i].clone());
                b.assert_eq(l(col::DOUT + i), public[pv::SPONGE_IN_OUT + i].clone());
            }
        }
        {
            let mut b = builder.when_last_row();
            for i in 0..8 {
                b.assert_eq(l(col::NEW + P16_OUT + i), public[pv::POST_ROOT + i].clone());
                b.assert_eq(l(col::DOUT + i), public[pv::DIFF_COMMITMENT + i].clone());
                b.assert_eq(l(col::DCAP + i), public[pv::SPONGE_OUT_CAP + i].clone());
            }
        }
    }
}

/// The key's fields as a key message's and a diff record's first two blocks share
/// them: `[1 + kind, address, slot[0..5]]` in the row selected by `first`, and
/// `slot[5..16]` in the first 11 elements of the row selected by `second`.
fn assert_key_blocks<AB: AirBuilder>(
    builder: &mut AB,
    first: AB::Expr,
    second: AB::Expr,
    local: &[AB::Var],
) {
    let l = |c: usize| -> AB::Expr { local[c].into() };
    let mut b = builder.when(first);
    b.assert_eq(l(col::P24), l(col::KIND) + AB::Expr::ONE);
    for i in 0..10 {
        b.assert_eq(l(col::P24 + 1 + i), l(col::ADDR + i));
    }
    for i in 0..5 {
        b.assert_eq(l(col::P24 + 11 + i), l(col::SLOT + i));
    }
    let mut b = builder.when(second);
    for i in 0..11 {
        b.assert_eq(l(col::P24 + i), l(col::SLOT + 5 + i));
    }
}

/// Offsets of the public values (see [`ChunkStatement::public_values`]).
pub mod pv {
    pub const PRE_ROOT: usize = 0;
    pub const POST_ROOT: usize = 8;
    /// The diff sponge's output after this proof's segments: for a whole diff (or a
    /// bundle's last proof), the diff commitment.
    pub const DIFF_COMMITMENT: usize = 16;
    /// Four 16-bit limbs, least significant first.
    pub const BLOCK_NUMBER: usize = 24;
    /// The diff sponge's capacity at the first row.
    pub const SPONGE_IN_CAP: usize = 28;
    /// The diff sponge's output at the first row.
    pub const SPONGE_IN_OUT: usize = 36;
    /// The diff sponge's capacity at the last row.
    pub const SPONGE_OUT_CAP: usize = 44;
}

/// What a state transition states about a whole diff: what a verifier holding the
/// diff (or its commitment) checks, whether it was proved by one proof or a bundle of
/// chained proofs ([`TransitionProof`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransitionStatement {
    pub pre_root: Digest,
    pub post_root: Digest,
    pub diff_commitment: Digest,
    pub block_number: u64,
}

/// The diff sponge's state between two absorbed blocks, as the proofs carry it: the
/// capacity (state elements 16..24) and the output (elements 0..8). The next block
/// overwrites elements 0..16, so the capacity determines everything the sponge does
/// next, and the output is the commitment if no block follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpongeState {
    pub capacity: Digest,
    pub output: Digest,
}

impl SpongeState {
    /// The state after the diff's header block `[5, 0 x 15]`: where a diff starts.
    pub fn header() -> Self {
        Self::from_state(&header_state())
    }

    fn from_state(s: &[F; 24]) -> Self {
        Self {
            capacity: core::array::from_fn(|i| s[16 + i]),
            output: core::array::from_fn(|i| s[i]),
        }
    }

    /// A full width-24 state with this capacity and output (elements 8..16 are zero:
    /// the next block overwrites them).
    fn to_state(self) -> [F; 24] {
        let mut s = [F::ZERO; 24];
        s[..8].copy_from_slice(&self.output);
        s[16..].copy_from_slice(&self.capacity);
        s
    }

    /// The state after absorbing the records of `updates`, in the order given, from
    /// this one: from [`SpongeState::header`] with a diff's updates in canonical order
    /// (`diff.updates()`), the output is `diff.commitment()`.
    pub fn absorb<'a>(self, updates: impl IntoIterator<Item = &'a proofbox_state::Update>) -> Self {
        let mut s = self.to_state();
        for u in updates {
            for block in record(u).chunks(16) {
                absorb(&mut s, block);
            }
        }
        Self::from_state(&s)
    }
}

/// What one state-transition proof states (its 52 public values): applying its
/// updates to the tree with root `pre_root` gives `post_root`, and absorbing their
/// records takes the diff sponge from `sponge_in` to `sponge_out`, at `block_number`.
/// A proof of a whole diff starts at [`SpongeState::header`] and `sponge_out.output`
/// is the diff commitment; the proofs of a bundle chain ([`verify_transition_chunks`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkStatement {
    pub pre_root: Digest,
    pub post_root: Digest,
    pub block_number: u64,
    pub sponge_in: SpongeState,
    pub sponge_out: SpongeState,
}

impl ChunkStatement {
    /// The 52 public values: `pre_root` (8), `post_root` (8), `sponge_out.output` (8:
    /// the diff commitment of a whole diff), the block number as four 16-bit limbs
    /// (least significant first), `sponge_in.capacity` (8), `sponge_in.output` (8),
    /// `sponge_out.capacity` (8). Offsets: [`pv`].
    pub fn public_values(&self) -> Vec<F> {
        let mut v = Vec::with_capacity(NUM_PUBLIC_VALUES);
        v.extend(self.pre_root);
        v.extend(self.post_root);
        v.extend(self.sponge_out.output);
        v.extend((0..4).map(|i| F::from_u32(((self.block_number >> (16 * i)) & 0xffff) as u32)));
        v.extend(self.sponge_in.capacity);
        v.extend(self.sponge_in.output);
        v.extend(self.sponge_out.capacity);
        debug_assert_eq!(v.len(), NUM_PUBLIC_VALUES);
        v
    }

    /// The inverse of [`ChunkStatement::public_values`], for values read from an
    /// artifact; `None` for a wrong count, a value not below the modulus or a
    /// block-number limb above 16 bits.
    pub fn from_public_values(v: &[u32]) -> Option<Self> {
        if v.len() != NUM_PUBLIC_VALUES || v.iter().any(|&x| x >= F::ORDER_U32) {
            return None;
        }
        let d = |at: usize| -> Digest { core::array::from_fn(|i| F::from_u32(v[at + i])) };
        let mut block_number = 0u64;
        for i in 0..4 {
            let limb = v[pv::BLOCK_NUMBER + i];
            if limb > 0xffff {
                return None;
            }
            block_number |= (limb as u64) << (16 * i);
        }
        Some(Self {
            pre_root: d(pv::PRE_ROOT),
            post_root: d(pv::POST_ROOT),
            block_number,
            sponge_in: SpongeState {
                capacity: d(pv::SPONGE_IN_CAP),
                output: d(pv::SPONGE_IN_OUT),
            },
            sponge_out: SpongeState {
                capacity: d(pv::SPONGE_OUT_CAP),
                output: d(pv::DIFF_COMMITMENT),
            },
        })
    }

    /// Whether the diff sponge starts at the header state, as a whole diff's (and a
    /// bundle's first proof's) does.
    pub fn starts_a_diff(&self) -> bool {
        self.sponge_in == SpongeState::header()
    }

    /// Whether `next` continues this one: it starts at this one's post-state root and
    /// diff sponge state, at the same block number.
    pub fn continued_by(&self, next: &ChunkStatement) -> bool {
        next.pre_root == self.post_root
            && next.sponge_in == self.sponge_out
            && next.block_number == self.block_number
    }

    /// The statement of a diff this proof (or chain ending in it) ends: roots, the
    /// sponge's output as the diff commitment, block number. Only meaningful with a
    /// start at the header state ([`ChunkStatement::starts_a_diff`]).
    pub fn ends(&self, pre_root: Digest) -> TransitionStatement {
        TransitionStatement {
            pre_root,
            post_root: self.post_root,
            diff_commitment: self.sponge_out.output,
            block_number: self.block_number,
        }
    }
}

/// Why a sequence of state-transition chunks (inputs or proofs) does not state a
/// whole diff.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("no chunks")]
    Empty,
    #[error("chunk 0 does not start the diff sponge at the header state")]
    NotFromHeader,
    #[error(
        "chunk {0} does not continue the chunk before it (pre-state root, diff sponge or block number)"
    )]
    Broken(usize),
    #[error("chunk {index}: {reason}")]
    Chunk { index: usize, reason: String },
}

/// Checks that `statements` chain into a whole diff's transition and returns its
/// statement: the first starts at the header state, each continues the previous one
/// ([`ChunkStatement::continued_by`]); the result has the first's `pre_root` and the
/// last's `post_root`, sponge output (the diff commitment) and block number.
pub fn chain(statements: &[ChunkStatement]) -> Result<TransitionStatement, ChainError> {
    let first = statements.first().ok_or(ChainError::Empty)?;
    if !first.starts_a_diff() {
        return Err(ChainError::NotFromHeader);
    }
    for (i, w) in statements.windows(2).enumerate() {
        if !w[0].continued_by(&w[1]) {
            return Err(ChainError::Broken(i + 1));
        }
    }
    let last = statements.last().expect("not empty");
    Ok(last.ends(first.pre_root))
}

/// Everything the prover needs: the pre-state root, the diff, one witness per update
/// (the tree as it stands when that update is applied), the padding witness (a key's
/// value and path in the post-state tree) and where the diff sponge starts (the header
/// state for a whole diff, the previous chunk's end for a later chunk of one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransitionInput {
    pub pre_root: Digest,
    pub diff: Diff,
    pub witnesses: Vec<UpdateWitness>,
    pub padding: UpdateWitness,
    pub block_number: u64,
    pub sponge_start: SpongeState,
}

/// The key whose current value padding segments write back.
pub fn padding_key() -> StateKey {
    StateKey::Account(Default::default())
}

impl TransitionInput {
    /// Applies `diff` to `tree`, recording the witnesses: the node that proves does
    /// this, and `tree` is the post-state afterwards. One proof of the whole diff.
    pub fn build(tree: &mut StateTree, diff: Diff, block_number: u64) -> Self {
        Self::build_from(tree, diff, block_number, SpongeState::header())
    }

    fn build_from(
        tree: &mut StateTree,
        diff: Diff,
        block_number: u64,
        sponge_start: SpongeState,
    ) -> Self {
        let pre_root = tree.root();
        let witnesses = tree.apply_with_witnesses(&diff, proofbox_state::Parallelism::Parallel);
        let (value, proof) = tree.prove(&padding_key());
        Self {
            pre_root,
            diff,
            witnesses,
            padding: UpdateWitness {
                key: padding_key(),
                old_value: value,
                new_value: value,
                proof,
            },
            block_number,
            sponge_start,
        }
    }

    /// Applies `diff` to `tree` in chunks of at most `max_updates` updates (a power of
    /// two, so that only the last chunk has padding segments), in canonical order,
    /// and returns one input per chunk, each to be proved on its own
    /// ([`crate::Prover::prove_transition_chunks`]): chunk `i` holds updates
    /// `i * max_updates ..`, starts at the previous chunk's post-state root and diff
    /// sponge state, and has its own padding witness (in its post-state tree). An
    /// empty diff gives one chunk. `tree` is the post-state afterwards.
    ///
    /// # Panics
    ///
    /// If `max_updates` is not a power of two.
    pub fn build_chunks(
        tree: &mut StateTree,
        diff: Diff,
        block_number: u64,
        max_updates: usize,
    ) -> Vec<Self> {
        assert!(
            max_updates.is_power_of_two(),
            "updates per chunk must be a power of two, not {max_updates}"
        );
        if diff.len() <= max_updates {
            return vec![Self::build(tree, diff, block_number)];
        }
        let updates: Vec<proofbox_state::Update> = diff.into();
        let mut sponge = SpongeState::header();
        let mut chunks = Vec::with_capacity(updates.len().div_ceil(max_updates));
        for part in updates.chunks(max_updates) {
            let part = Diff::new(part.iter().copied())
                .expect("a slice of a canonical diff is a canonical diff");
            let next = sponge.absorb(part.updates());
            chunks.push(Self::build_from(tree, part, block_number, sponge));
            sponge = next;
        }
        chunks
    }

    /// Checks the witnesses natively ([`proofbox_state::check_transition`], the padding
    /// witness against the post-state root) and returns what this input's proof
    /// states.
    pub fn chunk_statement(&self) -> Result<ChunkStatement, proofbox_state::ProofError> {
        let post_root =
            proofbox_state::check_transition(&self.pre_root, &self.diff, &self.witnesses)?;
        if self.padding.old_value != self.padding.new_value {
            return Err(proofbox_state::ProofError::WitnessMismatch {
                index: self.witnesses.len(),
            });
        }
        let padded = self.padding.apply(&post_root).map_err(|_| {
            proofbox_state::ProofError::WitnessRoot {
                index: self.witnesses.len(),
            }
        })?;
        debug_assert_eq!(padded, post_root);
        Ok(ChunkStatement {
            pre_root: self.pre_root,
            post_root,
            block_number: self.block_number,
            sponge_in: self.sponge_start,
            sponge_out: self.sponge_start.absorb(self.diff.updates()),
        })
    }

    /// [`TransitionInput::chunk_statement`] as the statement of a whole diff: the diff
    /// commitment is the sponge's output, which is `diff.commitment()` when the input
    /// starts at the header state (one proof of a whole diff, or a bundle's first
    /// chunk); for a later chunk it is a commitment to nothing a verifier holds (use
    /// [`statement_of_chunks`] for a bundle).
    pub fn statement(&self) -> Result<TransitionStatement, proofbox_state::ProofError> {
        let c = self.chunk_statement()?;
        Ok(c.ends(c.pre_root))
    }

    /// Segments of the trace: a power of two, at least one.
    pub fn segments(&self) -> usize {
        self.diff.len().max(1).next_power_of_two()
    }

    /// log2 of the trace height.
    pub fn log_rows(&self) -> u8 {
        LOG_ROWS_PER_UPDATE + self.segments().trailing_zeros() as u8
    }

    /// The execution trace, with `extra_capacity_bits` of spare capacity for the LDE.
    /// The witnesses are not checked here (see [`TransitionInput::statement`]): a
    /// wrong witness gives a trace that violates a constraint.
    pub fn trace(&self, extra_capacity_bits: usize) -> RowMajorMatrix<F> {
        self.trace_with(extra_capacity_bits, None)
    }

    /// The trace with segment `segment` walking `path` instead of its key's path: for
    /// the test that a non-canonical decomposition of a key digest is rejected.
    #[doc(hidden)]
    pub fn trace_with_path(&self, segment: usize, path: Path) -> RowMajorMatrix<F> {
        self.trace_with(0, Some((segment, path)))
    }

    fn trace_with(
        &self,
        extra_capacity_bits: usize,
        path_override: Option<(usize, Path)>,
    ) -> RowMajorMatrix<F> {
        let segments = self.segments();
        let height = segments * ROWS_PER_UPDATE;
        let updates: Vec<(&UpdateWitness, bool)> = (0..segments)
            .map(|s| match self.witnesses.get(s) {
                Some(w) => (w, true),
                None => (&self.padding, false),
            })
            .collect();
        let segs: Vec<Segment> = updates
            .par_iter()
            .enumerate()
            .map(|(k, (w, active))| {
                let path = path_override.filter(|(s, _)| *s == k).map(|(_, p)| p);
                Segment::new(w, *active, path)
            })
            .collect();

        // Roots and diff sponge carried from segment to segment.
        let mut root = self.pre_root;
        let mut sponge = self.sponge_start.to_state();
        let mut carried = Vec::with_capacity(segments);
        for s in &segs {
            let before = (root, sponge);
            if s.active {
                sponge = s.diff_state_after(&sponge);
            }
            root = s.new_root;
            carried.push((before, sponge));
        }

        // Inputs of the permutations of every row.
        let mut in24 = vec![[F::ZERO; 24]; height];
        let mut in_old = vec![[F::ZERO; 16]; height];
        let mut in_new = vec![[F::ZERO; 16]; height];
        for (k, s) in segs.iter().enumerate() {
            let base = k * ROWS_PER_UPDATE;
            let (_, dstate) = carried[k].0;
            for (r, input) in s.sponge_inputs(&dstate).into_iter().enumerate() {
                in24[base + r] = input;
            }
            in_old[base + TREE_START..base + ROWS_PER_UPDATE].copy_from_slice(&s.old_inputs);
            in_new[base + TREE_START..base + ROWS_PER_UPDATE].copy_from_slice(&s.new_inputs);
        }
        let m24 = generate_trace_rows::<F, GenericPoseidon2LinearLayersKoalaBear, 24, 3, 0, 4, 23>(
            in24,
            &rc24(),
            0,
        );
        let m_old = generate_trace_rows::<F, GenericPoseidon2LinearLayersKoalaBear, 16, 3, 0, 4, 20>(
            in_old,
            &rc16(),
            0,
        );
        let m_new = generate_trace_rows::<F, GenericPoseidon2LinearLayersKoalaBear, 16, 3, 0, 4, 20>(
            in_new,
            &rc16(),
            0,
        );

        let mut values = Vec::with_capacity((height * col::WIDTH) << extra_capacity_bits);
        values.resize(height * col::WIDTH, F::ZERO);
        values
            .par_chunks_mut(col::WIDTH * ROWS_PER_UPDATE)
            .enumerate()
            .for_each(|(k, seg_rows)| {
                let s = &segs[k];
                let ((root_before, dstate_before), dstate_after) = carried[k];
                for (r, row) in seg_rows.chunks_mut(col::WIDTH).enumerate() {
                    let g = k * ROWS_PER_UPDATE + r;
                    row[col::P24..col::P24 + P24_COLS]
                        .copy_from_slice(&m24.values[g * P24_COLS..(g + 1) * P24_COLS]);
                    row[col::OLD..col::OLD + P16_COLS]
                        .copy_from_slice(&m_old.values[g * P16_COLS..(g + 1) * P16_COLS]);
                    row[col::NEW..col::NEW + P16_COLS]
                        .copy_from_slice(&m_new.values[g * P16_COLS..(g + 1) * P16_COLS]);
                    s.fill_fields(row);
                    row[col::ROOT..col::ROOT + 8].copy_from_slice(&root_before);
                    let d = if r <= 11 { dstate_before } else { dstate_after };
                    row[col::DCAP..col::DCAP + 8].copy_from_slice(&d[16..24]);
                    row[col::DOUT..col::DOUT + 8].copy_from_slice(&d[..8]);
                    s.fill_path(row, r);
                }
            });
        RowMajorMatrix::new(values, col::WIDTH)
    }
}

/// One segment's values, computed natively.
struct Segment {
    active: bool,
    fields: [F; 27],
    key: Digest,
    path: Path,
    old_present: bool,
    new_present: bool,
    old_v: [F; VALUE_SLOTS],
    new_v: [F; VALUE_SLOTS],
    /// Hashes of the leaf messages of `old_v` and `new_v` (also when absent: the
    /// circuit hashes the zero slots and multiplies by the presence flag).
    old_leaf: Digest,
    new_leaf: Digest,
    record: [F; 64],
    old_inputs: Vec<[F; 16]>,
    new_inputs: Vec<[F; 16]>,
    new_root: Digest,
}

/// The leaf message of value slots `v` under the key with tag `key_tag` and digest
/// `key`: `[key tag + 2 (account leaf 3, storage leaf 4), K, v, 0 x 3]`, the state
/// crate's `leaf_message` written for slots that may be the zeros of an absent value.
fn leaf_message(key_tag: F, key: &Digest, v: &[F; VALUE_SLOTS]) -> Vec<F> {
    let mut m = Vec::with_capacity(LEAF_MESSAGE_LEN);
    m.push(key_tag + F::TWO);
    m.extend_from_slice(key);
    m.extend_from_slice(v);
    m.resize(LEAF_MESSAGE_LEN, F::ZERO);
    m
}

fn slots(v: &Option<StateValue>) -> [F; VALUE_SLOTS] {
    v.as_ref()
        .map(|v| v.to_slots())
        .unwrap_or([F::ZERO; VALUE_SLOTS])
}

/// The messages' blocks are absorbed by overwriting the rate of a width-24 state.
fn absorb(state: &mut [F; 24], block: &[F]) {
    state[..16].copy_from_slice(block);
    *state = F::poseidon2_24().permute(*state);
}

impl Segment {
    fn new(w: &UpdateWitness, active: bool, path: Option<Path>) -> Self {
        let fields = w.key.fields();
        let key = w.key.digest();
        let path = path.unwrap_or_else(|| Path::from_digest(&key));
        let old_v = slots(&w.old_value);
        let new_v = slots(&w.new_value);
        let old_leaf = proofbox_state::hash::hash(&leaf_message(fields[0], &key, &old_v));
        let new_leaf = proofbox_state::hash::hash(&leaf_message(fields[0], &key, &new_v));
        let in_tree = |present: bool, leaf: Digest| if present { leaf } else { [F::ZERO; 8] };
        let perm = F::poseidon2_16();
        let walk = |leaf: Digest| {
            let mut node = leaf;
            let mut inputs = Vec::with_capacity(DEPTH);
            for level in (0..DEPTH).rev() {
                let sibling = w
                    .proof
                    .siblings
                    .get(level)
                    .copied()
                    .flatten()
                    .unwrap_or_else(|| proofbox_state::hash::default_digest(level + 1));
                let mut input = [F::ZERO; 16];
                if path.bit(level) {
                    input[..8].copy_from_slice(&sibling);
                    input[8..].copy_from_slice(&node);
                } else {
                    input[..8].copy_from_slice(&node);
                    input[8..].copy_from_slice(&sibling);
                }
                inputs.push(input);
                let out = perm.permute(input);
                node.copy_from_slice(&out[..8]);
            }
            (inputs, node)
        };
        let (old_inputs, _) = walk(in_tree(w.old_value.is_some(), old_leaf));
        let (new_inputs, new_root) = walk(in_tree(w.new_value.is_some(), new_leaf));
        let update = proofbox_state::Update {
            key: w.key,
            value: w.new_value,
        };
        Self {
            active,
            fields,
            key,
            path,
            old_present: w.old_value.is_some(),
            new_present: w.new_value.is_some(),
            old_v,
            new_v,
            old_leaf,
            new_leaf,
            record: record(&update),
            old_inputs,
            new_inputs,
            new_root,
        }
    }

    fn kind(&self) -> F {
        self.fields[0] - F::ONE
    }

    /// The width-24 inputs of rows 0..12 (the diff record continues `dstate`).
    fn sponge_inputs(&self, dstate: &[F; 24]) -> Vec<[F; 24]> {
        let mut inputs = Vec::with_capacity(12);
        let mut run = |message: &[F], start: [F; 24]| {
            let mut state = start;
            for block in message.chunks(16) {
                state[..16].copy_from_slice(block);
                inputs.push(state);
                state = F::poseidon2_24().permute(state);
            }
        };
        let mut key_message = self.fields.to_vec();
        key_message.resize(KEY_MESSAGE_LEN, F::ZERO);
        run(&key_message, [F::ZERO; 24]);
        for v in [&self.old_v, &self.new_v] {
            run(&leaf_message(self.fields[0], &self.key, v), [F::ZERO; 24]);
        }
        run(&self.record, *dstate);
        inputs
    }

    fn diff_state_after(&self, dstate: &[F; 24]) -> [F; 24] {
        let mut s = *dstate;
        for block in self.record.chunks(16) {
            absorb(&mut s, block);
        }
        s
    }

    fn fill_fields(&self, row: &mut [F]) {
        row[col::KIND] = self.kind();
        row[col::ADDR..col::ADDR + 26].copy_from_slice(&self.fields[1..]);
        row[col::OLD_PRESENT] = F::from_bool(self.old_present);
        row[col::NEW_PRESENT] = F::from_bool(self.new_present);
        row[col::OLD_V..col::OLD_V + VALUE_SLOTS].copy_from_slice(&self.old_v);
        row[col::NEW_V..col::NEW_V + VALUE_SLOTS].copy_from_slice(&self.new_v);
        row[col::KEY..col::KEY + 8].copy_from_slice(&self.key);
        row[col::OLD_LEAF..col::OLD_LEAF + 8].copy_from_slice(&self.old_leaf);
        row[col::NEW_LEAF..col::NEW_LEAF + 8].copy_from_slice(&self.new_leaf);
        row[col::ACTIVE] = F::from_bool(self.active);
    }

    fn fill_path(&self, row: &mut [F], r: usize) {
        let Some((j, i)) = tree_position(r) else {
            return;
        };
        let word = self.path.0[j];
        let bit = (word >> i) & 1;
        row[col::BIT] = F::from_u32(bit);
        row[col::REM] = F::from_u32(word >> i);
        let low_bits = i.min(23) + 1;
        row[col::LOW] = F::from_bool(word & ((1u32 << low_bits) - 1) != 0);
        if i >= 24 {
            let mask = ((1u32 << (i + 1)) - 1) & !((1u32 << 24) - 1);
            row[col::HIGH] = F::from_bool(word & mask == mask);
        }
    }
}

/// The workload of a state-transition request by size: a seeded tree of `updates`
/// keys (at least 16) and a seeded diff of `updates` updates to it
/// ([`proofbox_state::workload::random_transition`]), block number 0.
pub fn seeded_input(seed: u64, updates: usize) -> TransitionInput {
    let (mut tree, diff) =
        proofbox_state::workload::random_transition(seed, updates.max(16), updates);
    TransitionInput::build(&mut tree, diff, 0)
}

/// Checks every chunk's witnesses natively and that the chunks chain into one diff's
/// transition ([`chain`]); returns each chunk's statement.
pub fn check_chunks(chunks: &[TransitionInput]) -> Result<Vec<ChunkStatement>, ChainError> {
    let statements = chunks
        .iter()
        .enumerate()
        .map(|(index, c)| {
            c.chunk_statement().map_err(|e| ChainError::Chunk {
                index,
                reason: e.to_string(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    chain(&statements)?;
    Ok(statements)
}

/// [`check_chunks`], returning the statement of the whole diff the chunks prove.
pub fn statement_of_chunks(chunks: &[TransitionInput]) -> Result<TransitionStatement, ChainError> {
    chain(&check_chunks(chunks)?)
}

/// The proof of a state transition as a sequence of chained proofs ("chunks"), each an
/// ordinary state-transition [`crate::ProofArtifact`]: what
/// [`crate::Prover::prove_transition_chunks`] returns and [`verify_transition_chunks`]
/// checks. A single proof of a whole diff is a bundle of one chunk.
///
/// Bytes ([`TransitionProof::to_bytes`]): [`BUNDLE_MAGIC`], the format version (u16,
/// little-endian), then the postcard encoding of the chunks (a length, then each
/// artifact's postcard body, without its own magic and version).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransitionProof {
    pub chunks: Vec<crate::ProofArtifact>,
}

/// The first eight bytes of an encoded [`TransitionProof`].
pub const BUNDLE_MAGIC: [u8; 8] = *b"PBOXTRB\0";

impl TransitionProof {
    /// [`BUNDLE_MAGIC`], [`crate::FORMAT_VERSION`] (u16, little-endian), then the
    /// postcard body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&BUNDLE_MAGIC);
        out.extend_from_slice(&crate::FORMAT_VERSION.to_le_bytes());
        postcard::to_io(self, &mut out).expect("writing to a Vec cannot fail");
        out
    }

    /// Parses a bundle, rejecting anything that is not exactly one well-formed bundle
    /// of a supported version (at most [`crate::artifact::MAX_ARTIFACT_BYTES`] bytes).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, crate::ArtifactError> {
        use crate::ArtifactError;
        let max = crate::artifact::MAX_ARTIFACT_BYTES;
        if bytes.len() > max {
            return Err(ArtifactError::TooLarge {
                len: bytes.len(),
                max,
            });
        }
        if bytes.len() < BUNDLE_MAGIC.len() + 2 || bytes[..BUNDLE_MAGIC.len()] != BUNDLE_MAGIC {
            return Err(ArtifactError::NotAProof);
        }
        let version = u16::from_le_bytes([bytes[8], bytes[9]]);
        if version != crate::FORMAT_VERSION {
            return Err(ArtifactError::UnsupportedVersion {
                found: version,
                supported: crate::FORMAT_VERSION,
            });
        }
        let (bundle, rest) = postcard::take_from_bytes::<Self>(&bytes[10..])
            .map_err(|e| ArtifactError::Malformed(e.to_string()))?;
        if !rest.is_empty() {
            return Err(ArtifactError::Malformed(format!(
                "{} trailing bytes",
                rest.len()
            )));
        }
        Ok(bundle)
    }

    /// The proofs' sizes in their own framing ([`crate::ProofArtifact::to_bytes`]),
    /// summed.
    pub fn proof_bytes(&self) -> usize {
        self.chunks.iter().map(|a| a.to_bytes().len()).sum()
    }
}

/// Verifies a bundle of chained state-transition proofs and checks that together they
/// state `expected`: there is at least one chunk; every chunk is a state-transition
/// artifact; chunk 0 starts at `expected.pre_root` with the diff sponge at the header
/// state; each next chunk starts at the previous one's post-state root and diff
/// sponge state (capacity and output) at the same block number; the last chunk ends
/// at `expected.post_root` with the sponge's output equal to `expected.diff_commitment`
/// and its block number is `expected.block_number`; and every proof is valid (stock
/// Plonky3 verifier). The public values are checked before any proof.
pub fn verify_transition_chunks(
    bundle: &TransitionProof,
    expected: &TransitionStatement,
) -> Result<(), crate::VerifyError> {
    verify_chain(&bundle.chunks, expected)
}

fn verify_chain(
    chunks: &[crate::ProofArtifact],
    expected: &TransitionStatement,
) -> Result<(), crate::VerifyError> {
    let statements = chunks
        .iter()
        .map(|a| {
            if a.circuit != crate::CircuitId::StateTransition {
                return Err(crate::VerifyError::Parameters(format!(
                    "a {} proof, not a state transition",
                    a.circuit
                )));
            }
            ChunkStatement::from_public_values(&a.public_values).ok_or_else(|| {
                crate::VerifyError::Parameters(
                    "public values are not a state-transition statement".into(),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let stated = chain(&statements).map_err(|e| match e {
        ChainError::NotFromHeader if statements.len() == 1 => crate::VerifyError::StatementMismatch,
        e => crate::VerifyError::Chain(e.to_string()),
    })?;
    if stated != *expected {
        return Err(crate::VerifyError::StatementMismatch);
    }
    chunks.iter().try_for_each(crate::verify)
}

/// Verifies one state-transition artifact and checks that it states `expected`: the
/// proof is valid (stock Plonky3 verifier), its diff sponge starts at the header state
/// (a proof that starts elsewhere is a later chunk of a bundle, not a whole diff), and
/// its roots, diff commitment and block number are exactly the expected ones. The
/// same as [`verify_transition_chunks`] on a bundle of this one proof.
pub fn verify_transition(
    artifact: &crate::ProofArtifact,
    expected: &TransitionStatement,
) -> Result<(), crate::VerifyError> {
    verify_chain(std::slice::from_ref(artifact), expected)
}

/// What a replica holding `diff` checks: the proof takes `pre_root` to `post_root`
/// through exactly this diff (its commitment is recomputed here) at `block_number`.
pub fn verify_diff(
    artifact: &crate::ProofArtifact,
    pre_root: &Digest,
    post_root: &Digest,
    diff: &Diff,
    block_number: u64,
) -> Result<(), crate::VerifyError> {
    verify_transition(
        artifact,
        &TransitionStatement {
            pre_root: *pre_root,
            post_root: *post_root,
            diff_commitment: diff.commitment(),
            block_number,
        },
    )
}

/// [`verify_diff`] for a bundle: the chained proofs take `pre_root` to `post_root`
/// through exactly this diff at `block_number`, whatever the chunk sizes.
pub fn verify_diff_chunks(
    bundle: &TransitionProof,
    pre_root: &Digest,
    post_root: &Digest,
    diff: &Diff,
    block_number: u64,
) -> Result<(), crate::VerifyError> {
    verify_transition_chunks(
        bundle,
        &TransitionStatement {
            pre_root: *pre_root,
            post_root: *post_root,
            diff_commitment: diff.commitment(),
            block_number,
        },
    )
}
