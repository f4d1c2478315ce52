//! The accept loop against a real listener on 127.0.0.1 with small limits: slow and
//! idle clients are disconnected, connections beyond the bound are refused with a JSON
//! 503, hyper's own answers to unparsable heads are JSON, shutdown is graceful. Every
//! wait is bounded.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use proofbox_service::server::{self, Limits};
use proofbox_service::{Config, Service, app};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

struct TestServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

async fn start(limits: Limits) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        allow_keyless_on_loopback: true,
        devices: vec!["cpu:0".into()],
        ..Config::default()
    };
    let service = tokio::task::spawn_blocking(move || Service::open(config).unwrap())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let done = tokio::spawn(server::run(listener, app(service.state()), limits, async {
        let _ = stopped.await;
    }));
    TestServer {
        addr,
        stop: Some(stop),
        done,
        _dir: dir,
    }
}

fn limits(header_read: u64, idle: u64, max_connections: usize) -> Limits {
    Limits {
        header_read_timeout: Duration::from_secs(header_read),
        idle_timeout: Duration::from_secs(idle),
        max_connections,
    }
}

/// Everything the server sends until it closes the connection, and how long that took
/// (panics after 10 s: the server did not close it).
async fn until_closed(stream: &mut TcpStream) -> (String, Duration) {
    let start = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => panic!(
                "still open after 10 s; received {:?}",
                String::from_utf8_lossy(&out)
            ),
        }
    }
    (String::from_utf8_lossy(&out).into_owned(), start.elapsed())
}

/// Reads one response of `Content-Length` framing (the connection stays open).
async fn one_response(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("a response within 10 s")
            .unwrap();
        assert!(n > 0, "closed early: {:?}", String::from_utf8_lossy(&out));
        out.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&out);
        if let Some(end) = text.find("\r\n\r\n") {
            let len: usize = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if out.len() >= end + 4 + len {
                return text.into_owned();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_stalling_in_its_headers_is_disconnected() {
    let s = start(limits(1, 30, 16)).await;
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Half: ")
        .await
        .unwrap();
    let (got, after) = until_closed(&mut c).await;
    assert!(got.is_empty(), "answered {got:?}");
    assert!(
        after >= Duration::from_millis(800) && after < Duration::from_secs(5),
        "closed after {after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed() {
    let s = start(limits(1, 30, 16)).await;
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let first = one_response(&mut c).await;
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    // Kept alive: a second request on it is answered.
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(one_response(&mut c).await.starts_with("HTTP/1.1 200"));
    let (rest, after) = until_closed(&mut c).await;
    assert!(rest.is_empty(), "{rest}");
    assert!(after < Duration::from_secs(5), "closed after {after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_is_cut_by_the_idle_timeout() {
    let s = start(limits(30, 1, 16)).await;
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(
        b"POST /v1/verify HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\npartial",
    )
    .await
    .unwrap();
    let (_, after) = until_closed(&mut c).await;
    assert!(
        after >= Duration::from_millis(800) && after < Duration::from_secs(5),
        "closed after {after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_bound_get_a_json_503() {
    let s = start(limits(30, 30, 2)).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut c = TcpStream::connect(s.addr).await.unwrap();
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        assert!(one_response(&mut c).await.starts_with("HTTP/1.1 200"));
        held.push(c);
    }
    let mut over = TcpStream::connect(s.addr).await.unwrap();
    over.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (refused, _) = until_closed(&mut over).await;
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(
        refused.contains(r#""code":"too_many_connections""#),
        "{refused}"
    );
    assert!(refused.to_ascii_lowercase().contains("retry-after: 1"));

    // A slot frees when a connection closes.
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut c = TcpStream::connect(s.addr).await.unwrap();
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let (got, _) = until_closed(&mut c).await;
        if got.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "no slot freed: {got}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unparsable_heads_get_the_json_error_shape() {
    let s = start(limits(30, 30, 16)).await;
    let long_uri = format!("/{}", "a".repeat(70_000));
    let big_header = "b".repeat(100 << 10);
    for (request, status, code) in [
        (
            format!("GET {long_uri} HTTP/1.1\r\nHost: x\r\n\r\n"),
            "414",
            "uri_too_long",
        ),
        (
            format!("GET / HTTP/1.1\r\nHost: x\r\nX-Big: {big_header}\r\n\r\n"),
            "431",
            "headers_too_large",
        ),
        (
            "GET / HTTP/1.1\r\nBad Header Line\r\n\r\n".to_string(),
            "400",
            "bad_request",
        ),
    ] {
        let mut c = TcpStream::connect(s.addr).await.unwrap();
        // The server may answer and close before it read everything.
        let _ = c.write_all(request.as_bytes()).await;
        let (got, _) = until_closed(&mut c).await;
        assert!(got.starts_with(&format!("HTTP/1.1 {status} ")), "{got}");
        let body = &got[got.find("\r\n\r\n").unwrap() + 4..];
        let v: serde_json::Value =
            serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {got}"));
        assert_eq!(v["error"]["code"], code, "{got}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_the_request_in_flight_finish() {
    let mut s = start(limits(30, 30, 16)).await;
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    // Half a body is in flight when shutdown begins; the request is still answered.
    c.write_all(b"POST /v1/verify HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 10\r\n\r\n01234")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.stop.take().unwrap().send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    c.write_all(b"56789").await.unwrap();
    let (got, _) = until_closed(&mut c).await;
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    tokio::time::timeout(Duration::from_secs(10), s.done)
        .await
        .expect("run returns after the last connection")
        .unwrap()
        .unwrap();
    assert!(TcpStream::connect(s.addr).await.is_err(), "still listening");
}
