//! Storage faults on a real file system: the data directory on a small tmpfs that is
//! filled to the brim. Submissions get 503 `store_unavailable`, `/readyz` says why;
//! once space is freed the store reopens by itself and every acknowledged job is
//! there. Needs root (to mount): without it the test says `skipped: ...`, unless
//! `PROOFBOX_REQUIRE_TMPFS=1`. Every wait is bounded.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use base64::Engine;
use proofbox_service::types::{ErrorBody, HealthView, JobStatus, JobView};
use proofbox_service::{Config, Service, app as router};
use tower::ServiceExt;

const KEY: &str = "fault-test-key-0123456789";

/// A tmpfs mounted for the test; unmounted when dropped (also on a failed assertion).
struct Tmpfs {
    dir: PathBuf,
    _parent: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Result<Self, String> {
        let parent = tempfile::tempdir().map_err(|e| e.to_string())?;
        let dir = parent.path().join("mnt");
        std::fs::create_dir(&dir).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .output()
            .map_err(|e| format!("running mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs failed (root needed): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Self {
            dir,
            _parent: parent,
        })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

/// Writes `path` until the file system refuses (no space left), then syncs.
fn fill(path: &Path) -> u64 {
    let mut f = std::fs::File::create(path).unwrap();
    let mut written = 0u64;
    for chunk in [64 * 1024, 4096, 512] {
        let buf = vec![0xa5u8; chunk];
        while f.write_all(&buf).is_ok() {
            written += chunk as u64;
        }
    }
    let _ = f.sync_all();
    written
}

struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Resp {
    fn json<T: serde::de::DeserializeOwned>(&self) -> T {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{e}: {} {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

async fn call(app: &Router, method: Method, uri: &str, body: Option<String>) -> Resp {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {KEY}"));
    if body.is_some() {
        req = req.header(header::CONTENT_TYPE, "application/json");
    }
    let req = req.body(body.map_or_else(Body::empty, Body::from)).unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(30), app.clone().oneshot(req))
        .await
        .expect("a request took over 30 s")
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    Resp {
        status,
        headers,
        body,
    }
}

/// A job with 24 KiB of input (the most `blake3` takes at 2^8 rows).
fn job(seed: u64) -> String {
    let input = base64::engine::general_purpose::STANDARD.encode(vec![seed as u8; 256 * 96]);
    format!(r#"{{"circuit":"blake3","log_rows":8,"seed":{seed},"input_base64":"{input}"}}"#)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_gets_503_and_the_store_recovers_by_itself_keeping_every_job() {
    let mnt = match Tmpfs::mount("8m") {
        Ok(m) => m,
        Err(reason) if std::env::var("PROOFBOX_REQUIRE_TMPFS").is_ok_and(|v| v == "1") => {
            panic!("PROOFBOX_REQUIRE_TMPFS=1 but {reason}")
        }
        Err(reason) => return proofbox_conformance::skip(reason),
    };
    let data = mnt.dir.join("data");
    let config = Config {
        data_dir: data.clone(),
        api_keys: vec![KEY.into()],
        devices: vec!["cpu:0".into()],
        ..Config::default()
    };
    // No workers: the jobs stay queued, so the store holds exactly what was accepted.
    let service = tokio::task::spawn_blocking(move || Service::open(config).unwrap())
        .await
        .unwrap();
    let app = router(service.state());

    let mut accepted = Vec::new();
    for seed in 0..3 {
        let r = call(&app, Method::POST, "/v1/jobs", Some(job(seed))).await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
        accepted.push(r.json::<JobView>().id);
    }

    // Fill the disk; submit until the store fails (it may have room in its file).
    let filler = mnt.dir.join("filler");
    let filled = tokio::task::spawn_blocking({
        let filler = filler.clone();
        move || fill(&filler)
    })
    .await
    .unwrap();
    assert!(filled > 0);
    let mut refused = None;
    for seed in 100..300 {
        let r = call(&app, Method::POST, "/v1/jobs", Some(job(seed))).await;
        match r.status {
            StatusCode::ACCEPTED => accepted.push(r.json::<JobView>().id),
            _ => {
                refused = Some(r);
                break;
            }
        }
    }
    let r = refused.expect("200 submissions of 24 KiB fitted on a full disk");
    let e: ErrorBody = r.json();
    assert_eq!(
        (r.status, e.error.code.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
        "{}",
        e.error.message
    );
    assert!(r.headers.contains_key(header::RETRY_AFTER));
    assert!(e.error.message.contains("I/O error"), "{}", e.error.message);

    // Still full: not ready (with the reason), and more submissions are refused, also
    // after the once-a-second reopening attempt.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = call(&app, Method::GET, "/readyz", None).await;
    let e: ErrorBody = r.json();
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        e.error.message.contains("job store") && e.error.message.contains("unavailable"),
        "{}",
        e.error.message
    );
    let r = call(&app, Method::POST, "/v1/jobs", Some(job(500))).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.json::<ErrorBody>().error.code, "store_unavailable");

    // Free the space: the store comes back by itself within a few seconds.
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = call(&app, Method::POST, "/v1/jobs", Some(job(600))).await;
        if r.status == StatusCode::ACCEPTED {
            accepted.push(r.json::<JobView>().id);
            break;
        }
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            Instant::now() < deadline,
            "the store did not recover in 20 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let r = call(&app, Method::GET, "/readyz", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json::<HealthView>().status, "ready");

    // Every acknowledged job is there.
    for id in &accepted {
        let r = call(&app, Method::GET, &format!("/v1/jobs/{id}"), None).await;
        assert_eq!(r.status, StatusCode::OK, "job {id}");
        assert_eq!(r.json::<JobView>().status, JobStatus::Queued);
    }
    assert!(accepted.len() >= 4);

    // And after a restart on the same directory too.
    drop(app);
    drop(service);
    let config = Config {
        data_dir: data,
        api_keys: vec![KEY.into()],
        devices: vec!["cpu:0".into()],
        ..Config::default()
    };
    let service = tokio::task::spawn_blocking(move || Service::open(config).unwrap())
        .await
        .unwrap();
    let app = router(service.state());
    for id in &accepted {
        let r = call(&app, Method::GET, &format!("/v1/jobs/{id}"), None).await;
        assert_eq!(r.status, StatusCode::OK, "job {id} after a restart");
    }
    drop(app);
    drop(service);
    drop(mnt);
}
