//! `eth_getProof`: an account and storage slots with Merkle proofs against a state
//! root, in EIP-1186's shape (`docs/nodes.md`, "eth_getProof"). The answer, its
//! proofs' encoding and its check live in `proofbox_chain_types::account_proof`, where
//! a light client finds them without linking a replica; this module proves from the
//! replica's state.

use alloy_primitives::Address;
use alloy_serde::JsonStorageKey;
use proofbox_sequencer::state::MemState;

pub use proofbox_chain_types::account_proof::{
    AccountProof, PROOF_ENCODING_VERSION, StorageProof, decode_proof, encode_proof, verify,
};

/// Proves `address` and `slots` in `state`, the state at block `number`.
pub fn prove(
    state: &MemState,
    number: u64,
    address: Address,
    slots: &[JsonStorageKey],
) -> AccountProof {
    proofbox_chain_types::account_proof::prove(state.tree(), number, address, slots)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::{B256, U256};
    use proofbox_chain_types::Root;
    use proofbox_state::StateProof;

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
