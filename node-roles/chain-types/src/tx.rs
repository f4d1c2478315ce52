//! Signed Ethereum transactions, decoded and recovered with `alloy`.

use alloy_consensus::transaction::SignerRecoverable;
use alloy_consensus::{Transaction as _, TxEnvelope};
use alloy_eips::eip2718::{Decodable2718, Encodable2718};
use alloy_primitives::{Address, B256, Bytes};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::TxError;

/// A signed transaction of a type this chain accepts (legacy, EIP-2930, EIP-1559)
/// with its recovered sender.
///
/// Serialized as its EIP-2718 bytes; deserializing decodes and recovers again, so a
/// `SignedTx` always holds a valid signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedTx {
    envelope: TxEnvelope,
    sender: Address,
}

impl SignedTx {
    /// Decodes EIP-2718 bytes (a legacy transaction is its bare RLP list), refusing
    /// trailing bytes, types other than 0, 1 and 2, and signatures that do not recover.
    pub fn decode(raw: &[u8]) -> Result<Self, TxError> {
        let envelope = TxEnvelope::decode_2718_exact(raw).map_err(|e| match raw.first() {
            // A typed envelope (first byte below 0x80) of a type alloy does not know.
            Some(&ty) if (3..0x80).contains(&ty) => TxError::UnsupportedType { ty },
            _ => TxError::Encoding {
                reason: e.to_string(),
            },
        })?;
        Self::from_envelope(envelope)
    }

    /// Checks the type and recovers the sender of an already decoded envelope.
    pub fn from_envelope(envelope: TxEnvelope) -> Result<Self, TxError> {
        match envelope {
            TxEnvelope::Legacy(_) | TxEnvelope::Eip2930(_) | TxEnvelope::Eip1559(_) => {}
            TxEnvelope::Eip4844(_) | TxEnvelope::Eip7702(_) => {
                return Err(TxError::UnsupportedType {
                    ty: envelope.tx_type() as u8,
                });
            }
        }
        let sender = envelope
            .recover_signer()
            .map_err(|_| TxError::InvalidSender)?;
        Ok(Self { envelope, sender })
    }

    pub fn envelope(&self) -> &TxEnvelope {
        &self.envelope
    }

    pub fn sender(&self) -> Address {
        self.sender
    }

    pub fn hash(&self) -> B256 {
        *self.envelope.tx_hash()
    }

    /// The EIP-2718 type byte: 0, 1 or 2.
    pub fn tx_type(&self) -> u8 {
        self.envelope.tx_type() as u8
    }

    pub fn nonce(&self) -> u64 {
        self.envelope.nonce()
    }

    pub fn gas_limit(&self) -> u64 {
        self.envelope.gas_limit()
    }

    /// The EIP-2718 bytes, as [`SignedTx::decode`] reads them.
    pub fn encoded(&self) -> Bytes {
        self.envelope.encoded_2718().into()
    }
}

impl Serialize for SignedTx {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.encoded().serialize(s)
    }
}

impl<'de> Deserialize<'de> for SignedTx {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Bytes::deserialize(d)?;
        Self::decode(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use alloy_consensus::{SignableTransaction, TxEip1559, TxEip2930, TxEip4844, TxLegacy};
    use alloy_primitives::{TxKind, U256};
    use alloy_signer::SignerSync;
    use alloy_signer_local::PrivateKeySigner;

    /// The first development key (anvil's account 0).
    pub(crate) fn dev_signer() -> PrivateKeySigner {
        "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
            .parse()
            .unwrap()
    }

    pub(crate) fn sign<T: SignableTransaction<alloy_primitives::Signature>>(tx: T) -> Vec<u8>
    where
        TxEnvelope: From<alloy_consensus::Signed<T>>,
    {
        let sig = dev_signer().sign_hash_sync(&tx.signature_hash()).unwrap();
        TxEnvelope::from(tx.into_signed(sig)).encoded_2718()
    }

    pub(crate) fn transfer_1559(nonce: u64) -> Vec<u8> {
        sign(TxEip1559 {
            chain_id: 31337,
            nonce,
            gas_limit: 21_000,
            max_fee_per_gas: 2_000_000_000,
            max_priority_fee_per_gas: 1,
            to: TxKind::Call(Address::repeat_byte(0x11)),
            value: U256::from(5),
            ..Default::default()
        })
    }

    #[test]
    fn decodes_every_accepted_type_and_recovers_the_sender() {
        let to = TxKind::Call(Address::repeat_byte(0x11));
        let raws = [
            sign(TxLegacy {
                chain_id: Some(31337),
                gas_price: 2_000_000_000,
                gas_limit: 21_000,
                to,
                ..Default::default()
            }),
            sign(TxEip2930 {
                chain_id: 31337,
                gas_price: 2_000_000_000,
                gas_limit: 21_000,
                to,
                ..Default::default()
            }),
            transfer_1559(0),
        ];
        for (ty, raw) in raws.iter().enumerate() {
            let tx = SignedTx::decode(raw).unwrap();
            assert_eq!(tx.tx_type() as usize, ty);
            assert_eq!(tx.sender(), dev_signer().address());
            assert_eq!(tx.encoded().as_ref(), raw.as_slice());
            assert_eq!(tx.hash(), alloy_primitives::keccak256(raw));
            let bin = postcard::to_allocvec(&tx).unwrap();
            assert_eq!(postcard::from_bytes::<SignedTx>(&bin).unwrap(), tx);
        }
    }

    #[test]
    fn refuses_garbage_trailing_bytes_bad_signatures_and_unsupported_types() {
        let raw = transfer_1559(0);
        let mut trailing = raw.clone();
        trailing.push(0);
        assert!(matches!(
            SignedTx::decode(&trailing),
            Err(TxError::Encoding { .. })
        ));
        assert!(SignedTx::decode(&[]).is_err());
        assert!(matches!(
            SignedTx::decode(&raw[..raw.len() - 3]),
            Err(TxError::Encoding { .. })
        ));
        let blob = sign(TxEip4844 {
            chain_id: 31337,
            gas_limit: 21_000,
            max_fee_per_gas: 2_000_000_000,
            blob_versioned_hashes: vec![B256::repeat_byte(1)],
            max_fee_per_blob_gas: 1,
            ..Default::default()
        });
        let e = SignedTx::decode(&blob).unwrap_err();
        assert_eq!(e, TxError::UnsupportedType { ty: 3 });
        assert_eq!(e.to_string(), "transaction type not supported");
        let mut unknown = raw.clone();
        unknown[0] = 0x05;
        assert!(SignedTx::decode(&unknown).is_err());
        unknown[0] = 0x6a;
        assert_eq!(
            SignedTx::decode(&unknown).unwrap_err(),
            TxError::UnsupportedType { ty: 0x6a }
        );
        // r = 0 recovers no address.
        let mut tx = TxEnvelope::decode_2718_exact(&raw).unwrap();
        if let TxEnvelope::Eip1559(s) = &mut tx {
            let bad = alloy_primitives::Signature::new(U256::ZERO, U256::from(1), false);
            *s = alloy_consensus::Signed::new_unhashed(s.tx().clone(), bad);
        }
        assert_eq!(
            SignedTx::decode(&tx.encoded_2718()).unwrap_err(),
            TxError::InvalidSender
        );
    }
}
