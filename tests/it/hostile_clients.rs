//! Clients that misbehave at the HTTP level get a clear 4xx or a closed
//! connection, and the app's own requests keep working beside them.

use std::time::{Duration, Instant};

use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::sidecar::Sidecar;

const EVENT: &str = r#"{"event":"payment.completed","data":{}}"#;

fn address(url: &str) -> &str {
    url.strip_prefix("http://").unwrap()
}

/// Reads until the server closes the connection; returns what it sent.
async fn read_until_closed(stream: &mut TcpStream, patience: Duration) -> String {
    let mut answer = Vec::new();
    tokio::time::timeout(patience, stream.read_to_end(&mut answer))
        .await
        .expect("the server should close the connection")
        .ok();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let sidecar = Sidecar::start("").await;
    let mut slow = TcpStream::connect(address(&sidecar.ingest)).await.unwrap();
    slow.write_all(b"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: app")
        .await
        .unwrap();
    let started = Instant::now();
    // Meanwhile the app is served.
    let answer = sidecar
        .http
        .post_json(&format!("{}/v1/events", sidecar.ingest), EVENT)
        .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    read_until_closed(&mut slow, Duration::from_secs(60)).await;
    assert!(
        started.elapsed() >= Duration::from_secs(9),
        "cut off after {:?}, before the header timeout",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_body_that_never_arrives_gets_408() {
    let sidecar = Sidecar::start("").await;
    let mut slow = TcpStream::connect(address(&sidecar.ingest)).await.unwrap();
    slow.write_all(
        b"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"event\"",
    )
    .await
    .unwrap();
    let mut answer = vec![0; 4096];
    let read = tokio::time::timeout(Duration::from_secs(90), slow.read(&mut answer))
        .await
        .expect("an answer within the body timeout")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
    assert_eq!(hookd_ingested(&sidecar), 0);
}

#[tokio::test]
async fn huge_headers_get_431() {
    let sidecar = Sidecar::start("").await;
    let mut stream = TcpStream::connect(address(&sidecar.ingest)).await.unwrap();
    let huge = "a".repeat(200 * 1024);
    let request = format!(
        "POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Huge: {huge}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{EVENT}",
        EVENT.len()
    );
    // The server may close before it has read everything we send.
    let _ = stream.write_all(request.as_bytes()).await;
    let answer = read_until_closed(&mut stream, Duration::from_secs(30)).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    assert_eq!(hookd_ingested(&sidecar), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_idle_connections_do_not_lock_the_app_out() {
    let sidecar = Sidecar::start("").await;
    let mut idle = Vec::new();
    for n in 0..1100 {
        let connected =
            tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(address(&sidecar.ingest))).await;
        match connected {
            Ok(Ok(stream)) => idle.push(stream),
            other => panic!("connection {n}: {other:?}"),
        }
    }
    // Past the connection limit the app's request waits for a slot; idle
    // connections lose theirs at the header timeout.
    let answer = tokio::time::timeout(
        Duration::from_secs(60),
        sidecar.http.post_json(&format!("{}/v1/events", sidecar.ingest), EVENT),
    )
    .await
    .expect("the app gets through");
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    drop(idle);
}

#[tokio::test]
async fn json_nested_a_hundred_thousand_deep_is_refused() {
    let sidecar = Sidecar::start("").await;
    for (open, close) in [("[", "]"), (r#"{"a":"#, "}")] {
        let deep = format!(
            r#"{{"event":"payment.completed","data":{{"x":{}{}}}}}"#,
            open.repeat(100_000),
            close.repeat(100_000)
        );
        let answer = sidecar
            .http
            .post_json(&format!("{}/v1/events", sidecar.ingest), deep)
            .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST);
        assert_eq!(answer.error_code(), "invalid_json");
    }
    assert_eq!(hookd_ingested(&sidecar), 0);
}

fn hookd_ingested(sidecar: &Sidecar) -> usize {
    crate::support::sidecar::ingested(&sidecar.store).events
}
