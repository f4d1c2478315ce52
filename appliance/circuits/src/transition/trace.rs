//! The state-transition trace, generated natively from a [`TransitionInput`]: per
//! update, as many segments of [`ROWS_PER_SEGMENT`] rows as its path needs, the
//! permutations' columns filled by `p3-poseidon2-air`'s trace generator.

use core::borrow::BorrowMut;

use p3_field::{Field, PrimeCharacteristicRing};
use p3_koala_bear::{GenericPoseidon2LinearLayersKoalaBear, KoalaBear};
use p3_matrix::dense::RowMajorMatrix;
use p3_poseidon2_air::generate_trace_rows;
use p3_symmetric::Permutation;
use proofbox_backend_api::BackendField;
use proofbox_state::diff::record;
use proofbox_state::encoding::{KEY_MESSAGE_LEN, LEAF_MESSAGE_LEN, VALUE_SLOTS};
use proofbox_state::proof::Occupancy;
use proofbox_state::{Path, StateValue, UpdateWitness};
use rayon::prelude::*;

use super::columns::col::{P16_COLS, P24_COLS};
use super::columns::{TransitionCols, col, rc16, rc24};
use super::input::TransitionInput;
use super::schedule::TREE_ROWS;
use super::statement::absorb;
use super::{Digest, ROWS_PER_SEGMENT};

type F = KoalaBear;

/// The segments an update's walk takes: one per 31 levels of its proof, at least one.
pub fn segments_of(w: &UpdateWitness) -> usize {
    w.proof.siblings.len().div_ceil(TREE_ROWS).max(1)
}

impl TransitionInput {
    /// The updates of the trace, in order: the diff's (active), then padding updates
    /// filling the segments up to the next power of two, and the segments each takes.
    pub(super) fn layout(&self) -> Vec<(&UpdateWitness, bool, usize)> {
        let mut out: Vec<(&UpdateWitness, bool, usize)> = self
            .witnesses
            .iter()
            .map(|w| (w, true, segments_of(w)))
            .collect();
        let used: usize = out.iter().map(|u| u.2).sum();
        let pad = segments_of(&self.padding);
        let mut total = used.max(1).next_power_of_two();
        // Padding updates take `pad` segments each, the last one up to 8 (an update
        // can walk more levels than its path has: the extra siblings are empty).
        let fits = |total: usize| {
            let free = total - used;
            free == 0 || (free >= pad && pad + free % pad <= 8)
        };
        while !fits(total) {
            total *= 2;
        }
        let free = total - used;
        if free > 0 {
            let count = free / pad;
            for i in 0..count {
                let n = if i + 1 == count {
                    pad + free % pad
                } else {
                    pad
                };
                out.push((&self.padding, false, n));
            }
        }
        out
    }

