//! State diffs: their canonical order and encoding, their Poseidon2 commitment, and the
//! per-update witnesses a state-transition proof is built from.

use alloy_primitives::U256;
use p3_field::PrimeCharacteristicRing;
use serde::{Deserialize, Serialize};

use crate::encoding::{StateKey, StateValue, Tag, leaf_digest};
use crate::error::{ProofError, StateError};
use crate::hash::{compress, hash};
use crate::path::Path;
use crate::proof::{StateProof, walk};
use crate::{Digest, F};

/// Below this many updates, work is not split across threads.
pub(crate) const PARALLEL_MIN: usize = 64;

/// Elements of a diff's header block.
pub const DIFF_HEADER_LEN: usize = 16;
/// Elements of one update's record in a diff's encoding (4 blocks).
pub const DIFF_RECORD_LEN: usize = 64;

/// One update's record in [`Diff::encode`].
pub fn record(u: &Update) -> [F; DIFF_RECORD_LEN] {
    let mut r = [F::ZERO; DIFF_RECORD_LEN];
    r[..27].copy_from_slice(&u.key.fields());
    if let Some(v) = &u.value {
        r[27] = F::ONE;
        r[28..].copy_from_slice(&v.to_slots());
    }
    r
}

/// One write to the state: a new value for `key`, or `None` to delete it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Update {
    pub key: StateKey,
    pub value: Option<StateValue>,
}

impl Update {
    pub fn set(key: StateKey, value: StateValue) -> Self {
        Self {
            key,
            value: Some(value),
        }
    }

