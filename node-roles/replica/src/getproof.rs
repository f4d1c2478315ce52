//! `eth_getProof`: an account and storage slots with Merkle proofs against a state
//! root, in EIP-1186's shape (`docs/nodes.md`, "eth_getProof").
//!
//! Each proof is one [`StateProof`] of the Poseidon2 state tree, encoded as postcard
//! of `(PROOF_ENCODING_VERSION, proof)` and written as `0x` hex: `accountProof` and
//! each `storageProof[i].proof` are arrays of exactly that one element. The tree is
//! flat (storage leaves sit beside account leaves), so every proof is checked against
//! the state root, which `storageHash` repeats as 32 bytes. An absent account is
//! `nonce 0, balance 0, codeHash 0x00..00` with an exclusion proof; a slot holding
//! zero is absent and has an exclusion proof.

use alloy_primitives::{Address, B256, Bytes, U64, U256};
use alloy_serde::JsonStorageKey;
use proofbox_chain_types::Root;
use proofbox_sequencer::state::MemState;
use proofbox_state::{AccountInfo, StateKey, StateProof, StateValue};
use serde::{Deserialize, Serialize};

/// The version before every encoded proof; others are refused.
pub const PROOF_ENCODING_VERSION: u16 = 1;

/// `postcard((PROOF_ENCODING_VERSION, proof))`.
pub fn encode_proof(proof: &StateProof) -> Bytes {
    postcard::to_stdvec(&(PROOF_ENCODING_VERSION, proof))
        .expect("a proof encodes")
        .into()
}

/// The inverse of [`encode_proof`]: refuses other versions and trailing bytes.
pub fn decode_proof(bytes: &[u8]) -> Result<StateProof, String> {
    let ((version, proof), rest): ((u16, StateProof), _) =
        postcard::take_from_bytes(bytes).map_err(|e| format!("undecodable proof: {e}"))?;
    if version != PROOF_ENCODING_VERSION {
        return Err(format!(
            "proof encoding version {version}, expected {PROOF_ENCODING_VERSION}"
        ));
    }
    if !rest.is_empty() {
        return Err(format!("{} bytes after the proof", rest.len()));
    }
    Ok(proof)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageProof {
    pub key: JsonStorageKey,
    pub value: U256,
    /// One element: the encoded [`StateProof`].
    pub proof: Vec<Bytes>,
}

/// The answer of `eth_getProof`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountProof {
    pub address: Address,
    pub balance: U256,
    pub nonce: U64,
    /// Zero for an absent account.
    pub code_hash: B256,
    /// The state root as 32 bytes (storage is proven against the state root).
    pub storage_hash: B256,
    /// One element: the encoded [`StateProof`].
    pub account_proof: Vec<Bytes>,
    pub storage_proof: Vec<StorageProof>,
    /// The root every proof is against (64 hex digits).
    pub state_root: Root,
    pub block_number: U64,
}

fn slot_of(key: &JsonStorageKey) -> U256 {
    U256::from_be_bytes(key.as_b256().0)
}

/// Proves `address` and `slots` in `state`, the state at block `number`.
pub fn prove(
    state: &MemState,
    number: u64,
    address: Address,
    slots: &[JsonStorageKey],
) -> AccountProof {
    let tree = state.tree();
    let (value, proof) = tree.prove(&StateKey::Account(address));
    let info = match value {
        Some(StateValue::Account(a)) => Some(a),
        _ => None,
    };
    let storage_proof = slots
        .iter()
        .map(|k| {
            let key = StateKey::Storage {
                address,
                slot: slot_of(k),
            };
            let (value, proof) = tree.prove(&key);
            let value = match value {
                Some(StateValue::Storage(v)) => v,
                _ => U256::ZERO,
            };
            StorageProof {
                key: *k,
                value,
                proof: vec![encode_proof(&proof)],
            }
        })
        .collect();
    let root = state.root();
    AccountProof {
        address,
        balance: info.map_or(U256::ZERO, |a| a.balance),
        nonce: U64::from(info.map_or(0, |a| a.nonce)),
        code_hash: info.map_or(B256::ZERO, |a| a.code_hash),
        storage_hash: root.to_b256(),
        account_proof: vec![encode_proof(&proof)],
        storage_proof,
        state_root: root,
        block_number: U64::from(number),
    }
}

fn one(proofs: &[Bytes], what: &str) -> Result<StateProof, String> {
    match proofs {
        [p] => decode_proof(p).map_err(|e| format!("{what}: {e}")),
        _ => Err(format!("{what}: {} proofs, expected 1", proofs.len())),
    }
}

/// Checks every proof of `p` against `root` (one the caller trusts, e.g. its proven
/// root), ignoring the root `p` names: the account's fields (or its absence, when the
/// code hash is zero) and every slot's value (absence when zero).
pub fn verify(p: &AccountProof, root: &Root) -> Result<(), String> {
    let digest = root.to_digest();
    let key = StateKey::Account(p.address);
    let value = (p.code_hash != B256::ZERO).then_some(StateValue::Account(AccountInfo {
        nonce: p.nonce.to(),
        balance: p.balance,
        code_hash: p.code_hash,
    }));
    if value.is_none() && (!p.balance.is_zero() || p.nonce != U64::ZERO) {
        return Err("an absent account (zero code hash) with a balance or nonce".into());
    }
    one(&p.account_proof, "account proof")?
        .verify(&digest, &key, value.as_ref())
        .map_err(|e| format!("account {}: {e}", p.address))?;
    for s in &p.storage_proof {
        let key = StateKey::Storage {
            address: p.address,
            slot: slot_of(&s.key),
        };
        let value = (!s.value.is_zero()).then_some(StateValue::Storage(s.value));
        one(&s.proof, "storage proof")?
            .verify(&digest, &key, value.as_ref())
            .map_err(|e| format!("slot {} of {}: {e}", s.key.as_b256(), p.address))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proof_encoding_is_versioned_and_exact() {
        let p = StateProof::default();
        let bytes = encode_proof(&p);
        assert_eq!(decode_proof(&bytes).unwrap(), p);
        let mut other = bytes.to_vec();
        other[0] = 2;
        assert!(decode_proof(&other).unwrap_err().contains("version 2"));
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert!(
            decode_proof(&longer)
                .unwrap_err()
                .contains("after the proof")
        );
    }

    #[test]
    fn proofs_of_a_state_check_against_its_root_only() {
        let mut s = MemState::new();
        let a = Address::repeat_byte(9);
        let diff = proofbox_chain_types::StateDiff::new(vec![proofbox_chain_types::AccountDiff {
            address: a,
            nonce: 1,
            balance: U256::from(5),
            code_hash: revm::primitives::KECCAK_EMPTY,
            code: None,
            storage: vec![],
            destroyed: false,
        }])
        .unwrap();
        let root = s.apply(&diff).unwrap();
        let slots = [JsonStorageKey::from(U256::from(3))];
        let p = prove(&s, 1, a, &slots);
        verify(&p, &root).unwrap();
        assert_eq!(p.storage_proof[0].value, U256::ZERO);
        let absent = prove(&s, 1, Address::repeat_byte(8), &slots);
        assert_eq!(absent.code_hash, B256::ZERO);
        verify(&absent, &root).unwrap();
        let empty = Root::from_digest(&proofbox_state::StateTree::empty_root());
        assert!(verify(&p, &empty).is_err());
        let mut two = p.clone();
        two.account_proof.push(two.account_proof[0].clone());
        assert!(verify(&two, &root).unwrap_err().contains("2 proofs"));
    }
}
