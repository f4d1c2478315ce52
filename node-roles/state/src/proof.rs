//! Inclusion and exclusion proofs, verified from the root alone, and the walk up a
//! key's path that they, the update witnesses and the state-transition circuit share.

use serde::{Deserialize, Serialize};

use crate::encoding::{StateKey, StateValue, leaf_digest};
use crate::error::ProofError;
use crate::hash::{EMPTY, compress, is_empty};
use crate::path::Path;
use crate::{DEPTH, Digest};

/// A lone leaf that is a path's deepest sibling, given by its key and value so that a
/// verifier sees it is a leaf (and where it sits), not an internal node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Neighbor {
    pub key: StateKey,
    pub value: StateValue,
}

impl Neighbor {
    /// The neighbor's leaf digest and path.
    pub fn leaf(&self) -> (Digest, Path) {
        let d = self.key.digest();
        (leaf_digest(&d, &self.value), Path::from_digest(&d))
    }
}

/// A Merkle proof for one key: the siblings of the nodes on the key's path, from the
/// root down to the deepest one that is not empty.
///
/// `siblings[l]` is the other child of the path's node at depth `l`; `None` stands
/// for an empty subtree (never written out: a proof that writes the empty digest out
/// is rejected). The last entry is never `None`, so a proof has one length; it is `0`
/// only in a tree of at most one key. `neighbor` gives the deepest sibling's key and
/// value when that sibling is a lone leaf and the key is absent: then the key's leaf
/// position is where that leaf would be pushed down to (see [`walk`]). The same type
/// proves inclusion (the key's leaf is at the end of the path) and exclusion (the end
/// of the path is empty).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StateProof {
    pub siblings: Vec<Option<Digest>>,
    pub neighbor: Option<Neighbor>,
}

/// What a subtree holds, as far as the walk up a path needs to know: nothing, one leaf,
/// or two leaves or more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Occupancy {
    Empty,
    Lone,
    Many,
}

/// One level of [`walk`]: the node on the path (its digest and occupancy) and its
/// sibling give their parent. An empty side is left out (the parent of one lone leaf
/// and an empty subtree is that leaf, at any depth); two empty sides give an empty
/// parent; anything else is the compression of left and right.
#[inline]
pub fn combine(
    node: Digest,
    occ: Occupancy,
    sibling: Digest,
    sibling_occ: Occupancy,
    right: bool,
) -> (Digest, Occupancy) {
    use Occupancy::*;
    match (occ, sibling_occ) {
        (Empty, Empty) => (EMPTY, Empty),
        (Lone, Empty) => (node, Lone),
        (Empty, Lone) => (sibling, Lone),
        _ => {
            let d = if right {
                compress(sibling, node)
            } else {
                compress(node, sibling)
            };
            (d, Many)
        }
    }
}

/// The root reached from `leaf` (the key's leaf digest, `None` if absent) at depth
/// `siblings.len()` of `path`, going up through `siblings`; the deepest sibling is a
/// lone leaf if `lone_last`, every other non-empty sibling holds two leaves or more.
///
/// This is the rule of the tree: a subtree of one leaf has that leaf's digest, so a
/// leaf sits at the shortest prefix of its path that no other key shares.
pub fn walk(
    path: &Path,
    leaf: Option<Digest>,
    siblings: &[Option<Digest>],
    lone_last: bool,
) -> Digest {
    let (mut node, mut occ) = match leaf {
        Some(d) => (d, Occupancy::Lone),
        None => (EMPTY, Occupancy::Empty),
    };
    let deepest = siblings.len().wrapping_sub(1);
    for level in (0..siblings.len()).rev() {
        let (s, s_occ) = match siblings[level] {
            None => (EMPTY, Occupancy::Empty),
            Some(d) if lone_last && level == deepest => (d, Occupancy::Lone),
            Some(d) => (d, Occupancy::Many),
        };
        (node, occ) = combine(node, occ, s, s_occ, path.bit(level));
    }
    node
}

impl StateProof {
    /// The number of siblings that are not empty.
    pub fn non_empty(&self) -> usize {
        self.siblings.iter().filter(|s| s.is_some()).count()
    }

    /// The shape checks shared by proofs and update witnesses: at most [`DEPTH`]
    /// levels, no empty digest written out, a deepest sibling present, and a neighbor
    /// that is that sibling and splits from `path` exactly there.
    pub(crate) fn check_shape(&self, path: &Path) -> Result<(), ProofError> {
        let len = self.siblings.len();
        if len > DEPTH {
            return Err(ProofError::TooLong {
                max: DEPTH,
                got: len,
            });
        }
        for (level, s) in self.siblings.iter().enumerate() {
            if s.as_ref().is_some_and(is_empty) {
                return Err(ProofError::NonCanonical { level });
            }
        }
        if len > 0 && self.siblings[len - 1].is_none() {
            return Err(ProofError::NonCanonical { level: len - 1 });
        }
        if let Some(n) = &self.neighbor {
            let (leaf, other) = n.leaf();
            if len == 0
                || self.siblings[len - 1] != Some(leaf)
                || other.common_prefix(path) != len - 1
            {
                return Err(ProofError::NeighborMismatch);
            }
        }
        Ok(())
    }

    /// The root this proof leads to if `key` holds `value` (`None`: absent).
    pub fn compute_root(
        &self,
        key: &StateKey,
        value: Option<&StateValue>,
    ) -> Result<Digest, ProofError> {
        let key_digest = key.digest();
        let leaf = match value {
            Some(v) => {
                if v.kind() != key.kind() {
                    return Err(ProofError::KindMismatch {
                        key: *key,
                        expected: key.kind(),
                        got: v.kind(),
                    });
                }
                if self.neighbor.is_some() {
                    // A present key's walk never needs to know its sibling is a leaf.
                    return Err(ProofError::NonCanonical {
                        level: self.siblings.len().saturating_sub(1),
                    });
                }
                Some(leaf_digest(&key_digest, v))
            }
            None => None,
        };
        self.root_from_leaf(&Path::from_digest(&key_digest), leaf)
    }

    /// The root from a leaf digest (`None`: empty) at the end of `path`, after the
    /// shape checks.
    pub fn root_from_leaf(&self, path: &Path, leaf: Option<Digest>) -> Result<Digest, ProofError> {
        self.check_shape(path)?;
        Ok(walk(path, leaf, &self.siblings, self.neighbor.is_some()))
    }

    /// Checks that, under `root`, `key` holds `value` (`Some`) or is absent (`None`).
    pub fn verify(
        &self,
        root: &Digest,
        key: &StateKey,
        value: Option<&StateValue>,
    ) -> Result<(), ProofError> {
        if self.compute_root(key, value)? == *root {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        }
    }
}

/// Checks that `key` holds `value` under `root`.
pub fn verify_inclusion(
    root: &Digest,
    key: &StateKey,
    value: &StateValue,
    proof: &StateProof,
) -> Result<(), ProofError> {
    proof.verify(root, key, Some(value))
}

/// Checks that `key` is absent under `root`.
pub fn verify_exclusion(
    root: &Digest,
    key: &StateKey,
    proof: &StateProof,
) -> Result<(), ProofError> {
    proof.verify(root, key, None)
}
