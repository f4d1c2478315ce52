//! `proofbox bench --quick` through the real binary on every backend CI has: the CPU,
//! and OpenCL (PoCL) and wgpu (lavapipe) where present. A missing device is skipped
//! with a `skipped: ...` line, or fails with `PROOFBOX_REQUIRE_<KIND>=1` (CI sets it).

use std::path::Path;
use std::process::{Command, Output};

use proofbox_prover::BackendKind;
use proofbox_prover::registry;

fn proofbox(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_proofbox"))
        .args(args)
        .output()
        .expect("run proofbox")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The device backends to run besides the CPU.
fn device_backends() -> Vec<BackendKind> {
    let mut kinds = Vec::new();
    for kind in [BackendKind::Opencl, BackendKind::Wgpu] {
        let report = registry::report(kind);
        if report.available {
            kinds.push(kind);
            continue;
        }
        proofbox_conformance::require_or_skip(
            kind,
            format_args!("bench --quick on {kind}"),
            report.reason.unwrap_or_default(),
        );
    }
    kinds
}

#[test]
fn quick_runs_on_every_backend_present_and_every_check_passes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut backends = vec!["cpu".to_string()];
    backends.extend(device_backends().iter().map(|k| k.name().to_string()));
    let backends = backends.join(",");
    let o = proofbox(&[
        "bench",
        "--quick",
        "--backend",
        &backends,
        "--out",
        out.to_str().unwrap(),
    ]);
    let stderr = text(&o.stderr);
    assert!(o.status.success(), "{stderr}\n{}", text(&o.stdout));
    assert!(text(&o.stdout).contains(" 0 failed"), "{}", text(&o.stdout));

    for f in [
        "results.json",
        "results.csv",
        "summary.md",
        "results.schema.json",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let charts: Vec<_> = std::fs::read_dir(out.join("charts"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(
        charts
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "svg"))
    );

    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(v["schema_version"], "1.2");
    assert_eq!(v["run"]["quick"], true);
    let ms = v["measurements"].as_array().unwrap();
    for m in ms {
        match m["status"].as_str().unwrap() {
            "passed" => {
                let e2e = m["end_to_end"]["median_s"].as_f64().unwrap();
                assert!(e2e > 0.0);
                // Every backend CI has measures kernel time; the state tree has none.
                let device = &m["device_time"];
                if m["operation"] == "apply" {
                    assert!(device.is_null(), "{}: {device}", m["workload"]);
                } else {
                    let t = device["median_s"].as_f64().unwrap_or_else(|| {
                        panic!("{} on {}: no device time", m["workload"], m["device"])
                    });
                    let slack = 1e-3;
                    assert!(
                        t > 0.0 && t <= m["end_to_end"]["max_s"].as_f64().unwrap() + slack,
                        "{} on {}: device {t} s, end to end {e2e} s",
                        m["workload"],
                        m["device"]
                    );
                }
            }
            other => panic!(
                "{} on {}: {other}: {}",
                m["workload"], m["device"], m["reason"]
            ),
        }
    }
    // Every backend asked for measured every kernel and proof workload.
    for b in backends.split(',') {
        let passed = ms
            .iter()
            .filter(|m| m["backend"] == b && m["status"] == "passed")
            .count();
        assert!(passed >= 7, "{b}: {passed} passed");
    }
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), ms.len() + 1);

    // compare reads the report back (against itself: every ratio is 1).
    let json = out.join("results.json");
    let cmp = dir.path().join("cmp");
    let o = proofbox(&[
        "bench",
        "compare",
        json.to_str().unwrap(),
        json.to_str().unwrap(),
        "--out",
        cmp.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("1.00"));
    assert!(Path::new(&cmp.join("compare.md")).is_file());
    assert!(Path::new(&cmp.join("compare.csv")).is_file());
}

#[test]
fn a_backend_without_a_device_is_named_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    // CUDA has no device here (CI machines have no NVIDIA driver); if one day it does,
    // this run measures it instead, and only the listing is checked.
    let o = proofbox(&[
        "bench",
        "--backend",
        "cuda",
        "--quick",
        "--only",
        "kernels/lde/koalabear/*",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    if !registry::report(BackendKind::Cuda).available {
        assert_eq!(o.status.code(), Some(1));
        let stderr = text(&o.stderr);
        assert!(stderr.contains("skipped cuda: "), "{stderr}");
        assert!(
            stderr.contains("error: no device to measure: cuda: "),
            "{stderr}"
        );
    }
    let list = proofbox(&["bench", "--list", "--suite", "state"]);
    assert!(list.status.success());
    assert_eq!(
        text(&list.stdout),
        "state/apply/1k\nstate/apply/10k\nstate/transition/1k\nstate/transition/10k\n"
    );
    let bad = proofbox(&["bench", "--backend", "tpu"]);
    assert_eq!(bad.status.code(), Some(2));
}

/// Ctrl-C (SIGINT) mid-run: the workload in progress finishes, the files are written
/// with what was measured and marked interrupted, and the exit status is 130.
#[test]
fn ctrl_c_writes_the_measurements_made_so_far() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    use std::time::Duration;

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    // The standard proof suite on the CPU runs for many minutes; CUDA (absent on CI
    // machines) is asked for so that its "skipped" line says the run has started.
    let mut child = Command::new(env!("CARGO_BIN_EXE_proofbox"))
        .args([
            "bench",
            "--backend",
            "cpu,cuda",
            "--suite",
            "proofs",
            "--out",
        ])
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap();
            let _ = tx.send(line.clone());
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    if registry::report(BackendKind::Cuda).available {
        std::thread::sleep(Duration::from_secs(5));
    } else {
        loop {
            let line = rx.recv_timeout(Duration::from_secs(120)).unwrap();
            if line.starts_with("skipped cuda") {
                break;
            }
        }
        // The first workload (several seconds of proofs) is usually under way by
        // now; if it is not, the run stops before it, which is also a stop.
        std::thread::sleep(Duration::from_secs(2));
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    let stderr = reader.join().unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(v["run"]["interrupted"], true);
    let ms = v["measurements"].as_array().unwrap();
    // Stopped early: the library test checks that the workload in progress finishes.
    assert!(ms.len() < 42, "{} measurements", ms.len());
    for m in ms {
        assert_eq!(m["status"], "passed", "{m}");
    }
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("**Interrupted**"));
}
