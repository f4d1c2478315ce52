//! What a node sends a prover for one diff: the pre-state root, the block number, one
//! [`UpdateWitness`] per update and a padding witness, in a compact, versioned
//! encoding that carries only the siblings on each path, each distinct digest once.
//!
//! Encoding, version 1 (`docs/state.md`, "Transition witnesses"): the 4 bytes `PBTW`,
//! the version as a little-endian `u16`, then the postcard encoding of
//! `{ pre_root, block_number, digests, updates, padding }`: digests as 32 bytes (8
//! canonical elements, little-endian `u32`s); `digests` the distinct sibling and child
//! digests in order of first use; each update `{ key, old, new, siblings, neighbor,
//! deep_children }` with `siblings` one varint per level, `0` for an empty sibling and
//! `i + 1` for `digests[i]`, and `deep_children` two indices into `digests`. The diff
//! is the updates' keys and new values; decoding rebuilds it and refuses witnesses
//! out of canonical order.

use std::collections::HashMap;

use p3_field::{PrimeCharacteristicRing, PrimeField32};
use serde::{Deserialize, Serialize};

use crate::diff::{Diff, Update, UpdateWitness};
use crate::encoding::{StateKey, StateValue};
use crate::proof::{Neighbor, StateProof};
use crate::{DEPTH, Digest, F, StateTree};

/// The magic bytes that open an encoded [`TransitionWitness`].
pub const MAGIC: [u8; 4] = *b"PBTW";
/// The encoding's version.
pub const VERSION: u16 = 1;

/// A diff's witnesses, as a node hands them to a prover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitionWitness {
    pub pre_root: Digest,
    pub block_number: u64,
    /// One per update, in the diff's canonical order.
    pub witnesses: Vec<UpdateWitness>,
    /// A key written back with the value it has after the diff.
    pub padding: UpdateWitness,
}

/// Why bytes are not an encoded [`TransitionWitness`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WitnessDecodeError {
    #[error("not a transition witness (bad magic bytes)")]
    Magic,
    #[error("transition witness version {0} is not supported (this build reads {VERSION})")]
    Version(u16),
    #[error("malformed transition witness: {0}")]
    Malformed(String),
    #[error("digest {index} has an element not below the field's modulus")]
    NonCanonical { index: usize },
    #[error("update {update}: sibling reference {reference} is not one of the {count} digests")]
    BadReference {
        update: usize,
        reference: u32,
        count: usize,
    },
    #[error("update {update}: {levels} levels, more than the tree's {DEPTH}")]
    TooDeep { update: usize, levels: usize },
    #[error("update {update} is out of canonical order, or its key repeats: {reason}")]
    Order { update: usize, reason: String },
}

#[derive(Serialize, Deserialize)]
struct Body {
    pre_root: [u8; 32],
    block_number: u64,
    digests: Vec<[u8; 32]>,
    updates: Vec<Compact>,
    padding: Compact,
}

#[derive(Serialize, Deserialize)]
struct Compact {
    key: StateKey,
    old: Option<StateValue>,
    new: Option<StateValue>,
    siblings: Vec<u32>,
    neighbor: Option<Neighbor>,
    deep_children: Option<[u32; 2]>,
}

fn to_bytes(d: &Digest) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, e) in d.iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&e.as_canonical_u32().to_le_bytes());
    }
    out
}

fn from_bytes(b: &[u8; 32]) -> Option<Digest> {
    let mut d = [F::ZERO; 8];
    for (i, e) in d.iter_mut().enumerate() {
        let x = u32::from_le_bytes(b[4 * i..4 * i + 4].try_into().expect("4 bytes"));
        if x >= F::ORDER_U32 {
            return None;
        }
        *e = F::from_u32(x);
    }
    Some(d)
}

#[derive(Default)]
struct Table {
    index: HashMap<[u8; 32], u32>,
    digests: Vec<[u8; 32]>,
}

impl Table {
    fn reference(&mut self, d: &Digest) -> u32 {
        let b = to_bytes(d);
        let next = self.digests.len() as u32;
        let i = *self.index.entry(b).or_insert_with(|| {
            self.digests.push(b);
            next
        });
        i + 1
    }

    fn compact(&mut self, w: &UpdateWitness) -> Compact {
        Compact {
            key: w.key,
            old: w.old_value,
            new: w.new_value,
            siblings: w
                .proof
                .siblings
                .iter()
                .map(|s| s.as_ref().map_or(0, |d| self.reference(d)))
                .collect(),
            neighbor: w.proof.neighbor,
            deep_children: w
                .deep_children
                .map(|[l, r]| [self.reference(&l) - 1, self.reference(&r) - 1]),
        }
    }
}

