//! What the handlers check but `utoipa`'s annotations cannot say, written into the
//! document: enums of the strings the service restricts (circuits, fields, FRI presets,
//! statuses, and this appliance's backends and devices), minimum and maximum of every
//! number, patterns of cursors, idempotency keys and base64, the per-circuit limits of
//! `log_rows` and `field` (`if`/`then`), and the errors every route can get from the
//! HTTP layer (408, 414, 431, 500, 503).

use proofbox_backend_api::FieldId;
use proofbox_prover::circuits::MAX_INPUT_BYTES;
use proofbox_prover::{CircuitId, FriPreset};

use crate::transition::MAX_WITNESS_BYTES;
use serde_json::{Value, json};
use utoipa::OpenApi;

use super::super::AppState;
use super::super::jobs::{MAX_CURSOR_DIGITS, MAX_IDEMPOTENCY_KEY_LEN, MAX_LIST_LIMIT};
use super::ApiDoc;
use crate::store::{MAX_PRIORITY, MIN_PRIORITY};
use crate::types::JobStatus;

/// Canonical standard base64 (padded, zero trailing bits), as the service decodes it.
const BASE64: &str =
    "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?$";

/// The responses any route can get from the layers and the accept loop.
const COMMON: [(&str, &str); 5] = [
    (
        "408",
        "`request_timeout`: the request took longer than `request_timeout_secs`",
    ),
    ("414", "`uri_too_long`"),
    ("431", "`headers_too_large`"),
    ("500", "`internal`: a bug or a store failure (logged)"),
    (
        "503",
        "`too_many_connections`, `store_unavailable`, or another reason in the code",
    ),
];

/// The document served at `/openapi.json`.
pub fn document(state: &AppState) -> Result<Value, serde_json::Error> {
    let mut doc = serde_json::to_value(ApiDoc::openapi())?;
    let cfg = &state.inner.config;
    let cap = cfg.max_log_rows;
    let circuits: Vec<CircuitId> = CircuitId::ALL
        .into_iter()
        .filter(|c| c.min_log_rows() <= cap)
        .collect();
    let max_rows = circuits
        .iter()
        .map(|c| c.max_log_rows().min(cap))
        .max()
        .unwrap_or(0);
    let slots = &state.inner.slots;
    let mut backends = vec!["auto".to_string()];
    for s in slots {
        if !backends.iter().any(|b| b == s.kind.name()) {
            backends.push(s.kind.name().to_string());
        }
    }
    let names = |v: Vec<&str>| Value::from(v);
    let field = names(FieldId::ALL.iter().map(|f| f.name()).collect());
    let fri = names(FriPreset::ALL.iter().map(|f| f.name()).collect());
    let circuit = names(circuits.iter().map(|c| c.name()).collect());
    let device = Value::from(slots.iter().map(|s| s.id.clone()).collect::<Vec<_>>());
    let backend = Value::from(backends);
    // Properties of a job, by name: the JSON body and the raw route's query.
    let limits = |name: &str, nullable: bool| -> Option<Value> {
        let with_null = |v: &Value| {
            let mut v = v.as_array().cloned().unwrap_or_default();
            if nullable {
                v.push(Value::Null);
            }
            Value::from(v)
        };
        Some(match name {
            "circuit" => json!({ "enum": circuit }),
            // 0 (or absent): derived, for a state transition with a witness only
            // (`per_circuit` requires it of every other job).
            "log_rows" => json!({ "minimum": 0, "maximum": max_rows }),
            "field" => json!({ "enum": with_null(&field) }),
            "fri" => json!({ "enum": with_null(&fri) }),
            "backend" => json!({ "enum": with_null(&backend) }),
            "device" => json!({ "enum": with_null(&device) }),
            "seed" => json!({ "minimum": 0, "maximum": u64::MAX }),
            "priority" => json!({ "minimum": MIN_PRIORITY, "maximum": MAX_PRIORITY }),
            "input_base64" => json!({
                "pattern": BASE64,
                "maxLength": MAX_INPUT_BYTES.max(MAX_WITNESS_BYTES).div_ceil(3) * 4,
            }),
            _ => return None,
        })
    };

    if let Some(props) = doc.pointer_mut("/components/schemas/SubmitJob/properties")
        && let Some(props) = props.as_object_mut()
    {
        for (name, schema) in props.iter_mut() {
            if let Some(extra) = limits(name, name != "circuit" && name != "log_rows") {
                merge(schema, extra);
            }
        }
    }
    if let Some(job) = doc.pointer_mut("/components/schemas/SubmitJob")
        && let Some(job) = job.as_object_mut()
    {
        job.insert("allOf".into(), Value::from(per_circuit(&circuits, cap)));
    }
    let status = {
        let mut v: Vec<&str> = JobStatus::ALL.iter().map(|s| s.name()).collect();
        v.push("");
        names(v)
    };
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for (method, op) in item.iter_mut() {
                for p in op
                    .get_mut("parameters")
                    .and_then(Value::as_array_mut)
                    .into_iter()
                    .flatten()
                {
                    let name = p.get("name").and_then(Value::as_str).unwrap_or_default();
                    let extra = match (path.as_str(), name) {
                        (_, "Idempotency-Key") => Some(json!({
                            "type": "string",
                            "pattern": format!("^[ -~]{{1,{MAX_IDEMPOTENCY_KEY_LEN}}}$"),
                        })),
                        ("/v1/jobs", "status") => Some(json!({ "enum": status })),
                        ("/v1/jobs", "limit") => {
                            Some(json!({ "minimum": 1, "maximum": MAX_LIST_LIMIT }))
                        }
                        ("/v1/jobs", "cursor") => Some(json!({
                            "pattern": format!("^[0-9]{{0,{MAX_CURSOR_DIGITS}}}$"),
                        })),
                        ("/v1/jobs/raw", n) => limits(n, false),
                        _ => None,
                    };
                    if let (Some(extra), Some(schema)) = (extra, p.get_mut("schema")) {
                        merge(schema, extra);
                    }
                }
                if path == "/v1/verify"
                    && method == "post"
                    && let Some(body) = op.get_mut("requestBody")
                {
                    // An empty body is answered 200 `valid: false`.
                    body["required"] = Value::Bool(false);
                }
                if let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) {
                    // A response object needs a description.
                    for r in responses.values_mut() {
                        if let Some(r) = r.as_object_mut() {
                            r.entry("description")
                                .or_insert_with(|| "See `ErrorBody`".into());
                        }
                    }
                    for (status, description) in COMMON {
                        responses.entry(status).or_insert_with(|| {
                            json!({
                                "description": description,
                                "content": { "application/json": {
                                    "schema": { "$ref": "#/components/schemas/ErrorBody" }
                                } }
                            })
                        });
                    }
                }
            }
        }
    }
    Ok(doc)
}

