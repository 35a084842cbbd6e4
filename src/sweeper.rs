//! The periodic clean-up: fails deliveries that waited on a paused,
//! disabled or removed endpoint for longer than `storage.retention` (error
//! kind `expired`, reported as `hookd.delivery.failed` for an endpoint
//! still in the config), and removes finished work older than the
//! retention.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::clock;
use crate::config::Settings;
use crate::dispatch::outcome::ErrorKind;
use crate::dispatch::pauses::Pauses;
use crate::operations::{FailedDelivery, Operations};
use crate::store::{self, AttemptRecord, Change, DeliveryRecord, Expect, NextStep, Store, Transition};

/// How often the sweep runs at most: a minute, or an eighth of the
/// retention when that is shorter (so nothing outstays it by much).
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);
/// How often it runs at least.
const MIN_SWEEP_INTERVAL: Duration = Duration::from_millis(100);

/// Sweeps now and then until the task is aborted; a failure is logged and
/// tried again on the next round.
pub async fn sweep_forever(
    store: Store,
    settings: watch::Receiver<Arc<Settings>>,
    pauses: Arc<Pauses>,
    operations: Arc<Operations>,
) {
    loop {
        let every = (settings.borrow().storage.retention / 8).clamp(MIN_SWEEP_INTERVAL, SWEEP_INTERVAL);
        let store = store.clone();
        let settings = settings.borrow().clone();
        let pauses = pauses.clone();
        let sweeping = settings.clone();
        match tokio::task::spawn_blocking(move || sweep(&store, &sweeping, &pauses)).await {
            Ok(Ok((expired, removed))) => {
                if !expired.is_empty() {
                    tracing::warn!(
                        deliveries = expired.len(),
                        "failed deliveries paused for longer than storage.retention"
                    );
                }
                report_expired(&operations, &settings, &expired);
                if removed.deliveries + removed.events > 0 {
                    tracing::info!(
                        deliveries = removed.deliveries,
                        events = removed.events,
                        "removed expired work"
                    );
                }
            }
            Ok(Err(error)) => tracing::warn!(%error, "retention sweep failed"),
            Err(error) => tracing::warn!(%error, "retention sweep panicked"),
        }
        tokio::time::sleep(every).await;
    }
}

/// Deliveries that expired, by id.
type Expired = Vec<(String, DeliveryRecord)>;

/// Tells the alert endpoint of each delivery that expired on an endpoint
/// still in the config.
fn report_expired(operations: &Operations, settings: &Settings, expired: &Expired) {
    for (id, delivery) in expired {
        if let Some(endpoint) = settings.endpoints.get(&delivery.endpoint) {
            operations.delivery_failed(
                endpoint,
                &FailedDelivery {
                    delivery_id: id,
                    event_id: &delivery.event_id,
                    event: &delivery.event,
                    attempts: delivery.attempt_count,
                    error_kind: Some(ErrorKind::Expired.as_str()),
                    status_code: None,
                },
            );
        }
    }
}

/// Expires what waited too long (returning those deliveries, read after
/// the change) and removes finished work past the retention.
fn sweep(store: &Store, settings: &Settings, pauses: &Pauses) -> Result<(Expired, store::SweepStats), store::Error> {
    let retention_ms = u64::try_from(settings.storage.retention.as_millis()).unwrap_or(u64::MAX);
    let now = clock::now_ms();
    // An endpoint is active when it is in the config, enabled, and not
    // paused by an operator: only its queue is being worked.
    let active = |endpoint: &str| {
        !pauses.is_paused(endpoint) && settings.endpoints.get(endpoint).is_some_and(|known| known.enabled)
    };
    let mut expired = Vec::new();
    for id in expire_waiting(store, &active, now, retention_ms)? {
        if let Some(delivery) = store.delivery(&id)? {
            expired.push((id, delivery));
        }
    }
    Ok((expired, store.sweep(now, retention_ms)?))
}

/// Fails the deliveries that have waited longer than `retention_ms` on an
/// endpoint that is not `active`: each gets a last attempt of kind
/// `expired` (no request is sent). One that changed meanwhile (its endpoint
/// came back and an attempt was recorded) is left as it is. Returns those
/// that expired.
pub fn expire_waiting(
    store: &Store,
    active: &dyn Fn(&str) -> bool,
    now_ms: u64,
    retention_ms: u64,
) -> Result<Vec<String>, store::Error> {
    let transitions = store
        .waiting_too_long(active, now_ms, retention_ms)?
        .into_iter()
        .map(|(id, due_at)| Transition {
            id,
            expect: Expect::PendingDueAt(due_at),
            change: Change::Attempted {
                attempt: AttemptRecord {
                    n: 0,
                    at: now_ms,
                    status_code: None,
                    error_kind: Some(ErrorKind::Expired.as_str().to_owned()),
                    latency_ms: 0,
                    response_snippet: String::new(),
                },
                next: NextStep::Failed,
            },
            now_ms,
        });
    let transitions: Vec<Transition> = transitions.collect();
    let ids: Vec<String> = transitions.iter().map(|transition| transition.id.clone()).collect();
    let mut expired = Vec::new();
    for (id, applied) in ids.into_iter().zip(store.transition_all(transitions)) {
        if applied?.is_done() {
            expired.push(id);
        }
    }
    Ok(expired)
}
