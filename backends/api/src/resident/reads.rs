//! The host side of [`ResidentBackend::read_openings`](super::ResidentBackend::read_openings):
//! the requests, their checks and word offsets, and the answers assembled from the
//! words a device brought back in one copy.

use super::{ResidentField, ResidentMatrix, check_nodes, check_rows, split_rows};
use crate::{BackendError, DIGEST_ELEMS, Digest, readback};

/// One matrix's share of [`ResidentBackend::read_openings`](super::ResidentBackend::read_openings): rows (any order,
/// repeats allowed) and tree nodes (`(layer, index)`, as
/// [`ResidentBackend::read_nodes`](super::ResidentBackend::read_nodes) takes them; none for a matrix without a tree).
pub struct OpeningRead<'a, M> {
    pub matrix: &'a M,
    pub rows: &'a [usize],
    pub nodes: &'a [(usize, usize)],
}

/// What [`ResidentBackend::read_openings`](super::ResidentBackend::read_openings) brings back for one [`OpeningRead`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenedRead<F> {
    /// The rows, in the order asked.
    pub rows: Vec<Vec<F>>,
    /// The nodes' digests, in the order asked.
    pub nodes: Vec<Digest<F>>,
}

/// One read's word offsets: its rows', then its nodes' digests'.
pub type ReadStarts = (Vec<usize>, Vec<usize>);

/// Checks every read against its matrix and gives, per read, the word offsets of its
/// rows (`row * width`) and of its nodes' digests (in the layer layout, `DIGEST_ELEMS`
/// words each): what a device gathers.
pub fn opening_starts<M: ResidentMatrix>(
    reads: &[OpeningRead<'_, M>],
) -> Result<Vec<ReadStarts>, BackendError> {
    reads
        .iter()
        .map(|r| {
            let m = r.matrix;
            check_rows(m.height(), r.rows)?;
            let positions = check_nodes(m.height(), m.has_tree(), r.nodes)?;
            Ok((
                r.rows.iter().map(|&i| i * m.width()).collect(),
                positions.iter().map(|&p| p * DIGEST_ELEMS).collect(),
            ))
        })
        .collect()
}

/// The answers to `reads` from the words a device brought back: for each read, its
/// rows' words, then (for a matrix with a tree) its digests' words, in order.
pub fn opened_reads<F: ResidentField, M: ResidentMatrix>(
    device: &str,
    reads: &[OpeningRead<'_, M>],
    mut words: impl Iterator<Item = Vec<u32>>,
) -> Result<Vec<OpenedRead<F>>, BackendError> {
    let mut next = |what: &str| {
        words.next().ok_or_else(|| BackendError::Kernel {
            device: device.into(),
            kernel: "read_openings".into(),
            message: format!("no words came back for {what}"),
        })
    };
    reads
        .iter()
        .map(|r| {
            let m = r.matrix;
            let rows: Vec<F> = readback::elems(device, "read_openings", next("rows")?)?;
            let nodes: Vec<Digest<F>> = if m.has_tree() {
                readback::digests(device, "read_openings", next("nodes")?)?
            } else {
                Vec::new()
            };
            Ok(OpenedRead {
                rows: split_rows(rows, m.width(), r.rows.len()),
                nodes,
            })
        })
        .collect()
}
