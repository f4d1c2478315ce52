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
use super::schedule::{per, periodic_table};
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

/// The update's fields, constant over its segments, in column order.
fn update_constants<T: Copy>(c: &TransitionCols<T>) -> impl Iterator<Item = T> + '_ {
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
        .chain([c.neighbor_kind])
        .chain(c.neighbor_key)
        .chain(c.neighbor_value)
        .chain(c.neighbor_leaf)
        .chain(c.deep)
}

/// Element `i` of the node a tree row compresses: the node sits left for path bit 0
/// and right for bit 1, the other half being the sibling.
fn node<AB: AirBuilder>(perm: &Perm16Cols<AB::Var>, bit: AB::Var, i: usize) -> AB::Expr {
    let left: AB::Expr = perm.inputs[i].into();
    let right: AB::Expr = perm.inputs[8 + i].into();
    left.clone() + bit.into() * (right - left)
}

/// Element `i` of the sibling a tree row compresses its node with.
fn sibling<AB: AirBuilder>(perm: &Perm16Cols<AB::Var>, bit: AB::Var, i: usize) -> AB::Expr {
    let left: AB::Expr = perm.inputs[i].into();
    let right: AB::Expr = perm.inputs[8 + i].into();
    right.clone() + bit.into() * (left - right)
}

