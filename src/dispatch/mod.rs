//! Delivery: from due deliveries in the store to signed requests at the
//! subscribers, with retries (SPEC sections 4, 5 and 8).
//!
//! - [`worker`]: one per enabled endpoint, reading its queue from the store;
//! - [`attempt`]: one attempt, its outcome judged ([`outcome`]) and
//!   recorded with the next step ([`retry`]);
//! - [`request`]: the signed request; [`client`]: the tower stack it goes
//!   through; [`adaptive_limit`]: each endpoint's concurrency;
//! - [`connector`] and [`destination`]: the SSRF guard;
//! - [`wakeup`]: how ingest tells a worker that work arrived;
//! - [`controls`]: pauses, concurrency and health, for operators.
//!
//! Long waits between retries are state in the store (the `due` index),
//! never a sleeping task per delivery.

pub mod adaptive_limit;
mod attempt;
pub mod client;
pub mod connector;
pub mod controls;
pub mod destination;
pub mod outcome;
pub mod request;
pub mod retry;
pub mod wakeup;
mod worker;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::{Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};

use self::adaptive_limit::AdaptiveLimit;
use self::attempt::AttemptContext;
use self::client::{HttpClient, endpoint_stack, http_client};
use self::controls::Controls;
use self::destination::DestinationPolicy;
use self::request::Target;
use self::retry::RetryPolicy;
use self::wakeup::Wakeups;
use self::worker::Worker;
use crate::config::Settings;
use crate::store::Store;

/// The running delivery side: one worker per enabled endpoint.
pub struct Dispatcher {
    workers: HashMap<String, JoinHandle<JoinSet<()>>>,
    stop: watch::Sender<bool>,
}

impl Dispatcher {
    /// Starts a worker for each enabled endpoint. Fails only when the TLS
    /// setup cannot read `delivery.ca_file`.
    pub fn start(
        settings: &Settings,
        store: Store,
        wakeups: &Wakeups,
        controls: &Arc<Controls>,
    ) -> Result<Dispatcher, String> {
        let delivery = &settings.delivery;
        let policy = Arc::new(RwLock::new(DestinationPolicy {
            allow_private_networks: delivery.allow_private_networks,
            allowed_networks: delivery.allowed_networks.clone(),
        }));
        let client: HttpClient = http_client(policy, delivery.ca_file.as_deref(), delivery.endpoint_concurrency)?;
        let global = Arc::new(Semaphore::new(delivery.concurrency));
        let retry = RetryPolicy {
            schedule: delivery.retry_schedule.clone(),
            jitter: delivery.retry_jitter,
        };
        let (stop, stopped) = watch::channel(false);
        let mut workers = HashMap::new();
        for endpoint in settings.endpoints.iter().filter(|endpoint| endpoint.enabled) {
            let limit = AdaptiveLimit::new(delivery.endpoint_concurrency);
            controls.register_limit(&endpoint.id, limit.clone());
            let worker = Worker {
                endpoint: endpoint.id.clone(),
                stack: endpoint_stack(client.clone(), limit.clone(), global.clone(), delivery.timeout),
                context: Arc::new(AttemptContext {
                    store: store.clone(),
                    target: Arc::new(Target::new(endpoint.clone())),
                    retry: retry.clone(),
                    controls: controls.clone(),
                }),
                wakeup: wakeups.get(&endpoint.id),
                paused: controls.watch_paused(),
            };
            let task = tokio::spawn(worker.run(stopped.clone()));
            workers.insert(endpoint.id.clone(), task);
        }
        Ok(Dispatcher { workers, stop })
    }

    /// Stops starting attempts, lets those in flight finish for up to
    /// `grace`, then cuts off the rest (they are sent again after restart:
    /// their outcome was never recorded).
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.stop.send(true);
        let mut in_flight = Vec::new();
        for (endpoint, worker) in self.workers {
            match worker.await {
                Ok(attempts) => in_flight.push(attempts),
                Err(error) => tracing::error!(%endpoint, %error, "a delivery worker panicked"),
            }
        }
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
