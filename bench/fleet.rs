//! Fleets: hookd with many endpoints (two per tenant, in included files,
//! one file per tenant, `per_endpoint_metrics = false`) beside the same
//! hookd with two endpoints: start-up, idle CPU and memory, a reload that
//! changes one endpoint, ingest of events that each match two endpoints
//! (with hookd's CPU per ingested event), and the size of `/metrics`.
//!
//! Both deliver to a subscriber that never answers, with
//! `delivery.concurrency = 1`: the delivery side does the same little work
//! in both, so the ingest figure is what a fleet costs routing and storing
//! an event. (Unthrottled, ten thousand hanging endpoints keep thousands of
//! attempts and connections open, by design, while two keep 32: that
//! figure measures the hanging subscribers, not the fleet.)

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use http::StatusCode;

use crate::load::{Sample, closed_loop_of, get};
use crate::processes::{Extra, Hookd, ScratchDir, start_hookd_extended};
use crate::report::Row;

/// Tenants of the events the load posts, spread over the fleet's.
const EVENT_TENANTS: u64 = 5_000;

/// What one hookd measured.
#[derive(Default)]
struct Figures {
    startup_s: f64,
    idle_cpu_percent: f64,
    idle_rss_mib: f64,
    reload_s: f64,
    ingest_events: usize,
    ingest_seconds: f64,
    /// hookd's CPU time over the ingest turns.
    ingest_cpu_seconds: f64,
    metrics_kib: f64,
}

impl Figures {
    fn ingest_per_second(&self) -> f64 {
        self.ingest_events as f64 / self.ingest_seconds
    }

    fn ingest_cpu_us_per_event(&self) -> f64 {
        self.ingest_cpu_seconds / self.ingest_events as f64 * 1e6
    }
}

