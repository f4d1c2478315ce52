//! `execute_block` against a reference that gathers every touched account after each
//! transaction (the diff built without the cache), on blocks that create, destroy,
//! revert, write storage back and touch empty accounts; and the split of candidates
//! into included, rejected and deferred transactions.

use std::collections::BTreeMap;

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, B256, TxKind, U256};
use alloy_signer::SignerSync;
use proofbox_chain_types::{SignedTx, StateDiff};
use revm::{DatabaseCommit, DatabaseRef, ExecuteEvm};

use super::diff::{Touched, finish_diff, gather_account};
use super::{BlockParams, build_evm, execute_block, tx_env};
use crate::chain::{Core, genesis};
use crate::{Config, DevAccount, dev_accounts};

/// Runtime code: `SSTORE(calldata[0..32], calldata[32..64])`.
const STORE_RUNTIME: [u8; 8] = [0x60, 0x20, 0x35, 0x60, 0x00, 0x35, 0x55, 0x00];
/// Creation code that self-destructs to the caller: `CALLER SELFDESTRUCT`.
const SELF_DESTRUCT_INIT: [u8; 2] = [0x33, 0xff];

/// Creation code returning `STORE_RUNTIME`.
fn store_init() -> Vec<u8> {
    let mut code = vec![
        0x60, 0x08, 0x60, 0x0c, 0x60, 0x00, 0x39, 0x60, 0x08, 0x60, 0x00, 0xf3,
    ];
    code.extend(STORE_RUNTIME);
    code
}

fn store_call(slot: u64, value: u64) -> Vec<u8> {
    let mut data = U256::from(slot).to_be_bytes::<32>().to_vec();
    data.extend(U256::from(value).to_be_bytes::<32>());
    data
}

fn sign(
    from: &DevAccount,
    nonce: u64,
    to: TxKind,
    value: u64,
    input: Vec<u8>,
    gas: u64,
) -> SignedTx {
    let tx = TxEip1559 {
        chain_id: 31337,
        nonce,
        gas_limit: gas,
        max_fee_per_gas: 3_000_000_000,
        max_priority_fee_per_gas: 1,
        to,
        value: U256::from(value),
        input: input.into(),
        ..Default::default()
    };
    let sig = from.signer().sign_hash_sync(&tx.signature_hash()).unwrap();
    SignedTx::decode(&TxEnvelope::from(tx.into_signed(sig)).encoded_2718()).unwrap()
}

fn params(number: u64, gas_limit: u64) -> BlockParams {
    BlockParams {
        chain_id: 31337,
        number,
        timestamp_ms: number * 1000,
        gas_limit,
        base_fee: Config::default().base_fee,
        coinbase: Address::repeat_byte(0xc0),
    }
}

fn genesis_core() -> Core {
    let config = Config::default();
    genesis(&config.alloc(), config.gas_limit, config.base_fee).unwrap()
}

/// The diff of `txs` on `pre`, every touched account gathered after each transaction.
fn reference_diff<DB: DatabaseRef>(pre: &DB, p: &BlockParams, txs: &[SignedTx]) -> StateDiff {
    let mut evm = build_evm(pre, p, false);
    let mut touched: BTreeMap<Address, Touched> = BTreeMap::new();
    for tx in txs {
        let Ok(out) = evm.transact(tx_env(tx)) else {
            continue;
        };
        for (address, account) in &out.state {
            if account.is_touched() {
                gather_account(touched.entry(*address).or_default(), account);
            }
        }
        evm.ctx.journaled_state.database.commit(out.state);
    }
    drop(evm);
    finish_diff(pre, touched).unwrap()
}

/// Executes `txs`, checks the diff against the reference, applies it.
fn run_block(core: &mut Core, p: &BlockParams, txs: Vec<SignedTx>) -> super::Executed {
    let reference = reference_diff(&core.state, p, &txs);
    let out = execute_block(&core.state, p, txs).unwrap();
    assert_eq!(out.diff, reference, "block {}", p.number);
    core.state.apply(&out.diff).unwrap();
    core.state
        .push_block_hash(B256::repeat_byte(p.number as u8));
    out
}

