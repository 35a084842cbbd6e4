//! Ingest: acknowledged events per second and latency to the answer, for
//! hookd (write-ahead log synced) beside the bare HTTP server and beside
//! RocksDB alone doing the same synced writes; and what it costs (CPU
//! seconds per 1,000 events, peak RSS) beside the bare server.

use std::time::{Duration, Instant};

use crate::disk_ceiling;
use crate::load::{Sample, closed_loop_batches, millis, quantile};
use crate::processes::{ChildGuard, ScratchDir, free_port, start_baseline, start_hookd};
use crate::report::Row;

/// Events per batch in the batch figures.
pub const BATCH: usize = 100;

struct Figures {
    per_second: f64,
    p50: Duration,
    p99: Duration,
    p999: Duration,
    /// CPU seconds of the server per 1,000 events.
    cpu_per_thousand: f64,
    peak_rss_mib: f64,
}

impl Figures {
    fn latencies(&self) -> String {
        format!("{} / {} / {}", millis(self.p50), millis(self.p99), millis(self.p999))
    }
}

/// The figures for single events from each of `clients` client counts,
/// and for batches of [`BATCH`] from `batch_clients`; the costs at
/// `cost_clients`.
pub async fn rows(
    clients: &[usize],
    batch_clients: usize,
    cost_clients: usize,
    duration: Duration,
    hookd: &str,
) -> anyhow::Result<Vec<Row>> {
    let dir = ScratchDir::new()?;
    let mut rows = Vec::new();
    let shapes = clients
        .iter()
        .map(|&count| (count, 1))
        .chain(std::iter::once((batch_clients, BATCH)));
    for (count, batch) in shapes {
        let port = free_port()?;
        let bare = start_baseline(&["bare-server", "--listen", &format!("127.0.0.1:{port}")], port).await?;
        let baseline = measure(
            &bare,
            &url(&format!("http://127.0.0.1:{port}"), batch),
            count,
            batch,
            duration,
            "bare",
        )
        .await?;
        drop(bare);
        let disk =
            tokio::task::spawn_blocking(move || disk_ceiling::events_per_second(count, batch, duration)).await??;

        // The subscriber accepts connections but never answers: hookd
        // writes every delivery at ingest, and its 16 hanging attempts to
        // the endpoint cost nothing, so the figure is ingest alone.
        let silent = std::net::TcpListener::bind("127.0.0.1:0")?;
        let silent_url = format!("http://{}/hook", silent.local_addr()?);
        let (child, events_url) = start_hookd(hookd, dir.path(), &silent_url).await?;
        let base = events_url.trim_end_matches("/v1/events").to_owned();
        let measured = measure(&child, &url(&base, batch), count, batch, duration, "hookd").await?;
        drop(child);
        drop(silent);

        let plural = if count == 1 { "" } else { "s" };
        let figure = if batch == 1 {
            format!("ingest, {count} client{plural}")
        } else {
            format!("ingest, batches of {batch}, {count} client{plural}")
        };
        rows.push(Row {
            figure: figure.clone(),
            unit: "events/s",
            hookd: measured.per_second,
            baseline_name: "bare HTTP server",
            baseline: baseline.per_second,
            detail: format!(
                "p50 / p99 / p99.9: hookd {}, bare {}",
                measured.latencies(),
                baseline.latencies()
            ),
        });
        rows.push(Row {
            figure,
            unit: "events/s",
            hookd: measured.per_second,
            baseline_name: "RocksDB synced writes",
            baseline: disk,
            detail: String::new(),
        });
        if batch == 1 && count == cost_clients {
            rows.push(Row {
                figure: format!("CPU per 1,000 events, ingest at {count} clients"),
                unit: "s",
                hookd: measured.cpu_per_thousand,
                baseline_name: "bare HTTP server",
                baseline: baseline.cpu_per_thousand,
                detail: "lower is better".into(),
            });
            rows.push(Row {
                figure: format!("peak RSS, ingest at {count} clients"),
                unit: "MiB",
                hookd: measured.peak_rss_mib,
                baseline_name: "bare HTTP server",
                baseline: baseline.peak_rss_mib,
                detail: "lower is better".into(),
            });
        }
    }
    Ok(rows)
}

fn url(base: &str, batch: usize) -> String {
    if batch == 1 {
        format!("{base}/v1/events")
    } else {
        format!("{base}/v1/events/batch")
    }
}

async fn measure(
    server: &ChildGuard,
    url: &str,
    clients: usize,
    batch: usize,
    duration: Duration,
    tag: &str,
) -> anyhow::Result<Figures> {
    let cpu = server.cpu_seconds();
    let started = Instant::now();
    let samples = closed_loop_batches(url, clients, batch, duration, &format!("{tag}{clients}x{batch}")).await?;
    let elapsed = started.elapsed();
    let used = server.cpu_seconds() - cpu;
    let mut latencies: Vec<Duration> = samples.iter().map(Sample::latency).collect();
    latencies.sort_unstable();
    Ok(Figures {
        per_second: samples.len() as f64 / elapsed.as_secs_f64(),
        p50: quantile(&latencies, 0.50),
        p99: quantile(&latencies, 0.99),
        p999: quantile(&latencies, 0.999),
        cpu_per_thousand: used / samples.len().max(1) as f64 * 1000.0,
        peak_rss_mib: server.peak_rss_mib(),
    })
}
