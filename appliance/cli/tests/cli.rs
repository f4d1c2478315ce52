//! The `proofbox` binary end to end: exit codes, one-line errors, JSON output.

use std::path::PathBuf;
use std::process::{Command, Output};

fn proofbox(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_proofbox"))
        .args(args)
        .output()
        .expect("run proofbox")
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("proofbox-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn devices_lists_every_backend() {
    let o = proofbox(&["devices", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<_> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["backend"].as_str().unwrap().to_string())
        .collect();
    for b in ["cpu", "cuda", "wgpu", "opencl"] {
        assert!(names.contains(&b.to_string()), "{b} missing from {names:?}");
    }
    let cpu = v
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["backend"] == "cpu")
        .unwrap();
    assert_eq!(cpu["available"], true);
    for r in v
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["available"] == false)
    {
        assert!(!r["reason"].as_str().unwrap().is_empty());
    }
    let text = proofbox(&["devices"]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("cpu:0"));
}

#[test]
fn prove_then_verify_and_reject_tampering() {
    let out = tmp("blake3.bin");
    let o = proofbox(&[
        "prove",
        "--circuit",
        "blake3",
        "--log-rows",
        "4",
        "--field",
        "babybear",
        "--backend",
        "cpu",
        "--out",
        out.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["device"], "cpu:0");
    assert_eq!(v["circuit"], "blake3");

    // `prove` verified the proof before writing it.
    assert_eq!(v["verified"], true);

    let ok = proofbox(&["verify", out.to_str().unwrap(), "--json"]);
    assert!(ok.status.success());
    let v: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["conjectured_security_bits"], 100);
    assert_eq!(v["min_security_bits"], 100);

    // The floor is the verifier's: the same proof fails a stricter one, naming both
    // figures, and a floor no proof can reach is a usage error.
    let o = proofbox(&[
        "verify",
        out.to_str().unwrap(),
        "--min-security-bits",
        "110",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("100 bits") && err.contains("110 bits"),
        "{err}"
    );
    let o = proofbox(&[
        "verify",
        out.to_str().unwrap(),
        "--min-security-bits",
        "200",
    ]);
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("200"), "{}", stderr(&o));

    let mut bytes = std::fs::read(&out).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    let bad = tmp("tampered.bin");
    std::fs::write(&bad, &bytes).unwrap();
    let o = proofbox(&["verify", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.starts_with("error: ") && err.trim_end().lines().count() == 1,
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");

    let o = proofbox(&["verify", bad.to_str().unwrap(), "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["valid"], false);

    std::fs::write(&bad, b"not a proof").unwrap();
    let o = proofbox(&["verify", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("bad magic"), "{}", stderr(&o));
}

#[test]
fn bad_arguments_fail_cleanly() {
    let cases: &[(&[&str], i32, &str)] = &[
        (
            &[
                "prove",
                "--circuit",
                "sha256",
                "--log-rows",
                "4",
                "--out",
                "x",
            ],
            2,
            "unknown circuit",
        ),
        (
            &[
                "prove",
                "--circuit",
                "keccak",
                "--log-rows",
                "40",
                "--out",
                "x",
            ],
            1,
            "supported range 5..=20",
        ),
        (
            &[
                "prove",
                "--circuit",
                "keccak",
                "--log-rows",
                "6",
                "--field",
                "goldilocks",
                "--out",
                "x",
            ],
            2,
            "unknown field",
        ),
        (
            &[
                "prove",
                "--circuit",
                "keccak",
                "--log-rows",
                "6",
                "--backend",
                "tpu",
                "--out",
                "x",
            ],
            2,
            "unknown backend",
        ),
        (
            &[
                "prove",
                "--circuit",
                "keccak",
                "--log-rows",
                "6",
                "--device",
                "cpu:9",
                "--out",
                "x",
            ],
            1,
            "unknown device",
        ),
        (&["verify", "/nonexistent/proof.bin"], 1, "No such file"),
    ];
    for (args, code, needle) in cases {
        let o = proofbox(args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(*code), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn opencl_binaries_are_checked() {
    let garbage = tmp("garbage.aocx");
    std::fs::write(&garbage, b"not a program binary").unwrap();
    let garbage = garbage.to_str().unwrap();
    let prove = |extra: &[&str]| {
        let mut args = vec!["prove", "--circuit", "poseidon2", "--log-rows", "4"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--out", "x"]);
        proofbox(&args)
    };
    let cases: &[(&[&str], &str)] = &[
        (
            &["--opencl-binary", "/nonexistent/k.aocx"],
            "OpenCL binary /nonexistent/k.aocx: No such file",
        ),
        (
            &["--backend", "cpu", "--opencl-binary", garbage],
            "applies to the opencl backend, not cpu",
        ),
        // Refused by the driver where OpenCL is installed, unavailable elsewhere:
        // either way one line naming OpenCL, never a panic.
        (&["--opencl-binary", garbage], "opencl"),
    ];
    for (extra, needle) in cases {
        let o = prove(extra);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{extra:?}: {err}");
        assert!(err.contains(needle), "{extra:?}: {err}");
        assert!(!err.contains("panicked"), "{extra:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{extra:?}: {err}");
    }
}

#[test]
fn verify_checks_bundles_and_refuses_a_chunk_alone() {
    use std::sync::Arc;

    use proofbox_prover::transition::{TransitionInput, TransitionProof};
    use proofbox_prover::{BackendChoice, BackendKind, FriPreset, registry};

    let prover = registry::open(BackendChoice::Kind(BackendKind::Cpu), Some("cpu:0")).unwrap();
    let (mut tree, diff) = proofbox_state::workload::random_transition(5, 20, 3);
    let chunks = TransitionInput::build_chunks(&mut tree, diff, 9, 2);
    assert_eq!(chunks.len(), 2);
    let bundle = prover
        .prove_transition_chunks(&chunks, FriPreset::Standard, Arc::new(()))
        .unwrap();
    let path = tmp("bundle.bin");
    std::fs::write(&path, bundle.to_bytes()).unwrap();
    let o = proofbox(&["verify", path.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["proofs"], 2);
    assert_eq!(v["transition"]["block_number"], 9);

    // The second chunk alone is a valid proof of no diff: refused.
    let alone = tmp("chunk.bin");
    std::fs::write(&alone, bundle.chunks[1].to_bytes()).unwrap();
    let o = proofbox(&["verify", alone.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("bundle"), "{}", stderr(&o));
    // A bundle with its chunks swapped does not chain.
    let swapped = TransitionProof {
        chunks: vec![bundle.chunks[1].clone(), bundle.chunks[0].clone()],
    };
    std::fs::write(&path, swapped.to_bytes()).unwrap();
    let o = proofbox(&["verify", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
}
