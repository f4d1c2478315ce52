//! The light client's status page, served on its JSON-RPC port (`GET /` and
//! `GET /status.json`, [`proofbox_status_page`]): the proven height and root, the
//! nodes it asks, how fast its proven head moves, and every lie it detected.

use proofbox_status_page::{Figure, Reading, Role};
use serde_json::{Map, Value};

use crate::rpc::Served;

/// The light client as its status page sees it.
pub struct LightPage(pub Served);

const FIGURES: &[Figure] = &[
    Figure::new("proven", "proven height"),
    Figure::new("root", "proven root"),
    Figure::new("nextBatch", "next batch"),
    Figure::new("liesDetected", "lies detected"),
    Figure::new("node", "state from (untrusted)"),
    Figure::new("proofs", "proofs from (untrusted)"),
    Figure::new("chainId", "chain id"),
];

impl Role for LightPage {
    fn name(&self) -> &'static str {
        "light client"
    }

    fn figures(&self) -> &'static [Figure] {
        FIGURES
    }

    fn chart(&self) -> &'static str {
        "Proven height over time"
    }

    fn read(&self) -> Reading {
        let s = &self.0;
        let head = s.client.head();
        let lies: Vec<String> = s
            .client
            .lies()
            .into_iter()
            .map(|l| format!("{} lied: {}", l.source, l.what))
            .collect();
        let mut figures = Map::new();
        let mut put = |k: &str, v: Value| {
            figures.insert(k.into(), v);
        };
        put("proven", head.block.into());
        put("root", head.root.hex().into());
        put("nextBatch", head.next_batch.into());
        put("liesDetected", lies.len().into());
        put("node", s.node.clone().into());
        put("proofs", s.proofs.clone().into());
        put("chainId", s.client.chain_id().into());
        Reading {
            head: Some(head.block),
            chart: Some(head.block as f64),
            figures,
            lies,
        }
    }
}
