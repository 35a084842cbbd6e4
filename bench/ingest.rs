//! Ingest: acknowledged events per second and latency to the answer, for
//! hookd (write-ahead log synced) beside the bare HTTP server.

use std::time::Duration;

use crate::load::{Sample, closed_loop, millis, quantile};
use crate::processes::{ScratchDir, free_port, start_baseline, start_hookd};

struct Figures {
    per_second: f64,
    p50: Duration,
    p99: Duration,
    p999: Duration,
}

impl Figures {
    fn of(samples: &[Sample], elapsed: Duration) -> Figures {
        let mut latencies: Vec<Duration> = samples.iter().map(Sample::latency).collect();
        latencies.sort_unstable();
        Figures {
            per_second: samples.len() as f64 / elapsed.as_secs_f64(),
            p50: quantile(&latencies, 0.50),
            p99: quantile(&latencies, 0.99),
            p999: quantile(&latencies, 0.999),
        }
    }

    fn columns(&self) -> String {
        format!(
            "{:>12.0} {:>9} {:>9} {:>9}",
            self.per_second,
            millis(self.p50),
            millis(self.p99),
            millis(self.p999)
        )
    }
}

pub async fn run(clients: &[usize], duration: Duration, hookd: &str) -> anyhow::Result<()> {
    let dir = ScratchDir::new()?;
    println!(
        "ingest: single-event POSTs with ids, about 300 bytes each, {} s per figure",
        duration.as_secs()
    );
    println!(
        "{:>8} | {:>12} {:>9} {:>9} {:>9} | {:>12} {:>9} {:>9} {:>9} | {:>6}",
        "clients", "hookd ev/s", "p50", "p99", "p99.9", "bare ev/s", "p50", "p99", "p99.9", "ratio"
    );
    for &count in clients {
        let port = free_port()?;
        let bare = start_baseline(&["bare-server", "--listen", &format!("127.0.0.1:{port}")], port).await?;
        let baseline = measure(&format!("http://127.0.0.1:{port}/v1/events"), count, duration, "bare").await?;
        drop(bare);

        // The subscriber accepts connections but never answers: hookd
        // writes every delivery at ingest, and its 16 hanging attempts to
        // the endpoint cost nothing, so the figure is ingest alone.
        let silent = std::net::TcpListener::bind("127.0.0.1:0")?;
        let silent_url = format!("http://{}/hook", silent.local_addr()?);
        let (child, url) = start_hookd(hookd, dir.path(), &silent_url).await?;
        let measured = measure(&url, count, duration, "hookd").await?;
        drop(child);
        drop(silent);

        println!(
            "{count:>8} | {} | {} | {:>6.2}",
            measured.columns(),
            baseline.columns(),
            measured.per_second / baseline.per_second
        );
    }
    Ok(())
}

async fn measure(url: &str, clients: usize, duration: Duration, tag: &str) -> anyhow::Result<Figures> {
    let started = std::time::Instant::now();
    let samples = closed_loop(url, clients, duration, &format!("{tag}{clients}")).await?;
    Ok(Figures::of(&samples, started.elapsed()))
}
