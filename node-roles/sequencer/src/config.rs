//! The sequencer's settings and its development genesis.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use alloy_primitives::{Address, B256, U256};
use alloy_signer_local::{MnemonicBuilder, PrivateKeySigner};

/// The development mnemonic local Ethereum nodes use (anvil, hardhat), so existing
/// tools know the keys.
pub const DEV_MNEMONIC: &str = "test test test test test test test test test test test junk";

/// anvil's default chain id.
pub const DEFAULT_CHAIN_ID: u64 = 31337;

/// The shortest block interval accepted.
pub const MIN_BLOCK_TIME: Duration = Duration::from_millis(10);

/// One development account: derived from [`DEV_MNEMONIC`] at `m/44'/60'/0'/0/index`.
#[derive(Debug, Clone)]
pub struct DevAccount {
    pub index: u32,
    pub address: Address,
    pub key: B256,
}

impl DevAccount {
    pub fn signer(&self) -> PrivateKeySigner {
        PrivateKeySigner::from_bytes(&self.key).expect("a derived key is valid")
    }
}

/// The first `n` development accounts.
pub fn dev_accounts(n: u32) -> Vec<DevAccount> {
    (0..n)
        .map(|index| {
            let signer = MnemonicBuilder::from_phrase_nth(DEV_MNEMONIC, index);
            DevAccount {
                index,
                address: signer.address(),
                key: signer.to_bytes(),
            }
        })
        .collect()
}

/// Everything the sequencer is configured with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where JSON-RPC (HTTP and WebSocket on one port) listens; port 0 picks one.
    pub listen: SocketAddr,
    pub chain_id: u64,
    /// A block is built every interval if transactions are pending (or at once when
    /// pending transactions fill the gas limit). At least [`MIN_BLOCK_TIME`].
    pub block_time: Duration,
    /// Also build blocks without transactions, every interval.
    pub empty_blocks: bool,
    pub gas_limit: u64,
    /// The base fee per gas of every block (wei). It does not adjust (no EIP-1559
    /// update rule): blocks are small and frequent.
    pub base_fee: u64,
    /// The account fees' tips go to.
    pub coinbase: Address,
    /// How many development accounts are prefunded, and with how much (wei).
    pub dev_accounts: u32,
    pub prefund: U256,
    /// Further prefunded accounts.
    pub extra_alloc: Vec<(Address, U256)>,
    /// The directory of the block log, the pool journal and the proving journal;
    /// `None` keeps nothing (a restart starts over).
    pub data_dir: Option<PathBuf>,
    /// How long `realtime_sendRawTransaction` waits for the receipt.
    pub realtime_timeout: Duration,
    /// Pending transactions the pool holds at most.
    pub pool_limit: usize,
    /// How far ahead of an account's nonce a transaction may be queued.
    pub max_nonce_gap: u64,
    /// A subscriber whose connection accepts no message for this long is disconnected.
    pub subscriber_send_timeout: Duration,
    /// Messages buffered per WebSocket connection: a subscriber that falls this far
    /// behind waits up to `subscriber_send_timeout`, then is dropped.
    pub ws_buffer: u32,
    /// Filters (`eth_newFilter` and the like) installed at once, at most.
    pub max_filters: usize,
    /// A filter not polled for this long is uninstalled (geth: 5 minutes).
    pub filter_timeout: Duration,
    /// The widest block range `eth_getLogs` scans.
    pub max_log_range: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8545".parse().unwrap(),
            chain_id: DEFAULT_CHAIN_ID,
            block_time: Duration::from_millis(100),
            empty_blocks: false,
            gas_limit: 30_000_000,
            base_fee: 1_000_000_000,
            coinbase: Address::ZERO,
            dev_accounts: 10,
            // 10,000 ether, as anvil.
            prefund: U256::from(10_000u64) * U256::from(10u64).pow(U256::from(18u64)),
            extra_alloc: Vec::new(),
            data_dir: None,
            realtime_timeout: Duration::from_secs(10),
            pool_limit: 10_000,
            max_nonce_gap: 64,
            subscriber_send_timeout: Duration::from_secs(10),
            ws_buffer: 1024,
            max_filters: 1024,
            filter_timeout: Duration::from_secs(5 * 60),
            max_log_range: 10_000,
        }
    }
}

impl Config {
    /// The genesis allocation: the development accounts, then the extra ones.
    pub fn alloc(&self) -> Vec<(Address, U256)> {
        let mut alloc: Vec<(Address, U256)> = dev_accounts(self.dev_accounts)
            .into_iter()
            .map(|a| (a.address, self.prefund))
            .collect();
        alloc.extend(self.extra_alloc.iter().copied());
        alloc
    }

    /// Refuses settings the sequencer cannot run with.
    pub fn validate(&self) -> Result<(), String> {
        if self.block_time < MIN_BLOCK_TIME {
            return Err(format!(
                "block time {:?} is below the minimum {MIN_BLOCK_TIME:?}",
                self.block_time
            ));
        }
        if self.gas_limit < 21_000 {
            return Err(format!("gas limit {} is below 21000", self.gas_limit));
        }
        if self.chain_id == 0 {
            return Err("chain id 0 is not allowed".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_accounts_are_the_well_known_ones() {
        let a = dev_accounts(2);
        assert_eq!(
            a[0].address,
            "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
                .parse::<Address>()
                .unwrap()
        );
        assert_eq!(
            a[0].key,
            "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
                .parse::<B256>()
                .unwrap()
        );
        assert_eq!(
            a[1].address,
            "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
                .parse::<Address>()
                .unwrap()
        );
        assert_eq!(a[1].signer().address(), a[1].address);
    }

    #[test]
    fn settings_below_the_minimums_are_refused() {
        let c = Config {
            block_time: Duration::from_millis(5),
            ..Config::default()
        };
        assert!(c.validate().unwrap_err().contains("minimum"));
        assert!(Config::default().validate().is_ok());
    }
}
