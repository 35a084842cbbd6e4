//! Cluster mode (SPEC 11): the replicas share their long-lived work
//! through a NATS JetStream cluster, so a replica scaled away strands
//! nothing. hookd replicates nothing itself: every hand-over is a
//! JetStream primitive (a publish with a de-duplication id, a shared
//! work-queue consumer, acknowledgement, redelivery with a delay, deletion
//! by sequence).
//!
//! The fast path does not change: ingest, first attempts and short
//! retries stay in the local store. What waits long is parked
//! ([`parker`]); any replica whose config has the endpoint adopts it when
//! it is due ([`adopter`]); at SIGTERM, once the attempts in flight are
//! done, everything pending is parked within `park_grace`. The messages
//! are [`parcel`]s; the stream and consumer are made and checked by
//! [`streams`]. Operators' pauses are shared through a key-value bucket
//! ([`pauses`]).
//!
//! While NATS is unreachable, ingest and local delivery go on:
//! `hookd_cluster_connected` is 0, parking waits (`hookd_park_pending`
//! counts what waits), and the client reconnects by itself.
//!
//! Failed deliveries are parked as they fail, counted from JetStream, and
//! retried from any replica ([`retries`]).
//!
//! With `ack = "cluster"` JetStream also holds a copy of every pending
//! delivery, kept in step with it ([`leases`]).

mod adopter;
mod leases;
mod link;
mod metrics;
mod parcel;
mod parker;
mod pauses;
mod retries;
mod streams;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_nats::jetstream;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use leases::LeaseError;
pub use link::{Link, LinkState, PauseShareError};
pub use metrics::ClusterMetrics;
pub use parcel::{Parcel, ParcelError};
pub use retries::RetryShareError;

use crate::config::{ClusterAck, ClusterSettings, Settings};
use crate::dispatch::inbox::Inboxes;
use crate::dispatch::pauses::Pauses;
use crate::store::Store;
use adopter::Adopter;
use parker::{Parkables, Parker};
use streams::StreamsError;

/// How long the start waits for JetStream to check its streams before it
/// goes on without (and checks them once NATS answers).
const START_PATIENCE: Duration = Duration::from_secs(5);
/// Between parking passes, and between tries to reach JetStream.
const PARK_INTERVAL: Duration = Duration::from_secs(1);
/// At shutdown, between tries of a parking pass that failed.
const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// What the cluster's tasks share with the rest of hookd.
pub struct Parts {
    pub store: Store,
    pub settings: watch::Receiver<Arc<Settings>>,
    pub pauses: Arc<Pauses>,
    pub inboxes: Arc<Inboxes>,
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// The running link to the cluster: parking and adoption, until
/// [`Cluster::stop`] parks what is left.
pub struct Cluster {
    settings: ClusterSettings,
    link: Arc<Link>,
    stop: watch::Sender<bool>,
    work: JoinHandle<Option<Parker>>,
}

impl Cluster {
    /// Connects (reconnecting by itself for as long as hookd runs) and
    /// starts parking and adoption. Refuses when JetStream answers with
    /// streams hookd cannot work with; goes on when it does not answer.
    pub async fn start(settings: &ClusterSettings, parts: Parts) -> anyhow::Result<Cluster> {
        let metrics = ClusterMetrics::register(&parts.metrics);
        let client = connect(settings, metrics.clone()).await?;
        let link = Arc::new(Link::new(client.clone(), settings.ack == ClusterAck::Cluster));
        let jetstream = jetstream::new(client);
        let retention = parts.settings.borrow().storage.retention;
        let first = match tokio::time::timeout(START_PATIENCE, reach(&jetstream, settings.replicas, retention)).await {
            Ok(Err(StreamsError::Incompatible(reason))) => anyhow::bail!("refusing cluster mode: {reason}"),
            Ok(Ok(ready)) => Some(ready),
            Ok(Err(error)) => {
                tracing::warn!(%error, "JetStream is not ready; parking waits until it is");
                None
            }
            Err(_) => {
                tracing::warn!("NATS did not answer within {START_PATIENCE:?}; parking waits until it does");
                None
            }
        };
        let (stop, stopped) = watch::channel(false);
        if let Some(ready) = &first {
            open_link(&link, ready, &jetstream, &parts.store, settings);
        }
        let work = tokio::spawn(work(
            jetstream,
            settings.clone(),
            parts,
            metrics,
            link.clone(),
            first,
            stopped,
        ));
        Ok(Cluster {
            settings: settings.clone(),
            link,
            stop,
            work,
        })
    }

