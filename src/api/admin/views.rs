//! The JSON shapes of the admin API (SPEC section 6). None holds a secret.

use serde::Serialize;

use crate::api::AppState;
use crate::clock;
use crate::config::{Endpoint, Settings};
use crate::dispatch::breaker::Circuit;
use crate::dispatch::health::LastAttempt;
use crate::dispatch::pauses::Pauses;
use crate::store::{AttemptRecord, DeliveryRecord, DeliveryStatus};

#[derive(Serialize)]
pub struct EndpointView {
    pub id: String,
    /// A tenant id, `"*"`, or null.
    pub tenant: Option<String>,
    pub url: String,
    pub events: Vec<String>,
    pub enabled: bool,
    pub paused: bool,
    pub pending: usize,
    /// This replica's, and in cluster mode also those JetStream holds.
    pub failed: usize,
    pub success_rate_1h: Option<f64>,
    pub circuit: Circuit,
    pub concurrency: Option<usize>,
    /// `"50/s"`, `"600/m"`, or null.
    pub rate_limit: Option<String>,
    /// `"key"` or `"none"`.
    pub ordering: &'static str,
    pub last_attempt: Option<LastAttemptView>,
    /// Cluster mode only: its deliveries parked in JetStream, across the
    /// cluster (`null` while JetStream does not answer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parked: Option<Option<u64>>,
}

#[derive(Serialize)]
pub struct LastAttemptView {
    pub at: String,
    pub status_code: Option<u16>,
    pub error_kind: Option<String>,
}

impl From<LastAttempt> for LastAttemptView {
    fn from(last: LastAttempt) -> LastAttemptView {
        LastAttemptView {
            at: clock::rfc3339(last.at_ms),
            status_code: last.status_code,
            error_kind: last.error_kind,
        }
    }
}

impl EndpointView {
    pub fn new(endpoint: &Endpoint, state: &AppState, pending: usize, failed: usize) -> EndpointView {
        let now = clock::now_ms();
        let (success_rate_1h, last) = state.health.of(&endpoint.id, now);
        EndpointView {
            id: endpoint.id.clone(),
            tenant: endpoint.audience.as_written().map(str::to_owned),
            url: endpoint.url.to_string(),
            events: endpoint.events.iter().map(ToString::to_string).collect(),
            enabled: endpoint.enabled,
            paused: state.pauses.is_paused(&endpoint.id),
            pending,
            failed,
            success_rate_1h,
            circuit: state.limits.breakers().circuit(&endpoint.id, now),
            concurrency: state.limits.concurrency(&endpoint.id),
            rate_limit: endpoint.rate_limit.map(|limit| limit.to_string()),
            ordering: if endpoint.ordered { "key" } else { "none" },
            last_attempt: last.map(LastAttemptView::from),
            parked: None,
        }
    }
}

#[derive(Serialize)]
pub struct DeliveryView {
    pub id: String,
    pub event_id: String,
    pub event: String,
    pub tenant: Option<String>,
    pub endpoint: String,
    pub status: &'static str,
    pub attempt_count: u32,
    pub next_attempt_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl DeliveryView {
    pub fn new(id: &str, record: &DeliveryRecord, status: &'static str) -> DeliveryView {
        DeliveryView {
            id: id.to_owned(),
            event_id: record.event_id.clone(),
            event: record.event.clone(),
            tenant: record.tenant.clone(),
            endpoint: record.endpoint.clone(),
            status,
            attempt_count: record.attempt_count,
            next_attempt_at: (record.status == DeliveryStatus::Pending).then(|| clock::rfc3339(record.next_attempt_at)),
            created_at: clock::rfc3339(record.created_at),
            updated_at: clock::rfc3339(record.updated_at),
        }
    }
}

#[derive(Serialize)]
pub struct DeliveryDetail {
    #[serde(flatten)]
    pub delivery: DeliveryView,
    /// The exact body sent.
    pub payload: String,
    pub attempts: Vec<AttemptView>,
}

#[derive(Serialize)]
pub struct AttemptView {
    pub n: u32,
    pub at: String,
    pub status_code: Option<u16>,
    pub error_kind: Option<String>,
    pub latency_ms: u64,
    pub response_snippet: String,
}

impl From<AttemptRecord> for AttemptView {
    fn from(attempt: AttemptRecord) -> AttemptView {
        AttemptView {
            n: attempt.n,
            at: clock::rfc3339(attempt.at),
            status_code: attempt.status_code,
            error_kind: attempt.error_kind,
            latency_ms: attempt.latency_ms,
            response_snippet: attempt.response_snippet,
        }
    }
}

/// A delivery's status as operators see it: a pending delivery whose
/// endpoint is paused, disabled or gone from the config is `paused`.
pub fn shown_status(record: &DeliveryRecord, settings: &Settings, pauses: &Pauses) -> &'static str {
    match record.status {
        DeliveryStatus::Succeeded => "succeeded",
        DeliveryStatus::Failed => "failed",
        DeliveryStatus::Pending => {
            let enabled = settings
                .endpoints
                .get(&record.endpoint)
                .is_some_and(|endpoint| endpoint.enabled);
            if enabled && !pauses.is_paused(&record.endpoint) {
                "pending"
            } else {
                "paused"
            }
        }
    }
}
