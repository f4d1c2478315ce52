//! The state tree: a sparse Merkle tree over key paths in which a leaf sits at the
//! shortest prefix of its path that no other key shares.
//!
//! The digest of a subtree depends only on the keys and values under it:
//! - no key: the empty digest ([`EMPTY`], all zeros);
//! - one key: that key's leaf digest, whatever the depth (a lone leaf is not hashed
//!   up a chain of empty siblings);
//! - two keys or more: the compression of its two children's digests.
//!
//! So an update hashes the nodes on its path down to where its key is told apart
//! from every other key, about `log2(N)` of them for `N` random keys. Two kinds of
//! node are kept:
//! - a **branch**: a node whose subtree holds two or more leaves, with its digest;
//! - a **single**: the highest node whose subtree holds exactly one leaf (a child of a
//!   branch, or the root), with that leaf's path and digest.
//!
//! Each branch's two children (empty, branch or single) are stored together in one
//! map entry keyed by the branch, and the root on its own: one lookup at random in
//! memory per level reads a node and its sibling.
//!
//! A batch update settles the new structure first (splitting subtrees across cores),
//! then hashes each new branch once, level by level from the deepest, each level's
//! compressions packed into the SIMD lanes of Plonky3's packed field and spread over
//! the cores (the levels a batch shares are hashed once); leaf and key digests are
//! hashed the same way. `docs/state.md` has the layout and
//! the soundness argument.

use std::sync::atomic::{AtomicU32, Ordering};

use rayon::prelude::*;

use crate::diff::{Diff, Entry, PARALLEL_MIN, UpdateWitness};
use crate::encoding::{StateKey, StateValue};
use crate::hash::{EMPTY, compress_many};
use crate::path::{NodeId, Path};
use crate::proof::{Neighbor, StateProof};
use crate::store::{Branches, Map};
use crate::{DEPTH, Digest};

/// Whether a batch update may split its work across threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Parallelism {
    /// Everything on the calling thread.
    Sequential,
    /// Subtrees with enough updates are rebuilt on rayon's pool (`rayon::join`).
    #[default]
    Parallel,
}

/// A key and its value (the leaf's digest is kept by its single).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Leaf {
    pub key: StateKey,
    pub value: StateValue,
}

/// A stored child of a branch, or the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Node {
    #[default]
    Empty,
    Branch(Digest),
    Single {
        path: Path,
        leaf: Digest,
    },
}

/// A subtree: a stored node, the empty subtree, or (while a batch is applied) a new
/// branch whose digest is still to be hashed: entry `index` of the pending list of
/// part `part` of the batch's build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sub {
    Empty,
    Single { path: Path, leaf: Digest },
    Branch(Digest),
    Pending { part: u32, index: u32 },
}

impl Sub {
    /// The digest of a subtree that is not pending.
    fn digest(&self) -> Digest {
        match *self {
            Sub::Empty => EMPTY,
            Sub::Single { leaf, .. } => leaf,
            Sub::Branch(d) => d,
            Sub::Pending { .. } => unreachable!("a pending branch's digest is read once hashed"),
        }
    }

    /// The digest, with the pending ones read from `hashed`.
    fn resolve(&self, hashed: &Hashed) -> Digest {
        match *self {
            Sub::Pending { part, index } => hashed.get(part, index),
            s => s.digest(),
        }
    }

    /// The stored node, with the pending ones read from `hashed`.
    fn node(&self, hashed: &Hashed) -> Node {
        match *self {
            Sub::Empty => Node::Empty,
            Sub::Single { path, leaf } => Node::Single { path, leaf },
            Sub::Branch(d) => Node::Branch(d),
            Sub::Pending { part, index } => Node::Branch(hashed.get(part, index)),
        }
    }
}

/// A new branch of a batch: its node and its two children.
#[derive(Debug, Clone, Copy)]
struct Pending {
    depth: u8,
    left: Sub,
    right: Sub,
}

/// What a batch's rebuild produces: the new branches and the changes to the stored
/// branches (their new children, or `None`: no longer a branch), applied once all are
/// hashed. A subtree rebuilt on another thread gets a part of its own (numbered from a
/// shared counter), kept in `parts`, so no part is copied into another.
struct Build {
    part: u32,
    pending: Vec<Pending>,
    changes: Vec<(NodeId, Option<[Sub; 2]>)>,
    parts: Vec<Build>,
}

impl Build {
    fn new(parts: &AtomicU32) -> Self {
        Self {
            part: parts.fetch_add(1, Ordering::Relaxed),
            pending: Vec::new(),
            changes: Vec::new(),
            parts: Vec::new(),
        }
    }

