//! The outage run, by hand (not in CI): a subscriber is down for an hour
//! under a steady 200 events a second, with the circuit breaker and
//! without it (SPEC 4, "Circuit breaker").
//!
//! Time runs [`SCALE`] times faster than the product's: the retry schedule
//! (1 m, 5 m, 30 m, 2 h, 24 h) and the breaker's cooldown (30 s, up to
//! 10 m) are divided by it, and so is the outage: `--down 30` stands for an
//! hour. The subscriber answers `503` at once while it is down (a load
//! balancer with no backend left), then `200`.
//!
//! For each hookd (default breaker, `failures = 0`): the requests that
//! reached the subscriber while it was down; the most attempts in flight
//! (`hookd_attempts_in_flight`) and open sockets of hookd, sampled every
//! 100 ms; hookd's CPU seconds over the outage; and once the subscriber is
//! back, how long until every event was delivered and the most requests it
//! got within one second.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use bytes::Bytes;
use http::StatusCode;

use crate::load::{get, paced};
use crate::processes::{Extra, Hookd, ScratchDir, free_port, start_hookd_extended};
use crate::report::{self, Row};

/// How much faster than the product's the run's clock goes.
const SCALE: u32 = 120;
/// How long the harness waits for the backlog to drain.
const DRAIN_PATIENCE: Duration = Duration::from_secs(600);

/// The subscriber: down or up, counting what it gets.
#[derive(Default)]
struct Subscriber {
    down: AtomicBool,
    requests_while_down: AtomicU64,
    /// When each request answered `200` arrived, and the ids delivered.
    delivered_at: Mutex<Vec<Instant>>,
    delivered: Mutex<HashSet<String>>,
}

async fn answer(State(subscriber): State<Arc<Subscriber>>, body: Bytes) -> StatusCode {
    if subscriber.down.load(Ordering::Relaxed) {
        subscriber.requests_while_down.fetch_add(1, Ordering::Relaxed);
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&body)
        && let Some(id) = value["id"].as_str()
    {
        subscriber.delivered.lock().expect("lock").insert(id.to_owned());
    }
    subscriber.delivered_at.lock().expect("lock").push(Instant::now());
    StatusCode::OK
}

/// What one hookd did through the outage and after it.
struct Figures {
    requests_while_down: u64,
    most_in_flight: u64,
    most_sockets: usize,
    cpu_seconds: f64,
    drain: Duration,
    busiest_second: usize,
    events: usize,
}

pub async fn run(rate: f64, down: Duration, hookd: &str) -> anyhow::Result<()> {
    let on = one_run(rate, down, hookd, "on", &[]).await?;
    let off = one_run(rate, down, hookd, "off", &[("HOOKD_DELIVERY__BREAKER__FAILURES", "0")]).await?;
    let row = |figure: &str, unit: &'static str, value: fn(&Figures) -> f64, detail: &str| Row {
        figure: figure.to_owned(),
        unit,
        hookd: value(&on),
        baseline_name: "breaker off",
        baseline: value(&off),
        detail: detail.to_owned(),
    };
    let product_time = |duration: Duration| duration.as_secs_f64() * f64::from(SCALE) / 60.0;
    let rows = vec![
        row(
            "requests to the down subscriber",
            "requests",
            |f| f.requests_while_down as f64,
            "lower is better",
        ),
        row(
            "most attempts in flight",
            "attempts",
            |f| f.most_in_flight as f64,
            "sampled every 100 ms",
        ),
        row(
            "most open sockets of hookd",
            "sockets",
            |f| f.most_sockets as f64,
            "its two listeners not counted",
        ),
        row("hookd CPU over the outage", "s", |f| f.cpu_seconds, "ingest included"),
        row(
            "drain after it returns",
            "s",
            |f| f.drain.as_secs_f64(),
            "until every event is delivered; the retry schedule decides",
        ),
        row(
            "busiest second after it returns",
            "requests",
            |f| f.busiest_second as f64,
            "not flooded",
        ),
    ];
    println!(
        "subscriber down {:.0} s at {rate:.0} events/s ({} events), time {SCALE}x the product's: {:.0} minutes of outage",
        down.as_secs_f64(),
        on.events,
        product_time(down)
    );
    report::print(&rows);
    Ok(())
}