/// `if circuit is c then log_rows and field are within c's limits`, per circuit:
/// `log_rows` required, but for a state transition with a witness (a non-empty
/// `input_base64`), where 0 means derived; the input within what the circuit absorbs at
/// that size, or a witness of at most [`MAX_WITNESS_BYTES`].
fn per_circuit(circuits: &[CircuitId], cap: u8) -> Vec<Value> {
    let is = |c: CircuitId| json!({ "properties": { "circuit": { "const": c.name() } }, "required": ["circuit"] });
    circuits
        .iter()
        .map(|&c| {
            let mut fields: Vec<Value> = c.fields().iter().map(|f| f.name().into()).collect();
            fields.push(Value::Null);
            let range = json!({ "minimum": c.min_log_rows(), "maximum": c.max_log_rows().min(cap) });
            if c == CircuitId::StateTransition {
                return json!({
                    "if": is(c),
                    "then": { "properties": {
                        "log_rows": { "anyOf": [{ "const": 0 }, range] },
                        "field": { "enum": fields },
                        "input_base64": base64_at_most(MAX_WITNESS_BYTES)
                    } }
                });
            }
            json!({
                "if": is(c),
                "then": { "properties": { "log_rows": range, "field": { "enum": fields } }, "required": ["log_rows"] }
            })
        })
        .chain(
            circuits
                .iter()
                .filter(|&&c| c == CircuitId::StateTransition)
                .map(|&c| {
                    // The seeded workload (no witness) needs its size.
                    json!({
                        "if": {
                            "properties": {
                                "circuit": { "const": c.name() },
                                "input_base64": { "anyOf": [{ "type": "null" }, { "type": "string", "maxLength": 0 }] }
                            },
                            "required": ["circuit"]
                        },
                        "then": {
                            "properties": { "log_rows": { "minimum": c.min_log_rows(), "maximum": c.max_log_rows().min(cap) } },
                            "required": ["log_rows"]
                        }
                    })
                }),
        )
        .chain(
            circuits
                .iter()
                .filter(|&&c| c != CircuitId::StateTransition)
                .flat_map(|&c| {
                    (c.min_log_rows()..=c.max_log_rows().min(cap)).map(move |r| {
                        let n = (c.instances(r) * c.input_bytes_per_instance()).min(MAX_INPUT_BYTES);
                        json!({
                            "if": {
                                "properties": { "circuit": { "const": c.name() }, "log_rows": { "const": r } },
                                "required": ["circuit", "log_rows"]
                            },
                            "then": { "properties": { "input_base64": base64_at_most(n) } }
                        })
                    })
                }),
        )
        .collect()
}

/// Canonical base64 of at most `n` bytes (or null): whole groups, or one more group
/// padded enough to stay within `n`.
fn base64_at_most(n: usize) -> Value {
    let whole = n / 3 * 4;
    match n % 3 {
        0 => json!({ "anyOf": [{ "type": "null" }, { "type": "string", "maxLength": whole }] }),
        r => json!({ "anyOf": [
            { "type": "null" },
            { "type": "string", "maxLength": whole },
            { "type": "string", "maxLength": whole + 4, "pattern": if r == 1 { "==$" } else { "=$" } }
        ] }),
    }
}

/// Adds the keys of `extra` to the object `schema`.
fn merge(schema: &mut Value, extra: Value) {
    if let (Some(s), Value::Object(extra)) = (schema.as_object_mut(), extra) {
        for (k, v) in extra {
            s.insert(k, v);
        }
    }
}