    pub(super) fn trace_with(
        &self,
        extra_capacity_bits: usize,
        path_override: Option<(usize, Path)>,
    ) -> RowMajorMatrix<F> {
        let layout = self.layout();
        let segments: usize = layout.iter().map(|u| u.2).sum();
        let height = segments * ROWS_PER_SEGMENT;
        let updates: Vec<Update> = layout
            .par_iter()
            .enumerate()
            .map(|(k, (w, active, n))| {
                let path = path_override.filter(|(s, _)| *s == k).map(|(_, p)| p);
                Update::new(w, *active, *n, path)
            })
            .collect();

        // Roots and diff sponge carried from update to update.
        let mut root = self.pre_root;
        let mut sponge = self.sponge_start.to_state();
        let mut carried = Vec::with_capacity(updates.len());
        let mut first_row = Vec::with_capacity(updates.len());
        let mut row = 0;
        for u in &updates {
            let before = (root, sponge);
            if u.active {
                sponge = u.diff_state_after(&sponge);
            }
            root = u.new_root;
            carried.push((before, sponge));
            first_row.push(row);
            row += u.rows.len();
        }

        // Inputs of the permutations of every row.
        let mut in24 = vec![[F::ZERO; 24]; height];
        let mut in_old = vec![[F::ZERO; 16]; height];
        let mut in_new = vec![[F::ZERO; 16]; height];
        for (k, u) in updates.iter().enumerate() {
            let base = first_row[k];
            let (_, dstate) = carried[k].0;
            for (r, input) in u.sponge_inputs(&dstate).into_iter().enumerate() {
                in24[base + r] = input;
            }
            for (r, w) in u.rows.iter().enumerate() {
                in_old[base + r] = w.old_input;
                in_new[base + r] = w.new_input;
            }
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
        // Split the rows into each update's share.
        let mut shares: Vec<&mut [F]> = Vec::with_capacity(updates.len());
        let mut rest = &mut values[..];
        for u in &updates {
            let (a, b) = rest.split_at_mut(u.rows.len() * col::WIDTH);
            shares.push(a);
            rest = b;
        }
        shares.into_par_iter().enumerate().for_each(|(k, rows)| {
            let u = &updates[k];
            let ((root_before, dstate_before), dstate_after) = carried[k];
            for (r, row) in rows.chunks_mut(col::WIDTH).enumerate() {
                let g = first_row[k] + r;
                row[col::P24..col::P24 + P24_COLS]
                    .copy_from_slice(&m24.values[g * P24_COLS..(g + 1) * P24_COLS]);
                row[col::OLD..col::OLD + P16_COLS]
                    .copy_from_slice(&m_old.values[g * P16_COLS..(g + 1) * P16_COLS]);
                row[col::NEW..col::NEW + P16_COLS]
                    .copy_from_slice(&m_new.values[g * P16_COLS..(g + 1) * P16_COLS]);
                let cols: &mut TransitionCols<F> = row.borrow_mut();
                u.fill_fields(cols);
                cols.root = root_before;
                let head = r < ROWS_PER_SEGMENT;
                let d = if head && r <= 11 {
                    dstate_before
                } else {
                    dstate_after
                };
                cols.diff_capacity.copy_from_slice(&d[16..24]);
                cols.diff_output.copy_from_slice(&d[..8]);
                u.fill_row(cols, r);
            }
        });
        RowMajorMatrix::new(values, col::WIDTH)
    }
}

/// One row of an update's walk, computed natively.
#[derive(Clone, Copy)]
struct WalkRow {
    old_input: [F; 16],
    new_input: [F; 16],
    bit: bool,
    sibling_empty: bool,
    sibling_lone: bool,
    inverse: [F; 8],
    old_occ: Occupancy,
    new_occ: Occupancy,
    pass_old: bool,
    pass_new: bool,
    above: bool,
    many: bool,
    need: bool,
    /// The new walk's node handed on over row 31 (row 31 only).
    carry: Digest,
}

/// One update's values, computed natively.
struct Update {
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
    neighbor_kind: F,
    neighbor_key: Digest,
    neighbor_path: Path,
    neighbor_v: [F; VALUE_SLOTS],
    neighbor_leaf: Digest,
    deep: Digest,
    /// Segments, the first walking element `segments - 1` of the key digest.
    segments: usize,
    rows: Vec<WalkRow>,
    new_root: Digest,
}

/// The leaf message of value slots `v` under the key with kind `kind` (0 account, 1
/// storage) and digest `key`: `[3 + kind, K, v, 0 x 3]`, the state crate's
/// `leaf_message` written for slots that may be the zeros of an absent value.
fn leaf_message(kind: F, key: &Digest, v: &[F; VALUE_SLOTS]) -> Vec<F> {
    let mut m = Vec::with_capacity(LEAF_MESSAGE_LEN);
    m.push(kind + F::from_u32(3));
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

fn occupancy(present: bool) -> Occupancy {
    if present {
        Occupancy::Lone
    } else {
        Occupancy::Empty
    }
}

/// Arranges a node and its sibling by the path bit.
fn arrange(node: Digest, sibling: Digest, bit: bool) -> [F; 16] {
    let mut input = [F::ZERO; 16];
    let (l, r) = if bit {
        (sibling, node)
    } else {
        (node, sibling)
    };
    input[..8].copy_from_slice(&l);
    input[8..].copy_from_slice(&r);
    input
}

/// One walk's step: whether it passes, and the node and occupancy it hands up.
fn step(
    input: &[F; 16],
    occ: Occupancy,
    sibling_occ: Occupancy,
    perm: &impl Permutation<[F; 16]>,
) -> (bool, Digest, Occupancy) {
    use Occupancy::*;
    let sum: Digest = core::array::from_fn(|i| input[i] + input[8 + i]);
    match (occ, sibling_occ) {
        (Empty, Empty) => (true, sum, Empty),
        (Lone, Empty) | (Empty, Lone) => (true, sum, Lone),
        _ => {
            let out = perm.permute(*input);
            (false, core::array::from_fn(|i| out[i]), Many)
        }
    }
}

impl Update {
    fn new(w: &UpdateWitness, active: bool, segments: usize, path: Option<Path>) -> Self {
        let fields = w.key.fields();
        let kind = fields[0] - F::ONE;
        let key = w.key.digest();
        let path = path.unwrap_or_else(|| Path::from_digest(&key));
        let old_v = slots(&w.old_value);
        let new_v = slots(&w.new_value);
        let hash = proofbox_state::hash::hash;
        let old_leaf = hash(&leaf_message(kind, &key, &old_v));
        let new_leaf = hash(&leaf_message(kind, &key, &new_v));
        let (neighbor_kind, neighbor_key, neighbor_v) = match &w.proof.neighbor {
            Some(n) => (
                n.key.fields()[0] - F::ONE,
                n.key.digest(),
                n.value.to_slots(),
            ),
            None => (F::ZERO, [F::ZERO; 8], [F::ZERO; VALUE_SLOTS]),
        };
        let neighbor_leaf = hash(&leaf_message(neighbor_kind, &neighbor_key, &neighbor_v));
        let neighbor_path = Path::from_digest(&neighbor_key);
        let present = |b: bool, leaf: Digest| if b { leaf } else { [F::ZERO; 8] };

        // The walks: levels 31 * segments - 1 up to 0, a pass row after each 31.
        let perm = F::poseidon2_16();
        let len = w.proof.siblings.len();
        let lone_level = w.proof.neighbor.is_some().then(|| len - 1);
        let mut old = present(w.old_value.is_some(), old_leaf);
        let mut new = present(w.new_value.is_some(), new_leaf);
        let mut old_occ = occupancy(w.old_value.is_some());
        let mut new_occ = occupancy(w.new_value.is_some());
        let mut above = false;
        let deep = match w.deep_children {
            Some(_) => w
                .proof
                .siblings
                .last()
                .copied()
                .flatten()
                .unwrap_or_default(),
            None => [F::ZERO; 8],
        };
        let children = w.deep_children.map(|[l, r]| arrange(l, r, false));
        let mut rows = Vec::with_capacity(segments * ROWS_PER_SEGMENT);
        for s in 0..segments {
            let j = segments - 1 - s;
            let mut need = false;
            for r in 0..TREE_ROWS {
                let level = TREE_ROWS * j + (TREE_ROWS - 1) - r;
                let bit = path.bit(level);
                let sibling = w
                    .proof
                    .siblings
                    .get(level)
                    .copied()
                    .flatten()
                    .unwrap_or([F::ZERO; 8]);
                let sibling_empty = sibling == [F::ZERO; 8];
                let sibling_lone = lone_level == Some(level);
                let mut inverse = [F::ZERO; 8];
                if let Some(i) = sibling.iter().position(|x| *x != F::ZERO) {
                    inverse[i] = sibling[i].inverse();
                }
                let s_occ = if sibling_empty {
                    Occupancy::Empty
                } else if sibling_lone {
                    Occupancy::Lone
                } else {
                    Occupancy::Many
                };
                let old_input = arrange(old, sibling, bit);
                let new_input = arrange(new, sibling, bit);
                let (pass_old, o, oo) = step(&old_input, old_occ, s_occ, &perm);
                let (pass_new, n, no) = step(&new_input, new_occ, s_occ, &perm);
                let either_empty = old_occ == Occupancy::Empty || new_occ == Occupancy::Empty;
                let many = either_empty && s_occ == Occupancy::Many;
                rows.push(WalkRow {
                    old_input,
                    new_input,
                    bit,
                    sibling_empty,
                    sibling_lone,
                    inverse,
                    old_occ,
                    new_occ,
                    pass_old,
                    pass_new,
                    above,
                    many,
                    need,
                    carry: [F::ZERO; 8],
                });
                (old, old_occ, new, new_occ) = (o, oo, n, no);
                above |= sibling_lone;
                need |= many;
            }
            // The segment's last row hands the nodes on.
            rows.push(WalkRow {
                old_input: arrange(old, [F::ZERO; 8], false),
                new_input: match (need, children) {
                    (true, Some(c)) => c,
                    _ => [F::ZERO; 16],
                },
                bit: false,
                sibling_empty: true,
                sibling_lone: false,
                inverse: [F::ZERO; 8],
                old_occ,
                new_occ,
                pass_old: true,
                pass_new: true,
                above,
                many: false,
                need,
                carry: new,
            });
        }
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
            neighbor_kind,
            neighbor_key,
            neighbor_path,
            neighbor_v,
            neighbor_leaf,
            deep,
            segments,
            rows,
            new_root: new,
        }
    }

    fn kind(&self) -> F {
        self.fields[0] - F::ONE
    }

    /// The width-24 inputs of the first segment's rows 0..15 (the diff record
    /// continues `dstate`).
    fn sponge_inputs(&self, dstate: &[F; 24]) -> Vec<[F; 24]> {
        let mut inputs = Vec::with_capacity(15);
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
            run(&leaf_message(self.kind(), &self.key, v), [F::ZERO; 24]);
        }
        run(&self.record, *dstate);
        run(
            &leaf_message(self.neighbor_kind, &self.neighbor_key, &self.neighbor_v),
            [F::ZERO; 24],
        );
        inputs
    }

