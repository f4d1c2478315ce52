//! Block execution with revm, generic over the state it reads (`DatabaseRef`): the
//! sequencer runs it against its in-memory state, a full node against its database.
//!
//! Each transaction runs on a `CacheDB` over the block's pre-state; its state changes
//! are committed to the cache for the next transaction. The block's [`StateDiff`],
//! which keeps only what differs from the pre-state, is built from the cache once the
//! block has run (see `diff`).

mod diff;
#[cfg(test)]
mod tests;

use alloy_consensus::Transaction as _;
use alloy_primitives::{Address, B256, Bytes, TxKind, U256};
use proofbox_chain_types::{Receipt, SignedTx, StateDiff};
use revm::context::result::{EVMError, ExecutionResult, InvalidTransaction, ResultAndState};
use revm::context::{BlockEnv, CfgEnv, Context, Journal, TxEnv};
use revm::database::CacheDB;
use revm::primitives::hardfork::SpecId;
use revm::{DatabaseCommit, DatabaseRef, ExecuteEvm, MainBuilder, MainnetEvm};

/// The EVM rules the chain runs: Prague.
pub const SPEC: SpecId = SpecId::PRAGUE;

/// What a block is executed under.
#[derive(Debug, Clone)]
pub struct BlockParams {
    pub chain_id: u64,
    pub number: u64,
    pub timestamp_ms: u64,
    pub gas_limit: u64,
    pub base_fee: u64,
    pub coinbase: Address,
}

/// The outcome of executing a block's candidate transactions.
#[derive(Debug, Default)]
pub struct Executed {
    /// The transactions in the block, in order, with their receipts.
    pub included: Vec<SignedTx>,
    pub receipts: Vec<Receipt>,
    /// Transactions revm refused (their message is the Ethereum one); not in the block.
    pub rejected: Vec<(SignedTx, String)>,
    /// Transactions left out because the block's gas limit was reached.
    pub deferred: Vec<SignedTx>,
    pub diff: StateDiff,
    pub gas_used: u64,
}

/// An error of the state behind the EVM (never of a transaction).
#[derive(Debug, thiserror::Error)]
#[error("state: {0}")]
pub struct StateReadError(pub String);

type Evm<'a, DB> =
    MainnetEvm<Context<BlockEnv, TxEnv, CfgEnv, CacheDB<&'a DB>, Journal<CacheDB<&'a DB>>, ()>>;

fn build_evm<'a, DB: DatabaseRef>(db: &'a DB, p: &BlockParams, no_fee_checks: bool) -> Evm<'a, DB> {
    let mut cfg = CfgEnv::new_with_spec(SPEC);
    cfg.chain_id = p.chain_id;
    cfg.disable_nonce_check = no_fee_checks;
    cfg.disable_base_fee = no_fee_checks;
    cfg.disable_balance_check = no_fee_checks;
    let block = BlockEnv {
        number: U256::from(p.number),
        beneficiary: p.coinbase,
        timestamp: U256::from(p.timestamp_ms / 1000),
        gas_limit: p.gas_limit,
        basefee: p.base_fee,
        prevrandao: Some(B256::ZERO),
        ..Default::default()
    };
    Context::<BlockEnv, TxEnv, CfgEnv, _>::new(CacheDB::new(db), SPEC)
        .with_cfg(cfg)
        .with_block(block)
        .build_mainnet()
}

/// The revm transaction of a signed transaction.
pub fn tx_env(tx: &SignedTx) -> TxEnv {
    let e = tx.envelope();
    TxEnv {
        tx_type: tx.tx_type(),
        caller: tx.sender(),
        gas_limit: e.gas_limit(),
        gas_price: e.max_fee_per_gas(),
        kind: e.kind(),
        value: e.value(),
        data: e.input().clone(),
        nonce: e.nonce(),
        chain_id: e.chain_id(),
        access_list: e.access_list().cloned().unwrap_or_default(),
        gas_priority_fee: e.max_priority_fee_per_gas(),
        ..Default::default()
    }
}