    /// What the admin API sees of the cluster.
    pub fn link(&self) -> Arc<Link> {
        self.link.clone()
    }

    /// Stops adopting, then parks every pending delivery within
    /// `park_grace`; what is left stays in the store, for when this
    /// replica returns.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let Ok(Some(parker)) = self.work.await else {
            tracing::warn!("JetStream was never reached: pending deliveries stay in this replica's store");
            return;
        };
        let deadline = Instant::now() + self.settings.park_grace;
        parker.release_waiting().await;
        let mut parked = 0;
        let mut failing = false;
        let mut cursor = Vec::new();
        let finished = tokio::time::timeout_at(deadline.into(), async {
            loop {
                match parker.pass(true, &mut cursor).await {
                    Ok(0) => match park_all_failed(&parker).await {
                        Ok(n) => {
                            parked += n;
                            return;
                        }
                        Err(error) => {
                            tracing::warn!(%error, "parking failed deliveries at shutdown failed; trying again within park_grace");
                            tokio::time::sleep(RETRY_PAUSE).await;
                        }
                    },
                    Ok(n) => parked += n,
                    // A NATS node going away takes the client a moment to
                    // reconnect to another: try again within the grace.
                    Err(error) => {
                        if !failing {
                            tracing::warn!(%error, "parking at shutdown failed; trying again within park_grace");
                        }
                        failing = true;
                        cursor.clear();
                        tokio::time::sleep(RETRY_PAUSE).await;
                    }
                }
            }
        })
        .await;
        match finished {
            Ok(()) => tracing::info!(parked, "every pending delivery is parked in JetStream"),
            Err(_) => tracing::warn!(
                parked,
                "park_grace ran out: the deliveries not parked stay in this replica's store and resume when it returns"
            ),
        }
    }
}

async fn connect(settings: &ClusterSettings, metrics: ClusterMetrics) -> anyhow::Result<async_nats::Client> {
    let mut options = async_nats::ConnectOptions::new()
        .name("hookd")
        .retry_on_initial_connect()
        .max_reconnects(None)
        .event_callback(move |event| {
            let metrics = metrics.clone();
            async move {
                match event {
                    async_nats::Event::Connected => {
                        metrics.set_connected(true);
                        tracing::info!("connected to NATS");
                    }
                    async_nats::Event::Disconnected => {
                        metrics.set_connected(false);
                        tracing::warn!("lost the link to NATS: parking waits, local work goes on; reconnecting");
                    }
                    other => tracing::debug!(event = %other, "NATS"),
                }
            }
        });
    if let Some(path) = &settings.credentials_file {
        options = options
            .credentials_file(path)
            .await
            .with_context(|| format!("cannot read cluster.credentials_file {}", path.display()))?;
    }
    options
        .connect(settings.servers.as_slice())
        .await
        .context("cannot set up the NATS client for cluster.nats_url")
}

/// JetStream was reached: the admin API's link shows what it holds, and
/// with `ack = "cluster"` the deliveries' copies are kept from now on.
fn open_link(link: &Link, ready: &Ready, jetstream: &jetstream::Context, store: &Store, settings: &ClusterSettings) {
    link.open(ready.stream.clone(), ready.failed.clone(), ready.pauses.clone());
    if link.copies_required() {
        link.keep_copies(leases::Leases::start(
            jetstream.clone(),
            ready.stream.clone(),
            store.clone(),
            settings.lease,
        ));
    }
}

/// Parks every failed delivery of the store, batch after batch; how many.
async fn park_all_failed(parker: &Parker) -> Result<usize, parker::ParkError> {
    let mut cursor = Vec::new();
    let mut parked = 0;
    loop {
        match parker.pass_failed(&mut cursor).await? {
            0 => return Ok(parked),
            n => parked += n,
        }
    }
}

