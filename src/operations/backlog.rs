//! `hookd.endpoint.backlog` (SPEC 4, "Operational events"): an endpoint
//! that is not paused, whose oldest due delivery has waited past
//! `operations.backlog_alert` for its attempt, raises one, at most once an
//! hour. How long a delivery has waited is counted from when it came due
//! (as `hookd_oldest_pending_seconds` counts it), so a delivery waiting
//! for its next retry is not a backlog, and one that cannot be sent as
//! fast as it comes due is.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::Operations;
use crate::clock;
use crate::config::{Endpoint, Settings};
use crate::dispatch::pauses::Pauses;
use crate::store::{self, Store};

/// The least time between two backlog events about one endpoint.
const ONCE_PER_MS: u64 = 60 * 60 * 1000;
/// The most time between two looks at the queues.
const MOST_BETWEEN_LOOKS: Duration = Duration::from_secs(30);
const LEAST_BETWEEN_LOOKS: Duration = Duration::from_millis(100);

/// Looks at every endpoint's queue now and then, until the task is dropped.
pub async fn watch_forever(
    store: Store,
    settings: watch::Receiver<Arc<Settings>>,
    pauses: Arc<Pauses>,
    operations: Arc<Operations>,
) {
    let mut last_raised: HashMap<String, u64> = HashMap::new();
    loop {
        let current = settings.borrow().clone();
        let threshold = current.operations.backlog_alert;
        tokio::time::sleep((threshold / 2).clamp(LEAST_BETWEEN_LOOKS, MOST_BETWEEN_LOOKS)).await;
        if current.operations.alert_endpoint.is_none() {
            continue;
        }
        let now = clock::now_ms();
        let threshold_ms = u64::try_from(threshold.as_millis()).unwrap_or(u64::MAX);
        let watched: Vec<Arc<Endpoint>> = current
            .endpoints
            .iter()
            .filter(|endpoint| endpoint.enabled && !pauses.is_paused(&endpoint.id))
            .filter(|endpoint| store.pending_count(&endpoint.id) > 0)
            .filter(|endpoint| {
                last_raised
                    .get(&endpoint.id)
                    .is_none_or(|at| now.saturating_sub(*at) >= ONCE_PER_MS)
            })
            .cloned()
            .collect();
        if watched.is_empty() {
            continue;
        }
        let reading = store.clone();
        let found = tokio::task::spawn_blocking(move || backlogged(&reading, watched, now, threshold_ms))
            .await
            .expect("the read does not panic");
        match found {
            Ok(found) => {
                for (endpoint, oldest_pending_ms) in found {
                    operations.backlog(&endpoint, store.pending_count(&endpoint.id), oldest_pending_ms);
                    last_raised.insert(endpoint.id.clone(), now);
                }
            }
            Err(error) => tracing::error!(%error, "cannot read the queues for backlog alerts"),
        }
    }
}

/// Of `endpoints`, those whose oldest due delivery has waited longer than
/// `threshold_ms` at `now`, with how long it has waited.
fn backlogged(
    store: &Store,
    endpoints: Vec<Arc<Endpoint>>,
    now: u64,
    threshold_ms: u64,
) -> Result<Vec<(Arc<Endpoint>, u64)>, store::Error> {
    let mut found = Vec::new();
    for endpoint in endpoints {
        if let Some(&(due, _)) = store.due_between(&endpoint.id, 0, now, 1)?.first() {
            let waited = now.saturating_sub(due);
            if waited > threshold_ms {
                found.push((endpoint, waited));
            }
        }
    }
    Ok(found)
}
