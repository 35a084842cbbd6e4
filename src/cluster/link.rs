//! What the admin API sees of the cluster: the link's state, the parked
//! and failed deliveries per endpoint (JetStream's own per-subject
//! counts), where an operator's pause is shared, and the retry of failed
//! deliveries JetStream holds. Filled once JetStream is reached.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_nats::jetstream::{kv, stream};
use bytes::Bytes;
use futures_util::TryStreamExt;
use serde::Serialize;

use super::leases::{LeaseError, Leases};
use super::pauses::{PAUSED, RESUMED};
use super::retries::{self, RetryShareError};
use super::streams::{FAILED_PREFIX, PARKED_PREFIX};
use crate::store::Store;

/// How long an admin request waits for JetStream's counts.
const COUNT_PATIENCE: Duration = Duration::from_secs(2);

pub struct Link {
    client: async_nats::Client,
    /// `ack = "cluster"`: ingest waits for JetStream's copies.
    copies_required: bool,
    parked: OnceLock<stream::Stream>,
    failed: OnceLock<stream::Stream>,
    pauses: OnceLock<kv::Store>,
    leases: OnceLock<Arc<Leases>>,
}

/// Why a pause could not be shared.
#[derive(Debug, thiserror::Error)]
pub enum PauseShareError {
    #[error("JetStream has not been reached since hookd started")]
    NotReady,
    #[error("JetStream did not take the pause: {0}")]
    Unavailable(String),
}

/// The link as `GET /v1/config` shows it.
#[derive(Debug, Serialize)]
pub struct LinkState {
    /// The NATS connection is up.
    pub connected: bool,
    /// The streams and bucket were made or checked.
    pub ready: bool,
}

impl Link {
    pub fn new(client: async_nats::Client, copies_required: bool) -> Link {
        Link {
            client,
            copies_required,
            parked: OnceLock::new(),
            failed: OnceLock::new(),
            pauses: OnceLock::new(),
            leases: OnceLock::new(),
        }
    }

    /// `ack = "cluster"` once JetStream was reached: the copies are kept
    /// from now on.
    pub fn keep_copies(&self, leases: Arc<Leases>) {
        let _ = self.leases.set(leases);
    }

    /// Whether ingest must have JetStream hold copies before its 202.
    pub fn copies_required(&self) -> bool {
        self.copies_required
    }

    /// Whether copies can be made now: `false` sends ingest's 503 before
    /// anything is stored.
    pub fn can_copy(&self) -> bool {
        self.leases.get().is_some() && self.state().connected
    }

    /// Has JetStream hold copies of these events' pending deliveries.
    pub async fn copy(&self, event_ids: Vec<String>) -> Result<(), LeaseError> {
        match self.leases.get() {
            Some(leases) => leases.cover(event_ids).await,
            None => Err(LeaseError::not_ready()),
        }
    }

    /// JetStream was reached: what it holds is shown, and pauses shared,
    /// from now on.
    pub fn open(&self, parked: stream::Stream, failed: stream::Stream, pauses: kv::Store) {
        let _ = self.parked.set(parked);
        let _ = self.failed.set(failed);
        let _ = self.pauses.set(pauses);
    }

    pub fn state(&self) -> LinkState {
        LinkState {
            connected: self.client.connection_state() == async_nats::connection::State::Connected,
            ready: self.parked.get().is_some(),
        }
    }

    /// Writes `endpoint`'s pause for every replica.
    pub async fn share_pause(&self, endpoint: &str, paused: bool) -> Result<(), PauseShareError> {
        let bucket = self.pauses.get().ok_or(PauseShareError::NotReady)?;
        let value = Bytes::from_static(if paused { PAUSED } else { RESUMED });
        bucket
            .put(endpoint, value)
            .await
            .map(|_| ())
            .map_err(|error| PauseShareError::Unavailable(error.to_string()))
    }

    /// The parked deliveries of each endpoint that has any; `None` when
    /// JetStream does not answer in time.
    pub async fn parked_counts(&self) -> Option<HashMap<String, u64>> {
        subject_counts(self.parked.get()?, PARKED_PREFIX).await
    }

    /// The failed deliveries JetStream holds, per endpoint, as
    /// [`Link::parked_counts`].
    pub async fn failed_counts(&self) -> Option<HashMap<String, u64>> {
        subject_counts(self.failed.get()?, FAILED_PREFIX).await
    }

    /// Retries `endpoint`'s failed deliveries in JetStream that failed at
    /// or after `since_ms`; how many.
    pub async fn retry_failed(&self, store: &Store, endpoint: &str, since_ms: u64) -> Result<usize, RetryShareError> {
        let failed = self.failed.get().ok_or(RetryShareError::NotReady)?;
        retries::retry(failed, store, endpoint, |parcel| {
            parcel.delivery.finished_at.unwrap_or(0) >= since_ms
        })
        .await
    }

    /// Retries failed delivery `id` if JetStream holds it; whether it did.
    pub async fn retry_one(&self, store: &Store, id: &str) -> Result<bool, RetryShareError> {
        let failed = self.failed.get().ok_or(RetryShareError::NotReady)?;
        let Some((_, endpoint)) = id.rsplit_once('.') else {
            return Ok(false);
        };
        Ok(retries::retry(failed, store, endpoint, |parcel| parcel.id == id).await? > 0)
    }
}

/// Messages per subject of `stream` under `prefix`, keyed by what follows
/// the prefix (the endpoint id); `None` when JetStream does not answer in
/// time.
async fn subject_counts(stream: &stream::Stream, prefix: &str) -> Option<HashMap<String, u64>> {
    let counting = async {
        let mut counts = HashMap::new();
        let mut subjects = stream.info_with_subjects(format!("{prefix}>")).await.ok()?;
        while let Some((subject, count)) = subjects.try_next().await.ok()? {
            if let Some(endpoint) = subject.strip_prefix(prefix) {
                counts.insert(endpoint.to_owned(), count as u64);
            }
        }
        Some(counts)
    };
    tokio::time::timeout(COUNT_PATIENCE, counting).await.ok().flatten()
}
