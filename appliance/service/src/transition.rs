//! State-transition jobs with a witness: a diff a node sends as an encoded
//! [`TransitionWitness`] (`PBTW`), proved as a bundle of chained proofs.
//!
//! One place decides how such a job's input becomes chunks ([`chunks`]), so that
//! submission and worker cut the very same chunks: submission decodes and checks every
//! witness natively against `pre_root` and computes the statement ([`prepare`]);
//! the worker rebuilds the chunks, proves them, and checks the verified bundle states
//! what submission stored ([`states`]).

use proofbox_prover::circuits::CircuitId;
use proofbox_prover::circuits::transition::{
    ChunkStatement, DEFAULT_CHUNK_UPDATES, LOG_ROWS_PER_SEGMENT, MAX_UPDATES_PER_PROOF,
    TransitionInput, TransitionStatement, chain, digest_hex,
};
use proofbox_state::{ProofError, StateKey, TransitionWitness, WitnessDecodeError};

use crate::types::TransitionStatementView;

/// The largest witness a state-transition job takes (64 MiB, raw or decoded from
/// `input_base64`); `body_limit_bytes` applies too. Other inputs stay within
/// [`proofbox_prover::circuits::MAX_INPUT_BYTES`].
pub const MAX_WITNESS_BYTES: usize = 64 << 20;

/// `log_rows` of a witness job that gives none: the rows of
/// [`DEFAULT_CHUNK_UPDATES`] segments per proof (2^17).
pub const DEFAULT_LOG_ROWS: u8 =
    LOG_ROWS_PER_SEGMENT + DEFAULT_CHUNK_UPDATES.trailing_zeros() as u8;

/// The smallest and largest `log_rows` of a witness job (one segment per proof, the
/// circuit's largest trace).
pub const MIN_LOG_ROWS: u8 = LOG_ROWS_PER_SEGMENT;
pub const MAX_LOG_ROWS: u8 = CircuitId::StateTransition.max_log_rows();

