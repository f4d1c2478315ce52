//! State roots and diff commitments as they travel in headers and over JSON-RPC.

use std::fmt;

use alloy_primitives::B256;
use p3_field::{PrimeCharacteristicRing, PrimeField32};
use proofbox_state::{Digest, F};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A Poseidon2 digest (8 KoalaBear elements), kept as the elements' canonical `u32`s.
///
/// Human-readable forms (JSON, `Display`) are 64 hex digits, 8 per element in order,
/// the same as `proofbox_circuits::transition::digest_hex`, without `0x`. Binary forms
/// (postcard) are the 8 `u32`s. [`Root::to_b256`] writes the elements big-endian into
/// 32 bytes for Ethereum fields such as a header's `stateRoot`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Root(pub [u32; 8]);

impl Root {
    pub fn from_digest(d: &Digest) -> Self {
        Self(d.map(|e| e.as_canonical_u32()))
    }

    pub fn to_digest(&self) -> Digest {
        self.0.map(F::from_u32)
    }

    /// 64 hex digits, no prefix.
    pub fn hex(&self) -> String {
        self.0.iter().map(|e| format!("{e:08x}")).collect()
    }

    /// Parses [`Root::hex`] (an optional `0x` prefix is accepted). Every element must be
    /// canonical (below the KoalaBear modulus).
    pub fn from_hex(s: &str) -> Result<Self, String> {
        let s = s.strip_prefix("0x").unwrap_or(s);
        if s.len() != 64 || !s.is_ascii() {
            return Err(format!(
                "a root is 64 hex digits, got {} characters",
                s.len()
            ));
        }
        let mut out = [0u32; 8];
        for (i, o) in out.iter_mut().enumerate() {
            let e = u32::from_str_radix(&s[8 * i..8 * i + 8], 16)
                .map_err(|e| format!("element {i}: {e}"))?;
            if e >= F::ORDER_U32 {
                return Err(format!(
                    "element {i}: {e:#x} is not below the field modulus"
                ));
            }
            *o = e;
        }
        Ok(Self(out))
    }

    /// The 8 elements big-endian, 4 bytes each: the 32-byte form for Ethereum fields.
    pub fn to_b256(&self) -> B256 {
        let mut b = [0u8; 32];
        for (i, e) in self.0.iter().enumerate() {
            b[4 * i..4 * i + 4].copy_from_slice(&e.to_be_bytes());
        }
        B256::from(b)
    }

    /// The inverse of [`Root::to_b256`].
    pub fn from_b256(b: &B256) -> Result<Self, String> {
        Self::from_hex(&alloy_primitives::hex::encode(b))
    }
}

impl fmt::Display for Root {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

impl fmt::Debug for Root {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Root({})", self.hex())
    }
}

impl Serialize for Root {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.hex())
        } else {
            self.0.serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for Root {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            Self::from_hex(&s).map_err(serde::de::Error::custom)
        } else {
            let a = <[u32; 8]>::deserialize(d)?;
            if let Some(i) = a.iter().position(|e| *e >= F::ORDER_U32) {
                return Err(serde::de::Error::custom(format!(
                    "root element {i} is not below the field modulus"
                )));
            }
            Ok(Self(a))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_b256_and_digest_round_trip() {
        let r = Root([1, 2, 0x7f00_0000, 4, 5, 6, 7, 0xdead]);
        assert_eq!(Root::from_hex(&r.hex()).unwrap(), r);
        assert_eq!(Root::from_b256(&r.to_b256()).unwrap(), r);
        assert_eq!(Root::from_digest(&r.to_digest()), r);
        assert_eq!(&r.hex()[..16], "0000000100000002");
        assert_eq!(r.to_b256()[..8], [0, 0, 0, 1, 0, 0, 0, 2]);
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, format!("\"{}\"", r.hex()));
        assert_eq!(serde_json::from_str::<Root>(&json).unwrap(), r);
        let bin = postcard::to_allocvec(&r).unwrap();
        assert_eq!(postcard::from_bytes::<Root>(&bin).unwrap(), r);
    }

    #[test]
    fn non_canonical_elements_are_refused() {
        let bad = format!("{:08x}{}", F::ORDER_U32, "0".repeat(56));
        assert!(Root::from_hex(&bad).unwrap_err().contains("modulus"));
        assert!(Root::from_hex("00").is_err());
        let bin = postcard::to_allocvec(&[F::ORDER_U32, 0, 0, 0, 0, 0, 0, 0]).unwrap();
        assert!(postcard::from_bytes::<Root>(&bin).is_err());
    }
}
