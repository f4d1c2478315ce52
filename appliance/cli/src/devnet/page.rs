//! The devnet's status page: plain server-rendered HTML with a little script that
//! polls `/status.json` every second and redraws the heads, the proving lag over time
//! (an inline SVG line), the appliance's jobs by device and state, throughput, and
//! every detected lie. No front-end build step; built from the pieces every role's
//! own page uses ([`proofbox_status_page`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::response::{Html, IntoResponse, Json};
use axum::routing::get;
use proofbox_full_node::FullNode;
use proofbox_sequencer::Sequencer;
use proofbox_status_page::html::{self, esc};
use proofbox_status_page::{History, Throughput};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Seconds since the devnet started.
    pub t: f64,
    pub latest: u64,
    pub proven: u64,
    pub full: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Snapshot {
    pub roles: Vec<RoleView>,
    pub latest: u64,
    pub proven: Option<u64>,
    pub lag_blocks: u64,
    pub lag_ms: u64,
    pub proofs: u64,
    pub in_flight: usize,
    /// Transactions and blocks per second over the last ten seconds.
    pub tx_per_sec: f64,
    pub blocks_per_sec: f64,
    /// The appliance's jobs: device (or `queued`) -> status -> count.
    pub jobs: BTreeMap<String, BTreeMap<String, u64>>,
    pub lies: Vec<String>,
    pub history: Vec<Sample>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RoleView {
    pub role: String,
    pub url: String,
    pub head: Option<u64>,
    pub note: String,
}

/// What the page shows, refreshed by [`sample`].
#[derive(Clone)]
pub struct Page {
    inner: Arc<Mutex<Snapshot>>,
}

pub struct Sources {
    pub seq: Sequencer,
    pub full: FullNode,
    pub replica: proofbox_replica::Replica,
    pub light: proofbox_light_client::LightClient,
    pub urls: Vec<(String, String)>,
    pub appliance: String,
}

impl Page {
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Mutex::new(Snapshot::default())),
        }
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/", get(index))
            .route("/status.json", get(status))
            .with_state(self.clone())
    }

    fn snapshot(&self) -> Snapshot {
        self.inner.lock().unwrap().clone()
    }
}

async fn status(State(page): State<Page>) -> impl IntoResponse {
    Json(page.snapshot())
}

async fn index(State(page): State<Page>) -> Html<String> {
    Html(render(&page.snapshot()))
}

/// The page as the server renders it (the script then keeps it live), from the
/// shared pieces of [`proofbox_status_page::html`].
pub fn render(s: &Snapshot) -> String {
    let mut roles = String::new();
    for r in &s.roles {
        let _ = write!(
            roles,
            "<tr><td>{}</td><td><a href=\"{url}\">{url}</a></td><td data-role=\"{}\">{}</td><td>{}</td></tr>",
            esc(&r.role),
            esc(&r.role),
            r.head.map_or("-".into(), |h| h.to_string()),
            esc(&r.note),
            url = esc(&r.url),
        );
    }
    let body = format!(
        r#"<p class="big">latest <span id="latest">{latest}</span> · proven <span id="proven">{proven}</span>
 · lag <span id="lag">{lag}</span> blocks (<span id="lagms">{lagms}</span> ms) · <span id="inflight">{inflight}</span> batches in flight</p>
<p>throughput: <span id="tps">{tps:.1}</span> tx/s, <span id="bps">{bps:.1}</span> blocks/s · proofs published: <span id="proofs">{proofs}</span></p>
<h2>Roles</h2>
<p>Each role's endpoint serves its own status page.</p>
<table><thead><tr><th>role</th><th>endpoint</th><th>head</th><th></th></tr></thead><tbody id="roles">{roles}</tbody></table>
<h2>Proving lag over time (blocks)</h2>
{chart}
<h2>Appliance jobs by device and state</h2>
<table><thead><tr><th>device</th><th>jobs</th></tr></thead><tbody id="jobs"></tbody></table>
<h2>Detected lies</h2>
{lies}"#,
        latest = s.latest,
        proven = s.proven.map_or("-".into(), |p| p.to_string()),
        lag = s.lag_blocks,
        lagms = s.lag_ms,
        inflight = s.in_flight,
        tps = s.tx_per_sec,
        bps = s.blocks_per_sec,
        proofs = s.proofs,
        chart = html::chart("lagline"),
        lies = html::lies("lies", &s.lies),
    );
    html::document("ProofBox devnet", &body, UPDATE)
}

