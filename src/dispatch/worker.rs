//! One endpoint's worker: reads that endpoint's due deliveries from the
//! store in time order and starts an attempt for each, as its permits
//! ([`super::permits`]) allow.
//!
//! Each endpoint has its own worker and its own `due` key range, so a
//! backlog or a hanging subscriber on one endpoint never stands in front of
//! another's work (no head-of-line blocking). The worker keeps no queue of
//! its own: the store is the queue. It reads from a cursor (the due time of
//! the last delivery it started), skips deliveries already in flight, and
//! sleeps until the next due time or a wake from ingest, whichever is first.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::attempt::{AttemptContext, Attempted, attempt};
use super::client::EndpointStack;
use super::limits::EndpointLimits;
use super::permits::{GlobalLimit, Permits};
use super::wakeup::Wakeup;
use crate::clock;
use crate::store::NextStep;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Due deliveries read per look at the store, beyond those in flight.
const SCAN_BATCH: usize = 64;
/// The longest a worker sleeps without looking, as a safety net.
const MAX_IDLE: Duration = Duration::from_secs(5);
/// How often the worker reads its queue from the start rather than from its
/// cursor, in case the wall clock stepped back.
const FULL_RESCAN: Duration = Duration::from_secs(60);
/// The pause before retrying after the store failed to record an attempt.
const STORE_ERROR_BACKOFF: Duration = Duration::from_secs(1);

pub struct Worker {
    pub endpoint: String,
    pub stack: EndpointStack,
    /// The endpoint's limits and the global one: an attempt starts once it
    /// holds its permits.
    pub limits: EndpointLimits,
    pub global: Arc<GlobalLimit>,
    pub context: Arc<AttemptContext>,
    pub wakeup: Arc<Wakeup>,
    /// The endpoints an operator paused; this worker starts nothing while
    /// its own is among them.
    pub paused: watch::Receiver<HashSet<String>>,
    /// Deliveries of this endpoint in flight, shared with the workers of
    /// earlier configs whose attempts may still be running.
    pub in_flight: Arc<Mutex<HashSet<String>>>,
}

impl Worker {
    /// Runs until `stop` turns true; returns the attempts still in flight,
    /// for the shutdown grace period.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) -> JoinSet<()> {
        let in_flight = self.in_flight.clone();
        let mut attempts = JoinSet::new();
        let mut cursor = 0u64;
        let mut last_full_scan = Instant::now();
        'work: while !*stop.borrow() {
            while attempts.try_join_next().is_some() {}
            if self.paused.borrow().contains(&self.endpoint) {
                tokio::select! {
                    _ = self.paused.changed() => {}
                    _ = stop.changed() => {}
                }
                // Resumed: read the queue from the start.
                cursor = 0;
                continue;
            }
            if let Some(at) = self.wakeup.take_earliest() {
                cursor = cursor.min(at);
            }
            if last_full_scan.elapsed() >= FULL_RESCAN {
                cursor = 0;
                last_full_scan = Instant::now();
            }
            let now = clock::now_ms();
            let busy = lock(&in_flight).len();
            let scan = match self
                .context
                .store
                .due_scan(&self.endpoint, cursor, now, busy + SCAN_BATCH)
            {
                Ok(scan) => scan,
                Err(error) => {
                    tracing::error!(endpoint = %self.endpoint, %error, "cannot read due deliveries");
                    tokio::time::sleep(STORE_ERROR_BACKOFF).await;
                    continue;
                }
            };
            let fresh: Vec<(u64, String)> = {
                let in_flight = lock(&in_flight);
                scan.due.into_iter().filter(|(_, id)| !in_flight.contains(id)).collect()
            };
            if fresh.is_empty() {
                let idle = scan.next_at.map_or(MAX_IDLE, |at| {
                    Duration::from_millis(at.saturating_sub(now)).min(MAX_IDLE)
                });
                tokio::select! {
                    () = self.wakeup.notified() => {}
                    () = tokio::time::sleep(idle) => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            for (due_at, id) in fresh {
                if self.paused.borrow().contains(&self.endpoint) {
                    continue 'work;
                }
                // Wait for the endpoint's and the global permits.
                let permits = tokio::select! {
                    permits = Permits::acquire(&self.limits.adaptive, &self.limits.responsiveness, &self.global) => permits,
                    _ = stop.changed() => break 'work,
                };
                cursor = due_at;
                let entry = InFlight::enter(&in_flight, &id);
                let context = self.context.clone();
                let wakeup = self.wakeup.clone();
                let stack = self.stack.clone();
                attempts.spawn(async move {
                    let result = attempt(&context, stack, permits, &id, due_at).await;
                    drop(entry);
                    match result {
                        Ok(Attempted::Recorded(NextStep::RetryAt(at))) => wakeup.wake(at),
                        Ok(_) => {}
                        Err(error) => {
                            tracing::error!(delivery = %id, %error, "cannot record an attempt; it will be made again");
                            tokio::time::sleep(STORE_ERROR_BACKOFF).await;
                            wakeup.wake(due_at);
                        }
                    }
                });
            }
        }
        attempts
    }
}

/// A delivery's place in the in-flight set, left when dropped: when the
/// attempt ends, and also when it panics, so a panic never strands the
/// delivery (it is due again, and the next scan picks it up).
struct InFlight {
    set: Arc<Mutex<HashSet<String>>>,
    id: String,
}

impl InFlight {
    fn enter(set: &Arc<Mutex<HashSet<String>>>, id: &str) -> InFlight {
        lock(set).insert(id.to_owned());
        InFlight {
            set: set.clone(),
            id: id.to_owned(),
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        lock(&self.set).remove(&self.id);
    }
}

/// The in-flight set; a panic while it was held leaves it usable (it is
/// a set of ids, consistent after any single insert or remove).
fn lock(set: &Mutex<HashSet<String>>) -> std::sync::MutexGuard<'_, HashSet<String>> {
    set.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
