//! `proofbox devnet`: the whole system on one machine, on loopback, with embedded
//! defaults: an appliance proving on every device found, a sequencer proving its
//! blocks on it, a full node re-executing them, a replica applying their diffs and
//! believing proven roots, and a light client following the proofs from genesis and
//! reading state through the replica's Merkle proofs. Prints every endpoint and the
//! prefunded keys, shows a live status line, optionally sends load; Ctrl-C stops
//! everything cleanly, and a second start on the same data directory resumes.

use std::collections::{BTreeMap, VecDeque};
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, TxKind, U256};
use alloy_signer::SignerSync;
use anyhow::{Context, Result, anyhow};
use clap::Args;
use proofbox_sequencer::proving::{self, ProvingConfig};
use proofbox_sequencer::{Config, DevAccount, Sequencer, dev_accounts};

mod page;

#[derive(Args)]
pub struct DevnetArgs {
    /// Every role's data lives here (appliance/, sequencer/, full-node/); a second
    /// start on it resumes.
    #[arg(long, default_value = "proofbox-devnet")]
    data_dir: PathBuf,
    /// The sequencer listens on this port, then the full node, the replica, the light
    /// client, the appliance and the status page on the next ones; 0 lets each pick a
    /// free port (they are printed).
    #[arg(long, default_value_t = 8545)]
    base_port: u16,
    /// Transfers per second sent from the prefunded accounts (0: none).
    #[arg(long, default_value_t = 0)]
    load: u64,
    /// Block interval in milliseconds (at least 10).
    #[arg(long, default_value_t = 100)]
    block_time_ms: u64,
    /// The appliance's devices (comma-separated ids, e.g. `cpu:0`); default: every
    /// device found.
    #[arg(long, value_delimiter = ',')]
    devices: Vec<String>,
    /// A batch of blocks is proven after this many blocks (or a second).
    #[arg(long, default_value_t = 10)]
    batch_blocks: u64,
    /// Print a status line every few seconds instead of redrawing one.
    #[arg(long)]
    plain: bool,
    /// Stop by itself after this many seconds.
    #[arg(long)]
    duration_secs: Option<u64>,
}

fn port(base: u16, offset: u16) -> SocketAddr {
    let p = if base == 0 { 0 } else { base + offset };
    SocketAddr::from(([127, 0, 0, 1], p))
}

pub fn run(a: DevnetArgs) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(devnet(a))
}

