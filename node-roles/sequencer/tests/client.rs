//! The sequencer against an Ethereum client not written here: alloy's provider and
//! local signer, over HTTP and WebSocket.

mod common;

use std::time::Duration;

use alloy_consensus::{SignableTransaction, TxEip1559, TxEip4844, TxEnvelope, TxLegacy};
use alloy_eips::eip2718::Encodable2718;
use alloy_eips::eip2930::{AccessList, AccessListItem};
use alloy_network::TransactionBuilder;
use alloy_primitives::{Address, B256, Bytes, TxKind, U256, hex};
use alloy_provider::Provider;
use alloy_rpc_types_eth::{BlockNumberOrTag, Filter, TransactionRequest};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::{SolCall, SolConstructor, SolEvent, sol};
use common::{Node, receipt};
use proofbox_sequencer::dev_accounts;

sol! {
    contract Token {
        constructor(string name_, string symbol_, uint256 supply);
        function balanceOf(address) external view returns (uint256);
        function allowance(address, address) external view returns (uint256);
        function transfer(address to, uint256 value) external returns (bool);
        function approve(address spender, uint256 value) external returns (bool);
        function transferFrom(address from, address to, uint256 value) external returns (bool);
        event Transfer(address indexed from, address indexed to, uint256 value);
        event Approval(address indexed owner, address indexed spender, uint256 value);
    }
}

const TOKEN_BIN: &str = include_str!("contracts/Token.bin");

fn raw_1559(signer: &PrivateKeySigner, tx: TxEip1559) -> Bytes {
    let sig = signer.sign_hash_sync(&tx.signature_hash()).unwrap();
    TxEnvelope::from(tx.into_signed(sig)).encoded_2718().into()
}

