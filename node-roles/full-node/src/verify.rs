//! What a full node checks of a block, and the first difference it finds.

use proofbox_chain_types::{AccountDiff, Block, Receipt, StateDiff};
use proofbox_sequencer::exec::{BlockParams, execute_block};
use revm::DatabaseRef;

/// The first field of `ours` that differs from `theirs`, if any.
fn receipt_difference(i: usize, ours: &Receipt, theirs: &Receipt) -> Option<String> {
    let field = if ours.success != theirs.success {
        format!(
            "status: re-executed {}, sequencer {}",
            ours.success, theirs.success
        )
    } else if ours.gas_used != theirs.gas_used {
        format!(
            "gas used: re-executed {}, sequencer {}",
            ours.gas_used, theirs.gas_used
        )
    } else if ours.cumulative_gas_used != theirs.cumulative_gas_used {
        format!(
            "cumulative gas used: re-executed {}, sequencer {}",
            ours.cumulative_gas_used, theirs.cumulative_gas_used
        )
    } else if ours.logs != theirs.logs {
        format!(
            "logs: re-executed {} logs, sequencer {} (or their contents differ)",
            ours.logs.len(),
            theirs.logs.len()
        )
    } else if ours.contract_address != theirs.contract_address {
        format!(
            "contract address: re-executed {:?}, sequencer {:?}",
            ours.contract_address, theirs.contract_address
        )
    } else if ours != theirs {
        format!("receipt fields: re-executed {ours:?}, sequencer {theirs:?}")
    } else {
        return None;
    };
    Some(format!("receipt {i}: {field}"))
}

fn account_difference(ours: &AccountDiff, theirs: &AccountDiff) -> String {
    let a = ours.address;
    if ours.nonce != theirs.nonce {
        format!(
            "account {a}: nonce re-executed {}, sequencer {}",
            ours.nonce, theirs.nonce
        )
    } else if ours.balance != theirs.balance {
        format!(
            "account {a}: balance re-executed {}, sequencer {}",
            ours.balance, theirs.balance
        )
    } else if ours.code_hash != theirs.code_hash {
        format!(
            "account {a}: code hash re-executed {}, sequencer {}",
            ours.code_hash, theirs.code_hash
        )
    } else if ours.storage != theirs.storage {
        let slot = ours
            .storage
            .iter()
            .zip(&theirs.storage)
            .find(|(x, y)| x != y)
            .map_or_else(
                || {
                    format!(
                        "{} slots re-executed, {} from the sequencer",
                        ours.storage.len(),
                        theirs.storage.len()
                    )
                },
                |(x, y)| {
                    format!(
                        "slot {:#x} = {:#x} re-executed, slot {:#x} = {:#x} from the sequencer",
                        x.0, x.1, y.0, y.1
                    )
                },
            );
        format!("account {a}: storage: {slot}")
    } else if ours.destroyed != theirs.destroyed {
        format!(
            "account {a}: destroyed re-executed {}, sequencer {}",
            ours.destroyed, theirs.destroyed
        )
    } else {
        format!(
            "account {a}: code re-executed {:?}, sequencer {:?}",
            ours.code.is_some(),
            theirs.code.is_some()
        )
    }
}

fn diff_difference(ours: &StateDiff, theirs: &StateDiff) -> Option<String> {
    let (o, t) = (ours.accounts(), theirs.accounts());
    for (x, y) in o.iter().zip(t) {
        if x.address != y.address {
            let first = x.address.min(y.address);
            let side = if x.address < y.address {
                "re-execution"
            } else {
                "the sequencer"
            };
            return Some(format!(
                "state diff: account {first} changed only per {side}"
            ));
        }
        if x != y {
            return Some(format!("state diff: {}", account_difference(x, y)));
        }
    }
    if o.len() != t.len() {
        let (longer, side) = if o.len() > t.len() {
            (o, "re-execution")
        } else {
            (t, "the sequencer")
        };
        let extra = longer[o.len().min(t.len())].address;
        return Some(format!(
            "state diff: account {extra} changed only per {side}"
        ));
    }
    None
}

/// Re-executes `block`'s transactions against `pre` and compares the receipts and the
/// diff with the block's. Returns the re-executed diff, or the first difference.
pub fn reexecute<DB: DatabaseRef>(
    pre: &DB,
    block: &Block,
    chain_id: u64,
) -> Result<StateDiff, String> {
    let h = &block.header;
    let params = BlockParams {
        chain_id,
        number: h.number,
        timestamp_ms: h.timestamp_ms,
        gas_limit: h.gas_limit,
        base_fee: h.base_fee,
        coinbase: h.coinbase,
    };
    let executed =
        execute_block(pre, &params, block.transactions.clone()).map_err(|e| e.to_string())?;
    if let Some((tx, why)) = executed.rejected.first() {
        return Err(format!("transaction {} is invalid: {why}", tx.hash()));
    }
    if let Some(tx) = executed.deferred.first() {
        return Err(format!(
            "transaction {} does not fit the block's gas limit",
            tx.hash()
        ));
    }
    for (i, (ours, theirs)) in executed.receipts.iter().zip(&block.receipts).enumerate() {
        if let Some(d) = receipt_difference(i, ours, theirs) {
            return Err(d);
        }
    }
    if executed.gas_used != h.gas_used {
        return Err(format!(
            "gas used: re-executed {}, header {}",
            executed.gas_used, h.gas_used
        ));
    }
    if let Some(d) = diff_difference(&executed.diff, &block.diff) {
        return Err(d);
    }
    Ok(executed.diff)
}
