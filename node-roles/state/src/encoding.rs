//! How Ethereum state is written as field elements.
//!
//! Every number is read from its usual byte form as an unsigned big-endian integer
//! (addresses and `B256` code hashes too) and split into **16-bit limbs, least
//! significant limb first**. Each limb is a KoalaBear element below `2^16 < p`, so the
//! encoding is injective and decoding, which rejects any limb `>= 2^16`, returns the
//! exact original value: `U256` and `B256` take 16 limbs, an `Address` 10, a `u64` 4.
//!
//! Messages hashed by the tree start with a domain tag ([`Tag`]) and have a layout
//! fixed by it, so no two kinds of message, and no two messages of one kind, can be
//! read as each other. Every message is a whole number of 16-element blocks (the
//! sponge's rate), zero-filled: the sponge absorbs whole blocks only, which is also
//! what lets the state-transition circuit hash with a fixed schedule.

use alloy_primitives::{Address, B256, U256};
use p3_field::{PrimeCharacteristicRing, PrimeField32};
use serde::{Deserialize, Serialize};

use crate::error::EncodingError;
use crate::hash::hash;
use crate::{Digest, F};

/// Limbs of a 256-bit value.
pub const U256_LIMBS: usize = 16;
/// Limbs of a 160-bit address.
pub const ADDRESS_LIMBS: usize = 10;
/// Limbs of a `u64`.
pub const U64_LIMBS: usize = 4;
/// Limbs of an account value: nonce, balance, code hash.
pub const ACCOUNT_VALUE_LIMBS: usize = U64_LIMBS + 2 * U256_LIMBS;
/// Limbs of a storage value.
pub const STORAGE_VALUE_LIMBS: usize = U256_LIMBS;

/// Elements of a key message: 2 blocks.
pub const KEY_MESSAGE_LEN: usize = 32;
/// Elements of a leaf message: 3 blocks.
pub const LEAF_MESSAGE_LEN: usize = 48;
/// Value limbs in a leaf message and a diff record: an account's 36, a storage
/// value's 16 followed by 20 zeros.
pub const VALUE_SLOTS: usize = ACCOUNT_VALUE_LIMBS;

/// Domain tags, the first element of every hashed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Tag {
    /// `[1, address(10), 0(16), 0(5)]`: 32 elements.
    AccountKey = 1,
    /// `[2, address(10), slot(16), 0(5)]`: 32 elements.
    StorageKey = 2,
    /// `[3, key digest(8), nonce(4), balance(16), code hash(16), 0(3)]`: 48 elements.
    AccountLeaf = 3,
    /// `[4, key digest(8), value(16), 0(20), 0(3)]`: 48 elements.
    StorageLeaf = 4,
    /// The canonical encoding of a diff: one block `[5, 0(15)]`, then 64 elements per
    /// update.
    Diff = 5,
}

impl Tag {
    pub fn element(self) -> F {
        F::from_u32(self as u32)
    }
}

fn limbs_le<const N: usize>(limbs64: &[u64]) -> [F; N] {
    core::array::from_fn(|i| F::from_u32(((limbs64[i / 4] >> (16 * (i % 4))) & 0xffff) as u32))
}

fn check_limbs(limbs: &[F], expected: usize) -> Result<Vec<u64>, EncodingError> {
    if limbs.len() != expected {
        return Err(EncodingError::Length {
            expected,
            got: limbs.len(),
        });
    }
    let mut words = vec![0u64; expected.div_ceil(4)];
    for (index, l) in limbs.iter().enumerate() {
        let value = l.as_canonical_u32();
        if value > 0xffff {
            return Err(EncodingError::LimbOutOfRange { index, value });
        }
        words[index / 4] |= (value as u64) << (16 * (index % 4));
    }
    Ok(words)
}

/// A 256-bit number as 16 limbs of 16 bits, least significant first.
pub fn u256_to_limbs(x: U256) -> [F; U256_LIMBS] {
    limbs_le(x.as_limbs())
}

/// The inverse of [`u256_to_limbs`]; rejects a limb `>= 2^16` or a wrong count.
pub fn u256_from_limbs(limbs: &[F]) -> Result<U256, EncodingError> {
    let words = check_limbs(limbs, U256_LIMBS)?;
    Ok(U256::from_limbs(words.try_into().expect("4 words")))
}

/// A 32-byte hash, read as a big-endian number, as 16 limbs.
pub fn b256_to_limbs(x: B256) -> [F; U256_LIMBS] {
    u256_to_limbs(U256::from_be_bytes(x.0))
}

