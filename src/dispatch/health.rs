//! Each endpoint's recent health, for operators: the success rate over
//! the last hour and the last attempt. Kept in memory: after a restart it
//! starts empty and fills as attempts are made. Each endpoint has its own
//! lock, taken once per attempt: no lock is shared by
//! the attempts of different endpoints.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

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

/// One endpoint's recent attempts; its worker's attempts record here
/// without touching any other endpoint's.
#[derive(Debug, Default)]
pub struct EndpointHealth {
    attempts: Mutex<RecentAttempts>,
}

#[derive(Debug, Default)]
struct RecentAttempts {
    /// (minute, successes, attempts), oldest first.
    minutes: VecDeque<(u64, u32, u32)>,
    last: Option<LastAttempt>,
}

impl EndpointHealth {
    /// Notes an attempt's outcome.
    pub(super) fn record(&self, attempt: &AttemptRecord) {
        let mut recent = self.attempts.lock().unwrap_or_else(PoisonError::into_inner);
        let minute = attempt.at / MINUTE_MS;
        let success = u32::from(attempt.error_kind.is_none());
        match recent.minutes.back_mut() {
            Some((last, successes, total)) if *last == minute => {
                *successes += success;
                *total += 1;
            }
            _ => recent.minutes.push_back((minute, success, 1)),
        }
        while recent
            .minutes
            .front()
            .is_some_and(|(oldest, _, _)| *oldest + WINDOW_MINUTES <= minute)
        {
            recent.minutes.pop_front();
        }
        recent.last = Some(LastAttempt {
            at_ms: attempt.at,
            status_code: attempt.status_code,
            error_kind: attempt.error_kind.clone(),
        });
    }

    fn summary(&self, now_ms: u64) -> (Option<f64>, Option<LastAttempt>) {
        let recent = self.attempts.lock().unwrap_or_else(PoisonError::into_inner);
        let current = now_ms / MINUTE_MS;
        let (successes, total) = recent
            .minutes
            .iter()
            .filter(|(minute, _, _)| minute + WINDOW_MINUTES > current)
            .fold((0u32, 0u32), |(s, t), (_, successes, total)| (s + successes, t + total));
        let rate = (total > 0).then(|| f64::from(successes) / f64::from(total));
        (rate, recent.last.clone())
    }
}

/// Every endpoint's recent attempts, in memory.
#[derive(Debug, Default)]
pub struct Health {
    endpoints: RwLock<HashMap<String, Arc<EndpointHealth>>>,
}

impl Health {
    /// Endpoint `endpoint`'s health, where its attempts record; the same
    /// across reloads.
    pub fn of_endpoint(&self, endpoint: &str) -> Arc<EndpointHealth> {
        super::per_endpoint::entry_of(&self.endpoints, endpoint)
    }

    /// The share of successful attempts in the last hour (`None` without
    /// attempts), and the last attempt.
    pub fn of(&self, endpoint: &str, now_ms: u64) -> (Option<f64>, Option<LastAttempt>) {
        let health = self
            .endpoints
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(endpoint)
            .cloned();
        health.map_or((None, None), |health| health.summary(now_ms))
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
        let health = Health::default();
        let start = 1_000 * MINUTE_MS;
        let crm = health.of_endpoint("crm");
        crm.record(&attempt(start, false));
        crm.record(&attempt(start + 30 * MINUTE_MS, true));
        health
            .of_endpoint("crm")
            .record(&attempt(start + 30 * MINUTE_MS + 5, true));
        let (rate, last) = health.of("crm", start + 30 * MINUTE_MS + 10);
        assert!((rate.unwrap() - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(last.unwrap().status_code, Some(200));
        let (rate, _) = health.of("crm", start + 61 * MINUTE_MS);
        assert_eq!(rate, Some(1.0), "the failure is more than an hour old");
        assert_eq!(health.of("other", start), (None, None));
    }
}
