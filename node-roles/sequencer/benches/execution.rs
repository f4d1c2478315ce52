//! ETH transfers per second through the sequencer's execution path (`execute_block`:
//! revm plus the state diff) against a bare revm loop over the same transactions in
//! the same run, and with the state root (the diff applied to the Poseidon2 tree).
//!
//! `cargo bench -p proofbox-sequencer --bench execution`

use std::time::Duration;

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, TxKind, U256};
use alloy_signer::SignerSync;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use proofbox_chain_types::SignedTx;
use proofbox_sequencer::chain::genesis;
use proofbox_sequencer::exec::{BlockParams, SPEC, execute_block, tx_env};
use proofbox_sequencer::{Config, dev_accounts};
use revm::context::{BlockEnv, CfgEnv, Context, TxEnv};
use revm::database::CacheDB;
use revm::{ExecuteCommitEvm, MainBuilder};

const TXS: usize = 1000;

fn transfers() -> Vec<SignedTx> {
    let accounts = dev_accounts(10);
    (0..TXS)
        .map(|i| {
            let from = &accounts[i % 10];
            let tx = TxEip1559 {
                chain_id: 31337,
                nonce: (i / 10) as u64,
                gas_limit: 21_000,
                max_fee_per_gas: 3_000_000_000,
                max_priority_fee_per_gas: 1,
                to: TxKind::Call(Address::with_last_byte((i % 200) as u8 + 1)),
                value: U256::from(1 + i),
                ..Default::default()
            };
            let sig = from.signer().sign_hash_sync(&tx.signature_hash()).unwrap();
            let raw = TxEnvelope::from(tx.into_signed(sig)).encoded_2718();
            SignedTx::decode(&raw).unwrap()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let config = Config::default();
    let core = genesis(&config.alloc(), config.gas_limit, config.base_fee).unwrap();
    let txs = transfers();
    let params = BlockParams {
        chain_id: 31337,
        number: 1,
        timestamp_ms: 1_000,
        gas_limit: 30_000_000,
        base_fee: config.base_fee,
        coinbase: Address::ZERO,
    };
    let mut g = c.benchmark_group("eth_transfers");
    g.throughput(Throughput::Elements(TXS as u64));
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("bare_revm", |b| {
        b.iter_batched(
            || txs.clone(),
            |txs| {
                let mut cfg = CfgEnv::new_with_spec(SPEC);
                cfg.chain_id = 31337;
                let block = BlockEnv {
                    number: U256::from(1),
                    timestamp: U256::from(1),
                    gas_limit: 30_000_000,
                    basefee: params.base_fee,
                    prevrandao: Some(alloy_primitives::B256::ZERO),
                    ..Default::default()
                };
                let mut evm =
                    Context::<BlockEnv, TxEnv, CfgEnv, _>::new(CacheDB::new(&core.state), SPEC)
                        .with_cfg(cfg)
                        .with_block(block)
                        .build_mainnet();
                for tx in &txs {
                    evm.transact_commit(tx_env(tx)).unwrap();
                }
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("execute_block", |b| {
        b.iter_batched(
            || txs.clone(),
            |txs| {
                let out = execute_block(&core.state, &params, txs).unwrap();
                assert_eq!(out.included.len(), TXS);
                out
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("execute_block_and_state_root", |b| {
        b.iter_batched(
            || {
                (
                    txs.clone(),
                    genesis(&config.alloc(), config.gas_limit, config.base_fee).unwrap(),
                )
            },
            |(txs, mut core)| {
                let out = execute_block(&core.state, &params, txs).unwrap();
                core.state.apply(&out.diff).unwrap()
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