    /// This build and all its parts, in the order of their numbers.
    fn flatten(self) -> Vec<Build> {
        let mut all = Vec::new();
        let mut stack = vec![self];
        while let Some(mut b) = stack.pop() {
            stack.append(&mut b.parts);
            all.push(b);
        }
        all.sort_unstable_by_key(|b| b.part);
        debug_assert!(all.iter().enumerate().all(|(i, b)| b.part as usize == i));
        all
    }
}

/// The digests of a batch's new branches: part `p`'s entry `i` at `offsets[p] + i`.
struct Hashed {
    digests: Vec<Digest>,
    offsets: Vec<usize>,
}

impl Hashed {
    fn get(&self, part: u32, index: u32) -> Digest {
        self.digests[self.offsets[part as usize] + index as usize]
    }
}

impl From<Node> for Sub {
    fn from(n: Node) -> Self {
        match n {
            Node::Empty => Sub::Empty,
            Node::Branch(d) => Sub::Branch(d),
            Node::Single { path, leaf } => Sub::Single { path, leaf },
        }
    }
}

/// A prepared update: path, new leaf digest.
struct Prepared<'a> {
    entry: &'a Entry,
    leaf: Option<Digest>,
}

/// A non-empty sibling on a key's path: its level, digest, and, for the deepest one a
/// walk returns, the key and value of the leaf when it is a lone leaf, or its
/// children's digests when it is a branch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sibling {
    pub level: usize,
    pub digest: Digest,
    pub lone: Option<Neighbor>,
    pub children: Option<[Digest; 2]>,
}

/// The state tree. See the module docs and `docs/state.md`.
#[derive(Debug, Clone, Default)]
pub struct StateTree {
    leaves: Map<Path, Leaf>,
    root: Node,
    /// The two children of every branch, keyed by the branch.
    branches: Branches<[Node; 2]>,
}

impl StateTree {
    /// An empty tree; its root is [`StateTree::empty_root`].
    pub fn new() -> Self {
        Self::default()
    }

    /// The root of the empty tree: the empty digest.
    pub fn empty_root() -> Digest {
        EMPTY
    }

    /// The number of keys present.
    pub fn len(&self) -> usize {
        self.leaves.len()
    }

    pub fn is_empty(&self) -> bool {
        self.leaves.is_empty()
    }

    /// Makes room for `keys` more keys without growing the maps in an update (a map
    /// that grows rehashes everything it holds, once per doubling).
    pub fn reserve(&mut self, keys: usize) {
        self.leaves.reserve(keys);
        // About 1.44 branches per key for random keys (`1 / ln 2`).
        self.branches.reserve(keys + keys / 2);
    }

    /// The number of nodes kept in memory: the branches and the singles (one per key).
    pub fn stored_nodes(&self) -> usize {
        self.branches.len() + self.leaves.len()
    }

    /// Bytes of memory the tree's hash tables take (all their buckets, not just the
    /// entries), for the memory-per-key figures.
    pub fn memory_bytes(&self) -> usize {
        self.leaves.allocation_size() + self.branches.memory_bytes()
    }

    /// The children of the stored branch `id`.
    fn children(&self, id: &NodeId) -> [Node; 2] {
        *self
            .branches
            .get(id)
            .expect("every branch's children are stored")
    }

    /// The state root.
    pub fn root(&self) -> Digest {
        Sub::from(self.root).digest()
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &StateKey) -> Option<StateValue> {
        self.get_at(&Path::from_digest(&key.digest()))
    }

    fn get_at(&self, path: &Path) -> Option<StateValue> {
        self.leaves.get(path).map(|l| l.value)
    }

