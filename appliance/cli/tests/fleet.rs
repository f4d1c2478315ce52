//! A prover fleet as real processes: several `proofbox serve` on one PostgreSQL
//! database (`PROOFBOX_TEST_POSTGRES`, started by `.ci/postgres`), each test in a
//! schema of its own. A batch completes with no job lost and none proved twice; an
//! appliance killed with SIGKILL mid-job leaves its job to another within the lease;
//! the database restarting under running appliances loses nothing; a job runs only on
//! an appliance whose device takes it, and waits with a reason while none is live.
//! Without a server
//! the tests say `skipped`, and fail when `PROOFBOX_REQUIRE_POSTGRES=1`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use proofbox_prover::verify_bytes;
use reqwest::blocking::Client;
use serde_json::{Value, json};

mod common;
use common::{free_port, tls};

const KEY: &str = "fleet-test-key-0123456789";
/// The database restart test takes it for writing, the others for reading: a restart
/// must not disturb the tests that do not expect one.
static DATABASE: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// The lease of the tests' appliances: short, so that a crash is noticed quickly.
const LEASE_SECS: u64 = 3;

/// The test server's URL, or `None` after saying why the test is skipped.
fn database() -> Option<String> {
    match std::env::var("PROOFBOX_TEST_POSTGRES") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            skip_or_fail("PROOFBOX_TEST_POSTGRES is not set (start a server with .ci/postgres)");
            None
        }
    }
}

fn skip_or_fail(reason: &str) {
    if std::env::var("PROOFBOX_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
        panic!("PROOFBOX_REQUIRE_POSTGRES=1 but {reason}");
    }
    proofbox_conformance::skip(reason);
}

