//! hookd: a sidecar that takes events from the platform app, stores them
//! durably in RocksDB and delivers a signed copy to each subscribed
//! endpoint.
//!
//! The path of an event through the modules:
//!
//! - [`api::ingest`] takes `POST /v1/events`, checks it against the
//!   [`catalog`] and builds the wire body ([`event`]);
//! - [`store`] writes the event and one delivery per subscribed endpoint in
//!   one synced batch before the app gets its 202; [`sweeper`] removes
//!   finished work after `storage.retention`, and [`store_recovery`]
//!   reopens the store after a failed write (a full disk);
//! - [`dispatch`] reads each endpoint's due deliveries and sends them,
//!   signed ([`sign`]), retrying on failure;
//! - [`api::admin`] serves health to probes and operators;
//! - [`cluster`] (cluster mode) parks long waits in NATS JetStream and
//!   adopts what other replicas parked;
//! - [`config`] loads and checks the settings all of this runs on, and
//!   [`reload`] swaps in a changed config while running;
//! - [`telemetry`] sets up logs and exports traces;
//! - [`cli`] holds the operator commands that talk to a running sidecar.

#![forbid(unsafe_code)]

pub mod api;
pub mod catalog;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod dispatch;
pub mod event;
pub mod metrics;
pub mod operations;
pub mod reload;
pub mod sign;
pub mod store;
mod store_recovery;
pub mod sweeper;
pub mod telemetry;
pub mod tenant;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api::AppState;
use crate::api::ConfigStatus;
use crate::cluster::Cluster;
use crate::config::Settings;
use crate::dispatch::Dispatcher;
use crate::dispatch::health::Health;
use crate::dispatch::inbox::Inboxes;
use crate::dispatch::limits::Limits;
use crate::dispatch::pauses::Pauses;
use crate::dispatch::stats::Stats;
use crate::metrics::Metrics;
use crate::operations::Operations;
use crate::reload::Reloader;
use crate::store::Store;

/// The sockets hookd serves on; bound by the caller, so tests can use port 0.
pub struct Listeners {
    pub ingest: TcpListener,
    pub admin: TcpListener,
}

impl Listeners {
    /// Binds the addresses the settings name.
    pub async fn bind(settings: &Settings) -> anyhow::Result<Listeners> {
        let ingest = listen(settings.ingest.listen)
            .with_context(|| format!("cannot listen on ingest.listen {}", settings.ingest.listen))?;
        let admin = listen(settings.admin.listen)
            .with_context(|| format!("cannot listen on admin.listen {}", settings.admin.listen))?;
        Ok(Listeners { ingest, admin })
    }
}

/// The addresses the listeners are bound to: a reload cannot move them, so
/// every config must be safe on them.
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub ingest: SocketAddr,
    pub admin: SocketAddr,
}

/// Connections the kernel queues for a listener while hookd serves its
/// maximum ([`api::server::MAX_CONNECTIONS`]).
const LISTEN_BACKLOG: u32 = 1024;