    /// Every key and value present, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&StateKey, &StateValue)> {
        self.leaves.values().map(|l| (&l.key, &l.value))
    }

    /// The depth at which the leaf of `key` sits (present) or would sit (absent): the
    /// number of levels its proof has.
    pub fn depth_of(&self, key: &StateKey) -> usize {
        self.prove(key).1.siblings.len()
    }

    /// The value of `key` (or its absence) and a proof of it under [`StateTree::root`].
    pub fn prove(&self, key: &StateKey) -> (Option<StateValue>, StateProof) {
        let path = Path::from_digest(&key.digest());
        let value = self.get_at(&path);
        let proof = proof_from(&self.siblings_of(&path, |_| true), value.is_none());
        (value, proof)
    }

    /// A witness of `key` written back with the value it has (present or absent): the
    /// padding of a state-transition proof, which leaves the root as it is.
    pub fn unchanged_witness(&self, key: &StateKey) -> UpdateWitness {
        let path = Path::from_digest(&key.digest());
        let value = self.get_at(&path);
        witness_from(*key, value, value, &self.siblings_of(&path, |_| true))
    }

    /// The non-empty siblings of the nodes on `path` at the levels where `keep(level)`,
    /// by increasing level: the children off the path of every branch on it, and,
    /// where the path ends at another key's lone leaf, that leaf as the sibling at the
    /// level where the two paths split. Only the deepest one carries its lone leaf's
    /// key and value, or its children's digests (all a proof or witness uses).
    pub(crate) fn siblings_of(&self, path: &Path, keep: impl Fn(usize) -> bool) -> Vec<Sibling> {
        // What only the deepest sibling needs (a lone leaf's key and value, a branch's
        // children) is read once the walk is over, for that sibling alone.
        enum Deepest {
            Lone(Path),
            Branch(NodeId),
        }
        let mut out = Vec::new();
        let mut deepest = None;
        let mut id = NodeId::ROOT;
        let mut cur = self.root;
        let sibling = |level, digest| Sibling {
            level,
            digest,
            lone: None,
            children: None,
        };
        for depth in 0..DEPTH {
            match cur {
                Node::Empty => break,
                Node::Single { path: other, leaf } => {
                    let level = other.common_prefix(path);
                    if other != *path && keep(level) {
                        out.push(sibling(level, leaf));
                        deepest = Some(Deepest::Lone(other));
                    }
                    break;
                }
                Node::Branch(_) => {
                    let bit = path.bit(depth);
                    let children = self.children(&id);
                    if keep(depth) {
                        match children[usize::from(!bit)] {
                            Node::Empty => {}
                            Node::Single { path: p, leaf } => {
                                out.push(sibling(depth, leaf));
                                deepest = Some(Deepest::Lone(p));
                            }
                            Node::Branch(d) => {
                                out.push(sibling(depth, d));
                                deepest = Some(Deepest::Branch(id.child(!bit)));
                            }
                        }
                    }
                    id = id.child(bit);
                    cur = children[usize::from(bit)];
                }
            }
        }
        if let Some(last) = out.last_mut() {
            match deepest.expect("the deepest sibling was recorded") {
                Deepest::Lone(p) => {
                    let l = self.leaves[&p];
                    last.lone = Some(Neighbor {
                        key: l.key,
                        value: l.value,
                    });
                }
                Deepest::Branch(b) => {
                    let [l, r] = self.children(&b);
                    last.children = Some([Sub::from(l).digest(), Sub::from(r).digest()]);
                }
            }
        }
        out
    }

    /// Applies `diff` and returns the new root.
    pub fn apply(&mut self, diff: &Diff, parallelism: Parallelism) -> Digest {
        self.apply_inner(diff, parallelism);
        self.root()
    }

    /// Applies `diff` and returns one witness per update, in the diff's canonical
    /// order: the key, its old and new values, and its siblings in the tree with the
    /// updates before it applied (see [`UpdateWitness`]).
    ///
    /// Because the order is the leaves' left-to-right order, a sibling to the left of
    /// an update's path holds only keys updated before it, and one to the right only
    /// keys updated after it; a subtree's digest depends only on the keys in it. So the
    /// witness takes left siblings from the tree after the whole diff and right
    /// siblings from the tree before it.
    pub fn apply_with_witnesses(
        &mut self,
        diff: &Diff,
        parallelism: Parallelism,
    ) -> Vec<UpdateWitness> {
        let par = parallelism == Parallelism::Parallel && diff.len() >= PARALLEL_MIN;
        let entries = diff.entries();
        // Right siblings (the path goes left) from the tree before the diff.
        let before = |e: &Entry| {
            let right = self.siblings_of(&e.path, |level| !e.path.bit(level));
            (self.get_at(&e.path), right)
        };
        let old: Vec<_> = if par {
            entries.par_iter().map(before).collect()
        } else {
            entries.iter().map(before).collect()
        };
        self.apply_inner(diff, parallelism);
        let this = &*self;
        let witness = |(e, (old_value, pre)): (&Entry, (Option<StateValue>, Vec<Sibling>))| {
            let post = this.siblings_of(&e.path, |level| e.path.bit(level));
            let mut merged: Vec<Sibling> = pre.into_iter().chain(post).collect();
            merged.sort_unstable_by_key(|s| s.level);
            witness_from(e.update.key, old_value, e.update.value, &merged)
        };
        if par {
            entries.par_iter().zip(old).map(witness).collect()
        } else {
            entries.iter().zip(old).map(witness).collect()
        }
    }

    fn apply_inner(&mut self, diff: &Diff, parallelism: Parallelism) {
        if diff.is_empty() {
            return;
        }
        let par = parallelism == Parallelism::Parallel;
        let writes: Vec<(Digest, StateValue)> = diff
            .entries()
            .iter()
            .filter_map(|e| e.update.value.map(|v| (e.path.to_digest(), v)))
            .collect();
        let mut leaves = crate::encoding::leaf_digests(&writes, par).into_iter();
        let prepared: Vec<Prepared<'_>> = diff
            .entries()
            .iter()
            .map(|entry| Prepared {
                entry,
                leaf: entry
                    .update
                    .value
                    .map(|_| leaves.next().expect("one per write")),
            })
            .collect();
        let counter = AtomicU32::new(0);
        let mut build = Build::new(&counter);
        let root = self.rebuild(
            NodeId::ROOT,
            self.root.into(),
            &prepared,
            par,
            &mut build,
            &counter,
        );
        let parts = build.flatten();
        // Hash the new branches, deepest level first, each level's compressions packed
        // into the SIMD lanes and spread over the cores.
        let mut offsets = Vec::with_capacity(parts.len());
        let mut levels: Vec<Vec<(u32, u32)>> = vec![Vec::new(); DEPTH + 1];
        let mut total = 0;
        for b in &parts {
            offsets.push(total);
            total += b.pending.len();
            for (i, p) in b.pending.iter().enumerate() {
                levels[usize::from(p.depth)].push((b.part, i as u32));
            }
        }
        let mut hashed = Hashed {
            digests: vec![EMPTY; total],
            offsets,
        };
        for level in levels.iter().rev().filter(|l| !l.is_empty()) {
            let pairs: Vec<[Digest; 2]> = level
                .iter()
                .map(|&(part, i)| {
                    let p = &parts[part as usize].pending[i as usize];
                    [p.left.resolve(&hashed), p.right.resolve(&hashed)]
                })
                .collect();
            for (&(part, i), d) in level.iter().zip(compress_many(&pairs, par)) {
                hashed.digests[hashed.offsets[part as usize] + i as usize] = d;
            }
        }
        let changes = parts
            .iter()
            .flat_map(|b| &b.changes)
            .map(|&(id, change)| (id, change.map(|[l, r]| [l.node(&hashed), r.node(&hashed)])));
        self.branches.apply(changes, par);
        self.root = root.node(&hashed);
        for p in &prepared {
            let e = p.entry;
            match e.update.value {
                Some(value) => {
                    let key = e.update.key;
                    self.leaves.insert(e.path, Leaf { key, value });
                }
                None => {
                    self.leaves.remove(&e.path);
                }
            }
        }
    }

    /// The new state of the subtree `id` (currently `cur`) after `ups` (sorted, all
    /// under `id`, non-empty paths distinct). Records the new branches and the changes
    /// to the stored branches at and below `id` in `out`.
    fn rebuild(
        &self,
        id: NodeId,
        cur: Sub,
        ups: &[Prepared<'_>],
        par: bool,
        out: &mut Build,
        parts: &AtomicU32,
    ) -> Sub {
        if ups.is_empty() {
            return cur;
        }
        let depth = id.depth as usize;
        let (left, right) = match cur {
            Sub::Branch(_) => {
                let [l, r] = self.children(&id);
                (Sub::from(l), Sub::from(r))
            }
            Sub::Pending { .. } => unreachable!("stored nodes are hashed"),
            Sub::Empty | Sub::Single { .. } => {
                // At most one leaf below: count the leaves after the updates.
                let kept = match cur {
                    Sub::Single { path, .. } if !ups.iter().any(|u| u.entry.path == path) => {
                        Some(cur)
                    }
                    _ => None,
                };
                let mut written = ups.iter().filter(|u| u.leaf.is_some());
                let count = kept.is_some() as usize + written.clone().count();
                match count {
                    0 => return Sub::Empty,
                    1 => {
                        return match kept {
                            Some(k) => k,
                            None => {
                                let u = written.next().expect("one write");
                                Sub::Single {
                                    path: u.entry.path,
                                    leaf: u.leaf.expect("a write"),
                                }
                            }
                        };
                    }
                    _ => {
                        // Two or more leaves: this node becomes a branch; push the kept
                        // leaf (if any) one level down and rebuild both sides.
                        debug_assert!(depth < DEPTH, "distinct paths split before the end");
                        let down = |bit: bool| match kept {
                            Some(s @ Sub::Single { path, .. }) if path.bit(depth) == bit => s,
                            _ => Sub::Empty,
                        };
                        (down(false), down(true))
                    }
                }
            }
        };
        let mid = ups.partition_point(|u| !u.entry.path.bit(depth));
        let (ul, ur) = ups.split_at(mid);
        let (lid, rid) = (id.child(false), id.child(true));
        let (l, r) = if par && ul.len() >= PARALLEL_MIN && ur.len() >= PARALLEL_MIN {
            let mut out_r = Build::new(parts);
            let lr = rayon::join(
                || self.rebuild(lid, left, ul, par, out, parts),
                || self.rebuild(rid, right, ur, par, &mut out_r, parts),
            );
            out.parts.push(out_r);
            lr
        } else {
            (
                self.rebuild(lid, left, ul, par, out, parts),
                self.rebuild(rid, right, ur, par, out, parts),
            )
        };
        let stored = matches!(cur, Sub::Branch(_));
        let result = match (l, r) {
            (Sub::Empty, Sub::Empty) => Sub::Empty,
            // A lone leaf floats up: its digest does not depend on its depth.
            (s @ Sub::Single { .. }, Sub::Empty) | (Sub::Empty, s @ Sub::Single { .. }) => s,
            // Hashed once the whole structure is known (`apply_inner`).
            _ => {
                out.pending.push(Pending {
                    depth: id.depth,
                    left: l,
                    right: r,
                });
                Sub::Pending {
                    part: out.part,
                    index: (out.pending.len() - 1) as u32,
                }
            }
        };
        // A stored branch keeps its entry when its children change, loses it when it
        // stops being a branch; a new branch gets one.
        if matches!(result, Sub::Pending { .. }) {
            if !stored || (l, r) != (left, right) {
                out.changes.push((id, Some([l, r])));
            }
        } else if stored {
            out.changes.push((id, None));
        }
        result
    }
}

