//! End to end: events delivered per second to one fast local subscriber,
//! and the latency from the 202 to the subscriber receiving the event at
//! half of hookd's maximum rate, for hookd beside the bare forwarder; and
//! deliveries per second when each event goes to ten endpoints.

use std::time::{Duration, Instant};

use crate::load::{Sample, closed_loop, closed_loop_of, event_body, millis, paced, quantile};
use crate::processes::{ChildGuard, ScratchDir, free_port, start_baseline, start_hookd, start_hookd_with};
use crate::receiver::{self, Arrivals};
use crate::report::Row;

/// How long the harness waits for the last deliveries of a phase.
const DRAIN_PATIENCE: Duration = Duration::from_secs(120);

struct Figures {
    delivered_per_second: f64,
    lost: usize,
    p50: Duration,
    p99: Duration,
}

/// Delivered events per second with `clients` posting, and latency from
/// the 202 to the subscriber at half of hookd's rate (or at `rate`),
/// beside the bare forwarder; and hookd's CPU per 1,000 delivered events.
pub async fn rows(clients: usize, duration: Duration, hookd: &str, rate: Option<f64>) -> anyhow::Result<Vec<Row>> {
    let dir = ScratchDir::new()?;
    let receiver_port = free_port()?;
    let arrivals = receiver::start(receiver_port).await?;
    let subscriber = format!("http://127.0.0.1:{receiver_port}/hook");

    let (child, url) = start_hookd(hookd, dir.path(), &subscriber).await?;
    let cpu = child.cpu_seconds();
    let hookd_max = throughput(&url, clients, duration, "hookd", &arrivals).await?;
    let hookd_cpu = child.cpu_seconds() - cpu;
    let rate = rate.unwrap_or(hookd_max.0 / 2.0);
    let hookd_figures = latency(&url, rate, duration, "hookd", &arrivals, hookd_max).await?;
    drop(child);

    let (forwarder, forwarder_url) = start_forwarder(&subscriber, 1).await?;
    let cpu = forwarder.cpu_seconds();
    let forwarder_max = throughput(&forwarder_url, clients, duration, "fwd", &arrivals).await?;
    let forwarder_cpu = forwarder.cpu_seconds() - cpu;
    let forwarder_figures = latency(&forwarder_url, rate, duration, "fwd", &arrivals, forwarder_max).await?;
    drop(forwarder);

    let per_thousand = |cpu: f64, (_, _, delivered): (f64, usize, usize)| cpu / delivered.max(1) as f64 * 1000.0;
    Ok(vec![
        Row {
            figure: format!("end to end, 1 endpoint, {clients} clients"),
            unit: "delivered/s",
            hookd: hookd_figures.delivered_per_second,
            baseline_name: "bare forwarder",
            baseline: forwarder_figures.delivered_per_second,
            detail: format!(
                "lost: hookd {}, forwarder {}",
                hookd_figures.lost, forwarder_figures.lost
            ),
        },
        Row {
            figure: format!("202 to subscriber p99, at {rate:.0}/s"),
            unit: "ms",
            hookd: hookd_figures.p99.as_secs_f64() * 1000.0,
            baseline_name: "bare forwarder",
            baseline: forwarder_figures.p99.as_secs_f64() * 1000.0,
            detail: format!(
                "p50: hookd {}, forwarder {}; lower is better",
                millis(hookd_figures.p50),
                millis(forwarder_figures.p50)
            ),
        },
        Row {
            figure: "CPU per 1,000 delivered events".into(),
            unit: "s",
            hookd: per_thousand(hookd_cpu, hookd_max),
            baseline_name: "bare forwarder",
            baseline: per_thousand(forwarder_cpu, forwarder_max),
            detail: "lower is better".into(),
        },
    ])
}

/// Deliveries per second when every event goes to `endpoints` endpoints,
/// beside the forwarder posting each body that many times.
pub async fn fanout_row(clients: usize, endpoints: usize, duration: Duration, hookd: &str) -> anyhow::Result<Row> {
    let dir = ScratchDir::new_named("fanout")?;
    let port = free_port()?;
    let arrivals = receiver::start(port).await?;
    let subscriber = format!("http://127.0.0.1:{port}/hook");
    let config: String = (0..endpoints)
        .map(|i| {
            format!("[[endpoints]]\nid = \"e{i}\"\nurl = \"{subscriber}/{i}\"\nevents = [\"*\"]\nsecret = \"s{i}\"\n")
        })
        .collect();
    let hookd = start_hookd_with(hookd, dir.path(), &config).await?;
    let hookd_rate = fanout_throughput(
        &format!("{}/v1/events", hookd.ingest),
        clients,
        endpoints,
        duration,
        "hookd_fan",
        &arrivals,
    )
    .await?;
    drop(hookd);
    let (forwarder, forwarder_url) = start_forwarder(&subscriber, endpoints).await?;
    let forwarder_rate = fanout_throughput(&forwarder_url, clients, endpoints, duration, "fwd_fan", &arrivals).await?;
    drop(forwarder);
    Ok(Row {
        figure: format!("end to end, {endpoints} endpoints, {clients} clients"),
        unit: "deliveries/s",
        hookd: hookd_rate,
        baseline_name: "bare forwarder",
        baseline: forwarder_rate,
        detail: "every event to every endpoint".into(),
    })
}

