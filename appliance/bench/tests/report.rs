//! The report's JSON: it round-trips, it validates against the documented JSON Schema
//! (`docs/benchmarking.schema.json`), and `compare` reads it back.

use std::path::PathBuf;
use std::sync::OnceLock;

use proofbox_backend_api::{BackendKind, TransferStats};
use proofbox_backend_cpu::CpuBackend;
use proofbox_bench::compare::{Cell, compare};
use proofbox_bench::device::{BenchDevice, Opened, SkippedBackend};
use proofbox_bench::{BenchError, Report, RunConfig, SCHEMA, Status, Suite, output, run};
use proofbox_prover::Prover;
use serde_json::Value;

/// A small real report: two quick kernel workloads and the quick state workload on
/// the CPU, the quick state-transition proof, a workload skipped for memory and a
/// skipped backend.
fn report() -> &'static Report {
    static R: OnceLock<Report> = OnceLock::new();
    R.get_or_init(|| {
        let mut c = RunConfig::new(true);
        c.backends = vec![BackendKind::Cpu, BackendKind::Cuda];
        c.filters = vec![
            "kernels/lde/koalabear/*".into(),
            "kernels/commit/*".into(),
            "state/*".into(),
        ];
        c.suites = vec![Suite::Kernels, Suite::State];
        c.repetitions = 2;
        c.machine = Some("test machine".into());
        // 30 MiB of "available" memory: enough for the kernels and the 4-update
        // transition proof (~18 MB), not for `state/apply/1k` (~36 MB), which is
        // then recorded as skipped with the estimate.
        c.host_memory_limit = Some(30 << 20);
        let devices: Vec<Box<dyn BenchDevice>> = vec![Box::new(Prover::new(CpuBackend::new()))];
        let opened = Opened {
            devices,
            skipped: vec![SkippedBackend {
                backend: BackendKind::Cuda,
                device: None,
                reason: "no NVIDIA driver".into(),
            }],
        };
        run(&c, opened, &()).unwrap()
    })
}

/// A validator for the subset of JSON Schema (draft 2020-12) the schema uses: `$ref`
/// to `#/$defs/...`, `type`, `enum`, `const`, `required`, `properties`,
/// `additionalProperties`, `items`, `minimum`, `maximum`, `minLength`, `pattern`,
/// `oneOf`, `allOf`, `if`/`then`/`else`. Any other keyword fails, so the schema cannot
/// grow a rule this check silently ignores.
fn validate(root: &Value, schema: &Value, v: &Value, at: &str, errors: &mut Vec<String>) {
    const KNOWN: &[&str] = &[
        "$schema",
        "$id",
        "$defs",
        "$ref",
        "title",
        "description",
        "type",
        "enum",
        "const",
        "required",
        "properties",
        "additionalProperties",
        "items",
        "minimum",
        "maximum",
        "minLength",
        "pattern",
        "oneOf",
        "allOf",
        "if",
        "then",
        "else",
    ];
    let s = schema.as_object().expect("a schema is an object");
    for k in s.keys() {
        assert!(
            KNOWN.contains(&k.as_str()),
            "schema keyword {k} at {at} not supported"
        );
    }
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        let name = r.strip_prefix("#/$defs/").expect("local reference");
        validate(root, &root["$defs"][name], v, at, errors);
    }
    if let Some(t) = s.get("type") {
        let types: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => panic!("bad type at {at}"),
        };
        let ok = types.iter().any(|t| match *t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "integer" => v.is_u64() || v.is_i64(),
            "number" => v.is_number(),
            "boolean" => v.is_boolean(),
            "null" => v.is_null(),
            other => panic!("type {other}"),
        });
        if !ok {
            errors.push(format!("{at}: {v} is not of type {types:?}"));
            return;
        }
    }
    if let Some(e) = s.get("enum").and_then(Value::as_array)
        && !e.contains(v)
    {
        errors.push(format!("{at}: {v} not in {e:?}"));
    }
    if let Some(c) = s.get("const")
        && c != v
    {
        errors.push(format!("{at}: {v} is not {c}"));
    }
    if let Some(n) = v.as_f64() {
        if let Some(min) = s.get("minimum").and_then(Value::as_f64)
            && n < min
        {
            errors.push(format!("{at}: {n} below {min}"));
        }
        if let Some(max) = s.get("maximum").and_then(Value::as_f64)
            && n > max
        {
            errors.push(format!("{at}: {n} above {max}"));
        }
    }
    if let Some(text) = v.as_str() {
        if let Some(min) = s.get("minLength").and_then(Value::as_u64)
            && (text.chars().count() as u64) < min
        {
            errors.push(format!("{at}: shorter than {min}"));
        }
        if let Some(p) = s.get("pattern").and_then(Value::as_str)
            && !regex::Regex::new(p).unwrap().is_match(text)
        {
            errors.push(format!("{at}: {text:?} does not match {p}"));
        }
    }
    if let Some(obj) = v.as_object() {
        for r in s
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let r = r.as_str().unwrap();
            if !obj.contains_key(r) {
                errors.push(format!("{at}: missing {r}"));
            }
        }
        let props = s.get("properties").and_then(Value::as_object);
        for (k, val) in obj {
            let here = format!("{at}/{k}");
            match props.and_then(|p| p.get(k)) {
                Some(p) => validate(root, p, val, &here, errors),
                None => match s.get("additionalProperties") {
                    Some(Value::Bool(false)) => errors.push(format!("{here}: not allowed")),
                    Some(extra @ Value::Object(_)) => validate(root, extra, val, &here, errors),
                    _ => {}
                },
            }
        }
    }
    if let (Some(items), Some(arr)) = (s.get("items"), v.as_array()) {
        for (i, x) in arr.iter().enumerate() {
            validate(root, items, x, &format!("{at}/{i}"), errors);
        }
    }
    let passes = |sub: &Value| {
        let mut e = Vec::new();
        validate(root, sub, v, at, &mut e);
        e.is_empty()
    };
    if let Some(one) = s.get("oneOf").and_then(Value::as_array) {
        let n = one.iter().filter(|sub| passes(sub)).count();
        if n != 1 {
            errors.push(format!("{at}: {v} matches {n} of oneOf, not 1"));
        }
    }
    for sub in s
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        validate(root, sub, v, at, errors);
    }
    if let Some(cond) = s.get("if") {
        let branch = if passes(cond) {
            s.get("then")
        } else {
            s.get("else")
        };
        if let Some(b) = branch {
            validate(root, b, v, at, errors);
        }
    }
}

