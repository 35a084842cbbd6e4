//! Cluster mode's figures, by hand (not in CI; needs `nats-server`, which
//! `scripts/setup.sh`'s `nats_deps` installs): a three-node JetStream
//! cluster on loopback, streams with three copies.
//!
//! 0. End to end, one endpoint, 64 clients: one hookd standalone, in
//!    cluster mode with `ack = "local"` and with `ack = "cluster"`, in
//!    turns.
//! 1. JetStream's own publish rate, the baseline: messages of the size of
//!    one parked delivery of the events below, published with 256 waiting
//!    for their confirmation at a time (as hookd's parker does), into a
//!    work-queue stream on file with three copies.
//! 2. Parking at SIGTERM: replica A takes `deliveries` events for an
//!    endpoint that never answers (its attempts hang, so every delivery is
//!    pending and due), then gets SIGTERM; the time from the signal to its
//!    exit, less the shutdown grace, is what parking them all took.
//! 3. Adoption: replica B, whose subscriber answers at once, starts on an
//!    empty store and adopts them all; the time from its start to the last
//!    arrival is adoption and delivery together.

use std::time::{Duration, Instant};

use async_nats::jetstream;
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::backlog::post_backlog;
use crate::deliver::throughput;
use crate::processes::{Extra, ScratchDir, free_port, start_hookd_extended};
use crate::receiver;

#[path = "../tests/it/support/nats.rs"]
#[allow(dead_code)]
mod nats;

/// Confirmations waited for at a time, as hookd's parker does.
const WINDOW: usize = 256;
/// The shutdown grace replica A runs with.
const SHUTDOWN_GRACE_SECONDS: u64 = 1;

pub async fn run(deliveries: usize, seconds: u64, hookd: &str) -> anyhow::Result<()> {
    let cluster = tokio::task::spawn_blocking(|| nats::NatsCluster::start(3)).await?;
    let nats_url = cluster.url();
    let [standalone, local, copied] = end_to_end(hookd, &nats_url, Duration::from_secs(seconds)).await?;
    let publish_rate = jetstream_publish_rate(&nats_url, deliveries, parcel_size()).await?;

    // A: every delivery pending and due, its endpoint hanging.
    let hanging = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hanging_port = hanging.local_addr()?.port();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = hanging.accept().await {
            held.push(socket);
        }
    });
    let dir = ScratchDir::new()?;
    let grace = SHUTDOWN_GRACE_SECONDS.to_string();
    let env = |timeout: &'static str| {
        vec![
            ("HOOKD_CLUSTER__NATS_URL", nats_url.clone()),
            ("HOOKD_CLUSTER__PARK_AFTER", "1h".to_owned()),
            ("HOOKD_CLUSTER__PARK_GRACE", "10m".to_owned()),
            ("HOOKD_DELIVERY__TIMEOUT", timeout.to_owned()),
            ("HOOKD_DELIVERY__SHUTDOWN_GRACE", format!("{grace}s")),
        ]
    };
    let endpoint = |port: u16| {
        format!(
            "[[endpoints]]\nid = \"parked\"\nurl = \"http://127.0.0.1:{port}/parked\"\nevents = [\"payment.*\"]\nsecret = \"s\"\n"
        )
    };
    let a_env = env("1h");
    let a_env: Vec<(&str, &str)> = a_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut a = start_hookd_extended(
        hookd,
        dir.path(),
        &endpoint(hanging_port),
        &Extra { top: "", env: &a_env },
    )
    .await?;
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    post_backlog(&client, &format!("{}/v1/events/batch", a.ingest), deliveries).await?;
    let signalled = Instant::now();
    let status = a.child.terminate()?;
    let park_seconds = (signalled.elapsed().as_secs_f64() - SHUTDOWN_GRACE_SECONDS as f64).max(0.001);
    anyhow::ensure!(status.success(), "replica A exited with {status}");
    hold.abort();

    // B: adopts them all and delivers them to a fast subscriber.
    let port = free_port()?;
    let arrivals = receiver::start(port).await?;
    let b_env = env("10s");
    let b_env: Vec<(&str, &str)> = b_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let started = Instant::now();
    let _b = start_hookd_extended(hookd, dir.path(), &endpoint(port), &Extra { top: "", env: &b_env }).await?;
    while arrivals.count() < deliveries {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(1800),
            "only {} of {deliveries} adopted deliveries arrived in 30 minutes",
            arrivals.count()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let adopt_seconds = started.elapsed().as_secs_f64();
    let duplicates = arrivals.requests() - deliveries as u64;

    println!(
        "cluster: {deliveries} deliveries parked at SIGTERM by one replica, adopted by another (3 NATS nodes, 3 copies)"
    );
    println!(
        "  end to end, 64 clients  {local:>10.0} delivered/s in cluster mode, ack = local ({:.2} of standalone's {standalone:.0})",
        local / standalone
    );
    println!(
        "                          {copied:>10.0} delivered/s in cluster mode, ack = cluster ({:.2})",
        copied / standalone
    );
    println!(
        "  JetStream publish       {publish_rate:>10.0} msg/s  ({} bytes each, {WINDOW} awaiting confirmation)",
        parcel_size()
    );
    println!(
        "  parking at SIGTERM      {:>10.0} deliveries/s  ({park_seconds:.1} s for {deliveries}; {:.2} of JetStream's rate)",
        deliveries as f64 / park_seconds,
        deliveries as f64 / park_seconds / publish_rate
    );
    println!(
        "  adoption and delivery   {:>10.0} deliveries/s  ({adopt_seconds:.1} s from start to the last arrival; {:.2} of JetStream's rate; {duplicates} duplicates)",
        deliveries as f64 / adopt_seconds,
        deliveries as f64 / adopt_seconds / publish_rate
    );
    Ok(())
}