/// A proof from a path's non-empty siblings: the levels down to the deepest one, and
/// that sibling's key and value when it is a lone leaf and `absent` (the walk of an
/// absent key needs to know it is a leaf).
/// The witness of `key` going from `old` to `new` under `siblings`: the deepest
/// sibling's neighbor or children are given when the key is absent before or after,
/// where a walk's empty node needs to know what that sibling is.
fn witness_from(
    key: StateKey,
    old: Option<StateValue>,
    new: Option<StateValue>,
    siblings: &[Sibling],
) -> UpdateWitness {
    let absent = old.is_none() || new.is_none();
    UpdateWitness {
        key,
        old_value: old,
        new_value: new,
        proof: proof_from(siblings, absent),
        deep_children: siblings.last().and_then(|s| s.children).filter(|_| absent),
    }
}

fn proof_from(siblings: &[Sibling], absent: bool) -> StateProof {
    let len = siblings.last().map_or(0, |s| s.level + 1);
    let mut out = vec![None; len];
    for s in siblings {
        out[s.level] = Some(s.digest);
    }
    StateProof {
        siblings: out,
        neighbor: siblings.last().and_then(|s| s.lone).filter(|_| absent),
    }
}

impl StateTree {
    /// A tree holding `entries`, built with one batch update.
    pub fn from_entries(
        entries: impl IntoIterator<Item = (StateKey, StateValue)>,
    ) -> Result<Self, crate::StateError> {
        let diff = Diff::new(entries.into_iter().map(|(k, v)| crate::Update::set(k, v)))?;
        let mut t = Self::new();
        t.apply_inner(&diff, Parallelism::Parallel);
        Ok(t)
    }

    /// Sets one key (a convenience over a one-update [`Diff`]).
    pub fn insert(
        &mut self,
        key: StateKey,
        value: StateValue,
    ) -> Result<Digest, crate::StateError> {
        let diff = Diff::new([crate::Update::set(key, value)])?;
        Ok(self.apply(&diff, Parallelism::Sequential))
    }

    /// Deletes one key; absent keys are left absent.
    pub fn remove(&mut self, key: StateKey) -> Digest {
        let diff = Diff::new([crate::Update::delete(key)]).expect("one deletion is canonical");
        self.apply(&diff, Parallelism::Sequential)
    }
}

#[cfg(test)]
#[path = "tree_tests.rs"]
mod tests;
