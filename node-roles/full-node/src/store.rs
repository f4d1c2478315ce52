//! The full node's database (redb): blocks, a transaction index, the flat state
//! (accounts, storage, code) and its status, each block committed in one write
//! transaction, so a crash leaves the state at a block boundary.

use std::path::Path;

use alloy_primitives::{Address, B256, U256};
use proofbox_chain_types::{Block, StateDiff};
use proofbox_state::{AccountInfo as LeafAccount, StateKey, StateTree, StateValue};
use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition};
use revm::DatabaseRef;
use revm::bytecode::Bytecode;
use revm::primitives::KECCAK_EMPTY;
use revm::state::AccountInfo;

const BLOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new("blocks");
const TXS: TableDefinition<&[u8; 32], (u64, u32)> = TableDefinition::new("txs");
const HASHES: TableDefinition<&[u8; 32], u64> = TableDefinition::new("block_hashes");
/// Address -> nonce (8 LE) | balance (32 BE) | code hash (32).
const ACCOUNTS: TableDefinition<&[u8; 20], &[u8]> = TableDefinition::new("accounts");
/// Address (20) | slot (32 BE) -> value (32 BE).
const STORAGE: TableDefinition<&[u8; 52], &[u8; 32]> = TableDefinition::new("storage");
const CODES: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("codes");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// A database error (also the error of the state behind the EVM).
#[derive(Debug, Clone, thiserror::Error)]
#[error("full node store: {0}")]
pub struct StoreError(pub String);

impl revm::database_interface::DBErrorMarker for StoreError {}

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

fn storage_key(a: &Address, slot: &U256) -> [u8; 52] {
    let mut k = [0u8; 52];
    k[..20].copy_from_slice(a.as_slice());
    k[20..].copy_from_slice(&slot.to_be_bytes::<32>());
    k
}

fn encode_account(nonce: u64, balance: U256, code_hash: B256) -> [u8; 72] {
    let mut v = [0u8; 72];
    v[..8].copy_from_slice(&nonce.to_le_bytes());
    v[8..40].copy_from_slice(&balance.to_be_bytes::<32>());
    v[40..].copy_from_slice(code_hash.as_slice());
    v
}

fn decode_account(v: &[u8]) -> Result<(u64, U256, B256), StoreError> {
    if v.len() != 72 {
        return Err(StoreError(format!("account record of {} bytes", v.len())));
    }
    Ok((
        u64::from_le_bytes(v[..8].try_into().unwrap()),
        U256::from_be_slice(&v[8..40]),
        B256::from_slice(&v[40..]),
    ))
}

/// The database.
#[derive(Debug)]
pub struct Store {
    db: Database,
}

impl Store {
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(err)?;
        let db = Database::create(dir.join("full-node.redb")).map_err(err)?;
        let txn = db.begin_write().map_err(err)?;
        {
            txn.open_table(BLOCKS).map_err(err)?;
            txn.open_table(TXS).map_err(err)?;
            txn.open_table(HASHES).map_err(err)?;
            txn.open_table(ACCOUNTS).map_err(err)?;
            txn.open_table(STORAGE).map_err(err)?;
            txn.open_table(CODES).map_err(err)?;
            txn.open_table(META).map_err(err)?;
        }
        txn.commit().map_err(err)?;
        Ok(Self { db })
    }

    /// The newest stored block's number, `None` for an empty store.
    pub fn head(&self) -> Result<Option<u64>, StoreError> {
        let txn = self.db.begin_read().map_err(err)?;
        let t = txn.open_table(BLOCKS).map_err(err)?;
        Ok(t.last().map_err(err)?.map(|(k, _)| k.value()))
    }

    pub fn block(&self, number: u64) -> Result<Option<Block>, StoreError> {
        let txn = self.db.begin_read().map_err(err)?;
        let t = txn.open_table(BLOCKS).map_err(err)?;
        match t.get(number).map_err(err)? {
            Some(v) => Ok(Some(Block::decode(v.value()).map_err(err)?)),
            None => Ok(None),
        }
    }

    pub fn block_number(&self, hash: &B256) -> Result<Option<u64>, StoreError> {
        let txn = self.db.begin_read().map_err(err)?;
        let t = txn.open_table(HASHES).map_err(err)?;
        Ok(t.get(&hash.0).map_err(err)?.map(|v| v.value()))
    }

    /// The block and index of transaction `hash`.
    pub fn tx(&self, hash: &B256) -> Result<Option<(u64, u32)>, StoreError> {
        let txn = self.db.begin_read().map_err(err)?;
        let t = txn.open_table(TXS).map_err(err)?;
        Ok(t.get(&hash.0).map_err(err)?.map(|v| v.value()))
    }

    /// A consistent view of the state at the stored head.
    pub fn view(&self) -> Result<StateView, StoreError> {
        Ok(StateView {
            txn: self.db.begin_read().map_err(err)?,
        })
    }

    /// The state tree over the stored state (rebuilt at start).
    pub fn tree(&self) -> Result<StateTree, StoreError> {
        let txn = self.db.begin_read().map_err(err)?;
        let mut entries = Vec::new();
        for row in txn.open_table(ACCOUNTS).map_err(err)?.iter().map_err(err)? {
            let (k, v) = row.map_err(err)?;
            let (nonce, balance, code_hash) = decode_account(v.value())?;
            entries.push((
                StateKey::Account(Address::from(*k.value())),
                StateValue::Account(LeafAccount {
                    nonce,
                    balance,
                    code_hash,
                }),
            ));
        }
        for row in txn.open_table(STORAGE).map_err(err)?.iter().map_err(err)? {
            let (k, v) = row.map_err(err)?;
            let k = k.value();
            entries.push((
                StateKey::Storage {
                    address: Address::from_slice(&k[..20]),
                    slot: U256::from_be_slice(&k[20..]),
                },
                StateValue::Storage(U256::from_be_bytes(*v.value())),
            ));
        }
        StateTree::from_entries(entries).map_err(err)
    }

    /// Stores `block` with `diff` applied to the state, in one transaction.
    pub fn commit(&self, block: &Block, diff: &StateDiff) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(err)?;
        {
            txn.open_table(BLOCKS)
                .map_err(err)?
                .insert(block.number(), block.encode().as_slice())
                .map_err(err)?;
            txn.open_table(HASHES)
                .map_err(err)?
                .insert(&block.hash().0, block.number())
                .map_err(err)?;
            let mut txs = txn.open_table(TXS).map_err(err)?;
            for (i, tx) in block.transactions.iter().enumerate() {
                txs.insert(&tx.hash().0, (block.number(), i as u32))
                    .map_err(err)?;
            }
            let mut accounts = txn.open_table(ACCOUNTS).map_err(err)?;
            let mut storage = txn.open_table(STORAGE).map_err(err)?;
            let mut codes = txn.open_table(CODES).map_err(err)?;
            for a in diff.accounts() {
                if a.destroyed {
                    accounts.remove(&a.address.0.0).map_err(err)?;
                } else {
                    let v = encode_account(a.nonce, a.balance, a.code_hash);
                    accounts.insert(&a.address.0.0, v.as_slice()).map_err(err)?;
                }
                if let Some(code) = &a.code {
                    codes.insert(&a.code_hash.0, code.as_ref()).map_err(err)?;
                }
                for (slot, value) in &a.storage {
                    let k = storage_key(&a.address, slot);
                    if value.is_zero() {
                        storage.remove(&k).map_err(err)?;
                    } else {
                        storage
                            .insert(&k, &value.to_be_bytes::<32>())
                            .map_err(err)?;
                    }
                }
            }
        }
        txn.commit().map_err(err)
    }

    pub fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read().map_err(err)?;
        let t = txn.open_table(META).map_err(err)?;
        Ok(t.get(key).map_err(err)?.map(|v| v.value().to_vec()))
    }

    pub fn set_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(err)?;
        txn.open_table(META)
            .map_err(err)?
            .insert(key, value)
            .map_err(err)?;
        txn.commit().map_err(err)
    }
}

