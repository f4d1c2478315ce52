//! The light client against a real sequencer proving on a real appliance (CPU, in
//! process), over JSON-RPC with alloy's provider: it follows the proofs from genesis,
//! answers balances, nonces, storage and code from an untrusted node's Merkle proofs,
//! and catches that node when it serves a wrong balance or a forged proof; it refuses a
//! skipped block and a proof below its floor. Its status page, on the same port, shows
//! the proven height advance and the lies. Run in release.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use alloy_network::{EthereumWallet, TransactionBuilder};
use alloy_primitives::{Address, B256, U256};
use alloy_provider::{Provider, ProviderBuilder};
use alloy_rpc_types_eth::TransactionRequest;
use alloy_serde::JsonStorageKey;
use jsonrpsee::RpcModule;
use jsonrpsee::server::Server;
use proofbox_chain_types::ProvenBatch;
use proofbox_chain_types::account_proof::{AccountProof, prove};
use proofbox_light_client::rpc::{Served, serve};
use proofbox_light_client::{Head, LightClient};
use proofbox_sequencer::proving::{self, ProvingConfig};
use proofbox_sequencer::{Config, Sequencer, dev_accounts};
use proofbox_verifier::TransitionProof;

const HONEST: u8 = 0;
const WRONG_BALANCE: u8 = 1;
const FORGED_PROOF: u8 = 2;

