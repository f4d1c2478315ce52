//! A key's position in the tree: the 248 bits of its digest.

use p3_field::{PrimeCharacteristicRing, PrimeField32};
use serde::{Deserialize, Serialize};

use crate::{DEPTH, Digest, F};

/// Bits each digest element contributes to the path: every canonical KoalaBear element
/// is below `p < 2^31`, so 31 bits hold it exactly.
pub const BITS_PER_ELEMENT: usize = 31;

/// The path of a key: its digest's 8 elements as canonical `u32`s, read as one
/// 248-bit number, element 0 first, bit 30 of each element first. Level `l` of the
/// tree (the edge from depth `l` to depth `l + 1`) follows bit `l` of that number:
/// 0 goes left, 1 right. Two keys share a path only if their digests are equal.
///
/// The derived order is the order of leaves from left to right, which is the
/// canonical order of a diff.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
pub struct Path(pub [u32; 8]);

impl Path {
    pub fn from_digest(d: &Digest) -> Self {
        Self(core::array::from_fn(|i| d[i].as_canonical_u32()))
    }

    /// The key digest this path was read from (the inverse of [`Path::from_digest`]
    /// for paths of real keys, whose words are canonical elements).
    pub fn to_digest(&self) -> Digest {
        core::array::from_fn(|i| F::from_u32(self.0[i]))
    }

    /// Bit `level` of the path (`level < DEPTH`): false = left, true = right.
    #[inline]
    pub fn bit(&self, level: usize) -> bool {
        debug_assert!(level < DEPTH);
        let (e, b) = (level / BITS_PER_ELEMENT, level % BITS_PER_ELEMENT);
        (self.0[e] >> (BITS_PER_ELEMENT - 1 - b)) & 1 == 1
    }

    /// The path with bit `level` set to `bit`.
    #[inline]
    pub fn with_bit(mut self, level: usize, bit: bool) -> Self {
        let (e, b) = (level / BITS_PER_ELEMENT, level % BITS_PER_ELEMENT);
        let mask = 1u32 << (BITS_PER_ELEMENT - 1 - b);
        if bit {
            self.0[e] |= mask;
        } else {
            self.0[e] &= !mask;
        }
        self
    }

    /// The first `depth` bits, the rest cleared: the identity of the node at `depth`
    /// on this path.
    pub fn prefix(mut self, depth: usize) -> Self {
        for (i, w) in self.0.iter_mut().enumerate() {
            let start = i * BITS_PER_ELEMENT;
            if depth <= start {
                *w = 0;
            } else if depth < start + BITS_PER_ELEMENT {
                let keep = depth - start;
                *w &= !((1u32 << (BITS_PER_ELEMENT - keep)) - 1);
            }
        }
        self
    }

    /// The number of leading bits `self` and `other` share (`DEPTH` if equal).
    pub fn common_prefix(&self, other: &Path) -> usize {
        for i in 0..8 {
            let x = self.0[i] ^ other.0[i];
            if x != 0 {
                return i * BITS_PER_ELEMENT + (x.leading_zeros() as usize - 1);
            }
        }
        DEPTH
    }
}

/// A node of the tree: its depth and the path prefix leading to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeId {
    pub depth: u8,
    pub prefix: Path,
}

impl NodeId {
    pub const ROOT: NodeId = NodeId {
        depth: 0,
        prefix: Path([0; 8]),
    };

    /// The child of `self` on side `bit`.
    pub fn child(&self, bit: bool) -> NodeId {
        let depth = self.depth as usize;
        NodeId {
            depth: self.depth + 1,
            prefix: self.prefix.with_bit(depth, bit),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_prefixes_and_common_prefixes_agree() {
        let a = Path([0x7fff_ffff, 0, 1, 0x4000_0000, 5, 6, 7, 0x7f00_0000]);
        assert!(a.bit(0) && a.bit(30) && !a.bit(31) && a.bit(92) && a.bit(93));
        assert_eq!(a.prefix(DEPTH), a);
        assert_eq!(a.prefix(0), Path::default());
        assert_eq!(a.prefix(1).0[0], 0x4000_0000);
        for level in 0..DEPTH {
            let b = a.with_bit(level, !a.bit(level));
            assert_eq!(a.common_prefix(&b), level);
            assert_eq!(a.prefix(level), b.prefix(level));
            assert_ne!(a.prefix(level + 1), b.prefix(level + 1));
            assert_eq!(
                a < b,
                !a.bit(level),
                "order follows the first differing bit"
            );
        }
        assert_eq!(a.common_prefix(&a), DEPTH);
    }
}
