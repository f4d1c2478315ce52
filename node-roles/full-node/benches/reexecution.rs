//! Full-node re-execution throughput: a chain of sequencer-built blocks of ETH
//! transfers imported by a fresh `FullNode` (header and body checks, re-execution with
//! revm against its redb state, receipts and diff compared, the state tree updated,
//! the block committed to redb), from decoded blocks and from the JSON the `blocks`
//! stream delivers (decoding recovers every transaction's sender); beside it, in the
//! same run, a fresh replica applying the same blocks' diffs without executing
//! (`replica_apply`: header and body checks, diff commitment included, each diff
//! written to its flat state, no tree; `replica_apply_at_once`: the same through
//! `import_blocks`, the body checks of the 20 blocks in parallel, as the follower does
//! with blocks already waiting in the stream) and the tree work the replica adds when the
//! blocks are proven as one batch (`replica_batch_tree`: their net diff, its
//! commitment, and the net diff applied to the proven state's tree in one update; the
//! proof's verification, whose cost does not
//! depend on the blocks, is not included). What bounds the replica, measured alone:
//! `body_checks` (`Block::check_body` of each block, one after another: the body
//! checks the full node's `import` makes, and `import_block`'s), and `body_tries`
//! (only the transactions and receipts tries of each block, one after another).
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
    g.bench_function("replica_apply", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().unwrap();
                let replica =
                    proofbox_replica::Replica::open(proofbox_replica::Config::new(dir.path()))
                        .unwrap();
                replica.import_block(genesis.clone()).unwrap();
                ((dir, replica), rest.to_vec())
            },
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
            || {
                let dir = tempfile::tempdir().unwrap();
                let replica =
                    proofbox_replica::Replica::open(proofbox_replica::Config::new(dir.path()))
                        .unwrap();
                replica.import_block(genesis.clone()).unwrap();
                ((dir, replica), rest.to_vec())
            },
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
    g.bench_function("body_tries", |b| {
        b.iter(|| {
            for block in rest {
                let t = proofbox_chain_types::transactions_root(&block.transactions);
                let r = proofbox_chain_types::receipts_root(&block.receipts);
                assert_eq!(
                    (t, r),
                    (block.header.transactions_root, block.header.receipts_root)
                );
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
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