fn schema_errors(v: &Value) -> Vec<String> {
    let schema: Value = serde_json::from_str(SCHEMA).unwrap();
    let mut errors = Vec::new();
    validate(&schema, &schema, v, "", &mut errors);
    errors
}

#[test]
fn the_report_round_trips_and_matches_its_schema() {
    let r = report();
    let statuses: Vec<Status> = r.measurements.iter().map(|m| m.status).collect();
    assert!(statuses.contains(&Status::Passed) && statuses.contains(&Status::Skipped));
    let json = r.to_json();
    // Round trip: the same report, and the same text again.
    let back = Report::from_json(&json).unwrap();
    assert_eq!(&back, r);
    assert_eq!(back.to_json(), json);

    let v: Value = serde_json::from_str(&json).unwrap();
    let errors = schema_errors(&v);
    assert!(errors.is_empty(), "{errors:#?}");

    // The schema file shipped with the docs is the one compiled in.
    let docs = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/benchmarking.schema.json"),
    )
    .unwrap();
    assert_eq!(docs, SCHEMA);
}

#[test]
fn data_movement_is_zero_on_the_cpu_and_absent_without_a_backend() {
    let r = report();
    for m in r.measurements.iter().filter(|m| m.status == Status::Passed) {
        if m.workload.starts_with("state/apply") {
            assert_eq!(m.data_movement, None, "{}", m.workload);
        } else {
            assert_eq!(
                m.data_movement,
                Some(TransferStats::default()),
                "{}: the CPU backend moves nothing",
                m.workload
            );
        }
    }
}

#[test]
fn a_1_1_report_with_the_old_transfers_object_still_reads() {
    let mut v: Value = serde_json::from_str(&report().to_json()).unwrap();
    v["schema_version"] = "1.1".into();
    for m in v["measurements"].as_array_mut().unwrap() {
        let m = m.as_object_mut().unwrap();
        m.remove("data_movement");
        m.insert(
            "transfers".into(),
            serde_json::json!({ "uploads": 1, "upload_bytes": 4, "aux_uploads": 0,
                "aux_upload_bytes": 0, "readbacks": 1, "readback_bytes": 8 }),
        );
    }
    let old = Report::from_json(&v.to_string()).unwrap();
    assert!(old.measurements.iter().all(|m| m.data_movement.is_none()));
    assert_eq!(old.measurements.len(), report().measurements.len());
}

#[test]
fn the_schema_check_rejects_broken_reports() {
    let good: Value = serde_json::from_str(&report().to_json()).unwrap();
    let passed = good["measurements"]
        .as_array()
        .unwrap()
        .iter()
        .position(|m| m["status"] == "passed")
        .unwrap();
    let mut cases: Vec<(&str, Value)> = Vec::new();
    let mut v = good.clone();
    v.as_object_mut().unwrap().remove("environment");
    cases.push(("missing environment", v));
    let mut v = good.clone();
    v["measurements"][passed]["end_to_end"] = Value::Null;
    cases.push(("a pass without times", v));
    let mut v = good.clone();
    v["measurements"][passed]["status"] = "failed".into();
    cases.push(("a failure with times", v));
    let mut v = good.clone();
    v["measurements"][0]["backend"] = "tpu".into();
    cases.push(("unknown backend", v));
    let mut v = good.clone();
    v["measurements"][0]["workload"] = "kernel/lde".into();
    cases.push(("bad workload id", v));
    let mut v = good.clone();
    v["schema_version"] = "2.0".into();
    cases.push(("other schema version", v));
    let mut v = good.clone();
    v["run"]["surprise"] = true.into();
    cases.push(("unknown field", v));
    for (what, v) in cases {
        assert!(!schema_errors(&v).is_empty(), "{what} passed the schema");
    }
    // The reader refuses another major version before looking further.
    let mut v = good.clone();
    v["schema_version"] = "2.0".into();
    assert!(matches!(
        Report::from_json(&v.to_string()),
        Err(BenchError::SchemaVersion { .. })
    ));
}

