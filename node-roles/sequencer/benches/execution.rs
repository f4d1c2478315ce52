//! Transfers per second through the sequencer's execution path (`execute_block`: revm,
//! receipts and the block's state diff) against a bare revm loop over the same
//! transactions in the same run, for ETH transfers and for ERC-20 `transfer` calls;
//! and with the state root (the diff applied by `MemState::apply`), beside the state
//! tree's own update rate on the same diff (`StateTree::apply` alone).
//!
//! `cargo bench -p proofbox-sequencer --bench execution`

use std::time::{Duration, Instant};

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, B256, TxKind, U256};
use alloy_signer::SignerSync;
use alloy_sol_types::{SolCall, SolValue, sol};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use proofbox_chain_types::SignedTx;
use proofbox_sequencer::chain::{Core, genesis};
use proofbox_sequencer::exec::{BlockParams, SPEC, execute_block, tx_env};
use proofbox_sequencer::state::MemState;
use proofbox_sequencer::{Config, DevAccount, dev_accounts};
use proofbox_state::Parallelism;
use revm::context::{BlockEnv, CfgEnv, Context, TxEnv};
use revm::database::CacheDB;
use revm::{ExecuteCommitEvm, MainBuilder};

/// Transactions per measured block.
const TXS: usize = 1000;
const SENDERS: usize = 10;
const RECIPIENTS: usize = 200;
/// Gas limit of an ERC-20 transfer (one to a new holder uses about 52,000).
const TOKEN_GAS: u64 = 100_000;
const TOKEN_BIN: &str = include_str!("../tests/contracts/Token.bin");

sol! { function transfer(address to, uint256 value) external returns (bool); }

fn sign(
    from: &DevAccount,
    nonce: u64,
    to: TxKind,
    value: U256,
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
        value,
        input: input.into(),
        ..Default::default()
    };
    let sig = from.signer().sign_hash_sync(&tx.signature_hash()).unwrap();
    let raw = TxEnvelope::from(tx.into_signed(sig)).encoded_2718();
    SignedTx::decode(&raw).unwrap()
}

/// Recipient `i % RECIPIENTS`: plain addresses (`0x4242..42xx`), none a precompile.
fn recipient(i: usize) -> Address {
    let mut a = [0x42; 20];
    a[19] = (i % RECIPIENTS) as u8;
    Address::from(a)
}

/// `TXS` ETH transfers from the development senders in turn, to `RECIPIENTS` addresses.
fn eth_transfers(accounts: &[DevAccount]) -> Vec<SignedTx> {
    (0..TXS)
        .map(|i| {
            let to = TxKind::Call(recipient(i));
            let nonce = (i / SENDERS) as u64;
            sign(
                &accounts[i % SENDERS],
                nonce,
                to,
                U256::from(1 + i),
                vec![],
                21_000,
            )
        })
        .collect()
}

/// Block 1 of the token workload: account 0 deploys the token (all the supply its
/// own), then gives each other sender a share.
fn token_setup(accounts: &[DevAccount]) -> (Address, Vec<SignedTx>) {
    let token = Address::create(&accounts[0].address, 0);
    let mut code = alloy_primitives::hex::decode(TOKEN_BIN.trim()).unwrap();
    let supply = U256::from(10u64).pow(U256::from(30u64));
    code.extend(("Token".to_string(), "TOK".to_string(), supply).abi_encode_params());
    let mut txs = vec![sign(
        &accounts[0],
        0,
        TxKind::Create,
        U256::ZERO,
        code,
        3_000_000,
    )];
    for (n, to) in accounts[1..SENDERS].iter().enumerate() {
        let input = transferCall::new((to.address, supply / U256::from(100))).abi_encode();
        let call = TxKind::Call(token);
        txs.push(sign(
            &accounts[0],
            1 + n as u64,
            call,
            U256::ZERO,
            input,
            TOKEN_GAS,
        ));
    }
    (token, txs)
}

/// `TXS` token transfers (block 2) from the senders in turn, to `RECIPIENTS` holders.
fn token_transfers(accounts: &[DevAccount], token: Address) -> Vec<SignedTx> {
    (0..TXS)
        .map(|i| {
            let sender = i % SENDERS;
            // Account 0 used nonces 0..SENDERS in block 1.
            let first = if sender == 0 { SENDERS as u64 } else { 0 };
            let nonce = first + (i / SENDERS) as u64;
            let input = transferCall::new((recipient(i), U256::from(1 + i))).abi_encode();
            let to = TxKind::Call(token);
            sign(&accounts[sender], nonce, to, U256::ZERO, input, TOKEN_GAS)
        })
        .collect()
}

fn params(number: u64, base_fee: u64) -> BlockParams {
    BlockParams {
        chain_id: 31337,
        number,
        timestamp_ms: number * 1_000,
        gas_limit: TXS as u64 * TOKEN_GAS,
        base_fee,
        coinbase: Address::ZERO,
    }
}

fn genesis_core() -> Core {
    let config = Config::default();
    genesis(&config.alloc(), config.gas_limit, config.base_fee).unwrap()
}

/// The genesis state with the token deployed and shared out (block 1 applied).
fn token_core(setup: &[SignedTx]) -> Core {
    let mut core = genesis_core();
    let out = execute_block(&core.state, &params(1, core_base_fee()), setup.to_vec()).unwrap();
    assert_eq!(out.included.len(), setup.len());
    assert!(
        out.receipts.iter().all(|r| r.success),
        "the token setup succeeds"
    );
    core.state.apply(&out.diff).unwrap();
    core.state.push_block_hash(B256::repeat_byte(1));
    core
}

fn core_base_fee() -> u64 {
    Config::default().base_fee
}

