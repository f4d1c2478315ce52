//! The status page every node role serves for itself, on its JSON-RPC port, and the
//! pieces the devnet's page is built from: plain server-rendered HTML with a little
//! script that polls `/status.json` every second and redraws it. No front-end build
//! step.
//!
//! - [`html`]: the shared pieces: the page's frame and style, HTML escaping, the
//!   script's helpers (figures, the lies list, a line chart, the polling loop);
//! - [`sample`]: throughput over a sliding window and a bounded history, sampled
//!   once a second;
//! - [`role`]: the [`Role`] seam (a role's figures and detected lies), the
//!   [`StatusPage`] that samples a role and renders its page and `/status.json`;
//! - [`layer`]: [`StatusLayer`], a tower layer for a jsonrpsee server that answers
//!   `GET /` (the page) and `GET /status.json`, and passes everything else (JSON-RPC
//!   POSTs, WebSocket upgrades) to the server unchanged.

pub mod html;
pub mod layer;
pub mod role;
pub mod sample;

pub use layer::StatusLayer;
pub use role::{Figure, Reading, Role, StatusPage};
pub use sample::{History, Throughput};