/// Why a witness cannot be proved.
#[derive(Debug, thiserror::Error)]
pub enum WitnessError {
    /// The bytes are no transition witness.
    #[error("invalid transition witness: {0}")]
    Decode(#[from] WitnessDecodeError),
    /// A witness does not check against the state root before its update; the message
    /// names the update (its index in the diff, and its key).
    #[error("{0}")]
    Rejected(String),
    /// A chunk would be larger than `log_rows` allows (keys whose paths take several
    /// segments).
    #[error("{0}")]
    TooLarge(String),
}

/// A checked witness job: its chunks and what their bundle states.
#[derive(Debug)]
pub struct Prepared {
    pub chunks: Vec<TransitionInput>,
    pub statement: TransitionStatement,
    /// log2 of the rows of the largest chunk's trace.
    pub chunk_log_rows: u8,
}

impl Prepared {
    /// The statement as jobs report it.
    pub fn view(&self) -> TransitionStatementView {
        let s = &self.statement;
        TransitionStatementView {
            pre_root: digest_hex(&s.pre_root),
            post_root: digest_hex(&s.post_root),
            diff_commitment: digest_hex(&s.diff_commitment),
            block_number: s.block_number,
            updates: self.chunks.iter().map(|c| c.diff.len() as u64).sum(),
            chunks: self.chunks.len() as u32,
            rows_per_chunk: 1 << self.chunk_log_rows,
        }
    }
}

/// Segments per chunk for a job of `log_rows` (at least [`MIN_LOG_ROWS`]).
fn max_updates(log_rows: u8) -> usize {
    1 << log_rows.saturating_sub(LOG_ROWS_PER_SEGMENT)
}

/// Decodes `bytes` and cuts the diff into chunks of at most `2^log_rows` rows
/// ([`TransitionInput::chunks_from_witness`]); the witnesses of a diff of several
/// chunks are checked on the way. What submission and worker both do.
pub fn chunks(bytes: &[u8], log_rows: u8) -> Result<Vec<TransitionInput>, WitnessError> {
    let tw = TransitionWitness::from_bytes(bytes)?;
    let keys: Vec<StateKey> = tw.witnesses.iter().map(|w| w.key).collect();
    TransitionInput::chunks_from_witness(tw, max_updates(log_rows))
        .map_err(|e| rejected(&e, 0, usize::MAX, &keys, None))
}

/// Decodes and checks a witness job's input: the chunks, every witness checked
/// natively against the root before its update (and each chunk's padding against the
/// root after it), the chunks chained into one diff's transition, each chunk within
/// `2^log_rows` rows and one proof's updates. CPU work: run it off the async runtime.
pub fn prepare(bytes: &[u8], log_rows: u8) -> Result<Prepared, WitnessError> {
    let chunks = chunks(bytes, log_rows)?;
    let mut statements: Vec<ChunkStatement> = Vec::with_capacity(chunks.len());
    let mut first = 0;
    for (i, c) in chunks.iter().enumerate() {
        let keys: Vec<StateKey> = c.witnesses.iter().map(|w| w.key).collect();
        let padding = Some(c.padding.key);
        let s = c
            .chunk_statement()
            .map_err(|e| rejected(&e, first, c.witnesses.len(), &keys, padding))
            .map_err(|e| match (e, chunks.len()) {
                (WitnessError::Rejected(m), n) if n > 1 => {
                    WitnessError::Rejected(format!("chunk {i} of {n}: {m}"))
                }
                (e, _) => e,
            })?;
        let rows = c.log_rows();
        if rows > log_rows || c.diff.len() > MAX_UPDATES_PER_PROOF {
            return Err(WitnessError::TooLarge(format!(
                "updates {first}..{} of the diff take {} updates and 2^{rows} rows in one \
                 proof, more than log_rows {log_rows} allows ({} segments of 32 rows, at most \
                 {MAX_UPDATES_PER_PROOF} updates): keys whose paths take several segments \
                 need a larger log_rows",
                first + c.diff.len(),
                c.diff.len(),
                max_updates(log_rows)
            )));
        }
        statements.push(s);
        first += c.witnesses.len();
    }
    let statement = chain(&statements).map_err(|e| WitnessError::Rejected(e.to_string()))?;
    let chunk_log_rows = chunks
        .iter()
        .map(TransitionInput::log_rows)
        .max()
        .unwrap_or(0);
    Ok(Prepared {
        chunks,
        statement,
        chunk_log_rows,
    })
}

/// A digest as jobs show it ([`digest_hex`]).
pub fn hex(d: &proofbox_prover::circuits::transition::Digest) -> String {
    digest_hex(d)
}

/// Whether `statement` (a verified bundle's) is the one `view` (stored at
/// submission) names.
pub fn states(view: &TransitionStatementView, statement: &TransitionStatement) -> bool {
    view.pre_root == digest_hex(&statement.pre_root)
        && view.post_root == digest_hex(&statement.post_root)
        && view.diff_commitment == digest_hex(&statement.diff_commitment)
        && view.block_number == statement.block_number
}

/// A witness error naming its update: `index` counts from `first` in the diff;
/// `index == len` is the padding witness (of key `padding`, when the sender gave it).
fn rejected(
    e: &ProofError,
    first: usize,
    len: usize,
    keys: &[StateKey],
    padding: Option<StateKey>,
) -> WitnessError {
    let (index, reason) = match e {
        ProofError::WitnessRoot { index } => (
            *index,
            "its old value and siblings do not lead to the state root before it \
             (pre_root, after the diff's earlier updates)"
                .to_string(),
        ),
        ProofError::WitnessMismatch { index } => (
            *index,
            "it is not for the diff's update (key or new value differ)".to_string(),
        ),
        ProofError::WitnessShape { index, source } => (*index, source.to_string()),
        e => return WitnessError::Rejected(format!("the transition witness is wrong: {e}")),
    };
    if index == len {
        let key = padding.map(|k| format!(" (key {k:?})")).unwrap_or_default();
        return WitnessError::Rejected(format!(
            "the padding witness{key} is wrong: it must write a key's value back, with \
             that key's siblings after the diff"
        ));
    }
    let key = keys
        .get(index)
        .map(|k| format!(" (key {k:?})"))
        .unwrap_or_default();
    WitnessError::Rejected(format!(
        "update {} of the diff{key}: its witness is wrong: {reason}",
        first + index
    ))
}
