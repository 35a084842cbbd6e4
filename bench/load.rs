//! Load generation: closed loops (each client posts again as soon as it is
//! answered) and paced load (a fixed rate, whatever the answers do).
//! Every event carries a unique id, as an app that retries safely would
//! send, so deliveries can be matched to the posts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::Semaphore;

/// One acknowledged post.
pub struct Sample {
    pub id: String,
    pub sent: Instant,
    pub acked: Instant,
}

impl Sample {
    pub fn latency(&self) -> Duration {
        self.acked - self.sent
    }
}

/// A realistic event of about 300 bytes, with the given id.
pub fn event_body(id: &str) -> Bytes {
    Bytes::from(format!(
        r#"{{"id":"{id}","event":"enrollment.created","data":{{"student_id":"student_xyz789","course_id":"course_rust_101","enrolled_at":"2025-03-20T10:30:00Z","price":{{"amount":49.0,"currency":"EUR"}},"source":"web","coupon":null,"cohort":"2025-spring","tags":["beginner","self-paced"]}}}}"#
    ))
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn client(connections: usize) -> HttpClient {
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(connections)
        .build_http()
}

async fn post(client: &HttpClient, url: &str, id: String) -> anyhow::Result<Sample> {
    let mut samples = post_events(client, url, vec![id], event_body).await?;
    Ok(samples.remove(0))
}

/// Posts `ids` as one event (one id, to `/v1/events`) or one batch (to
/// `/v1/events/batch`); one sample per event.
async fn post_events(
    client: &HttpClient,
    url: &str,
    ids: Vec<String>,
    body: fn(&str) -> Bytes,
) -> anyhow::Result<Vec<Sample>> {
    let payload = if ids.len() == 1 {
        body(&ids[0])
    } else {
        let events: Vec<String> = ids
            .iter()
            .map(|id| String::from_utf8_lossy(&body(id)).into_owned())
            .collect();
        Bytes::from(format!(r#"{{"events":[{}]}}"#, events.join(",")))
    };
    let request = Request::post(url)
        .header("content-type", "application/json")
        .body(Full::new(payload))?;
    let sent = Instant::now();
    let response = client.request(request).await?;
    let status = response.status();
    response.into_body().collect().await?;
    if status != StatusCode::ACCEPTED {
        bail!("unexpected status {status}");
    }
    let acked = Instant::now();
    Ok(ids.into_iter().map(|id| Sample { id, sent, acked }).collect())
}

/// `clients` loops posting batches of `batch` events back to back for
/// `duration` (to the batch URL, unless `batch` is 1).
pub async fn closed_loop_batches(
    url: &str,
    clients: usize,
    batch: usize,
    duration: Duration,
    tag: &str,
) -> anyhow::Result<Vec<Sample>> {
    closed_loop_of(url, clients, batch, duration, tag, event_body).await
}

/// [`closed_loop_batches`] with events from `body` (given each id).
pub async fn closed_loop_of(
    url: &str,
    clients: usize,
    batch: usize,
    duration: Duration,
    tag: &str,
    body: fn(&str) -> Bytes,
) -> anyhow::Result<Vec<Sample>> {
    let client = client(clients);
    let url: Arc<str> = url.into();
    let deadline = Instant::now() + duration;
    let tasks: Vec<_> = (0..clients)
        .map(|worker| {
            let (client, url) = (client.clone(), url.clone());
            let tag = tag.to_owned();
            tokio::spawn(async move {
                let mut samples = Vec::new();
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let ids = (0..batch).map(|i| format!("{tag}_{worker}_{n}_{i}")).collect();
                    samples.extend(post_events(&client, &url, ids, body).await?);
                    n += 1;
                }
                anyhow::Ok(samples)
            })
        })
        .collect();
    let mut samples = Vec::new();
    for task in tasks {
        samples.extend(task.await??);
    }
    Ok(samples)
}

/// `clients` loops posting single events back to back for `duration`.
pub async fn closed_loop(url: &str, clients: usize, duration: Duration, tag: &str) -> anyhow::Result<Vec<Sample>> {
    closed_loop_batches(url, clients, 1, duration, tag).await
}

/// Posts at `rate` events per second for `duration`, at most 256 at once.
pub async fn paced(url: &str, rate: f64, duration: Duration, tag: &str) -> anyhow::Result<Vec<Sample>> {
    let client = client(256);
    let url: Arc<str> = url.into();
    let in_flight = Arc::new(Semaphore::new(256));
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(1.0)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let deadline = Instant::now() + duration;
    let mut tasks = Vec::new();
    let mut n = 0u64;
    while Instant::now() < deadline {
        ticker.tick().await;
        let permit = in_flight.clone().acquire_owned().await?;
        let (client, url) = (client.clone(), url.clone());
        let id = format!("{tag}_{n}");
        n += 1;
        tasks.push(tokio::spawn(async move {
            let sample = post(&client, &url, id).await;
            drop(permit);
            sample
        }));
    }
    let mut samples = Vec::new();
    for task in tasks {
        samples.push(task.await??);
    }
    Ok(samples)
}

/// GETs `url`: its status and body.
pub async fn get(url: &str) -> anyhow::Result<(StatusCode, Bytes)> {
    let request = Request::get(url).body(Full::new(Bytes::new()))?;
    let response = client(1).request(request).await?;
    let status = response.status();
    Ok((status, response.into_body().collect().await?.to_bytes()))
}

/// The `quantile` of sorted `values`.
pub fn quantile(sorted: &[Duration], quantile: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 * quantile) as usize).min(sorted.len() - 1)]
}

pub fn millis(duration: Duration) -> String {
    format!("{:.2}ms", duration.as_secs_f64() * 1000.0)
}