async fn one_run(
    rate: f64,
    down: Duration,
    binary: &str,
    name: &str,
    overrides: &[(&str, &str)],
) -> anyhow::Result<Figures> {
    let dir = ScratchDir::new_named(&format!("outage-{name}"))?;
    let subscriber = Arc::new(Subscriber::default());
    subscriber.down.store(true, Ordering::Relaxed);
    let port = free_port()?;
    let router = Router::new().fallback(answer).with_state(subscriber.clone());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let server = tokio::spawn(async move { axum::serve(listener, router).await });

    let scaled = |duration: Duration| format!("{}ms", (duration / SCALE).as_millis().max(1));
    let minutes = |m: u64| Duration::from_secs(60 * m);
    let schedule: Vec<String> = [minutes(1), minutes(5), minutes(30), minutes(120), minutes(1440)]
        .into_iter()
        .map(|delay| format!("\"{}\"", scaled(delay)))
        .collect();
    let schedule = format!("[{}]", schedule.join(", "));
    let (cooldown, max_cooldown) = (scaled(Duration::from_secs(30)), scaled(minutes(10)));
    let mut env: Vec<(&str, &str)> = vec![
        ("HOOKD_DELIVERY__RETRY_SCHEDULE", &schedule),
        ("HOOKD_DELIVERY__BREAKER__COOLDOWN", &cooldown),
        ("HOOKD_DELIVERY__BREAKER__MAX_COOLDOWN", &max_cooldown),
    ];
    env.extend_from_slice(overrides);
    let endpoint = format!(
        "[[endpoints]]\nid = \"down\"\nurl = \"http://127.0.0.1:{port}/hook\"\nevents = [\"*\"]\nsecret = \"s\"\n"
    );
    let hookd = start_hookd_extended(binary, dir.path(), &endpoint, &Extra { top: "", env: &env }).await?;

    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = tokio::spawn(sample(hookd_view(&hookd), sampling.clone()));
    let cpu = hookd.child.cpu_seconds();
    let samples = paced(
        &format!("{}/v1/events", hookd.ingest),
        rate,
        down,
        &format!("outage_{name}"),
    )
    .await?;
    let cpu_seconds = hookd.child.cpu_seconds() - cpu;
    sampling.store(false, Ordering::Relaxed);
    let (most_in_flight, most_sockets) = sampler.await??;

    let back = Instant::now();
    subscriber.down.store(false, Ordering::Relaxed);
    let ids: Vec<&str> = samples.iter().map(|sample| sample.id.as_str()).collect();
    while Instant::now() < back + DRAIN_PATIENCE {
        let drained = {
            let delivered = subscriber.delivered.lock().expect("lock");
            ids.iter().all(|id| delivered.contains(*id))
        };
        if drained {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drain = back.elapsed();
    let arrivals = subscriber.delivered_at.lock().expect("lock").clone();
    let busiest_second = arrivals
        .iter()
        .enumerate()
        .map(|(n, start)| {
            arrivals[n..]
                .iter()
                .take_while(|at| **at < *start + Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap_or(0);
    server.abort();
    let undelivered = ids.len() - subscriber.delivered.lock().expect("lock").len().min(ids.len());
    anyhow::ensure!(undelivered == 0, "breaker {name}: {undelivered} events never arrived");
    Ok(Figures {
        requests_while_down: subscriber.requests_while_down.load(Ordering::Relaxed),
        most_in_flight,
        most_sockets,
        cpu_seconds,
        drain,
        busiest_second,
        events: ids.len(),
    })
}

/// Where to read one hookd's figures: its metrics URL and its pid.
struct HookdView {
    metrics: String,
    pid: u32,
}

fn hookd_view(hookd: &Hookd) -> HookdView {
    HookdView {
        metrics: format!("{}/metrics", hookd.admin),
        pid: hookd.child.pid(),
    }
}

/// Samples attempts in flight and hookd's TCP sockets every 100 ms while
/// `running`; returns the most of each.
async fn sample(view: HookdView, running: Arc<AtomicBool>) -> anyhow::Result<(u64, usize)> {
    let (mut in_flight, mut sockets) = (0u64, 0usize);
    while running.load(Ordering::Relaxed) {
        let (_, page) = get(&view.metrics).await?;
        let now = String::from_utf8_lossy(&page)
            .lines()
            .find_map(|line| line.strip_prefix("hookd_attempts_in_flight "))
            .and_then(|value| value.trim().parse::<f64>().ok())
            .unwrap_or(0.0);
        in_flight = in_flight.max(now as u64);
        sockets = sockets.max(open_sockets(view.pid));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok((in_flight, sockets))
}

/// The sockets process `pid` has open, less its listeners.
fn open_sockets(pid: u32) -> usize {
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return 0;
    };
    let sockets = entries
        .flatten()
        .filter(|entry| {
            std::fs::read_link(entry.path()).is_ok_and(|target| target.to_string_lossy().starts_with("socket:"))
        })
        .count();
    // The ingest and admin listeners.
    sockets.saturating_sub(2)
}