/// The script's update: the devnet's status onto the page.
const UPDATE: &str = r#"s => {
  pb.text('latest', s.latest); pb.text('proven', pb.show(s.proven));
  pb.text('lag', s.lag_blocks); pb.text('lagms', s.lag_ms); pb.text('inflight', s.in_flight);
  pb.text('tps', s.tx_per_sec.toFixed(1)); pb.text('bps', s.blocks_per_sec.toFixed(1)); pb.text('proofs', s.proofs);
  for (const r of s.roles) {
    const cell = document.querySelector('[data-role="' + r.role + '"]');
    if (cell) cell.textContent = pb.show(r.head);
  }
  pb.line('lagline', s.history.map(x => [x.t, x.latest - x.proven]));
  const jobs = document.getElementById('jobs');
  jobs.replaceChildren(...Object.entries(s.jobs).map(([d, st]) => {
    const tr = document.createElement('tr');
    for (const t of [d, pb.show(st)]) { const td = document.createElement('td'); td.textContent = t; tr.append(td); }
    return tr;
  }));
  pb.lies('lies', s.lies);
}"#;

/// Refreshes `page` every second from the roles.
pub async fn sample(page: Page, src: Sources) {
    let start = Instant::now();
    let mut history: History<Sample> = History::default();
    let mut throughput = Throughput::default();
    let mut lies: Vec<String> = Vec::new();
    let http = reqwest::Client::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let now = Instant::now();
        let view = proofbox_sequencer::rpc::proofs::status(&src.seq);
        let latest = view.latest_block;
        let status = view.proving;
        let full_head = src.full.head();
        let txs = {
            let core = src.seq.read();
            throughput
                .new_blocks(latest)
                .filter_map(|n| core.chain.block(n))
                .map(|b| b.transactions.len() as u64)
                .sum()
        };
        throughput.record(now, latest, Some(txs));
        let tx_per_sec = throughput.tx_per_sec().unwrap_or(0.0);
        let blocks_per_sec = throughput.blocks_per_sec().unwrap_or(0.0);
        if let Some(m) = src.full.mismatch() {
            let lie = format!("full node: block {}: {}", m.block, m.difference);
            if !lies.contains(&lie) {
                lies.push(lie);
            }
        }
        for e in &status.lies {
            let lie = format!("sequencer: an appliance lied: {e}");
            if !lies.contains(&lie) {
                lies.push(lie);
            }
        }
        let mut jobs: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        if let Ok(r) = http
            .get(format!("{}/v1/jobs?limit=1000", src.appliance))
            .send()
            .await
            && let Ok(v) = r.json::<serde_json::Value>().await
        {
            for j in v["jobs"].as_array().into_iter().flatten() {
                let device = j["device_used"]
                    .as_str()
                    .unwrap_or("not started")
                    .to_string();
                let state = j["status"].as_str().unwrap_or("?").to_string();
                *jobs.entry(device).or_default().entry(state).or_default() += 1;
            }
        }
        history.push(Sample {
            t: now.duration_since(start).as_secs_f64(),
            latest,
            proven: status.proven_block.unwrap_or(0),
            full: full_head.unwrap_or(0),
        });
        let (replica_latest, replica_proven) = {
            let c = src.replica.read();
            (c.latest_head, c.proven_head)
        };
        for r in src.replica.read().refused() {
            // Without the count: the same refusal repeated is one lie.
            let r = proofbox_replica::Refusal {
                count: 1,
                ..r.clone()
            };
            let lie = format!("replica {}", proofbox_replica::page::describe(&r));
            if !lies.contains(&lie) {
                lies.push(lie);
            }
        }
        for l in src.light.lies() {
            let lie = format!("light client: {} lied: {}", l.source, l.what);
            if !lies.contains(&lie) {
                lies.push(lie);
            }
        }
        let light_head = src.light.head().block;
        let roles = src
            .urls
            .iter()
            .map(|(role, url)| RoleView {
                role: role.clone(),
                url: url.clone(),
                head: match role.as_str() {
                    "sequencer" => Some(latest),
                    "full node" => full_head,
                    "replica" => replica_latest,
                    "light client" => Some(light_head),
                    "appliance" => status.proven_block,
                    _ => None,
                },
                note: match role.as_str() {
                    "sequencer" => "latest block".into(),
                    "full node" if src.full.mismatch().is_some() => "stopped: mismatch".into(),
                    "full node" => "re-executed".into(),
                    "replica" => format!(
                        "applied; proven {}",
                        replica_proven.map_or("-".into(), |p| p.to_string())
                    ),
                    "light client" => "proven block".into(),
                    "appliance" => "proven block".into(),
                    _ => String::new(),
                },
            })
            .collect();
        *page.inner.lock().unwrap() = Snapshot {
            roles,
            latest,
            proven: status.proven_block,
            lag_blocks: view.lag_blocks,
            lag_ms: view.lag_ms,
            proofs: status.proven_batches,
            in_flight: status.in_flight.len(),
            tx_per_sec,
            blocks_per_sec,
            jobs,
            lies: lies.clone(),
            history: history.to_vec(),
        };
    }
}
