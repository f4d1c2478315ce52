//! The full node against a real sequencer: the same state after many blocks, a restart
//! from disk that catches up, and lies injected into its feed caught with the first
//! difference.

use std::time::Duration;

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, Bytes, TxKind, U256, hex};
use alloy_provider::{Provider, ProviderBuilder};
use alloy_signer::SignerSync;
use proofbox_chain_types::{Block, Root, receipts_root};
use proofbox_full_node::{FullNode, ImportError};
use proofbox_sequencer::{Config, Sequencer, dev_accounts};

const TOKEN_BIN: &str = include_str!("../../sequencer/tests/contracts/Token.bin");

fn config() -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        block_time: Duration::from_millis(10),
        ..Config::default()
    }
}

/// A signed EIP-1559 transaction of development account `from`.
fn tx(from: u32, nonce: u64, to: TxKind, value: u64, input: Vec<u8>, gas: u64) -> Bytes {
    let signer = dev_accounts(from + 1)[from as usize].signer();
    let t = TxEip1559 {
        chain_id: 31337,
        nonce,
        gas_limit: gas,
        max_fee_per_gas: 3_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to,
        value: U256::from(value),
        input: input.into(),
        ..Default::default()
    };
    let sig = signer.sign_hash_sync(&t.signature_hash()).unwrap();
    TxEnvelope::from(t.into_signed(sig)).encoded_2718().into()
}

fn transfer(from: u32, nonce: u64, to: u8, value: u64) -> Bytes {
    tx(
        from,
        nonce,
        TxKind::Call(Address::repeat_byte(to)),
        value,
        vec![],
        21_000,
    )
}

/// Token deployment (constructor: name "T", symbol "T", supply 1000) by account 0.
fn deploy(nonce: u64) -> Bytes {
    use alloy_sol_types::SolValue;
    let mut code = hex::decode(TOKEN_BIN.trim()).unwrap();
    code.extend(("T".to_string(), "T".to_string(), U256::from(1000)).abi_encode_params());
    tx(0, nonce, TxKind::Create, 0, code, 1_500_000)
}