/// Ethereum's message for a transaction revm refuses (geth's wording, which client
/// libraries match on).
pub fn invalid_message(e: &InvalidTransaction) -> String {
    use InvalidTransaction as I;
    match e {
        I::NonceTooLow { .. } => "nonce too low".into(),
        I::NonceTooHigh { .. } => "nonce too high".into(),
        I::LackOfFundForMaxFee { .. } | I::OverflowPaymentInTransaction => {
            "insufficient funds for gas * price + value".into()
        }
        I::CallGasCostMoreThanGasLimit { .. } | I::GasFloorMoreThanGasLimit { .. } => {
            "intrinsic gas too low".into()
        }
        I::GasPriceLessThanBasefee => "max fee per gas less than block base fee".into(),
        I::PriorityFeeGreaterThanMaxFee => {
            "max priority fee per gas higher than max fee per gas".into()
        }
        I::InvalidChainId | I::MissingChainId => "invalid chain id".into(),
        I::CallerGasLimitMoreThanBlock | I::TxGasLimitGreaterThanCap { .. } => {
            "exceeds block gas limit".into()
        }
        I::RejectCallerWithCode => "sender not an eoa".into(),
        other => other.to_string(),
    }
}

fn evm_error<E: std::fmt::Display>(
    e: EVMError<E, InvalidTransaction>,
) -> Result<String, StateReadError> {
    match e {
        EVMError::Transaction(t) => Ok(invalid_message(&t)),
        EVMError::Database(d) => Err(StateReadError(d.to_string())),
        other => Ok(other.to_string()),
    }
}

/// The receipt of an executed transaction (its logs moved out of `result`).
fn receipt(tx: &SignedTx, result: ExecutionResult, cumulative: u64, base_fee: u64) -> Receipt {
    let success = result.is_success();
    Receipt {
        tx_type: tx.tx_type(),
        success,
        cumulative_gas_used: cumulative,
        gas_used: result.tx_gas_used(),
        effective_gas_price: tx.envelope().effective_gas_price(Some(base_fee)),
        contract_address: if success {
            result.created_address()
        } else {
            None
        },
        logs: if success {
            result.into_logs()
        } else {
            Vec::new()
        },
    }
}

/// Executes `candidates` in order against `pre`. A transaction revm refuses is left out
/// (in `rejected`); one whose gas limit no longer fits the block is deferred, as is
/// every later one.
///
/// The transactions are executed in place: `candidates` becomes `included` once the
/// rejected and deferred ones are taken out, so the block's transactions are neither
/// moved nor copied one by one.
pub fn execute_block<DB: DatabaseRef>(
    pre: &DB,
    p: &BlockParams,
    mut candidates: Vec<SignedTx>,
) -> Result<Executed, StateReadError> {
    let mut evm = build_evm(pre, p, false);
    let mut out = Executed {
        receipts: Vec::with_capacity(candidates.len()),
        ..Default::default()
    };
    let mut changes = diff::BlockChanges::default();
    // Indices into `candidates` of the refused transactions, with their messages.
    let mut rejected = Vec::new();
    let mut deferred_from = candidates.len();
    for (i, tx) in candidates.iter().enumerate() {
        if out.gas_used + tx.gas_limit() > p.gas_limit {
            if tx.gas_limit() > p.gas_limit {
                rejected.push((i, "exceeds block gas limit".to_string()));
                continue;
            }
            deferred_from = i;
            break;
        }
        match evm.transact(tx_env(tx)) {
            Ok(ResultAndState { result, state }) => {
                out.gas_used += result.tx_gas_used();
                let db = &mut evm.ctx.journaled_state.database;
                changes.record(&state, &db.cache);
                db.commit(state);
                out.receipts
                    .push(receipt(tx, result, out.gas_used, p.base_fee));
            }
            Err(e) => {
                let message = evm_error(e)?;
                rejected.push((i, message));
            }
        }
    }
    let cache = std::mem::take(&mut evm.ctx.journaled_state.database.cache);
    drop(evm);
    out.deferred = candidates.split_off(deferred_from);
    if !rejected.is_empty() {
        let mut index = 0;
        let mut next = rejected.iter().map(|(i, _)| *i).peekable();
        let taken: Vec<SignedTx> = candidates
            .extract_if(.., |_| {
                let hit = next.next_if_eq(&index).is_some();
                index += 1;
                hit
            })
            .collect();
        out.rejected = taken
            .into_iter()
            .zip(rejected.into_iter().map(|(_, message)| message))
            .collect();
    }
    out.included = candidates;
    out.diff = diff::finish_diff(pre, changes.finish(&cache))?;
    Ok(out)
}

