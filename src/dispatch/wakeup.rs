//! Waking an endpoint's worker when work arrives, so a new event is sent
//! within milliseconds instead of at the next poll.
//!
//! A wake carries the due time of the new work. The worker reads its queue
//! from a cursor (the due time of the last delivery it handed out); a wake
//! moves the cursor back if the new work sorts before it, so nothing
//! written just behind the cursor is missed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// One endpoint's doorbell.
#[derive(Debug)]
pub struct Wakeup {
    notify: Notify,
    /// The earliest due time woken for since the worker last looked;
    /// `u64::MAX` when none.
    earliest: AtomicU64,
}

impl Default for Wakeup {
    fn default() -> Self {
        Wakeup {
            notify: Notify::new(),
            earliest: AtomicU64::new(u64::MAX),
        }
    }
}

impl Wakeup {
    /// Work due at `due_ms` is in the store.
    pub fn wake(&self, due_ms: u64) {
        self.earliest.fetch_min(due_ms, Ordering::AcqRel);
        self.notify.notify_one();
    }

    /// The earliest due time woken for since the last call, if any.
    pub fn take_earliest(&self) -> Option<u64> {
        match self.earliest.swap(u64::MAX, Ordering::AcqRel) {
            u64::MAX => None,
            at => Some(at),
        }
    }

    /// Completes at the next wake (or at once if one came since the last).
    pub async fn notified(&self) {
        self.notify.notified().await;
    }
}

/// The doorbells of all endpoints, by endpoint id; shared by the ingest API
/// (which rings) and the dispatcher (whose workers listen).
#[derive(Debug, Default)]
pub struct Wakeups {
    by_endpoint: Mutex<HashMap<String, Arc<Wakeup>>>,
}

impl Wakeups {
    pub fn get(&self, endpoint: &str) -> Arc<Wakeup> {
        let mut map = self.by_endpoint.lock().expect("wakeups lock");
        map.entry(endpoint.to_owned()).or_default().clone()
    }

    pub fn wake(&self, endpoint: &str, due_ms: u64) {
        self.get(endpoint).wake(due_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_wake_before_waiting_is_not_lost() {
        let wakeups = Wakeups::default();
        wakeups.wake("crm", 20);
        wakeups.wake("crm", 10);
        let wakeup = wakeups.get("crm");
        tokio::time::timeout(std::time::Duration::from_secs(5), wakeup.notified())
            .await
            .expect("the stored wake completes at once");
        assert_eq!(wakeup.take_earliest(), Some(10));
        assert_eq!(wakeup.take_earliest(), None);
    }
}
