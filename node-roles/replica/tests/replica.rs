//! The replica against a real sequencer proving through a real appliance, on
//! loopback: both heads reach the sequencer's, state over RPC agrees at `latest` and
//! `safe`, `eth_getProof` checks against the proven root, a restart resumes from the
//! snapshot; a forged diff and a weak proof fed through a relay are refused, the
//! replica re-syncs by itself, refuses the same data again, keeps serving, follows
//! to the head once the data is honest, and lists its refusals after a restart. Run
//! in release: `cargo test --release -p proofbox-replica`.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use alloy_primitives::{Address, B256, Bytes, U256};
use alloy_provider::Provider;
use alloy_rpc_types_eth::BlockId;
use common::{Network, Node, Transform, each, relay, unaltered};
use proofbox_backend_cpu::CpuBackend;
use proofbox_chain_types::{ProvenBatch, Root, StateDiff, net_diff};
use proofbox_prover::transition::{TransitionInput, TransitionProof};
use proofbox_prover::{FriParams, FriPreset, Prover};
use proofbox_replica::getproof::{self, AccountProof};
use proofbox_replica::{Config, Head, Replica};
use proofbox_sequencer::state::MemState;
use proofbox_sequencer::{Sequencer, dev_accounts};
use serde_json::{Value, json};

fn at(v: &Value, k: &str) -> Option<u64> {
    v[k].as_u64()
}

/// A replica configuration in `dir` with a short re-sync back-off.
fn config(dir: &std::path::Path) -> Config {
    Config {
        resync_backoff: Duration::from_millis(200),
        max_resync_backoff: Duration::from_secs(2),
        ..Config::new(dir)
    }
}

/// The status once the first refusal was repeated (`times` in all) and the replica
/// is waiting to re-sync (its latest state back at the proven one).
async fn refused_again(node: &Node, what: &str, times: u64) -> Value {
    node.wait(what, |s| {
        s["following"] == false && s["refused"][0]["count"].as_u64() >= Some(times)
    })
    .await
}

/// The replica answers over RPC, and while its latest head is its proven head (after
/// a re-sync) its latest state is the proven one.
async fn serving_the_proven_state(node: &Node) {
    let dev0 = dev_accounts(1)[0].address;
    node.http().get_balance(dev0).await.unwrap();
    let c = node.replica.read();
    if c.latest_head == c.proven_head {
        for a in [dev0, Address::repeat_byte(0x30), Address::repeat_byte(0xee)] {
            let (latest, proven) = (c.state(Head::Latest), c.state(Head::Proven));
            assert_eq!(latest.balance(&a), proven.balance(&a), "{a}");
            assert_eq!(latest.nonce(&a), proven.nonce(&a), "{a}");
        }
    }
}