fn http() -> Client {
    tls();
    Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A `proofbox serve` process of the fleet; killed when dropped.
struct Appliance {
    child: Child,
    url: String,
    dir: PathBuf,
}

impl Appliance {
    /// Starts an appliance on `database` (in `schema`) with a data directory of its
    /// own under `dir`, and waits until `/readyz` answers 200.
    fn start(dir: &Path, database: &str, schema: &str) -> Self {
        Self::start_with(dir, database, schema, "")
    }

    /// [`Appliance::start`] with `extra` lines of configuration.
    fn start_with(dir: &Path, database: &str, schema: &str, extra: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let config = dir.join("proofbox.toml");
        std::fs::write(
            &config,
            format!(
                "api_keys = [\"{KEY}\"]\ndevices = [\"cpu:0\"]\nstore = \"{database}\"\n\
                 store_schema = \"{schema}\"\nlease_secs = {LEASE_SECS}\n\
                 shutdown_grace_secs = 0\n{extra}"
            ),
        )
        .unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("server.log"))
            .unwrap();
        let port = free_port();
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
        let mut a = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            dir: dir.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = a.child.try_wait().unwrap() {
                panic!("appliance exited with {status}: {}", a.log());
            }
            if let Ok(r) = http().get(format!("{}/readyz", a.url)).send()
                && r.status().is_success()
            {
                return a;
            }
            assert!(Instant::now() < deadline, "not ready: {}", a.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// The jobs this appliance started proving, by id (from its log).
    fn proved(&self) -> Vec<String> {
        strip_ansi(&self.log())
            .lines()
            .filter(|l| l.contains("proving "))
            .filter_map(|l| {
                let at = l.find("job=")? + 4;
                Some(l[at..].split_whitespace().next()?.to_string())
            })
            .collect()
    }

    fn get(&self, path: &str) -> reqwest::blocking::Response {
        http()
            .get(format!("{}{path}", self.url))
            .bearer_auth(KEY)
            .send()
            .unwrap()
    }

    fn job(&self, id: &str) -> Value {
        self.get(&format!("/v1/jobs/{id}")).json().unwrap()
    }

    /// Submits `body`; while the database is unreachable (503), tries again for up to
    /// a minute.
    fn submit(&self, body: Value) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let r = http()
                .post(format!("{}/v1/jobs", self.url))
                .bearer_auth(KEY)
                .json(&body)
                .send();
            match r {
                Ok(r) if r.status() == 202 => {
                    let v: Value = r.json().unwrap();
                    return v["id"].as_str().unwrap().to_string();
                }
                Ok(r) if r.status() == 503 => {}
                Ok(r) => panic!("submission answered {}: {}", r.status(), r.text().unwrap()),
                Err(_) => {}
            }
            assert!(
                Instant::now() < deadline,
                "submissions refused: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Polls until the job is `status` (bounded); answers of 503 (the database away)
    /// are waited out.
    fn wait_for(&self, id: &str, status: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let r = self.get(&format!("/v1/jobs/{id}"));
            if r.status() == 200 {
                let job: Value = r.json().unwrap();
                if job["status"] == status {
                    return job;
                }
                let terminal = ["succeeded", "failed", "cancelled"];
                assert!(
                    !terminal.contains(&job["status"].as_str().unwrap()),
                    "waiting for {status}: {job}"
                );
            }
            assert!(Instant::now() < deadline, "job {id} stuck: {}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn proof(&self, id: &str) -> Vec<u8> {
        let r = self.get(&format!("/v1/jobs/{id}/proof"));
        assert_eq!(r.status(), 200);
        r.bytes().unwrap().to_vec()
    }

    /// Freezes (`SIGSTOP`) or thaws (`SIGCONT`) the process: a frozen appliance
    /// neither claims nor renews its advertisement, as if cut off by a partition.
    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig}");
    }

    fn sigkill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Appliance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `text` without ANSI colour sequences (`ESC [ ... m`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn schema() -> String {
    format!("fleet_{}", uuid::Uuid::new_v4().simple())
}

/// Each id appears once in all the appliances' logs of started proofs together.
fn proved_once(ids: &[String], fleet: &[&Appliance]) -> Vec<usize> {
    let per: Vec<Vec<String>> = fleet.iter().map(|a| a.proved()).collect();
    for id in ids {
        let n: usize = per
            .iter()
            .map(|p| p.iter().filter(|x| *x == id).count())
            .sum();
        assert_eq!(n, 1, "job {id} proved {n} times");
    }
    per.iter().map(Vec::len).collect()
}

#[test]
fn appliances_on_one_database_complete_a_batch_none_lost_none_twice() {
    let Some(db) = database() else { return };
    let _shared = DATABASE.read().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let s = schema();
    let fleet = [
        Appliance::start(&dir.path().join("a"), &db, &s),
        Appliance::start(&dir.path().join("b"), &db, &s),
    ];
    let ids: Vec<String> = (0..12)
        .map(|i| {
            fleet[i % 2].submit(json!({"circuit": "poseidon2", "log_rows": 4 + i % 5, "seed": i}))
        })
        .collect();
    // Waiting behind the batch; cancelled through the other appliance.
    let last = fleet[0].submit(json!({"circuit": "poseidon2", "log_rows": 8, "priority": -5}));
    let r = http()
        .post(format!("{}/v1/jobs/{last}/cancel", fleet[1].url))
        .bearer_auth(KEY)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().unwrap());
    for (i, id) in ids.iter().enumerate() {
        // Read and downloaded from the appliance it was not submitted to.
        let other = &fleet[(i + 1) % 2];
        let job = other.wait_for(id, "succeeded");
        assert_eq!(job["attempts"], 1, "{job}");
        let proof = other.proof(id);
        verify_bytes(&proof).unwrap();
        assert_eq!(proof, fleet[i % 2].proof(id));
    }
    assert_eq!(fleet[0].job(&last)["status"], "cancelled");
    let per = proved_once(&ids, &[&fleet[0], &fleet[1]]);
    assert!(per.iter().all(|n| *n > 0), "each appliance proved: {per:?}");
}

#[test]
fn a_killed_appliance_leaves_its_job_to_another_within_the_lease() {
    let Some(db) = database() else { return };
    let _shared = DATABASE.read().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let s = schema();
    let doomed = Appliance::start(&dir.path().join("a"), &db, &s);
    let id = doomed.submit(json!({"circuit": "poseidon2", "log_rows": 15, "seed": 7}));
    doomed.wait_for(&id, "running");
    doomed.sigkill();
    let killed = Instant::now();
    let heir = Appliance::start(&dir.path().join("b"), &db, &s);
    // Still `running` on the dead appliance's lease, until it expires.
    loop {
        let job = heir.job(&id);
        if job["attempts"] == 2 {
            break;
        }
        assert_eq!(job["attempts"], 1, "{job}");
        assert!(
            killed.elapsed() < Duration::from_secs(LEASE_SECS * 4 + 30),
            "not taken again after {:?}: {job}",
            killed.elapsed()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let job = heir.wait_for(&id, "succeeded");
    assert_eq!(job["attempts"], 2, "the interrupted attempt counts: {job}");
    assert_eq!(heir.proved(), std::slice::from_ref(&id));
    verify_bytes(&heir.proof(&id)).unwrap();
}

#[test]
fn the_database_restarting_under_running_appliances_loses_nothing() {
    let Some(db) = database() else { return };
    let Ok(pgdir) = std::env::var("PROOFBOX_TEST_POSTGRES_DIR") else {
        skip_or_fail(
            "PROOFBOX_TEST_POSTGRES_DIR is not set (the server's directory of .ci/postgres, to restart it)",
        );
        return;
    };
    let _alone = DATABASE.write().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let s = schema();
    let fleet = [
        Appliance::start(&dir.path().join("a"), &db, &s),
        Appliance::start(&dir.path().join("b"), &db, &s),
    ];
    let mut ids: Vec<String> = (0..6)
        .map(|i| {
            fleet[i % 2].submit(json!({"circuit": "poseidon2", "log_rows": 6 + i % 3, "seed": i}))
        })
        .collect();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.ci/postgres");
    let out = Command::new(&script)
        .args(["restart", &pgdir])
        .output()
        .expect("run .ci/postgres restart");
    assert!(
        out.status.success(),
        "restart: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Submissions are answered 503 until the appliances reach the database again.
    ids.extend((6..12).map(|i| {
        fleet[i % 2].submit(json!({"circuit": "poseidon2", "log_rows": 6 + i % 3, "seed": i}))
    }));
    for (i, id) in ids.iter().enumerate() {
        let job = fleet[(i + 1) % 2].wait_for(id, "succeeded");
        assert!(job["attempts"].as_u64().unwrap() >= 1, "{job}");
        verify_bytes(&fleet[i % 2].proof(id)).unwrap();
    }
}

#[test]
fn a_job_runs_where_it_fits_and_waits_with_a_reason_while_nothing_fits() {
    let Some(db) = database() else { return };
    let _shared = DATABASE.read().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let s = schema();
    let small = Appliance::start_with(&dir.path().join("small"), &db, &s, "max_log_rows = 10\n");
    let large = Appliance::start_with(&dir.path().join("large"), &db, &s, "max_log_rows = 14\n");
    // Each appliance sees both, with the largest job each device takes.
    let fleet: Value = small.get("/v1/fleet").json().unwrap();
    let apps = fleet["appliances"].as_array().unwrap();
    assert_eq!(apps.len(), 2, "{fleet}");
    let largest: Vec<u64> = apps
        .iter()
        .map(|a| {
            a["devices"][0]["largest_log_rows"]["poseidon2/koalabear/standard"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(largest, [10, 14], "{fleet}");
    let without_age = |fleet: Value| -> Value {
        let mut apps = fleet["appliances"].clone();
        for a in apps.as_array_mut().unwrap() {
            a.as_object_mut().unwrap().remove("seen_ms_ago");
        }
        apps
    };
    assert_eq!(
        without_age(large.get("/v1/fleet").json().unwrap()),
        without_age(fleet.clone()),
        "the same fleet from either appliance: {fleet}"
    );

    // Too large for the appliance it is submitted to, not for the fleet: it runs on
    // the other one.
    let id = small.submit(json!({"circuit": "poseidon2", "log_rows": 12, "seed": 1}));
    let job = small.wait_for(&id, "succeeded");
    assert_eq!(job["attempts"], 1, "{job}");
    assert_eq!(large.proved(), std::slice::from_ref(&id));
    assert!(small.proved().is_empty());
    verify_bytes(&small.proof(&id)).unwrap();

    // Too large for every appliance, or for a backend none has: refused.
    let r = http()
        .post(format!("{}/v1/jobs", small.url))
        .bearer_auth(KEY)
        .json(&json!({"circuit": "poseidon2", "log_rows": 16}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 422);
    let text = r.text().unwrap();
    assert!(text.contains("fits no device of the fleet"), "{text}");
    let r = http()
        .post(format!("{}/v1/jobs", small.url))
        .bearer_auth(KEY)
        .json(&json!({"circuit": "poseidon2", "log_rows": 8, "backend": "cuda"}))
        .send()
        .unwrap();
    let text = r.text().unwrap();
    assert!(
        text.contains("backend cuda has no device on the fleet"),
        "{text}"
    );

    // The only appliance it fits goes quiet (frozen, as in a partition): the job,
    // accepted while it was live, stays queued and says why, until it is back.
    large.signal("-STOP");
    let id = small.submit(json!({"circuit": "poseidon2", "log_rows": 13, "seed": 2}));
    let deadline = Instant::now() + Duration::from_secs(LEASE_SECS * 4 + 10);
    let waiting = loop {
        let job = small.job(&id);
        assert_eq!(job["status"], "queued", "{job}");
        if let Some(why) = job["waiting"].as_str() {
            break why.to_string();
        }
        assert!(Instant::now() < deadline, "no reason given: {job}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(waiting.contains("2^13 rows"), "{waiting}");
    let listed: Value = small.get("/v1/jobs?status=queued").json().unwrap();
    assert_eq!(
        listed["jobs"][0]["waiting"].as_str(),
        Some(waiting.as_str()),
        "{listed}"
    );
    large.signal("-CONT");
    let job = small.wait_for(&id, "succeeded");
    assert!(job["waiting"].is_null(), "{job}");
    assert_eq!(large.proved().len(), 2);
    assert!(
        small.proved().is_empty(),
        "never taken by a device too small"
    );
}
