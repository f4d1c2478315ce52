//! Full-node re-execution throughput: a chain of sequencer-built blocks of ETH
//! transfers imported by a fresh `FullNode` (header and body checks, re-execution with
//! revm against its redb state, receipts and diff compared, the state tree updated,
//! the block committed to redb), from decoded blocks and from the JSON the `blocks`
//! stream delivers (decoding recovers every transaction's sender); beside it, in the
//! same run, a fresh replica applying the same blocks' diffs without executing:
//!
//! - `replica_apply`, `replica_apply_at_once`: the apply path (parent hash, diff
//!   commitment, pre-state root, each diff written to its flat state, no tree), one
//!   block at a time (`import_block`) and the 20 at once (`import_blocks`, their diff
//!   commitments hashed together, as the follower does with blocks already waiting in
//!   the stream), with the default `BodyChecks::Background`: the blocks'
//!   transactions and receipts are checked by the replica's worker thread beside it;
//! - `replica_apply_then_bodies`: `import_blocks`, then waiting until the worker has
//!   checked every block's transactions and receipts (all the work);
//! - `replica_apply_eager`: `import_blocks` with `BodyChecks::Eager`, every body
//!   checked before its block is applied (the tries across cores);
//! - `replica_batch_tree`: the tree work the replica adds when the blocks are proven
//!   as one batch (their net diff, its commitment, and the net diff applied to the
//!   proven state's tree in one update; the proof's verification, whose cost does not
//!   depend on the blocks, is not included);
//! - `body_checker`: what the worker does, alone: each block's transactions and
//!   receipts checked against its header (`check_transactions_and_receipts`), one
//!   after another; `body_checks`: the whole `Block::check_body` of each block (the
//!   full node's body checks);
//! - `replica_stream_json_decode_and_apply`: the replica's own reading of the stream's
//!   JSON (senders not recovered) and `import_blocks`, beside the full node's
//!   `stream_json_decode_and_import`.
//!
//! `cargo bench -p proofbox-full-node --bench reexecution`

use std::time::Duration;

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, TxKind, U256};
use alloy_signer::SignerSync;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use proofbox_chain_types::Block;
use proofbox_full_node::FullNode;
use proofbox_replica::follow::StreamBlock as ReplicaStreamBlock;
use proofbox_replica::{BodyChecks, Config as ReplicaConfig, Replica};
use proofbox_sequencer::rpc::subs::StreamBlock;
use proofbox_sequencer::{Config, Sequencer, dev_accounts};

/// Recipient `i % 200`: plain addresses (`0x4242..42xx`), none a precompile.
fn recipient(i: usize) -> Address {
    let mut a = [0x42; 20];
    a[19] = (i % 200) as u8;
    Address::from(a)
}

const BLOCKS: usize = 20;
const TXS_PER_BLOCK: usize = 500;
const SENDERS: usize = 10;