/// The status page on the replica's RPC port: `GET /status.json` and `GET /`.
async fn page(node: &Node) -> (Value, String) {
    let http = reqwest::Client::new();
    let base = format!("http://{}", node.addr);
    let status = http
        .get(format!("{base}/status.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let html = http.get(&base).send().await.unwrap().text().await.unwrap();
    (status, html)
}

/// Waits for both heads to reach `head`.
async fn caught_up(node: &Node, head: u64) -> Value {
    node.wait(&format!("both heads at {head}"), |s| {
        at(s, "latest") == Some(head) && at(s, "proven") == Some(head)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follows_proves_serves_checkable_proofs_and_restarts_from_its_snapshot() {
    let net = Network::start().await;
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(Config::new(dir.path()), net.ws_url()).await;

    net.transfers(0, 12).await;
    let contract = net.deploy(12).await;
    net.transfers(13, 8).await;
    let head = net.proven_to_head().await;
    let status = caught_up(&node, head).await;
    assert_eq!(status["following"], true, "{status:#}");
    assert_eq!(status["refused"], json!([]));
    let seq_root = net.seq.read().state.root();
    assert_eq!(status["provenRoot"], seq_root.hex());
    assert_eq!(status["latestRoot"], seq_root.hex());

    // The replica answers as the sequencer at latest and safe.
    let rep = node.http();
    let seq = net.http();
    let dev0 = dev_accounts(1)[0].address;
    let mut addresses = vec![dev0, contract, Address::repeat_byte(0x99)];
    addresses.extend((0..7).map(|i| Address::repeat_byte(0x30 + i)));
    for a in &addresses {
        let want = seq.get_balance(*a).await.unwrap();
        assert_eq!(rep.get_balance(*a).await.unwrap(), want, "{a}");
        let safe = rep.get_balance(*a).block_id(BlockId::safe()).await.unwrap();
        assert_eq!(safe, want, "{a} at safe");
        assert_eq!(
            rep.get_transaction_count(*a).await.unwrap(),
            seq.get_transaction_count(*a).await.unwrap()
        );
    }
    assert_eq!(rep.get_block_number().await.unwrap(), head);
    assert_eq!(rep.get_chain_id().await.unwrap(), 31337);
    let code = rep
        .get_code_at(contract)
        .block_id(BlockId::finalized())
        .await
        .unwrap();
    assert_eq!(code, Bytes::from_static(&[0]));
    let slot = rep.get_storage_at(contract, U256::from(1)).await.unwrap();
    assert_eq!(slot, U256::from(42));
    let blk = rep
        .get_block_by_number(alloy_rpc_types_eth::BlockNumberOrTag::Safe)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(blk.header.number, head);
    // A state the replica does not keep is a clear error, not a panic.
    let err = rep
        .get_balance(dev0)
        .number(1)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("latest head"), "{err}");

    // eth_getProof against the proven root, as a light client checks it: the root
    // comes from the sequencer's proofs (proofbox_provenHead), not from the replica.
    let proven: Value = seq
        .raw_request("proofbox_provenHead".into(), ())
        .await
        .unwrap();
    let root = Root::from_hex(proven["root"].as_str().unwrap()).unwrap();
    let slots = json!(["0x1", "0x2"]);
    for a in &addresses {
        // Default tag: the proven head.
        let p: AccountProof = rep
            .raw_request("eth_getProof".into(), (a, &slots))
            .await
            .unwrap();
        assert_eq!(p.state_root, root);
        assert_eq!(p.block_number.to::<u64>(), head);
        getproof::verify(&p, &root).unwrap_or_else(|e| panic!("{a}: {e}"));
        assert_eq!(p.balance, seq.get_balance(*a).await.unwrap());
        // Tampered: another balance, another slot value, a flipped proof byte, another root.
        let mut t = p.clone();
        t.balance += U256::from(1);
        assert!(getproof::verify(&t, &root).is_err(), "{a}: balance");
        let mut t = p.clone();
        t.storage_proof[0].value += U256::from(1);
        assert!(getproof::verify(&t, &root).is_err(), "{a}: slot");
        let mut t = p.clone();
        let mut bytes = t.account_proof[0].to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        t.account_proof[0] = bytes.into();
        assert!(getproof::verify(&t, &root).is_err(), "{a}: proof bytes");
        let other = net
            .seq
            .read()
            .chain
            .block(1)
            .unwrap()
            .header
            .post_state_root;
        assert!(getproof::verify(&p, &other).is_err(), "{a}: root");
    }
    let p: AccountProof = rep
        .raw_request("eth_getProof".into(), (contract, &slots, "safe"))
        .await
        .unwrap();
    assert_eq!(p.storage_proof[0].value, U256::from(42));
    assert_eq!(
        p.storage_proof[1].value,
        U256::ZERO,
        "absent: an exclusion proof"
    );
    let absent: AccountProof = rep
        .raw_request("eth_getProof".into(), (Address::repeat_byte(0x99), &slots))
        .await
        .unwrap();
    assert_eq!(absent.code_hash, B256::ZERO);
    let mut t = absent.clone();
    t.code_hash = alloy_primitives::keccak256([]);
    assert!(
        getproof::verify(&t, &root).is_err(),
        "an absent account is not present"
    );
    // alloy's own eth_getProof reads the answer.
    let alloy_proof = rep
        .get_proof(contract, vec![B256::with_last_byte(1)])
        .block_id(BlockId::safe())
        .await
        .unwrap();
    assert_eq!(alloy_proof.storage_proof[0].value, U256::from(42));
    assert_eq!(alloy_proof.storage_hash, root.to_b256());

    // Restart: the replica comes back at its proven snapshot, without block 1..,
    // and catches up with what was built meanwhile.
    node.stop().await;
    net.transfers(21, 10).await;
    let head2 = net.proven_to_head().await;
    assert!(head2 > head);
    let node = Node::start(Config::new(dir.path()), net.ws_url()).await;
    {
        let c = node.replica.read();
        assert!(
            c.proven_head.is_some_and(|p| p >= head),
            "resumed at its snapshot"
        );
        assert!(c.block(1).is_none(), "no replay from genesis");
    }
    let status = caught_up(&node, head2).await;
    assert_eq!(status["provenRoot"], net.seq.read().state.root().hex());
    assert!(
        node.replica.read().block(1).is_none(),
        "no replay from genesis"
    );
    let rep = node.http();
    assert_eq!(
        rep.get_balance(dev0)
            .block_id(BlockId::safe())
            .await
            .unwrap(),
        net.http().get_balance(dev0).await.unwrap()
    );
    node.stop().await;
    net.stop().await;
}

/// Block 3's diff, with its first account's balance raised.
fn forge_diff(kind: &str, mut v: Value) -> Value {
    if kind == "blocks" && v["header"]["number"] == json!(3) {
        let mut diff: StateDiff = serde_json::from_value(v["diff"].clone()).unwrap();
        let mut accounts = diff.accounts().to_vec();
        accounts[0].balance += U256::from(1_000_000);
        diff = StateDiff::new(accounts).unwrap();
        v["diff"] = serde_json::to_value(diff).unwrap();
    }
    v
}

/// A genuinely valid proof of batch `b`'s true statement with one FRI query.
fn weak_bundle(seq: &Sequencer, b: &ProvenBatch) -> Bytes {
    let block = |n: u64| seq.read().chain.block(n).unwrap().clone();
    let mut pre = MemState::new();
    for n in 0..b.first_block {
        pre.apply(&block(n).diff).unwrap();
    }
    let diffs: Vec<_> = (b.first_block..=b.last_block)
        .map(|n| block(n).diff.clone())
        .collect();
    let mut tree = pre.tree().clone();
    let input = TransitionInput::build(&mut tree, net_diff(&diffs).unwrap(), b.last_block);
    let fri = FriParams {
        num_queries: 1,
        query_proof_of_work_bits: 0,
        ..FriPreset::Standard.params()
    };
    let artifact = Prover::new(CpuBackend::new())
        .prove_transition_with_insecure_params(&input, fri, Arc::new(()))
        .unwrap();
    TransitionProof {
        chunks: vec![artifact],
    }
    .to_bytes()
    .into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_diff_and_a_weak_proof_are_refused() {
    let net = Network::start().await;

    // A relay that alters block 3's diff: refused at block 3, never applied.
    let (forged_url, _forged) = relay(net.ws_url(), each(forge_diff)).await;
    let dir = tempfile::tempdir().unwrap();
    let forged = Node::start(config(dir.path()), forged_url).await;

    // A relay that replaces batch 1's proof with a weak proof of the same statement.
    let seq = net.seq.clone();
    let weak = each(move |kind: &str, v: Value| {
        if kind != "proofs" || v["index"] != json!(1) {
            return v;
        }
        let mut b: ProvenBatch = serde_json::from_value(v).unwrap();
        b.bundle = weak_bundle(&seq, &b);
        serde_json::to_value(b).unwrap()
    });
    let (weak_url, _weak) = relay(net.ws_url(), weak).await;
    let dir2 = tempfile::tempdir().unwrap();
    let strict = Node::start(config(dir2.path()), weak_url.clone()).await;
    // The same weak proof is valid: a replica whose floor is 0 accepts it.
    let dir3 = tempfile::tempdir().unwrap();
    let open = Node::start(
        Config {
            min_security_bits: 0,
            ..Config::new(dir3.path())
        },
        weak_url,
    )
    .await;
    // And an honest path for comparison.
    let (plain_url, _plain) = relay(net.ws_url(), unaltered()).await;
    let dir4 = tempfile::tempdir().unwrap();
    let honest = Node::start(Config::new(dir4.path()), plain_url).await;

    net.transfers(0, 24).await;
    let head = net.proven_to_head().await;
    let batches = net.seq.proofs().status().proven_batches;
    assert!(batches >= 2, "two batches at least: {batches}");

    // Refused at block 3, re-synced from the proven head (before block 3: its batch
    // is never proven), refused again; still serving.
    let s = refused_again(&forged, "the forged block refused twice", 2).await;
    let refused = s["refused"].as_array().unwrap();
    assert_eq!(refused.len(), 1, "the same refusal, counted: {s:#}");
    assert_eq!(refused[0]["block"], 3, "{s:#}");
    let reason = refused[0]["reason"].as_str().unwrap();
    assert!(reason.contains("diff commitment"), "{reason}");
    let latest = at(&s, "latest").unwrap();
    assert!(latest < 3, "{s:#}");
    assert_eq!(
        at(&s, "proven"),
        Some(latest),
        "back at the proven head: {s:#}"
    );
    assert_eq!(
        s["latestRoot"],
        net.seq
            .read()
            .chain
            .block(latest)
            .unwrap()
            .header
            .post_state_root
            .hex()
    );
    assert!(at(&s, "resyncs").unwrap() >= 2, "{s:#}");
    serving_the_proven_state(&forged).await;

    let s = refused_again(&strict, "the weak proof refused twice", 2).await;
    let refused = s["refused"].as_array().unwrap();
    assert_eq!(refused.len(), 1, "the same refusal, counted: {s:#}");
    assert_eq!(refused[0]["batch"], 1, "{s:#}");
    let reason = refused[0]["reason"].as_str().unwrap();
    assert!(reason.contains("bits"), "{reason}");
    let proven = at(&s, "proven").unwrap();
    let batch0: ProvenBatch = net
        .http()
        .raw_request("proofbox_getProof".into(), (U256::ZERO,))
        .await
        .unwrap();
    assert_eq!(proven, batch0.last_block, "{s:#}");
    assert_eq!(
        at(&s, "latest"),
        Some(proven),
        "back at the proven head: {s:#}"
    );

    caught_up(&open, head).await;
    let s = caught_up(&honest, head).await;
    assert_eq!(s["refused"], json!([]));

    // The refusals outlive a restart.
    forged.stop().await;
    let reopened = Replica::open(config(dir.path())).unwrap();
    let s = reopened.status();
    assert_eq!(s["refused"][0]["block"], 3, "{s:#}");
    assert!(s["refused"][0]["count"].as_u64() >= Some(2), "{s:#}");
    drop(reopened);
    for n in [strict, open, honest] {
        n.stop().await;
    }
    net.stop().await;
}

/// A relay that forges block 3's diff on its first `blocks` subscription only: the
/// replica refuses it, re-syncs by itself and then follows the honest stream to the
/// head.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_refusal_the_replica_resyncs_and_follows_honest_data() {
    let net = Network::start().await;
    let subscriptions = Arc::new(AtomicUsize::new(0));
    let count = subscriptions.clone();
    let alter: common::Alter = Arc::new(move |kind: &str, _: &Value| {
        let first = kind == "blocks" && count.fetch_add(1, Ordering::SeqCst) == 0;
        let kind = kind.to_string();
        Box::new(move |v| if first { forge_diff(&kind, v) } else { v }) as Transform
    });
    let (url, _relay) = relay(net.ws_url(), alter).await;
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(config(dir.path()), url).await;
    let (before, _) = page(&node).await;
    assert_eq!(before["role"], "replica", "{before:#}");
    net.transfers(0, 16).await;
    let head = net.proven_to_head().await;
    let s = caught_up(&node, head).await;
    assert_eq!(s["following"], true, "{s:#}");
    let refused = s["refused"].as_array().unwrap();
    assert_eq!(refused.len(), 1, "{s:#}");
    assert_eq!(refused[0]["block"], 3, "{s:#}");
    assert_eq!(refused[0]["count"], 1, "{s:#}");
    // The status page on the RPC port shows the heads that moved, the re-sync and the
    // refusal (the lie).
    let (after, html) = page(&node).await;
    assert!(at(&before, "latest") < Some(head), "{before:#}");
    assert_eq!(
        (
            at(&after, "latest"),
            at(&after, "proven"),
            at(&after, "lagBlocks")
        ),
        (Some(head), Some(head), Some(0)),
        "{after:#}"
    );
    assert_eq!(at(&after, "refusals"), Some(1), "{after:#}");
    assert!(at(&after, "resyncs") >= Some(1), "{after:#}");
    let lies = after["lies"].as_array().unwrap();
    assert_eq!(lies.len(), 1, "{after:#}");
    assert!(
        lies[0].as_str().unwrap().starts_with("refused block 3: "),
        "{after:#}"
    );
    assert!(html.contains("<title>ProofBox replica</title>"), "{html}");
    assert!(
        html.contains(&format!("data-key=\"latest\">{head}</td>")),
        "{html}"
    );
    assert!(
        html.contains("<li class=\"lie\">refused block 3: "),
        "{html}"
    );
    assert!(subscriptions.load(Ordering::SeqCst) >= 2);
    assert_eq!(s["provenRoot"], net.seq.read().state.root().hex());
    node.stop().await;
    // Restarted, it still lists the refusal.
    let node = Node::start(config(dir.path()), net.ws_url()).await;
    let s = node.status().await;
    assert_eq!(s["refused"][0]["block"], 3, "{s:#}");
    node.stop().await;
    net.stop().await;
}

/// Forges a self-consistent chain from block `k` on: block `k` credits an account
/// out of nothing, and every header from there has the roots, diff commitment and parent
/// hash of the forged state, so each block checks out on its own; only the proofs
/// (of the true roots) contradict it.
struct ForgedChain {
    seq: Sequencer,
    k: u64,
    state: MemState,
    parent: B256,
    next: u64,
}

impl ForgedChain {
    fn new(seq: Sequencer, k: u64, from: u64) -> Self {
        let mut f = Self {
            seq,
            k,
            state: MemState::new(),
            parent: B256::ZERO,
            next: 0,
        };
        while f.next < from {
            let b = f.seq.read().chain.block(f.next).unwrap().as_ref().clone();
            f.forge(b);
        }
        f
    }

    fn forge(&mut self, mut b: proofbox_chain_types::Block) -> proofbox_chain_types::Block {
        assert_eq!(b.number(), self.next);
        self.next += 1;
        if b.number() == self.k {
            // An account no later block touches, so the forgery lasts.
            let mut accounts = b.diff.accounts().to_vec();
            accounts.push(proofbox_chain_types::AccountDiff {
                address: Address::repeat_byte(0xee),
                nonce: 0,
                balance: U256::from(1_000_000),
                code_hash: alloy_primitives::keccak256([]),
                code: None,
                storage: vec![],
                destroyed: false,
            });
            accounts.sort_by_key(|a| a.address);
            b.diff = StateDiff::new(accounts).unwrap();
        }
        if b.number() >= self.k {
            b.header.parent_hash = self.parent;
            b.header.pre_state_root = self.state.root();
            b.header.diff_commitment =
                Root::from_digest(&b.diff.to_state_diff().unwrap().commitment());
            b.header.post_state_root = self.state.apply(&b.diff).unwrap();
        } else {
            self.state.apply(&b.diff).unwrap();
        }
        self.parent = b.hash();
        b
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_consistent_forged_chain_is_applied_but_never_proven() {
    let net = Network::start().await;
    const K: u64 = 2;
    let seq = net.seq.clone();
    let alter: common::Alter = Arc::new(move |kind: &str, opts: &Value| {
        if kind != "blocks" {
            return Box::new(|v| v) as Transform;
        }
        let from = opts["fromBlock"].as_u64().unwrap();
        let mut forged = ForgedChain::new(seq.clone(), K, from);
        Box::new(move |v: Value| {
            let b: proofbox_sequencer::rpc::subs::StreamBlock = serde_json::from_value(v).unwrap();
            let b = forged.forge(b.into_block());
            serde_json::to_value(proofbox_sequencer::rpc::subs::StreamBlock::new(&b)).unwrap()
        })
    });
    let (url, _relay) = relay(net.ws_url(), alter).await;
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(config(dir.path()), url).await;

    net.transfers(0, 16).await;
    net.proven_to_head().await;
    let s = refused_again(&node, "the forged chain refused twice", 2).await;
    let refused = s["refused"].as_array().unwrap();
    assert_eq!(refused.len(), 1, "refused, re-synced, refused again: {s:#}");
    let index = refused[0]["batch"].as_u64().unwrap();
    let batch: ProvenBatch = net
        .http()
        .raw_request("proofbox_getProof".into(), (U256::from(index),))
        .await
        .unwrap();
    assert!(
        batch.covers(K),
        "the refused batch holds the forged block: {s:#}"
    );
    for r in refused {
        assert_eq!(r["batch"], index);
        assert_eq!(r["block"], batch.last_block, "{s:#}");
        let reason = r["reason"].as_str().unwrap();
        assert!(reason.contains("post-state root"), "{reason}");
    }
    // Nothing forged was ever believed: the proven head is before the forged block,
    // and the latest state went back to it.
    assert_eq!(at(&s, "proven"), Some(batch.first_block - 1), "{s:#}");
    assert_eq!(at(&s, "latest"), Some(batch.first_block - 1), "{s:#}");
    let real = net
        .seq
        .read()
        .chain
        .block(batch.first_block - 1)
        .unwrap()
        .header
        .post_state_root;
    assert_eq!(s["provenRoot"], real.hex());
    assert_eq!(s["latestRoot"], real.hex());
    serving_the_proven_state(&node).await;
    node.stop().await;
    net.stop().await;
}

/// A relay that flips the first receipt of the first block with transactions, its
/// header left as it was: the replica applies the block (its state checks pass), its
/// body checker refuses it ("receipts root"), the replica re-syncs and refuses it
/// again; meanwhile a client asking for every transaction's receipt over HTTP never
/// gets the forged one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_whose_receipts_do_not_match_is_refused_and_never_served() {
    let net = Network::start().await;
    let seq = net.seq.clone();
    let forged = move |n: u64| {
        let c = seq.read();
        (1..=n).find(|k| {
            c.chain
                .block(*k)
                .is_some_and(|b| !b.transactions.is_empty())
        }) == Some(n)
    };
    let alter = each(move |kind: &str, mut v: Value| {
        if kind == "blocks" && v["header"]["number"].as_u64().is_some_and(&forged) {
            let ok = v["receipts"][0]["success"].as_bool().unwrap();
            v["receipts"][0]["success"] = json!(!ok);
        }
        v
    });
    let (url, _relay) = relay(net.ws_url(), alter).await;
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(config(dir.path()), url).await;

    // A client reading every receipt the sequencer has, over and over.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (rep, seq, stop) = (node.http(), net.seq.clone(), stop.clone());
        tokio::spawn(async move {
            let mut served = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let head = seq.read().chain.head();
                for n in 1..=head {
                    let b = seq.read().chain.block(n).unwrap().clone();
                    for (tx, want) in b.transactions.iter().zip(&b.receipts) {
                        if let Ok(Some(r)) = rep.get_transaction_receipt(tx.hash()).await {
                            assert_eq!(
                                r.status(),
                                want.success,
                                "block {n}: a forged receipt served"
                            );
                            served += 1;
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            served
        })
    };
    net.transfers(0, 16).await;
    net.proven_to_head().await;
    let s = refused_again(&node, "the forged receipts refused twice", 2).await;
    stop.store(true, Ordering::SeqCst);
    let served = reader.await.unwrap();
    let refused = s["refused"].as_array().unwrap();
    assert_eq!(refused.len(), 1, "the same refusal, counted: {s:#}");
    let n = refused[0]["block"].as_u64().unwrap();
    assert!(n >= 1, "{s:#}");
    let reason = refused[0]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("header and body disagree: receipts root"),
        "{reason}"
    );
    let latest = at(&s, "latest").unwrap();
    assert!(latest < n, "{s:#}");
    assert_eq!(at(&s, "proven"), Some(latest), "{s:#}");
    serving_the_proven_state(&node).await;
    // The blocks before the forged one were served (receipts read) at some point.
    println!("receipts served during the run: {served}");
    node.stop().await;
    net.stop().await;
}
