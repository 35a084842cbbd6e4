//! The concurrency limits hold however a subscriber answers (SPEC 4): an
//! attempt holds its permits until its response snippet is read, and the
//! attempts of an old config and a new one share one global limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hookd::store::DeliveryStatus;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::receiver::{Receiver, Reply};
use crate::support::sidecar::Sidecar;

const PATIENCE: Duration = Duration::from_secs(30);

/// A subscriber on raw TCP that counts how many requests it is answering
/// at once, from the end of a request to the end of its answer.
struct CountingSubscriber {
    port: u16,
    answering: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
    answered: Arc<AtomicUsize>,
}

/// How the subscriber answers.
#[derive(Clone, Copy)]
enum Answer {
    /// `200` headers at once, then a 10-byte body a byte every 100 ms.
    TrickledBody,
    /// Headers after `delay`, with an empty body.
    SlowHeaders(Duration),
}

impl CountingSubscriber {
    async fn start(answer: Answer) -> CountingSubscriber {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let subscriber = CountingSubscriber {
            port: listener.local_addr().unwrap().port(),
            answering: Arc::default(),
            most: Arc::default(),
            answered: Arc::default(),
        };
        let (answering, most, answered) = (
            subscriber.answering.clone(),
            subscriber.most.clone(),
            subscriber.answered.clone(),
        );
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (answering, most, answered) = (answering.clone(), most.clone(), answered.clone());
                tokio::spawn(async move {
                    let _ = serve(stream, answer, &answering, &most, &answered).await;
                });
            }
        });
        subscriber
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    fn most_at_once(&self) -> usize {
        self.most.load(Ordering::SeqCst)
    }

    async fn wait_for_answers(&self, count: usize) {
        crate::support::eventually(PATIENCE, || {
            (self.answered.load(Ordering::SeqCst) >= count).then_some(())
        })
        .await;
    }
}

/// Answers the requests of one connection, one at a time.
async fn serve(
    mut stream: TcpStream,
    answer: Answer,
    answering: &AtomicUsize,
    most: &AtomicUsize,
    answered: &AtomicUsize,
) -> std::io::Result<()> {
    let mut buffer = Vec::new();
    loop {
        // Read one request: headers, then the declared body.
        let header_end = loop {
            if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            let mut chunk = [0u8; 4096];
            let read = stream.read(&mut chunk).await?;
            if read == 0 {
                return Ok(());
            }
            buffer.extend_from_slice(&chunk[..read]);
        };
        let headers = String::from_utf8_lossy(&buffer[..header_end]).to_ascii_lowercase();
        let length: usize = headers
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(0);
        while buffer.len() < header_end + length {
            let mut chunk = [0u8; 4096];
            let read = stream.read(&mut chunk).await?;
            if read == 0 {
                return Ok(());
            }
            buffer.extend_from_slice(&chunk[..read]);
        }
        buffer.drain(..header_end + length);
        let now = answering.fetch_add(1, Ordering::SeqCst) + 1;
        most.fetch_max(now, Ordering::SeqCst);
        let result = match answer {
            Answer::TrickledBody => {
                stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n")
                    .await?;
                for _ in 0..10 {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    stream.write_all(b"x").await?;
                }
                Ok(())
            }
            Answer::SlowHeaders(delay) => {
                tokio::time::sleep(delay).await;
                stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await
            }
        };
        answering.fetch_sub(1, Ordering::SeqCst);
        answered.fetch_add(1, Ordering::SeqCst);
        result?;
    }
}

fn endpoint(url: &str) -> String {
    format!("[[endpoints]]\nid = \"slow\"\nurl = \"{url}\"\nevents = [\"*\"]\nsecret = \"s\"\n")
}

