//! What an appliance advertises to the others sharing its job store: its devices, the
//! largest job each takes, and which are faulty. Submission admits a job against every
//! live appliance's devices (not only its own), a worker claims only jobs that fit its
//! device, and a queued job that fits no live device says why it waits
//! (`docs/fleet.md`).
//!
//! - A job's **shape** is its circuit, field and FRI preset ([`shape`]); its **size**
//!   is the `log_rows` its proofs have (a witness job's largest chunk).
//! - A device's [`Capacity`] maps each shape to the largest size it takes: the memory
//!   estimate from measured peaks ([`proofbox_prover::memory::largest_log_rows`]),
//!   capped by the appliance's `max_log_rows`.
//! - The embedded store has one appliance: its "fleet" is this appliance's own
//!   advertisement, so every rule below holds there too.

use std::collections::BTreeMap;

use proofbox_backend_api::{DeviceInfo, FieldId};
use proofbox_prover::{CircuitId, FriPreset, memory};
use serde::{Deserialize, Serialize};

use crate::store::{JobRecord, ROUTE_ANY};

/// The key of a job's shape: `circuit/field/fri`.
pub fn shape(circuit: CircuitId, field: FieldId, fri: FriPreset) -> String {
    format!("{}/{}/{}", circuit.name(), field.name(), fri.name())
}

/// For each shape a device takes, the largest `log_rows` it proves.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct Capacity(pub BTreeMap<String, u8>);

impl Capacity {
    /// The capacity of `device`: every circuit over every field it supports, with
    /// every FRI preset, by the memory estimate (`host_bytes`: this host's memory),
    /// capped at `max_log_rows`. A shape not even the smallest size of fits is left
    /// out.
    pub fn of(device: &DeviceInfo, host_bytes: Option<u64>, max_log_rows: u8) -> Self {
        let mut map = BTreeMap::new();
        for circuit in CircuitId::ALL {
            for &field in circuit.fields() {
                if !device.fields.contains(&field) {
                    continue;
                }
                for fri in FriPreset::ALL {
                    let largest =
                        memory::largest_log_rows(circuit, field, &fri.params(), device, host_bytes)
                            .map(|l| l.min(max_log_rows))
                            .filter(|&l| l >= circuit.min_log_rows());
                    if let Some(l) = largest {
                        map.insert(shape(circuit, field, fri), l);
                    }
                }
            }
        }
        Self(map)
    }

    /// The largest size of `shape` taken (`None`: not taken at all).
    pub fn largest(&self, shape: &str) -> Option<u8> {
        self.0.get(shape).copied()
    }

    /// Whether a proof of `shape` at `2^log_rows` rows is taken.
    pub fn takes(&self, shape: &str, log_rows: u8) -> bool {
        self.largest(shape).is_some_and(|l| log_rows <= l)
    }

    /// The shapes and sizes as two parallel lists (for a query's parameters).
    pub fn columns(&self) -> (Vec<String>, Vec<i32>) {
        self.0
            .iter()
            .map(|(s, &l)| (s.clone(), i32::from(l)))
            .unzip()
    }
}

/// One device as its appliance advertises it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeviceAd {
    /// The device's id on its appliance (`cpu:0`, `opencl:1`, ...).
    pub id: String,
    /// Its backend (`cpu`, `cuda`, `wgpu`, `opencl`).
    pub backend: String,
    /// The fields it proves over.
    pub fields: Vec<String>,
    /// Why it takes no jobs, when it is faulty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
    /// For each shape (`circuit/field/fri`) it takes, the largest `log_rows`.
    pub largest_log_rows: Capacity,
}

impl DeviceAd {
    /// Whether a worker of this device may take a job with `route` (`any`,
    /// `backend:<kind>`, `device:<id>`).
    pub fn accepts(&self, route: &str) -> bool {
        route == ROUTE_ANY
            || route.strip_prefix("backend:") == Some(self.backend.as_str())
            || route.strip_prefix("device:") == Some(self.id.as_str())
    }

    /// Whether this device, healthy, would take `rec`.
    pub fn takes(&self, rec: &JobRecord) -> bool {
        self.fault.is_none()
            && self.accepts(&rec.route)
            && self
                .largest_log_rows
                .takes(&rec.shape(), rec.fit_log_rows())
    }
}

/// One appliance of the fleet, as it advertises itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApplianceAd {
    /// The appliance (a new name at every start: its lease holder name on a shared
    /// store, `local` on the embedded one).
    pub appliance: String,
    /// The host it runs on.
    pub host: String,
    /// Its devices.
    pub devices: Vec<DeviceAd>,
    /// Milliseconds since it last renewed its advertisement (filled in on reading).
    #[serde(default)]
    pub seen_ms_ago: u64,
}

/// Why `rec`, queued, is not taken by any device of `fleet`: `None` when some healthy
/// device takes it.
pub fn waiting_reason(fleet: &[ApplianceAd], rec: &JobRecord) -> Option<String> {
    if fleet.iter().flat_map(|a| &a.devices).any(|d| d.takes(rec)) {
        return None;
    }
    Some(match rec.route.as_str() {
        ROUTE_ANY => format!(
            "no live appliance has a healthy device that takes {} at 2^{} rows; the job stays \
             queued until one does (GET /v1/fleet)",
            rec.shape(),
            rec.fit_log_rows()
        ),
        route => format!(
            "no live appliance has a healthy device for route {route} that takes {} at 2^{} \
             rows; the job stays queued until one does (GET /v1/fleet)",
            rec.shape(),
            rec.fit_log_rows()
        ),
    })
}

/// This host's name, for advertisements.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}