/// A call or gas estimate request, as `eth_call` and `eth_estimateGas` take it.
#[derive(Debug, Clone, Default)]
pub struct CallRequest {
    pub from: Option<Address>,
    pub to: Option<Address>,
    pub gas: Option<u64>,
    pub gas_price: Option<u128>,
    pub max_fee_per_gas: Option<u128>,
    pub max_priority_fee_per_gas: Option<u128>,
    pub value: Option<U256>,
    pub data: Bytes,
    pub nonce: Option<u64>,
    pub access_list: Option<alloy_eips::eip2930::AccessList>,
}

/// What a call did.
#[derive(Debug, Clone)]
pub enum CallOutcome {
    Success {
        output: Bytes,
        gas_used: u64,
    },
    /// `REVERT`: the revert data.
    Revert {
        output: Bytes,
        gas_used: u64,
    },
    Halt {
        reason: String,
        gas_used: u64,
    },
}

/// A call refused before execution.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct CallError(pub String);

/// Runs `req` against `pre` without keeping any change. Without fee fields it pays
/// nothing (base fee, balance and nonce checks off, as geth's `eth_call`).
pub fn call<DB: DatabaseRef>(
    pre: &DB,
    p: &BlockParams,
    req: &CallRequest,
) -> Result<CallOutcome, CallError> {
    let priced = req.gas_price.is_some() || req.max_fee_per_gas.is_some();
    let mut evm = build_evm(pre, p, !priced);
    let from = req.from.unwrap_or_default();
    let nonce = match req.nonce {
        Some(n) => n,
        None => pre
            .basic_ref(from)
            .map_err(|e| CallError(e.to_string()))?
            .map_or(0, |a| a.nonce),
    };
    let (tx_type, gas_price, gas_priority_fee) = match (req.max_fee_per_gas, req.gas_price) {
        (Some(max), _) => (2, max, Some(req.max_priority_fee_per_gas.unwrap_or(0))),
        (None, Some(price)) => (0, price, None),
        (None, None) => (0, 0, None),
    };
    let tx_type = if tx_type == 0 && req.access_list.is_some() {
        1
    } else {
        tx_type
    };
    let tx = TxEnv {
        tx_type,
        caller: from,
        gas_limit: req.gas.unwrap_or(p.gas_limit).min(p.gas_limit),
        gas_price,
        gas_priority_fee,
        kind: req.to.map_or(TxKind::Create, TxKind::Call),
        value: req.value.unwrap_or_default(),
        data: req.data.clone(),
        nonce,
        chain_id: Some(p.chain_id),
        access_list: req.access_list.clone().unwrap_or_default(),
        ..Default::default()
    };
    let result = evm.transact(tx).map_err(|e| match evm_error(e) {
        Ok(m) | Err(StateReadError(m)) => CallError(m),
    })?;
    let gas_used = result.result.tx_gas_used();
    Ok(match result.result {
        ExecutionResult::Success { output, .. } => CallOutcome::Success {
            output: output.into_data(),
            gas_used,
        },
        ExecutionResult::Revert { output, .. } => CallOutcome::Revert { output, gas_used },
        ExecutionResult::Halt { reason, .. } => CallOutcome::Halt {
            reason: format!("{reason:?}"),
            gas_used,
        },
    })
}

/// The least gas limit under which `req` succeeds (binary search, as geth), or the
/// outcome that makes it fail at the largest limit.
pub fn estimate_gas<DB: DatabaseRef>(
    pre: &DB,
    p: &BlockParams,
    req: &CallRequest,
) -> Result<Result<u64, CallOutcome>, CallError> {
    let cap = req.gas.unwrap_or(p.gas_limit).min(p.gas_limit);
    let at = |gas: u64| {
        let r = CallRequest {
            gas: Some(gas),
            ..req.clone()
        };
        call(pre, p, &r)
    };
    let used = match at(cap)? {
        CallOutcome::Success { gas_used, .. } => gas_used,
        failed => return Ok(Err(failed)),
    };
    if let Ok(CallOutcome::Success { .. }) = at(used) {
        return Ok(Ok(used));
    }
    // `used` may be below what execution needs up front (refunds, the 63/64 rule).
    let (mut lo, mut hi) = (used.saturating_sub(1), cap);
    while lo + 1 < hi {
        let mid = lo + (hi - lo) / 2;
        match at(mid) {
            Ok(CallOutcome::Success { .. }) => hi = mid,
            _ => lo = mid,
        }
    }
    Ok(Ok(hi))
}