async fn devnet(a: DevnetArgs) -> Result<ExitCode> {
    // Before any device is opened (see proofbox_service::ShutdownSignal).
    let signal =
        proofbox_service::ShutdownSignal::register().context("registering signal handlers")?;
    std::fs::create_dir_all(&a.data_dir)
        .with_context(|| format!("creating {}", a.data_dir.display()))?;

    let appliance = proofbox_service::start(proofbox_service::Config {
        listen: port(a.base_port, 4),
        data_dir: a.data_dir.join("appliance"),
        allow_keyless_on_loopback: true,
        devices: a.devices.clone(),
        ..proofbox_service::Config::default()
    })
    .await
    .context("starting the appliance")?;
    let appliance_url = format!("http://{}", appliance.addr());

    let config = Config {
        listen: port(a.base_port, 0),
        block_time: Duration::from_millis(a.block_time_ms),
        data_dir: Some(a.data_dir.join("sequencer")),
        ..Config::default()
    };
    let seq = Sequencer::start(config.clone(), true).map_err(|e| anyhow!(e))?;
    let (seq_addr, seq_rpc) = proofbox_sequencer::rpc::serve(seq.clone(), config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let proving = proving::start(
        &seq,
        ProvingConfig {
            appliances: vec![appliance_url.clone()],
            batch_blocks: a.batch_blocks,
            max_in_flight: 2 * appliance.service().devices().len().max(1),
            ..ProvingConfig::default()
        },
    )
    .map_err(|e| anyhow!(e))?;

    let full = proofbox_full_node::FullNode::open(&a.data_dir.join("full-node"), config.chain_id)
        .context("opening the full node")?;
    let (full_addr, full_rpc) = proofbox_full_node::rpc::serve(full.clone(), port(a.base_port, 1))
        .await
        .context("starting the full node's RPC")?;
    let follower = tokio::spawn(full.clone().follow(format!("ws://{seq_addr}")));

    let replica = proofbox_replica::Replica::open(proofbox_replica::Config {
        chain_id: config.chain_id,
        ..proofbox_replica::Config::new(a.data_dir.join("replica"))
    })
    .map_err(|e| anyhow!(e))
    .context("opening the replica")?;
    let (replica_addr, replica_rpc) =
        proofbox_replica::rpc::serve(replica.clone(), port(a.base_port, 2))
            .await
            .context("starting the replica's RPC")?;
    let replica_follower = tokio::spawn(replica.clone().follow(format!("ws://{seq_addr}")));

    // The light client's checkpoint is this chain's genesis root: the devnet built
    // the genesis itself, so it is trusted here.
    let genesis_root = seq
        .read()
        .chain
        .block(0)
        .expect("a genesis block")
        .header
        .post_state_root;
    let light = proofbox_light_client::LightClient::new(
        proofbox_light_client::Head {
            block: 0,
            root: genesis_root,
            next_batch: Some(0),
        },
        config.chain_id,
        proofbox_verifier::DEFAULT_MIN_SECURITY_BITS,
        Some(a.data_dir.join("light-client")),
    )
    .map_err(|e| anyhow!(e))?;
    let (light_addr, light_rpc) = proofbox_light_client::rpc::serve(
        proofbox_light_client::rpc::Served::new(
            light.clone(),
            format!("http://{replica_addr}"),
            format!("http://{seq_addr}"),
        ),
        port(a.base_port, 3),
    )
    .await
    .context("starting the light client's RPC")?;
    let light_follower = tokio::spawn(light.clone().follow(format!("ws://{seq_addr}")));

    let status_listener = tokio::net::TcpListener::bind(port(a.base_port, 5))
        .await
        .context("listening for the status page")?;
    let status_url = format!("http://{}", status_listener.local_addr()?);
    let page = page::Page::new();
    let sampler = tokio::spawn(page::sample(
        page.clone(),
        page::Sources {
            seq: seq.clone(),
            full: full.clone(),
            replica: replica.clone(),
            light: light.clone(),
            urls: vec![
                ("sequencer".into(), format!("http://{seq_addr}")),
                ("full node".into(), format!("http://{full_addr}")),
                ("replica".into(), format!("http://{replica_addr}")),
                ("light client".into(), format!("http://{light_addr}")),
                ("appliance".into(), appliance_url.clone()),
            ],
            appliance: appliance_url.clone(),
        },
    ));
    let (page_stop, page_stopped) = tokio::sync::oneshot::channel::<()>();
    let page_server = tokio::spawn(
        axum::serve(status_listener, page.router())
            .with_graceful_shutdown(async {
                let _ = page_stopped.await;
            })
            .into_future(),
    );

    println!("ProofBox devnet, data in {}", a.data_dir.display());
    println!(
        "  sequencer  http://{seq_addr}  (Ethereum JSON-RPC, HTTP and WebSocket; chain id {})",
        config.chain_id
    );
    println!("  full node  http://{full_addr}  (re-executes every block)");
    println!(
        "  replica    http://{replica_addr}  (applies diffs, believes proven roots; eth_getProof)"
    );
    println!(
        "  light      http://{light_addr}  (checks proofs from genesis; state from the replica's Merkle proofs)"
    );
    println!(
        "  appliance  {appliance_url}  (REST API, keyless on loopback; proves on {})",
        appliance
            .service()
            .devices()
            .iter()
            .map(|d| d.id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("  status     {status_url}  (status page: heads, proving lag, jobs, lies)");
    println!(
        "development accounts (mnemonic \"{}\"):",
        proofbox_sequencer::DEV_MNEMONIC
    );
    for acc in dev_accounts(config.dev_accounts) {
        println!("  ({}) {} key {}", acc.index, acc.address, acc.key);
    }
    std::io::stdout().flush().ok();

    let load = (a.load > 0).then(|| tokio::spawn(send_load(seq.clone(), a.load)));
    let deadline = a
        .duration_secs
        .map(|s| tokio::time::Instant::now() + Duration::from_secs(s));
    let status = tokio::spawn(status_line(
        seq.clone(),
        full.clone(),
        replica.clone(),
        light.clone(),
        a.plain || !std::io::stdout().is_terminal(),
    ));
    tokio::select! {
        _ = signal.recv() => {}
        _ = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        } => {}
    }
    status.abort();
    sampler.abort();
    let _ = page_stop.send(());
    let _ = page_server.await;
    println!();
    println!("stopping");
    if let Some(l) = load {
        l.abort();
    }
    follower.abort();
    replica_follower.abort();
    light_follower.abort();
    let _ = replica_rpc.stop();
    let _ = light_rpc.stop();
    proving.stop();
    let _ = full_rpc.stop();
    let _ = seq_rpc.stop();
    let s = seq.clone();
    tokio::task::spawn_blocking(move || s.stop()).await.ok();
    appliance
        .shutdown()
        .await
        .context("stopping the appliance")?;
    println!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Sends `rate` ETH transfers per second, round-robin from the development accounts,
/// straight into the sequencer's pool. Each tick's transfers are submitted on tokio's
/// blocking threads: a submission waits for the pool journal's sync.
async fn send_load(seq: Sequencer, rate: u64) {
    let accounts = std::sync::Arc::new(dev_accounts(seq.config().dev_accounts.max(1)));
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut sent = 0u64;
    let start = Instant::now();
    loop {
        tick.tick().await;
        let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
        if sent >= due {
            continue;
        }
        let (seq, accounts) = (seq.clone(), accounts.clone());
        match tokio::task::spawn_blocking(move || send_transfers(&seq, &accounts, sent..due)).await
        {
            Ok(true) => sent = due,
            _ => return,
        }
    }
}

/// Submits load transfers `range`; false if one cannot be signed.
fn send_transfers(seq: &Sequencer, accounts: &[DevAccount], range: std::ops::Range<u64>) -> bool {
    let chain_id = seq.config().chain_id;
    let fee = seq.config().base_fee as u128 * 2 + 1_000_000_000;
    for n in range {
        let from = &accounts[(n % accounts.len() as u64) as usize];
        let tx = TxEip1559 {
            chain_id,
            nonce: seq.pending_nonce(&from.address),
            gas_limit: 21_000,
            max_fee_per_gas: fee,
            max_priority_fee_per_gas: 1_000_000_000,
            to: TxKind::Call(recipient(n)),
            value: U256::from(1_000_000_000u64 + n),
            ..Default::default()
        };
        let Ok(sig) = from.signer().sign_hash_sync(&tx.signature_hash()) else {
            return false;
        };
        let raw = TxEnvelope::from(tx.into_signed(sig)).encoded_2718();
        if let Err(e) = seq.submit(&raw) {
            tracing::debug!("load transaction refused: {e}");
        }
    }
    true
}

/// Where load transfer `n` goes: 250 accounts away from the precompiles' addresses
/// (a 21,000-gas call to a precompile runs out of gas and moves nothing).
pub fn recipient(n: u64) -> Address {
    let mut a = [0x55u8; 20];
    a[19] = (n % 250) as u8;
    Address::from(a)
}

/// Redraws one status line (or prints one every five seconds when `plain`).
async fn status_line(
    seq: Sequencer,
    full: proofbox_full_node::FullNode,
    replica: proofbox_replica::Replica,
    light: proofbox_light_client::LightClient,
    plain: bool,
) {
    let mut seen: VecDeque<(Instant, u64, Option<String>)> = VecDeque::new();
    let mut last_count = seq.proofs().count();
    let mut tick = tokio::time::interval(Duration::from_millis(if plain { 5000 } else { 500 }));
    loop {
        tick.tick().await;
        let now = Instant::now();
        let count = seq.proofs().count();
        for i in last_count..count {
            let device = seq
                .proofs()
                .summary(i)
                .and_then(|h| h.proved_by)
                .and_then(|p| p.rsplit(" on ").next().map(str::to_string));
            seen.push_back((now, i, device));
        }
        last_count = count;
        while seen
            .front()
            .is_some_and(|(t, _, _)| now.duration_since(*t) > Duration::from_secs(10))
        {
            seen.pop_front();
        }
        let mut by_device: BTreeMap<String, usize> = BTreeMap::new();
        for (_, _, d) in &seen {
            *by_device
                .entry(d.clone().unwrap_or_else(|| "?".into()))
                .or_default() += 1;
        }
        let rates: Vec<String> = by_device
            .iter()
            .map(|(d, n)| format!("{d} {:.1}/s", *n as f64 / 10.0))
            .collect();
        let latest = seq.read().chain.head();
        let status = seq.proofs().status();
        let proven = status.proven_block.map_or("-".into(), |b| b.to_string());
        let lag = latest.saturating_sub(status.proven_block.unwrap_or(0));
        let full_head = full.head().map_or("-".into(), |h| h.to_string());
        let full_state = if full.mismatch().is_some() {
            " STOPPED (mismatch)"
        } else {
            ""
        };
        let (replica_latest, replica_proven) = {
            let c = replica.read();
            (c.latest_head, c.proven_head)
        };
        let show = |h: Option<u64>| h.map_or("-".into(), |h| h.to_string());
        let line = format!(
            "latest {latest} | proven {proven} (lag {lag} blocks, {} in flight) | full {full_head}{full_state} | replica {}/{} | light {} | proofs {}",
            status.in_flight.len(),
            show(replica_latest),
            show(replica_proven),
            light.head().block,
            if rates.is_empty() {
                "-".into()
            } else {
                rates.join(", ")
            },
        );
        if plain {
            println!("{line}");
        } else {
            print!("\r\x1b[2K{line}");
        }
        std::io::stdout().flush().ok();
    }
}
