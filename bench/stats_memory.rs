//! What the per-minute stats ([`hookd::dispatch::stats`]) hold for a fleet:
//! `endpoints` endpoints with attempts in every `every`th minute of a whole
//! day, recorded into this process's own `Stats` with the day's
//! timestamps, and this process's resident memory before and after (one
//! case per run, so no freed memory is counted). Run by hand:
//! `hookd-bench stats-memory --endpoints 10000 --every 1`.

use hookd::dispatch::stats::{Finished, Stats};

use crate::processes::rss_mib;

const MINUTE_MS: u64 = 60_000;

pub fn run(endpoints: usize, every: u64) -> anyhow::Result<()> {
    let ids: Vec<String> = (0..endpoints).map(|n| format!("tenant{n}-crm")).collect();
    let start = 20_000 * 24 * 60 * MINUTE_MS;
    {
        let stats = Stats::default();
        let before = rss_mib(std::process::id());
        for minute in (0..24 * 60).step_by(every.max(1) as usize) {
            let at = start + minute * MINUTE_MS;
            for (n, id) in ids.iter().enumerate() {
                let failed = (minute + n as u64).is_multiple_of(7);
                let (result, finished) = if failed {
                    ("status", Finished::Failed)
                } else {
                    ("success", Finished::Succeeded)
                };
                stats.record(id, at, result, Some(5 + (minute % 50)), finished);
            }
        }
        let after = rss_mib(std::process::id());
        println!(
            "stats of {endpoints} endpoints with attempts in every {} of a day's minutes: {:.1} MiB resident for them ({:.1} KiB an endpoint)",
            if every == 1 {
                "one".to_owned()
            } else {
                format!("{every}th")
            },
            after - before,
            (after - before) * 1024.0 / endpoints as f64,
        );
        drop(stats);
    }
    Ok(())
}
