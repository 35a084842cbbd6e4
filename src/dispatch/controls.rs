//! What operators see of and change in the running dispatcher: each
//! endpoint's adaptive concurrency, operator pauses, and recent health
//! (success rate over the last hour, the last attempt).
//!
//! Pauses are kept in the store by the admin API and mirrored here, where
//! workers watch them. Health is kept in memory: after a restart it starts
//! empty and fills as attempts are made.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::watch;

use super::adaptive_limit::AdaptiveLimit;
use super::permits::Responsiveness;
use crate::store::AttemptRecord;

const MINUTE_MS: u64 = 60_000;
/// Minutes of attempts the success rate covers.
const WINDOW_MINUTES: u64 = 60;

/// An endpoint's most recent attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastAttempt {
    pub at_ms: u64,
    pub status_code: Option<u16>,
    pub error_kind: Option<String>,
}

#[derive(Debug, Default)]
struct Health {
    /// (minute, successes, attempts), oldest first.
    minutes: VecDeque<(u64, u32, u32)>,
    last: Option<LastAttempt>,
}

/// What limits one endpoint's attempts.
#[derive(Debug, Clone)]
pub(super) struct EndpointLimits {
    pub adaptive: Arc<AdaptiveLimit>,
    pub responsiveness: Arc<Responsiveness>,
}

#[derive(Debug)]
pub struct Controls {
    limits: RwLock<HashMap<String, EndpointLimits>>,
    paused: watch::Sender<HashSet<String>>,
    /// Held across an operator's pause or resume, from the store's write
    /// to the workers' view, so concurrent calls never interleave the two
    /// steps (and the view always ends as the store does).
    pause_changes: tokio::sync::Mutex<()>,
    health: Mutex<HashMap<String, Health>>,
}

impl Controls {
    /// Starts with the pauses the store remembers.
    pub fn new(paused: impl IntoIterator<Item = String>) -> Arc<Controls> {
        Arc::new(Controls {
            limits: RwLock::default(),
            paused: watch::Sender::new(paused.into_iter().collect()),
            pause_changes: tokio::sync::Mutex::new(()),
            health: Mutex::default(),
        })
    }

    /// The endpoint's adaptive limit and responsiveness, kept across config
    /// reloads, with the limit's upper bound set to `max`.
    pub(super) fn limits(&self, endpoint: &str, max: usize) -> EndpointLimits {
        let mut limits = self.limits.write().expect("limits lock");
        let limits = limits
            .entry(endpoint.to_owned())
            .or_insert_with(|| EndpointLimits {
                adaptive: AdaptiveLimit::new(max),
                responsiveness: Arc::default(),
            })
            .clone();
        limits.adaptive.set_max(max);
        limits
    }

    /// The endpoint's current adaptive concurrency, if it has a worker.
    pub fn concurrency(&self, endpoint: &str) -> Option<usize> {
        self.limits
            .read()
            .expect("limits lock")
            .get(endpoint)
            .map(|limits| limits.adaptive.current())
    }

    pub fn is_paused(&self, endpoint: &str) -> bool {
        self.paused.borrow().contains(endpoint)
    }

    /// The turn to change a pause: store it, then [`Controls::set_paused`],
    /// while holding this.
    pub async fn pause_turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.pause_changes.lock().await
    }

    /// Pauses or resumes an endpoint's worker (the caller stores it first,
    /// in its [`Controls::pause_turn`]).
    pub fn set_paused(&self, endpoint: &str, paused: bool) {
        self.paused.send_modify(|set| {
            if paused {
                set.insert(endpoint.to_owned());
            } else {
                set.remove(endpoint);
            }
        });
    }

    pub(super) fn watch_paused(&self) -> watch::Receiver<HashSet<String>> {
        self.paused.subscribe()
    }

    /// Notes an attempt's outcome.
    pub(super) fn record(&self, endpoint: &str, attempt: &AttemptRecord) {
        let mut health = self.health.lock().expect("health lock");
        let health = health.entry(endpoint.to_owned()).or_default();
        let minute = attempt.at / MINUTE_MS;
        let success = u32::from(attempt.error_kind.is_none());
        match health.minutes.back_mut() {
            Some((last, successes, total)) if *last == minute => {
                *successes += success;
                *total += 1;
            }
            _ => health.minutes.push_back((minute, success, 1)),
        }
        while health
            .minutes
            .front()
            .is_some_and(|(oldest, _, _)| *oldest + WINDOW_MINUTES <= minute)
        {
            health.minutes.pop_front();
        }
        health.last = Some(LastAttempt {
            at_ms: attempt.at,
            status_code: attempt.status_code,
            error_kind: attempt.error_kind.clone(),
        });
    }

    /// The share of successful attempts in the last hour (`None` without
    /// attempts), and the last attempt.
    pub fn health(&self, endpoint: &str, now_ms: u64) -> (Option<f64>, Option<LastAttempt>) {
        let health = self.health.lock().expect("health lock");
        let Some(health) = health.get(endpoint) else {
            return (None, None);
        };
        let current = now_ms / MINUTE_MS;
        let (successes, total) = health
            .minutes
            .iter()
            .filter(|(minute, _, _)| minute + WINDOW_MINUTES > current)
            .fold((0u32, 0u32), |(s, t), (_, successes, total)| (s + successes, t + total));
        let rate = (total > 0).then(|| f64::from(successes) / f64::from(total));
        (rate, health.last.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(at: u64, ok: bool) -> AttemptRecord {
        AttemptRecord {
            n: 1,
            at,
            status_code: Some(if ok { 200 } else { 500 }),
            error_kind: (!ok).then(|| "status".to_owned()),
            latency_ms: 1,
            response_snippet: String::new(),
        }
    }

    #[test]
    fn the_success_rate_covers_the_last_hour() {
        let controls = Controls::new([]);
        let start = 1_000 * MINUTE_MS;
        controls.record("crm", &attempt(start, false));
        controls.record("crm", &attempt(start + 30 * MINUTE_MS, true));
        controls.record("crm", &attempt(start + 30 * MINUTE_MS + 5, true));
        let (rate, last) = controls.health("crm", start + 30 * MINUTE_MS + 10);
        assert!((rate.unwrap() - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(last.unwrap().status_code, Some(200));
        let (rate, _) = controls.health("crm", start + 61 * MINUTE_MS);
        assert_eq!(rate, Some(1.0), "the failure is more than an hour old");
        assert_eq!(controls.health("other", start), (None, None));
    }

    #[test]
    fn pauses_are_watched() {
        let controls = Controls::new(["crm".to_owned()]);
        let watcher = controls.watch_paused();
        assert!(controls.is_paused("crm"));
        controls.set_paused("crm", false);
        assert!(!watcher.borrow().contains("crm"));
    }
}
