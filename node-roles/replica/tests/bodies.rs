//! A block's transactions and receipts, checked against its header's roots off the
//! apply path: a block whose bodies do not match is applied (its state checks pass) but
//! nothing of its body is ever served over JSON-RPC (alloy over HTTP), and it is
//! refused, reported and re-synced, whichever mode checks it (on use, in the
//! background, or eagerly before applying); a batch's proof never moves the proven
//! head past a block whose bodies do not match; with the worker and requests checking
//! at once, each block is checked and reported once. Senders are recovered when a
//! transaction is served. Blocks come from an in-memory sequencer and are fed to the
//! replica directly. Run in release: `cargo test --release -p proofbox-replica`.

use std::sync::{Arc, Barrier};

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, Bytes, TxKind, U256};
use alloy_provider::{Provider, ProviderBuilder};
use alloy_signer::SignerSync;
use jsonrpsee::server::ServerHandle;
use proofbox_chain_types::{Block, ProvenBatch, Root, SignedTx, transactions_root};
use proofbox_replica::{BodyChecks, Config, ImportError, Kept, Replica};
use proofbox_sequencer::{Config as SeqConfig, Sequencer, dev_accounts};
use serde_json::{Value, json};

const SENDERS: usize = 3;

/// The genesis and `blocks` blocks of `txs` transfers each, built by an in-memory
/// sequencer.
fn chain(blocks: usize, txs: usize) -> Vec<Block> {
    let config = SeqConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        dev_accounts: SENDERS as u32,
        ..SeqConfig::default()
    };
    let chain_id = config.chain_id;
    let seq = Sequencer::start(config, false).unwrap();
    let signers: Vec<_> = dev_accounts(SENDERS as u32)
        .iter()
        .map(|a| a.signer())
        .collect();
    for b in 0..blocks {
        for i in 0..txs {
            let n = b * txs + i;
            let tx = TxEip1559 {
                chain_id,
                nonce: (n / SENDERS) as u64,
                gas_limit: 21_000,
                max_fee_per_gas: 3_000_000_000,
                max_priority_fee_per_gas: 1,
                to: TxKind::Call(Address::repeat_byte(0x40 + (n % 5) as u8)),
                value: U256::from(1 + n),
                ..Default::default()
            };
            let sig = signers[n % SENDERS]
                .sign_hash_sync(&tx.signature_hash())
                .unwrap();
            seq.submit(&TxEnvelope::from(tx.into_signed(sig)).encoded_2718())
                .unwrap();
        }
        let block = seq.produce(false).unwrap().expect("a block");
        assert_eq!(block.transactions.len(), txs);
    }
    let core = seq.read();
    (0..=blocks as u64)
        .map(|n| Block::clone(core.chain.block(n).unwrap()))
        .collect()
}

/// Block `n`'s first receipt says the transaction failed; the header is left as it
/// was (so its receipts root no longer matches, and nothing about the state changes).
fn forge_receipt(blocks: &mut [Block], n: usize) {
    blocks[n].receipts[0].success = !blocks[n].receipts[0].success;
}

fn replica(bodies: BodyChecks) -> (tempfile::TempDir, Replica) {
    let dir = tempfile::tempdir().unwrap();
    let r = Replica::open(Config {
        bodies,
        ..Config::new(dir.path())
    })
    .unwrap();
    (dir, r)
}

/// The replica's JSON-RPC on loopback and an alloy provider over HTTP to it.
async fn serve(r: &Replica) -> (impl Provider + use<>, ServerHandle) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (addr, handle) = proofbox_replica::rpc::serve(r.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let p = ProviderBuilder::new().connect_http(format!("http://{addr}").parse().unwrap());
    (p, handle)
}

/// Imports `blocks` one by one and returns each as kept, until the worker's refusal
/// of an earlier one re-synced the replica (the next import is then out of order).
fn import_each(r: &Replica, blocks: &[Block]) -> Vec<Arc<Kept>> {
    let mut kept = Vec::new();
    for b in blocks {
        match r.import_block(b.clone()) {
            Ok(()) => {}
            Err(ImportError::OutOfOrder { .. }) => break,
            Err(e) => panic!("{e}"),
        }
        let Some(k) = r.read().block(b.number()) else {
            break;
        };
        kept.push(k);
    }
    kept
}