fn listen(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match address {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Runs hookd until `shutdown` completes, then stops taking requests,
/// answers what is in progress, and closes the store.
pub async fn run(
    settings: Settings,
    store: Store,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let bound = Bound {
        ingest: listeners.ingest.local_addr()?,
        admin: listeners.admin.local_addr()?,
    };
    let exposed = settings.exposure(bound.ingest, bound.admin);
    anyhow::ensure!(exposed.is_empty(), "refusing to serve: {}", exposed.join("; "));
    let inboxes = Arc::new(Inboxes::default());
    let pauses = Arc::new(Pauses::new(store.paused_endpoints()?));
    let open_circuits = store.open_circuits()?;
    let stats = Arc::new(Stats::default());
    // A circuit open before the restart shows as open since it last opened.
    for (endpoint, open) in &open_circuits {
        stats.circuit_opened(endpoint, open.opened_at_ms);
    }
    let limits = Arc::new(Limits::restore(open_circuits, settings.delivery.breaker));
    let health = Arc::new(Health::default());
    let metrics = Arc::new(Metrics::new(settings.telemetry.per_endpoint_metrics));
    store.on_synced_write({
        let metrics = metrics.clone();
        move |took| metrics.store_write(took)
    });
    let operations = Operations::new(store.clone(), inboxes.clone());
    let dispatcher = Dispatcher::start(
        &settings,
        dispatch::Parts {
            store: store.clone(),
            inboxes: inboxes.clone(),
            pauses: pauses.clone(),
            limits: limits.clone(),
            health: health.clone(),
            metrics: metrics.clone(),
            operations: operations.clone(),
            stats: stats.clone(),
        },
    )
    .await?;
    let config_status = Arc::new(ConfigStatus::loaded_now());
    let (settings_sender, settings) = watch::channel(Arc::new(settings));
    let reloader = Reloader::new(settings_sender, config_status.clone(), metrics.clone(), bound);
    let current_settings = settings.clone();
    let cluster_settings = current_settings.borrow().cluster.clone();
    let cluster = match &cluster_settings {
        Some(cluster) => Some(
            Cluster::start(
                cluster,
                cluster::Parts {
                    store: store.clone(),
                    settings: settings.clone(),
                    pauses: pauses.clone(),
                    inboxes: inboxes.clone(),
                    metrics: metrics.clone(),
                },
            )
            .await?,
        ),
        None => None,
    };
    let state = AppState::new(api::Shared {
        store: store.clone(),
        cluster: cluster.as_ref().map(Cluster::link),
        settings,
        inboxes,
        pauses,
        limits,
        health,
        stats: stats.clone(),
        config_status,
        metrics,
    });
    tracing::info!("ingest API listening on http://{}", bound.ingest);
    tracing::info!("admin API listening on http://{}", bound.admin);

    let (stop, stopped) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    let sweeper = tokio::spawn(sweeper::sweep_forever(
        store.clone(),
        state.settings.clone(),
        state.pauses.clone(),
        operations.clone(),
    ));
    let recovery = tokio::spawn(store_recovery::recover_forever(store.clone()));
    let backlog = tokio::spawn(operations::backlog::watch_forever(
        store.clone(),
        state.settings.clone(),
        state.pauses.clone(),
        operations.clone(),
    ));
    let summaries = tokio::spawn(operations.summarize_forever());
    let stats_pruning = tokio::spawn(stats.prune_forever());
    let delivery = tokio::spawn(deliver_until_stopped(
        dispatcher,
        cluster,
        reloader,
        current_settings,
        stopped.clone(),
    ));
    let ingest = api::server::serve(listeners.ingest, api::ingest::router(state.clone()), stopped.clone());
    let admin = api::server::serve(listeners.admin, api::admin::router(state), stopped);
    let (ingest, admin) = tokio::join!(ingest, admin);
    delivery.await?;
    for task in [&sweeper, &recovery, &backlog, &summaries, &stats_pruning] {
        task.abort();
    }
    // Wait for the aborts, so their handles on the store are gone when
    // `run` is.
    for task in [sweeper, recovery, backlog, summaries, stats_pruning] {
        let _ = task.await;
    }
    tokio::task::spawn_blocking(move || store.close()).await?;
    tracing::info!("hookd stopped");
    ingest.context("ingest API")?;
    admin.context("admin API")?;
    Ok(())
}

/// Runs delivery, applying config reloads as they come, until `stopped`;
/// then lets attempts in flight finish within the shutdown grace, and in
/// cluster mode parks what is left within the park grace.
async fn deliver_until_stopped(
    mut dispatcher: Dispatcher,
    cluster: Option<Cluster>,
    mut reloader: Option<Reloader>,
    settings: watch::Receiver<Arc<Settings>>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let reload = async {
            match &mut reloader {
                Some(reloader) => reloader.next(&mut dispatcher).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stopped.wait_for(|stop| *stop) => break,
            () = reload => {}
        }
    }
    let grace = settings.borrow().delivery.shutdown_grace;
    dispatcher.shutdown(grace).await;
    if let Some(cluster) = cluster {
        cluster.stop().await;
    }
}
