//! The Poseidon2 primitives of the state tree: the project's Merkle sponge and
//! compression (`proofbox_backend_api::{LeafHasher, NodeCompressor}` for KoalaBear),
//! and the default digests of empty subtrees.

use std::sync::OnceLock;

use p3_field::PrimeCharacteristicRing;
use p3_symmetric::{CryptographicHasher, PseudoCompressionFunction};
use proofbox_backend_api::{BackendField, LeafHasher, NodeCompressor};

use crate::{DEPTH, Digest, F};

/// Rate of the sponge: messages are absorbed 16 elements at a time.
pub const SPONGE_RATE: usize = 16;

/// The digest of an empty leaf position: all zeros. Never the output of a hash except
/// with probability about `p^-8`.
pub const EMPTY_LEAF: Digest = [F::ZERO; 8];

struct Hashes {
    sponge: LeafHasher<F>,
    compress: NodeCompressor<F>,
    /// `defaults[d]`: the digest of an empty subtree whose root is at depth `d`.
    defaults: Vec<Digest>,
}

fn hashes() -> &'static Hashes {
    static HASHES: OnceLock<Hashes> = OnceLock::new();
    HASHES.get_or_init(|| {
        let sponge = F::leaf_hasher();
        let compress = F::node_compressor();
        let mut defaults = vec![EMPTY_LEAF; DEPTH + 1];
        for d in (0..DEPTH).rev() {
            defaults[d] = compress.compress([defaults[d + 1], defaults[d + 1]]);
        }
        Hashes {
            sponge,
            compress,
            defaults,
        }
    })
}

/// The width-24 Poseidon2 sponge (rate 16, 8 output elements, no padding) the project
/// hashes Merkle leaves with. Callers make their messages unambiguous themselves: a
/// domain tag first and a length fixed by the tag, or [`pad`].
pub fn hash(message: &[F]) -> Digest {
    hashes().sponge.hash_slice(message)
}

/// An internal node: the width-16 Poseidon2 permutation of `left || right`, truncated to
/// 8 elements (the project's Merkle node compression).
#[inline]
pub fn compress(left: Digest, right: Digest) -> Digest {
    hashes().compress.compress([left, right])
}

/// The digest of an empty subtree whose root sits at `depth` (0 = the whole tree,
/// [`DEPTH`] = one leaf position).
#[inline]
pub fn default_digest(depth: usize) -> Digest {
    hashes().defaults[depth]
}

/// Appends the padding `1, 0, ..., 0` up to a multiple of the sponge rate, which makes
/// a variable-length message injective under the padding-free sponge.
pub fn pad(message: &mut Vec<F>) {
    message.push(F::ONE);
    while !message.len().is_multiple_of(SPONGE_RATE) {
        message.push(F::ZERO);
    }
}

/// Permutations of each width one call to [`hash`] spends on a message of `len`
/// elements: `ceil(len / 16)` width-24 permutations.
pub const fn sponge_permutations(len: usize) -> usize {
    len.div_ceil(SPONGE_RATE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_chain_up_from_the_empty_leaf() {
        assert_eq!(default_digest(DEPTH), EMPTY_LEAF);
        for d in 0..DEPTH {
            let below = default_digest(d + 1);
            assert_eq!(default_digest(d), compress(below, below));
            assert_ne!(default_digest(d), EMPTY_LEAF);
        }
    }

    #[test]
    fn padding_separates_a_message_from_its_zero_extension() {
        let mut a = vec![F::ONE, F::TWO];
        let mut b = vec![F::ONE, F::TWO, F::ZERO];
        // Without padding the overwrite-mode sponge cannot tell these apart.
        assert_eq!(hash(&a), hash(&b));
        pad(&mut a);
        pad(&mut b);
        assert_ne!(hash(&a), hash(&b));
        assert_eq!(a.len() % SPONGE_RATE, 0);
    }
}