#[test]
fn diff_matches_gathering_after_each_transaction() {
    let a = dev_accounts(6);
    let mut core = genesis_core();
    let call = |to| TxKind::Call(to);
    let store = Address::create(&a[0].address, 0);
    let destroyed = Address::create(&a[1].address, 0);
    // Funded before a contract is created at it.
    let funded = Address::create(&a[1].address, 1);
    let empty = Address::repeat_byte(0x77);
    let block1 = vec![
        sign(&a[0], 0, TxKind::Create, 0, store_init(), 200_000),
        sign(&a[0], 1, call(store), 0, store_call(1, 5), 100_000),
        sign(&a[0], 2, call(store), 0, store_call(2, 7), 100_000),
        sign(&a[2], 0, call(funded), 1_000, vec![], 21_000),
        sign(
            &a[1],
            0,
            TxKind::Create,
            500,
            SELF_DESTRUCT_INIT.to_vec(),
            100_000,
        ),
        sign(&a[1], 1, TxKind::Create, 0, store_init(), 200_000),
        sign(&a[1], 2, call(funded), 0, store_call(3, 9), 100_000),
        sign(&a[2], 1, call(destroyed), 2_000, vec![], 50_000),
        sign(&a[3], 0, call(empty), 0, vec![], 21_000),
        // Out of gas in the `SSTORE`: reverted, the sender pays.
        sign(&a[3], 1, call(store), 0, store_call(4, 1), 21_700),
        // Written and cleared in the same block.
        sign(&a[4], 0, call(store), 0, store_call(6, 3), 100_000),
        sign(&a[4], 1, call(store), 0, store_call(6, 0), 100_000),
        // Refused: nonce too high.
        sign(&a[5], 9, call(empty), 1, vec![], 21_000),
    ];
    let out = run_block(&mut core, &params(1, 30_000_000), block1);
    assert_eq!(out.included.len(), 12);
    assert_eq!(out.rejected.len(), 1);
    assert_eq!(out.rejected[0].1, "nonce too high");
    let failed: Vec<usize> = (0..out.receipts.len())
        .filter(|i| !out.receipts[*i].success)
        .collect();
    assert_eq!(failed, [9], "only the out-of-gas call fails");
    let d = &out.diff;
    assert!(
        d.account(&destroyed)
            .is_some_and(|x| !x.destroyed && x.balance == U256::from(2_000))
    );
    assert!(d.account(&funded).is_some_and(|x| x.code.is_some()));
    assert!(
        d.account(&empty).is_none(),
        "an empty account is not created"
    );
    let slots = &d.account(&store).unwrap().storage;
    assert_eq!(
        slots,
        &[
            (U256::from(1), U256::from(5)),
            (U256::from(2), U256::from(7))
        ]
    );

    let block2 = vec![
        // Changed, then written back to the value before the block.
        sign(&a[0], 3, call(store), 0, store_call(1, 8), 100_000),
        sign(&a[0], 4, call(store), 0, store_call(1, 5), 100_000),
        sign(&a[0], 5, call(store), 0, store_call(2, 0), 100_000),
        sign(&a[1], 3, call(funded), 0, store_call(3, 10), 100_000),
        sign(&a[2], 2, call(empty), 0, vec![], 21_000),
    ];
    let out = run_block(&mut core, &params(2, 30_000_000), block2);
    assert_eq!(out.included.len(), 5);
    let slots = &out.diff.account(&store).unwrap().storage;
    assert_eq!(slots, &[(U256::from(2), U256::ZERO)]);
    assert_eq!(
        core.state.storage_at(&funded, &U256::from(3)),
        U256::from(10)
    );
}

#[test]
fn candidates_split_into_included_rejected_and_deferred() {
    let a = dev_accounts(3);
    let core = genesis_core();
    let to = TxKind::Call(Address::repeat_byte(0x42));
    let candidates = vec![
        sign(&a[0], 0, to, 1, vec![], 21_000),
        sign(&a[1], 5, to, 1, vec![], 21_000),
        sign(&a[0], 1, to, 1, vec![], 21_000),
        sign(&a[2], 0, to, 1, vec![], 60_000),
        sign(&a[2], 1, to, 1, vec![], 21_000),
        sign(&a[1], 0, to, 1, vec![], 21_000),
        sign(&a[0], 2, to, 1, vec![], 21_000),
    ];
    // Room for two transfers and a half: the fourth candidate exceeds the block, the
    // fifth no longer fits.
    let out = execute_block(&core.state, &params(1, 52_500), candidates.clone()).unwrap();
    assert_eq!(out.included, [candidates[0].clone(), candidates[2].clone()]);
    let rejected: Vec<(SignedTx, &str)> = out
        .rejected
        .iter()
        .map(|(tx, m)| (tx.clone(), m.as_str()))
        .collect();
    assert_eq!(
        rejected,
        [
            (candidates[1].clone(), "nonce too high"),
            (candidates[3].clone(), "exceeds block gas limit"),
        ]
    );
    assert_eq!(out.deferred, candidates[4..]);
    assert_eq!(out.receipts.len(), 2);
    assert_eq!(out.gas_used, 42_000);
}
