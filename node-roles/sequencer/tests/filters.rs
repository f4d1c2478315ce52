//! Polled filters over HTTP with alloy's provider: block filters (also through
//! `watch_blocks`), log filters and `eth_getFilterLogs`, pending transaction filters,
//! expiry when not polled, and the bound on installed filters.

mod common;

use std::time::Duration;

use alloy_network::TransactionBuilder;
use alloy_primitives::{Address, B256, U256, hex};
use alloy_provider::Provider;
use alloy_rpc_types_eth::{Filter, Log, TransactionRequest};
use alloy_sol_types::{SolCall, SolConstructor, SolEvent, sol};
use common::{Node, fast_config, receipt};
use futures_util::StreamExt;
use proofbox_sequencer::Config;

sol! {
    contract Token {
        constructor(string name_, string symbol_, uint256 supply);
        function transfer(address to, uint256 value) external returns (bool);
        event Transfer(address indexed from, address indexed to, uint256 value);
    }
}

const TOKEN_BIN: &str = include_str!("contracts/Token.bin");

/// Waits until the sequencer's head is at least `n`.
async fn head_at_least(node: &Node, n: u64) {
    let mut head = node.seq.head();
    tokio::time::timeout(Duration::from_secs(20), head.wait_for(|h| *h >= n))
        .await
        .expect("blocks are produced")
        .unwrap();
}