/// Delivered events per second, 64 clients, one fast subscriber: hookd
/// standalone, with `ack = "local"` and with `ack = "cluster"`, two turns
/// each, the better of each.
async fn end_to_end(hookd: &str, nats_url: &str, duration: Duration) -> anyhow::Result<[f64; 3]> {
    let dir = ScratchDir::new()?;
    let port = free_port()?;
    let arrivals = receiver::start(port).await?;
    let endpoint = format!(
        "[[endpoints]]\nid = \"bench\"\nurl = \"http://127.0.0.1:{port}/hook\"\nevents = [\"*\"]\nsecret = \"s\"\n"
    );
    let modes: [&[(&str, &str)]; 3] = [
        &[],
        &[("HOOKD_CLUSTER__NATS_URL", nats_url)],
        &[("HOOKD_CLUSTER__NATS_URL", nats_url), ("HOOKD_CLUSTER__ACK", "cluster")],
    ];
    let mut best = [0.0_f64; 3];
    for turn in 0..6 {
        let mode = turn % 3;
        let extra = Extra {
            top: "",
            env: modes[mode],
        };
        let running = start_hookd_extended(hookd, dir.path(), &endpoint, &extra).await?;
        let url = format!("{}/v1/events", running.ingest);
        let (rate, _, _) = throughput(&url, 64, duration, &format!("e2e{turn}"), &arrivals).await?;
        best[mode] = best[mode].max(rate);
    }
    Ok(best)
}

/// The size of one parked delivery of the events `post_backlog` sends.
fn parcel_size() -> usize {
    use hookd::store::{DeliveryRecord, EventMeta, EventRecord};
    let body = br#"{"id":"backlog_12345","type":"payment.completed","created_at":"2026-12-03T10:00:00.000Z","data":{"student_id":"student_xyz789","amount":{"value":49.0,"currency":"EUR"},"n":12345}}"#;
    let parcel = hookd::cluster::Parcel {
        id: "backlog_12345.parked".into(),
        delivery: DeliveryRecord::new("backlog_12345", "parked", "payment.completed", None, 1_764_756_000_000),
        event: EventRecord {
            meta: EventMeta {
                event: "payment.completed".into(),
                created_at: "2026-12-03T10:00:00.000Z".into(),
                received_at: 1_764_756_000_000,
                deliveries: 1,
                data_start: 95,
                data_end: 180,
                traceparent: None,
                tenant: None,
                ordering_key: None,
            },
            body: body.to_vec(),
        },
    };
    parcel.encode().map(|bytes| bytes.len()).unwrap_or(600)
}

/// Messages of `size` bytes per second into a stream like hookd's.
async fn jetstream_publish_rate(url: &str, messages: usize, size: usize) -> anyhow::Result<f64> {
    let client = async_nats::connect(url.split(',').collect::<Vec<_>>()).await?;
    let jetstream = jetstream::new(client);
    jetstream
        .create_stream(jetstream::stream::Config {
            name: "BENCH".into(),
            subjects: vec!["bench.>".into()],
            retention: jetstream::stream::RetentionPolicy::WorkQueue,
            num_replicas: 3,
            ..Default::default()
        })
        .await?;
    let payload = Bytes::from(vec![b'x'; size]);
    let started = Instant::now();
    let mut waiting = Vec::with_capacity(WINDOW);
    for n in 0..messages {
        let message = jetstream::message::PublishMessage::build()
            .payload(payload.clone())
            .message_id(format!("bench-{n}"));
        waiting.push(jetstream.send_publish("bench.parked", message).await?);
        if waiting.len() == WINDOW {
            for ack in waiting.drain(..) {
                ack.await?;
            }
        }
    }
    for ack in waiting {
        ack.await?;
    }
    let rate = messages as f64 / started.elapsed().as_secs_f64();
    jetstream.delete_stream("BENCH").await?;
    Ok(rate)
}
