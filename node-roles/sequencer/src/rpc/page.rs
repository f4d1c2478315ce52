//! The sequencer's status page, served on its JSON-RPC port (`GET /` and
//! `GET /status.json`, [`proofbox_status_page`]): the latest and proven heads, the
//! proving lag in blocks and milliseconds, the batches being proven by state,
//! throughput, and every proof an appliance delivered that did not verify.

use std::collections::BTreeMap;

use proofbox_status_page::{Figure, Reading, Role};
use serde_json::{Map, Value};

use crate::Sequencer;

/// The sequencer as its status page sees it.
pub struct SequencerPage(pub Sequencer);

const FIGURES: &[Figure] = &[
    Figure::new("latest", "latest block"),
    Figure::new("proven", "proven block"),
    Figure::new("lagBlocks", "proving lag (blocks)"),
    Figure::new("lagMs", "proving lag (ms)"),
    Figure::new("inFlight", "batches being proven"),
    Figure::new("jobs", "their jobs, by state"),
    Figure::new("provenBatches", "proofs published"),
    Figure::new("proving", "proving"),
    Figure::new("lastError", "last proving problem"),
    Figure::new("stateRoot", "state root"),
    Figure::new("chainId", "chain id"),
];

impl Role for SequencerPage {
    fn name(&self) -> &'static str {
        "sequencer"
    }

    fn figures(&self) -> &'static [Figure] {
        FIGURES
    }

    fn chart(&self) -> &'static str {
        "Proving lag over time (blocks)"
    }

    fn read(&self) -> Reading {
        let view = super::proofs::status(&self.0);
        let root = self.0.read().chain.head_block().header.post_state_root;
        let p = &view.proving;
        let mut jobs: BTreeMap<String, u64> = BTreeMap::new();
        for f in &p.in_flight {
            *jobs.entry(f.state.clone()).or_default() += 1;
        }
        let mut figures = Map::new();
        let mut put = |k: &str, v: Value| {
            figures.insert(k.into(), v);
        };
        put("latest", view.latest_block.into());
        put("proven", p.proven_block.into());
        put("lagBlocks", view.lag_blocks.into());
        put("lagMs", view.lag_ms.into());
        put("inFlight", p.in_flight.len().into());
        put("jobs", serde_json::to_value(&jobs).expect("serializes"));
        put("provenBatches", p.proven_batches.into());
        put(
            "proving",
            if p.enabled {
                "on"
            } else {
                "off (no appliance)"
            }
            .into(),
        );
        put("lastError", p.last_error.clone().into());
        put("stateRoot", root.hex().into());
        put("chainId", self.0.config().chain_id.into());
        Reading {
            head: Some(view.latest_block),
            chart: Some(view.lag_blocks as f64),
            figures,
            lies: p.lies.clone(),
        }
    }

    fn transactions(&self, from: u64, to: u64) -> Option<u64> {
        let core = self.0.read();
        Some(
            (from..=to)
                .filter_map(|n| core.chain.block(n))
                .map(|b| b.transactions.len() as u64)
                .sum(),
        )
    }
}
