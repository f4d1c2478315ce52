//! Where the state tree keeps its branches: each branch's two children, in one map
//! entry keyed by the branch, the maps sharded by the first bits of the branch's path
//! so that a batch's writes run on all cores.
//!
//! A branch at depth `d <= 62` is keyed by one `u64`: a marker bit `1 << d` above the
//! `d` bits of its path prefix (8 bytes instead of the 33 of `(depth, prefix)`). The
//! rare deeper branches (two keys sharing 62 leading path bits) are kept in a map of
//! their own by their full [`NodeId`].

use hashbrown::{DefaultHashBuilder, HashMap};
use rayon::prelude::*;

use crate::alloc::HugePages;
use crate::path::{BITS_PER_ELEMENT, NodeId};

/// The state's maps: SwissTables in huge pages where the OS offers them.
pub(crate) type Map<K, V> = HashMap<K, V, DefaultHashBuilder, HugePages>;

/// Shards are told apart by this many leading path bits.
const SHARD_BITS: usize = 4;
const SHARDS: usize = 1 << SHARD_BITS;

/// The deepest branch with a `u64` key.
const SHORT_MAX: usize = 2 * BITS_PER_ELEMENT;

/// One shard's changes: a branch's new children, or `None` to remove it.
type ShardChanges<V> = Vec<(u64, Option<V>)>;

/// The branches of a tree, `V` standing for a branch's two children.
#[derive(Debug, Clone)]
pub(crate) struct Branches<V> {
    shards: Vec<Map<u64, V>>,
    deep: Map<NodeId, V>,
}

impl<V> Default for Branches<V> {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Map::default()).collect(),
            deep: Map::default(),
        }
    }
}

/// The shard of `id` and, if it is at most [`SHORT_MAX`] deep, its `u64` key.
#[inline]
fn locate(id: &NodeId) -> (usize, Option<u64>) {
    let words = (u64::from(id.prefix.0[0]) << BITS_PER_ELEMENT) | u64::from(id.prefix.0[1]);
    let shard = (words >> (SHORT_MAX - SHARD_BITS)) as usize;
    let depth = usize::from(id.depth);
    let key = (depth <= SHORT_MAX).then(|| (1u64 << depth) | (words >> (SHORT_MAX - depth)));
    (shard, key)
}

impl<V: Send + Sync> Branches<V> {
    pub fn get(&self, id: &NodeId) -> Option<&V> {
        match locate(id) {
            (shard, Some(key)) => self.shards[shard].get(&key),
            (_, None) => self.deep.get(id),
        }
    }

    /// The number of branches.
    pub fn len(&self) -> usize {
        self.shards.iter().map(Map::len).sum::<usize>() + self.deep.len()
    }

    /// Makes room for `n` more branches. Random paths spread them evenly: a shard's
    /// share is within a few standard deviations (`sqrt(n / SHARDS)`) of `n / SHARDS`.
    pub fn reserve(&mut self, n: usize) {
        let mean = n / SHARDS;
        let per_shard = mean + 4 * mean.isqrt() + 64;
        for s in &mut self.shards {
            s.reserve(per_shard);
        }
    }

    /// Bytes the maps' tables take (all their buckets, not just the entries).
    pub fn memory_bytes(&self) -> usize {
        self.shards.iter().map(Map::allocation_size).sum::<usize>() + self.deep.allocation_size()
    }

    /// Sets (`Some`) or removes (`None`) the children of each branch in `changes`,
    /// each shard's on its own core if `par`.
    pub fn apply(&mut self, changes: impl IntoIterator<Item = (NodeId, Option<V>)>, par: bool) {
        let mut by_shard: Vec<ShardChanges<V>> = (0..SHARDS).map(|_| Vec::new()).collect();
        for (id, change) in changes {
            match locate(&id) {
                (shard, Some(key)) => by_shard[shard].push((key, change)),
                (_, None) => {
                    match change {
                        Some(v) => self.deep.insert(id, v),
                        None => self.deep.remove(&id),
                    };
                }
            }
        }
        let write = |(map, changes): (&mut Map<u64, V>, ShardChanges<V>)| {
            for (key, change) in changes {
                match change {
                    Some(v) => map.insert(key, v),
                    None => map.remove(&key),
                };
            }
        };
        if par {
            self.shards.par_iter_mut().zip(by_shard).for_each(write);
        } else {
            self.shards.iter_mut().zip(by_shard).for_each(write);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DEPTH;
    use crate::path::Path;

    #[test]
    fn every_node_has_its_own_key_and_shard() {
        let path = Path([0x5555_5555, 0x2aaa_aaaa, 3, 4, 5, 6, 7, 8]);
        let other = Path([0x7fff_ffff, 0x7fff_ffff, 1, 1, 1, 1, 1, 1]);
        let mut seen = std::collections::HashSet::new();
        let mut b = Branches::<usize>::default();
        let mut changes = Vec::new();
        for p in [path, other] {
            for depth in 0..=DEPTH {
                let id = NodeId {
                    depth: depth as u8,
                    prefix: p.prefix(depth),
                };
                let (shard, key) = locate(&id);
                assert_eq!(key.is_some(), depth <= SHORT_MAX);
                let first = id.prefix.0[0] >> (BITS_PER_ELEMENT - SHARD_BITS);
                assert_eq!(
                    shard, first as usize,
                    "the shard of the prefix's first bits"
                );
                if seen.insert(id) {
                    changes.push((id, Some(seen.len())));
                }
            }
        }
        b.apply(changes.clone(), true);
        assert_eq!(b.len(), seen.len());
        for (id, v) in &changes {
            assert_eq!(b.get(id), v.as_ref());
        }
        // Removing every other one leaves the rest.
        let removed: Vec<_> = changes
            .iter()
            .step_by(2)
            .map(|(id, _)| (*id, None))
            .collect();
        b.apply(removed, false);
        for (i, (id, v)) in changes.iter().enumerate() {
            assert_eq!(b.get(id), if i % 2 == 0 { None } else { v.as_ref() });
        }
    }
}