/// The state at one moment, read by revm.
pub struct StateView {
    txn: ReadTransaction,
}

impl StateView {
    fn account(&self, a: &Address) -> Result<Option<(u64, U256, B256)>, StoreError> {
        let t = self.txn.open_table(ACCOUNTS).map_err(err)?;
        match t.get(&a.0.0).map_err(err)? {
            Some(v) => Ok(Some(decode_account(v.value())?)),
            None => Ok(None),
        }
    }

    pub fn balance(&self, a: &Address) -> Result<U256, StoreError> {
        Ok(self.account(a)?.map_or(U256::ZERO, |x| x.1))
    }

    pub fn nonce(&self, a: &Address) -> Result<u64, StoreError> {
        Ok(self.account(a)?.map_or(0, |x| x.0))
    }

    pub fn code(&self, a: &Address) -> Result<alloy_primitives::Bytes, StoreError> {
        match self.account(a)? {
            Some((_, _, h)) if h != KECCAK_EMPTY => Ok(self.code_by_hash_ref(h)?.original_bytes()),
            _ => Ok(Default::default()),
        }
    }
}

impl DatabaseRef for StateView {
    type Error = StoreError;

    fn basic_ref(&self, address: Address) -> Result<Option<AccountInfo>, StoreError> {
        let Some((nonce, balance, code_hash)) = self.account(&address)? else {
            return Ok(None);
        };
        let mut info = AccountInfo::default().with_code_hash(code_hash);
        info.nonce = nonce;
        info.balance = balance;
        if code_hash != KECCAK_EMPTY {
            info.code = Some(self.code_by_hash_ref(code_hash)?);
        }
        Ok(Some(info))
    }

    fn code_by_hash_ref(&self, code_hash: B256) -> Result<Bytecode, StoreError> {
        let t = self.txn.open_table(CODES).map_err(err)?;
        Ok(match t.get(&code_hash.0).map_err(err)? {
            Some(v) => Bytecode::new_raw(v.value().to_vec().into()),
            None => Bytecode::default(),
        })
    }

    fn storage_ref(&self, address: Address, index: U256) -> Result<U256, StoreError> {
        let t = self.txn.open_table(STORAGE).map_err(err)?;
        Ok(t.get(&storage_key(&address, &index))
            .map_err(err)?
            .map_or(U256::ZERO, |v| U256::from_be_bytes(*v.value())))
    }

    fn block_hash_ref(&self, number: u64) -> Result<B256, StoreError> {
        let t = self.txn.open_table(BLOCKS).map_err(err)?;
        match t.get(number).map_err(err)? {
            Some(v) => Ok(Block::decode(v.value()).map_err(err)?.hash()),
            None => Ok(B256::ZERO),
        }
    }
}
