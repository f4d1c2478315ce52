//! What the prover of a state transition needs ([`TransitionInput`]: the pre-state
//! root, the diff, one witness per update), how a large diff is split into chained
//! chunks, and the checks run before any proving work.

use p3_koala_bear::KoalaBear;
use p3_matrix::dense::RowMajorMatrix;
use proofbox_state::{
    Diff, Path, ProofError, StateKey, StateTree, TransitionWitness, UpdateWitness,
};
use serde::{Deserialize, Serialize};

use super::statement::{ChainError, ChunkStatement, SpongeState, TransitionStatement, chain};
use super::{Digest, LOG_ROWS_PER_SEGMENT};
use crate::CircuitId;

type F = KoalaBear;

/// The most segments one proof has: the state-transition circuit's largest trace
/// ([`CircuitId::max_log_rows`]) over [`super::ROWS_PER_SEGMENT`] rows per segment.
pub const MAX_SEGMENTS_PER_PROOF: usize =
    1 << (CircuitId::StateTransition.max_log_rows() - LOG_ROWS_PER_SEGMENT);

/// The most updates one proof carries: half of [`MAX_SEGMENTS_PER_PROOF`], leaving room
/// for keys whose paths take more than one segment. Larger diffs are proved in chained
/// proofs ([`TransitionInput::build_chunks`]); a diff this size whose paths need more
/// segments than one proof has is refused too.
pub const MAX_UPDATES_PER_PROOF: usize = MAX_SEGMENTS_PER_PROOF / 2;

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
        Self {
            pre_root,
            diff,
            witnesses,
            padding: tree.unchanged_witness(&padding_key()),
            block_number,
            sponge_start,
        }
    }

    /// Applies `diff` to `tree` and returns one input per chunk of at most
    /// `max_updates` updates and `max_updates` segments (a power of two: an update of
    /// a key whose path takes two segments counts twice, so that no chunk's trace
    /// doubles for a few deep keys), in canonical order, each to be proved on its own
    /// (the prover's `prove_transition_chunks`): each chunk starts at the previous
    /// chunk's post-state root and diff sponge state ([`Self::chunks_from_witness`]).
    /// An empty diff gives one chunk; a diff that fits one chunk gives the input of
    /// [`Self::build`]. `tree` is the post-state afterwards.
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
        let tw = tree.transition_witness(&diff, block_number, &padding_key());
        Self::chunks_from_witness(tw, max_updates).expect("the tree's own witnesses are valid")
    }

    /// The chained inputs of a diff a node sent as a [`TransitionWitness`], in chunks of
    /// at most `max_updates` updates and segments (a power of two), with no tree: each chunk starts
    /// at the root the previous one ends at (every witness is checked on the way, and a
    /// bad one is refused naming its update in the whole diff), and its padding is its
    /// last key written back (the last update's siblings are that key's siblings after
    /// the chunk, since no later update of the chunk lies to its left). The diff's
    /// padding witness pads a diff that fits one chunk, or an empty one.
    ///
    /// # Panics
    ///
    /// If `max_updates` is not a power of two.
    pub fn chunks_from_witness(
        tw: TransitionWitness,
        max_updates: usize,
    ) -> Result<Vec<Self>, ProofError> {
        assert!(
            max_updates.is_power_of_two(),
            "updates per chunk must be a power of two, not {max_updates}"
        );
        let diff = tw.diff().map_err(|e| ProofError::WitnessShape {
            index: 0,
            source: Box::new(ProofError::Malformed(e.to_string())),
        })?;
        let segments: Vec<usize> = tw.witnesses.iter().map(super::segments_of).collect();
        if segments.iter().sum::<usize>() <= max_updates {
            return Ok(vec![Self {
                pre_root: tw.pre_root,
                diff,
                witnesses: tw.witnesses,
                padding: tw.padding,
                block_number: tw.block_number,
                sponge_start: SpongeState::header(),
            }]);
        }
        let mut root = tw.pre_root;
        let mut sponge = SpongeState::header();
        let mut chunks = Vec::new();
        // Greedy runs of consecutive updates within the segment budget.
        let mut parts: Vec<&[UpdateWitness]> = Vec::new();
        let (mut start, mut used) = (0, 0);
        for (i, &n) in segments.iter().enumerate() {
            if used + n > max_updates && i > start {
                parts.push(&tw.witnesses[start..i]);
                (start, used) = (i, 0);
            }
            used += n;
        }
        parts.push(&tw.witnesses[start..]);
        let mut first = 0;
        for part in parts {
            let updates: Vec<proofbox_state::Update> = part
                .iter()
                .map(|w| proofbox_state::Update {
                    key: w.key,
                    value: w.new_value,
                })
                .collect();
            let d = Diff::new(updates.iter().copied())
                .expect("a slice of a canonical diff is a canonical diff");
            let post = proofbox_state::check_transition(&root, &d, part).map_err(|e| match e {
                ProofError::WitnessRoot { index } => ProofError::WitnessRoot {
                    index: first + index,
                },
                ProofError::WitnessShape { index, source } => ProofError::WitnessShape {
                    index: first + index,
                    source,
                },
                e => e,
            })?;
            let last = part.last().expect("chunks are not empty");
            let absent = last.new_value.is_none();
            let padding = UpdateWitness {
                key: last.key,
                old_value: last.new_value,
                new_value: last.new_value,
                proof: proofbox_state::StateProof {
                    siblings: last.proof.siblings.clone(),
                    neighbor: last.proof.neighbor.filter(|_| absent),
                },
                deep_children: last.deep_children.filter(|_| absent),
            };
            let next = sponge.absorb(d.updates());
            chunks.push(Self {
                pre_root: root,
                diff: d,
                witnesses: part.to_vec(),
                padding,
                block_number: tw.block_number,
                sponge_start: sponge,
            });
            sponge = next;
            root = post;
            first += part.len();
        }
        Ok(chunks)
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

    /// Segments of the trace: one per 31 levels of each update's path (at least one),
    /// padded to a power of two.
    pub fn segments(&self) -> usize {
        self.layout().iter().map(|u| u.2).sum()
    }

    /// log2 of the trace height.
    pub fn log_rows(&self) -> u8 {
        LOG_ROWS_PER_SEGMENT + self.segments().trailing_zeros() as u8
    }

    /// The execution trace, with `extra_capacity_bits` of spare capacity for the LDE.
    /// The witnesses are not checked here (see [`TransitionInput::statement`]): a
    /// wrong witness gives a trace that violates a constraint.
    pub fn trace(&self, extra_capacity_bits: usize) -> RowMajorMatrix<F> {
        self.trace_with(extra_capacity_bits, None)
    }

    /// The trace with update `update` walking `path` instead of its key's path: for
    /// the test that a non-canonical decomposition of a key digest is rejected.
    #[doc(hidden)]
    pub fn trace_with_path(&self, update: usize, path: Path) -> RowMajorMatrix<F> {
        self.trace_with(0, Some((update, path)))
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
