//! JSON-RPC latency under load on loopback: a sequencer (producing blocks every
//! 100 ms; with `--durable`, on a data directory in a temporary folder, so that
//! every block and every admitted transaction is synced to disk, without it on
//! none) serves HTTP on 127.0.0.1; `--clients` concurrent
//! clients, each with its own keep-alive connection, alternate pre-signed
//! `eth_sendRawTransaction` (distinct senders and nonces, so every one is admitted)
//! and `eth_getBalance` for `--seconds`; then p50, p99, max and requests per second
//! per method, and a check that every admitted transaction reached a block.
//!
//! `cargo bench -p proofbox-sequencer --bench rpc_latency -- --clients 8 --seconds 5
//! [--durable]`

use std::time::{Duration, Instant};

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, TxKind, U256, hex, keccak256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use proofbox_sequencer::{Config, Sequencer};
use serde_json::{Value, json};

/// Senders per client: each sender's pending nonces stay well inside the pool's gap.
/// Recipient `i % 200`: plain addresses (`0x4242..42xx`), none a precompile.
fn recipient(i: usize) -> Address {
    let mut a = [0x42; 20];
    a[19] = (i % 200) as u8;
    Address::from(a)
}

const SENDERS_PER_CLIENT: usize = 32;

struct Args {
    clients: usize,
    seconds: f64,
    /// Transactions signed per client before the run (a client that runs out sends
    /// only balance queries, and says so).
    txs_per_client: usize,
    /// Run on a data directory (block log and pool journal, synced).
    durable: bool,
}

fn args() -> Args {
    let mut a = Args {
        clients: 8,
        seconds: 5.0,
        txs_per_client: 3000,
        durable: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut value = || it.next().and_then(|v| v.parse::<f64>().ok()).expect(&k);
        match k.as_str() {
            "--clients" => a.clients = value() as usize,
            "--seconds" => a.seconds = value(),
            "--txs-per-client" => a.txs_per_client = value() as usize,
            "--durable" => a.durable = true,
            // `cargo bench` passes `--bench`; other flags are not ours.
            _ => {}
        }
    }
    a
}

fn signer(i: usize) -> PrivateKeySigner {
    PrivateKeySigner::from_bytes(&keccak256(format!("rpc latency sender {i}"))).unwrap()
}

/// Client `c`'s transactions as `0x`-hex EIP-2718 bytes: round-robin over its senders.
fn signed(c: usize, n: usize, chain_id: u64) -> Vec<String> {
    let signers: Vec<_> = (0..SENDERS_PER_CLIENT)
        .map(|s| signer(c * SENDERS_PER_CLIENT + s))
        .collect();
    (0..n)
        .map(|i| {
            let tx = TxEip1559 {
                chain_id,
                nonce: (i / SENDERS_PER_CLIENT) as u64,
                gas_limit: 21_000,
                max_fee_per_gas: 3_000_000_000,
                max_priority_fee_per_gas: 1,
                to: TxKind::Call(recipient(i)),
                value: U256::from(1 + i),
                ..Default::default()
            };
            let sig = signers[i % SENDERS_PER_CLIENT]
                .sign_hash_sync(&tx.signature_hash())
                .unwrap();
            let raw = TxEnvelope::from(tx.into_signed(sig)).encoded_2718();
            format!("0x{}", hex::encode(raw))
        })
        .collect()
}

#[derive(Default)]
struct Samples {
    send: Vec<Duration>,
    balance: Vec<Duration>,
    errors: usize,
    ran_out: bool,
}

async fn call(http: &reqwest::Client, url: &str, method: &str, params: Value) -> bool {
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
    match http.post(url).json(&body).send().await {
        Ok(r) => match r.json::<Value>().await {
            Ok(v) => v.get("result").is_some(),
            Err(_) => false,
        },
        Err(_) => false,
    }
}