/// An untrusted node answering `eth_getProof` and `eth_getCode` from the sequencer's
/// state (the proven state once proving has caught up and traffic stopped), lying as
/// `mode` says.
async fn untrusted_node(seq: Sequencer, mode: Arc<AtomicU8>) -> SocketAddr {
    let mut m = RpcModule::new((seq, mode));
    m.register_method("eth_getProof", |p, (seq, mode), _| {
        let (address, slots, _tag): (Address, Vec<JsonStorageKey>, String) = p.parse()?;
        let core = seq.read();
        let head = core.chain.head();
        let mut answer: AccountProof = prove(core.state.tree(), head, address, &slots);
        match mode.load(Ordering::SeqCst) {
            WRONG_BALANCE => answer.balance += U256::from(1),
            FORGED_PROOF => {
                // Another account's (valid) proof, with this account's fields.
                let other = prove(core.state.tree(), head, dev_accounts(3)[2].address, &[]);
                answer.account_proof = other.account_proof;
            }
            _ => {}
        }
        Ok::<_, jsonrpsee::types::ErrorObjectOwned>(answer)
    })
    .unwrap();
    m.register_method("eth_getCode", |p, (seq, _), _| {
        let (address, _tag): (Address, String) = p.parse()?;
        let code = seq
            .read()
            .state
            .code(&address)
            .map(|c| c.original_bytes())
            .unwrap_or_default();
        Ok::<_, jsonrpsee::types::ErrorObjectOwned>(code)
    })
    .unwrap();
    let server = Server::builder().build("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    let handle = server.start(m);
    std::mem::forget(handle);
    addr
}

/// `GET /status.json` on the light client's JSON-RPC port (`base`).
async fn page_status(http: &reqwest::Client, base: &str) -> serde_json::Value {
    let r = http
        .get(format!("{base}/status.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_light_client_follows_proofs_answers_checked_state_and_catches_lies() {
    proofbox_light_client::install_tls();
    let app_dir = tempfile::tempdir().unwrap();
    let appliance = proofbox_service::start(proofbox_service::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: app_dir.path().to_path_buf(),
        allow_keyless_on_loopback: true,
        devices: vec!["cpu:0".into()],
        ..proofbox_service::Config::default()
    })
    .await
    .unwrap();
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        block_time: Duration::from_millis(10),
        ..Config::default()
    };
    let seq = Sequencer::start(config.clone(), true).unwrap();
    let (seq_addr, _seq_rpc) = proofbox_sequencer::rpc::serve(seq.clone(), config.listen)
        .await
        .unwrap();
    let proving = proving::start(
        &seq,
        ProvingConfig {
            appliances: vec![format!("http://{}", appliance.addr())],
            batch_blocks: 3,
            batch_interval: Duration::from_millis(200),
            poll_interval: Duration::from_millis(50),
            ..ProvingConfig::default()
        },
    )
    .unwrap();

    // The checkpoint: genesis, as this chain's configuration gives it.
    let genesis = seq.read().chain.block(0).unwrap().header.post_state_root;
    let client = LightClient::new(
        Head {
            block: 0,
            root: genesis,
            next_batch: Some(0),
        },
        config.chain_id,
        proofbox_verifier::DEFAULT_MIN_SECURITY_BITS,
        None,
    )
    .unwrap();
    tokio::spawn(client.clone().follow(format!("ws://{seq_addr}")));

    // Its endpoint, with the status page on the same port.
    let mode = Arc::new(AtomicU8::new(HONEST));
    let node = format!("http://{}", untrusted_node(seq.clone(), mode.clone()).await);
    let (light_addr, _light_rpc) = serve(
        Served::new(client.clone(), node, format!("http://{seq_addr}")),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let page = format!("http://{light_addr}");
    let before = page_status(&http, &page).await;
    assert_eq!(before["role"], "light client", "{before}");
    assert_eq!(before["root"], genesis.hex(), "{before}");

    // Traffic, then quiet until everything is proven.
    let wallet = EthereumWallet::from(dev_accounts(1)[0].signer());
    let p = ProviderBuilder::new()
        .wallet(wallet)
        .connect_http(format!("http://{seq_addr}").parse().unwrap());
    let to = Address::repeat_byte(0x77);
    for i in 0..12u64 {
        let req = TransactionRequest::default()
            .with_to(to)
            .with_value(U256::from(1000 + i))
            .with_nonce(i)
            .with_gas_limit(21_000)
            .with_max_fee_per_gas(3_000_000_000)
            .with_max_priority_fee_per_gas(1);
        let _ = p.send_transaction(req).await.unwrap();
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    while p
        .get_transaction_count(dev_accounts(1)[0].address)
        .await
        .unwrap()
        < 12
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let head = seq.read().chain.head();
    let mut watch = client.watch();
    tokio::time::timeout(Duration::from_secs(120), watch.wait_for(|b| *b >= head))
        .await
        .expect("the light client reaches the proven head")
        .unwrap();
    assert_eq!(
        client.head().root,
        seq.read().state.root(),
        "its root is the sequencer's"
    );

    let light =
        ProviderBuilder::new().connect_http(format!("http://{light_addr}").parse().unwrap());
    assert_eq!(light.get_block_number().await.unwrap(), head);
    // The page's proven height advanced to the one eth_blockNumber answers.
    let s = page_status(&http, &page).await;
    assert!(before["proven"].as_u64().unwrap() < head, "{before}");
    assert_eq!(s["proven"], head, "{s}");
    assert_eq!(s["root"], client.head().root.hex(), "{s}");
    assert_eq!(s["lies"], serde_json::json!([]), "{s}");
    assert_eq!(light.get_chain_id().await.unwrap(), config.chain_id);
    let expected: u64 = (0..12u64).map(|i| 1000 + i).sum();
    assert_eq!(light.get_balance(to).await.unwrap(), U256::from(expected));
    // The block tag may be left out, as some clients do: it means the proven head.
    let untagged: U256 = light
        .raw_request("eth_getBalance".into(), (to,))
        .await
        .unwrap();
    assert_eq!(untagged, U256::from(expected));
    assert_eq!(
        light.get_balance(dev_accounts(1)[0].address).await.unwrap(),
        p.get_balance(dev_accounts(1)[0].address).await.unwrap()
    );
    assert_eq!(
        light
            .get_transaction_count(dev_accounts(1)[0].address)
            .await
            .unwrap(),
        12
    );
    // Absent things are proven absent.
    let nobody = Address::repeat_byte(0x99);
    assert_eq!(light.get_balance(nobody).await.unwrap(), U256::ZERO);
    assert_eq!(
        light.get_storage_at(to, U256::from(1)).await.unwrap(),
        U256::ZERO
    );
    assert!(light.get_code_at(to).await.unwrap().is_empty());
    assert!(client.lies().is_empty());

    // A wrong balance, then a forged proof: each is caught and never passed on.
    for (m, what) in [
        (WRONG_BALANCE, "a wrong balance"),
        (FORGED_PROOF, "a forged proof"),
    ] {
        mode.store(m, Ordering::SeqCst);
        let err = light.get_balance(to).await.unwrap_err().to_string();
        assert!(err.contains("the node lied"), "{what}: {err}");
    }
    assert_eq!(client.lies().len(), 2, "{:?}", client.lies());
    let status: serde_json::Value = light
        .raw_request("proofbox_lightStatus".into(), ())
        .await
        .unwrap();
    assert_eq!(status["lies"].as_array().unwrap().len(), 2);
    // Both lies on the status page, as JSON and in the HTML.
    let s = page_status(&http, &page).await;
    assert_eq!(s["liesDetected"], 2, "{s}");
    let lies = s["lies"].as_array().unwrap();
    assert_eq!(lies.len(), 2, "{s}");
    assert!(
        lies.iter().all(|l| l.as_str().unwrap().contains(" lied: ")),
        "{s}"
    );
    let html = http.get(&page).send().await.unwrap().text().await.unwrap();
    assert!(
        html.contains("<title>ProofBox light client</title>"),
        "{html}"
    );
    assert_eq!(html.matches("<li class=\"lie\">").count(), 2, "{html}");
    assert!(
        html.contains(&format!("data-key=\"proven\">{head}</td>")),
        "{html}"
    );
    mode.store(HONEST, Ordering::SeqCst);
    assert_eq!(light.get_balance(to).await.unwrap(), U256::from(expected));

    // A skipped block and a proof below the floor are refused: a fresh client at
    // genesis is offered batch 1 (skipping batch 0), then batch 0 stating one query.
    let fresh = LightClient::new(
        Head {
            block: 0,
            root: genesis,
            next_batch: Some(0),
        },
        config.chain_id,
        proofbox_verifier::DEFAULT_MIN_SECURITY_BITS,
        None,
    )
    .unwrap();
    let batch = |i: u64| seq.proofs().get(i).unwrap().unwrap();
    let err = fresh.accept(&batch(1)).unwrap_err();
    assert!(err.contains("skipped"), "{err}");
    let mut weak: ProvenBatch = batch(0);
    let mut bundle = TransitionProof::from_bytes(&weak.bundle).unwrap();
    bundle.chunks[0].fri.num_queries = 1;
    weak.bundle = bundle.to_bytes().into();
    let err = fresh.accept(&weak).unwrap_err();
    assert!(err.contains("security") || err.contains("bits"), "{err}");
    assert_eq!(fresh.head().block, 0, "nothing was believed");
    fresh.accept(&batch(0)).unwrap();
    assert_eq!(fresh.head().block, batch(0).last_block);
    let _ = B256::ZERO;

    proving.stop();
    seq.stop();
    appliance.shutdown().await.unwrap();
}
