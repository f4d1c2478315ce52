//! The state-transition trace, generated natively from a [`TransitionInput`]: one
//! segment of [`ROWS_PER_UPDATE`] rows per update, the permutations' columns filled
//! by `p3-poseidon2-air`'s trace generator.

use core::borrow::BorrowMut;

use p3_field::PrimeCharacteristicRing;
use p3_koala_bear::{GenericPoseidon2LinearLayersKoalaBear, KoalaBear};
use p3_matrix::dense::RowMajorMatrix;
use p3_poseidon2_air::generate_trace_rows;
use p3_symmetric::Permutation;
use proofbox_backend_api::BackendField;
use proofbox_state::diff::record;
use proofbox_state::encoding::{KEY_MESSAGE_LEN, LEAF_MESSAGE_LEN, VALUE_SLOTS};
use proofbox_state::{DEPTH, Path, StateValue, UpdateWitness};
use rayon::prelude::*;

use super::columns::col::{P16_COLS, P24_COLS};
use super::columns::{TransitionCols, col, rc16, rc24};
use super::input::TransitionInput;
use super::schedule::{TREE_START, tree_position};
use super::statement::absorb;
use super::{Digest, ROWS_PER_UPDATE};

type F = KoalaBear;

impl TransitionInput {
    pub(super) fn trace_with(
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
                    let cols: &mut TransitionCols<F> = row.borrow_mut();
                    s.fill_fields(cols);
                    cols.root = root_before;
                    let d = if r <= 11 { dstate_before } else { dstate_after };
                    cols.diff_capacity.copy_from_slice(&d[16..24]);
                    cols.diff_output.copy_from_slice(&d[..8]);
                    s.fill_path(cols, r);
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
    }

    fn fill_path(&self, c: &mut TransitionCols<F>, r: usize) {
        let Some((j, i)) = tree_position(r) else {
            return;
        };
        let word = self.path.0[j];
        c.bit = F::from_u32((word >> i) & 1);
        c.rem = F::from_u32(word >> i);
        let low_bits = i.min(23) + 1;
        c.low = F::from_bool(word & ((1u32 << low_bits) - 1) != 0);
        if i >= 24 {
            let mask = ((1u32 << (i + 1)) - 1) & !((1u32 << 24) - 1);
            c.high = F::from_bool(word & mask == mask);
        }
    }
}
