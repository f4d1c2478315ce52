//! A proven batch of blocks as the sequencer publishes it: which blocks, what the
//! state-transition proof states about them, and the proof itself.

use alloy_primitives::Bytes;
use serde::{Deserialize, Serialize};

use crate::Root;

/// One state-transition proof of consecutive blocks `first_block..=last_block`: the net
/// diff of those blocks ([`crate::net_diff`]) takes the state from `pre_root` (the
/// post-state root of block `first_block - 1`) to `post_root` (that of `last_block`),
/// and commits to `diff_commitment`.
///
/// Nothing here is to be believed before the bundle is verified: a follower verifies
/// `bundle` (`proofbox_verifier::Verifier::verify_bundle`, under its own security
/// floor), checks that the statement it proves is the one written here, and that the
/// diffs it holds for these blocks have this net commitment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvenBatch {
    /// Batches are numbered from 0 in block order, with no gap.
    pub index: u64,
    pub first_block: u64,
    pub last_block: u64,
    pub pre_root: Root,
    pub post_root: Root,
    pub diff_commitment: Root,
    /// Updates in the net diff.
    pub updates: u64,
    /// The proof: a state-transition bundle (`docs/proof-format.md`).
    pub bundle: Bytes,
    /// Where it was proved, as the appliance reported it (informational, untrusted).
    pub proved_by: Option<String>,
}

impl ProvenBatch {
    /// Whether `block` is one of this batch's blocks.
    pub fn covers(&self, block: u64) -> bool {
        (self.first_block..=self.last_block).contains(&block)
    }
}
