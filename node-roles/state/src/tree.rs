//! The state tree: a sparse Merkle tree of depth [`DEPTH`] over key digests, stored
//! compactly.
//!
//! The digests are those of the full fixed-depth tree (every leaf position at depth
//! 248, empty subtrees hashing to [`default_digest`]), but only two kinds of node are
//! kept in memory:
//! - a **branch**: a node whose subtree holds two or more leaves, with its digest;
//! - a **single**: the highest node whose subtree holds exactly one leaf (a child of a
//!   branch, or the root), with that leaf's path and the digest of its chain of
//!   nodes up to there.
//!
//! That is about two nodes per leaf whatever the depth. Nodes between a single and its
//! leaf are recomputed when needed (when an insert makes two leaves share a formerly
//! lone chain, or for the one diverging sibling of an exclusion proof).

use std::collections::HashMap;

use rayon::prelude::*;

use crate::diff::{Diff, Entry, PARALLEL_MIN, UpdateWitness};
use crate::encoding::{StateKey, StateValue, leaf_digest};
use crate::hash::{compress, default_digest};
use crate::path::{NodeId, Path};
use crate::proof::StateProof;
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Leaf {
    key: StateKey,
    value: StateValue,
    digest: Digest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    Branch(Digest),
    Single {
        path: Path,
        leaf: Digest,
        digest: Digest,
    },
}

/// A subtree while rebuilding: a node of the tree or one derived from it.
#[derive(Debug, Clone, Copy)]
enum Sub {
    Empty,
    /// One leaf; `digest` is its chain's digest at this depth, if computed yet.
    Single {
        path: Path,
        leaf: Digest,
        digest: Option<Digest>,
    },
    Branch(Digest),
}

/// The digest at `depth` of the chain from the leaf `leaf` at `path` (every sibling
/// below `depth` empty).
fn chain(path: &Path, leaf: Digest, depth: usize) -> Digest {
    let mut node = leaf;
    for level in (depth..DEPTH).rev() {
        let sibling = default_digest(level + 1);
        node = if path.bit(level) {
            compress(sibling, node)
        } else {
            compress(node, sibling)
        };
    }
    node
}

impl Sub {
    fn digest(&self, depth: usize) -> Digest {
        match *self {
            Sub::Empty => default_digest(depth),
            Sub::Single {
                digest: Some(d), ..
            }
            | Sub::Branch(d) => d,
            Sub::Single { path, leaf, .. } => chain(&path, leaf, depth),
        }
    }

    fn to_node(self, depth: usize) -> Option<Node> {
        match self {
            Sub::Empty => None,
            Sub::Branch(d) => Some(Node::Branch(d)),
            Sub::Single { path, leaf, .. } => Some(Node::Single {
                path,
                leaf,
                digest: self.digest(depth),
            }),
        }
    }
}

impl From<Node> for Sub {
    fn from(n: Node) -> Self {
        match n {
            Node::Branch(d) => Sub::Branch(d),
            Node::Single { path, leaf, digest } => Sub::Single {
                path,
                leaf,
                digest: Some(digest),
            },
        }
    }
}

/// A prepared update: path, new leaf digest.
struct Prepared<'a> {
    entry: &'a Entry,
    leaf: Option<Digest>,
}

/// Changes to the node store, applied in order once the rebuild is done.
type Changes = Vec<(NodeId, Option<Node>)>;

/// The state tree. See the module docs and `docs/state.md`.
#[derive(Debug, Clone, Default)]
pub struct StateTree {
    leaves: HashMap<Path, Leaf>,
    nodes: HashMap<NodeId, Node>,
}

impl StateTree {
    /// An empty tree; its root is [`StateTree::empty_root`].
    pub fn new() -> Self {
        Self::default()
    }

    /// The root of the empty tree: the default digest at depth 0.
    pub fn empty_root() -> Digest {
        default_digest(0)
    }

    /// The number of keys present.
    pub fn len(&self) -> usize {
        self.leaves.len()
    }

    pub fn is_empty(&self) -> bool {
        self.leaves.is_empty()
    }

    /// The number of nodes kept in memory (branches and singles).
    pub fn stored_nodes(&self) -> usize {
        self.nodes.len()
    }

    fn sub(&self, id: &NodeId) -> Sub {
        self.nodes.get(id).copied().map_or(Sub::Empty, Sub::from)
    }