/// The inverse of [`b256_to_limbs`].
pub fn b256_from_limbs(limbs: &[F]) -> Result<B256, EncodingError> {
    Ok(B256::from(u256_from_limbs(limbs)?.to_be_bytes::<32>()))
}

/// An address, read as a big-endian 160-bit number, as 10 limbs.
pub fn address_to_limbs(a: Address) -> [F; ADDRESS_LIMBS] {
    let mut be = [0u8; 32];
    be[12..].copy_from_slice(a.as_slice());
    let x = U256::from_be_bytes(be);
    let all = u256_to_limbs(x);
    core::array::from_fn(|i| all[i])
}

/// The inverse of [`address_to_limbs`].
pub fn address_from_limbs(limbs: &[F]) -> Result<Address, EncodingError> {
    let words = check_limbs(limbs, ADDRESS_LIMBS)?;
    let mut w = [0u64; 4];
    w[..3].copy_from_slice(&words);
    let be = U256::from_limbs(w).to_be_bytes::<32>();
    Ok(Address::from_slice(&be[12..]))
}

/// A `u64` as 4 limbs.
pub fn u64_to_limbs(x: u64) -> [F; U64_LIMBS] {
    limbs_le(&[x])
}

/// The inverse of [`u64_to_limbs`].
pub fn u64_from_limbs(limbs: &[F]) -> Result<u64, EncodingError> {
    Ok(check_limbs(limbs, U64_LIMBS)?[0])
}

/// Whether a key names an account or a storage slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum KeyKind {
    Account,
    Storage,
}

impl core::fmt::Display for KeyKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Account => "account",
            Self::Storage => "storage",
        })
    }
}

/// A key of the flat state map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum StateKey {
    /// An account's leaf: nonce, balance, code hash.
    Account(Address),
    /// One storage slot of an account.
    Storage { address: Address, slot: U256 },
}

impl StateKey {
    pub const fn kind(&self) -> KeyKind {
        match self {
            Self::Account(_) => KeyKind::Account,
            Self::Storage { .. } => KeyKind::Storage,
        }
    }

    /// The key's tag, address limbs and slot limbs (zeros for an account): the first
    /// 27 elements of its key message and of its diff record.
    pub fn fields(&self) -> [F; 1 + ADDRESS_LIMBS + U256_LIMBS] {
        let (tag, address, slot) = match self {
            Self::Account(a) => (Tag::AccountKey, *a, U256::ZERO),
            Self::Storage { address, slot } => (Tag::StorageKey, *address, *slot),
        };
        let mut f = [F::ZERO; 1 + ADDRESS_LIMBS + U256_LIMBS];
        f[0] = tag.element();
        f[1..1 + ADDRESS_LIMBS].copy_from_slice(&address_to_limbs(address));
        f[1 + ADDRESS_LIMBS..].copy_from_slice(&u256_to_limbs(slot));
        f
    }

    /// The message whose hash is the key digest: `[tag, address(10), slot(16), 0(5)]`,
    /// the slot zero for an account (32 elements, 2 blocks).
    pub fn encode(&self) -> Vec<F> {
        self.message().to_vec()
    }

    /// [`StateKey::encode`] as an array.
    pub fn message(&self) -> [F; KEY_MESSAGE_LEN] {
        let mut m = [F::ZERO; KEY_MESSAGE_LEN];
        m[..27].copy_from_slice(&self.fields());
        m
    }

    /// The key digest: the Poseidon2 sponge of [`StateKey::encode`]. Its 8 elements
    /// give the key's path in the tree ([`crate::Path`]).
    pub fn digest(&self) -> Digest {
        #[cfg(test)]
        if let Some(d) = forced::get(self) {
            return d;
        }
        hash(&self.encode())
    }
}

/// An account's fields in the state (its storage has leaves of its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct AccountInfo {
    pub nonce: u64,
    pub balance: U256,
    pub code_hash: B256,
}

/// A value of the flat state map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StateValue {
    Account(AccountInfo),
    Storage(U256),
}

impl StateValue {
    pub const fn kind(&self) -> KeyKind {
        match self {
            Self::Account(_) => KeyKind::Account,
            Self::Storage(_) => KeyKind::Storage,
        }
    }

