//! A slow reference: the root computed straight from the definition (a subtree of no
//! key is empty, of one key is that key's leaf, of more is the compression of its two
//! halves), with no stored nodes and no shortcuts. Tests compare [`crate::StateTree`]
//! against it.

use std::collections::BTreeMap;

use crate::encoding::{StateKey, StateValue, leaf_digest};
use crate::hash::{EMPTY, compress};
use crate::path::Path;
use crate::{DEPTH, Digest};

/// The root of the tree holding exactly `state`.
pub fn root(state: &BTreeMap<StateKey, StateValue>) -> Digest {
    let leaves: Vec<(Path, Digest)> = state
        .iter()
        .map(|(k, v)| {
            let d = k.digest();
            (Path::from_digest(&d), leaf_digest(&d, v))
        })
        .collect();
    root_of_leaves(leaves)
}

/// The root of the tree with leaf digests `leaves` at their paths (distinct paths).
pub fn root_of_leaves(mut leaves: Vec<(Path, Digest)>) -> Digest {
    leaves.sort_by_key(|a| a.0);
    subtree(0, &leaves)
}

fn subtree(depth: usize, leaves: &[(Path, Digest)]) -> Digest {
    match leaves {
        [] => EMPTY,
        [(_, leaf)] => *leaf,
        _ => {
            assert!(depth < DEPTH, "two keys with one path");
            let mid = leaves.partition_point(|(p, _)| !p.bit(depth));
            compress(
                subtree(depth + 1, &leaves[..mid]),
                subtree(depth + 1, &leaves[mid..]),
            )
        }
    }
}