    /// The state root.
    pub fn root(&self) -> Digest {
        self.sub(&NodeId::ROOT).digest(0)
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

    /// The value of `key` (or its absence) and a proof of it under [`StateTree::root`].
    pub fn prove(&self, key: &StateKey) -> (Option<StateValue>, StateProof) {
        let path = Path::from_digest(&key.digest());
        (self.get_at(&path), self.proof_at(&path))
    }

    fn proof_at(&self, path: &Path) -> StateProof {
        let mut siblings = vec![None; DEPTH];
        let mut id = NodeId::ROOT;
        let mut cur = self.sub(&id);
        for depth in 0..DEPTH {
            match cur {
                Sub::Empty => break,
                Sub::Single {
                    path: other, leaf, ..
                } => {
                    if other != *path {
                        // The lone leaf's chain leaves our path at `split`: its node at
                        // depth `split + 1` is our sibling there, every other sibling
                        // is empty.
                        let split = other.common_prefix(path);
                        siblings[split] = Some(chain(&other, leaf, split + 1));
                    }
                    break;
                }
                Sub::Branch(_) => {
                    let bit = path.bit(depth);
                    let sibling = self.sub(&id.child(!bit));
                    if !matches!(sibling, Sub::Empty) {
                        siblings[depth] = Some(sibling.digest(depth + 1));
                    }
                    id = id.child(bit);
                    cur = self.sub(&id);
                }
            }
        }
        StateProof { siblings }
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
    /// keys updated after it: the witness takes left siblings from the tree after the
    /// whole diff and right siblings from the tree before it.
    pub fn apply_with_witnesses(
        &mut self,
        diff: &Diff,
        parallelism: Parallelism,
    ) -> Vec<UpdateWitness> {
        let par = parallelism == Parallelism::Parallel && diff.len() >= PARALLEL_MIN;
        let entries = diff.entries();
        let before = |e: &Entry| (self.get_at(&e.path), self.proof_at(&e.path));
        let old: Vec<_> = if par {
            entries.par_iter().map(before).collect()
        } else {
            entries.iter().map(before).collect()
        };
        self.apply_inner(diff, parallelism);
        let this = &*self;
        let witness = |(e, (old_value, old_proof)): (&Entry, (Option<StateValue>, StateProof))| {
            let new_proof = this.proof_at(&e.path);
            let siblings = (0..DEPTH)
                .map(|l| {
                    if e.path.bit(l) {
                        new_proof.siblings[l]
                    } else {
                        old_proof.siblings[l]
                    }
                })
                .collect();
            UpdateWitness {
                key: e.update.key,
                old_value,
                new_value: e.update.value,
                proof: StateProof { siblings },
            }
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
        fn prepare(entry: &Entry) -> Prepared<'_> {
            Prepared {
                entry,
                leaf: entry
                    .update
                    .value
                    .map(|v| leaf_digest(&entry.path.to_digest(), &v)),
            }
        }
        let prepared: Vec<Prepared<'_>> = if par && diff.len() >= PARALLEL_MIN {
            diff.entries().par_iter().map(prepare).collect()
        } else {
            diff.entries().iter().map(prepare).collect()
        };
        let mut changes = Changes::new();
        let root = self.rebuild(
            NodeId::ROOT,
            self.sub(&NodeId::ROOT),
            &prepared,
            par,
            &mut changes,
        );
        changes.push((NodeId::ROOT, root.to_node(0)));
        for (id, node) in changes {
            match node {
                Some(n) => self.nodes.insert(id, n),
                None => self.nodes.remove(&id),
            };
        }
        for p in &prepared {
            let e = p.entry;
            match (e.update.value, p.leaf) {
                (Some(value), Some(digest)) => {
                    self.leaves.insert(
                        e.path,
                        Leaf {
                            key: e.update.key,
                            value,
                            digest,
                        },
                    );
                }
                _ => {
                    self.leaves.remove(&e.path);
                }
            }
        }
    }

    /// The new state of the subtree `id` (currently `cur`) after `ups` (sorted, all
    /// under `id`, non-empty paths distinct). Appends the store changes for the nodes
    /// strictly below `id`; the caller records `id` itself.
    fn rebuild(
        &self,
        id: NodeId,
        cur: Sub,
        ups: &[Prepared<'_>],
        par: bool,
        out: &mut Changes,
    ) -> Sub {
        if ups.is_empty() {
            return cur;
        }
        let depth = id.depth as usize;
        let (left, right) = match cur {
            Sub::Branch(_) => (self.sub(&id.child(false)), self.sub(&id.child(true))),
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
                                let (path, leaf) = (u.entry.path, u.leaf.expect("a write"));
                                Sub::Single {
                                    path,
                                    leaf,
                                    digest: Some(chain(&path, leaf, depth)),
                                }
                            }
                        };
                    }
                    _ => {
                        // Two or more leaves: this node becomes a branch; push the kept
                        // leaf (if any) one level down and rebuild both sides.
                        debug_assert!(depth < DEPTH, "distinct paths split before the leaves");
                        let down = |bit: bool| match kept {
                            Some(Sub::Single { path, leaf, .. }) if path.bit(depth) == bit => {
                                Sub::Single {
                                    path,
                                    leaf,
                                    digest: None,
                                }
                            }
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
            let mut out_r = Changes::new();
            let (l, r) = rayon::join(
                || self.rebuild(lid, left, ul, par, out),
                || self.rebuild(rid, right, ur, par, &mut out_r),
            );
            out.append(&mut out_r);
            (l, r)
        } else {
            (
                self.rebuild(lid, left, ul, par, out),
                self.rebuild(rid, right, ur, par, out),
            )
        };
        let result = match (l, r) {
            (Sub::Empty, Sub::Empty) => Sub::Empty,
            (s @ Sub::Single { .. }, Sub::Empty) | (Sub::Empty, s @ Sub::Single { .. }) => {
                // A lone leaf floats up; its digest here follows from the one below.
                let Sub::Single { path, leaf, digest } = s else {
                    unreachable!()
                };
                Sub::Single {
                    path,
                    leaf,
                    digest: digest.map(|d| {
                        let e = default_digest(depth + 1);
                        if path.bit(depth) {
                            compress(e, d)
                        } else {
                            compress(d, e)
                        }
                    }),
                }
            }
            _ => Sub::Branch(compress(l.digest(depth + 1), r.digest(depth + 1))),
        };
        let branch = matches!(result, Sub::Branch(_));
        for (cid, c) in [(lid, l), (rid, r)] {
            out.push((cid, if branch { c.to_node(depth + 1) } else { None }));
        }
        result
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
mod tests {
    use alloy_primitives::{Address, U256};

    use super::*;
    use crate::Update;
    use crate::reference::root_of_leaves;

    /// Entries at made-up paths: `base` and copies of it that first differ at each of
    /// `levels`, so lone chains split and collapse deep in the tree, down to the leaves.
    fn deep_entries(levels: &[usize], value: u64) -> Vec<Entry> {
        let base = Path([
            0x1234_5678,
            0x0765_4321,
            0x5555_5555,
            0x2aaa_aaaa,
            1,
            2,
            3,
            0x7eff_ffff,
        ]);
        let mut paths = vec![base];
        for &l in levels {
            paths.push(base.with_bit(l, !base.bit(l)));
        }
        paths.sort();
        paths
            .into_iter()
            .enumerate()
            .map(|(i, path)| Entry {
                path,
                update: Update::set(
                    StateKey::Storage {
                        address: Address::ZERO,
                        slot: U256::from(i),
                    },
                    StateValue::Storage(U256::from(value + i as u64)),
                ),
            })
            .collect()
    }

    fn expected(entries: &[Entry]) -> Digest {
        root_of_leaves(
            entries
                .iter()
                .filter_map(|e| {
                    e.update
                        .value
                        .map(|v| (e.path, leaf_digest(&e.path.to_digest(), &v)))
                })
                .collect(),
        )
    }

    fn check_proofs(t: &StateTree, entries: &[Entry]) {
        let root = t.root();
        for e in entries {
            let proof = t.proof_at(&e.path);
            let leaf = t
                .leaves
                .get(&e.path)
                .map_or(crate::hash::EMPTY_LEAF, |l| l.digest);
            assert_eq!(proof.root_from_leaf(&e.path, leaf), Ok(root));
        }
    }

    #[test]
    fn keys_sharing_long_path_prefixes() {
        let levels = [247, 246, 240, 217, 186, 93, 62, 31, 30, 1, 0];
        let all = deep_entries(&levels, 100);
        let want = expected(&all);
        for par in [Parallelism::Sequential, Parallelism::Parallel] {
            // One batch.
            let mut t = StateTree::new();
            assert_eq!(t.apply(&Diff::from_sorted_entries(all.clone()), par), want);
            check_proofs(&t, &all);
            // One at a time, in an order that splits chains at every depth.
            let mut t1 = StateTree::new();
            for e in all.iter().rev() {
                let _ = t1.apply(&Diff::from_sorted_entries(vec![e.clone()]), par);
            }
            assert_eq!(t1.root(), want);
            assert_eq!(t1.stored_nodes(), t.stored_nodes());
            // Delete every other one, then the rest, checking as chains collapse.
            let mut kept: Vec<Entry> = all.clone();
            for e in all.iter().step_by(2) {
                let del = Entry {
                    path: e.path,
                    update: Update::delete(e.update.key),
                };
                let _ = t.apply(&Diff::from_sorted_entries(vec![del]), par);
                kept.retain(|k| k.path != e.path);
                assert_eq!(t.root(), expected(&kept));
                check_proofs(&t, &all);
            }
            let dels: Vec<Entry> = kept
                .iter()
                .map(|e| Entry {
                    path: e.path,
                    update: Update::delete(e.update.key),
                })
                .collect();
            assert_eq!(
                t.apply(&Diff::from_sorted_entries(dels), par),
                StateTree::empty_root()
            );
            assert_eq!(t.stored_nodes(), 0);
        }
    }
}