/// Genesis and `BLOCKS` blocks of `TXS_PER_BLOCK` ETH transfers, built by an in-memory
/// sequencer (no data directory, no producer thread).
fn chain() -> Vec<Block> {
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        dev_accounts: SENDERS as u32,
        ..Config::default()
    };
    let chain_id = config.chain_id;
    let seq = Sequencer::start(config, false).unwrap();
    let signers: Vec<_> = dev_accounts(SENDERS as u32)
        .iter()
        .map(|a| a.signer())
        .collect();
    for b in 0..BLOCKS {
        for i in 0..TXS_PER_BLOCK {
            let n = b * TXS_PER_BLOCK + i;
            let tx = TxEip1559 {
                chain_id,
                nonce: (n / SENDERS) as u64,
                gas_limit: 21_000,
                max_fee_per_gas: 3_000_000_000,
                max_priority_fee_per_gas: 1,
                to: TxKind::Call(recipient(n)),
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
        assert_eq!(block.transactions.len(), TXS_PER_BLOCK);
    }
    let core = seq.read();
    (0..=BLOCKS as u64)
        .map(|n| Block::clone(core.chain.block(n).unwrap()))
        .collect()
}

/// A fresh node (its own temporary directory) holding the genesis block.
fn fresh_node(genesis: &Block, chain_id: u64) -> (tempfile::TempDir, FullNode) {
    let dir = tempfile::tempdir().unwrap();
    let node = FullNode::open(dir.path(), chain_id).unwrap();
    node.import(genesis.clone()).unwrap();
    (dir, node)
}

fn bench(c: &mut Criterion) {
    let chain_id = Config::default().chain_id;
    let blocks = chain();
    let (genesis, rest) = blocks.split_first().unwrap();
    let json: Vec<String> = rest
        .iter()
        .map(|b| serde_json::to_string(&StreamBlock::new(b)).unwrap())
        .collect();
    let mut g = c.benchmark_group(format!("full_node_{BLOCKS}_blocks_of_{TXS_PER_BLOCK}"));
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    // Transactions per second; blocks per second is that divided by TXS_PER_BLOCK.
    g.throughput(Throughput::Elements((BLOCKS * TXS_PER_BLOCK) as u64));
    g.bench_function("import", |b| {
        b.iter_batched(
            || (fresh_node(genesis, chain_id), rest.to_vec()),
            |((dir, node), blocks)| {
                for block in blocks {
                    node.import(block).unwrap();
                }
                assert_eq!(node.head(), Some(BLOCKS as u64));
                (dir, node)
            },
            BatchSize::PerIteration,
        )
    });
    let replica = |bodies: BodyChecks| {
        let dir = tempfile::tempdir().unwrap();
        let replica = Replica::open(ReplicaConfig {
            bodies,
            ..ReplicaConfig::new(dir.path())
        })
        .unwrap();
        replica.import_block(genesis.clone()).unwrap();
        (dir, replica)
    };
    g.bench_function("replica_apply", |b| {
        b.iter_batched(
            || (replica(BodyChecks::Background), rest.to_vec()),
            |((dir, replica), blocks)| {
                for block in blocks {
                    replica.import_block(block).unwrap();
                }
                assert_eq!(replica.read().latest_head, Some(BLOCKS as u64));
                (dir, replica)
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("replica_apply_at_once", |b| {
        b.iter_batched(
            || (replica(BodyChecks::Background), rest.to_vec()),
            |((dir, replica), blocks)| {
                replica.import_blocks(blocks).unwrap();
                assert_eq!(replica.read().latest_head, Some(BLOCKS as u64));
                (dir, replica)
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("replica_apply_then_bodies", |b| {
        b.iter_batched(
            || (replica(BodyChecks::Background), rest.to_vec()),
            |((dir, replica), blocks)| {
                replica.import_blocks(blocks).unwrap();
                replica.wait_bodies_checked();
                let c = replica.read();
                assert_eq!(c.latest_head, Some(BLOCKS as u64));
                assert_eq!(c.block(BLOCKS as u64).unwrap().bodies(), Some(&Ok(())));
                drop(c);
                (dir, replica)
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("replica_apply_eager", |b| {
        b.iter_batched(
            || (replica(BodyChecks::Eager), rest.to_vec()),
            |((dir, replica), blocks)| {
                replica.import_blocks(blocks).unwrap();
                assert_eq!(replica.read().latest_head, Some(BLOCKS as u64));
                (dir, replica)
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("replica_batch_tree", |b| {
        b.iter_batched(
            || {
                let mut proven = proofbox_sequencer::state::MemState::new();
                proven.apply(&genesis.diff).unwrap();
                proven
            },
            |mut proven| {
                let net = proofbox_chain_types::net_diff(rest.iter().map(|b| &b.diff)).unwrap();
                // The statement's diff commitment, as the replica computes it.
                let _commitment = std::hint::black_box(net.commitment());
                let root = proven.apply_net(rest.iter().map(|b| &b.diff), &net);
                assert_eq!(root, rest.last().unwrap().header.post_state_root);
                proven
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("body_checks", |b| {
        b.iter(|| {
            for block in rest {
                block.check_body().unwrap();
            }
        })
    });
    g.bench_function("body_checker", |b| {
        b.iter(|| {
            for block in rest {
                block.check_transactions_and_receipts().unwrap();
            }
        })
    });
    g.bench_function("stream_json_decode_and_import", |b| {
        b.iter_batched(
            || fresh_node(genesis, chain_id),
            |(dir, node)| {
                for text in &json {
                    let block = serde_json::from_str::<StreamBlock>(text).unwrap();
                    node.import(block.into_block()).unwrap();
                }
                assert_eq!(node.head(), Some(BLOCKS as u64));
                (dir, node)
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("replica_stream_json_decode_and_apply", |b| {
        b.iter_batched(
            || replica(BodyChecks::Background),
            |(dir, replica)| {
                let blocks: Vec<Block> = json
                    .iter()
                    .map(|text| {
                        serde_json::from_str::<ReplicaStreamBlock>(text)
                            .unwrap()
                            .into_block()
                    })
                    .collect();
                replica.import_blocks(blocks).unwrap();
                assert_eq!(replica.read().latest_head, Some(BLOCKS as u64));
                (dir, replica)
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
