//! The replica's status page, served on its JSON-RPC port (`GET /` and
//! `GET /status.json`, [`proofbox_status_page`]): the latest (applied) and proven
//! heads and roots, whether it follows, its re-syncs, throughput, and every refusal
//! (a block or proof that did not check out: the lies it detected).

use proofbox_status_page::{Figure, Reading, Role};
use serde_json::{Map, Value};

use crate::Replica;
use crate::refusals::Refusal;

/// The replica as its status page sees it.
pub struct ReplicaPage(pub Replica);

const FIGURES: &[Figure] = &[
    Figure::new("latest", "latest head (applied)"),
    Figure::new("proven", "proven head"),
    Figure::new("lagBlocks", "applied, not yet proven (blocks)"),
    Figure::new("refusals", "refusals"),
    Figure::new("resyncs", "re-syncs since start"),
    Figure::new("following", "following"),
    Figure::new("resyncInMs", "re-sync in (ms)"),
    Figure::new("pendingProofs", "proofs waiting for their blocks"),
    Figure::new("bodiesToCheck", "blocks waiting for their body check"),
    Figure::new("nextBatch", "next batch"),
    Figure::new("latestRoot", "latest root (claimed)"),
    Figure::new("provenRoot", "proven root"),
    Figure::new("minSecurityBits", "security floor (bits)"),
];

/// A refusal as one line of text.
pub fn describe(r: &Refusal) -> String {
    let what = match (r.batch, r.block) {
        (Some(i), Some(b)) => format!("batch {i} (block {b})"),
        (Some(i), None) => format!("batch {i}"),
        (None, Some(b)) => format!("block {b}"),
        (None, None) => "-".into(),
    };
    let times = if r.count > 1 {
        format!(" (refused {} times)", r.count)
    } else {
        String::new()
    };
    format!("refused {what}: {}{times}", r.reason)
}

impl Role for ReplicaPage {
    fn name(&self) -> &'static str {
        "replica"
    }

    fn figures(&self) -> &'static [Figure] {
        FIGURES
    }

    fn chart(&self) -> &'static str {
        "Applied, not yet proven, over time (blocks)"
    }

    fn read(&self) -> Reading {
        let status = self.0.status();
        let (latest, proven, lies, refusals) = {
            let c = self.0.read();
            let refused = c.refused();
            (
                c.latest_head,
                c.proven_head,
                refused.iter().map(describe).collect::<Vec<_>>(),
                refused.iter().map(|r| r.count).sum::<u64>(),
            )
        };
        let lag = latest.map(|l| l.saturating_sub(proven.unwrap_or(0)));
        let mut figures = Map::new();
        for f in FIGURES {
            figures.insert(f.key.into(), status[f.key].clone());
        }
        figures.insert("lagBlocks".into(), lag.into());
        figures.insert("refusals".into(), Value::from(refusals));
        Reading {
            head: latest,
            chart: lag.map(|l| l as f64),
            figures,
            lies,
        }
    }

    /// Counted in the blocks whose bodies checked out only (nothing is taken from a
    /// body before).
    fn transactions(&self, from: u64, to: u64) -> Option<u64> {
        let c = self.0.read();
        Some(
            (from..=to)
                .filter_map(|n| c.block(n))
                .filter(|k| matches!(k.bodies(), Some(Ok(()))))
                .map(|k| k.unchecked().transactions.len() as u64)
                .sum(),
        )
    }
}
