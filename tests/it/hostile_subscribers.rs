//! Subscribers that misbehave each fail cleanly, and none of them slows
//! deliveries to a healthy endpoint subscribed to the same events.
//! (A DNS name that resolves to a private address: `safety.rs`.)

use std::time::{Duration, Instant};

use hookd::store::DeliveryStatus;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::receiver::{Receiver, Reply};
use crate::support::sidecar::Sidecar;
use crate::support::tls::TlsReceiver;

const EVENTS: usize = 20;

/// A server that reads a request, then answers with `respond`, on every
/// connection. Returns its base URL.
async fn raw_server<F, Fut>(respond: F) -> String
where
    F: Fn(tokio::net::TcpStream) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let respond = respond.clone();
            tokio::spawn(async move {
                let mut request = vec![0; 64 * 1024];
                let _ = stream.read(&mut request).await;
                respond(stream).await;
            });
        }
    });
    url
}

/// Sends its answer one byte every 200 ms.
async fn trickle(mut stream: tokio::net::TcpStream) {
    for byte in b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n" {
        if stream.write_all(&[*byte]).await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A 500 with a body that never ends.
async fn gigantic(mut stream: tokio::net::TcpStream) {
    let _ = stream
        .write_all(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 10000000000\r\n\r\n")
        .await;
    let chunk = vec![b'x'; 64 * 1024];
    while stream.write_all(&chunk).await.is_ok() {}
}

fn endpoint(id: &str, url: &str) -> String {
    format!("[[endpoints]]\nid = \"{id}\"\nurl = \"{url}\"\nevents = [\"*\"]\nsecret = \"s\"\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_subscribers_fail_cleanly_and_slow_no_one_else() {
    let healthy = Receiver::start().await;
    let silent = Receiver::start().await;
    silent.answer_by_default(Reply::hang());
    let redirecting = Receiver::start().await;
    redirecting
        .answer_by_default(Reply::status(302).with_header("location", "http://169.254.169.254/latest/meta-data/"));
    let untrusted = TlsReceiver::start().await;
    let trickling = raw_server(trickle).await;
    let flooding = raw_server(gigantic).await;
    let config = [
        "[delivery]\ntimeout = \"2s\"\nretry_schedule = []\nallow_private_networks = false\nallowed_networks = [\"127.0.0.1/32\"]\n"
            .to_owned(),
        endpoint("healthy", &healthy.url("/hook")),
        endpoint("silent", &silent.url("/hook")),
        endpoint("trickling", &format!("{trickling}/hook")),
        endpoint("flooding", &format!("{flooding}/hook")),
        endpoint("redirecting", &redirecting.url("/hook")),
        endpoint("metadata", "http://169.254.169.254/latest/meta-data/"),
        endpoint("untrusted", &untrusted.url()),
    ]
    .concat();
    let sidecar = Sidecar::start(&config).await;

    let started = Instant::now();
    let mut ids = Vec::new();
    for _ in 0..EVENTS {
        ids.push(sidecar.post_event(r#"{"event":"payment.completed","data":{}}"#).await);
    }
    // A generous bound: far below what waiting on the hostile ones would
    // take (20 events × 2 s timeouts).
    healthy.wait_for(EVENTS, Duration::from_secs(15)).await;
    let healthy_took = started.elapsed();

    let expected = [
        ("silent", "timeout"),
        ("trickling", "timeout"),
        ("flooding", "status"),
        ("redirecting", "redirect"),
        ("metadata", "blocked_destination"),
        ("untrusted", "tls"),
    ];
    for id in &ids {
        for (endpoint, kind) in expected {
            let delivery = sidecar
                .finished(&format!("{id}.{endpoint}"), Duration::from_secs(60))
                .await;
            assert_eq!(delivery.status, DeliveryStatus::Failed, "{endpoint}");
            let attempt = sidecar.store.attempts(&format!("{id}.{endpoint}")).unwrap().remove(0);
            assert_eq!(attempt.error_kind.as_deref(), Some(kind), "{endpoint}: {attempt:?}");
            assert!(
                attempt.response_snippet.len() <= 1024,
                "{endpoint}: the snippet is capped"
            );
        }
        let healthy = sidecar.store.delivery(&format!("{id}.healthy")).unwrap().unwrap();
        assert_eq!(healthy.status, DeliveryStatus::Succeeded);
    }
    assert!(
        redirecting.received().iter().all(|request| request.path == "/hook"),
        "the redirect was not followed"
    );
    eprintln!("the healthy endpoint got all {EVENTS} events in {healthy_took:?}");
}
