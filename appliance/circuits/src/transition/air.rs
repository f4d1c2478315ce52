//! The state-transition AIR: its constraints, in the order [`Air::eval`] emits them
//! (Plonky3 folds constraints in emission order, so this order is part of the
//! circuit's definition). Columns: [`TransitionCols`]; periodic columns: [`per`].

// Message positions are written as index ranges (`in24(9 + i) == values[i]`), the way
// the message layouts in `docs/state.md` are written.
#![allow(clippy::needless_range_loop)]

use core::borrow::Borrow;

use p3_air::{Air, AirBuilder, BaseAir, WindowAccess};
use p3_field::PrimeCharacteristicRing;
use p3_koala_bear::KoalaBear;
use p3_poseidon2_air::Poseidon2Air;
use p3_uni_stark::SubAirBuilder;
use proofbox_state::encoding::VALUE_SLOTS;

use super::NUM_PUBLIC_VALUES;
use super::columns::col::{P16_COLS, P24_COLS};
use super::columns::{P16Air, P24Air, Perm16Cols, PermOutput, TransitionCols, col, rc16, rc24};
use super::schedule::{TREE_START, per, periodic_table};
use super::statement::pv;

type F = KoalaBear;

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

/// The fields that are constant within a segment, in column order: the update's
/// fields (`kind` to `active`) and the segment's root.
fn segment_constants<T: Copy>(c: &TransitionCols<T>) -> impl Iterator<Item = T> + '_ {
    core::iter::once(c.kind)
        .chain(c.address)
        .chain(c.slot)
        .chain([c.old_present, c.new_present])
        .chain(c.old_value)
        .chain(c.new_value)
        .chain(c.key)
        .chain(c.old_leaf)
        .chain(c.new_leaf)
        .chain([c.active])
        .chain(c.root)
}

/// Element `i` of the node a tree row compresses: the node sits left for path bit 0
/// and right for bit 1, the other half being the sibling.
fn node<AB: AirBuilder>(perm: &Perm16Cols<AB::Var>, bit: AB::Var, i: usize) -> AB::Expr {
    let left: AB::Expr = perm.inputs[i].into();
    let right: AB::Expr = perm.inputs[8 + i].into();
    left.clone() + bit.into() * (right - left)
}