/// The rows for a fleet of `endpoints` (two per tenant) beside two
/// endpoints, idling `idle` and loading with `clients` for `duration`.
///
/// Both hookds run side by side; the ingest load alternates between them
/// in eight turns of an eighth of `duration` each (small, fleet, fleet,
/// small, twice), so a drift in the machine's speed over the run (other
/// work, the disk's state, a store that grows) weighs on both alike.
pub async fn rows(
    endpoints: usize,
    clients: usize,
    idle: Duration,
    duration: Duration,
    hookd: &str,
) -> anyhow::Result<Vec<Row>> {
    let mut small = Fleet::start(2, hookd).await?;
    let mut fleet = Fleet::start(endpoints, hookd).await?;
    small.idle_and_reload(idle).await?;
    fleet.idle_and_reload(idle).await?;
    let turn = duration / 8;
    for fleet_turn in [false, true, true, false].repeat(2) {
        let side = if fleet_turn { &mut fleet } else { &mut small };
        side.ingest(clients, turn).await?;
        // Let the turn's flush settle before the other side loads.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let small = small.finish().await?;
    let fleet = fleet.finish().await?;
    let two = "2 endpoints";
    let row = |figure: String, unit, hookd: f64, baseline: f64, detail: &str| Row {
        figure,
        unit,
        hookd,
        baseline_name: two,
        baseline,
        detail: detail.to_owned(),
    };
    Ok(vec![
        row(
            format!("start-up with {endpoints} endpoints"),
            "s",
            fleet.startup_s,
            small.startup_s,
            "spawn to /readyz 200; target < 2 s; lower is better",
        ),
        row(
            format!("reload of {endpoints} endpoints, one changed"),
            "s",
            fleet.reload_s,
            small.reload_s,
            "SIGHUP to the new config in force; target < 1 s; lower is better",
        ),
        row(
            format!("idle CPU with {endpoints} endpoints, {} s", idle.as_secs()),
            "% core",
            fleet.idle_cpu_percent,
            small.idle_cpu_percent,
            "target < 2% of one core; lower is better",
        ),
        row(
            format!("RSS with {endpoints} idle endpoints"),
            "MiB",
            fleet.idle_rss_mib,
            small.idle_rss_mib,
            "target < 60 MiB; lower is better",
        ),
        row(
            format!("ingest, {clients} clients, {endpoints} endpoints, 2 matching"),
            "events/s",
            fleet.ingest_per_second(),
            small.ingest_per_second(),
            "each event to its tenant's 2 endpoints, in alternating turns; target ≥ 0.9",
        ),
        row(
            format!("hookd CPU per ingested event, {endpoints} endpoints"),
            "µs",
            fleet.ingest_cpu_us_per_event(),
            small.ingest_cpu_us_per_event(),
            "over the same turns, flushes and compactions included; lower is better",
        ),
        row(
            format!("/metrics with {endpoints} endpoints, per_endpoint_metrics = false"),
            "KiB",
            fleet.metrics_kib,
            small.metrics_kib,
            "after the ingest load; target < 50 KiB",
        ),
    ])
}

/// One hookd with `endpoints` endpoints, and what it measured so far.
struct Fleet {
    endpoints: usize,
    dir: ScratchDir,
    /// Accepts connections and never answers.
    silent: std::net::TcpListener,
    hookd: Hookd,
    figures: Figures,
    turns: u32,
}

impl Fleet {
    /// Writes the fleet's files and starts hookd on them; the figure is the
    /// time from spawning it to `/readyz` answering 200.
    async fn start(endpoints: usize, binary: &str) -> anyhow::Result<Fleet> {
        let dir = ScratchDir::new_named(&format!("fleet-{endpoints}"))?;
        // The subscriber never answers, and one attempt at a time is made:
        // the figures are hookd's own work.
        let silent = std::net::TcpListener::bind("127.0.0.1:0")?;
        let url = silent_url(&silent)?;
        let included = dir.path().join("endpoints.d");
        std::fs::create_dir_all(&included)?;
        for tenant in 0..tenants(endpoints) {
            write_tenant(&included, tenant, &url, 0)?;
        }
        let started = Instant::now();
        let hookd = start_hookd_extended(
            binary,
            dir.path(),
            "",
            &Extra {
                top: &format!("include = [\"{}/*.toml\"]", included.display()),
                env: &[
                    ("HOOKD_TELEMETRY__PER_ENDPOINT_METRICS", "false"),
                    ("HOOKD_DELIVERY__CONCURRENCY", "1"),
                ],
            },
        )
        .await?;
        wait_ready(&hookd).await?;
        let figures = Figures {
            startup_s: started.elapsed().as_secs_f64(),
            ..Figures::default()
        };
        Ok(Fleet {
            endpoints,
            dir,
            silent,
            hookd,
            figures,
            turns: 0,
        })
    }

    /// Idle CPU and RSS (after the workers' first reads of their queues),
    /// then a reload that changes one tenant's file: one endpoint's URL.
    async fn idle_and_reload(&mut self, idle: Duration) -> anyhow::Result<()> {
        let hookd = &self.hookd;
        tokio::time::sleep(Duration::from_secs(5)).await;
        let cpu = hookd.child.cpu_seconds();
        tokio::time::sleep(idle).await;
        self.figures.idle_cpu_percent = (hookd.child.cpu_seconds() - cpu) / idle.as_secs_f64() * 100.0;
        self.figures.idle_rss_mib = hookd.child.rss_mib();

        let before = loaded_at(hookd).await?;
        let included = self.dir.path().join("endpoints.d");
        write_tenant(&included, tenants(self.endpoints) / 2, &silent_url(&self.silent)?, 1)?;
        let reload_started = Instant::now();
        let status = std::process::Command::new("kill")
            .args(["-HUP", &hookd.child.pid().to_string()])
            .status()?;
        if !status.success() {
            bail!("kill -HUP failed");
        }
        while loaded_at(hookd).await? == before {
            if reload_started.elapsed() > Duration::from_secs(60) {
                bail!("the reload did not happen");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.figures.reload_s = reload_started.elapsed().as_secs_f64();
        Ok(())
    }

    /// One turn of ingest load.
    async fn ingest(&mut self, clients: usize, duration: Duration) -> anyhow::Result<()> {
        let body: fn(&str) -> Bytes = if self.endpoints <= 2 {
            tenant_zero_event
        } else {
            spread_event
        };
        let events_url = format!("{}/v1/events", self.hookd.ingest);
        // Ids differ from turn to turn, so no turn's events are duplicates.
        let prefix = format!("fleet{}t{}", self.endpoints, self.turns);
        self.turns += 1;
        let started = Instant::now();
        let cpu = self.hookd.child.cpu_seconds();
        let samples: Vec<Sample> = closed_loop_of(&events_url, clients, 1, duration, &prefix, body).await?;
        self.figures.ingest_seconds += started.elapsed().as_secs_f64();
        self.figures.ingest_events += samples.len();
        self.figures.ingest_cpu_seconds += self.hookd.child.cpu_seconds() - cpu;
        Ok(())
    }

    /// The size of `/metrics` after the load, and the figures.
    async fn finish(self) -> anyhow::Result<Figures> {
        let (status, metrics) = get(&format!("{}/metrics", self.hookd.admin)).await?;
        if status != StatusCode::OK {
            bail!("GET /metrics: {status}");
        }
        Ok(Figures {
            metrics_kib: metrics.len() as f64 / 1024.0,
            ..self.figures
        })
    }
}

/// Two endpoints per tenant.
fn tenants(endpoints: usize) -> usize {
    (endpoints / 2).max(1)
}

fn silent_url(silent: &std::net::TcpListener) -> anyhow::Result<String> {
    Ok(format!("http://{}/hook", silent.local_addr()?))
}

/// `tenant-N.toml` with the tenant's two endpoints; `version` goes into
/// the first one's URL, so a new version changes one endpoint.
fn write_tenant(dir: &Path, tenant: usize, url: &str, version: u32) -> anyhow::Result<()> {
    let endpoint = |n: usize, url: &str| {
        format!(
            "[[endpoints]]\nid = \"t{tenant}-{n}\"\ntenant = \"tenant-{tenant}\"\nurl = \"{url}\"\nevents = [\"*\"]\nsecret = \"secret-{tenant}-{n}\"\n"
        )
    };
    let text = endpoint(0, &format!("{url}?v={version}")) + &endpoint(1, url);
    std::fs::write(dir.join(format!("tenant-{tenant}.toml")), text).context("writing a tenant's file")
}

async fn wait_ready(hookd: &Hookd) -> anyhow::Result<()> {
    for _ in 0..6000 {
        if let Ok((StatusCode::OK, _)) = get(&format!("{}/readyz", hookd.admin)).await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    bail!("hookd did not become ready")
}

async fn loaded_at(hookd: &Hookd) -> anyhow::Result<String> {
    let (_, body) = get(&format!("{}/v1/config", hookd.admin)).await?;
    let config: serde_json::Value = serde_json::from_slice(&body)?;
    Ok(config["loaded_at"].as_str().unwrap_or_default().to_owned())
}

/// An event of `tenant-0`: the two-endpoint hookd's only tenant.
fn tenant_zero_event(id: &str) -> Bytes {
    event_of(id, 0)
}

/// An event of one of [`EVENT_TENANTS`] tenants, chosen by its id.
fn spread_event(id: &str) -> Bytes {
    let hash = id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3)
    });
    event_of(id, hash % EVENT_TENANTS)
}

fn event_of(id: &str, tenant: u64) -> Bytes {
    Bytes::from(format!(
        r#"{{"id":"{id}","event":"enrollment.created","tenant":"tenant-{tenant}","data":{{"student_id":"student_xyz789","course_id":"course_rust_101","enrolled_at":"2025-03-20T10:30:00Z","price":{{"amount":49.0,"currency":"EUR"}},"source":"web","coupon":null,"cohort":"2025-spring","tags":["beginner","self-paced"]}}}}"#
    ))
}