/// The one refusal listed, of block `n`, whose reason starts with `reason`.
fn refused_once(r: &Replica, n: u64, reason: &str) -> Value {
    let s = r.status();
    let refused = s["refused"].as_array().unwrap();
    assert_eq!(refused.len(), 1, "{s:#}");
    assert_eq!(refused[0]["block"], n, "{s:#}");
    assert_eq!(refused[0]["count"], 1, "{s:#}");
    let why = refused[0]["reason"].as_str().unwrap();
    assert!(why.starts_with(reason), "{why}");
    s
}

/// Every request that would serve something of block 3's body, in turn.
fn body_requests(blocks: &[Block]) -> Vec<(&'static str, Value)> {
    let b = &blocks[3];
    let tx = b.transactions[1].hash();
    vec![
        ("eth_getBlockByNumber", json!(["0x3", true])),
        ("eth_getBlockByNumber", json!(["0x3", false])),
        ("eth_getBlockByHash", json!([b.hash(), false])),
        ("eth_getTransactionByHash", json!([tx])),
        ("eth_getTransactionReceipt", json!([tx])),
        (
            "eth_getLogs",
            json!([{ "fromBlock": "0x1", "toBlock": "0x4" }]),
        ),
        ("eth_feeHistory", json!(["0x1", "0x3", [50.0]])),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_use_a_block_whose_receipts_do_not_match_is_applied_but_never_served() {
    let honest = chain(4, 6);
    let mut blocks = honest.clone();
    forge_receipt(&mut blocks, 3);
    for (method, params) in body_requests(&blocks) {
        let (_dir, r) = replica(BodyChecks::OnUse);
        r.import_blocks(blocks.clone()).unwrap();
        {
            // Applied: its diff checked out and is written; its bodies not checked.
            let c = r.read();
            assert_eq!((c.latest_head, c.proven_head), (Some(4), Some(0)));
            assert!(c.block(3).unwrap().bodies().is_none());
        }
        assert_eq!(r.status()["refused"], json!([]));
        let (p, handle) = serve(&r).await;
        // The first request for it checks it: an error, never the body.
        let err = p
            .raw_request::<_, Value>(method.into(), params.clone())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("block 3 is refused") && err.contains("receipts root"),
            "{method}: {err}"
        );
        assert!(err.contains("not served"), "{method}: {err}");
        // Refused and reported, and the replica is back at its proven head to fetch it
        // again: the block is no longer kept, so nothing of it is served.
        let s = refused_once(&r, 3, "header and body disagree: receipts root");
        assert_eq!(
            (s["latest"].as_u64(), s["proven"].as_u64()),
            (Some(0), Some(0))
        );
        assert_eq!(s["resyncs"], 1, "{s:#}");
        assert_eq!(s["following"], false, "{s:#}");
        let again = p.raw_request::<_, Value>(method.into(), params).await;
        let nothing = match &again {
            Ok(v) => v.is_null() || v.as_array().is_some_and(|a| a.is_empty()),
            Err(_) => true,
        };
        assert!(nothing, "{method}: {again:?}");
        let tx = blocks[3].transactions[0].hash();
        assert!(p.get_transaction_receipt(tx).await.unwrap().is_none());
        assert!(p.get_block_by_number(3.into()).await.unwrap().is_none());
        let _ = handle.stop();
    }

    // An honest block is served, checked right then; re-synced, the honest blocks are
    // applied again and served.
    let (_dir, r) = replica(BodyChecks::OnUse);
    r.import_blocks(blocks.clone()).unwrap();
    let (p, handle) = serve(&r).await;
    let b2 = p
        .get_block_by_number(2.into())
        .full()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b2.header.hash, honest[2].hash());
    let senders: Vec<Address> = b2
        .transactions
        .as_transactions()
        .unwrap()
        .iter()
        .map(|t| t.inner.signer())
        .collect();
    let want: Vec<Address> = honest[2].transactions.iter().map(|t| t.sender()).collect();
    assert_eq!(senders, want);
    assert_eq!(r.read().block(2).unwrap().bodies(), Some(&Ok(())));
    assert!(p.get_block_by_number(3.into()).await.is_err());
    r.import_blocks(honest[1..].to_vec()).unwrap();
    let tx = &honest[3].transactions[0];
    let receipt = p.get_transaction_receipt(tx.hash()).await.unwrap().unwrap();
    assert_eq!(receipt.status(), honest[3].receipts[0].success);
    assert_eq!(receipt.from, tx.sender());
    assert_eq!(
        p.get_block_number().await.unwrap(),
        4,
        "the honest chain applied again"
    );
    refused_once(&r, 3, "header and body disagree: receipts root");
    let _ = handle.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_the_background_a_block_whose_transactions_do_not_match_is_refused() {
    let honest = chain(6, 5);
    let mut blocks = honest.clone();
    // Two transactions swapped: the transactions root no longer matches.
    blocks[3].transactions.swap(0, 1);
    let (_dir, r) = replica(BodyChecks::Background);
    let (p, handle) = serve(&r).await;
    r.import_block(blocks[0].clone()).unwrap();
    // Blocks 1 and 2 are kept until 3 is imported; 3 on may be dropped by the
    // worker's re-sync before the test takes them.
    let kept = import_each(&r, &blocks[1..]);
    assert!(kept.len() >= 2, "applied up to the forged block at least");
    r.wait_bodies_checked();
    // In order: 1 and 2 checked out, 3 refused, and those after it, dropped by the
    // re-sync, were not checked (they come again).
    let checked: Vec<Option<bool>> = kept.iter().map(|k| k.bodies().map(|b| b.is_ok())).collect();
    let mut want = vec![Some(true), Some(true), Some(false)];
    want.resize(kept.len().max(3), None);
    want.truncate(kept.len());
    assert_eq!(checked, want);
    let s = refused_once(&r, 3, "header and body disagree: transactions root");
    assert_eq!(
        (s["latest"].as_u64(), s["proven"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(s["bodiesToCheck"], 0, "{s:#}");
    assert!(r.read().block(3).is_none(), "dropped by the re-sync");
    assert!(p.get_block_by_number(3.into()).await.unwrap().is_none());
    let tx = blocks[3].transactions[0].hash();
    assert!(p.get_transaction_by_hash(tx).await.unwrap().is_none());

    // The honest blocks: all checked by the worker, in order, and served.
    r.import_blocks(honest[1..].to_vec()).unwrap();
    r.wait_bodies_checked();
    {
        let c = r.read();
        for n in 0..=6 {
            assert_eq!(c.block(n).unwrap().bodies(), Some(&Ok(())), "block {n}");
        }
    }
    let b3 = p
        .get_block_by_number(3.into())
        .full()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        b3.header.transactions_root,
        honest[3].header.transactions_root
    );
    let got = p.get_transaction_by_hash(tx).await.unwrap().unwrap();
    assert_eq!(got.block_number, Some(3));
    refused_once(&r, 3, "header and body disagree: transactions root");
    let _ = handle.stop();
}

/// The worker, four request threads and the import run at once: the threads ask for
/// every block the replica keeps, some from the first, some from the last, while the
/// blocks are being applied and the worker checks them. Each body is checked once,
/// the bad one refused (and the replica re-synced) once, and nobody ever gets it as
/// checked.
#[test]
fn checkers_racing_check_and_report_each_block_once() {
    let honest = chain(8, 12);
    for round in 0..4 {
        let mut blocks = honest.clone();
        forge_receipt(&mut blocks, 2 + round);
        let bad = (2 + round) as u64;
        let (_dir, r) = replica(BodyChecks::Background);
        r.import_block(blocks[0].clone()).unwrap();
        let start = Arc::new(Barrier::new(5));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let (r, start) = (r.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    let mut seen = Vec::new();
                    for _ in 0..50 {
                        for i in 1..=8u64 {
                            let n = if t % 2 == 0 { i } else { 9 - i };
                            let kept = r.read().block(n);
                            if let Some(k) = kept {
                                seen.push((n, r.checked(&k).is_ok()));
                            }
                        }
                    }
                    seen
                })
            })
            .collect();
        start.wait();
        let kept = import_each(&r, &blocks[1..]);
        assert!(
            kept.len() as u64 >= bad - 1,
            "applied up to the forged block"
        );
        for t in threads {
            for (n, ok) in t.join().unwrap() {
                assert_eq!(ok, n != bad, "block {n}, forged {bad}");
            }
        }
        r.wait_bodies_checked();
        let s = refused_once(&r, bad, "header and body disagree: receipts root");
        assert_eq!(s["resyncs"], 1, "{s:#}");
        assert_eq!(
            (s["latest"].as_u64(), s["proven"].as_u64()),
            (Some(0), Some(0))
        );
        for k in &kept {
            if let Some(checked) = k.bodies() {
                assert_eq!(checked.is_ok(), k.number() != bad);
            }
        }
    }
}

