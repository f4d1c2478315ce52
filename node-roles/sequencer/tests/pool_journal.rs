//! The pool journal across restarts: transactions acknowledged over JSON-RPC and not
//! yet in a block come back pending after a restart on the same data directory and
//! are then mined; a replaced transaction and one that execution refused do not come
//! back.

use std::path::Path;
use std::time::Duration;

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, B256, TxKind, U256};
use alloy_provider::Provider;
use alloy_signer::SignerSync;
use proofbox_sequencer::{Config, dev_accounts};

mod common;
use common::{Node, receipt};

const GWEI: u128 = 1_000_000_000;
const OTHER: Address = Address::repeat_byte(0x30);

/// A transfer of `value` from development account `from` to `to`.
fn raw(from: u32, nonce: u64, max_fee: u128, to: Address, value: U256) -> Vec<u8> {
    let tx = TxEip1559 {
        chain_id: 31337,
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: max_fee,
        max_priority_fee_per_gas: max_fee - GWEI,
        to: TxKind::Call(to),
        value,
        ..Default::default()
    };
    let signer = dev_accounts(from + 1)[from as usize].signer();
    let sig = signer.sign_hash_sync(&tx.signature_hash()).unwrap();
    TxEnvelope::from(tx.into_signed(sig)).encoded_2718()
}

fn config(dir: &Path, block_time: Duration) -> Config {
    Config {
        data_dir: Some(dir.to_path_buf()),
        block_time,
        ..Config::default()
    }
}

async fn send(p: &impl Provider, raw: &[u8]) -> B256 {
    *p.send_raw_transaction(raw).await.unwrap().tx_hash()
}

/// Pending (in the pool, in no block), mined, or unknown.
async fn where_is(p: &impl Provider, h: B256) -> Option<Option<u64>> {
    p.get_transaction_by_hash(h)
        .await
        .unwrap()
        .map(|t| t.block_number)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_transactions_survive_a_restart_without_a_block() {
    let dir = tempfile::tempdir().unwrap();
    let hour = Duration::from_secs(3600);
    let eth = U256::from(10u64).pow(U256::from(18u64));
    let prefund = Config::default().prefund;
    let node = Node::start(config(dir.path(), hour)).await;
    let p = node.http(0);

    // Account 2 drains itself, so its next transaction (admitted against the state
    // before the block) is refused by execution and dropped from the pool.
    let drain = send(
        &p,
        &raw(2, 0, 2 * GWEI, OTHER, prefund - eth / U256::from(100)),
    )
    .await;
    let refused = send(&p, &raw(2, 1, 2 * GWEI, OTHER, eth / U256::from(10))).await;
    let block = node.seq.produce(false).unwrap().unwrap();
    assert_eq!(block.transactions.len(), 1);
    assert_eq!(block.transactions[0].hash(), drain);
    assert!(node.seq.rejection(&refused).is_some());
    assert_eq!(where_is(&p, refused).await, None);
    // Account 2 is funded again: the refused transaction would pass admission now.
    let fund = send(&p, &raw(3, 0, 2 * GWEI, dev_accounts(3)[2].address, eth)).await;
    node.seq.produce(false).unwrap().unwrap();
    assert_eq!(where_is(&p, fund).await, Some(Some(2)));

    // Acknowledged and left pending: account 0's three, and account 1's replacement.
    let mut pending = Vec::new();
    for n in 0..3 {
        pending.push(send(&p, &raw(0, n, 2 * GWEI, OTHER, U256::from(1 + n))).await);
    }
    let replaced = send(&p, &raw(1, 0, 2 * GWEI, OTHER, U256::from(7))).await;
    pending.push(send(&p, &raw(1, 0, 3 * GWEI, OTHER, U256::from(7))).await);
    assert_eq!(where_is(&p, replaced).await, None);
    drop(p);
    drop(node);

    // Restarted without a block: the same transactions are pending, the others not.
    let node = Node::start(config(dir.path(), hour)).await;
    let p = node.http(0);
    assert_eq!(p.get_block_number().await.unwrap(), 2);
    for h in &pending {
        assert_eq!(where_is(&p, *h).await, Some(None), "{h} is pending");
    }
    assert_eq!(where_is(&p, replaced).await, None);
    assert_eq!(where_is(&p, refused).await, None);
    assert_eq!(
        p.get_transaction_count(dev_accounts(1)[0].address)
            .pending()
            .await
            .unwrap(),
        3
    );
    drop(p);
    drop(node);

    // Restarted again, producing: they are mined; the refused one stays out.
    let node = Node::start(config(dir.path(), Duration::from_millis(20))).await;
    let p = node.http(0);
    for h in &pending {
        assert!(receipt(&p, *h).await.status());
    }
    assert_eq!(
        p.get_transaction_count(dev_accounts(3)[2].address)
            .await
            .unwrap(),
        1
    );
    assert_eq!(p.get_transaction_receipt(refused).await.unwrap(), None);
    assert_eq!(p.get_transaction_receipt(replaced).await.unwrap(), None);
}
