//! The concurrency limits hold however a subscriber answers (SPEC 4): an
//! attempt holds its permits until its response snippet is read, and the
//! attempts of an old config and a new one share one global limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

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
    let subscriber = CountingSubscriber::start(Answer::SlowHeaders(Duration::from_millis(1500))).await;
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