#[test]
fn a_batch_is_not_proven_past_a_block_whose_bodies_do_not_match() {
    let mut blocks = chain(4, 3);
    forge_receipt(&mut blocks, 3);
    let (_dir, r) = replica(BodyChecks::OnUse);
    r.import_blocks(blocks.clone()).unwrap();
    // The bodies are checked before anything about the proof (this one would not
    // even decode).
    let batch = ProvenBatch {
        index: 0,
        first_block: 1,
        last_block: 4,
        pre_root: blocks[0].header.post_state_root,
        post_root: blocks[4].header.post_state_root,
        diff_commitment: Root([0; 8]),
        updates: 0,
        bundle: Bytes::new(),
        proved_by: None,
    };
    let err = r.import_batch(batch).unwrap_err();
    let ImportError::Refused(refusal) = err else {
        panic!("{err}")
    };
    assert_eq!((refusal.block, refusal.batch), (Some(3), None));
    assert!(
        refusal.reason.contains("receipts root"),
        "{}",
        refusal.reason
    );
    let c = r.read();
    assert_eq!((c.latest_head, c.proven_head), (Some(0), Some(0)));
}

#[test]
fn eagerly_a_block_whose_bodies_do_not_match_is_not_applied() {
    let mut blocks = chain(4, 3);
    forge_receipt(&mut blocks, 3);
    let (_dir, r) = replica(BodyChecks::Eager);
    let err = r.import_blocks(blocks.clone()).unwrap_err();
    let ImportError::Refused(refusal) = err else {
        panic!("{err}")
    };
    assert_eq!(refusal.block, Some(3));
    assert!(
        refusal.reason.contains("receipts root"),
        "{}",
        refusal.reason
    );
    refused_once(&r, 3, "header and body disagree: receipts root");
    assert_eq!(r.read().latest_head, Some(0));
    assert_eq!(r.bodies_to_check(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn senders_are_recovered_when_served() {
    let mut blocks = chain(4, 4);
    // Block 4's first transaction has a signature that recovers no sender; its header
    // commits to it (so its bodies check out).
    let mut bad = blocks[4].transactions[0].envelope().clone();
    if let TxEnvelope::Eip1559(s) = &mut bad {
        let sig = alloy_primitives::Signature::new(U256::ZERO, U256::from(1), false);
        *s = alloy_consensus::Signed::new_unhashed(s.tx().clone(), sig);
    }
    blocks[4].transactions[0] = SignedTx::decode_unrecovered(&bad.encoded_2718()).unwrap();
    blocks[4].header.transactions_root = transactions_root(&blocks[4].transactions);
    // As the stream delivers them, read as the replica reads them.
    let streamed: Vec<Block> = blocks
        .iter()
        .map(|b| {
            let json =
                serde_json::to_string(&proofbox_sequencer::rpc::subs::StreamBlock::new(b)).unwrap();
            serde_json::from_str::<proofbox_replica::follow::StreamBlock>(&json)
                .unwrap()
                .into_block()
        })
        .collect();
    assert_eq!(streamed, blocks);
    let (_dir, r) = replica(BodyChecks::Background);
    r.import_blocks(streamed).unwrap();
    r.wait_bodies_checked();
    assert_eq!(r.status()["refused"], json!([]), "the bodies check out");
    let k2 = r.read().block(2).unwrap();
    let recovered = |k: &Kept| -> Vec<bool> {
        k.unchecked()
            .transactions
            .iter()
            .map(SignedTx::is_recovered)
            .collect()
    };
    assert_eq!(
        recovered(&k2),
        [false; 4],
        "applied and checked without senders"
    );
    let (p, handle) = serve(&r).await;
    let tx = &blocks[2].transactions[1];
    let got = p.get_transaction_by_hash(tx.hash()).await.unwrap().unwrap();
    assert_eq!(got.inner.signer(), tx.sender());
    assert_eq!(recovered(&k2), [false, true, false, false]);
    p.get_block_by_number(2.into())
        .full()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(recovered(&k2), [true; 4]);

    // The unrecoverable one: an error, listed, and no re-sync (the header commits to
    // these bytes: fetching them again changes nothing).
    let hash = blocks[4].transactions[0].hash();
    let err = p
        .get_transaction_by_hash(hash)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("recovers no sender"), "{err}");
    let err = p
        .get_block_by_number(4.into())
        .full()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("recovers no sender"), "{err}");
    let s = refused_once(
        &r,
        4,
        &format!("transaction {hash}: its signature recovers no sender"),
    );
    assert_eq!(s["resyncs"], 0, "{s:#}");
    assert_eq!(s["latest"], 4, "{s:#}");
    // Its block with transaction hashes only needs no sender; its receipt names the
    // sender, so it is an error too.
    p.get_block_by_number(4.into()).await.unwrap().unwrap();
    assert!(p.get_transaction_receipt(hash).await.is_err());
    let _ = handle.stop();
}