    pub fn delete(key: StateKey) -> Self {
        Self { key, value: None }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub path: Path,
    pub update: Update,
}

/// A set of updates in canonical form: at most one update per key, a storage write of
/// zero turned into a deletion (an EVM slot holding zero is an absent slot, so the
/// state has one representation), sorted by the keys' tree paths (left to right).
///
/// Built only through [`Diff::new`] (deserialization goes through it too), so every
/// `Diff` is canonical: the same set of updates, in any input order, gives the same
/// `Diff`, the same [`Diff::encode`] and the same [`Diff::commitment`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "Vec<Update>", into = "Vec<Update>")]
pub struct Diff {
    entries: Vec<Entry>,
}

impl Diff {
    /// Canonicalizes `updates`. Fails on a value of the wrong kind for its key, on a
    /// key given twice, and on two keys with one digest (a Poseidon2 collision).
    pub fn new(updates: impl IntoIterator<Item = Update>) -> Result<Self, StateError> {
        let updates: Vec<Update> = updates.into_iter().collect();
        let check = |u: &Update| -> Result<Update, StateError> {
            let value = match u.value {
                Some(v) if v.kind() != u.key.kind() => {
                    return Err(StateError::KindMismatch {
                        key: u.key,
                        expected: u.key.kind(),
                        got: v.kind(),
                    });
                }
                Some(StateValue::Storage(x)) if x == U256::ZERO => None,
                v => v,
            };
            Ok(Update { key: u.key, value })
        };
        let updates: Vec<Update> = updates.iter().map(check).collect::<Result<_, _>>()?;
        let keys: Vec<StateKey> = updates.iter().map(|u| u.key).collect();
        let digests = crate::encoding::key_digests(&keys, updates.len() >= PARALLEL_MIN);
        let mut entries: Vec<Entry> = updates
            .into_iter()
            .zip(digests)
            .map(|(update, d)| Entry {
                path: Path::from_digest(&d),
                update,
            })
            .collect();
        entries.sort_unstable_by_key(|e| e.path);
        for w in entries.windows(2) {
            if w[0].path == w[1].path {
                return Err(if w[0].update.key == w[1].update.key {
                    StateError::DuplicateKey {
                        key: w[0].update.key,
                    }
                } else {
                    StateError::PathCollision {
                        first: w[0].update.key,
                        second: w[1].update.key,
                    }
                });
            }
        }
        Ok(Self { entries })
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The updates in canonical order.
    pub fn updates(&self) -> impl ExactSizeIterator<Item = &Update> + DoubleEndedIterator {
        self.entries.iter().map(|e| &e.update)
    }

    pub(crate) fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The canonical encoding as field elements, whole 16-element blocks:
    ///
    /// `[5 (diff tag), 0(15)]`, then one record of 64 elements (4 blocks) per update
    /// in canonical order: `[key tag, address(10), slot(16), present, value slots(36)]`
    /// with the slot zero for an account, `present` 1 for a write and 0 for a
    /// deletion, and the value slots as in a leaf ([`StateValue::to_slots`]; zeros for
    /// a deletion). Every record starts with a key tag (1 or 2) and has one length, so
    /// the encoding parses uniquely and its length gives the number of updates.
    pub fn encode(&self) -> Vec<F> {
        let mut m = Vec::with_capacity(DIFF_HEADER_LEN + DIFF_RECORD_LEN * self.entries.len());
        m.push(Tag::Diff.element());
        m.resize(DIFF_HEADER_LEN, F::ZERO);
        for e in &self.entries {
            m.extend(record(&e.update));
        }
        m
    }

    /// The diff commitment: the Poseidon2 sponge (the project's leaf hasher) of
    /// [`Diff::encode`]. Anyone holding the diff recomputes it.
    pub fn commitment(&self) -> Digest {
        hash(&self.encode())
    }
}

impl TryFrom<Vec<Update>> for Diff {
    type Error = StateError;
    fn try_from(updates: Vec<Update>) -> Result<Self, Self::Error> {
        Diff::new(updates)
    }
}

impl From<Diff> for Vec<Update> {
    fn from(d: Diff) -> Self {
        d.entries.into_iter().map(|e| e.update).collect()
    }
}

/// What a state-transition proof needs for one update of a diff: the key, its value
/// before and after, and its siblings in the tree as it stands when this update is
/// applied, the updates before it in canonical order already applied.
///
/// The old and the new leaf share the siblings: the proof walks both up the same
/// path ([`crate::proof::walk`]), the old one must reach the root before the update and
/// the new one gives the root after it. The proof's `neighbor` is set when the deepest
/// sibling is a lone leaf and the key is absent before or after: an insert next to a
/// lone leaf pushes that leaf down to where the two paths split, and a deletion
/// leaves it alone to float up. Otherwise, when the key is absent before or after and
/// the path has a sibling, `deep_children` gives the deepest sibling's two children:
/// it shows that sibling is a branch (a compression), not a lone leaf that a deletion
/// would have to float up. Together they make every walk's reading of its deepest
/// sibling checked, not claimed.
///
/// Applying the witnesses of a diff one after another carries the pre-state root to
/// the post-state root ([`check_transition`]); the circuit checks the same steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateWitness {
    pub key: StateKey,
    pub old_value: Option<StateValue>,
    pub new_value: Option<StateValue>,
    pub proof: StateProof,
    pub deep_children: Option<[Digest; 2]>,
}

impl UpdateWitness {
    /// Checks the old leaf and siblings against `root_before` and returns the root
    /// with the new leaf in its place.
    pub fn apply(&self, root_before: &Digest) -> Result<Digest, ProofError> {
        let key_digest = self.key.digest();
        let path = Path::from_digest(&key_digest);
        let leaf = |v: &Option<StateValue>| -> Result<Option<Digest>, ProofError> {
            match v {
                Some(v) if v.kind() != self.key.kind() => Err(ProofError::KindMismatch {
                    key: self.key,
                    expected: self.key.kind(),
                    got: v.kind(),
                }),
                Some(v) => Ok(Some(leaf_digest(&key_digest, v))),
                None => Ok(None),
            }
        };
        let (old, new) = (leaf(&self.old_value)?, leaf(&self.new_value)?);
        self.proof.check_shape(&path)?;
        if self.proof.neighbor.is_some() && old.is_some() && new.is_some() {
            return Err(ProofError::NonCanonical {
                level: self.proof.siblings.len() - 1,
            });
        }
        let lone = self.proof.neighbor.is_some();
        let deepest = self.proof.siblings.last().copied().flatten();
        let needs_kind = (old.is_none() || new.is_none()) && deepest.is_some() && !lone;
        match (needs_kind, self.deep_children) {
            (false, None) => {}
            (true, Some([l, r])) if Some(compress(l, r)) == deepest => {}
            _ => return Err(ProofError::DeepChildren),
        }
        if walk(&path, old, &self.proof.siblings, lone) != *root_before {
            return Err(ProofError::RootMismatch);
        }
        Ok(walk(&path, new, &self.proof.siblings, lone))
    }
}

/// The statement of the state-transition proof, checked natively: the witnesses are
/// exactly the diff's updates in canonical order, each one's old leaf and siblings lead
/// to the root before it (starting at `pre_root`), and the returned root is the
/// post-state root.
pub fn check_transition(
    pre_root: &Digest,
    diff: &Diff,
    witnesses: &[UpdateWitness],
) -> Result<Digest, ProofError> {
    if witnesses.len() != diff.len() {
        return Err(ProofError::WitnessCount {
            expected: diff.len(),
            got: witnesses.len(),
        });
    }
    let mut root = *pre_root;
    for (index, (u, w)) in diff.updates().zip(witnesses).enumerate() {
        if u.key != w.key || u.value != w.new_value {
            return Err(ProofError::WitnessMismatch { index });
        }
        root = match w.apply(&root) {
            Ok(r) => r,
            Err(ProofError::RootMismatch) => return Err(ProofError::WitnessRoot { index }),
            Err(e) => {
                return Err(ProofError::WitnessShape {
                    index,
                    source: Box::new(e),
                });
            }
        };
    }
    Ok(root)
}
