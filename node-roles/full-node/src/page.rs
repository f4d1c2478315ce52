//! The full node's status page, served on its JSON-RPC port (`GET /` and
//! `GET /status.json`, [`proofbox_status_page`]): the followed head and its state
//! root, whether it still follows, throughput, and the mismatch that stopped it, if
//! any (the lie it detected).

use proofbox_status_page::{Figure, Reading, Role};
use serde_json::{Map, Value};

use crate::FullNode;

/// The full node as its status page sees it.
pub struct FullNodePage(pub FullNode);

const FIGURES: &[Figure] = &[
    Figure::new("head", "followed head (re-executed)"),
    Figure::new("following", "following"),
    Figure::new("mismatch", "mismatch"),
    Figure::new("stateRoot", "state root"),
    Figure::new("chainId", "chain id"),
];

impl Role for FullNodePage {
    fn name(&self) -> &'static str {
        "full node"
    }

    fn figures(&self) -> &'static [Figure] {
        FIGURES
    }

    fn chart(&self) -> &'static str {
        "Followed head over time"
    }

    fn read(&self) -> Reading {
        let n = &self.0;
        let head = n.head();
        let mismatch = n.mismatch();
        let mut figures = Map::new();
        let mut put = |k: &str, v: Value| {
            figures.insert(k.into(), v);
        };
        put("head", head.into());
        put("following", mismatch.is_none().into());
        put(
            "mismatch",
            mismatch
                .as_ref()
                .map(|m| format!("block {}: {}", m.block, m.difference))
                .into(),
        );
        put("stateRoot", n.root().hex().into());
        put("chainId", n.chain_id().into());
        Reading {
            head,
            chart: head.map(|h| h as f64),
            figures,
            lies: mismatch
                .map(|m| format!("the sequencer's block {}: {}", m.block, m.difference))
                .into_iter()
                .collect(),
        }
    }

    fn transactions(&self, from: u64, to: u64) -> Option<u64> {
        let store = self.0.store();
        Some(
            (from..=to)
                .filter_map(|b| store.block(b).ok().flatten())
                .map(|b| b.transactions.len() as u64)
                .sum(),
        )
    }
}
