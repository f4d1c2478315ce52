//! The state-transition circuit: a proof that applying exactly the updates of a diff,
//! in the diff's canonical order, to the state tree with root `pre_root` gives
//! `post_root`, where the diff is the one whose Poseidon2 commitment is
//! `diff_commitment`.
//!
//! A diff is proved by one proof or, past what one machine can prove at once, by a
//! bundle of chained proofs (a bundle, built by
//! [`TransitionInput::build_chunks`], proved chunk by chunk by the prover and checked by
//! the verifier crate): each proof ("chunk") applies a run of
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
//! The state tree puts a leaf at the shortest prefix of its path no other key shares,
//! so an update walks as many levels as its key's proof has (about `log2(N)` for `N`
//! keys), not 248. The trace is made of **segments** of [`ROWS_PER_SEGMENT`] = 32 rows;
//! segment rows 0 to 30 walk 31 levels, the levels of one element `j` of the key digest
//! `K` (bit `r` of `K[j]`, least significant first, at row `r`: level `31 j + 30 - r`),
//! and row 31 hands the walks' nodes on. An update takes one segment per 31 levels of
//! its proof (at least one), walking elements `n - 1` down to 0; levels below the
//! proof's deepest sibling have empty siblings, which a lone leaf passes up unhashed.
//! The trace has a power of two of segments, the ones past the diff's updates taken by
//! *padding* updates: a key's current value written back (old leaf = new leaf), which
//! leaves the root as it is and absorbs nothing into the diff commitment.
//!
//! Every row holds three Poseidon2 permutations, checked by `p3-poseidon2-air`'s
//! constraints on every row: one of width 24 (the sponge of keys, leaves, the diff
//! record and the neighbor's leaf, in an update's first segment only) and two of width
//! 16 (the node compressions of the old and the new walk), plus the update's fields,
//! constant over its segments. Periodic columns (period 32) and the one-hot `element`
//! and `head` columns select what each row does:
//!
//! | rows | width-24 permutation (first segment) | width-16 permutations |
//! |---|---|---|
//! | 0-1 | key message, 2 blocks: the key digest `K` | one level per row |
//! | 2-4 | old leaf message, 3 blocks | ... |
//! | 5-7 | new leaf message, 3 blocks | ... |
//! | 8-11 | the update's diff record, 4 blocks, continuing the diff sponge | ... |
//! | 12-14 | the neighbor's leaf message, 3 blocks | ... |
//! | 15-30 | - | ... |
//! | 31 | - | none: the nodes are handed on |
//!
//! At each level a walk combines its node with the sibling (shared by both walks) as
//! the tree does (`proofbox_state::proof::combine`): an empty side is left out beside a
//! lone leaf, two empty sides give an empty parent, anything else is compressed. Each
//! walk tracks whether its node is empty or one lone leaf; the sibling is empty
//! exactly when it is all zeros (an inverse column shows a non-zero element
//! otherwise), and it counts as a lone leaf only when it is the neighbor's leaf,
//! hashed in the first segment from the neighbor's key digest and value, whose path
//! agrees with `K`'s above that level and differs at it. The bits of `K[j]` (and of
//! the neighbor's key digest) are checked to be the element's canonical
//! decomposition (below `p`), so a key has exactly one path. At the end of an update
//! the old walk must reach its root and the new walk's root becomes the next update's.
//! The diff sponge starts from the public `sponge_in` (for a whole diff, the state
//! after the header block `[5, 0 x 15]`) and is carried from row to row; the last
//! row's output is `diff_commitment` and its capacity the public `sponge_out`
//! capacity. `docs/state.md` ("The state-transition proof") has the details and the
//! soundness argument.
//!
//! # Modules
//!
//! - [`columns`]: the trace's columns ([`TransitionCols`], read through `Borrow`).
//! - [`schedule`]: the periodic columns that say what each row of a segment does.
//! - [`air`]: the AIR ([`TransitionAir`]), its constraints in emission order.
//! - [`statement`]: public values, statements, the diff sponge, chaining.
//! - [`input`]: the prover's input (diff and witnesses), chunking.
//! - [`trace`]: trace generation.

pub mod air;
pub mod columns;
pub mod input;
pub mod schedule;
pub mod statement;
pub mod trace;

pub use air::TransitionAir;
pub use columns::{NUM_TRANSITION_COLS, TransitionCols, col};
pub use input::{
    MAX_SEGMENTS_PER_PROOF, MAX_UPDATES_PER_PROOF, TransitionInput, check_chunks, padding_key,
    seeded_input, statement_of_chunks,
};
pub use statement::{
    ChainError, ChunkStatement, SpongeState, TransitionStatement, chain, digest_hex, pv,
};
pub use trace::segments_of;

use p3_koala_bear::KoalaBear;

/// A digest: 8 KoalaBear elements.
pub type Digest = [KoalaBear; 8];

/// Trace rows per segment: an update takes one segment per 31 levels of its path, one
/// for every key of a state of up to about a billion keys.
pub const ROWS_PER_SEGMENT: usize = 32;
/// log2 of [`ROWS_PER_SEGMENT`].
pub const LOG_ROWS_PER_SEGMENT: u8 = 5;
/// Public values of a state-transition proof (see [`ChunkStatement::public_values`]).
pub const NUM_PUBLIC_VALUES: usize = 52;
/// The default largest number of updates per proof of [`TransitionInput::build_chunks`]:
/// 2^17 trace rows for keys of one segment, about 1.6 GiB peak on the CPU backend.
pub const DEFAULT_CHUNK_UPDATES: usize = 4096;