async fn wait_for(node: &FullNode, head: u64) {
    let mut w = node.watch_head();
    tokio::time::timeout(
        Duration::from_secs(30),
        w.wait_for(|h| h.is_some_and(|h| h >= head)),
    )
    .await
    .expect("the full node catches up")
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follows_to_the_same_state_and_catches_up_after_a_restart() {
    let seq = Sequencer::start(config(), true).unwrap();
    let (addr, _server) =
        proofbox_sequencer::rpc::serve(seq.clone(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
    let ws = format!("ws://{addr}");
    let dir = tempfile::tempdir().unwrap();
    let node = FullNode::open(dir.path(), 31337).unwrap();
    let follower = tokio::spawn(node.clone().follow(ws.clone()));

    // Blocks of transfers between the development accounts and an ERC-20 deployment
    // with token transfers (storage writes, logs).
    seq.submit(&deploy(0)).unwrap();
    let mut nonces = [1u64, 0, 0];
    for round in 0..12u64 {
        for from in 0..3u32 {
            let n = &mut nonces[from as usize];
            seq.submit(&transfer(from, *n, 0x30 + round as u8 % 4, 1 + round))
                .unwrap();
            *n += 1;
        }
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    let token = Address::create(&dev_accounts(1)[0].address, 0);
    use alloy_sol_types::{SolCall, sol};
    sol! { function transfer(address to, uint256 value) external returns (bool); }
    for i in 0..5u64 {
        let input =
            transferCall::new((Address::repeat_byte(0x50 + i as u8), U256::from(10))).abi_encode();
        seq.submit(&tx(0, nonces[0], TxKind::Call(token), 0, input, 100_000))
            .unwrap();
        nonces[0] += 1;
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    // Wait for the sequencer to include everything, then for the full node.
    let mut head = seq.head();
    tokio::time::timeout(
        Duration::from_secs(30),
        head.wait_for(|_| {
            seq.pending_nonce(&dev_accounts(1)[0].address) == nonces[0]
                && seq.read().state.nonce(&dev_accounts(1)[0].address) == nonces[0]
        }),
    )
    .await
    .unwrap()
    .unwrap();
    let seq_head = seq.read().chain.head();
    assert!(seq_head >= 10, "many blocks: {seq_head}");
    wait_for(&node, seq_head).await;
    assert_eq!(node.root(), seq.read().state.root());
    assert_eq!(node.mismatch(), None);

    // Both answer the same over JSON-RPC.
    let (faddr, fserver) =
        proofbox_full_node::rpc::serve(node.clone(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
    // In a workspace build reqwest has its TLS provider left to the application.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let full = ProviderBuilder::new().connect_http(format!("http://{faddr}").parse().unwrap());
    let sequencer = ProviderBuilder::new().connect_http(format!("http://{addr}").parse().unwrap());
    for a in [
        dev_accounts(1)[0].address,
        Address::repeat_byte(0x31),
        token,
    ] {
        assert_eq!(
            full.get_balance(a).await.unwrap(),
            sequencer.get_balance(a).await.unwrap()
        );
        assert_eq!(
            full.get_transaction_count(a).await.unwrap(),
            sequencer.get_transaction_count(a).await.unwrap()
        );
        assert_eq!(
            full.get_code_at(a).await.unwrap(),
            sequencer.get_code_at(a).await.unwrap()
        );
    }
    let slot = full.get_storage_at(token, U256::from(2)).await.unwrap();
    assert_eq!(
        slot,
        sequencer
            .get_storage_at(token, U256::from(2))
            .await
            .unwrap()
    );
    assert_eq!(slot, U256::from(1000), "totalSupply");
    let status: serde_json::Value = full
        .raw_request("proofbox_status".into(), ())
        .await
        .unwrap();
    assert_eq!(status["following"], true);
    assert_eq!(status["stateRoot"], seq.read().state.root().hex());

    // Stop the node, let the sequencer go on, reopen from disk: it resumes and catches up.
    follower.abort();
    let _ = follower.await;
    drop(full);
    fserver.stop().unwrap();
    fserver.stopped().await;
    drop(node);
    for i in 0..6u64 {
        seq.submit(&transfer(1, nonces[1] + i, 0x40, 1)).unwrap();
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    let node = FullNode::open(dir.path(), 31337).unwrap();
    assert_eq!(node.head(), Some(seq_head));
    tokio::time::timeout(
        Duration::from_secs(30),
        head.wait_for(|_| seq.read().state.nonce(&dev_accounts(2)[1].address) == nonces[1] + 6),
    )
    .await
    .unwrap()
    .unwrap();
    let new_head = seq.read().chain.head();
    assert!(new_head > seq_head);
    let follower = tokio::spawn(node.clone().follow(ws));
    wait_for(&node, new_head).await;
    assert_eq!(node.root(), seq.read().state.root());
    follower.abort();
    seq.stop();
}

/// Honest blocks 0..=3 from a sequencer that builds a block only when told.
fn honest_chain() -> Vec<Block> {
    let seq = Sequencer::start(config(), false).unwrap();
    for b in 0..3u64 {
        seq.submit(&transfer(0, b, 0x60, 100 + b)).unwrap();
        seq.submit(&transfer(1, b, 0x61, 200 + b)).unwrap();
        seq.produce(false).unwrap().unwrap();
    }
    let core = seq.read();
    (0..=3)
        .map(|n| core.chain.block(n).unwrap().as_ref().clone())
        .collect()
}

/// Imports `blocks[..3]` honestly into a fresh node, then `altered` in place of
/// block 3; returns the node and the error.
fn feed(blocks: &[Block], altered: Block) -> (FullNode, tempfile::TempDir, ImportError) {
    let dir = tempfile::tempdir().unwrap();
    let node = FullNode::open(dir.path(), 31337).unwrap();
    for b in &blocks[..3] {
        node.import(b.clone()).unwrap();
    }
    let e = node.import(altered).unwrap_err();
    (node, dir, e)
}

fn difference(e: &ImportError) -> &str {
    match e {
        ImportError::Mismatch(m) => {
            assert_eq!(m.block, 3);
            &m.difference
        }
        other => panic!("not a mismatch: {other}"),
    }
}

#[test]
fn altered_diffs_receipts_and_roots_are_caught_with_the_first_difference() {
    let blocks = honest_chain();
    // The honest chain imports.
    let dir = tempfile::tempdir().unwrap();
    let honest = FullNode::open(dir.path(), 31337).unwrap();
    for b in &blocks {
        honest.import(b.clone()).unwrap();
    }
    assert_eq!(honest.root(), blocks[3].header.post_state_root);

    // A diff that pays someone 1 wei more, with the header's commitment redone to match,
    // so only re-execution can tell.
    let mut lie = blocks[3].clone();
    let mut accounts = lie.diff.accounts().to_vec();
    let i = accounts
        .iter()
        .position(|a| a.address == Address::repeat_byte(0x61))
        .unwrap();
    accounts[i].balance += U256::from(1);
    lie.diff = proofbox_chain_types::StateDiff::new(accounts).unwrap();
    lie.header.diff_commitment = Root::from_digest(&lie.diff.to_state_diff().unwrap().commitment());
    let (node, dir, e) = feed(&blocks, lie);
    let d = difference(&e);
    assert!(
        d.contains("state diff")
            && d.contains("balance")
            && d.contains(&format!("{}", Address::repeat_byte(0x61))),
        "{d}"
    );
    // It stops following: the honest block is refused now, and after a restart too.
    assert!(matches!(
        node.import(blocks[3].clone()),
        Err(ImportError::Stopped(_))
    ));
    assert_eq!(node.status()["following"], false);
    drop(node);
    let reopened = FullNode::open(dir.path(), 31337).unwrap();
    assert_eq!(reopened.mismatch().unwrap().block, 3);
    assert_eq!(reopened.head(), Some(2));

    // A receipt claiming other gas, with the receipts root redone.
    let mut lie = blocks[3].clone();
    lie.receipts[1].gas_used += 1;
    lie.header.receipts_root = receipts_root(&lie.receipts);
    let (_n, _d, e) = feed(&blocks, lie);
    let d = difference(&e);
    assert!(d.starts_with("receipt 1: gas used"), "{d}");

    // A receipt changed without redoing the root: the header does not commit to it.
    let mut lie = blocks[3].clone();
    lie.receipts[0].success = false;
    let (_n, _d, e) = feed(&blocks, lie);
    assert!(
        difference(&e).starts_with("header and body disagree: receipts root"),
        "{e}"
    );

    // A post-state root that is not the diff's.
    let mut lie = blocks[3].clone();
    lie.header.post_state_root = blocks[2].header.post_state_root;
    let (_n, _d, e) = feed(&blocks, lie);
    assert!(difference(&e).starts_with("post-state root"), "{e}");

    // A pre-state root that is not the node's.
    let mut lie = blocks[3].clone();
    lie.header.pre_state_root = blocks[1].header.post_state_root;
    let (_n, _d, e) = feed(&blocks, lie);
    assert!(difference(&e).starts_with("pre-state root"), "{e}");

    // A block out of order is no lie (a transport problem): resubscribe.
    let dir = tempfile::tempdir().unwrap();
    let node = FullNode::open(dir.path(), 31337).unwrap();
    node.import(blocks[0].clone()).unwrap();
    assert!(matches!(
        node.import(blocks[2].clone()),
        Err(ImportError::OutOfOrder {
            expected: 1,
            got: 2
        })
    ));
    assert_eq!(node.mismatch(), None);
}

/// `GET /status.json` on the node's JSON-RPC port.
async fn page_status(http: &reqwest::Client, addr: std::net::SocketAddr) -> serde_json::Value {
    http.get(format!("http://{addr}/status.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The status page on the JSON-RPC port follows the node: its head as blocks are
/// imported, throughput, and the mismatch (the lie) once an altered block comes;
/// JSON-RPC still answers on the same port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_shows_the_head_throughput_and_the_mismatch() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let blocks = honest_chain();
    let dir = tempfile::tempdir().unwrap();
    let node = FullNode::open(dir.path(), 31337).unwrap();
    node.import(blocks[0].clone()).unwrap();
    let (addr, server) =
        proofbox_full_node::rpc::serve(node.clone(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
    let http = reqwest::Client::new();
    let s = page_status(&http, addr).await;
    assert_eq!(
        (&s["role"], &s["head"], &s["following"]),
        (&"full node".into(), &0.into(), &true.into()),
        "{s}"
    );
    assert_eq!(s["mismatch"], serde_json::Value::Null);
    assert_eq!(s["lies"], serde_json::json!([]));
    // The page's first sample (at head 0) is taken before the blocks come.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while page_status(&http, addr).await["history"]
        .as_array()
        .unwrap()
        .is_empty()
    {
        assert!(std::time::Instant::now() < deadline, "no sample taken");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    node.import(blocks[1].clone()).unwrap();
    node.import(blocks[2].clone()).unwrap();
    assert_eq!(page_status(&http, addr).await["head"], 2);
    // Two blocks of two transfers each, seen by the next sample (once a second).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let s = loop {
        let s = page_status(&http, addr).await;
        if s["blocksPerSec"].as_f64().is_some_and(|r| r > 0.0) {
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "no throughput: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Two transactions a block (up to the JSON numbers' rounding).
    let (tx, bl) = (
        s["txPerSec"].as_f64().unwrap(),
        s["blocksPerSec"].as_f64().unwrap(),
    );
    assert!((tx - 2.0 * bl).abs() <= 1e-9 * tx, "{s}");

    // An altered receipt: a mismatch at block 3.
    let mut lie = blocks[3].clone();
    lie.receipts[0].gas_used += 1;
    let e = node.import(lie).unwrap_err();
    assert!(matches!(e, ImportError::Mismatch(_)), "{e}");
    let s = page_status(&http, addr).await;
    assert_eq!(s["following"], false, "{s}");
    assert!(
        s["mismatch"].as_str().unwrap().starts_with("block 3: "),
        "{s}"
    );
    assert_eq!(s["lies"].as_array().unwrap().len(), 1, "{s}");
    let html = http
        .get(format!("http://{addr}/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("<title>ProofBox full node</title>"), "{html}");
    assert!(html.contains("data-key=\"head\">2</td>"), "{html}");
    assert!(
        html.contains("<li class=\"lie\">the sequencer&#39;s block 3: ")
            || html.contains("<li class=\"lie\">the sequencer's block 3: "),
        "{html}"
    );
    // JSON-RPC over HTTP POST on the same port.
    let r: serde_json::Value = http
        .post(format!("http://{addr}/"))
        .json(&serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "proofbox_status"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["result"]["head"], 2, "{r}");
    server.stop().unwrap();
}
