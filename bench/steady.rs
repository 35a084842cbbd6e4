//! A steady load for minutes, to see whether memory stays flat: hookd
//! delivers to a fast local subscriber while events arrive at a fixed
//! rate, and its RSS is printed every 30 seconds.

use std::time::{Duration, Instant};

use crate::load::paced;
use crate::processes::{ScratchDir, free_port, start_hookd};
use crate::receiver;

/// How often RSS is read.
const EVERY: Duration = Duration::from_secs(30);

pub async fn run(minutes: u64, rate: f64, hookd: &str) -> anyhow::Result<()> {
    let dir = ScratchDir::new()?;
    let port = free_port()?;
    let arrivals = receiver::start(port).await?;
    let (child, url) = start_hookd(hookd, dir.path(), &format!("http://127.0.0.1:{port}/hook")).await?;
    println!("steady: {rate:.0} events/s for {minutes} min, delivered to a fast subscriber");
    println!(
        "{:>8} | {:>10} | {:>12} | {:>10}",
        "minute", "RSS MiB", "delivered", "CPU s"
    );
    let started = Instant::now();
    let mut round = 0;
    while started.elapsed() < Duration::from_secs(minutes * 60) {
        paced(&url, rate, EVERY, &format!("steady{round}")).await?;
        round += 1;
        println!(
            "{:>8.1} | {:>10.1} | {:>12} | {:>10.1}",
            started.elapsed().as_secs_f64() / 60.0,
            child.rss_mib(),
            arrivals.count(),
            child.cpu_seconds()
        );
    }
    println!("peak RSS {:.1} MiB", child.peak_rss_mib());
    Ok(())
}
