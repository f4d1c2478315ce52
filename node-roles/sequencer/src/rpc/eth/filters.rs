//! Polled filters, as geth has them: `eth_newBlockFilter`, `eth_newFilter` (logs),
//! `eth_newPendingTransactionFilter`, `eth_getFilterChanges`, `eth_getFilterLogs`,
//! `eth_uninstallFilter`.
//!
//! A block or log filter keeps only the number of the next block to report, so it
//! costs the same however long it goes unpolled; one poll reports at most
//! `Config::max_log_range` blocks' worth and the next poll goes on from there. A pending
//! transaction filter keeps the hashes of transactions received over JSON-RPC since its
//! last poll, the newest [`PENDING_KEPT`] of them. A filter not polled for
//! `Config::filter_timeout` is uninstalled (geth: 5 minutes); at most
//! `Config::max_filters` are installed at once.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alloy_primitives::{B256, U256};
use alloy_rpc_types_eth::{BlockNumberOrTag, Filter, FilterBlockOption, FilterChanges, Log};
use jsonrpsee::types::ErrorObjectOwned;

use super::read::{self, Blocks};
use crate::rpc::{invalid_params, server_error};

type RpcResult<T> = Result<T, ErrorObjectOwned>;

/// Hashes a pending transaction filter keeps between polls (the oldest go first).
pub const PENDING_KEPT: usize = 4096;

/// The limits filters live under.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Filters installed at once, at most.
    pub max: usize,
    /// A filter not polled for this long is uninstalled.
    pub idle: Duration,
    /// Blocks one poll reports, and blocks `eth_getFilterLogs` scans, at most.
    pub max_range: u64,
}

impl Limits {
    pub fn of(c: &crate::Config) -> Self {
        Self {
            max: c.max_filters,
            idle: c.filter_timeout,
            max_range: c.max_log_range,
        }
    }
}

#[derive(Debug)]
enum Kind {
    Blocks,
    Logs(Box<Filter>),
    Pending(VecDeque<B256>),
}

#[derive(Debug)]
struct Installed {
    kind: Kind,
    /// The next block to report (block and log filters).
    next: u64,
    polled: Instant,
}

/// The installed filters. Cloning shares them.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    inner: Arc<Mutex<HashMap<U256, Arc<Mutex<Installed>>>>>,
    ids: RandomState,
    count: Arc<std::sync::atomic::AtomicU64>,
}

fn not_found(id: U256) -> ErrorObjectOwned {
    server_error(format!("filter not found: {id:#x}"))
}

impl Filters {
    /// An unguessable id (another client's filters cannot be polled by guessing).
    fn new_id(&self) -> U256 {
        let n = self
            .count
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let word = |salt: u64| {
            let mut h = self.ids.build_hasher();
            h.write_u64(n);
            h.write_u64(salt);
            h.finish()
        };
        U256::from((u128::from(word(1)) << 64) | u128::from(word(2)))
    }

    /// Removes the filters idle for longer than `idle`.
    fn expire(map: &mut HashMap<U256, Arc<Mutex<Installed>>>, idle: Duration) {
        map.retain(|_, f| f.lock().unwrap().polled.elapsed() <= idle);
    }

    fn install(&self, kind: Kind, next: u64, limits: Limits) -> RpcResult<U256> {
        let mut map = self.inner.lock().unwrap();
        Self::expire(&mut map, limits.idle);
        if map.len() >= limits.max {
            return Err(server_error(format!(
                "too many filters installed (at most {}); uninstall some or let idle ones expire",
                limits.max
            )));
        }
        let id = self.new_id();
        let f = Installed {
            kind,
            next,
            polled: Instant::now(),
        };
        map.insert(id, Arc::new(Mutex::new(f)));
        metrics::gauge!("sequencer_filters").set(map.len() as f64);
        Ok(id)
    }

    fn get(&self, id: U256, limits: Limits) -> RpcResult<Arc<Mutex<Installed>>> {
        let mut map = self.inner.lock().unwrap();
        Self::expire(&mut map, limits.idle);
        map.get(&id).cloned().ok_or_else(|| not_found(id))
    }

    /// `eth_newBlockFilter`: the hashes of blocks after `head`.
    pub fn new_blocks(&self, head: u64, limits: Limits) -> RpcResult<U256> {
        self.install(Kind::Blocks, head + 1, limits)
    }

