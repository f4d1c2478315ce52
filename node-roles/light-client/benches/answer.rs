//! What a light client pays per answer: checking an `eth_getProof` answer (an account
//! and one storage slot) against its proven root, for states of 2^14 to 2^20 keys,
//! beside the cost of making the answer (the untrusted node's side) in the same run.
//!
//! `cargo bench -p proofbox-light-client --bench answer`

use alloy_primitives::{Address, B256, U256};
use alloy_serde::JsonStorageKey;
use criterion::{Criterion, criterion_group, criterion_main};
use proofbox_chain_types::Root;
use proofbox_chain_types::account_proof::{prove, verify};
use proofbox_state::{AccountInfo, Parallelism, StateKey, StateTree, StateValue, Update};

fn address(i: u64) -> Address {
    let mut a = [0x11u8; 20];
    a[12..].copy_from_slice(&i.to_be_bytes());
    Address::from(a)
}

/// `n` keys: half accounts, half storage slots of those accounts.
fn tree(n: u64) -> StateTree {
    let mut t = StateTree::new();
    let updates = (0..n).map(|i| {
        if i % 2 == 0 {
            Update::set(
                StateKey::Account(address(i / 2)),
                StateValue::Account(AccountInfo {
                    nonce: i,
                    balance: U256::from(i),
                    code_hash: B256::repeat_byte(0xc5),
                }),
            )
        } else {
            Update::set(
                StateKey::Storage {
                    address: address(i / 2),
                    slot: U256::from(1),
                },
                StateValue::Storage(U256::from(i)),
            )
        }
    });
    let diff = proofbox_state::Diff::new(updates).unwrap();
    let _ = t.apply(&diff, Parallelism::Parallel);
    t
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("light_client_answer");
    for log in [14u32, 17, 20] {
        let t = tree(1 << log);
        let root = Root::from_digest(&t.root());
        let slot = [JsonStorageKey::from(U256::from(1))];
        let who = address(12345 % (1 << (log - 1)));
        let answer = prove(&t, 1, who, &slot);
        verify(&answer, &root).unwrap();
        g.bench_function(format!("check_account_and_slot_2_{log}_keys"), |b| {
            b.iter(|| verify(&answer, &root).unwrap())
        });
        g.bench_function(format!("prove_account_and_slot_2_{log}_keys"), |b| {
            b.iter(|| prove(&t, 1, who, &slot))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
