//! The backlog run, by hand (not in CI): a subscriber is out while a
//! million deliveries pile up for it, then comes back.
//!
//! hookd runs with two endpoints: `backlog` (payment events), whose
//! subscriber is out and which the operator has paused, as one does while
//! a subscriber is down (without the pause, each delivery would wait out
//! its retry schedule instead of draining when the subscriber returns);
//! and `fresh` (enrollment events), healthy throughout.
//!
//! 1. `events` payment events are posted in batches of 100, while hookd's
//!    RSS is sampled every second; then the data directory's size is read.
//! 2. The subscriber comes back and the endpoint is resumed. While the
//!    backlog drains, enrollment events are posted to `fresh` at a steady
//!    rate, and their latency from the 202 to the subscriber is measured:
//!    the backlog must not starve them.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::load::{millis, paced, quantile};
use crate::processes::{ScratchDir, free_port, rss_mib, start_hookd_with};
use crate::receiver;

const BATCH: usize = 100;
const CLIENTS: usize = 16;
/// Enrollment events per second posted to `fresh` while the backlog drains.
const FRESH_RATE: f64 = 100.0;

pub async fn run(events: usize, hookd: &str) -> anyhow::Result<()> {
    let dir = ScratchDir::new()?;
    let port = free_port()?;
    let url = format!("http://127.0.0.1:{port}");
    let endpoints = format!(
        "[[endpoints]]\nid = \"backlog\"\nurl = \"{url}/backlog\"\nevents = [\"payment.*\"]\nsecret = \"s\"\n\
         [[endpoints]]\nid = \"fresh\"\nurl = \"{url}/fresh\"\nevents = [\"enrollment.*\"]\nsecret = \"s\"\n"
    );
    let hookd = start_hookd_with(hookd, dir.path(), &endpoints).await?;
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let admin = |path: &str| {
        Request::post(format!("{}{path}", hookd.admin))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(b"{}")))
    };
    let paused = client.request(admin("/v1/endpoints/backlog/pause")?).await?;
    if !paused.status().is_success() {
        bail!("pausing the endpoint: {}", paused.status());
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_rss = hookd.child.rss_mib();
    let empty_reads = AdminReads::measure(&client, &hookd.admin).await?;

    let sampling = RssSampler::start(hookd.child.pid());
    let started = Instant::now();
    post_backlog(&client, &format!("{}/v1/events/batch", hookd.ingest), events).await?;
    let ingest_seconds = started.elapsed().as_secs_f64();
    let ingest_rss = sampling.stop().await;
    let disk = directory_bytes(&hookd.data)?;
    let backlog_reads = AdminReads::measure(&client, &hookd.admin).await?;

    let arrivals = receiver::start(port).await?;
    let sampling = RssSampler::start(hookd.child.pid());
    let drain_started = Instant::now();
    let resumed = client.request(admin("/v1/endpoints/backlog/resume")?).await?;
    if !resumed.status().is_success() {
        bail!("resuming the endpoint: {}", resumed.status());
    }
    let draining = Arc::new(AtomicBool::new(true));
    let fresh = {
        let (url, draining) = (format!("{}/v1/events", hookd.ingest), draining.clone());
        tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut round = 0;
            while draining.load(Ordering::Relaxed) {
                let tag = format!("fresh{round}");
                samples.extend(paced(&url, FRESH_RATE, Duration::from_secs(5), &tag).await?);
                round += 1;
            }
            anyhow::Ok(samples)
        })
    };
    let mut progress = Instant::now();
    while arrivals.count() < events {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if progress.elapsed() >= Duration::from_secs(30) {
            eprintln!("  drained {} of {events}", arrivals.count());
            progress = Instant::now();
        }
        if drain_started.elapsed() > Duration::from_secs(3600) {
            bail!("the backlog did not drain within an hour");
        }
    }
    let drain_seconds = drain_started.elapsed().as_secs_f64();
    draining.store(false, Ordering::Relaxed);
    let fresh = fresh.await??;
    let drain_rss = sampling.stop().await;
    let final_rss = hookd.child.rss_mib();

    let mut latencies: Vec<Duration> = Vec::new();
    let mut missing = 0;
    for sample in &fresh {
        match arrival(&arrivals, &sample.id).await {
            Some(at) => latencies.push(at.saturating_duration_since(sample.acked)),
            None => missing += 1,
        }
    }
    latencies.sort_unstable();

    println!("backlog: {events} deliveries to a paused endpoint whose subscriber is out, then drained");
    println!(
        "  ingest      {:>10.0} ev/s  ({BATCH} per batch, {CLIENTS} clients, {ingest_seconds:.1} s)",
        events as f64 / ingest_seconds
    );
    println!(
        "  disk        {:>10.1} MiB   {:.0} bytes per event (data directory after ingest)",
        disk as f64 / 1048576.0,
        disk as f64 / events as f64
    );
    println!(
        "  /metrics    {:>10.2} ms    median of {READS} with {events} pending ({:.2} ms empty)",
        backlog_reads.metrics_ms, empty_reads.metrics_ms
    );
    println!(
        "  endpoints   {:>10.2} ms    GET /v1/endpoints, median of {READS} with {events} pending ({:.2} ms empty)",
        backlog_reads.endpoints_ms, empty_reads.endpoints_ms
    );
    println!("  RSS idle    {idle_rss:>10.1} MiB");
    println!(
        "  RSS ingest  {:>10.1} MiB   max ({:.1} at the end)",
        ingest_rss.max, ingest_rss.last
    );
    println!(
        "  RSS drain   {:>10.1} MiB   max ({final_rss:.1} at the end)",
        drain_rss.max
    );
    println!(
        "  drain       {:>10.0} ev/s  ({drain_seconds:.1} s for {events})",
        events as f64 / drain_seconds
    );
    println!(
        "  fresh       {:>10} events at {FRESH_RATE:.0}/s during the drain: 202→subscriber p50 {} p99 {}, {missing} not delivered",
        fresh.len(),
        millis(quantile(&latencies, 0.50)),
        millis(quantile(&latencies, 0.99))
    );
    Ok(())
}

