//! The Poseidon2 primitives of the state tree: the project's Merkle sponge and
//! compression (`proofbox_backend_api::{LeafHasher, NodeCompressor}` for KoalaBear),
//! and the digest of an empty subtree.

use std::sync::OnceLock;

use p3_field::{Field, PackedValue, PrimeCharacteristicRing};
use p3_symmetric::{CryptographicHasher, Permutation, PseudoCompressionFunction};
use proofbox_backend_api::{BackendField, LeafHasher, NodeCompressor};
use rayon::prelude::*;

use crate::{Digest, F};

/// Rate of the sponge: messages are absorbed 16 elements at a time.
pub const SPONGE_RATE: usize = 16;

/// The digest of an empty subtree, at any depth: all zeros. Never the output of a hash
/// except with probability about `p^-8`, so a verifier tells an empty subtree from a
/// hashed one by its value.
pub const EMPTY: Digest = [F::ZERO; 8];

struct Hashes {
    sponge: LeafHasher<F>,
    compress: NodeCompressor<F>,
    /// The sponge's permutation, for [`hash_ragged`]'s packed sponge.
    perm24: <F as BackendField>::Perm24,
}

fn hashes() -> &'static Hashes {
    static HASHES: OnceLock<Hashes> = OnceLock::new();
    HASHES.get_or_init(|| Hashes {
        sponge: F::leaf_hasher(),
        compress: F::node_compressor(),
        perm24: F::poseidon2_24(),
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

/// Messages (or pairs) one task of [`hash_many`] and [`compress_many`] takes.
const TASK: usize = 512;

type P = <F as Field>::Packing;

/// [`hash`] of many messages of one length, `P::WIDTH` at a time in the SIMD lanes of
/// Plonky3's packed field (all lanes of the machine), across cores if `par`.
pub fn hash_many<const N: usize>(messages: &[[F; N]], par: bool) -> Vec<Digest> {
    let mut out = vec![EMPTY; messages.len()];
    let sponge = &hashes().sponge;
    let lanes = P::WIDTH;
    let task = |(digests, msgs): (&mut [Digest], &[[F; N]])| {
        let full = digests.len() / lanes * lanes;
        let mut interleaved = vec![F::ZERO; N * lanes];
        for (group, group_out) in msgs[..full]
            .chunks_exact(lanes)
            .zip(digests[..full].chunks_exact_mut(lanes))
        {
            for (lane, m) in group.iter().enumerate() {
                for (j, &x) in m.iter().enumerate() {
                    interleaved[j * lanes + lane] = x;
                }
            }
            let d: [P; 8] = sponge.hash_slice(P::pack_slice(&interleaved));
            P::unpack_into(&d, group_out);
        }
        for (d, m) in digests[full..].iter_mut().zip(&msgs[full..]) {
            *d = sponge.hash_slice(m);
        }
    };
    if par {
        out.par_chunks_mut(TASK)
            .zip(messages.par_chunks(TASK))
            .for_each(task);
    } else {
        out.chunks_mut(TASK)
            .zip(messages.chunks(TASK))
            .for_each(task);
    }
    out
}

/// Sponge width of [`hash`] (rate [`SPONGE_RATE`] plus capacity 8).
const SPONGE_WIDTH: usize = 24;

/// [`hash`] of many messages of any lengths, `P::WIDTH` sponges at a time in the SIMD
/// lanes (the longest messages first, so that lanes run about as long), groups across
/// cores if `par`. The same digests as [`hash`] of each message: the same
/// padding-free overwrite-mode sponge (each block of [`SPONGE_RATE`] elements, or the
/// shorter last one, overwrites the front of the state, then the permutation), a
/// lane's digest taken after its own last block.
pub fn hash_ragged(messages: &[&[F]], par: bool) -> Vec<Digest> {
    let lanes = P::WIDTH;
    let mut order: Vec<usize> = (0..messages.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(messages[i].len()));
    let perm = &hashes().perm24;
    let group = |idx: &[usize]| -> Vec<Digest> {
        if idx.len() == 1 {
            return vec![hash(messages[idx[0]])];
        }
        let blocks = |i: usize| messages[i].len().div_ceil(SPONGE_RATE);
        let mut out = vec![EMPTY; idx.len()];
        let mut state = [P::ZERO; SPONGE_WIDTH];
        for k in 0..blocks(idx[0]) {
            for (lane, &i) in idx.iter().enumerate() {
                let m = messages[i];
                if k * SPONGE_RATE < m.len() {
                    let chunk = &m[k * SPONGE_RATE..m.len().min((k + 1) * SPONGE_RATE)];
                    for (s, &x) in state.iter_mut().zip(chunk) {
                        s.as_slice_mut()[lane] = x;
                    }
                }
            }
            perm.permute_mut(&mut state);
            for (lane, &i) in idx.iter().enumerate() {
                if blocks(i) == k + 1 {
                    out[lane] = core::array::from_fn(|j| state[j].as_slice()[lane]);
                }
            }
        }
        out
    };
    let groups: Vec<&[usize]> = order.chunks(lanes).collect();
    let digests: Vec<Vec<Digest>> = if par {
        groups.par_iter().map(|g| group(g)).collect()
    } else {
        groups.iter().map(|g| group(g)).collect()
    };
    let mut out = vec![EMPTY; messages.len()];
    for (g, ds) in groups.iter().zip(digests) {
        for (&i, d) in g.iter().zip(ds) {
            out[i] = d;
        }
    }
    out
}

/// [`compress`] of many pairs, `P::WIDTH` at a time in the SIMD lanes, across cores if
/// `par`.
pub fn compress_many(pairs: &[[Digest; 2]], par: bool) -> Vec<Digest> {
    let mut out = vec![EMPTY; pairs.len()];
    let c = &hashes().compress;
    let lanes = P::WIDTH;
    let task = |(digests, ps): (&mut [Digest], &[[Digest; 2]])| {
        let full = digests.len() / lanes * lanes;
        for (group, group_out) in ps[..full]
            .chunks_exact(lanes)
            .zip(digests[..full].chunks_exact_mut(lanes))
        {
            let left = P::pack_columns_fn::<8>(|lane| group[lane][0]);
            let right = P::pack_columns_fn::<8>(|lane| group[lane][1]);
            P::unpack_into(&c.compress([left, right]), group_out);
        }
        for (d, p) in digests[full..].iter_mut().zip(&ps[full..]) {
            *d = c.compress(*p);
        }
    };
    if par && pairs.len() > TASK {
        out.par_chunks_mut(TASK)
            .zip(pairs.par_chunks(TASK))
            .for_each(task);
    } else {
        out.chunks_mut(TASK).zip(pairs.chunks(TASK)).for_each(task);
    }
    out
}

/// Whether `d` is the empty digest.
#[inline]
pub fn is_empty(d: &Digest) -> bool {
    *d == EMPTY
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
    fn packed_hashing_agrees_with_one_at_a_time() {
        for n in [0, 1, 5, 16, 17, 100, 1500] {
            let msgs: Vec<[F; 48]> = (0..n)
                .map(|i| core::array::from_fn(|j| F::from_u32((i * 48 + j) as u32)))
                .collect();
            let pairs: Vec<[Digest; 2]> = (0..n)
                .map(|i| {
                    [
                        [F::from_u32(i as u32); 8],
                        [F::from_u32(7 * i as u32 + 1); 8],
                    ]
                })
                .collect();
            for par in [false, true] {
                let hs = hash_many(&msgs, par);
                assert!(hs.iter().zip(&msgs).all(|(h, m)| *h == hash(m)));
                let cs = compress_many(&pairs, par);
                assert!(
                    cs.iter()
                        .zip(&pairs)
                        .all(|(c, p)| *c == compress(p[0], p[1]))
                );
            }
        }
    }

    #[test]
    fn ragged_packed_hashing_agrees_with_one_at_a_time() {
        // Lengths of whole blocks and of partial last blocks, the empty message
        // included, in counts that fill some lane groups and leave others short.
        let lens = [
            0usize,
            1,
            15,
            16,
            17,
            32,
            48,
            100,
            845 * 16,
            16 + 64 * 211,
            3,
        ];
        for n in [1, 2, 5, 16, 17, 40] {
            let msgs: Vec<Vec<F>> = (0..n)
                .map(|i| {
                    let len = lens[(i * 7) % lens.len()];
                    (0..len)
                        .map(|j| F::from_u32((i * 1000 + j) as u32))
                        .collect()
                })
                .collect();
            let refs: Vec<&[F]> = msgs.iter().map(Vec::as_slice).collect();
            for par in [false, true] {
                let hs = hash_ragged(&refs, par);
                assert_eq!(hs.len(), n);
                assert!(hs.iter().zip(&refs).all(|(h, m)| *h == hash(m)));
            }
        }
        assert!(hash_ragged(&[], true).is_empty());
    }

    #[test]
    fn hashes_of_empty_inputs_are_not_the_empty_digest() {
        assert!(!is_empty(&compress(EMPTY, EMPTY)));
        assert!(!is_empty(&hash(&[F::ZERO; SPONGE_RATE])));
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
