//! Inclusion and exclusion proofs, verified from the root alone.

use serde::{Deserialize, Serialize};

use crate::encoding::{StateKey, StateValue, leaf_digest};
use crate::error::ProofError;
use crate::hash::{EMPTY_LEAF, compress, default_digest};
use crate::path::Path;
use crate::{DEPTH, Digest};

/// A Merkle proof for one key: the sibling of every node on the key's path.
///
/// `siblings[l]` is the other child of the path's node at depth `l`, i.e. the sibling
/// of the path's node at depth `l + 1`; `None` stands for the default digest of an
/// empty subtree at depth `l + 1`, which is never written out (a proof that writes it
/// out is rejected, so every proof has exactly one form). The same type proves
/// inclusion (the leaf holds a value) and exclusion (the leaf position is empty):
/// which one is a matter of what the verifier is asked to check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateProof {
    pub siblings: Vec<Option<Digest>>,
}

impl StateProof {
    /// The number of siblings that are not default digests.
    pub fn non_default(&self) -> usize {
        self.siblings.iter().filter(|s| s.is_some()).count()
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
                leaf_digest(&key_digest, v)
            }
            None => EMPTY_LEAF,
        };
        self.root_from_leaf(&Path::from_digest(&key_digest), leaf)
    }

    /// The root from a leaf digest at `path`, after the shape checks.
    pub fn root_from_leaf(&self, path: &Path, leaf: Digest) -> Result<Digest, ProofError> {
        if self.siblings.len() != DEPTH {
            return Err(ProofError::WrongLength {
                expected: DEPTH,
                got: self.siblings.len(),
            });
        }
        let mut node = leaf;
        for level in (0..DEPTH).rev() {
            let sibling = match self.siblings[level] {
                Some(d) if d == default_digest(level + 1) => {
                    return Err(ProofError::NonCanonical { level });
                }
                Some(d) => d,
                None => default_digest(level + 1),
            };
            node = if path.bit(level) {
                compress(sibling, node)
            } else {
                compress(node, sibling)
            };
        }
        Ok(node)
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