#[test]
fn files_are_written_and_compare_reads_them_back() {
    let dir = tempfile::tempdir().unwrap();
    let r = report();
    let w = output::write_all(r, dir.path()).unwrap();
    for p in [&w.json, &w.csv, &w.markdown, &w.schema] {
        assert!(p.exists(), "{}", p.display());
    }
    assert!(!w.charts.is_empty());
    for c in &w.charts {
        let svg = std::fs::read_to_string(c).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.contains("polyline"),
            "{}",
            c.display()
        );
    }
    let csv = std::fs::read_to_string(&w.csv).unwrap();
    assert_eq!(csv.lines().count(), r.measurements.len() + 1);
    assert_eq!(csv.lines().next().unwrap(), output::CSV_COLUMNS.join(","));
    let md = std::fs::read_to_string(&w.markdown).unwrap();
    assert!(md.contains("# ProofBox benchmark: test machine"));
    assert!(md.contains("state/transition/4"));
    assert!(md.contains("- cuda: no NVIDIA driver"));

    // A second machine, twice as slow on every passed measurement.
    let mut slow = r.clone();
    slow.environment.machine = "slow machine".into();
    for m in &mut slow.measurements {
        if let Some(s) = &mut m.end_to_end {
            s.median_s *= 2.0;
        }
    }
    let b = dir.path().join("slow.json");
    std::fs::write(&b, slow.to_json()).unwrap();
    let c = proofbox_bench::compare::compare_files(&[w.json.clone(), b]).unwrap();
    assert_eq!(c.labels, ["test machine", "slow machine"]);
    assert_eq!(c.rows.len(), r.measurements.len());
    for row in &c.rows {
        match row.cells[0] {
            Cell::Median(_) => assert!((row.ratio(1).unwrap() - 0.5).abs() < 1e-9),
            Cell::Skipped => assert!(row.ratio(1).is_none()),
            other => panic!("{other:?}"),
        }
    }
    assert!(c.text().contains("ratio test machine/slow machine"));
    let [md, csv] = c.write(dir.path()).unwrap();
    assert!(std::fs::read_to_string(md).unwrap().contains("| 0.50 |"));
    assert!(std::fs::read_to_string(csv).unwrap().contains(",0.5"));
    assert!(matches!(
        compare(&[(PathBuf::from("a"), r.clone())]),
        Err(BenchError::CompareInputs { got: 1 })
    ));
}

/// A stop requested during a run (what Ctrl-C does): the workload in progress finishes,
/// no later one starts, and the report says it was interrupted and still validates.
#[test]
fn a_stopped_run_keeps_what_it_measured() {
    use std::sync::atomic::{AtomicBool, Ordering};

    use proofbox_bench::{Event, run_until};

    let mut c = RunConfig::new(true);
    c.backends = vec![BackendKind::Cpu];
    c.suites = vec![Suite::Kernels];
    c.repetitions = 1;
    let planned = c.workloads().len();
    assert!(planned > 2);
    let stop = AtomicBool::new(false);
    let observer = |e: Event<'_>| {
        if let Event::Done(_) = e {
            stop.store(true, Ordering::SeqCst);
        }
    };
    let opened = Opened {
        devices: vec![Box::new(Prover::new(CpuBackend::new()))],
        skipped: Vec::new(),
    };
    let r = run_until(&c, opened, &observer, &stop).unwrap();
    assert!(r.run.interrupted);
    assert_eq!(r.measurements.len(), 1, "only the first workload ran");
    assert_eq!(r.measurements[0].status, Status::Passed);
    let v: Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(v["run"]["interrupted"], true);
    let errors = schema_errors(&v);
    assert!(errors.is_empty(), "{errors:#?}");
    let md = output::markdown(&r, &[]);
    assert!(md.contains("**Interrupted**"), "{md}");
    // A report written before the field existed reads as not interrupted.
    let mut old = v.clone();
    old["run"].as_object_mut().unwrap().remove("interrupted");
    assert!(!Report::from_json(&old.to_string()).unwrap().run.interrupted);
    assert!(!report().run.interrupted);
}
