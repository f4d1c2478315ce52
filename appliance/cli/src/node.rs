//! `proofbox node`: run a node role. `node sequencer` executes transactions and
//! serves Ethereum JSON-RPC; `node full` follows and re-executes; `node replica`
//! follows, applies diffs and believes roots once proven (docs/nodes.md).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use alloy_primitives::U256;
use anyhow::{Context, Result, anyhow};
use clap::{Args, Subcommand};
use proofbox_sequencer::proving::ProvingConfig;
use proofbox_sequencer::{Config, Sequencer, dev_accounts};

#[derive(Subcommand)]
pub enum NodeCommand {
    /// The sequencer: executes Ethereum transactions with revm against in-memory
    /// state, builds blocks with Poseidon2 state roots, streams them with their state
    /// diffs; Ethereum JSON-RPC over HTTP and WebSocket on one port.
    Sequencer(SequencerArgs),
    /// The full node: follows a sequencer's block stream, re-executes every block
    /// against its own state (redb), stops at the first difference; read-only
    /// JSON-RPC with `proofbox_status`.
    Full(FullArgs),
    /// The replica: follows a sequencer's blocks and proofs, applies each block's
    /// state diff without executing, moves its proven head only on verified
    /// state-transition proofs; read-only JSON-RPC with `eth_getProof` and
    /// `proofbox_replicaStatus`.
    Replica(ReplicaArgs),
    /// The light client: starts from a trusted checkpoint, follows and checks every
    /// state-transition proof, and answers state queries from an untrusted node's
    /// Merkle proofs checked against its proven root.
    Light(LightArgs),
}