    /// `eth_newFilter`: the matching logs of blocks after `head` within the filter's
    /// range. A block hash is refused (that is `eth_getLogs`'s).
    pub fn new_logs(&self, filter: Filter, head: u64, limits: Limits) -> RpcResult<U256> {
        if let FilterBlockOption::AtBlockHash(_) = filter.block_option {
            return Err(invalid_params(
                "eth_newFilter takes fromBlock and toBlock, not blockHash (use eth_getLogs)",
            ));
        }
        let next = match filter.block_option.get_from_block() {
            Some(BlockNumberOrTag::Number(n)) => (*n).max(head + 1),
            _ => head + 1,
        };
        self.install(Kind::Logs(Box::new(filter)), next, limits)
    }

    /// `eth_newPendingTransactionFilter`.
    pub fn new_pending(&self, limits: Limits) -> RpcResult<U256> {
        self.install(Kind::Pending(VecDeque::new()), 0, limits)
    }

    /// Tells the pending transaction filters of a transaction just admitted.
    pub fn pending_added(&self, hash: B256) {
        let map = self.inner.lock().unwrap();
        for f in map.values() {
            if let Kind::Pending(q) = &mut f.lock().unwrap().kind {
                if q.len() == PENDING_KEPT {
                    q.pop_front();
                }
                q.push_back(hash);
            }
        }
    }

    /// `eth_uninstallFilter`: whether it was installed.
    pub fn uninstall(&self, id: U256, limits: Limits) -> bool {
        let mut map = self.inner.lock().unwrap();
        Self::expire(&mut map, limits.idle);
        let removed = map.remove(&id).is_some();
        metrics::gauge!("sequencer_filters").set(map.len() as f64);
        removed
    }

    /// `eth_getFilterChanges`: what happened since the last poll.
    pub fn changes(
        &self,
        id: U256,
        chain: &impl Blocks,
        limits: Limits,
    ) -> RpcResult<FilterChanges> {
        let f = self.get(id, limits)?;
        let mut f = f.lock().unwrap();
        f.polled = Instant::now();
        let head = chain.head()?.unwrap_or(0);
        let from = f.next;
        let to = head.min(from.saturating_add(limits.max_range.max(1) - 1));
        match &mut f.kind {
            Kind::Pending(q) => Ok(FilterChanges::Hashes(q.drain(..).collect())),
            Kind::Blocks => {
                let mut hashes = Vec::new();
                for n in from..=to {
                    match chain.block(n)? {
                        Some(b) => hashes.push(b.hash()),
                        None => break,
                    }
                }
                f.next = from + hashes.len() as u64;
                Ok(FilterChanges::Hashes(hashes))
            }
            Kind::Logs(filter) => {
                if from > to {
                    return Ok(FilterChanges::Logs(vec![]));
                }
                let last = match filter.block_option.get_to_block() {
                    Some(BlockNumberOrTag::Number(n)) => to.min(*n),
                    _ => to,
                };
                let logs = if from <= last {
                    read::logs_in(chain, filter, from, last)?
                } else {
                    vec![]
                };
                f.next = to + 1;
                Ok(FilterChanges::Logs(logs))
            }
        }
    }

    /// `eth_getFilterLogs`: every log the filter's criteria match (as `eth_getLogs`).
    pub fn logs(&self, id: U256, chain: &impl Blocks, limits: Limits) -> RpcResult<Vec<Log>> {
        let f = self.get(id, limits)?;
        let filter = {
            let mut f = f.lock().unwrap();
            f.polled = Instant::now();
            match &f.kind {
                Kind::Logs(filter) => filter.as_ref().clone(),
                _ => {
                    return Err(server_error(format!("filter {id:#x} is not a log filter")));
                }
            }
        };
        read::logs(chain, &filter, limits.max_range)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_ids_differ_and_unknown_ones_are_refused() {
        let f = Filters::default();
        let limits = Limits {
            max: 2,
            idle: Duration::from_secs(60),
            max_range: 100,
        };
        let a = f.new_blocks(0, limits).unwrap();
        let b = f.new_pending(limits).unwrap();
        assert_ne!(a, b);
        assert!(
            f.new_blocks(0, limits)
                .unwrap_err()
                .message()
                .contains("at most 2")
        );
        assert!(f.uninstall(a, limits));
        assert!(!f.uninstall(a, limits));
        f.new_blocks(0, limits).unwrap();
        let idle = Limits {
            idle: Duration::ZERO,
            ..limits
        };
        std::thread::sleep(Duration::from_millis(2));
        assert!(!f.uninstall(b, idle), "expired");
    }
}