    /// The value's limbs: nonce(4), balance(16), code hash(16) for an account; the
    /// value(16) for a storage slot.
    pub fn to_limbs(&self) -> Vec<F> {
        match self {
            Self::Account(a) => {
                let mut v = Vec::with_capacity(ACCOUNT_VALUE_LIMBS);
                v.extend(u64_to_limbs(a.nonce));
                v.extend(u256_to_limbs(a.balance));
                v.extend(b256_to_limbs(a.code_hash));
                v
            }
            Self::Storage(x) => u256_to_limbs(*x).to_vec(),
        }
    }

    /// [`StateValue::to_limbs`] zero-filled to [`VALUE_SLOTS`]: the value part of a leaf
    /// message and of a diff record.
    pub fn to_slots(&self) -> [F; VALUE_SLOTS] {
        let mut s = [F::ZERO; VALUE_SLOTS];
        let limbs = self.to_limbs();
        s[..limbs.len()].copy_from_slice(&limbs);
        s
    }

    /// The inverse of [`StateValue::to_limbs`] for a value of kind `kind`.
    pub fn from_limbs(kind: KeyKind, limbs: &[F]) -> Result<Self, EncodingError> {
        match kind {
            KeyKind::Account => {
                if limbs.len() != ACCOUNT_VALUE_LIMBS {
                    return Err(EncodingError::Length {
                        expected: ACCOUNT_VALUE_LIMBS,
                        got: limbs.len(),
                    });
                }
                Ok(Self::Account(AccountInfo {
                    nonce: u64_from_limbs(&limbs[..U64_LIMBS])?,
                    balance: u256_from_limbs(&limbs[U64_LIMBS..U64_LIMBS + U256_LIMBS])?,
                    code_hash: b256_from_limbs(&limbs[U64_LIMBS + U256_LIMBS..])?,
                }))
            }
            KeyKind::Storage => Ok(Self::Storage(u256_from_limbs(limbs)?)),
        }
    }
}

/// The leaf message of `value` stored under the key with digest `key_digest`:
/// `[leaf tag, key digest(8), value slots(36), 0(3)]` (48 elements, 3 blocks).
pub fn leaf_message(key_digest: &Digest, value: &StateValue) -> Vec<F> {
    leaf_message_array(key_digest, value).to_vec()
}

/// [`leaf_message`] as an array.
pub fn leaf_message_array(key_digest: &Digest, value: &StateValue) -> [F; LEAF_MESSAGE_LEN] {
    let mut m = [F::ZERO; LEAF_MESSAGE_LEN];
    m[0] = match value.kind() {
        KeyKind::Account => Tag::AccountLeaf,
        KeyKind::Storage => Tag::StorageLeaf,
    }
    .element();
    m[1..9].copy_from_slice(key_digest);
    m[9..9 + VALUE_SLOTS].copy_from_slice(&value.to_slots());
    m
}

/// The key digests of many keys at once, hashed in the SIMD lanes and across cores
/// if `par` ([`crate::hash::hash_many`]).
pub fn key_digests(keys: &[StateKey], par: bool) -> Vec<Digest> {
    let messages: Vec<[F; KEY_MESSAGE_LEN]> = keys.iter().map(|k| k.message()).collect();
    #[allow(unused_mut)]
    let mut out = crate::hash::hash_many(&messages, par);
    #[cfg(test)]
    for (d, k) in out.iter_mut().zip(keys) {
        if let Some(f) = forced::get(k) {
            *d = f;
        }
    }
    out
}

/// The leaf digests of many `(key digest, value)` pairs at once.
pub fn leaf_digests(leaves: &[(Digest, StateValue)], par: bool) -> Vec<Digest> {
    let messages: Vec<[F; LEAF_MESSAGE_LEN]> = leaves
        .iter()
        .map(|(k, v)| leaf_message_array(k, v))
        .collect();
    crate::hash::hash_many(&messages, par)
}

/// The leaf digest: the sponge of [`leaf_message`]. The leaf commits to the whole key
/// digest, not only to the path that leads to it.
pub fn leaf_digest(key_digest: &Digest, value: &StateValue) -> Digest {
    hash(&leaf_message(key_digest, value))
}

/// Test-only key digests: a unit test gives chosen keys chosen digests, so that paths
/// sharing any prefix (up to all 247 leading bits) can be forced, which real keys only
/// reach by finding Poseidon2 near-collisions. Every use of a key's digest (its path,
/// its leaf, a neighbor's position) goes through [`StateKey::digest`], so the tree
/// sees a forced key exactly as it would see a real one with that digest.
#[cfg(test)]
pub(crate) mod forced {
    use std::collections::HashMap;
    use std::sync::{LazyLock, Mutex};

