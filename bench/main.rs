//! `hookd-bench`: the load harness. It starts the real `hookd serve` and a
//! baseline as child processes on 127.0.0.1, drives both with the same load
//! from this process, and prints the figures side by side, so a noisy
//! machine shows up in both columns rather than in the ratio.
//!
//! ```sh
//! scripts/bench.sh ingest --clients 1,16,64,256 --seconds 8
//! scripts/bench.sh deliver --clients 64 --seconds 8
//! scripts/bench.sh backlog --events 1000000
//! ```

mod backlog;
mod baselines;
mod deliver;
mod ingest;
mod load;
mod processes;
mod receiver;

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
    },
    /// A million deliveries pile up for a subscriber that is out, then
    /// drain: RSS, disk per event, drain rate, and fresh events meanwhile.
    Backlog {
        #[arg(long, default_value_t = 1_000_000)]
        events: usize,
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
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    let hookd = |given: Option<String>| given.unwrap_or_else(processes::sibling_hookd);
    match cli.command {
        Bench::BareServer { listen } => runtime.block_on(baselines::bare_server(listen)),
        Bench::BareForwarder { listen, target } => runtime.block_on(baselines::bare_forwarder(listen, target)),
        Bench::Ingest {
            clients,
            seconds,
            hookd: binary,
        } => runtime.block_on(ingest::run(&clients, Duration::from_secs(seconds), &hookd(binary))),
        Bench::Deliver {
            clients,
            seconds,
            hookd: binary,
        } => runtime.block_on(deliver::run(clients, Duration::from_secs(seconds), &hookd(binary))),
        Bench::Backlog { events, hookd: binary } => runtime.block_on(backlog::run(events, &hookd(binary))),
    }
}
