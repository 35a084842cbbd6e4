//! Operational events (SPEC 4): hookd's own events, sent to
//! `operations.alert_endpoint` and nowhere else, signed and retried like
//! any delivery.
//!
//! - `hookd.endpoint.circuit_opened` and `...circuit_closed`, when an
//!   endpoint's circuit opens or closes ([`crate::dispatch::breaker`]);
//! - `hookd.endpoint.backlog`, when an endpoint's oldest due delivery has
//!   waited past `backlog_alert` ([`backlog`]), at most once an hour;
//! - `hookd.delivery.failed`, when a delivery fails for good, at most 60 a
//!   minute per endpoint, then one `hookd.delivery.failed_summary` a minute
//!   ([`failure_budget`]).
//!
//! They carry the endpoint's id and tenant (so the platform can tell the
//! customer whose endpoint it is), never an event's data or a secret, and
//! have no tenant of their own. The alert endpoint's own circuit and
//! failures raise none: hookd never reports on its reports. Each is stored
//! like a test ping, as an event with one delivery, so it survives a crash
//! and is retried on the endpoint's schedule; each replica sends its own.

pub mod backlog;
mod failure_budget;

use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use serde_json::{Value, json};
use time::OffsetDateTime;

use self::failure_budget::{FailureBudget, Verdict};
use crate::clock;
use crate::config::Endpoint;
use crate::dispatch::inbox::Inboxes;
use crate::event::made_by_hookd;
use crate::store::Store;

/// How often the summaries of minutes over the failure budget are sent.
const SUMMARY_TICK: Duration = Duration::from_secs(5);

/// A delivery that failed for good, as `hookd.delivery.failed` tells it.
#[derive(Debug, Clone)]
pub struct FailedDelivery<'a> {
    pub delivery_id: &'a str,
    pub event_id: &'a str,
    pub event: &'a str,
    pub attempts: u32,
    pub error_kind: Option<&'a str>,
    pub status_code: Option<u16>,
}

pub struct Operations {
    store: Store,
    inboxes: Arc<Inboxes>,
    /// From the current config.
    alert_endpoint: RwLock<Option<String>>,
    failures: Mutex<FailureBudget>,
}

impl Operations {
    pub fn new(store: Store, inboxes: Arc<Inboxes>) -> Arc<Operations> {
        Arc::new(Operations {
            store,
            inboxes,
            alert_endpoint: RwLock::new(None),
            failures: Mutex::default(),
        })
    }

    /// A config was loaded: its `operations.alert_endpoint`.
    pub fn set_alert_endpoint(&self, endpoint: Option<&str>) {
        *self.alert_endpoint.write().unwrap_or_else(PoisonError::into_inner) = endpoint.map(str::to_owned);
    }

    /// Where an event about `endpoint` goes: nowhere when no alert
    /// endpoint is set, or when `endpoint` is the alert endpoint.
    fn alert_about(&self, endpoint: &str) -> Option<String> {
        self.alert_endpoint
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .filter(|alert| alert != endpoint)
    }

    pub fn circuit_opened(&self, endpoint: &Endpoint, failures: u32, cooldown_ms: u64) {
        self.circuit_event("hookd.endpoint.circuit_opened", endpoint, failures, cooldown_ms);
    }

    pub fn circuit_closed(&self, endpoint: &Endpoint, failures: u32, cooldown_ms: u64) {
        self.circuit_event("hookd.endpoint.circuit_closed", endpoint, failures, cooldown_ms);
    }

    fn circuit_event(&self, name: &'static str, endpoint: &Endpoint, failures: u32, cooldown_ms: u64) {
        let data = json!({
            "endpoint": endpoint.id,
            "tenant": endpoint.audience.as_written(),
            "failures": failures,
            "cooldown_ms": cooldown_ms,
        });
        self.raise(&endpoint.id, name, &data);
    }

    /// `endpoint`'s oldest due delivery has waited `oldest_pending_ms`.
    pub fn backlog(&self, endpoint: &Endpoint, pending: usize, oldest_pending_ms: u64) {
        let data = json!({
            "endpoint": endpoint.id,
            "tenant": endpoint.audience.as_written(),
            "pending": pending,
            "oldest_pending_ms": oldest_pending_ms,
        });
        self.raise(&endpoint.id, "hookd.endpoint.backlog", &data);
    }

    pub fn delivery_failed(&self, endpoint: &Endpoint, failed: &FailedDelivery<'_>) {
        if self.alert_about(&endpoint.id).is_none() {
            return;
        }
        let tenant = endpoint.audience.as_written();
        let verdict =
            self.failures
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .note(&endpoint.id, tenant, clock::now_ms());
        if verdict == Verdict::Summarize {
            return;
        }
        let data = json!({
            "endpoint": endpoint.id,
            "tenant": tenant,
            "delivery_id": failed.delivery_id,
            "event_id": failed.event_id,
            "event": failed.event,
            "attempts": failed.attempts,
            "error_kind": failed.error_kind,
            "status_code": failed.status_code,
        });
        self.raise(&endpoint.id, "hookd.delivery.failed", &data);
    }

    /// Sends the summaries of the minutes over the failure budget, until
    /// the task is dropped.
    pub async fn summarize_forever(self: Arc<Self>) {
        let mut tick = tokio::time::interval(SUMMARY_TICK);
        loop {
            tick.tick().await;
            let due = self
                .failures
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .summaries_due(clock::now_ms());
            for summary in due {
                let data = json!({
                    "endpoint": summary.endpoint,
                    "tenant": summary.tenant,
                    "count": summary.count,
                    "since": clock::rfc3339(summary.since_ms),
                });
                self.raise(&summary.endpoint, "hookd.delivery.failed_summary", &data);
            }
        }
    }

    /// Stores event `name` about `endpoint` for the alert endpoint, in the
    /// background, and wakes its worker.
    fn raise(&self, endpoint: &str, name: &'static str, data: &Value) {
        let Some(alert) = self.alert_about(endpoint) else {
            return;
        };
        let event = made_by_hookd(name, &data.to_string(), None, &alert, OffsetDateTime::now_utc());
        let (store, inboxes) = (self.store.clone(), self.inboxes.clone());
        tokio::spawn(async move {
            let received_at = event.received_at;
            match store.ingest(vec![event]).await {
                Ok(_) => inboxes.wake(&alert, received_at),
                Err(error) => tracing::error!(event = name, %error, "cannot store an operational event"),
            }
        });
    }
}
