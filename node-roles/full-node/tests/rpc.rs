//! The full node's read-only JSON-RPC against the sequencer it follows, both through
//! alloy's HTTP provider: logs, gas estimates, calls and their revert reasons, fee
//! history and gas prices agree.

use std::time::Duration;

use alloy_network::{EthereumWallet, TransactionBuilder};
use alloy_primitives::{Address, U256, hex};
use alloy_provider::{Provider, ProviderBuilder};
use alloy_rpc_types_eth::{BlockNumberOrTag, Filter, TransactionRequest};
use alloy_sol_types::{SolCall, SolEvent, SolValue, sol};
use proofbox_full_node::FullNode;
use proofbox_sequencer::{Config, Sequencer, dev_accounts};

const TOKEN_BIN: &str = include_str!("../../sequencer/tests/contracts/Token.bin");

sol! {
    function balanceOf(address) external view returns (uint256);
    function transfer(address to, uint256 value) external returns (bool);
    event Transfer(address indexed from, address indexed to, uint256 value);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_full_node_answers_logs_estimates_calls_and_fees_as_the_sequencer() {
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        block_time: Duration::from_millis(10),
        ..Config::default()
    };
    let seq = Sequencer::start(config, true).unwrap();
    let (addr, _server) =
        proofbox_sequencer::rpc::serve(seq.clone(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let node = FullNode::open(dir.path(), 31337).unwrap();
    let follower = tokio::spawn(node.clone().follow(format!("ws://{addr}")));
    let (faddr, _fserver) =
        proofbox_full_node::rpc::serve(node.clone(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
    // In a workspace build reqwest has its TLS provider left to the application.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let owner = dev_accounts(1)[0].address;
    let sequencer = ProviderBuilder::new()
        .wallet(EthereumWallet::from(dev_accounts(1)[0].signer()))
        .connect_http(format!("http://{addr}").parse().unwrap());
    let full = ProviderBuilder::new().connect_http(format!("http://{faddr}").parse().unwrap());

    // A token and transfers of it (logs in several blocks).
    let mut code = hex::decode(TOKEN_BIN.trim()).unwrap();
    code.extend(("T".to_string(), "T".to_string(), U256::from(1000)).abi_encode_params());
    let deploy = sequencer
        .send_transaction(TransactionRequest::default().with_deploy_code(code))
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let token = deploy.contract_address.unwrap();
    let mut last = deploy.block_number.unwrap();
    for i in 0..3u8 {
        let input = transferCall::new((Address::repeat_byte(0x70 + i), U256::from(5))).abi_encode();
        let r = sequencer
            .send_transaction(
                TransactionRequest::default()
                    .with_to(token)
                    .with_input(input)
                    .with_gas_limit(100_000),
            )
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        assert!(r.status());
        last = r.block_number.unwrap();
    }
    let mut head = node.watch_head();
    tokio::time::timeout(
        Duration::from_secs(30),
        head.wait_for(|h| h.is_some_and(|h| h >= last)),
    )
    .await
    .expect("the full node catches up")
    .unwrap();
    assert_eq!(full.get_block_number().await.unwrap(), last);
    // A trailing block tag may be left out, as some clients do: it means `latest`.
    let untagged: U256 = full
        .raw_request("eth_getBalance".into(), (owner,))
        .await
        .unwrap();
    assert_eq!(untagged, full.get_balance(owner).await.unwrap());
    let nonce: alloy_primitives::U64 = full
        .raw_request("eth_getTransactionCount".into(), (owner,))
        .await
        .unwrap();
    assert_eq!(nonce.to::<u64>(), 4, "the deployment and three transfers");

    // eth_getLogs, by range and by block hash.
    let filter = Filter::new()
        .address(token)
        .event_signature(Transfer::SIGNATURE_HASH)
        .from_block(0u64);
    let logs = full.get_logs(&filter).await.unwrap();
    assert_eq!(logs.len(), 4, "the mint and three transfers");
    assert_eq!(logs, sequencer.get_logs(&filter).await.unwrap());
    let at = Filter::new().at_block_hash(logs[3].block_hash.unwrap());
    assert_eq!(
        full.get_logs(&at).await.unwrap(),
        sequencer.get_logs(&at).await.unwrap()
    );
    let e = full
        .get_logs(&Filter::new().from_block(0u64).to_block(20_000u64))
        .await;
    assert!(e.is_ok(), "a range past the head is cut at the head");

    // eth_estimateGas and eth_call, successful and reverted.
    let send = TransactionRequest::default()
        .with_from(owner)
        .with_to(token)
        .with_input(transferCall::new((Address::repeat_byte(0x7f), U256::from(1))).abi_encode());
    let estimate = full.estimate_gas(send.clone()).await.unwrap();
    assert!(estimate > 21_000);
    assert_eq!(
        estimate,
        sequencer.estimate_gas(send.clone()).await.unwrap()
    );
    let read = TransactionRequest::default()
        .with_to(token)
        .with_input(balanceOfCall(owner).abi_encode());
    let out = full.call(read.clone()).await.unwrap();
    assert_eq!(out, sequencer.call(read).await.unwrap());
    assert_eq!(
        balanceOfCall::abi_decode_returns(&out).unwrap(),
        U256::from(985)
    );
    let too_much = TransactionRequest::default()
        .with_from(owner)
        .with_to(token)
        .with_input(transferCall::new((Address::repeat_byte(1), U256::from(10_000))).abi_encode());
    let full_err = full.estimate_gas(too_much.clone()).await.unwrap_err();
    let seq_err = sequencer.estimate_gas(too_much.clone()).await.unwrap_err();
    assert!(
        full_err
            .to_string()
            .contains("execution reverted: insufficient balance"),
        "{full_err}"
    );
    assert_eq!(full_err.to_string(), seq_err.to_string());
    let call_err = full.call(too_much).await.unwrap_err();
    assert!(
        call_err.to_string().contains("insufficient balance"),
        "{call_err}"
    );

    // Fees.
    let newest = BlockNumberOrTag::Number(last);
    let history = full
        .get_fee_history(4, newest, &[25.0, 75.0])
        .await
        .unwrap();
    assert_eq!(history.oldest_block, last - 3);
    assert_eq!(history.base_fee_per_gas.len(), 5);
    assert_eq!(
        history,
        sequencer
            .get_fee_history(4, newest, &[25.0, 75.0])
            .await
            .unwrap()
    );
    assert_eq!(
        full.get_gas_price().await.unwrap(),
        sequencer.get_gas_price().await.unwrap()
    );
    assert_eq!(
        full.get_max_priority_fee_per_gas().await.unwrap(),
        sequencer.get_max_priority_fee_per_gas().await.unwrap()
    );
    let bad = full
        .get_fee_history(4, newest, &[75.0, 25.0])
        .await
        .unwrap_err();
    assert!(bad.to_string().contains("percentiles"), "{bad}");
    follower.abort();
    seq.stop();
}
