//! Signed Ethereum transactions, decoded and recovered with `alloy`.

use alloy_consensus::transaction::SignerRecoverable;
use alloy_consensus::{Transaction as _, TxEnvelope};
use alloy_eips::eip2718::{Decodable2718, Encodable2718};
use alloy_primitives::{Address, B256, Bytes};

use std::sync::OnceLock;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::TxError;

/// A signed transaction of a type this chain accepts (legacy, EIP-2930, EIP-1559)
/// and its sender.
///
/// Serialized as its EIP-2718 bytes; deserializing decodes and recovers again, so a
/// `SignedTx` from [`SignedTx::decode`] or serde always holds a valid signature. One
/// from [`SignedTx::decode_unrecovered`] (or [`unrecovered_transactions`]) recovers its
/// sender on first use ([`SignedTx::recover`]), once: the sender is a function of the
/// signed bytes, so it is the same whenever it is recovered.
#[derive(Debug, Clone)]
pub struct SignedTx {
    envelope: TxEnvelope,
    /// The recovered sender, `None` if the signature recovers none; set at decoding,
    /// or on first use for a transaction decoded unrecovered.
    sender: OnceLock<Option<Address>>,
}

/// Two transactions are equal when their signed envelopes are (the sender follows).
impl PartialEq for SignedTx {
    fn eq(&self, other: &Self) -> bool {
        self.envelope == other.envelope
    }
}

impl Eq for SignedTx {}

impl SignedTx {
    /// Decodes EIP-2718 bytes (a legacy transaction is its bare RLP list), refusing
    /// trailing bytes, types other than 0, 1 and 2, and signatures that do not recover.
    pub fn decode(raw: &[u8]) -> Result<Self, TxError> {
        Self::from_envelope(Self::envelope_of(raw)?)
    }

    /// [`SignedTx::decode`] without recovering the sender: the encoding and the type
    /// are checked now, the signature on first use ([`SignedTx::recover`]). For a
    /// holder that uses senders rarely (a replica serving what it applies).
    pub fn decode_unrecovered(raw: &[u8]) -> Result<Self, TxError> {
        let envelope = Self::envelope_of(raw)?;
        Self::check_type(&envelope)?;
        Ok(Self {
            envelope,
            sender: OnceLock::new(),
        })
    }

    fn envelope_of(raw: &[u8]) -> Result<TxEnvelope, TxError> {
        TxEnvelope::decode_2718_exact(raw).map_err(|e| match raw.first() {
            // A typed envelope (first byte below 0x80) of a type alloy does not know.
            Some(&ty) if (3..0x80).contains(&ty) => TxError::UnsupportedType { ty },
            _ => TxError::Encoding {
                reason: e.to_string(),
            },
        })
    }

    fn check_type(envelope: &TxEnvelope) -> Result<(), TxError> {
        match envelope {
            TxEnvelope::Legacy(_) | TxEnvelope::Eip2930(_) | TxEnvelope::Eip1559(_) => Ok(()),
            TxEnvelope::Eip4844(_) | TxEnvelope::Eip7702(_) => Err(TxError::UnsupportedType {
                ty: envelope.tx_type() as u8,
            }),
        }
    }

    /// Checks the type and recovers the sender of an already decoded envelope.
    pub fn from_envelope(envelope: TxEnvelope) -> Result<Self, TxError> {
        Self::check_type(&envelope)?;
        let sender = envelope
            .recover_signer()
            .map_err(|_| TxError::InvalidSender)?;
        Ok(Self {
            envelope,
            sender: OnceLock::from(Some(sender)),
        })
    }

    pub fn envelope(&self) -> &TxEnvelope {
        &self.envelope
    }

    /// The sender, recovered now if it was not yet (once; later calls read it).
    pub fn recover(&self) -> Result<Address, TxError> {
        self.sender
            .get_or_init(|| self.envelope.recover_signer().ok())
            .ok_or(TxError::InvalidSender)
    }

    /// Whether the sender was recovered already (or found unrecoverable).
    pub fn is_recovered(&self) -> bool {
        self.sender.get().is_some()
    }

    /// The sender. Always there for a transaction from [`SignedTx::decode`] or serde;
    /// for one from [`SignedTx::decode_unrecovered`], recovered now if not yet, and
    /// **panics** if its signature recovers no address: such a holder calls
    /// [`SignedTx::recover`] first.
    pub fn sender(&self) -> Address {
        self.recover()
            .expect("the sender of a transaction decoded unrecovered is recovered before use")
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

/// Deserializes a list of transactions as [`SignedTx::decode_unrecovered`] reads each:
/// for `#[serde(deserialize_with = "...")]` on a field that `Vec<SignedTx>`'s own
/// deserialization would recover.
pub fn unrecovered_transactions<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<SignedTx>, D::Error> {
    let raws = Vec::<Bytes>::deserialize(d)?;
    raws.iter()
        .enumerate()
        .map(|(i, raw)| {
            SignedTx::decode_unrecovered(raw)
                .map_err(|e| serde::de::Error::custom(format!("transaction {i}: {e}")))
        })
        .collect()
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
    fn a_transaction_decoded_unrecovered_recovers_its_sender_on_first_use() {
        let raw = transfer_1559(3);
        let eager = SignedTx::decode(&raw).unwrap();
        assert!(eager.is_recovered());
        let lazy = SignedTx::decode_unrecovered(&raw).unwrap();
        assert!(!lazy.is_recovered());
        assert_eq!(lazy, eager);
        assert_eq!(lazy.hash(), eager.hash());
        assert_eq!(lazy.encoded(), eager.encoded());
        assert!(!lazy.is_recovered(), "hashing and encoding recover nothing");
        assert_eq!(lazy.recover(), Ok(dev_signer().address()));
        assert!(lazy.is_recovered());
        assert_eq!(lazy.sender(), eager.sender());
        // As a list through serde, the way a stream's block field reads it.
        #[derive(serde::Deserialize)]
        struct Body {
            #[serde(deserialize_with = "unrecovered_transactions")]
            transactions: Vec<SignedTx>,
        }
        let json = serde_json::json!({ "transactions": [eager.encoded(), transfer_1559(4).into_iter().collect::<Bytes>()] });
        let body: Body = serde_json::from_value(json).unwrap();
        assert_eq!(body.transactions[0], eager);
        assert!(body.transactions.iter().all(|t| !t.is_recovered()));
        assert_eq!(body.transactions[1].recover(), Ok(dev_signer().address()));
        // The encoding and the type are still checked at once.
        let bad = serde_json::json!({ "transactions": ["0x00"] });
        let err = serde_json::from_value::<Body>(bad)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("transaction 0"), "{err}");
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
        // Decoded unrecovered it is taken; its sender is refused when first asked for.
        let lazy = SignedTx::decode_unrecovered(&tx.encoded_2718()).unwrap();
        assert_eq!(lazy.recover(), Err(TxError::InvalidSender));
        assert_eq!(lazy.recover(), Err(TxError::InvalidSender));
        assert!(SignedTx::decode_unrecovered(&blob).is_err());
    }
}
