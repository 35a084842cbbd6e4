//! `hookd-bench`: the load harness. It starts the real `hookd serve` and a
//! baseline as child processes on 127.0.0.1, drives both with the same load
//! from this process, and prints the figures side by side, so a noisy
//! machine shows up in both columns rather than in the ratio.
//!
//! ```sh
//! scripts/bench.sh all --seconds 8 --write docs   # every figure, one table
//! scripts/bench.sh ingest --clients 1,16,64,256 --seconds 8
//! scripts/bench.sh deliver --clients 64 --seconds 8
//! scripts/bench.sh backlog --events 1000000
//! scripts/bench.sh fleet --endpoints 10000
//! scripts/bench.sh cluster --deliveries 100000   # needs nats-server
//! scripts/bench.sh outage --rate 200 --down 30    # the circuit breaker
//! scripts/bench.sh ordering --seconds 6          # 1,000 ordering keys vs none
//! scripts/bench.sh stats-memory --endpoints 10000 # the per-minute stats of a fleet
//! ```

mod backlog;
mod baselines;
mod cluster;
mod deliver;
mod disk_ceiling;
mod fleet;
mod ingest;
mod load;
mod ordering;
mod outage;
mod processes;
mod receiver;
mod report;
mod stats_memory;
mod steady;

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, Subcommand};

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
    /// Every figure (ingest, end to end, costs) in one table; with
    /// `--write DIR`, also `DIR/benchmarks-table.md` and
    /// `DIR/benchmarks.svg`.
    All {
        #[arg(long, default_value_t = 8)]
        seconds: u64,
        /// A short run with few clients, to check that the harness works.
        #[arg(long)]
        smoke: bool,
        #[arg(long)]
        write: Option<std::path::PathBuf>,
        #[arg(long)]
        hookd: Option<String>,
    },
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
    /// Events delivered per second to one fast subscriber, and latency from
    /// the 202 to the subscriber, beside a bare forwarder.
    Deliver {
        #[arg(long, default_value_t = 64)]
        clients: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[arg(long)]
        hookd: Option<String>,
        /// The rate (events/s) of the latency phase, instead of half of
        /// hookd's maximum: to compare two builds at the same load.
        #[arg(long)]
        rate: Option<f64>,
    },
    /// Every event to each of `endpoints` endpoints at one subscriber,
    /// beside a bare forwarder making as many copies.
    Fanout {
        #[arg(long, default_value_t = 64)]
        clients: usize,
        #[arg(long, default_value_t = 10)]
        endpoints: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[arg(long)]
        hookd: Option<String>,
    },
    /// A fleet of endpoints (two per tenant, in included files) beside two
    /// endpoints: start-up, idle CPU and RSS, a reload, ingest, /metrics.
    Fleet {
        #[arg(long, default_value_t = 10_000)]
        endpoints: usize,
        #[arg(long, default_value_t = 64)]
        clients: usize,
        /// Seconds of idling measured.
        #[arg(long, default_value_t = 60)]
        idle_seconds: u64,
        /// Seconds of ingest load.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[arg(long)]
        hookd: Option<String>,
    },
    /// A million deliveries pile up for a subscriber that is out, then
    /// drain: RSS, disk per event, drain rate, and fresh events meanwhile.
    Backlog {
        #[arg(long, default_value_t = 1_000_000)]
        events: usize,
        #[arg(long)]
        hookd: Option<String>,
    },
    /// Cluster mode: parking at SIGTERM and adoption by another replica,
    /// beside JetStream's own publish rate (needs `nats-server`).
    Cluster {
        #[arg(long, default_value_t = 100_000)]
        deliveries: usize,
        /// Seconds of load per end-to-end turn.
        #[arg(long, default_value_t = 6)]
        seconds: u64,
        #[arg(long)]
        hookd: Option<String>,
    },
    /// Delivered per second with 1,000 ordering keys on an ordered
    /// endpoint, beside the same endpoint unordered.
    Ordering {
        #[arg(long, default_value_t = 64)]
        clients: usize,
        #[arg(long, default_value_t = 8)]
        seconds: u64,
        #[arg(long)]
        hookd: Option<String>,
    },
    /// The memory the per-minute stats hold for a fleet with a day of
    /// attempts.
    StatsMemory {
        #[arg(long, default_value_t = 10_000)]
        endpoints: usize,
        /// Attempts in every this-many-th minute of the day.
        #[arg(long, default_value_t = 1)]
        every: u64,
    },
    /// A subscriber down for an hour (time scaled) under a steady rate,
    /// with the circuit breaker and without.
    Outage {
        /// Events per second while the subscriber is down.
        #[arg(long, default_value_t = 200.0)]
        rate: f64,
        /// Seconds the subscriber is down; the run's time goes 120 times
        /// faster than the product's, so 30 stands for an hour.
        #[arg(long, default_value_t = 30)]
        down: u64,
        #[arg(long)]
        hookd: Option<String>,
    },
    /// A steady rate for minutes, delivered to a fast subscriber, with
    /// hookd's RSS every 30 s: does memory stay flat?
    Steady {
        #[arg(long, default_value_t = 10)]
        minutes: u64,
        #[arg(long, default_value_t = 1000.0)]
        rate: f64,
        #[arg(long)]
        hookd: Option<String>,
    },
    /// Baseline: answers every POST with 202 and stores nothing.
    BareServer {
        #[arg(long)]
        listen: SocketAddr,
    },
    /// Baseline: answers 202 and forwards each body to `target`, without
    /// storing or signing.
    BareForwarder {
        #[arg(long)]
        listen: SocketAddr,
        #[arg(long)]
        target: String,
        /// Copies of each body to forward (to `target/0`, `target/1`, ...).
        #[arg(long, default_value_t = 1)]
        copies: usize,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    let hookd = |given: Option<String>| given.unwrap_or_else(processes::sibling_hookd);
    match cli.command {
        Bench::Cluster {
            deliveries,
            seconds,
            hookd: binary,
        } => runtime.block_on(cluster::run(deliveries, seconds, &hookd(binary))),
        Bench::BareServer { listen } => runtime.block_on(baselines::bare_server(listen)),
        Bench::BareForwarder { listen, target, copies } => {
            runtime.block_on(baselines::bare_forwarder(listen, target, copies))
        }
        Bench::Ingest {
            clients,
            seconds,
            hookd: binary,
        } => {
            let duration = Duration::from_secs(seconds);
            let rows = runtime.block_on(ingest::rows(&clients, 16, 64, duration, &hookd(binary)))?;
            report::print(&rows);
            Ok(())
        }
        Bench::Deliver {
            clients,
            seconds,
            hookd: binary,
            rate,
        } => {
            let rows = runtime.block_on(deliver::rows(
                clients,
                Duration::from_secs(seconds),
                &hookd(binary),
                rate,
            ))?;
            report::print(&rows);
            Ok(())
        }
        Bench::All {
            seconds,
            smoke,
            write,
            hookd: binary,
        } => {
            let binary = hookd(binary);
            let duration = Duration::from_secs(seconds);
            let (clients, batch_clients, deliver_clients): (&[usize], usize, usize) = if smoke {
                (&[1, 4], 4, 4)
            } else {
                (&[1, 16, 64, 256], 16, 64)
            };
            let mut rows =
                runtime.block_on(ingest::rows(clients, batch_clients, deliver_clients, duration, &binary))?;
            rows.extend(runtime.block_on(deliver::rows(deliver_clients, duration, &binary, None))?);
            rows.push(runtime.block_on(deliver::fanout_row(deliver_clients, 10, duration, &binary))?);
            let (endpoints, idle) = if smoke { (200, 2) } else { (10_000, 60) };
            rows.extend(runtime.block_on(fleet::rows(
                endpoints,
                deliver_clients,
                Duration::from_secs(idle),
                duration,
                &binary,
            ))?);
            report::print(&rows);
            if let Some(dir) = write {
                let command = std::env::args().skip(1).collect::<Vec<_>>().join(" ");
                std::fs::write(
                    dir.join("benchmarks-table.md"),
                    format!("{}\n{}", report::machine(&command), report::markdown(&rows)),
                )?;
                std::fs::write(dir.join("benchmarks.svg"), report::svg(&rows))?;
            }
            Ok(())
        }
        Bench::Fanout {
            clients,
            endpoints,
            seconds,
            hookd: binary,
        } => {
            let row = runtime.block_on(deliver::fanout_row(
                clients,
                endpoints,
                Duration::from_secs(seconds),
                &hookd(binary),
            ))?;
            report::print(&[row]);
            Ok(())
        }
        Bench::Fleet {
            endpoints,
            clients,
            idle_seconds,
            seconds,
            hookd: binary,
        } => {
            let rows = runtime.block_on(fleet::rows(
                endpoints,
                clients,
                Duration::from_secs(idle_seconds),
                Duration::from_secs(seconds),
                &hookd(binary),
            ))?;
            report::print(&rows);
            Ok(())
        }
        Bench::Ordering {
            clients,
            seconds,
            hookd: binary,
        } => {
            let row = runtime.block_on(ordering::row(clients, Duration::from_secs(seconds), &hookd(binary)))?;
            report::print(&[row]);
            Ok(())
        }
        Bench::StatsMemory { endpoints, every } => stats_memory::run(endpoints, every),
        Bench::Outage {
            rate,
            down,
            hookd: binary,
        } => runtime.block_on(outage::run(rate, Duration::from_secs(down), &hookd(binary))),
        Bench::Backlog { events, hookd: binary } => runtime.block_on(backlog::run(events, &hookd(binary))),
        Bench::Steady {
            minutes,
            rate,
            hookd: binary,
        } => runtime.block_on(steady::run(minutes, rate, &hookd(binary))),
    }
}
