//! A role's own status page: the [`Role`] seam, and the [`StatusPage`] that samples
//! it once a second (throughput, the chart's history) and renders its HTML and
//! `/status.json` from a fresh reading.
//!
//! `/status.json` is one flat object: `role`, the role's figures (its
//! [`Reading::figures`], camelCase keys), `txPerSec` and `blocksPerSec` (over the
//! last ten seconds; `null` before two samples, `txPerSec` also where the role has
//! no transactions), `lies` (every lie the role detected, as text), `chart` (what
//! the chart shows) and `history` (`[{"t": seconds since start, "v": value}]`, one a
//! second, the newest 300).

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::html::{self, esc, show};
use crate::sample::{History, Throughput};

/// One figure the page shows: the key of its value in the status, and its label.
#[derive(Debug, Clone, Copy)]
pub struct Figure {
    pub key: &'static str,
    pub label: &'static str,
}

impl Figure {
    pub const fn new(key: &'static str, label: &'static str) -> Self {
        Self { key, label }
    }
}

/// What a role reports at one moment.
#[derive(Debug, Clone, Default)]
pub struct Reading {
    /// The head whose advance is counted as throughput (blocks per second).
    pub head: Option<u64>,
    /// The value the chart plots now.
    pub chart: Option<f64>,
    /// The role's figures, by key.
    pub figures: Map<String, Value>,
    /// Every lie the role detected (as kept by the role), as text.
    pub lies: Vec<String>,
}

/// A node role as its status page sees it.
pub trait Role: Send + Sync + 'static {
    /// The role's name: the page's title and `role` in the status.
    fn name(&self) -> &'static str;
    /// The figures the page shows, in order.
    fn figures(&self) -> &'static [Figure];
    /// What the chart plots (its heading).
    fn chart(&self) -> &'static str;
    /// The role's state now.
    fn read(&self) -> Reading;
    /// The number of transactions in blocks `from..=to` (0 for an empty range, `from >
    /// to`), or `None` where the role has no transactions (the light client).
    fn transactions(&self, _from: u64, _to: u64) -> Option<u64> {
        None
    }
}

#[derive(Debug, Clone, Serialize)]
struct Sample {
    t: f64,
    v: f64,
}

#[derive(Default)]
struct Sampled {
    throughput: Throughput,
    history: History<Sample>,
}

/// A role's status page. Cloning shares it.
#[derive(Clone)]
pub struct StatusPage {
    role: Arc<dyn Role>,
    sampled: Arc<Mutex<Sampled>>,
    start: Instant,
}

impl StatusPage {
    pub fn new(role: impl Role) -> Self {
        Self {
            role: Arc::new(role),
            sampled: Arc::default(),
            start: Instant::now(),
        }
    }

    /// The layer that serves this page on a jsonrpsee server.
    pub fn layer(&self) -> crate::StatusLayer {
        crate::StatusLayer::new(self.clone())
    }

    /// The layer as a jsonrpsee server's HTTP middleware
    /// (`Server::builder().set_http_middleware(page.middleware())`).
    pub fn middleware(
        &self,
    ) -> tower::ServiceBuilder<
        tower::layer::util::Stack<crate::StatusLayer, tower::layer::util::Identity>,
    > {
        tower::ServiceBuilder::new().layer(self.layer())
    }

    /// Takes one sample at `now`: the head for throughput, and the chart's next point.
    pub fn sample(&self, now: Instant) {
        let r = self.role.read();
        let mut sampled = self.sampled.lock().unwrap();
        if let Some(head) = r.head {
            let blocks = sampled.throughput.new_blocks(head);
            let txs = self.role.transactions(*blocks.start(), *blocks.end());
            sampled.throughput.record(now, head, txs);
        }
        if let Some(v) = r.chart {
            sampled.history.push(Sample {
                t: now.duration_since(self.start).as_secs_f64(),
                v,
            });
        }
    }

    /// Samples once a second until `stop` completes (spawned on the current runtime).
    pub fn sample_until(&self, stop: impl std::future::Future<Output = ()> + Send + 'static) {
        let page = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tokio::pin!(stop);
            loop {
                tokio::select! {
                    _ = tick.tick() => page.sample(Instant::now()),
                    _ = &mut stop => return,
                }
            }
        });
    }

    /// `/status.json`: a fresh reading with the sampled throughput and history.
    pub fn status(&self) -> Value {
        let r = self.role.read();
        let sampled = self.sampled.lock().unwrap();
        let mut s = Map::new();
        s.insert("role".into(), self.role.name().into());
        s.extend(r.figures);
        s.insert("txPerSec".into(), sampled.throughput.tx_per_sec().into());
        s.insert(
            "blocksPerSec".into(),
            sampled.throughput.blocks_per_sec().into(),
        );
        s.insert("lies".into(), r.lies.into());
        s.insert("chart".into(), self.role.chart().into());
        s.insert(
            "history".into(),
            serde_json::to_value(sampled.history.to_vec()).expect("serializes"),
        );
        Value::Object(s)
    }

    /// The page, rendered from [`StatusPage::status`]; its script keeps it live.
    pub fn html(&self) -> String {
        render(self.role.name(), self.role.figures(), &self.status())
    }
}

