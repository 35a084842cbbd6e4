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
//!   each endpoint's limits have learned, and how its attempts went; among
//!   the limits, `pacer` (an endpoint's `rate_limit`) and [`breaker`] (its
//!   circuit).
//!
//! The store is the queue of record. Long waits between retries are state
//! in the store (the `due` index), never a sleeping task per delivery.

pub mod adaptive_limit;
mod attempt;
pub mod breaker;
pub mod client;
pub mod connector;
pub mod destination;
pub mod handoff;
pub mod health;
pub mod inbox;
pub mod limits;
pub mod outcome;
mod pacer;
pub mod pauses;
mod per_endpoint;
mod permits;
pub mod request;
mod resizable_semaphore;
pub mod retry;
pub mod stats;
mod worker;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use self::attempt::{AttemptContext, SharedContext};
use self::client::{ClientError, EndpointStack, HttpClient, endpoint_stack, http_client};
use self::destination::DestinationPolicy;
use self::health::Health;
use self::inbox::Inboxes;
use self::limits::Limits;
use self::pauses::Pauses;
use self::permits::GlobalLimit;
use self::request::Target;
use self::retry::RetryPolicy;
use self::stats::Stats;
use self::worker::Worker;
use crate::config::{DeliverySettings, Endpoint, Settings};
use crate::metrics::Metrics;
use crate::operations::Operations;
use crate::store::Store;

/// The running delivery side: one worker per enabled endpoint. A reload
/// changes only what changed: an endpoint whose settings are the same keeps
/// its worker (and so its connections and attempts in flight); one that
/// changed gets a new worker; one removed or disabled loses its worker, and
/// its deliveries wait.
pub struct Dispatcher {
    parts: Parts,
    /// The outbound client, and what it was built from.
    client: Option<(ClientInputs, HttpClient)>,
    /// Bumped each time the client is rebuilt: a worker on an older client
    /// is replaced.
    client_generation: u64,
    /// The running workers, by endpoint id.
    workers: HashMap<String, RunningWorker>,
    /// Attempts still in flight from workers that were replaced or stopped.
    retiring: Vec<JoinSet<()>>,
    /// `delivery.concurrency`: one limit for the dispatcher's life, shared
    /// by the attempts of every config, resized on reload.
    global: Arc<GlobalLimit>,
}

/// What the outbound client is built from: a change rebuilds it (a new
/// destination policy too, so no kept connection outlives the rules it was
/// opened under).
#[derive(Debug, Clone, PartialEq)]
struct ClientInputs {
    policy: DestinationPolicy,
    ca_file: Option<PathBuf>,
    /// The CA file's bytes, so a renewed CA applies on reload.
    ca_pem: Option<Vec<u8>>,
    idle_per_host: usize,
}

/// Everything a worker is built from: a worker whose spec is unchanged by a
/// reload keeps running.
#[derive(Debug, Clone, PartialEq)]
struct WorkerSpec {
    /// Shared with the config's fleet; compared by value.
    endpoint: Arc<Endpoint>,
    timeout: Duration,
    endpoint_concurrency: usize,
    retry: Arc<RetryPolicy>,
    client_generation: u64,
}

/// What the dispatcher's workers share with the rest of hookd.
pub struct Parts {
    pub store: Store,
    pub inboxes: Arc<Inboxes>,
    pub pauses: Arc<Pauses>,
    pub limits: Arc<Limits>,
    pub health: Arc<Health>,
    pub metrics: Arc<Metrics>,
    /// Where failed deliveries and circuit changes are reported.
    pub operations: Arc<Operations>,
    /// Every endpoint's attempts per minute.
    pub stats: Arc<Stats>,
}

struct RunningWorker {
    spec: WorkerSpec,
    stop: CancellationToken,
    /// Ends with the attempts still in flight.
    task: JoinHandle<JoinSet<()>>,
}

/// The deliveries waiting for their key on endpoints that no longer order
/// (a reload, or a restart, turned `ordering` off) go, and their workers
/// are woken: one read of the order's entries per config.
async fn release_unordered(store: Store, ordered: HashSet<String>, inboxes: Arc<Inboxes>) {
    let reading = store.clone();
    let waiting = match tokio::task::spawn_blocking(move || reading.waiting_in_order())
        .await
        .expect("the read does not panic")
    {
        Ok(waiting) => waiting,
        Err(error) => {
            tracing::warn!(%error, "cannot read the deliveries that wait for their key");
            return;
        }
    };
    let (released, ids): (Vec<String>, Vec<String>) = waiting
        .into_iter()
        .filter(|(endpoint, _)| !ordered.contains(endpoint))
        .unzip();
    if ids.is_empty() {
        return;
    }
    store.take_turns(ids, true).await;
    for endpoint in released.iter().collect::<HashSet<_>>() {
        inboxes.wake(endpoint, 0);
    }
}

impl Dispatcher {
    /// Starts a worker for each enabled endpoint. Fails only when the TLS
    /// setup cannot read `delivery.ca_file`.
    pub async fn start(settings: &Settings, parts: Parts) -> Result<Dispatcher, ClientError> {
        let mut dispatcher = Dispatcher {
            parts,
            client: None,
            client_generation: 0,
            workers: HashMap::new(),
            retiring: Vec::new(),
            global: Arc::new(GlobalLimit::new(settings.delivery.concurrency)),
        };
        dispatcher.apply(settings).await?;
        Ok(dispatcher)
    }