fn hashes(node: &Node, from: u64, to: u64) -> Vec<B256> {
    let core = node.seq.read();
    (from..=to)
        .map(|n| core.chain.block(n).unwrap().hash())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_filters_report_every_new_block_once() {
    let node = Node::start(Config {
        empty_blocks: true,
        ..fast_config()
    })
    .await;
    let p = node.http(0);
    let id = p.new_block_filter().await.unwrap();
    let start = node.seq.read().chain.head();
    let mut got: Vec<B256> = Vec::new();
    for _ in 0..3 {
        head_at_least(&node, start + got.len() as u64 + 3).await;
        got.extend(p.get_filter_changes::<B256>(id).await.unwrap());
    }
    assert!(got.len() >= 9, "{} blocks", got.len());
    let last = start + got.len() as u64;
    assert_eq!(
        got,
        hashes(&node, start + 1, last),
        "each block after install, once"
    );

    // alloy's watcher polls the same methods.
    let mut watch = p
        .watch_blocks()
        .await
        .unwrap()
        .with_poll_interval(Duration::from_millis(20))
        .into_stream();
    let from = node.seq.read().chain.head() + 1;
    let mut watched: Vec<B256> = Vec::new();
    while watched.len() < 5 {
        let batch = tokio::time::timeout(Duration::from_secs(10), watch.next())
            .await
            .expect("new blocks in time")
            .expect("the watcher runs");
        watched.extend(batch);
    }
    assert_eq!(
        watched,
        hashes(&node, from, from + watched.len() as u64 - 1)
    );

    assert!(p.uninstall_filter(id).await.unwrap());
    assert!(!p.uninstall_filter(id).await.unwrap());
    let e = p.get_filter_changes::<B256>(id).await.unwrap_err();
    assert!(e.to_string().contains("filter not found"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_filters_report_new_matching_logs_and_all_of_them_on_request() {
    let node = Node::fast().await;
    let p = node.http(0);
    let supply = U256::from(1_000_000u64);
    let mut code = hex::decode(TOKEN_BIN.trim()).unwrap();
    code.extend(Token::constructorCall::new(("T".into(), "T".into(), supply)).abi_encode());
    let h = *p
        .send_transaction(TransactionRequest::default().with_deploy_code(code))
        .await
        .unwrap()
        .tx_hash();
    let token = receipt(&p, h).await.contract_address.unwrap();

    let transfers = Filter::new()
        .address(token)
        .event_signature(Token::Transfer::SIGNATURE_HASH);
    let id = p.new_filter(&transfers).await.unwrap();
    // Nothing matches another address.
    let other = p
        .new_filter(&Filter::new().address(Address::repeat_byte(0xee)))
        .await
        .unwrap();
    let all = p
        .new_filter(&transfers.clone().from_block(0u64))
        .await
        .unwrap();
    let block = p
        .new_filter(&Filter::new().at_block_hash(B256::ZERO))
        .await
        .unwrap_err();
    assert!(block.to_string().contains("blockHash"), "{block}");

    let mut sent = Vec::new();
    for i in 0..3u8 {
        let to = Address::repeat_byte(0x40 + i);
        let input = Token::transferCall::new((to, U256::from(10 + i))).abi_encode();
        let req = TransactionRequest::default()
            .with_to(token)
            .with_input(input)
            .with_gas_limit(100_000);
        let h = *p.send_transaction(req).await.unwrap().tx_hash();
        receipt(&p, h).await;
        sent.push(h);
        if i == 1 {
            // A poll in between: the second poll reports only what came after it.
            let first: Vec<Log> = p.get_filter_changes(id).await.unwrap();
            assert_eq!(first.len(), 2);
        }
    }
    let rest: Vec<Log> = p.get_filter_changes(id).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].transaction_hash, Some(sent[2]));
    let e = Token::Transfer::decode_log(&rest[0].inner).unwrap();
    assert_eq!(e.to, Address::repeat_byte(0x42));
    assert_eq!(e.value, U256::from(12));
    assert!(
        p.get_filter_changes::<Log>(id).await.unwrap().is_empty(),
        "nothing new"
    );
    assert!(p.get_filter_changes::<Log>(other).await.unwrap().is_empty());

    // eth_getFilterLogs: the whole range of the criteria, as eth_getLogs gives it,
    // the mint included.
    let logs = p.get_filter_logs(all).await.unwrap();
    assert_eq!(logs.len(), 4);
    assert_eq!(
        logs,
        p.get_logs(&transfers.clone().from_block(0u64))
            .await
            .unwrap()
    );
    assert_eq!(logs[0].inner.topics()[1], B256::ZERO, "minted from zero");
    // A block filter has no logs.
    let blocks = p.new_block_filter().await.unwrap();
    let e = p.get_filter_logs(blocks).await.unwrap_err();
    assert!(e.to_string().contains("not a log filter"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_transaction_filters_report_received_transactions() {
    let node = Node::fast().await;
    let p = node.http(0);
    let id = p.new_pending_transactions_filter(false).await.unwrap();
    let mut sent = Vec::new();
    for i in 0..3u64 {
        let req = TransactionRequest::default()
            .with_to(Address::repeat_byte(0x55))
            .with_value(U256::from(i + 1));
        sent.push(*p.send_transaction(req).await.unwrap().tx_hash());
    }
    let got: Vec<B256> = p.get_filter_changes(id).await.unwrap();
    assert_eq!(got, sent);
    assert!(p.get_filter_changes::<B256>(id).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_expire_when_not_polled_and_their_number_is_bounded() {
    let node = Node::start(Config {
        max_filters: 3,
        filter_timeout: Duration::from_millis(400),
        ..fast_config()
    })
    .await;
    let p = node.http(0);
    let polled = p.new_block_filter().await.unwrap();
    let idle = p.new_block_filter().await.unwrap();
    let third = p.new_pending_transactions_filter(false).await.unwrap();
    let e = p.new_filter(&Filter::new()).await.unwrap_err();
    assert!(e.to_string().contains("too many filters"), "{e}");
    assert!(e.to_string().contains("at most 3"), "{e}");
    assert!(p.uninstall_filter(third).await.unwrap());
    let third = p.new_filter(&Filter::new()).await.unwrap();

    // Polling keeps a filter; one left alone past the timeout is gone.
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        p.get_filter_changes::<B256>(polled).await.unwrap();
    }
    let e = p.get_filter_changes::<B256>(idle).await.unwrap_err();
    assert!(e.to_string().contains("filter not found"), "{e}");
    let e = p.get_filter_logs(third).await.unwrap_err();
    assert!(e.to_string().contains("filter not found"), "{e}");
    // Their places are free again.
    p.new_block_filter().await.unwrap();
    p.new_block_filter().await.unwrap();
}