/// The reference: revm's `transact_commit` over a `CacheDB` on the pre-state, the
/// same environment as `execute_block` builds, nothing else.
fn bare_revm(pre: &MemState, p: &BlockParams, txs: &[SignedTx]) {
    let mut cfg = CfgEnv::new_with_spec(SPEC);
    cfg.chain_id = p.chain_id;
    let block = BlockEnv {
        number: U256::from(p.number),
        beneficiary: p.coinbase,
        timestamp: U256::from(p.timestamp_ms / 1000),
        gas_limit: p.gas_limit,
        basefee: p.base_fee,
        prevrandao: Some(B256::ZERO),
        ..Default::default()
    };
    let mut evm = Context::<BlockEnv, TxEnv, CfgEnv, _>::new(CacheDB::new(pre), SPEC)
        .with_cfg(cfg)
        .with_block(block)
        .build_mainnet();
    for tx in txs {
        let r = evm.transact_commit(tx_env(tx)).unwrap();
        assert!(r.is_success());
    }
}

/// Rounds of the paired comparison.
const PAIRED_ROUNDS: usize = 300;

/// The overhead measured in pairs: each round times the bare loop and `execute_block`
/// back to back (alternating which goes first), so load from other processes, which
/// drifts over seconds, weighs on both alike; criterion times them seconds apart.
fn paired_overhead(name: &str, pre: &MemState, p: &BlockParams, txs: &[SignedTx]) {
    let (mut bare, mut exec, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..PAIRED_ROUNDS {
        let time_bare = || {
            let txs = txs.to_vec();
            let t = Instant::now();
            bare_revm(pre, p, &txs);
            t.elapsed()
        };
        let time_exec = || {
            let txs = txs.to_vec();
            let t = Instant::now();
            let out = execute_block(pre, p, txs).unwrap();
            let elapsed = t.elapsed();
            assert_eq!(out.included.len(), TXS);
            elapsed
        };
        let (b, e) = if round % 2 == 0 {
            let b = time_bare();
            (b, time_exec())
        } else {
            let e = time_exec();
            (time_bare(), e)
        };
        bare.push(b);
        exec.push(e);
        ratios.push(e.as_secs_f64() / b.as_secs_f64());
    }
    bare.sort();
    exec.sort();
    ratios.sort_by(f64::total_cmp);
    let median = |v: &[Duration]| v[v.len() / 2];
    let pct = |x: f64| (x - 1.0) * 100.0;
    println!(
        "{name}: paired, {PAIRED_ROUNDS} rounds: bare revm median {:?} (min {:?}), \
         execute_block median {:?} (min {:?}); overhead: median of the rounds' ratios \
         {:+.1}%, of the minima {:+.1}%",
        median(&bare),
        bare[0],
        median(&exec),
        exec[0],
        pct(ratios[ratios.len() / 2]),
        pct(exec[0].as_secs_f64() / bare[0].as_secs_f64()),
    );
}

/// The four variants over one workload: `make_core` builds the pre-state afresh.
fn workload(
    c: &mut Criterion,
    name: &str,
    make_core: &dyn Fn() -> Core,
    p: &BlockParams,
    txs: &[SignedTx],
) {
    let core = make_core();
    let diff = execute_block(&core.state, p, txs.to_vec()).unwrap().diff;
    let tree_diff = diff.to_state_diff().unwrap();
    let updates = tree_diff.len() as u64;
    println!(
        "{name}: {} transactions, {} accounts in the diff, {updates} state tree updates \
         on a tree of {} keys",
        txs.len(),
        diff.accounts().len(),
        core.state.tree().len()
    );
    paired_overhead(name, &core.state, p, txs);
    let mut g = c.benchmark_group(name);
    g.measurement_time(Duration::from_secs(5));
    g.throughput(Throughput::Elements(txs.len() as u64));
    // Both the bare loop and `execute_block` get their own copy of the transactions
    // and drop their results outside the timing.
    g.bench_function("bare_revm", |b| {
        b.iter_batched(
            || txs.to_vec(),
            |txs| {
                bare_revm(&core.state, p, &txs);
                txs
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("execute_block", |b| {
        b.iter_batched(
            || txs.to_vec(),
            |txs| {
                let out = execute_block(&core.state, p, txs).unwrap();
                assert_eq!(out.included.len(), TXS);
                out
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("execute_block_and_state_root", |b| {
        b.iter_batched(
            || (txs.to_vec(), make_core()),
            |(txs, mut core)| {
                let out = execute_block(&core.state, p, txs).unwrap();
                let root = core.state.apply(&out.diff).unwrap();
                (root, core)
            },
            BatchSize::SmallInput,
        )
    });
    // The reference for the state root: the tree alone, on the same diff (canonical,
    // key digests computed before), with the parallelism `MemState::apply` picks.
    let parallelism = if tree_diff.len() >= 256 {
        Parallelism::Parallel
    } else {
        Parallelism::Sequential
    };
    g.throughput(Throughput::Elements(updates));
    g.bench_function("state_tree_apply_updates", |b| {
        b.iter_batched(
            || core.state.tree().clone(),
            |mut tree| {
                let root = tree.apply(&tree_diff, parallelism);
                (root, tree)
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn bench(c: &mut Criterion) {
    let accounts = dev_accounts(SENDERS as u32);
    let base_fee = core_base_fee();
    let eth = eth_transfers(&accounts);
    workload(
        c,
        "eth_transfers",
        &genesis_core,
        &params(1, base_fee),
        &eth,
    );

    let (token, setup) = token_setup(&accounts);
    let transfers = token_transfers(&accounts, token);
    let make = || token_core(&setup);
    workload(
        c,
        "erc20_transfers",
        &make,
        &params(2, base_fee),
        &transfers,
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