/// Posts `events` payment events (`backlog_0`, ...) in batches of
/// [`BATCH`] from [`CLIENTS`] clients.
pub async fn post_backlog(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    url: &str,
    events: usize,
) -> anyhow::Result<()> {
    let batches = events.div_ceil(BATCH);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (client, url, next) = (client.clone(), url.to_owned(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let batch = next.fetch_add(1, Ordering::Relaxed);
                if batch >= batches {
                    return anyhow::Ok(());
                }
                let items: Vec<String> = (batch * BATCH..((batch + 1) * BATCH).min(events))
                    .map(|n| format!(r#"{{"id":"backlog_{n}","event":"payment.completed","data":{{"student_id":"student_xyz789","amount":{{"value":49.0,"currency":"EUR"}},"n":{n}}}}}"#))
                    .collect();
                let body = format!(r#"{{"events":[{}]}}"#, items.join(","));
                let request = Request::post(&url)
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(body)))?;
                let response = client.request(request).await?;
                let status = response.status();
                response.into_body().collect().await?;
                if status != StatusCode::ACCEPTED {
                    bail!("batch {batch}: {status}");
                }
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}

/// Waits a little for `id`, which may still be on its way.
async fn arrival(arrivals: &receiver::Arrivals, id: &str) -> Option<Instant> {
    for _ in 0..100 {
        if let Some(at) = arrivals.at(id) {
            return Some(at);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// Everything under `path`, in bytes.
fn directory_bytes(path: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        let metadata = entry.metadata()?;
        total += if metadata.is_dir() {
            directory_bytes(&entry.path())?
        } else {
            metadata.len()
        };
    }
    Ok(total)
}

/// Samples a process's RSS every second until stopped.
struct RssSampler {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<f64>>,
}

struct RssFigures {
    max: f64,
    last: f64,
}

impl RssSampler {
    fn start(pid: u32) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            let mut samples = Vec::new();
            while !stopped.load(Ordering::Relaxed) {
                samples.push(rss_mib(pid));
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            samples
        });
        RssSampler { stop, task }
    }

    async fn stop(self) -> RssFigures {
        self.stop.store(true, Ordering::Relaxed);
        let samples = self.task.await.unwrap_or_default();
        RssFigures {
            max: samples.iter().copied().fold(0.0, f64::max),
            last: samples.last().copied().unwrap_or(0.0),
        }
    }
}

/// Reads of the admin API timed per backlog size.
const READS: usize = 21;

/// Median times of the admin reads that operators and Prometheus make
/// often: `GET /metrics` and `GET /v1/endpoints`.
struct AdminReads {
    metrics_ms: f64,
    endpoints_ms: f64,
}

impl AdminReads {
    async fn measure(
        client: &Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
        admin: &str,
    ) -> anyhow::Result<AdminReads> {
        let median = |path: &'static str| async move {
            let mut times = Vec::with_capacity(READS);
            for _ in 0..READS {
                let request = Request::get(format!("{admin}{path}")).body(Full::new(Bytes::new()))?;
                let started = Instant::now();
                let response = client.request(request).await?;
                if response.status() != StatusCode::OK {
                    bail!("GET {path}: {}", response.status());
                }
                response.into_body().collect().await?;
                times.push(started.elapsed());
            }
            times.sort_unstable();
            anyhow::Ok(times[READS / 2].as_secs_f64() * 1000.0)
        };
        Ok(AdminReads {
            metrics_ms: median("/metrics").await?,
            endpoints_ms: median("/v1/endpoints").await?,
        })
    }
}
