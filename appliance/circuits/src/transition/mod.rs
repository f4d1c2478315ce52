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
    MAX_UPDATES_PER_PROOF, TransitionInput, check_chunks, padding_key, seeded_input,
    statement_of_chunks,
};
pub use statement::{
    ChainError, ChunkStatement, SpongeState, TransitionStatement, chain, digest_hex, pv,
};

use p3_koala_bear::KoalaBear;

/// A digest: 8 KoalaBear elements.
pub type Digest = [KoalaBear; 8];

/// Trace rows per update.
pub const ROWS_PER_UPDATE: usize = 256;
/// log2 of [`ROWS_PER_UPDATE`].
pub const LOG_ROWS_PER_UPDATE: u8 = 8;
/// Public values of a state-transition proof (see [`ChunkStatement::public_values`]).
pub const NUM_PUBLIC_VALUES: usize = 52;
/// The default largest number of updates per proof of [`TransitionInput::build_chunks`]:
/// 2^18 trace rows, about 3.2 GiB peak on the CPU backend.
pub const DEFAULT_CHUNK_UPDATES: usize = 1024;