async fn client(url: String, txs: Vec<String>, queried: Vec<Address>, until: Instant) -> Samples {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap();
    let mut s = Samples::default();
    let mut txs = txs.into_iter();
    let mut i = 0usize;
    while Instant::now() < until {
        match txs.next() {
            Some(raw) => {
                let t = Instant::now();
                let ok = call(&http, &url, "eth_sendRawTransaction", json!([raw])).await;
                s.send.push(t.elapsed());
                s.errors += usize::from(!ok);
            }
            None => s.ran_out = true,
        }
        let a = queried[i % queried.len()];
        i += 1;
        let t = Instant::now();
        let ok = call(&http, &url, "eth_getBalance", json!([a, "latest"])).await;
        s.balance.push(t.elapsed());
        s.errors += usize::from(!ok);
    }
    s
}

fn report(method: &str, mut d: Vec<Duration>, seconds: f64) {
    d.sort();
    let at = |q: f64| d[((d.len() as f64 * q) as usize).min(d.len() - 1)];
    let ms = |x: Duration| x.as_secs_f64() * 1e3;
    println!(
        "| {method} | {} | {:.0} /s | {:.3} ms | {:.3} ms | {:.3} ms |",
        d.len(),
        d.len() as f64 / seconds,
        ms(at(0.50)),
        ms(at(0.99)),
        ms(*d.last().unwrap()),
    );
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let a = args();
    let senders = a.clients * SENDERS_PER_CLIENT;
    let prefund = U256::from(10u64).pow(U256::from(20u64));
    // In the temporary folder (`TMPDIR`): it must be on a disk, not in memory, for
    // the syncs to cost what they do in production.
    let data = a
        .durable
        .then(|| tempfile::tempdir().expect("a temporary data directory"));
    let config = Config {
        data_dir: data.as_ref().map(|d| d.path().to_path_buf()),
        listen: "127.0.0.1:0".parse().unwrap(),
        extra_alloc: (0..senders)
            .map(|i| (signer(i).address(), prefund))
            .collect(),
        ..Config::default()
    };
    let chain_id = config.chain_id;
    let seq = Sequencer::start(config, true).unwrap();
    let (addr, handle) =
        proofbox_sequencer::rpc::serve(seq.clone(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
    let url = format!("http://{addr}");

    let signing = Instant::now();
    let batches: Vec<Vec<String>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..a.clients)
            .map(|c| s.spawn(move || signed(c, a.txs_per_client, chain_id)))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    eprintln!(
        "signed {} transactions in {:.1} s; {} clients for {} s against {url} ({})",
        a.clients * a.txs_per_client,
        signing.elapsed().as_secs_f64(),
        a.clients,
        a.seconds,
        match &data {
            Some(d) => format!("data directory {}", d.path().display()),
            None => "no data directory".into(),
        }
    );
    let queried: Vec<Address> = (0..senders).map(|i| signer(i).address()).collect();

    let started = Instant::now();
    let until = started + Duration::from_secs_f64(a.seconds);
    let tasks: Vec<_> = batches
        .into_iter()
        .map(|txs| tokio::spawn(client(url.clone(), txs, queried.clone(), until)))
        .collect();
    let mut all = Samples::default();
    for t in tasks {
        let s = t.await.unwrap();
        all.send.extend(s.send);
        all.balance.extend(s.balance);
        all.errors += s.errors;
        all.ran_out |= s.ran_out;
    }
    let wall = started.elapsed().as_secs_f64();
    let admitted = all.send.len();

    println!(
        "{} clients, {wall:.2} s, {} errors, {}",
        a.clients,
        all.errors,
        if a.durable {
            "durable (data directory)"
        } else {
            "no data directory"
        }
    );
    println!("| method | requests | rate | p50 | p99 | max |");
    println!("|---|---|---|---|---|---|");
    report("eth_sendRawTransaction", all.send, wall);
    report("eth_getBalance", all.balance, wall);
    if all.ran_out {
        println!("(some clients ran out of signed transactions: raise --txs-per-client)");
    }

    // Every admitted transaction ends in a block: the senders' nonces add up.
    let deadline = Instant::now() + Duration::from_secs(30);
    let included = loop {
        let n: u64 = queried.iter().map(|q| seq.read().state.nonce(q)).sum();
        if n as usize >= admitted || Instant::now() > deadline {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    println!(
        "{included} of {admitted} sent transactions included by block {}",
        seq.read().chain.head()
    );
    handle.stop().unwrap();
    seq.stop();
    assert_eq!(all.errors, 0, "every request succeeds");
    assert_eq!(included as usize, admitted, "every transaction is included");
}
