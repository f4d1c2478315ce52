//! What a state-transition proof states: its 52 public values ([`pv`]), the statement
//! of a chunk ([`ChunkStatement`]) and of a whole diff ([`TransitionStatement`]), the
//! diff sponge they carry ([`SpongeState`]), and how chunks chain ([`chain`]).

use std::sync::OnceLock;

use p3_field::{PrimeCharacteristicRing, PrimeField32};
use p3_koala_bear::KoalaBear;
use p3_symmetric::Permutation;
use proofbox_backend_api::BackendField;
use proofbox_state::diff::{DIFF_HEADER_LEN, record};
use serde::{Deserialize, Serialize};

use super::{Digest, NUM_PUBLIC_VALUES};

type F = KoalaBear;

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

/// A digest as hex: each element's canonical value as 8 hex digits, in order. How
/// roots and commitments are shown to people and in JSON.
pub fn digest_hex(d: &Digest) -> String {
    d.iter()
        .map(|e| format!("{:08x}", e.as_canonical_u32()))
        .collect()
}

/// Absorbs one block by overwriting the rate of a width-24 state.
pub(crate) fn absorb(state: &mut [F; 24], block: &[F]) {
    state[..16].copy_from_slice(block);
    *state = F::poseidon2_24().permute(*state);
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
/// chained proofs (a bundle).
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
    pub(crate) fn to_state(self) -> [F; 24] {
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
/// is the diff commitment; the proofs of a bundle chain ([`chain`]).
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