    fn diff_state_after(&self, dstate: &[F; 24]) -> [F; 24] {
        let mut s = *dstate;
        for block in self.record.chunks(16) {
            absorb(&mut s, block);
        }
        s
    }

    fn fill_fields(&self, c: &mut TransitionCols<F>) {
        c.kind = self.kind();
        c.address.copy_from_slice(&self.fields[1..11]);
        c.slot.copy_from_slice(&self.fields[11..27]);
        c.old_present = F::from_bool(self.old_present);
        c.new_present = F::from_bool(self.new_present);
        c.old_value = self.old_v;
        c.new_value = self.new_v;
        c.key = self.key;
        c.old_leaf = self.old_leaf;
        c.new_leaf = self.new_leaf;
        c.active = F::from_bool(self.active);
        c.neighbor_kind = self.neighbor_kind;
        c.neighbor_key = self.neighbor_key;
        c.neighbor_value = self.neighbor_v;
        c.neighbor_leaf = self.neighbor_leaf;
        c.deep = self.deep;
    }

    /// The columns of the update's row `r` (over all its segments).
    fn fill_row(&self, c: &mut TransitionCols<F>, r: usize) {
        let (s, i) = (r / ROWS_PER_SEGMENT, r % ROWS_PER_SEGMENT);
        let j = self.segments - 1 - s;
        let head = s == 0;
        c.element = core::array::from_fn(|k| F::from_bool(k == j));
        c.head = F::from_bool(head);
        c.absorb = F::from_bool(head && self.active);
        c.head_start = F::from_bool(head && i == 0);
        c.end = F::from_bool(j == 0 && i == ROWS_PER_SEGMENT - 1);
        let w = &self.rows[r];
        c.sibling_empty = F::from_bool(w.sibling_empty);
        c.sibling_lone = F::from_bool(w.sibling_lone);
        c.inverse = w.inverse;
        c.old_empty = F::from_bool(w.old_occ == Occupancy::Empty);
        c.old_lone = F::from_bool(w.old_occ == Occupancy::Lone);
        c.new_empty = F::from_bool(w.new_occ == Occupancy::Empty);
        c.new_lone = F::from_bool(w.new_occ == Occupancy::Lone);
        c.pass_old = F::from_bool(w.pass_old);
        c.pass_new = F::from_bool(w.pass_new);
        c.above = F::from_bool(w.above);
        c.many = F::from_bool(w.many);
        c.need = F::from_bool(w.need);
        c.carry = w.carry;
        if i < TREE_ROWS {
            let word = self.path.0[j];
            debug_assert_eq!((word >> i) & 1 == 1, w.bit);
            let (bit, rem, low, high) = decompose(word, i);
            (c.bit, c.rem, c.low, c.high) = (bit, rem, low, high);
            let (bit, rem, low, high) = decompose(self.neighbor_path.0[j], i);
            (
                c.neighbor_bit,
                c.neighbor_rem,
                c.neighbor_low,
                c.neighbor_high,
            ) = (bit, rem, low, high);
        }
    }
}

/// Bit `i` of an element, its remainder from bit `i` up, and the `low` and `high`
/// flags of the canonical-decomposition check.
fn decompose(word: u32, i: usize) -> (F, F, F, F) {
    let bit = F::from_u32((word >> i) & 1);
    let rem = F::from_u32(word >> i);
    let low_bits = i.min(23) + 1;
    let low = F::from_bool(word & ((1u32 << low_bits) - 1) != 0);
    let high = if i >= 24 {
        let mask = ((1u32 << (i + 1)) - 1) & !((1u32 << 24) - 1);
        F::from_bool(word & mask == mask)
    } else {
        F::ZERO
    };
    (bit, rem, low, high)
}
