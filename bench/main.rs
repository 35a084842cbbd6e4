//! `hookd-bench`: the load harness. It starts the real `hookd serve` and a
//! baseline server as child processes on 127.0.0.1, drives both with the
//! same load from this process, and prints the figures side by side, so a
//! noisy machine shows up in both columns rather than in the ratio.
//!
//! ```sh
//! cargo run --release --bin hookd-bench -- ingest --clients 1,16,64,256 --seconds 10
//! ```
//!
//! Baselines: `bare` is an HTTP server that reads the body and answers 202
//! without storing anything (the HTTP ceiling on this machine).

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::Router;
use axum::routing::post;
use bytes::Bytes;
use clap::{Parser, Subcommand};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

#[derive(Parser)]
#[command(
    name = "hookd-bench",
    about = "Load harness for hookd, with baselines in the same run"
)]
struct Cli {
    #[command(subcommand)]
    command: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// Acknowledged events per second and latency to the answer, for hookd
    /// (WAL synced) beside a bare HTTP server that stores nothing.
    Ingest {
        /// Concurrent clients, comma-separated.
        #[arg(long, default_value = "1,16,64,256", value_delimiter = ',')]
        clients: Vec<usize>,
        /// Seconds of load per figure.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// The hookd binary (default: the one next to this harness).
        #[arg(long)]
        hookd: Option<String>,
    },
    /// The baseline: answers every POST with 202 and stores nothing.
    BareServer {
        #[arg(long)]
        listen: SocketAddr,
    },
}

/// A realistic event: about 300 bytes, no id (each post is a new event).
const EVENT: &str = r#"{"event":"enrollment.created","data":{"student_id":"student_xyz789","course_id":"course_rust_101","enrolled_at":"2025-03-20T10:30:00Z","price":{"amount":49.0,"currency":"EUR"},"source":"web","coupon":null,"cohort":"2025-spring","tags":["beginner","self-paced"]}}"#;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    match cli.command {
        Bench::BareServer { listen } => runtime.block_on(bare_server(listen)),
        Bench::Ingest {
            clients,
            seconds,
            hookd,
        } => {
            let hookd = hookd.unwrap_or_else(sibling_hookd);
            runtime.block_on(ingest(&clients, Duration::from_secs(seconds), &hookd))
        }
    }
}

async fn bare_server(listen: SocketAddr) -> anyhow::Result<()> {
    async fn accept(body: Bytes) -> (StatusCode, &'static str) {
        std::hint::black_box(body);
        (StatusCode::ACCEPTED, r#"{"id":"evt_bare","deliveries":1}"#)
    }
    let router = Router::new().route("/v1/events", post(accept));
    let listener = tokio::net::TcpListener::bind(listen).await?;
    axum::serve(listener, router).await?;
    Ok(())
}

/// One load run's figures.
struct Figures {
    per_second: f64,
    p50: Duration,
    p99: Duration,
    p999: Duration,
}

async fn ingest(clients: &[usize], duration: Duration, hookd: &str) -> anyhow::Result<()> {
    let dir = ScratchDir::new()?;
    println!(
        "ingest: single-event POSTs, {EVENT_LEN} bytes each, {} s per figure",
        duration.as_secs(),
        EVENT_LEN = EVENT.len()
    );
    println!(
        "{:>8} | {:>12} {:>9} {:>9} {:>9} | {:>12} {:>9} {:>9} {:>9} | {:>6}",
        "clients", "hookd ev/s", "p50", "p99", "p99.9", "bare ev/s", "p50", "p99", "p99.9", "ratio"
    );
    for &count in clients {
        let bare_port = free_port()?;
        let bare = ChildGuard(
            Command::new(std::env::current_exe()?)
                .args(["bare-server", "--listen", &format!("127.0.0.1:{bare_port}")])
                .stdout(Stdio::null())
                .spawn()?,
        );
        let bare_url = format!("http://127.0.0.1:{bare_port}/v1/events");
        wait_until_up(&bare_url).await?;
        let baseline = load(&bare_url, count, duration).await?;
        drop(bare);

        let data = dir.path().join(format!("data-{count}"));
        let (hookd_child, url) = start_hookd(hookd, dir.path(), &data)?;
        wait_until_up(&url).await?;
        let measured = load(&url, count, duration).await?;
        drop(hookd_child);

        println!(
            "{:>8} | {:>12.0} {:>9} {:>9} {:>9} | {:>12.0} {:>9} {:>9} {:>9} | {:>6.2}",
            count,
            measured.per_second,
            millis(measured.p50),
            millis(measured.p99),
            millis(measured.p999),
            baseline.per_second,
            millis(baseline.p50),
            millis(baseline.p99),
            millis(baseline.p999),
            measured.per_second / baseline.per_second
        );
    }
    Ok(())
}

fn millis(duration: Duration) -> String {
    format!("{:.2}ms", duration.as_secs_f64() * 1000.0)
}

/// Runs `clients` concurrent loops posting [`EVENT`] for `duration`.
async fn load(url: &str, clients: usize, duration: Duration) -> anyhow::Result<Figures> {
    let client = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(clients)
        .build_http::<Full<Bytes>>();
    let url: Arc<str> = url.into();
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let client = client.clone();
            let url = url.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let request = Request::post(&*url)
                        .header("content-type", "application/json")
                        .body(Full::new(Bytes::from_static(EVENT.as_bytes())))?;
                    let sent = Instant::now();
                    let response = client.request(request).await?;
                    let status = response.status();
                    response.into_body().collect().await?;
                    if status != StatusCode::ACCEPTED {
                        bail!("unexpected status {status}");
                    }
                    latencies.push(sent.elapsed());
                }
                anyhow::Ok(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let at = |quantile: f64| latencies[((latencies.len() as f64 * quantile) as usize).min(latencies.len() - 1)];
    Ok(Figures {
        per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
        p999: at(0.999),
    })
}

/// Starts `hookd serve` on a fresh data directory with one subscribed
/// endpoint, so every event also writes one delivery.
fn start_hookd(binary: &str, dir: &Path, data: &Path) -> anyhow::Result<(ChildGuard, String)> {
    let ingest_port = free_port()?;
    let admin_port = free_port()?;
    let config = dir.join(format!("hookd-{ingest_port}.toml"));
    std::fs::write(
        &config,
        format!(
            r#"
[ingest]
listen = "127.0.0.1:{ingest_port}"
[admin]
listen = "127.0.0.1:{admin_port}"
[storage]
path = "{}"
[telemetry]
log_level = "warn"
[[endpoints]]
id = "bench"
url = "http://127.0.0.1:9/bench"
events = ["*"]
secret = "bench-secret"
"#,
            data.display()
        ),
    )?;
    let child = Command::new(binary)
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {binary}"))?;
    Ok((ChildGuard(child), format!("http://127.0.0.1:{ingest_port}/v1/events")))
}

/// The `hookd` binary built beside this one.
fn sibling_hookd() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join("hookd")))
        .map(|path| path.display().to_string())
        .unwrap_or_else(|| "hookd".to_owned())
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

async fn wait_until_up(url: &str) -> anyhow::Result<()> {
    let address = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    for _ in 0..600 {
        if tokio::net::TcpStream::connect(&address).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("{url} did not come up")
}

/// A directory for configs and data, removed when dropped.
struct ScratchDir(std::path::PathBuf);

impl ScratchDir {
    fn new() -> anyhow::Result<ScratchDir> {
        let path = std::env::temp_dir().join(format!("hookd-bench-{}", std::process::id()));
        std::fs::create_dir_all(&path)?;
        Ok(ScratchDir(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Kills its child when dropped.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