/// The role page's markup for `status`.
fn render(name: &str, figures: &[Figure], status: &Value) -> String {
    let mut rows = String::new();
    for f in figures {
        let _ = write!(
            rows,
            "<tr><th>{}</th><td class=\"v\" data-key=\"{}\">{}</td></tr>",
            esc(f.label),
            esc(f.key),
            esc(&show(&status[f.key])),
        );
    }
    let lies: Vec<String> = status["lies"]
        .as_array()
        .into_iter()
        .flatten()
        .map(show)
        .collect();
    let body = format!(
        "<table><tbody id=\"figures\">{rows}</tbody></table>\n\
         <p>throughput: <span data-key=\"txPerSec\">{}</span> tx/s, \
         <span data-key=\"blocksPerSec\">{}</span> blocks/s</p>\n\
         <h2>{}</h2>\n{}\n<h2>Detected lies</h2>\n{}",
        esc(&show(&status["txPerSec"])),
        esc(&show(&status["blocksPerSec"])),
        esc(status["chart"].as_str().unwrap_or("")),
        html::chart("line"),
        html::lies("lies", &lies),
    );
    html::document(
        &format!("ProofBox {name}"),
        &body,
        "s => { pb.figures(s); pb.lies('lies', s.lies); \
         pb.line('line', s.history.map(x => [x.t, x.v])); }",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    struct Counter(Arc<AtomicU64>);

    impl Role for Counter {
        fn name(&self) -> &'static str {
            "counter"
        }
        fn figures(&self) -> &'static [Figure] {
            const FIGURES: &[Figure] = &[Figure::new("head", "head"), Figure::new("note", "note")];
            FIGURES
        }
        fn chart(&self) -> &'static str {
            "head"
        }
        fn read(&self) -> Reading {
            let head = self.0.load(Ordering::SeqCst);
            let mut figures = Map::new();
            figures.insert("head".into(), head.into());
            figures.insert("note".into(), "<b>".into());
            Reading {
                head: Some(head),
                chart: Some(head as f64),
                figures,
                lies: (head >= 3)
                    .then(|| "block 3 <forged>".to_string())
                    .into_iter()
                    .collect(),
            }
        }
        fn transactions(&self, from: u64, to: u64) -> Option<u64> {
            Some(2 * (to + 1).saturating_sub(from))
        }
    }

    #[test]
    fn the_status_reads_the_role_and_the_samples() {
        let head = Arc::new(AtomicU64::new(1));
        let page = StatusPage::new(Counter(head.clone()));
        let s = page.status();
        assert_eq!(s["role"], "counter");
        assert_eq!(s["head"], 1);
        assert_eq!(s["blocksPerSec"], Value::Null, "no rate before two samples");
        let t0 = Instant::now();
        page.sample(t0);
        head.store(5, Ordering::SeqCst);
        page.sample(t0 + Duration::from_secs(2));
        let s = page.status();
        assert_eq!(s["head"], 5);
        assert_eq!(s["blocksPerSec"], 2.0);
        assert_eq!(s["txPerSec"], 4.0);
        assert_eq!(s["history"].as_array().unwrap().len(), 2);
        assert_eq!(s["history"][1]["v"], 5.0);
        assert_eq!(s["lies"][0], "block 3 <forged>");
        // No new block: the rate falls to zero.
        page.sample(t0 + Duration::from_secs(20));
        page.sample(t0 + Duration::from_secs(21));
        assert_eq!(page.status()["blocksPerSec"], 0.0);
        assert_eq!(page.status()["txPerSec"], 0.0);

        let html = page.html();
        assert!(html.contains("<title>ProofBox counter</title>"), "{html}");
        assert!(html.contains("data-key=\"head\">5</td>"), "{html}");
        assert!(html.contains("&lt;b&gt;"), "escaped: {html}");
        assert!(
            html.contains("<li class=\"lie\">block 3 &lt;forged&gt;</li>"),
            "{html}"
        );
    }
}
