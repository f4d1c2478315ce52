//! The API's request and response bodies: what the server sends and receives, and
//! what the `proofbox` client sends and parses. One definition for both sides.

use core::fmt;
use core::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Accepted and waiting for a worker (also after a retry or a restart).
    Queued,
    /// A worker is proving it.
    Running,
    /// The proof is stored and can be downloaded.
    Succeeded,
    /// Proving failed for good; `error` says why.
    Failed,
    /// Cancelled by a client; a result that arrives later is discarded.
    Cancelled,
}

impl JobStatus {
    pub const ALL: [JobStatus; 5] = [
        Self::Queued,
        Self::Running,
        Self::Succeeded,
        Self::Failed,
        Self::Cancelled,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// Stable code used in the store's status index.
    pub const fn code(self) -> u8 {
        match self {
            Self::Queued => 0,
            Self::Running => 1,
            Self::Succeeded => 2,
            Self::Failed => 3,
            Self::Cancelled => 4,
        }
    }

    /// Succeeded, failed or cancelled: the job will not change any more.
    pub const fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for JobStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!(
                    "unknown status {s:?} (expected queued, running, succeeded, failed or cancelled)"
                )
            })
    }
}

/// A proof job to submit: the body of `POST /v1/jobs`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitJob {
    /// `poseidon2`, `keccak` or `blake3` (see `GET /v1/circuits`).
    #[schema(example = "poseidon2")]
    pub circuit: String,
    /// log2 of the trace rows, within the circuit's limits (see `GET /v1/circuits`).
    /// Required (non-zero) for every job but a state transition with a witness, where it
    /// is the largest proof (chunk) of the bundle, at most `2^log_rows` rows; omitted or
    /// 0 there: `2^17` rows (4096 segments) or `max_log_rows` if lower.
    #[schema(example = 12)]
    #[serde(default, deserialize_with = "integral::de")]
    pub log_rows: u64,
    /// `koalabear` (default) or `babybear`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// FRI preset: `standard` (default, ~100 bits) or `benchmark`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fri: Option<String>,
    /// Seed of the inputs not given in the input bytes (default 0).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "integral::de_opt"
    )]
    pub seed: Option<u64>,
    /// Input bytes, standard base64 (JSON bodies only; a raw upload sends the bytes
    /// as the body instead). For `state-transition`, an encoded transition witness
    /// (`PBTW`, up to 64 MiB; `docs/api.md`): the diff proved, instead of a seeded one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_base64: Option<String>,
    /// `auto` (default: any device of this appliance), or a backend name
    /// (`cpu`, `cuda`, `wgpu`, `opencl`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// A device id as `GET /v1/devices` lists it (e.g. `cpu:0`); default: any device
    /// of the backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Higher runs first, -1000..=1000 (default 0); equal priorities run in arrival order.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "integral::de_opt"
    )]
    pub priority: Option<i32>,
}

/// The query parameters of `POST /v1/jobs/raw` (the body is the input): the fields of
/// [`SubmitJob`] but `input_base64`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RawParams {
    /// See [`SubmitJob`].
    pub circuit: String,
    /// See [`SubmitJob`]: optional (0) only for a state transition with a witness.
    #[serde(default)]
    pub log_rows: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
}

/// A job as the API reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JobView {
    /// The job id (a UUID).
    pub id: String,
    pub status: JobStatus,
    /// While running: the prover's stage (`trace`, `commit`, `quotient`, `open`,
    /// `finish`).
    pub stage: Option<String>,
    pub circuit: String,
    pub field: String,
    pub log_rows: u8,
    pub fri: String,
    pub seed: u64,
    /// Length of the input bytes.
    pub input_bytes: u64,
    /// The backend asked for (`auto` or a name).
    pub backend: String,
    /// The device asked for, if any.
    pub device: Option<String>,
    pub priority: i32,
    /// The backend of the latest attempt.
    pub backend_used: Option<String>,
    /// The device of the latest attempt.
    pub device_used: Option<String>,
    /// Attempts started so far (a job interrupted by a crash counts one).
    pub attempts: u32,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// Start of the latest attempt.
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// Milliseconds from submission to the start of the latest attempt.
    pub queue_ms: Option<u64>,
    /// Milliseconds the latest attempt spent proving (trace generation to serialized
    /// artifact; storing excluded).
    pub proving_ms: Option<u64>,
    /// Size of the stored proof artifact.
    pub proof_bytes: Option<u64>,
    /// Why the job failed, or why the latest attempt failed before a retry.
    pub error: Option<String>,
    /// For a state transition with a witness: what its proof (a bundle) states,
    /// computed from the witness at submission; the proof is checked against it.
    #[serde(default)]
    pub statement: Option<TransitionStatementView>,
    /// While queued: why no device takes it now, when no live appliance sharing the
    /// job store has a healthy device its route, shape and size fit (it stays queued
    /// until one does; `GET /v1/fleet`).
    #[serde(default)]
    pub waiting: Option<String>,
}

/// The statement of a state-transition job with a witness, checked natively at
/// submission: the bundle the job yields proves exactly this. Digests as hex, 8 hex
/// digits per element (64 in all), no `0x`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TransitionStatementView {
    /// The state root before the diff.
    pub pre_root: String,
    /// The state root after it.
    pub post_root: String,
    /// The Poseidon2 commitment to the diff.
    pub diff_commitment: String,
    pub block_number: u64,
    /// Updates in the diff.
    pub updates: u64,
    /// Proofs (chunks) in the bundle.
    pub chunks: u32,
    /// Trace rows of the bundle's largest proof (a power of two, at most
    /// `2^log_rows`).
    pub rows_per_chunk: u64,
}

