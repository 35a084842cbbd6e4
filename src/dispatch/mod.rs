//! Delivery: from due deliveries in the store to signed requests at the
//! subscribers, with retries (SPEC sections 4, 5 and 8).
//!
//! - [`worker`]: one per enabled endpoint, reading its queue from the store;
//! - [`attempt`]: one attempt, its outcome judged ([`outcome`]) and
//!   recorded with the next step ([`retry`]);
//! - [`request`]: the signed request; [`client`]: the tower stack it goes
//!   through; `permits`: what it holds meanwhile, of [`adaptive_limit`]
//!   (each endpoint's concurrency) and the global limit;
//! - [`connector`] and [`destination`]: the SSRF guard;
//! - [`inbox`]: what reaches a worker between its reads of the store:
//!   fresh deliveries ingest hands over ([`handoff`]) and wakes;
//! - [`pauses`], [`limits`] and [`health`]: what operators pause, what
//!   each endpoint's limits have learned, and how its attempts went.
//!
//! The store is the queue of record. Long waits between retries are state
//! in the store (the `due` index), never a sleeping task per delivery.

pub mod adaptive_limit;
mod attempt;
pub mod client;
pub mod connector;
pub mod destination;
pub mod handoff;
pub mod health;
pub mod inbox;
pub mod limits;
pub mod outcome;
pub mod pauses;
mod permits;
pub mod request;
mod resizable_semaphore;
pub mod retry;
mod worker;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use self::attempt::AttemptContext;
use self::client::{ClientError, HttpClient, endpoint_stack, http_client};
use self::destination::DestinationPolicy;
use self::health::Health;
use self::inbox::Inboxes;
use self::limits::Limits;
use self::pauses::Pauses;
use self::permits::GlobalLimit;
use self::request::Target;
use self::retry::RetryPolicy;
use self::worker::Worker;
use crate::config::Settings;
use crate::metrics::Metrics;
use crate::store::Store;

/// The running delivery side: one worker per enabled endpoint, rebuilt
/// whole when the config changes.
pub struct Dispatcher {
    store: Store,
    inboxes: Arc<Inboxes>,
    pauses: Arc<Pauses>,
    limits: Arc<Limits>,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    /// The workers of the config in force.
    generation: Option<Generation>,
    /// Attempts still in flight from the workers of earlier configs.
    retiring: Vec<JoinSet<()>>,
    /// `delivery.concurrency`: one limit for the dispatcher's life, shared
    /// by the attempts of every config, resized on reload.
    global: Arc<GlobalLimit>,
}

struct Generation {
    stop: watch::Sender<bool>,
    workers: Vec<(String, JoinHandle<JoinSet<()>>)>,
}

impl Dispatcher {
    /// Starts a worker for each enabled endpoint. Fails only when the TLS
    /// setup cannot read `delivery.ca_file`.
    pub async fn start(
        settings: &Settings,
        store: Store,
        inboxes: Arc<Inboxes>,
        pauses: Arc<Pauses>,
        limits: Arc<Limits>,
        health: Arc<Health>,
        metrics: Arc<Metrics>,
    ) -> Result<Dispatcher, ClientError> {
        let mut dispatcher = Dispatcher {
            store,
            inboxes,
            pauses,
            limits,
            health,
            metrics,
            generation: None,
            retiring: Vec::new(),
            global: Arc::new(GlobalLimit::new(settings.delivery.concurrency)),
        };
        dispatcher.apply(settings).await?;
        Ok(dispatcher)
    }

    /// Switches to `settings`: the workers of the old config stop starting
    /// attempts (theirs in flight finish), and new ones start for every
    /// enabled endpoint, with the new URLs, secrets, limits and schedule.
    /// Removed and disabled endpoints get no worker: their deliveries wait.
    pub async fn apply(&mut self, settings: &Settings) -> Result<(), ClientError> {
        let delivery = &settings.delivery;
        let policy = Arc::new(RwLock::new(DestinationPolicy {
            allow_private_networks: delivery.allow_private_networks,
            allowed_networks: delivery.allowed_networks.clone(),
        }));
        let client: HttpClient = http_client(policy, delivery.ca_file.as_deref(), delivery.endpoint_concurrency)?;
        self.retire().await;
        self.global.resize(delivery.concurrency);
        let retry = RetryPolicy {
            schedule: delivery.retry_schedule.clone(),
            jitter: delivery.retry_jitter,
        };
        let (stop, stopped) = watch::channel(false);
        let mut workers = Vec::new();
        for endpoint in settings.endpoints.iter().filter(|endpoint| endpoint.enabled) {
            let limits = self.limits.of(&endpoint.id, delivery.endpoint_concurrency);
            let worker = Worker {
                endpoint: endpoint.id.clone(),
                stack: endpoint_stack(client.clone(), delivery.timeout),
                limits,
                global: self.global.clone(),
                context: Arc::new(AttemptContext {
                    store: self.store.clone(),
                    target: Arc::new(Target::new(endpoint.clone())),
                    retry: retry.clone(),
                    health: self.health.of_endpoint(&endpoint.id),
                    metrics: self.metrics.clone(),
                }),
                inbox: self.inboxes.get(&endpoint.id),
                paused: self.pauses.watch(),
            };
            workers.push((endpoint.id.clone(), tokio::spawn(worker.run(stopped.clone()))));
        }
        self.generation = Some(Generation { stop, workers });
        Ok(())
    }

    /// Stops the current workers and keeps their attempts in flight.
    async fn retire(&mut self) {
        if let Some(generation) = self.generation.take() {
            let _ = generation.stop.send(true);
            for (endpoint, worker) in generation.workers {
                match worker.await {
                    Ok(attempts) => self.retiring.push(attempts),
                    Err(error) => tracing::error!(%endpoint, %error, "a delivery worker panicked"),
                }
            }
        }
        for attempts in &mut self.retiring {
            while attempts.try_join_next().is_some() {}
        }
        self.retiring.retain(|attempts| !attempts.is_empty());
    }

    /// Stops starting attempts, lets those in flight finish for up to
    /// `grace`, then cuts off the rest (they are sent again after restart:
    /// their outcome was never recorded).
    pub async fn shutdown(mut self, grace: Duration) {
        self.retire().await;
        let mut in_flight = std::mem::take(&mut self.retiring);
        let waiting: usize = in_flight.iter().map(JoinSet::len).sum();
        if waiting > 0 {
            tracing::info!(attempts = waiting, "waiting for attempts in flight");
        }
        let finish = async {
            for attempts in &mut in_flight {
                while attempts.join_next().await.is_some() {}
            }
        };
        if tokio::time::timeout(grace, finish).await.is_err() {
            let cut: usize = in_flight.iter().map(JoinSet::len).sum();
            tracing::warn!(
                attempts = cut,
                "shutdown grace over; cutting off attempts, they are sent again after restart"
            );
        }
    }
}