fn transfer(chain_id: u64, nonce: u64, to: Address, value: u64) -> TxEip1559 {
    TxEip1559 {
        chain_id,
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: 3_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: TxKind::Call(to),
        value: U256::from(value),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_transfers_of_every_type_over_http() {
    let node = Node::fast().await;
    let p = node.http(0);
    assert_eq!(p.get_chain_id().await.unwrap(), 31337);
    let to = Address::repeat_byte(0x42);
    let dev = dev_accounts(1)[0].address;
    let start = p.get_balance(dev).await.unwrap();
    let access = AccessList(vec![AccessListItem {
        address: to,
        storage_keys: vec![B256::ZERO],
    }]);
    let requests = [
        TransactionRequest::default()
            .with_to(to)
            .with_value(U256::from(1))
            .with_gas_price(2_000_000_000),
        TransactionRequest::default()
            .with_to(to)
            .with_value(U256::from(2))
            .with_gas_price(2_000_000_000)
            .with_access_list(access),
        TransactionRequest::default()
            .with_to(to)
            .with_value(U256::from(3)),
    ];
    let mut fees = U256::ZERO;
    for (ty, req) in requests.into_iter().enumerate() {
        let pending = p.send_transaction(req).await.unwrap();
        let r = receipt(&p, *pending.tx_hash()).await;
        assert!(r.status(), "type {ty}");
        assert_eq!(r.transaction_type() as usize, ty);
        assert_eq!(r.from, dev);
        assert_eq!(r.to, Some(to));
        fees += U256::from(r.gas_used) * U256::from(r.effective_gas_price);
        let tx = p
            .get_transaction_by_hash(r.transaction_hash)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(tx.block_number, r.block_number);
        let block = p
            .get_block_by_number(BlockNumberOrTag::Number(r.block_number.unwrap()))
            .await
            .unwrap()
            .unwrap();
        assert!(block.transactions.hashes().any(|h| h == r.transaction_hash));
        assert_eq!(block.header.hash, r.block_hash.unwrap());
        let by_hash = p
            .get_block_by_hash(block.header.hash)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(by_hash.header.number, block.header.number);
    }
    assert_eq!(p.get_balance(to).await.unwrap(), U256::from(6));
    assert_eq!(
        p.get_balance(dev).await.unwrap(),
        start - U256::from(6) - fees
    );
    assert_eq!(p.get_transaction_count(dev).await.unwrap(), 3);
    // The header's state root is the sequencer's Poseidon2 root, 32-byte form.
    let head = p.get_block_number().await.unwrap();
    let block = p
        .get_block_by_number(BlockNumberOrTag::Number(head))
        .await
        .unwrap()
        .unwrap();
    let root = node
        .seq
        .read()
        .chain
        .block(head)
        .unwrap()
        .header
        .post_state_root;
    assert_eq!(block.header.state_root, root.to_b256());
}

async fn send(
    p: &impl Provider,
    to: Address,
    input: Vec<u8>,
) -> alloy_rpc_types_eth::TransactionReceipt {
    // A fixed gas limit: estimation would refuse the transaction meant to revert.
    let req = TransactionRequest::default()
        .with_to(to)
        .with_input(input)
        .with_gas_limit(200_000);
    let h = *p.send_transaction(req).await.unwrap().tx_hash();
    receipt(p, h).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erc20_deploy_transfer_approve_transfer_from_and_events() {
    let node = Node::fast().await;
    let owner = node.ws(0).await;
    let spender = node.http(1);
    let [a0, a1, a2] = [0, 1, 2].map(|i| dev_accounts(3)[i].address);
    // A logs subscription over WebSocket, opened before anything happens.
    let mut events = owner
        .subscribe_logs(&Filter::new().event_signature(Token::Transfer::SIGNATURE_HASH))
        .await
        .unwrap();

    let supply = U256::from(1_000_000u64);
    let mut code = hex::decode(TOKEN_BIN.trim()).unwrap();
    code.extend(Token::constructorCall::new(("Test".into(), "TST".into(), supply)).abi_encode());
    let deploy = TransactionRequest::default().with_deploy_code(code);
    let hash = *owner.send_transaction(deploy).await.unwrap().tx_hash();
    let r = receipt(&owner, hash).await;
    assert!(r.status());
    let token = r
        .contract_address
        .expect("a deployment has a contract address");
    assert!(!owner.get_code_at(token).await.unwrap().is_empty());

    let balance = |who: Address| {
        let p = owner.clone();
        async move {
            let out = p
                .call(
                    TransactionRequest::default()
                        .with_to(token)
                        .with_input(Token::balanceOfCall(who).abi_encode()),
                )
                .await
                .unwrap();
            Token::balanceOfCall::abi_decode_returns(&out).unwrap()
        }
    };
    assert_eq!(balance(a0).await, supply);

    let t = send(
        &owner,
        token,
        Token::transferCall::new((a1, U256::from(100))).abi_encode(),
    )
    .await;
    assert!(t.status());
    let ap = send(
        &owner,
        token,
        Token::approveCall::new((a1, U256::from(50))).abi_encode(),
    )
    .await;
    assert!(ap.status());
    let tf = send(
        &spender,
        token,
        Token::transferFromCall::new((a0, a2, U256::from(30))).abi_encode(),
    )
    .await;
    assert!(tf.status());
    // More than the allowance reverts, and the receipt says so.
    let over = send(
        &spender,
        token,
        Token::transferFromCall::new((a0, a2, U256::from(21))).abi_encode(),
    )
    .await;
    assert!(!over.status());
    assert!(over.inner.logs().is_empty());

    assert_eq!(balance(a0).await, supply - U256::from(130));
    assert_eq!(balance(a1).await, U256::from(100));
    assert_eq!(balance(a2).await, U256::from(30));
    let allowance = owner
        .call(
            TransactionRequest::default()
                .with_to(token)
                .with_input(Token::allowanceCall::new((a0, a1)).abi_encode()),
        )
        .await
        .unwrap();
    assert_eq!(
        Token::allowanceCall::abi_decode_returns(&allowance).unwrap(),
        U256::from(20)
    );

    // eth_call of the reverting transferFrom: code 3 with the reason.
    let err = spender
        .call(
            TransactionRequest::default()
                .from(a1)
                .with_to(token)
                .with_input(Token::transferFromCall::new((a0, a2, U256::from(21))).abi_encode()),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("insufficient allowance"), "{err}");

    // Every Transfer through eth_getLogs: mint, transfer, transferFrom.
    let logs = owner
        .get_logs(
            &Filter::new()
                .address(token)
                .event_signature(Token::Transfer::SIGNATURE_HASH)
                .from_block(0),
        )
        .await
        .unwrap();
    let transfers: Vec<(Address, Address, U256)> = logs
        .iter()
        .map(|l| {
            let e = Token::Transfer::decode_log(&l.inner).unwrap();
            (e.from, e.to, e.value)
        })
        .collect();
    assert_eq!(
        transfers,
        vec![
            (Address::ZERO, a0, supply),
            (a0, a1, U256::from(100)),
            (a0, a2, U256::from(30))
        ]
    );
    let approvals = owner
        .get_logs(
            &Filter::new()
                .address(token)
                .event_signature(Token::Approval::SIGNATURE_HASH)
                .topic1(a0)
                .from_block(0),
        )
        .await
        .unwrap();
    assert_eq!(approvals.len(), 1);
    assert_eq!(approvals[0].transaction_hash, Some(ap.transaction_hash));
    // The same three through the subscription, in order.
    for expected in &transfers {
        let l = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .unwrap()
            .unwrap();
        let e = Token::Transfer::decode_log(&l.inner).unwrap();
        assert_eq!((e.from, e.to, e.value), *expected);
    }
}

fn raw_legacy(signer: &PrivateKeySigner, tx: TxLegacy) -> Bytes {
    let sig = signer.sign_hash_sync(&tx.signature_hash()).unwrap();
    TxEnvelope::from(tx.into_signed(sig)).encoded_2718().into()
}

/// The server's error message for a raw transaction.
async fn refusal(p: &impl Provider, raw: &Bytes) -> String {
    let err = p.send_raw_transaction(raw).await.unwrap_err();
    let resp = err.as_error_resp().unwrap_or_else(|| panic!("{err}"));
    assert_eq!(resp.code, -32000, "{resp:?}");
    resp.message.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_transactions_get_the_messages_ethereum_clients_expect() {
    let node = Node::fast().await;
    let p = node.http(0);
    let dev = dev_accounts(1)[0].signer();
    let to = Address::repeat_byte(7);
    // Accepted, then the same bytes again, then a stale nonce.
    let ok = raw_1559(&dev, transfer(31337, 0, to, 1));
    let h = p.send_raw_transaction(&ok).await.unwrap();
    let r = receipt(&p, *h.tx_hash()).await;
    assert!(r.status());
    assert_eq!(refusal(&p, &ok).await, "nonce too low");
    assert_eq!(
        refusal(&p, &raw_1559(&dev, transfer(31337, 0, to, 2))).await,
        "nonce too low"
    );
    assert_eq!(
        refusal(&p, &raw_1559(&dev, transfer(31337, 1000, to, 2))).await,
        "nonce too high"
    );
    let broke = PrivateKeySigner::random();
    assert_eq!(
        refusal(&p, &raw_1559(&broke, transfer(31337, 0, to, 1))).await,
        "insufficient funds for gas * price + value"
    );
    let mut low_gas = transfer(31337, 1, to, 1);
    low_gas.gas_limit = 20_999;
    assert_eq!(
        refusal(&p, &raw_1559(&dev, low_gas)).await,
        "intrinsic gas too low"
    );
    let mut cheap = transfer(31337, 1, to, 1);
    cheap.max_fee_per_gas = 1;
    cheap.max_priority_fee_per_gas = 1;
    assert_eq!(
        refusal(&p, &raw_1559(&dev, cheap)).await,
        "max fee per gas less than block base fee"
    );
    let mut tip = transfer(31337, 1, to, 1);
    tip.max_priority_fee_per_gas = tip.max_fee_per_gas + 1;
    assert_eq!(
        refusal(&p, &raw_1559(&dev, tip)).await,
        "max priority fee per gas higher than max fee per gas"
    );
    assert_eq!(
        refusal(&p, &raw_1559(&dev, transfer(1, 1, to, 1))).await,
        "invalid chain id"
    );
    let legacy_wrong_chain = raw_legacy(
        &dev,
        TxLegacy {
            chain_id: Some(5),
            nonce: 1,
            gas_price: 2_000_000_000,
            gas_limit: 21_000,
            to: TxKind::Call(to),
            ..Default::default()
        },
    );
    assert_eq!(refusal(&p, &legacy_wrong_chain).await, "invalid chain id");
    let mut huge = transfer(31337, 1, to, 1);
    huge.gas_limit = 31_000_000;
    assert_eq!(
        refusal(&p, &raw_1559(&dev, huge)).await,
        "exceeds block gas limit"
    );
    let blob = TxEip4844 {
        chain_id: 31337,
        nonce: 1,
        gas_limit: 21_000,
        max_fee_per_gas: 3_000_000_000,
        blob_versioned_hashes: vec![B256::repeat_byte(1)],
        max_fee_per_blob_gas: 1,
        to,
        ..Default::default()
    };
    let sig = dev.sign_hash_sync(&blob.signature_hash()).unwrap();
    let blob_raw: Bytes = TxEnvelope::from(blob.into_signed(sig))
        .encoded_2718()
        .into();
    assert_eq!(
        refusal(&p, &blob_raw).await,
        "transaction type not supported"
    );
    let garbage = Bytes::from_static(&[0xf8, 0x01, 0x02]);
    let m = refusal(&p, &garbage).await;
    assert!(m.starts_with("invalid transaction encoding"), "{m}");
    // A nonce gap is queued, then executes once the gap is filled.
    let later = p
        .send_raw_transaction(&raw_1559(&dev, transfer(31337, 2, to, 10)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        p.get_transaction_receipt(*later.tx_hash())
            .await
            .unwrap()
            .is_none()
    );
    let _filled = p
        .send_raw_transaction(&raw_1559(&dev, transfer(31337, 1, to, 10)))
        .await
        .unwrap();
    assert!(receipt(&p, *later.tx_hash()).await.status());
    assert_eq!(p.get_balance(to).await.unwrap(), U256::from(21));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn realtime_send_returns_the_receipt_or_expires() {
    let node = Node::fast().await;
    let p = node.http(0);
    let dev = dev_accounts(1)[0].signer();
    let raw = raw_1559(&dev, transfer(31337, 0, Address::repeat_byte(9), 5));
    let r: alloy_rpc_types_eth::TransactionReceipt = p
        .raw_request("realtime_sendRawTransaction".into(), (raw,))
        .await
        .unwrap();
    assert!(r.status());
    assert!(r.block_number.unwrap() >= 1);
    assert_eq!(
        p.get_balance(Address::repeat_byte(9)).await.unwrap(),
        U256::from(5)
    );

    // A sequencer that builds no block: the call expires.
    let idle = proofbox_sequencer::Sequencer::start(
        proofbox_sequencer::Config {
            realtime_timeout: Duration::from_millis(100),
            ..common::fast_config()
        },
        false,
    )
    .unwrap();
    let (addr, handle) =
        proofbox_sequencer::rpc::serve(idle.clone(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
    common::tls();
    let q = alloy_provider::ProviderBuilder::new()
        .connect_http(format!("http://{addr}").parse().unwrap());
    let raw = raw_1559(&dev, transfer(31337, 0, Address::repeat_byte(9), 5));
    let err = q
        .raw_request::<_, serde_json::Value>("realtime_sendRawTransaction".into(), (raw,))
        .await
        .unwrap_err();
    let resp = err.as_error_resp().unwrap();
    assert_eq!(
        (resp.code, &*resp.message),
        (-32000, "realtime transaction expired")
    );
    handle.stop().unwrap();
}