/// One page of `GET /v1/jobs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JobList {
    /// Newest first.
    pub jobs: Vec<JobView>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Query parameters of `GET /v1/jobs`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only jobs with this status.
    pub status: Option<String>,
    /// Page size, 1..=1000 (default 50).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The answer of `POST /v1/verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VerifyResult {
    pub valid: bool,
    /// Why the proof was rejected.
    pub reason: Option<String>,
    pub circuit: Option<String>,
    pub field: Option<String>,
    /// log2 of the trace rows (of a bundle's largest proof).
    pub log_rows: Option<u8>,
    /// The proof's conjectured security, computed by the verifier from its FRI
    /// parameters (of a bundle's weakest proof); also given when the proof is refused
    /// for being below the floor.
    pub conjectured_security_bits: Option<u32>,
    /// This appliance's floor (`min_security_bits`): proofs below it are refused.
    pub min_security_bits: u32,
    /// Proofs checked: 1, or the chunks of a bundle.
    pub proofs: Option<u32>,
    /// For a state transition (one proof or a bundle), the whole diff's statement.
    pub transition: Option<TransitionView>,
}

/// What a state-transition proof states; digests as hex (8 hex digits per element).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TransitionView {
    pub pre_root: String,
    pub post_root: String,
    pub diff_commitment: String,
    pub block_number: u64,
}

/// A device of a backend, and how many workers of this appliance prove on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeviceView {
    pub id: String,
    pub name: String,
    pub vendor: String,
    /// `gpu`, `accelerator`, `cpu` or `other`.
    pub device_type: String,
    pub memory_bytes: u64,
    pub compute_units: u32,
    pub fields: Vec<String>,
    pub driver: Option<String>,
    /// Workers proving on this device (0: discovered but not used by this appliance).
    pub workers: u32,
    /// `ok`, or `faulty`: the device failed its self-test, produced a proof that did
    /// not verify, or overran a job's deadline, and takes no jobs until a restart.
    pub status: String,
    /// Why the device is faulty.
    pub fault: Option<String>,
    /// The largest `log_rows` of each circuit this device takes (KoalaBear, or the
    /// circuit's first field; the standard FRI preset), by the memory estimate
    /// submissions are admitted by (`docs/api.md`); a circuit it takes at no size is
    /// absent.
    pub largest_log_rows: std::collections::BTreeMap<String, u8>,
}

/// One backend: available or not (with the reason), and its devices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BackendView {
    pub backend: String,
    pub available: bool,
    pub reason: Option<String>,
    pub devices: Vec<DeviceView>,
}

/// `GET /v1/fleet`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FleetView {
    /// The name of the appliance that answered.
    pub this_appliance: String,
    /// Every live appliance sharing the job store, the one that answered included.
    pub appliances: Vec<crate::fleet::ApplianceAd>,
}

/// `GET /v1/devices`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DevicesView {
    pub backends: Vec<BackendView>,
}

/// One circuit and its limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CircuitView {
    pub name: String,
    pub description: String,
    pub min_log_rows: u8,
    pub max_log_rows: u8,
    /// Input bytes one instance absorbs; the input may fill at most
    /// `instances(log_rows) * input_bytes_per_instance` bytes and `max_input_bytes`.
    /// A state transition absorbs none: its input, if any, is a transition witness of
    /// at most `max_input_bytes` (the diff proved instead of a seeded one).
    pub input_bytes_per_instance: u64,
    pub max_input_bytes: u64,
    pub fields: Vec<String>,
    pub fri_presets: Vec<String>,
    /// The largest `log_rows` each of this appliance's devices takes (KoalaBear, or the
    /// circuit's first field; the standard FRI preset), by the memory estimate
    /// submissions are admitted by; a device that takes none is absent.
    pub largest_log_rows_by_device: std::collections::BTreeMap<String, u8>,
}

/// `GET /v1/circuits`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CircuitsView {
    pub circuits: Vec<CircuitView>,
}

/// `GET /healthz` and `GET /readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HealthView {
    /// `ok`, `ready`, or `degraded` (ready, but some devices are faulty: `reasons`
    /// names them).
    pub status: String,
    /// What is wrong when not ready.
    pub reasons: Vec<String>,
}

/// Every error response: `{"error": {"code": ..., "message": ...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// A machine-readable code (see `docs/api.md`) and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

/// JSON integers as JSON Schema counts them: `12` and `12.0` alike.
mod integral {
    use serde::de::{Deserialize, Deserializer, Error};

    fn from_number<T: TryFrom<i128>, E: Error>(n: serde_json::Number) -> Result<T, E> {
        let v: Option<i128> = n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 1.9e19)
                    .map(|f| f as i128)
            });
        v.and_then(|v| T::try_from(v).ok())
            .ok_or_else(|| E::custom(format!("invalid value {n}: not an integer in range")))
    }

    pub fn de<'de, D: Deserializer<'de>, T: TryFrom<i128>>(d: D) -> Result<T, D::Error> {
        from_number(serde_json::Number::deserialize(d)?)
    }

    pub fn de_opt<'de, D: Deserializer<'de>, T: TryFrom<i128>>(
        d: D,
    ) -> Result<Option<T>, D::Error> {
        Option::<serde_json::Number>::deserialize(d)?
            .map(from_number)
            .transpose()
    }
}