/// What cluster mode works on in JetStream, made or checked.
struct Ready {
    stream: jetstream::stream::Stream,
    failed: jetstream::stream::Stream,
    consumer: jetstream::consumer::PullConsumer,
    pauses: jetstream::kv::Store,
}

async fn reach(jetstream: &jetstream::Context, replicas: usize, retention: Duration) -> Result<Ready, StreamsError> {
    let (stream, consumer) = streams::ensure(jetstream, replicas).await?;
    let failed = streams::ensure_failed(jetstream, replicas, retention).await?;
    let pauses = pauses::ensure_bucket(jetstream, replicas)
        .await
        .map_err(StreamsError::Unavailable)?;
    Ok(Ready {
        stream,
        failed,
        consumer,
        pauses,
    })
}

/// Reaches JetStream (if the start did not), then parks and adopts until
/// `stopped`; hands the parker back for the last parking.
async fn work(
    jetstream: jetstream::Context,
    settings: ClusterSettings,
    parts: Parts,
    metrics: ClusterMetrics,
    link: Arc<Link>,
    first: Option<Ready>,
    mut stopped: watch::Receiver<bool>,
) -> Option<Parker> {
    let parkables = Parkables {
        store: parts.store.clone(),
        settings: parts.settings.clone(),
        pauses: parts.pauses.clone(),
        park_after: settings.park_after,
    };
    let mut waiting_logged = false;
    let Ready {
        stream,
        failed,
        consumer,
        pauses: bucket,
    } = match first {
        Some(ready) => ready,
        None => loop {
            parkables.count(&metrics).await;
            tokio::select! {
                _ = stopped.wait_for(|stop| *stop) => return None,
                () = tokio::time::sleep(PARK_INTERVAL) => {}
            }
            let retention = parts.settings.borrow().storage.retention;
            match reach(&jetstream, settings.replicas, retention).await {
                Ok(ready) => {
                    open_link(&link, &ready, &jetstream, &parts.store, &settings);
                    break ready;
                }
                Err(StreamsError::Incompatible(reason)) => {
                    tracing::error!(%reason, "cluster mode cannot work on these JetStream streams; parking is off");
                }
                Err(error) if !waiting_logged => {
                    waiting_logged = true;
                    tracing::warn!(%error, "JetStream is not ready yet; trying again every second");
                }
                Err(error) => tracing::debug!(%error, "JetStream not ready yet"),
            }
        },
    };
    let follower = pauses::Follower {
        store: parts.store.clone(),
        pauses: parts.pauses.clone(),
        inboxes: parts.inboxes.clone(),
    };
    tokio::spawn(follower.follow(bucket, stopped.clone()));
    let adopter = Adopter {
        store: parts.store.clone(),
        consumer,
        settings: parts.settings.clone(),
        pauses: parts.pauses.clone(),
        inboxes: parts.inboxes.clone(),
        metrics: metrics.clone(),
        lease: (settings.ack == ClusterAck::Cluster).then_some(settings.lease),
    };
    let adopting = tokio::spawn(adopter.run(stopped.clone()));
    let parker = Parker {
        parkables,
        jetstream,
        stream,
        failed,
        metrics,
    };
    let mut failing = false;
    let mut cursor = Vec::new();
    while !*stopped.borrow() {
        match parker.pass(false, &mut cursor).await {
            Ok(n) if n > 0 => {
                failing = false;
                continue;
            }
            Ok(_) => failing = false,
            Err(error) => {
                if !failing {
                    tracing::warn!(%error, "parking failed; trying again every second");
                }
                failing = true;
                parker.parkables.count(&parker.metrics).await;
            }
        }
        cursor.clear();
        if let Err(error) = park_all_failed(&parker).await
            && !failing
        {
            failing = true;
            tracing::warn!(%error, "parking failed deliveries failed; trying again every second");
        }
        tokio::select! {
            _ = stopped.wait_for(|stop| *stop) => break,
            () = tokio::time::sleep(PARK_INTERVAL) => {}
        }
    }
    let _ = adopting.await;
    Some(parker)
}