    use super::StateKey;
    use crate::Digest;

    static FORCED: LazyLock<Mutex<HashMap<StateKey, Digest>>> = LazyLock::new(Default::default);

    pub fn set(key: StateKey, digest: Digest) {
        FORCED.lock().unwrap().insert(key, digest);
    }

    pub fn get(key: &StateKey) -> Option<Digest> {
        FORCED.lock().unwrap().get(key).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<U256> {
        let mut v = vec![
            U256::ZERO,
            U256::from(1u8),
            U256::from(0xffffu32),
            U256::from(0x10000u32),
            U256::MAX,
            U256::MAX - U256::from(1u8),
            U256::from(1u8) << 255,
            U256::from(0x7f00_0001u32), // KoalaBear's modulus
        ];
        let mut x = U256::from(0x1234_5678_9abc_def0u64);
        for _ in 0..50 {
            x = x.wrapping_mul(U256::from(6364136223846793005u64))
                + U256::from(1442695040888963407u64);
            v.push(x);
        }
        v
    }

    #[test]
    fn u256_and_b256_round_trip_exactly() {
        for x in samples() {
            let limbs = u256_to_limbs(x);
            assert!(limbs.iter().all(|l| l.as_canonical_u32() <= 0xffff));
            assert_eq!(u256_from_limbs(&limbs).unwrap(), x);
            let b = B256::from(x.to_be_bytes::<32>());
            assert_eq!(b256_from_limbs(&b256_to_limbs(b)).unwrap(), b);
        }
        // Least significant limb first.
        assert_eq!(
            u256_to_limbs(U256::from(0x0002_0001u32))[..2],
            [F::ONE, F::TWO]
        );
    }

    #[test]
    fn addresses_and_u64_round_trip() {
        for x in samples() {
            let a = Address::from_slice(&x.to_be_bytes::<32>()[12..]);
            assert_eq!(address_from_limbs(&address_to_limbs(a)).unwrap(), a);
            let n = x.as_limbs()[1];
            assert_eq!(u64_from_limbs(&u64_to_limbs(n)).unwrap(), n);
        }
        assert_eq!(u64_from_limbs(&u64_to_limbs(u64::MAX)).unwrap(), u64::MAX);
    }

    #[test]
    fn decoding_rejects_out_of_range_limbs_and_wrong_lengths() {
        let mut limbs = u256_to_limbs(U256::MAX);
        limbs[7] = F::from_u32(0x10000);
        assert_eq!(
            u256_from_limbs(&limbs),
            Err(EncodingError::LimbOutOfRange {
                index: 7,
                value: 0x10000
            })
        );
        assert!(matches!(
            u256_from_limbs(&limbs[..15]),
            Err(EncodingError::Length {
                expected: 16,
                got: 15
            })
        ));
        let v = StateValue::Account(AccountInfo {
            nonce: 7,
            balance: U256::MAX,
            code_hash: B256::repeat_byte(0xab),
        });
        assert_eq!(
            StateValue::from_limbs(KeyKind::Account, &v.to_limbs()).unwrap(),
            v
        );
        assert!(StateValue::from_limbs(KeyKind::Storage, &v.to_limbs()).is_err());
    }

    #[test]
    fn message_lengths_match_their_tags() {
        let a = Address::repeat_byte(1);
        assert_eq!(StateKey::Account(a).encode().len(), KEY_MESSAGE_LEN);
        let s = StateKey::Storage {
            address: a,
            slot: U256::ZERO,
        };
        assert_eq!(s.encode().len(), KEY_MESSAGE_LEN);
        let v = StateValue::Storage(U256::MAX);
        assert_eq!(leaf_message(&s.digest(), &v).len(), LEAF_MESSAGE_LEN);
        assert_eq!(KEY_MESSAGE_LEN % crate::hash::SPONGE_RATE, 0);
        assert_eq!(LEAF_MESSAGE_LEN % crate::hash::SPONGE_RATE, 0);
        // An account key and a storage key never share a digest by construction of
        // their tags; spot-check the obvious candidates.
        assert_ne!(StateKey::Account(a).digest(), s.digest());
        assert_ne!(
            leaf_digest(&s.digest(), &StateValue::Storage(U256::ZERO)),
            crate::hash::EMPTY
        );
    }
}