fn expand(
    c: Compact,
    digests: &[Digest],
    update: usize,
) -> Result<UpdateWitness, WitnessDecodeError> {
    if c.siblings.len() > DEPTH {
        return Err(WitnessDecodeError::TooDeep {
            update,
            levels: c.siblings.len(),
        });
    }
    let get = |reference: u32| {
        digests
            .get(reference as usize)
            .copied()
            .ok_or(WitnessDecodeError::BadReference {
                update,
                reference,
                count: digests.len(),
            })
    };
    let siblings = c
        .siblings
        .iter()
        .map(|&r| {
            if r == 0 {
                Ok(None)
            } else {
                get(r - 1).map(Some)
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let deep_children = match c.deep_children {
        Some([l, r]) => Some([get(l)?, get(r)?]),
        None => None,
    };
    Ok(UpdateWitness {
        key: c.key,
        old_value: c.old,
        new_value: c.new,
        proof: StateProof {
            siblings,
            neighbor: c.neighbor,
        },
        deep_children,
    })
}

impl TransitionWitness {
    /// The diff the witnesses apply: their keys and new values, in canonical form.
    pub fn diff(&self) -> Result<Diff, crate::StateError> {
        Diff::new(self.witnesses.iter().map(|w| Update {
            key: w.key,
            value: w.new_value,
        }))
    }

    /// The versioned encoding (module docs).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut table = Table::default();
        let updates = self.witnesses.iter().map(|w| table.compact(w)).collect();
        let padding = table.compact(&self.padding);
        let body = Body {
            pre_root: to_bytes(&self.pre_root),
            block_number: self.block_number,
            digests: table.digests,
            updates,
            padding,
        };
        let mut out = Vec::from(MAGIC);
        out.extend(VERSION.to_le_bytes());
        out.extend(postcard::to_allocvec(&body).expect("postcard encodes a body"));
        out
    }

    /// Decodes [`TransitionWitness::to_bytes`], refusing anything malformed, a digest
    /// element not below `p`, and witnesses out of canonical order. The witnesses
    /// themselves are checked against the roots by whoever proves them.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WitnessDecodeError> {
        if bytes.len() < 6 || bytes[..4] != MAGIC {
            return Err(WitnessDecodeError::Magic);
        }
        let version = u16::from_le_bytes([bytes[4], bytes[5]]);
        if version != VERSION {
            return Err(WitnessDecodeError::Version(version));
        }
        let body: Body = postcard::from_bytes(&bytes[6..])
            .map_err(|e| WitnessDecodeError::Malformed(e.to_string()))?;
        let digests = body
            .digests
            .iter()
            .enumerate()
            .map(|(index, b)| from_bytes(b).ok_or(WitnessDecodeError::NonCanonical { index }))
            .collect::<Result<Vec<_>, _>>()?;
        let pre_root = from_bytes(&body.pre_root)
            .ok_or_else(|| WitnessDecodeError::Malformed("pre-state root not canonical".into()))?;
        let count = body.updates.len();
        let witnesses = body
            .updates
            .into_iter()
            .enumerate()
            .map(|(i, c)| expand(c, &digests, i))
            .collect::<Result<Vec<_>, _>>()?;
        let padding = expand(body.padding, &digests, count)?;
        let tw = Self {
            pre_root,
            block_number: body.block_number,
            witnesses,
            padding,
        };
        let diff = tw.diff().map_err(|e| WitnessDecodeError::Order {
            update: 0,
            reason: e.to_string(),
        })?;
        if let Some(update) = diff
            .updates()
            .zip(&tw.witnesses)
            .position(|(u, w)| u.key != w.key)
        {
            return Err(WitnessDecodeError::Order {
                update,
                reason: "the witnesses are not in the diff's canonical order".into(),
            });
        }
        Ok(tw)
    }
}

impl StateTree {
    /// Applies `diff` and returns what a prover needs for it: its witnesses and the
    /// padding witness of `padding_key` after it.
    pub fn transition_witness(
        &mut self,
        diff: &Diff,
        block_number: u64,
        padding_key: &StateKey,
    ) -> TransitionWitness {
        let pre_root = self.root();
        let witnesses = self.apply_with_witnesses(diff, crate::Parallelism::Parallel);
        TransitionWitness {
            pre_root,
            block_number,
            witnesses,
            padding: self.unchanged_witness(padding_key),
        }
    }
}