#[tokio::test]
async fn a_trickled_body_keeps_its_permits_until_it_is_read() {
    let subscriber = CountingSubscriber::start(Answer::TrickledBody).await;
    let sidecar = Sidecar::start(&format!(
        "[delivery]\nendpoint_concurrency = 2\n{}",
        endpoint(&subscriber.url())
    ))
    .await;
    for _ in 0..12 {
        sidecar.post_event(r#"{"event":"payment.completed","data":{}}"#).await;
    }
    subscriber.wait_for_answers(12).await;
    assert!(
        subscriber.most_at_once() <= 2,
        "{} bodies trickled at once past endpoint_concurrency = 2",
        subscriber.most_at_once()
    );
}

#[tokio::test]
async fn attempts_of_an_old_and_a_new_config_share_the_global_limit() {
    // Slow, but answering within the second an attempt may hold its global
    // permit for while it waits.
    let subscriber = CountingSubscriber::start(Answer::SlowHeaders(Duration::from_millis(800))).await;
    let config = format!("[delivery]\nconcurrency = 2\n{}", endpoint(&subscriber.url()));
    let sidecar = Sidecar::start(&config).await;
    let since = sidecar.http.get(&format!("{}/v1/config", sidecar.admin)).await.json["loaded_at"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..8 {
        sidecar.post_event(r#"{"event":"payment.completed","data":{}}"#).await;
    }
    // While the first two attempts wait for their answers, a reload builds
    // new workers; their attempts must still wait for the same two permits.
    sidecar.rewrite_config(&format!("[telemetry]\nlog_level = \"debug\"\n{config}"));
    let reloaded = sidecar.config_after(&since).await;
    assert!(reloaded["last_reload_error"].is_null(), "{reloaded}");
    subscriber.wait_for_answers(8).await;
    assert!(
        subscriber.most_at_once() <= 2,
        "{} attempts at once past concurrency = 2",
        subscriber.most_at_once()
    );
}

#[tokio::test]
async fn many_hanging_endpoints_never_hold_up_a_healthy_one() {
    let hanging = Receiver::start().await;
    hanging.answer_by_default(Reply::hang());
    let healthy = Receiver::start().await;
    // 32 endpoints that accept and never answer: at 16 attempts each, they
    // want twice the global limit (256) from the first event on.
    let mut config = String::from("[delivery]\nretry_schedule = [\"1m\"]\n");
    for n in 0..32 {
        config.push_str(&format!(
            "[[endpoints]]\nid = \"hanging{n}\"\nurl = \"{}\"\nevents = [\"*\"]\nsecret = \"s\"\n",
            hanging.url(&format!("/h{n}"))
        ));
    }
    config.push_str(&format!(
        "[[endpoints]]\nid = \"healthy\"\nurl = \"{}\"\nevents = [\"*\"]\nsecret = \"s\"\n",
        healthy.url("/hook")
    ));
    let sidecar = Sidecar::start(&config).await;
    let started = Instant::now();
    let mut posted = Vec::new();
    while started.elapsed() < Duration::from_secs(5) {
        let id = sidecar.post_event(r#"{"event":"payment.completed","data":{}}"#).await;
        posted.push((started.elapsed(), id));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // From the first second on (here: events posted after 2 s), the
    // healthy endpoint gets each event as if the others were not there,
    // long before the hanging attempts' 10 s timeouts free anything.
    let mut waits = Vec::new();
    for (at, id) in posted.iter().filter(|(at, _)| *at >= Duration::from_secs(2)) {
        let delivery = sidecar.finished(&format!("{id}.healthy"), PATIENCE).await;
        assert_eq!(delivery.status, DeliveryStatus::Succeeded);
        waits.push((delivery.updated_at.saturating_sub(delivery.created_at), *at));
    }
    waits.sort();
    let (worst, posted_at) = *waits.last().unwrap();
    let median = waits[waits.len() / 2].0;
    eprintln!("healthy endpoint beside 32 hanging ones: median {median} ms, worst {worst} ms");
    assert!(
        worst < 2_000,
        "an event posted at {posted_at:?} waited {worst} ms for the healthy endpoint ({} events)",
        waits.len()
    );
}
