//! The service as a real process: `proofbox serve` on a free loopback port, driven
//! over HTTP and by `proofbox submit`/`status`; killed with SIGKILL and restarted on
//! the same data directory; stopped with SIGTERM.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use proofbox_prover::verify_bytes;
use reqwest::blocking::Client;

const KEY: &str = "service-test-key-0123456789";

fn proofbox(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_proofbox"))
        .args(args)
        .env_remove("PROOFBOX_API_KEY")
        .env_remove("PROOFBOX_SERVER")
        .output()
        .expect("run proofbox")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http() -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// A `proofbox serve` process; killed when dropped.
struct Server {
    child: Child,
    url: String,
    dir: PathBuf,
}

impl Server {
    /// Starts the service on `dir` (the config file and logs live there too) and
    /// waits until `/readyz` answers 200.
    fn start(dir: &Path, port: u16, extra_config: &str) -> Self {
        let config = dir.join("proofbox.toml");
        std::fs::write(
            &config,
            format!("api_keys = [\"{KEY}\"]\ndevices = [\"cpu:0\"]\n{extra_config}"),
        )
        .unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("server.log"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_proofbox"))
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(dir.join("data"))
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start proofbox serve");
        let mut server = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            dir: dir.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        let client = http();
        loop {
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("server exited with {status}: {}", server.log());
            }
            if let Ok(r) = client.get(format!("{}/readyz", server.url)).send()
                && r.status().is_success()
            {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "server not ready: {}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    fn get(&self, path: &str) -> reqwest::blocking::Response {
        http()
            .get(format!("{}{path}", self.url))
            .bearer_auth(KEY)
            .send()
            .unwrap()
    }

    fn job(&self, id: &str) -> serde_json::Value {
        self.get(&format!("/v1/jobs/{id}")).json().unwrap()
    }

    fn submit(&self, body: serde_json::Value) -> String {
        let r = http()
            .post(format!("{}/v1/jobs", self.url))
            .bearer_auth(KEY)
            .json(&body)
            .send()
            .unwrap();
        assert_eq!(r.status(), 202);
        let v: serde_json::Value = r.json().unwrap();
        v["id"].as_str().unwrap().to_string()
    }

    /// Polls until the job has `status` (bounded; a stuck job fails the test).
    fn wait_for(&self, id: &str, status: &str) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let job = self.job(id);
            if job["status"] == status {
                return job;
            }
            let terminal = ["succeeded", "failed", "cancelled"];
            assert!(
                !terminal.contains(&job["status"].as_str().unwrap()),
                "waiting for {status}: {job}"
            );
            assert!(Instant::now() < deadline, "job {id} stuck: {job}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn proof(&self, id: &str) -> Vec<u8> {
        let r = self.get(&format!("/v1/jobs/{id}/proof"));
        assert_eq!(r.status(), 200);
        r.bytes().unwrap().to_vec()
    }

    fn sigkill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Sends SIGTERM and returns once the process has exited cleanly.
    fn sigterm(mut self) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{status}: {}", self.log());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn submit_wait_download_verify_with_the_real_binary() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), free_port(), "");
    let out = dir.path().join("proof.bin");

    let o = proofbox(&[
        "submit",
        "--server",
        &server.url,
        "--api-key",
        KEY,
        "--circuit",
        "poseidon2",
        "--log-rows",
        "8",
        "--field",
        "babybear",
        "--wait",
        "--out",
        out.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let job: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(job["status"], "succeeded");
    assert_eq!(job["device_used"], "cpu:0");
    let id = job["id"].as_str().unwrap();

    let o = proofbox(&["verify", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read(&out).unwrap(), server.proof(id));

    let o = Command::new(env!("CARGO_BIN_EXE_proofbox"))
        .args(["status", id, "--server", &server.url])
        .env("PROOFBOX_API_KEY", KEY)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains(&format!("{id} succeeded")), "{text}");

    // Without --wait: the id alone, then the job runs.
    let o = proofbox(&[
        "submit",
        "--server",
        &server.url,
        "--api-key",
        KEY,
        "--circuit",
        "blake3",
        "--log-rows",
        "4",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let id2 = String::from_utf8_lossy(&o.stdout).trim().to_string();
    server.wait_for(&id2, "succeeded");
    verify_bytes(&server.proof(&id2)).unwrap();

    // Errors: one line, non-zero exit, no panic.
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "submit",
                "--server",
                &server.url,
                "--api-key",
                KEY,
                "--circuit",
                "poseidon2",
                "--log-rows",
                "40",
            ],
            "supported range 3..=20",
        ),
        (
            &[
                "submit",
                "--server",
                &server.url,
                "--api-key",
                "wrong-key-0123456789",
                "--circuit",
                "poseidon2",
                "--log-rows",
                "8",
            ],
            "401",
        ),
        (
            &[
                "submit",
                "--server",
                &server.url,
                "--circuit",
                "poseidon2",
                "--log-rows",
                "8",
            ],
            "--api-key",
        ),
        (
            &[
                "submit",
                "--server",
                &server.url,
                "--api-key",
                KEY,
                "--circuit",
                "poseidon2",
                "--log-rows",
                "8",
                "--device",
                "cpu:5",
            ],
            "unknown device",
        ),
        (
            &[
                "status",
                "no-such-job",
                "--server",
                &server.url,
                "--api-key",
                KEY,
            ],
            "404",
        ),
        (
            &[
                "status",
                "x",
                "--server",
                "http://127.0.0.1:1",
                "--api-key",
                KEY,
            ],
            "contacting",
        ),
    ];
    for (args, needle) in cases {
        let o = proofbox(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(
            err.starts_with("error: ") && err.trim_end().lines().count() == 1,
            "{err}"
        );
    }

    // A state-transition witness file: proved as a bundle of chained proofs, which
    // `submit` verifies before writing and `verify` takes; no --log-rows needed.
    let (mut tree, diff) = proofbox_state::workload::random_transition(5, 16, 3);
    let tw = tree.transition_witness(&diff, 9, &proofbox_prover::transition::padding_key());
    let witness = dir.path().join("block-9.pbtw");
    std::fs::write(&witness, tw.to_bytes()).unwrap();
    let bundle = dir.path().join("block-9.proof");
    let o = proofbox(&[
        "submit",
        "--server",
        &server.url,
        "--api-key",
        KEY,
        "--circuit",
        "state-transition",
        "--input",
        witness.to_str().unwrap(),
        "--wait",
        "--out",
        bundle.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let job: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let hex = proofbox_prover::transition::digest_hex;
    assert_eq!(job["statement"]["post_root"], hex(&tree.root()), "{job}");
    assert_eq!(job["statement"]["block_number"], 9, "{job}");
    let o = proofbox(&["verify", bundle.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["transition"]["diff_commitment"],
        hex(&diff.commitment()),
        "{v}"
    );
    // Not a witness: the service's reason, on one line.
    std::fs::write(&witness, b"not a witness").unwrap();
    let o = proofbox(&[
        "submit",
        "--server",
        &server.url,
        "--api-key",
        KEY,
        "--circuit",
        "state-transition",
        "--input",
        witness.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("invalid_witness") || err.contains("witness"),
        "{err}"
    );
    assert!(err.trim_end().lines().count() == 1, "{err}");
    // Anything else still needs its size.
    let o = proofbox(&[
        "submit",
        "--server",
        &server.url,
        "--api-key",
        KEY,
        "--circuit",
        "poseidon2",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("--log-rows is required"), "{err}");

    // The server refuses absurd sizes itself, with the limit, as JSON.
    let r = http()
        .post(format!("{}/v1/jobs", server.url))
        .bearer_auth(KEY)
        .json(&serde_json::json!({"circuit": "poseidon2", "log_rows": 40}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 422);
    let e: serde_json::Value = r.json().unwrap();
    assert!(
        e["error"]["message"].as_str().unwrap().contains("3..=20"),
        "{e}"
    );

    server.sigterm();
}

#[test]
fn nothing_is_lost_across_kill_9_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = Server::start(dir.path(), port, "");

    // A proof written before the crash.
    let before = server.submit(serde_json::json!({"circuit": "poseidon2", "log_rows": 8}));
    server.wait_for(&before, "succeeded");
    let before_proof = server.proof(&before);

    // A long job, killed while it runs, and queued jobs killed before they run.
    let long =
        server.submit(serde_json::json!({"circuit": "poseidon2", "log_rows": 15, "seed": 1}));
    server.wait_for(&long, "running");
    let queued: Vec<String> = (0..3)
        .map(|i| {
            server.submit(serde_json::json!({"circuit": "keccak", "log_rows": 6 + i, "seed": i}))
        })
        .collect();
    server.sigkill();

    let server = Server::start(dir.path(), port, "");
    assert!(server.log().contains("queued again"), "{}", server.log());
    assert_eq!(server.proof(&before), before_proof);
    let job = server.wait_for(&long, "succeeded");
    assert_eq!(job["attempts"], 2, "{job}");
    verify_bytes(&server.proof(&long)).unwrap();
    for id in &queued {
        let job = server.wait_for(id, "succeeded");
        assert_eq!(job["attempts"], 1, "{job}");
        let a = verify_bytes(&server.proof(id)).unwrap();
        assert_eq!(a.circuit.name(), "keccak");
    }
    let list: serde_json::Value = server.get("/v1/jobs?status=succeeded").json().unwrap();
    assert_eq!(list["jobs"].as_array().unwrap().len(), 5);
    server.sigkill();
}

#[test]
fn sigterm_requeues_a_running_job_without_counting_the_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // No grace: a running proof is put back in the queue at once.
    let server = Server::start(dir.path(), port, "shutdown_grace_secs = 0\n");
    let id = server.submit(serde_json::json!({"circuit": "poseidon2", "log_rows": 15, "seed": 2}));
    server.wait_for(&id, "running");
    server.sigterm();

    let server = Server::start(dir.path(), port, "");
    let job = server.wait_for(&id, "succeeded");
    assert_eq!(job["attempts"], 1, "{job}");
    verify_bytes(&server.proof(&id)).unwrap();
    server.sigterm();
}

#[test]
fn an_empty_store_file_is_refused_unless_init() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("jobs.redb"), b"").unwrap();
    let config = dir.path().join("proofbox.toml");
    std::fs::write(
        &config,
        format!("api_keys = [\"{KEY}\"]\ndevices = [\"cpu:0\"]\n"),
    )
    .unwrap();
    let serve = |init: bool| {
        let mut args = vec![
            "serve".to_string(),
            "--listen".into(),
            format!("127.0.0.1:{}", free_port()),
            "--data-dir".into(),
            data.display().to_string(),
            "--config".into(),
            config.display().to_string(),
        ];
        if init {
            args.push("--init".into());
        }
        Command::new(env!("CARGO_BIN_EXE_proofbox"))
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let refused = serve(false).wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(
        stderr.contains("jobs.redb") && stderr.contains("empty") && stderr.contains("--init"),
        "{stderr}"
    );
    assert_eq!(std::fs::metadata(data.join("jobs.redb")).unwrap().len(), 0);

    // With --init it starts (and is stopped here once it serves).
    let mut child = serve(true);
    let deadline = Instant::now() + Duration::from_secs(120);
    while std::fs::metadata(data.join("jobs.redb")).map_or(0, |m| m.len()) == 0 {
        assert!(child.try_wait().unwrap().is_none(), "serve --init exited");
        assert!(Instant::now() < deadline, "no store created");
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    let aside = std::fs::read_dir(&data)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains(".foreign-")
        })
        .count();
    assert_eq!(aside, 1);
}
