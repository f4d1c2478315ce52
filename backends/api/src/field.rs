use core::fmt;
use core::str::FromStr;

use p3_baby_bear::{
    BabyBear, Poseidon2BabyBear, default_babybear_poseidon2_16, default_babybear_poseidon2_24,
};
use p3_field::{Field, PrimeField32, TwoAdicField};
use p3_koala_bear::{
    KoalaBear, Poseidon2KoalaBear, default_koalabear_poseidon2_16, default_koalabear_poseidon2_24,
};
use p3_symmetric::{CryptographicPermutation, PaddingFreeSponge, TruncatedPermutation};
use serde::{Deserialize, Serialize};

/// Field elements in one Merkle digest.
pub const DIGEST_ELEMS: usize = 8;

/// One Merkle digest.
pub type Digest<F> = [F; DIGEST_ELEMS];

/// The leaf hash: Poseidon2 width 24, rate 16, 8 output elements, no padding.
pub type LeafHasher<F> = PaddingFreeSponge<<F as BackendField>::Perm24, 24, 16, DIGEST_ELEMS>;

/// The node compression: Poseidon2 width 16 over two digests, truncated to 8 elements.
pub type NodeCompressor<F> = TruncatedPermutation<<F as BackendField>::Perm16, 2, DIGEST_ELEMS, 16>;

/// The 31-bit fields ProofBox proves over.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum FieldId {
    /// KoalaBear, p = 2^31 - 2^24 + 1 (the default).
    #[default]
    KoalaBear,
    /// BabyBear, p = 2^31 - 2^27 + 1.
    BabyBear,
}

impl FieldId {
    pub const ALL: [FieldId; 2] = [Self::KoalaBear, Self::BabyBear];

    pub const fn name(self) -> &'static str {
        match self {
            Self::KoalaBear => "koalabear",
            Self::BabyBear => "babybear",
        }
    }

    /// The field's modulus.
    pub const fn modulus(self) -> u32 {
        match self {
            Self::KoalaBear => 0x7f00_0001,
            Self::BabyBear => 0x7800_0001,
        }
    }

    /// Stable one-byte code used in the proof format.
    pub const fn code(self) -> u8 {
        match self {
            Self::KoalaBear => 1,
            Self::BabyBear => 2,
        }
    }
}

impl fmt::Display for FieldId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for FieldId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm: String = s.chars().filter(|c| *c != '-' && *c != '_').collect();
        Self::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(&norm))
            .ok_or_else(|| format!("unknown field {s:?} (expected koalabear or babybear)"))
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for p3_koala_bear::KoalaBear {}
    impl Sealed for p3_baby_bear::BabyBear {}
}

/// A field the backends support. Sealed: KoalaBear and BabyBear only.
///
/// Both are Plonky3 `MontyField31` values: `#[repr(transparent)]` over a `u32` holding
/// the element in Montgomery form (`x * 2^32 mod p`). Device kernels work on those words
/// directly, so uploads and readbacks are plain copies.
pub trait BackendField: TwoAdicField + PrimeField32 + sealed::Sealed {
    const ID: FieldId;

    /// Poseidon2, width 16, with Plonky3's default round constants for this field.
    type Perm16: CryptographicPermutation<[Self; 16]>
        + CryptographicPermutation<[<Self as Field>::Packing; 16]>
        + Clone
        + Send
        + Sync
        + 'static;
    /// Poseidon2, width 24, with Plonky3's default round constants for this field.
    type Perm24: CryptographicPermutation<[Self; 24]>
        + CryptographicPermutation<[<Self as Field>::Packing; 24]>
        + Clone
        + Send
        + Sync
        + 'static;

    fn poseidon2_16() -> Self::Perm16;
    fn poseidon2_24() -> Self::Perm24;

    fn leaf_hasher() -> LeafHasher<Self> {
        PaddingFreeSponge::new(Self::poseidon2_24())
    }

    fn node_compressor() -> NodeCompressor<Self> {
        TruncatedPermutation::new(Self::poseidon2_16())
    }

    /// The Montgomery words behind a slice of elements (no copy).
    fn as_monty_words(values: &[Self]) -> &[u32] {
        // SAFETY: `MontyField31` is `#[repr(transparent)]` over a `u32`, so a slice of
        // elements has exactly the layout of a slice of `u32` of the same length.
        unsafe { core::slice::from_raw_parts(values.as_ptr().cast::<u32>(), values.len()) }
    }

    /// Elements from Montgomery words read back from a device. Every word must be
    /// below the modulus; the first one that is not is reported.
    fn from_monty_words(words: Vec<u32>) -> Result<Vec<Self>, usize> {
        let p = Self::ID.modulus();
        if let Some(bad) = words.iter().position(|&w| w >= p) {
            return Err(bad);
        }
        let mut words = core::mem::ManuallyDrop::new(words);
        // SAFETY: same layout as above, and every word is a valid (reduced) Montgomery
        // representative, which is the type's only invariant. The allocation is handed
        // over whole (pointer, length and capacity), with identical size and alignment.
        Ok(unsafe {
            Vec::from_raw_parts(
                words.as_mut_ptr().cast::<Self>(),
                words.len(),
                words.capacity(),
            )
        })
    }
}

impl BackendField for KoalaBear {
    const ID: FieldId = FieldId::KoalaBear;
    type Perm16 = Poseidon2KoalaBear<16>;
    type Perm24 = Poseidon2KoalaBear<24>;

    fn poseidon2_16() -> Self::Perm16 {
        default_koalabear_poseidon2_16()
    }
    fn poseidon2_24() -> Self::Perm24 {
        default_koalabear_poseidon2_24()
    }
}

impl BackendField for BabyBear {
    const ID: FieldId = FieldId::BabyBear;
    type Perm16 = Poseidon2BabyBear<16>;
    type Perm24 = Poseidon2BabyBear<24>;

    fn poseidon2_16() -> Self::Perm16 {
        default_babybear_poseidon2_16()
    }
    fn poseidon2_24() -> Self::Perm24 {
        default_babybear_poseidon2_24()
    }
}

#[cfg(test)]
mod tests {
    use p3_field::PrimeCharacteristicRing;

    use super::*;

    #[test]
    fn modulus_matches_plonky3() {
        assert_eq!(FieldId::KoalaBear.modulus(), KoalaBear::ORDER_U32);
        assert_eq!(FieldId::BabyBear.modulus(), BabyBear::ORDER_U32);
    }

    #[test]
    fn monty_words_round_trip_and_reject_unreduced() {
        let xs: Vec<KoalaBear> = (0..10u32).map(KoalaBear::from_u32).collect();
        let words = KoalaBear::as_monty_words(&xs).to_vec();
        assert_eq!(KoalaBear::from_monty_words(words.clone()).unwrap(), xs);
        let mut bad = words;
        bad[3] = KoalaBear::ORDER_U32;
        assert_eq!(KoalaBear::from_monty_words(bad), Err(3));
    }

    #[test]
    fn field_names_parse() {
        assert_eq!("KoalaBear".parse::<FieldId>(), Ok(FieldId::KoalaBear));
        assert_eq!("baby-bear".parse::<FieldId>(), Ok(FieldId::BabyBear));
        assert!("goldilocks".parse::<FieldId>().is_err());
    }
}