/// Starts the bare forwarder, posting `copies` of each body to
/// `subscriber`; returns it and its ingest URL.
async fn start_forwarder(subscriber: &str, copies: usize) -> anyhow::Result<(ChildGuard, String)> {
    let port = free_port()?;
    let listen = format!("127.0.0.1:{port}");
    let copies = copies.to_string();
    let args = [
        "bare-forwarder",
        "--listen",
        &listen,
        "--target",
        subscriber,
        "--copies",
        &copies,
    ];
    let forwarder = start_baseline(&args, port).await?;
    Ok((forwarder, format!("http://{listen}/v1/events")))
}

/// Closed-loop posting, then waiting until every copy arrived: requests
/// per second at the subscriber, from the first post to the last arrival.
async fn fanout_throughput(
    url: &str,
    clients: usize,
    copies: usize,
    duration: Duration,
    tag: &str,
    arrivals: &Arrivals,
) -> anyhow::Result<f64> {
    let before = arrivals.requests();
    let started = Instant::now();
    let samples = closed_loop(url, clients, duration, tag).await?;
    let expected = before + (samples.len() * copies) as u64;
    let deadline = Instant::now() + DRAIN_PATIENCE;
    while arrivals.requests() < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok((arrivals.requests() - before) as f64 / started.elapsed().as_secs_f64())
}

/// Closed-loop posting, then waiting for every delivery: events delivered
/// per second from the first post to the last arrival, how many never
/// arrived, and how many did.
pub async fn throughput(
    url: &str,
    clients: usize,
    duration: Duration,
    tag: &str,
    arrivals: &Arrivals,
) -> anyhow::Result<(f64, usize, usize)> {
    throughput_of(url, clients, duration, tag, arrivals, event_body).await
}

/// [`throughput`] with events from `body` (given each id).
pub async fn throughput_of(
    url: &str,
    clients: usize,
    duration: Duration,
    tag: &str,
    arrivals: &Arrivals,
    body: fn(&str) -> bytes::Bytes,
) -> anyhow::Result<(f64, usize, usize)> {
    let started = Instant::now();
    let samples = closed_loop_of(url, clients, 1, duration, &format!("{tag}_max"), body).await?;
    let arrived = arrivals_of(&samples, arrivals).await;
    let last = arrived.iter().flatten().max().copied().unwrap_or(started);
    let delivered = arrived.iter().flatten().count();
    Ok((
        delivered as f64 / (last - started).as_secs_f64(),
        samples.len() - delivered,
        delivered,
    ))
}

/// Paced posting at `rate`: latency from each 202 to its arrival.
async fn latency(
    url: &str,
    rate: f64,
    duration: Duration,
    tag: &str,
    arrivals: &Arrivals,
    (delivered_per_second, lost_at_max, _): (f64, usize, usize),
) -> anyhow::Result<Figures> {
    let samples = paced(url, rate, duration, &format!("{tag}_paced")).await?;
    let arrived = arrivals_of(&samples, arrivals).await;
    let mut latencies: Vec<Duration> = samples
        .iter()
        .zip(&arrived)
        .filter_map(|(sample, at)| at.map(|at| at.saturating_duration_since(sample.acked)))
        .collect();
    latencies.sort_unstable();
    Ok(Figures {
        delivered_per_second,
        lost: lost_at_max + samples.len() - latencies.len(),
        p50: quantile(&latencies, 0.50),
        p99: quantile(&latencies, 0.99),
    })
}

async fn arrivals_of(samples: &[Sample], arrivals: &Arrivals) -> Vec<Option<Instant>> {
    let ids: Vec<&str> = samples.iter().map(|sample| sample.id.as_str()).collect();
    arrivals.wait_for(&ids, DRAIN_PATIENCE).await
}