/// Element `i` of the node a walk hands to the next row: the sum of both halves when
/// it passes (one of them is empty, all zeros), their compression otherwise.
fn handed_up<AB: AirBuilder>(perm: &Perm16Cols<AB::Var>, pass: AB::Var, i: usize) -> AB::Expr {
    let sum: AB::Expr = perm.inputs[i].into() + perm.inputs[8 + i].into();
    let out: AB::Expr = perm.output()[i].into();
    out.clone() + pass.into() * (sum - out)
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
        let head = e(local.head);

        let in24 = |i: usize| e(local.sponge.inputs[i]);
        let out24 = |i: usize| e(local.sponge.output()[i]);
        let kind = e(local.kind);
        let bit = e(local.bit);

        // 2. Booleans, and the products kept as columns.
        for v in [
            local.kind,
            local.old_present,
            local.new_present,
            local.active,
            local.neighbor_kind,
            local.head,
            local.old_empty,
            local.old_lone,
            local.new_empty,
            local.new_lone,
            local.sibling_empty,
            local.sibling_lone,
            local.above,
        ] {
            builder.assert_bool(v);
        }
        for v in local.element {
            builder.assert_bool(v);
        }
        builder.assert_bool(bit.clone());
        builder.assert_bool(local.neighbor_bit);
        builder.assert_eq(
            local.element.iter().fold(AB::Expr::ZERO, |a, &x| a + e(x)),
            one(),
        );
        builder.assert_zero(e(local.old_empty) * e(local.old_lone));
        builder.assert_zero(e(local.new_empty) * e(local.new_lone));
        builder.assert_eq(e(local.absorb), e(local.active) * head.clone());
        builder.assert_eq(e(local.head_start), p(per::ROW) * head.clone());
        builder.assert_eq(e(local.end), p(per::LAST) * e(local.element[0]));

        // 3. Segments: `element` and `head` are constant within one; after the last
        // row, an update that has not reached element 0 goes on with the next element
        // down, and one that has is followed by a new update.
        {
            let mut b = builder.when(one() - p(per::LAST));
            let mut t = b.when_transition();
            for j in 0..8 {
                t.assert_eq(next.element[j], local.element[j]);
            }
            t.assert_eq(next.head, local.head);
        }
        {
            let mut b = builder.when(p(per::LAST));
            let mut t = b.when_transition();
            t.assert_eq(next.head, local.element[0]);
            let go_on = one() - e(local.element[0]);
            for j in 0..7 {
                t.assert_zero(go_on.clone() * (e(next.element[j]) - e(local.element[j + 1])));
            }
            t.assert_zero(go_on * e(next.element[7]));
        }
        // The update's fields are constant until it ends.
        {
            let mut t = builder.when_transition();
            let mut b = t.when(one() - e(local.end));
            for (n, l) in update_constants(next).zip(update_constants(local)) {
                b.assert_eq(n, l);
            }
        }

        // 4. Padding updates write the value they read.
        {
            let mut pad = builder.when(one() - e(local.active));
            pad.assert_eq(local.old_present, local.new_present);
            for i in 0..VALUE_SLOTS {
                pad.assert_eq(local.old_value[i], local.new_value[i]);
            }
        }

        // 5. The width-24 schedule of an update's first segment. Key message:
        // [1 + kind, address, slot, 0 x 5].
        assert_key_blocks(
            builder,
            p(per::ROW) * head.clone(),
            p(per::ROW + 1) * head.clone(),
            local,
        );
        {
            let mut b = builder.when(p(per::ROW + 1) * head.clone());
            for i in 11..16 {
                b.assert_zero(in24(i));
            }
            for i in 0..8 {
                b.assert_eq(e(local.key[i]), out24(i));
            }
        }
        // 6. Leaf messages: [3 + kind, key digest, value slots (36), 0 x 3]: old at
        // rows 2-4, new at rows 5-7, the neighbor's at rows 12-14.
        for (first, tag, digest, values, leaf) in [
            (
                2,
                kind.clone(),
                &local.key,
                &local.old_value,
                &local.old_leaf,
            ),
            (
                5,
                kind.clone(),
                &local.key,
                &local.new_value,
                &local.new_leaf,
            ),
            (
                12,
                e(local.neighbor_kind),
                &local.neighbor_key,
                &local.neighbor_value,
                &local.neighbor_leaf,
            ),
        ] {
            {
                let mut b = builder.when(p(per::ROW + first) * head.clone());
                b.assert_eq(in24(0), tag + AB::Expr::from_u32(3));
                for i in 0..8 {
                    b.assert_eq(in24(1 + i), e(digest[i]));
                }
                for i in 0..7 {
                    b.assert_eq(in24(9 + i), e(values[i]));
                }
            }
            {
                let mut b = builder.when(p(per::ROW + first + 1) * head.clone());
                for i in 0..16 {
                    b.assert_eq(in24(i), e(values[7 + i]));
                }
            }
            {
                let mut b = builder.when(p(per::ROW + first + 2) * head.clone());
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
        assert_key_blocks(
            builder,
            p(per::ROW + 8) * head.clone(),
            p(per::ROW + 9) * head.clone(),
            local,
        );
        {
            let mut b = builder.when(p(per::ROW + 8) * head.clone());
            for i in 0..8 {
                b.assert_eq(in24(16 + i), e(local.diff_capacity[i]));
            }
        }
        {
            let mut b = builder.when(p(per::ROW + 9) * head.clone());
            b.assert_eq(in24(11), e(local.new_present));
            for i in 0..4 {
                b.assert_eq(in24(12 + i), e(local.new_value[i]));
            }
        }
        for (row, from) in [(10, 4), (11, 20)] {
            let mut b = builder.when(p(per::ROW + row) * head.clone());
            for i in 0..16 {
                b.assert_eq(in24(i), e(local.new_value[from + i]));
            }
        }
        // 8. Sponge capacities: fresh sponges start at zero, blocks of one message
        // chain.
        {
            let mut b = builder.when(p(per::FRESH) * head.clone());
            for i in 16..24 {
                b.assert_zero(in24(i));
            }
        }
        {
            let mut b = builder.when(p(per::CHAIN) * head.clone());
            for i in 16..24 {
                b.assert_eq(e(next.sponge.inputs[i]), out24(i));
            }
        }
        // 9. The diff sponge's carried state: updated after row 11 of an active
        // update's first segment, kept everywhere else.
        {
            let absorb = e(local.absorb);
            let mut b = builder.when(p(per::ROW + 11));
            for i in 0..8 {
                let cap = e(local.diff_capacity[i]);
                let out = e(local.diff_output[i]);
                b.assert_eq(
                    e(next.diff_capacity[i]),
                    cap.clone() + absorb.clone() * (out24(16 + i) - cap),
                );
                b.assert_eq(
                    e(next.diff_output[i]),
                    out.clone() + absorb.clone() * (out24(i) - out),
                );
            }
        }
        {
            let mut b = builder.when(one() - p(per::ROW + 11));
            let mut t = b.when_transition();
            for i in 0..8 {
                t.assert_eq(next.diff_capacity[i], local.diff_capacity[i]);
                t.assert_eq(next.diff_output[i], local.diff_output[i]);
            }
        }

        // 10. The two walks up the key's path. An update starts with its leaves (or
        // the empty digest) as the nodes; at each tree row the node sits left for bit
        // 0 and right for bit 1, the other half is the sibling, shared by both walks.
        {
            let start = e(local.head_start);
            let mut b = builder.when(start.clone());
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
            b.assert_eq(e(local.old_empty), one() - e(local.old_present));
            b.assert_eq(e(local.old_lone), e(local.old_present));
            b.assert_eq(e(local.new_empty), one() - e(local.new_present));
            b.assert_eq(e(local.new_lone), e(local.new_present));
            b.assert_zero(local.above);
        }
        {
            let mut b = builder.when(p(per::TREE));
            for i in 0..8 {
                let left = e(local.new_path.inputs[i]) - e(local.old_path.inputs[i]);
                let right = e(local.new_path.inputs[8 + i]) - e(local.old_path.inputs[8 + i]);
                b.assert_zero(bit.clone() * left + (one() - bit.clone()) * right);
            }
        }
        // 11. What the sibling is: empty exactly when it is all zeros (`inverse` shows
        // a non-zero element otherwise); the neighbor's leaf, whose path agrees with
        // the key's above this level and differs at it, only where claimed.
        {
            let sib = |i: usize| sibling::<AB>(&local.old_path, local.bit, i);
            let empty = e(local.sibling_empty);
            let lone = e(local.sibling_lone);
            let mut sum = AB::Expr::ZERO;
            for i in 0..8 {
                builder.assert_zero(empty.clone() * sib(i));
                sum += sib(i) * e(local.inverse[i]);
                builder.assert_zero(lone.clone() * (sib(i) - e(local.neighbor_leaf[i])));
            }
            builder.assert_eq(sum, one() - empty.clone());
            // A walk with an empty node that meets a branch (neither empty nor the
            // neighbor) needs it shown to be a branch: it is `deep`, whose children the
            // segment's last row compresses.
            let either_empty =
                e(local.old_empty) + e(local.new_empty) - e(local.old_empty) * e(local.new_empty);
            builder.assert_eq(
                e(local.many),
                either_empty * (one() - empty.clone() - lone.clone()),
            );
            for i in 0..8 {
                builder.assert_zero(e(local.many) * (sib(i) - e(local.deep[i])));
            }
            builder.assert_zero(lone.clone() * empty);
            builder.assert_zero(lone.clone() * (bit.clone() + e(local.neighbor_bit) - one()));
            builder.assert_zero(p(per::LAST) * lone.clone());
            builder
                .when(p(per::TREE))
                .assert_zero(e(local.above) * (bit.clone() - e(local.neighbor_bit)));
            let mut t = builder.when_transition();
            t.when(one() - e(local.end))
                .assert_eq(e(next.above), e(local.above) + lone);
        }
        {
            let mut t = builder.when_transition();
            t.when(one() - p(per::LAST))
                .assert_eq(e(next.need), e(local.need) + e(local.many));
            t.when(p(per::LAST)).assert_zero(next.need);
            let mut b = builder.when(p(per::LAST));
            for i in 0..8 {
                b.assert_zero(e(local.need) * (e(local.new_path.output()[i]) - e(local.deep[i])));
            }
        }
        // 12. How each walk combines (see `proofbox_state::proof::combine`): an empty
        // node and an empty sibling give an empty parent, an empty side is left out
        // beside one lone leaf (the node "passes"), anything else is compressed. The
        // last row of a segment only passes the nodes on to the next segment.
        for (old, empty, lone, pass, perm, nempty, nlone, nperm) in [
            (
                true,
                local.old_empty,
                local.old_lone,
                local.pass_old,
                &local.old_path,
                next.old_empty,
                next.old_lone,
                &next.old_path,
            ),
            (
                false,
                local.new_empty,
                local.new_lone,
                local.pass_new,
                &local.new_path,
                next.new_empty,
                next.new_lone,
                &next.new_path,
            ),
        ] {
            let se = e(local.sibling_empty);
            let sl = e(local.sibling_lone);
            {
                let mut b = builder.when(p(per::TREE));
                b.assert_eq(
                    e(pass),
                    e(empty) * (se.clone() + sl.clone()) + e(lone) * se.clone(),
                );
                let mut t = b.when_transition();
                t.assert_eq(e(nempty), e(empty) * se.clone());
                t.assert_eq(e(nlone), e(empty) * sl + e(lone) * se);
            }
            {
                let go_on = one() - e(local.element[0]);
                let mut b = builder.when(p(per::LAST));
                let mut t = b.when_transition();
                t.assert_zero(go_on.clone() * (e(nempty) - e(empty)));
                t.assert_zero(go_on * (e(nlone) - e(lone)));
            }
            if old {
                // The old walk's node rides row 31 as its left half, passing.
                {
                    let mut b = builder.when(p(per::LAST));
                    b.assert_eq(pass, one());
                    for i in 0..8 {
                        b.assert_zero(perm.inputs[8 + i]);
                    }
                }
                let mut t = builder.when_transition();
                let mut b = t.when(one() - e(local.end));
                for i in 0..8 {
                    b.assert_eq(
                        node::<AB>(nperm, next.bit, i),
                        handed_up::<AB>(perm, pass, i),
                    );
                }
            } else {
                // The new walk's node rides row 31 in `carry`.
                for i in 0..8 {
                    builder.when(p(per::IN_ELEM)).assert_eq(
                        node::<AB>(nperm, next.bit, i),
                        handed_up::<AB>(perm, pass, i),
                    );
                    builder
                        .when(p(per::ELEM_END))
                        .assert_eq(e(next.carry[i]), handed_up::<AB>(perm, pass, i));
                    let mut t = builder.when_transition();
                    t.when(p(per::LAST) - e(local.end))
                        .assert_eq(node::<AB>(nperm, next.bit, i), e(local.carry[i]));
                }
            }
        }
        builder.when(p(per::LAST)).assert_zero(bit.clone());

        // 13. Roots: at an update's end the old walk reaches the update's root, and
        // the new walk's root is the next update's.
        {
            let mut b = builder.when(e(local.end));
            for i in 0..8 {
                b.assert_eq(local.old_path.inputs[i], local.root[i]);
            }
            let mut t = b.when_transition();
            for i in 0..8 {
                t.assert_eq(next.root[i], local.carry[i]);
            }
        }

        // 14. Path bits: the segment's element of K (and of the neighbor's key digest)
        // is the sum of its 31 bits * 2^i, and below p.
        let walks = [
            (
                (local.bit, local.rem, local.low, local.high),
                (next.bit, next.rem, next.low, next.high),
                &local.key,
            ),
            (
                (
                    local.neighbor_bit,
                    local.neighbor_rem,
                    local.neighbor_low,
                    local.neighbor_high,
                ),
                (
                    next.neighbor_bit,
                    next.neighbor_rem,
                    next.neighbor_low,
                    next.neighbor_high,
                ),
                &local.neighbor_key,
            ),
        ];
        for ((bit, rem, low, high), (nbit, nrem, nlow, nhigh), digest) in walks {
            let element = (0..8).fold(AB::Expr::ZERO, |a, j| {
                a + e(local.element[j]) * e(digest[j])
            });
            {
                let mut b = builder.when(p(per::ROW));
                b.assert_eq(e(rem), element);
                b.assert_eq(e(low), e(bit));
            }
            builder
                .when(p(per::IN_ELEM))
                .assert_eq(e(rem), e(bit) + e(nrem) * AB::Expr::TWO);
            {
                let mut b = builder.when(p(per::ELEM_END));
                b.assert_eq(e(rem), e(bit));
                // Bits 24..=30 all one and any of bits 0..=23 set: at least p.
                b.assert_zero(e(low) * e(high));
            }
            builder
                .when(p(per::LOW_OR))
                .assert_eq(e(nlow), e(low) + e(nbit) - e(low) * e(nbit));
            builder.when(p(per::LOW_HOLD)).assert_eq(nlow, low);
            builder.when(p(per::HIGH_START)).assert_eq(e(high), e(bit));
            builder
                .when(p(per::HIGH_AND))
                .assert_eq(e(nhigh), e(high) * e(nbit));
        }

        // 15. Boundaries: the first row starts an update at the pre-state root and the
        // diff sponge's start (public, so that proofs chain; the verifier of a whole
        // diff checks it is the header state); the last row ends one, at the
        // post-state root and the diff sponge's end.
        {
            let mut b = builder.when_first_row();
            b.assert_one(local.head);
            b.assert_zero(local.need);
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
            b.assert_one(local.end);
            for i in 0..8 {
                b.assert_eq(e(local.carry[i]), public[pv::POST_ROOT + i].clone());
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