impl<AB: AirBuilder<F = F>> Air<AB> for TransitionAir {
    fn eval(&self, builder: &mut AB) {
        // 1. The three permutations, on every row.
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
        let local: &TransitionCols<AB::Var> = main.current_slice().borrow();
        let next: &TransitionCols<AB::Var> = main.next_slice().borrow();
        let periodic: Vec<AB::Expr> = builder
            .periodic_values()
            .iter()
            .map(|&v| v.into())
            .collect();
        let public: Vec<AB::Expr> = builder.public_values().iter().map(|&v| v.into()).collect();
        let p = |c: usize| periodic[c].clone();
        let one = || AB::Expr::ONE;
        let e = |v: AB::Var| -> AB::Expr { v.into() };

        let in24 = |i: usize| e(local.sponge.inputs[i]);
        let out24 = |i: usize| e(local.sponge.output()[i]);
        let kind = e(local.kind);
        let bit = e(local.bit);

        // 2. Booleans.
        for v in [
            local.kind,
            local.old_present,
            local.new_present,
            local.active,
        ] {
            builder.assert_bool(v);
        }
        builder.when(p(per::TREE)).assert_bool(bit.clone());

        // 3. The update's fields are constant within a segment.
        for (n, l) in segment_constants(next).zip(segment_constants(local)) {
            builder.when(one() - p(per::SEG_END)).assert_eq(n, l);
        }

        // 4. Padding segments write the value they read.
        {
            let mut pad = builder.when(one() - e(local.active));
            pad.assert_eq(local.old_present, local.new_present);
            for i in 0..VALUE_SLOTS {
                pad.assert_eq(local.old_value[i], local.new_value[i]);
            }
        }

        // 5. The width-24 schedule. Key message: [1 + kind, address, slot, 0 x 5].
        assert_key_blocks(builder, p(per::ROW), p(per::ROW + 1), local);
        {
            let mut b = builder.when(p(per::ROW + 1));
            for i in 11..16 {
                b.assert_zero(in24(i));
            }
            for i in 0..8 {
                b.assert_eq(e(local.key[i]), out24(i));
            }
        }
        // 6. Leaf messages: [3 + kind, K, value slots (36), 0 x 3], old at rows 2-4,
        // new at rows 5-7.
        for (first, values, leaf) in [
            (2, &local.old_value, &local.old_leaf),
            (5, &local.new_value, &local.new_leaf),
        ] {
            {
                let mut b = builder.when(p(per::ROW + first));
                b.assert_eq(in24(0), kind.clone() + AB::Expr::from_u32(3));
                for i in 0..8 {
                    b.assert_eq(in24(1 + i), e(local.key[i]));
                }
                for i in 0..7 {
                    b.assert_eq(in24(9 + i), e(values[i]));
                }
            }
            {
                let mut b = builder.when(p(per::ROW + first + 1));
                for i in 0..16 {
                    b.assert_eq(in24(i), e(values[7 + i]));
                }
            }
            {
                let mut b = builder.when(p(per::ROW + first + 2));
                for i in 0..13 {
                    b.assert_eq(in24(i), e(values[23 + i]));
                }
                for i in 13..16 {
                    b.assert_zero(in24(i));
                }
                for i in 0..8 {
                    b.assert_eq(e(leaf[i]), out24(i));
                }
            }
        }
        // 7. The diff record: [1 + kind, address, slot, present, new value slots],
        // rows 8-11, continuing the diff sponge.
        assert_key_blocks(builder, p(per::ROW + 8), p(per::ROW + 9), local);
        {
            let mut b = builder.when(p(per::ROW + 8));
            for i in 0..8 {
                b.assert_eq(in24(16 + i), e(local.diff_capacity[i]));
            }
        }
        {
            let mut b = builder.when(p(per::ROW + 9));
            b.assert_eq(in24(11), e(local.new_present));
            for i in 0..4 {
                b.assert_eq(in24(12 + i), e(local.new_value[i]));
            }
        }
        for (row, from) in [(10, 4), (11, 20)] {
            let mut b = builder.when(p(per::ROW + row));
            for i in 0..16 {
                b.assert_eq(in24(i), e(local.new_value[from + i]));
            }
        }
        // 8. Sponge capacities: fresh sponges start at zero, blocks of one message
        // chain.
        {
            let mut b = builder.when(p(per::FRESH));
            for i in 16..24 {
                b.assert_zero(in24(i));
            }
        }
        {
            let mut b = builder.when(p(per::CHAIN));
            for i in 16..24 {
                b.assert_eq(e(next.sponge.inputs[i]), out24(i));
            }
        }
        // 9. The diff sponge's carried state: updated after row 11 of an active
        // segment, kept everywhere else.
        {
            let active = e(local.active);
            let mut b = builder.when(p(per::ROW + 11));
            for i in 0..8 {
                let cap = e(local.diff_capacity[i]);
                let out = e(local.diff_output[i]);
                b.assert_eq(
                    e(next.diff_capacity[i]),
                    cap.clone() + active.clone() * (out24(16 + i) - cap),
                );
                b.assert_eq(
                    e(next.diff_output[i]),
                    out.clone() + active.clone() * (out24(i) - out),
                );
            }
        }
        {
            let mut b = builder.when(one() - p(per::ROW + 11) - p(per::SEG_END));
            for i in 0..8 {
                b.assert_eq(next.diff_capacity[i], local.diff_capacity[i]);
                b.assert_eq(next.diff_output[i], local.diff_output[i]);
            }
        }
        {
            // Across a segment boundary the diff sponge is kept too.
            let mut b = builder.when(p(per::SEG_END));
            let mut t = b.when_transition();
            for i in 0..8 {
                t.assert_eq(next.diff_capacity[i], local.diff_capacity[i]);
                t.assert_eq(next.diff_output[i], local.diff_output[i]);
            }
        }

        // 10. The two paths. At a tree row, the node (the previous level's output, or
        // the leaf at the first tree row) sits left for bit 0 and right for bit 1; the
        // other half is the sibling, shared by both paths.
        {
            let mut b = builder.when(p(per::ROW + TREE_START));
            for i in 0..8 {
                b.assert_eq(
                    node::<AB>(&local.old_path, local.bit, i),
                    e(local.old_present) * e(local.old_leaf[i]),
                );
                b.assert_eq(
                    node::<AB>(&local.new_path, local.bit, i),
                    e(local.new_present) * e(local.new_leaf[i]),
                );
            }
        }
        {
            let mut b = builder.when(p(per::TREE_NEXT));
            for i in 0..8 {
                b.assert_eq(
                    node::<AB>(&next.old_path, next.bit, i),
                    e(local.old_path.output()[i]),
                );
                b.assert_eq(
                    node::<AB>(&next.new_path, next.bit, i),
                    e(local.new_path.output()[i]),
                );
            }
        }
        {
            let mut b = builder.when(p(per::TREE));
            for i in 0..8 {
                let left = e(local.new_path.inputs[i]) - e(local.old_path.inputs[i]);
                let right = e(local.new_path.inputs[8 + i]) - e(local.old_path.inputs[8 + i]);
                b.assert_zero(bit.clone() * left + (one() - bit.clone()) * right);
            }
        }
        // 11. Roots: the old path reaches the segment's root; the new path's root is
        // the next segment's, and the last one is the post-state root.
        {
            let mut b = builder.when(p(per::SEG_END));
            for i in 0..8 {
                b.assert_eq(local.old_path.output()[i], local.root[i]);
            }
            let mut t = b.when_transition();
            for i in 0..8 {
                t.assert_eq(next.root[i], local.new_path.output()[i]);
            }
        }

        // 12. Path bits: K[j] = sum of bits * 2^i over its 31 rows, and below p.
        for j in 0..8 {
            let mut b = builder.when(p(per::ELEM_START + j));
            b.assert_eq(local.rem, local.key[j]);
            b.assert_eq(e(local.low), bit.clone());
        }
        builder
            .when(p(per::IN_ELEM))
            .assert_eq(e(local.rem), bit.clone() + e(next.rem) * AB::Expr::TWO);
        {
            let mut b = builder.when(p(per::ELEM_END));
            b.assert_eq(e(local.rem), bit.clone());
            // Bits 24..=30 all one and any of bits 0..=23 set: at least p.
            b.assert_zero(e(local.low) * e(local.high));
        }
        builder.when(p(per::LOW_OR)).assert_eq(
            e(next.low),
            e(local.low) + e(next.bit) - e(local.low) * e(next.bit),
        );
        builder
            .when(p(per::LOW_HOLD))
            .assert_eq(next.low, local.low);
        builder
            .when(p(per::HIGH_START))
            .assert_eq(e(local.high), bit.clone());
        builder
            .when(p(per::HIGH_AND))
            .assert_eq(e(next.high), e(local.high) * e(next.bit));

        // 13. Boundaries: the pre-state root and the diff sponge's start (public, so
        // that proofs chain; the verifier of a whole diff checks it is the header
        // state) on the first row, the post-state root and the diff sponge's end on
        // the last.
        {
            let mut b = builder.when_first_row();
            for i in 0..8 {
                b.assert_eq(e(local.root[i]), public[pv::PRE_ROOT + i].clone());
                b.assert_eq(
                    e(local.diff_capacity[i]),
                    public[pv::SPONGE_IN_CAP + i].clone(),
                );
                b.assert_eq(
                    e(local.diff_output[i]),
                    public[pv::SPONGE_IN_OUT + i].clone(),
                );
            }
        }
        {
            let mut b = builder.when_last_row();
            for i in 0..8 {
                b.assert_eq(
                    e(local.new_path.output()[i]),
                    public[pv::POST_ROOT + i].clone(),
                );
                b.assert_eq(
                    e(local.diff_output[i]),
                    public[pv::DIFF_COMMITMENT + i].clone(),
                );
                b.assert_eq(
                    e(local.diff_capacity[i]),
                    public[pv::SPONGE_OUT_CAP + i].clone(),
                );
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
    local: &TransitionCols<AB::Var>,
) {
    let input = &local.sponge.inputs;
    let mut b = builder.when(first);
    b.assert_eq(input[0], local.kind.into() + AB::Expr::ONE);
    for i in 0..10 {
        b.assert_eq(input[1 + i], local.address[i]);
    }
    for i in 0..5 {
        b.assert_eq(input[11 + i], local.slot[i]);
    }
    let mut b = builder.when(second);
    for i in 0..11 {
        b.assert_eq(input[i], local.slot[5 + i]);
    }
}