#[derive(Args)]
pub struct LightArgs {
    /// Where proofs come from (WebSocket; a sequencer's `proofs` stream).
    #[arg(long, default_value = "ws://127.0.0.1:8545")]
    proofs: String,
    /// The untrusted node asked for Merkle proofs (`eth_getProof`; a replica, HTTP).
    #[arg(long, default_value = "http://127.0.0.1:8547")]
    node: String,
    /// The trusted checkpoint: `BLOCK:ROOT` (ROOT as 64 hex digits), e.g. block 0 and
    /// the genesis state root.
    #[arg(long)]
    checkpoint: String,
    /// Address of the local JSON-RPC endpoint; port 0 picks one.
    #[arg(long, default_value = "127.0.0.1:8548")]
    listen: SocketAddr,
    #[arg(long, default_value_t = proofbox_sequencer::config::DEFAULT_CHAIN_ID)]
    chain_id: u64,
    /// The floor, in conjectured bits, every proof must reach.
    #[arg(long, default_value_t = proofbox_verifier::DEFAULT_MIN_SECURITY_BITS)]
    min_security_bits: u32,
    /// Keeps the proven head here across restarts.
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

/// Parses `BLOCK:ROOT`.
pub fn checkpoint(s: &str) -> Result<proofbox_light_client::Head> {
    let (block, root) = s
        .split_once(':')
        .ok_or_else(|| anyhow!("a checkpoint is BLOCK:ROOT, got {s:?}"))?;
    Ok(proofbox_light_client::Head {
        block: block
            .parse()
            .with_context(|| format!("checkpoint block {block:?}"))?,
        root: proofbox_chain_types::Root::from_hex(root)
            .map_err(|e| anyhow!("checkpoint root: {e}"))?,
        next_batch: None,
    })
}

fn light(a: LightArgs) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let client = proofbox_light_client::LightClient::new(
        checkpoint(&a.checkpoint)?,
        a.chain_id,
        a.min_security_bits,
        a.data_dir.clone(),
    )
    .map_err(|e| anyhow!(e))?;
    let head = client.head();
    println!(
        "light client: proven block {}, root {}",
        head.block, head.root
    );
    runtime.block_on(async {
        let proofs_http = a
            .proofs
            .replacen("ws://", "http://", 1)
            .replacen("wss://", "https://", 1);
        let served =
            proofbox_light_client::rpc::Served::new(client.clone(), a.node.clone(), proofs_http);
        let (addr, handle) = proofbox_light_client::rpc::serve(served, a.listen)
            .await
            .with_context(|| format!("listening on {}", a.listen))?;
        println!(
            "listening on {addr}, proofs from {}, state from {}",
            a.proofs, a.node
        );
        use std::io::Write;
        std::io::stdout().flush().ok();
        let follower = tokio::spawn(client.clone().follow(a.proofs.clone()));
        tokio::signal::ctrl_c().await.ok();
        follower.abort();
        let _ = handle.stop();
        anyhow::Ok(())
    })?;
    Ok(if client.lies().is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[derive(Args)]
pub struct ReplicaArgs {
    /// The sequencer's WebSocket endpoint.
    #[arg(long, default_value = "ws://127.0.0.1:8545")]
    sequencer: String,
    /// Address of the read-only JSON-RPC endpoint (HTTP and WebSocket); port 0 picks
    /// one.
    #[arg(long, default_value = "127.0.0.1:8547")]
    listen: SocketAddr,
    #[arg(long, default_value_t = proofbox_sequencer::config::DEFAULT_CHAIN_ID)]
    chain_id: u64,
    /// Directory of the proven snapshot.
    #[arg(long, default_value = "proofbox-replica")]
    data_dir: PathBuf,
    /// The floor, in conjectured bits, every proof must reach (the replica's own,
    /// never the proof's).
    #[arg(long, default_value_t = proofbox_verifier::DEFAULT_MIN_SECURITY_BITS)]
    min_security_bits: u32,
    /// When a block's transactions and receipts are checked against its header:
    /// `background` (after it is applied, by a worker, in order), `on-use` (when first
    /// served or proven) or `eager` (before it is applied). Nothing of a body is served
    /// before its check passed, whichever is chosen.
    #[arg(long, value_enum, default_value_t = BodyCheckArg::Background)]
    bodies: BodyCheckArg,
}

/// [`proofbox_replica::BodyChecks`] on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BodyCheckArg {
    Background,
    OnUse,
    Eager,
}

impl From<BodyCheckArg> for proofbox_replica::BodyChecks {
    fn from(a: BodyCheckArg) -> Self {
        match a {
            BodyCheckArg::Background => Self::Background,
            BodyCheckArg::OnUse => Self::OnUse,
            BodyCheckArg::Eager => Self::Eager,
        }
    }
}

#[derive(Args)]
pub struct FullArgs {
    /// The sequencer's WebSocket endpoint.
    #[arg(long, default_value = "ws://127.0.0.1:8545")]
    sequencer: String,
    /// Address of the read-only JSON-RPC endpoint.
    #[arg(long, default_value = "127.0.0.1:8546")]
    listen: SocketAddr,
    #[arg(long, default_value_t = proofbox_sequencer::config::DEFAULT_CHAIN_ID)]
    chain_id: u64,
    /// Directory of the node's database.
    #[arg(long, default_value = "proofbox-full-node")]
    data_dir: PathBuf,
}

#[derive(Args)]
pub struct SequencerArgs {
    /// Address of the JSON-RPC endpoint (HTTP and WebSocket); port 0 picks one.
    #[arg(long, default_value = "127.0.0.1:8545")]
    listen: SocketAddr,
    #[arg(long, default_value_t = proofbox_sequencer::config::DEFAULT_CHAIN_ID)]
    chain_id: u64,
    /// Block interval in milliseconds (at least 10).
    #[arg(long, default_value_t = 100)]
    block_time_ms: u64,
    /// Also build blocks without transactions.
    #[arg(long)]
    empty_blocks: bool,
    #[arg(long, default_value_t = 30_000_000)]
    gas_limit: u64,
    /// Base fee per gas, in wei (fixed).
    #[arg(long, default_value_t = 1_000_000_000)]
    base_fee: u64,
    /// Development accounts prefunded (from the standard test mnemonic).
    #[arg(long, default_value_t = 10)]
    accounts: u32,
    /// Ether each development account starts with.
    #[arg(long, default_value_t = 10_000)]
    prefund_eth: u64,
    /// Directory of the block log and the pool journal; without it nothing survives
    /// a restart.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// A ProofBox appliance to prove batches of blocks on (`http://host:port`);
    /// repeat for several. Without one, nothing is proven.
    #[arg(long = "appliance")]
    appliances: Vec<String>,
    /// The appliances' API key (or set PROOFBOX_API_KEY).
    #[arg(long, env = "PROOFBOX_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// A batch closes after this many blocks...
    #[arg(long, default_value_t = 10)]
    batch_blocks: u64,
    /// ...or once its first block is this old (milliseconds), when fewer than
    /// --max-in-flight batches are being proven.
    #[arg(long, default_value_t = 1000)]
    batch_interval_ms: u64,
    /// Batches proven at once, at most (default: twice the appliances).
    #[arg(long)]
    max_in_flight: Option<usize>,
    /// The floor, in conjectured bits, every proof is checked against before it is
    /// published.
    #[arg(long, default_value_t = proofbox_verifier::DEFAULT_MIN_SECURITY_BITS)]
    min_security_bits: u32,
}

pub fn run(cmd: NodeCommand) -> Result<ExitCode> {
    match cmd {
        NodeCommand::Sequencer(a) => sequencer(a),
        NodeCommand::Full(a) => full(a),
        NodeCommand::Replica(a) => replica(a),
        NodeCommand::Light(a) => light(a),
    }
}

fn replica(a: ReplicaArgs) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let config = proofbox_replica::Config {
        chain_id: a.chain_id,
        min_security_bits: a.min_security_bits,
        bodies: a.bodies.into(),
        ..proofbox_replica::Config::new(&a.data_dir)
    };
    let replica = proofbox_replica::Replica::open(config)
        .map_err(|e| anyhow!(e))
        .with_context(|| format!("opening {}", a.data_dir.display()))?;
    {
        let c = replica.read();
        println!(
            "replica: proven head {:?}, proven root {}, security floor {} bits",
            c.proven_head,
            c.proven.root(),
            a.min_security_bits
        );
    }
    runtime.block_on(async {
        let (addr, handle) = proofbox_replica::rpc::serve(replica.clone(), a.listen)
            .await
            .with_context(|| format!("listening on {}", a.listen))?;
        println!("listening on {addr}, following {}", a.sequencer);
        use std::io::Write;
        std::io::stdout().flush().ok();
        let follower = tokio::spawn(replica.clone().follow(a.sequencer.clone()));
        tokio::signal::ctrl_c().await.ok();
        follower.abort();
        let _ = handle.stop();
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

fn full(a: FullArgs) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let node = proofbox_full_node::FullNode::open(&a.data_dir, a.chain_id)
        .with_context(|| format!("opening {}", a.data_dir.display()))?;
    println!(
        "full node: head {:?}, state root {}",
        node.head(),
        node.root()
    );
    if let Some(m) = node.mismatch() {
        println!("stopped at block {}: {}", m.block, m.difference);
    }
    runtime.block_on(async {
        let (addr, handle) = proofbox_full_node::rpc::serve(node.clone(), a.listen)
            .await
            .with_context(|| format!("listening on {}", a.listen))?;
        println!("listening on {addr}, following {}", a.sequencer);
        use std::io::Write;
        std::io::stdout().flush().ok();
        let follower = tokio::spawn(node.clone().follow(a.sequencer.clone()));
        tokio::signal::ctrl_c().await.ok();
        follower.abort();
        let _ = handle.stop();
        anyhow::Ok(())
    })?;
    Ok(if node.mismatch().is_some() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn sequencer(a: SequencerArgs) -> Result<ExitCode> {
    let proving = (!a.appliances.is_empty()).then(|| ProvingConfig {
        max_in_flight: a.max_in_flight.unwrap_or(2 * a.appliances.len()),
        appliances: a.appliances.clone(),
        api_key: a.api_key.clone(),
        batch_blocks: a.batch_blocks,
        batch_interval: Duration::from_millis(a.batch_interval_ms),
        min_security_bits: a.min_security_bits,
        ..ProvingConfig::default()
    });
    if let Some(p) = &proving {
        p.validate().map_err(|e| anyhow!(e))?;
    }
    let config = Config {
        listen: a.listen,
        chain_id: a.chain_id,
        block_time: Duration::from_millis(a.block_time_ms),
        empty_blocks: a.empty_blocks,
        gas_limit: a.gas_limit,
        base_fee: a.base_fee,
        dev_accounts: a.accounts,
        prefund: U256::from(a.prefund_eth) * U256::from(10u64).pow(U256::from(18u64)),
        data_dir: a.data_dir,
        ..Config::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let seq = Sequencer::start(config.clone(), true).map_err(|e| anyhow!(e))?;
    {
        let core = seq.read();
        println!(
            "chain id {}, head {}, state root {}",
            config.chain_id,
            core.chain.head(),
            core.state.root()
        );
    }
    println!(
        "development accounts (mnemonic \"{}\"):",
        proofbox_sequencer::DEV_MNEMONIC
    );
    for acc in dev_accounts(config.dev_accounts) {
        println!("  ({}) {} key {}", acc.index, acc.address, acc.key);
    }
    runtime.block_on(async {
        let (addr, handle) = proofbox_sequencer::rpc::serve(seq.clone(), config.listen)
            .await
            .with_context(|| format!("listening on {}", config.listen))?;
        println!("listening on {addr} (HTTP and WebSocket)");
        let proving = match proving {
            Some(p) => {
                println!("proving batches on {}", p.appliances.join(", "));
                Some(proofbox_sequencer::proving::start(&seq, p).map_err(|e| anyhow!(e))?)
            }
            None => None,
        };
        use std::io::Write;
        std::io::stdout().flush().ok();
        tokio::signal::ctrl_c().await.ok();
        if let Some(p) = proving {
            p.stop();
        }
        let _ = handle.stop();
        anyhow::Ok(())
    })?;
    seq.stop();
    Ok(ExitCode::SUCCESS)
}
