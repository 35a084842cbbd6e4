//! The periodic clean-up: fails deliveries that waited on a paused,
//! disabled or removed endpoint for longer than `storage.retention` (error
//! kind `expired`), and removes finished work older than the retention.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::clock;
use crate::config::Settings;
use crate::dispatch::outcome::ErrorKind;
use crate::dispatch::pauses::Pauses;
use crate::store::{self, AttemptRecord, Change, Expect, NextStep, Store, Transition};

/// How often the sweep runs at most: a minute, or an eighth of the
/// retention when that is shorter (so nothing outstays it by much).
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);
/// How often it runs at least.
const MIN_SWEEP_INTERVAL: Duration = Duration::from_millis(100);

/// Sweeps now and then until the task is aborted; a failure is logged and
/// tried again on the next round.
pub async fn sweep_forever(store: Store, settings: watch::Receiver<Arc<Settings>>, pauses: Arc<Pauses>) {
    loop {
        let every = (settings.borrow().storage.retention / 8).clamp(MIN_SWEEP_INTERVAL, SWEEP_INTERVAL);
        let store = store.clone();
        let settings = settings.borrow().clone();
        let pauses = pauses.clone();
        match tokio::task::spawn_blocking(move || sweep(&store, &settings, &pauses)).await {
            Ok(Ok((expired, removed))) => {
                if expired > 0 {
                    tracing::warn!(
                        deliveries = expired,
                        "failed deliveries paused for longer than storage.retention"
                    );
                }
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

fn sweep(store: &Store, settings: &Settings, pauses: &Pauses) -> Result<(usize, store::SweepStats), store::Error> {
    let retention_ms = u64::try_from(settings.storage.retention.as_millis()).unwrap_or(u64::MAX);
    let now = clock::now_ms();
    // An endpoint is active when it is in the config, enabled, and not
    // paused by an operator: only its queue is being worked.
    let active = |endpoint: &str| {
        !pauses.is_paused(endpoint) && settings.endpoints.get(endpoint).is_some_and(|known| known.enabled)
    };
    let expired = expire_waiting(store, &active, now, retention_ms)?;
    Ok((expired, store.sweep(now, retention_ms)?))
}

/// Fails the deliveries that have waited longer than `retention_ms` on an
/// endpoint that is not `active`: each gets a last attempt of kind
/// `expired` (no request is sent). One that changed meanwhile (its endpoint
/// came back and an attempt was recorded) is left as it is. Returns how
/// many expired.
pub fn expire_waiting(
    store: &Store,
    active: &dyn Fn(&str) -> bool,
    now_ms: u64,
    retention_ms: u64,
) -> Result<usize, store::Error> {
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
    let mut expired = 0;
    for applied in store.transition_all(transitions.collect()) {
        expired += usize::from(applied?.is_done());
    }
    Ok(expired)
}