    /// Switches to `settings`. Workers whose endpoint and delivery settings
    /// are unchanged keep running; the others stop starting attempts (theirs
    /// in flight finish) and, for every enabled endpoint, a new one starts
    /// with the new URL, secret, limits and schedule. Removed and disabled
    /// endpoints get no worker: their deliveries wait.
    pub async fn apply(&mut self, settings: &Settings) -> Result<(), ClientError> {
        let delivery = &settings.delivery;
        let client = self.client_for(delivery)?;
        self.parts
            .operations
            .set_alert_endpoint(settings.operations.alert_endpoint.as_deref());
        // One stack for every worker: its layers are the same for all.
        let stack = Arc::new(endpoint_stack(client, delivery.timeout));
        self.global.resize(delivery.concurrency);
        let retry = Arc::new(RetryPolicy {
            schedule: delivery.retry_schedule.clone(),
            jitter: delivery.retry_jitter,
        });
        // Every breaker takes the new settings in place.
        self.parts.limits.breakers().set_settings(delivery.breaker);
        let shared = Arc::new(SharedContext {
            store: self.parts.store.clone(),
            retry: RetryPolicy::clone(&retry),
            breakers: self.parts.limits.breakers().clone(),
            stats: self.parts.stats.clone(),
            operations: self.parts.operations.clone(),
            metrics: self.parts.metrics.clone(),
        });
        let mut wanted: HashMap<&str, WorkerSpec> = settings
            .endpoints
            .iter()
            .filter(|endpoint| endpoint.enabled)
            .map(|endpoint| {
                let spec = WorkerSpec {
                    endpoint: endpoint.clone(),
                    timeout: delivery.timeout,
                    endpoint_concurrency: delivery.endpoint_concurrency,
                    retry: retry.clone(),
                    client_generation: self.client_generation,
                };
                (endpoint.id.as_str(), spec)
            })
            .collect();
        let stopping: Vec<(String, RunningWorker)> = self
            .workers
            .extract_if(|id, running| wanted.get(id.as_str()) != Some(&running.spec))
            .collect();
        self.retire(stopping).await;
        wanted.retain(|id, _| !self.workers.contains_key(*id));
        for (id, spec) in wanted {
            let worker = self.worker(spec.clone(), &stack, &shared);
            let stop = CancellationToken::new();
            let task = tokio::spawn(worker.run(stop.clone()));
            self.workers.insert(id.to_owned(), RunningWorker { spec, stop, task });
        }
        tokio::spawn(release_unordered(
            self.parts.store.clone(),
            settings
                .endpoints
                .iter()
                .filter(|e| e.ordered)
                .map(|e| e.id.clone())
                .collect(),
            self.parts.inboxes.clone(),
        ));
        Ok(())
    }

    /// The client for `delivery`: the one in use, unless what it is built
    /// from changed.
    fn client_for(&mut self, delivery: &DeliverySettings) -> Result<HttpClient, ClientError> {
        let inputs = ClientInputs {
            policy: DestinationPolicy {
                allow_private_networks: delivery.allow_private_networks,
                allowed_networks: delivery.allowed_networks.clone(),
            },
            ca_file: delivery.ca_file.clone(),
            ca_pem: delivery.ca_file.as_deref().and_then(|path| std::fs::read(path).ok()),
            idle_per_host: delivery.endpoint_concurrency,
        };
        if let Some((built_from, client)) = &self.client
            && *built_from == inputs
        {
            return Ok(client.clone());
        }
        let policy = Arc::new(RwLock::new(inputs.policy.clone()));
        let client = http_client(policy, inputs.ca_file.as_deref(), inputs.idle_per_host)?;
        self.client = Some((inputs, client.clone()));
        self.client_generation += 1;
        Ok(client)
    }

    fn worker(&self, spec: WorkerSpec, stack: &Arc<EndpointStack>, shared: &Arc<SharedContext>) -> Worker {
        let endpoint = spec.endpoint;
        let parts = &self.parts;
        let limits = parts
            .limits
            .of(&endpoint.id, spec.endpoint_concurrency, endpoint.rate_limit);
        Worker {
            endpoint: endpoint.id.clone(),
            stack: stack.clone(),
            global: self.global.clone(),
            context: Arc::new(AttemptContext {
                health: parts.health.of_endpoint(&endpoint.id),
                target: Arc::new(Target::new(endpoint.clone())),
                shared: shared.clone(),
            }),
            limits,
            inbox: parts.inboxes.get(&endpoint.id),
            paused: parts.pauses.watch(),
        }
    }

    /// Stops `workers` and keeps their attempts in flight; forgets the
    /// attempts of earlier ones that have finished.
    async fn retire(&mut self, workers: Vec<(String, RunningWorker)>) {
        for (_, worker) in &workers {
            worker.stop.cancel();
        }
        for (endpoint, worker) in workers {
            match worker.task.await {
                Ok(attempts) => self.retiring.push(attempts),
                Err(error) => tracing::error!(%endpoint, %error, "a delivery worker panicked"),
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
        let workers: Vec<(String, RunningWorker)> = self.workers.drain().collect();
        self.retire(workers).await;
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
