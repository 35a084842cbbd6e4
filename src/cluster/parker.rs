//! Parking: moving a delivery from this replica's store into JetStream,
//! where any replica adopts it when it is due ([`super::adopter`]).
//!
//! Failed deliveries are parked too, into `HOOKD_FAILED`, as they fail:
//! any replica counts them and an operator's retry on any replica adopts
//! them ([`super::retries`]).
//!
//! Parked are the deliveries of endpoints this replica does not work
//! (disabled, gone from its config; but not those that waited past the
//! retention, which the sweeper expires), those whose next attempt is more
//! than `park_after` away, and at SIGTERM every pending one. A paused
//! endpoint's deliveries stay until SIGTERM: pauses are this replica's own
//! so far, and another replica would send them. The
//! transfer is at least once: a delivery is published (its id and attempt
//! count as JetStream's de-duplication id), and only once JetStream
//! confirmed it is it let go here, by a [`Change::Parked`] transition that
//! expects it as it was read. If it changed meanwhile (a worker's attempt,
//! an operator's retry) the transition writes nothing and the copy just
//! published is deleted again, so it is neither lost nor held twice.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, context::PublishAckFuture, message::PublishMessage, stream};
use bytes::Bytes;
use tokio::sync::watch;

use super::metrics::{ClusterMetrics, ParkReason};
use super::parcel::Parcel;
use super::streams::{failed_subject, parked_subject};
use crate::clock;
use crate::config::Settings;
use crate::dispatch::pauses::Pauses;
use crate::store::{Applied, Change, Expect, Park, Parkable, Store, Transition};

/// Deliveries read and published per pass.
const BATCH: usize = 256;

/// Why a pass stopped.
#[derive(Debug, thiserror::Error)]
pub enum ParkError {
    #[error("the store: {0}")]
    Store(#[from] crate::store::Error),
    #[error("JetStream: {0}")]
    JetStream(String),
}

/// The most deliveries [`Parkables::count`] counts: `hookd_park_pending`
/// says "at least this many" beyond it.
const COUNT_LIMIT: usize = 10_000;

/// Which deliveries of this replica's store are to be parked now.
#[derive(Clone)]
pub struct Parkables {
    pub store: Store,
    pub settings: watch::Receiver<Arc<Settings>>,
    pub pauses: Arc<Pauses>,
    pub park_after: Duration,
}

impl Parkables {
    /// Up to `limit` of them, at `now`; with `everything`, every pending
    /// delivery.
    async fn find(&self, everything: bool, now: u64, from: &[u8], limit: usize) -> Result<Vec<Parkable>, ParkError> {
        let settings = self.settings.borrow().clone();
        let pauses = self.pauses.clone();
        let long_wait = clock::after(now, self.park_after).saturating_add(1);
        // What waited past the retention on an endpoint not worked here
        // stays, for the sweeper to expire (as standalone).
        let unexpired = now.saturating_sub(settings.storage.retention.as_millis() as u64);
        let park = move |endpoint: &str| match settings.endpoints.get(endpoint) {
            _ if everything => Park::DueFrom(0),
            Some(endpoint) if !endpoint.enabled => Park::DueFrom(unexpired),
            None => Park::DueFrom(unexpired),
            Some(_) if pauses.is_paused(endpoint) => Park::Nothing,
            // A keyed delivery holds its key through its retries here: a
            // parked one would leave its key's order.
            Some(endpoint) if endpoint.ordered => Park::Nothing,
            Some(_) => Park::DueFrom(long_wait),
        };
        let store = self.store.clone();
        let from = from.to_vec();
        let found = tokio::task::spawn_blocking(move || store.parkable(&park, &from, limit))
            .await
            .expect("the read does not panic")?;
        Ok(found)
    }

    /// Counts what waits to be parked (up to [`COUNT_LIMIT`]) into
    /// `hookd_park_pending`, while parking cannot happen.
    pub async fn count(&self, metrics: &ClusterMetrics) {
        match self.find(false, clock::now_ms(), &[], COUNT_LIMIT).await {
            Ok(found) => metrics.set_park_pending(found.len()),
            Err(error) => tracing::debug!(%error, "cannot count what waits to be parked"),
        }
    }
}

pub struct Parker {
    pub parkables: Parkables,
    pub jetstream: jetstream::Context,
    /// `HOOKD_PARKED`.
    pub stream: stream::Stream,
    /// `HOOKD_FAILED`.
    pub failed: stream::Stream,
    pub metrics: ClusterMetrics,
}

/// Where a delivery goes.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// Pending: `HOOKD_PARKED`, adopted when due.
    Pending,
    /// Failed: `HOOKD_FAILED`, until a retry or the retention.
    Failed,
}

impl Parker {
    /// At SIGTERM, before parking everything: the deliveries that wait for
    /// their key have no place in the queue, so they are made due, to be
    /// parked with the rest. Nothing is stranded; their keys' order is
    /// given up.
    pub async fn release_waiting(&self) {
        let store = self.parkables.store.clone();
        let reading = store.clone();
        let waiting = tokio::task::spawn_blocking(move || reading.waiting_in_order())
            .await
            .expect("the read does not panic");
        match waiting {
            Ok(waiting) if !waiting.is_empty() => {
                store
                    .take_turns(waiting.into_iter().map(|(_, id)| id).collect(), true)
                    .await;
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "cannot read the deliveries that wait for their key"),
        }
    }

    /// Parks up to one batch of what is parkable now (with `everything`,
    /// every pending delivery), read from `cursor` on, which it moves past
    /// the batch; how many it parked, 0 only when nothing was found there
    /// (or all of it changed meanwhile): then a new round starts from an
    /// empty cursor. An error leaves what JetStream did not confirm here,
    /// for the next round.
    pub async fn pass(&self, everything: bool, cursor: &mut Vec<u8>) -> Result<usize, ParkError> {
        let now = clock::now_ms();
        let round_starts = cursor.is_empty();
        let found = self.parkables.find(everything, now, cursor, BATCH).await?;
        if let Some(last) = found.last() {
            cursor.clone_from(&last.next);
        }
        if round_starts && found.len() < BATCH {
            self.metrics.set_park_pending(found.len());
        }
        let settings = self.parkables.settings.borrow().clone();
        let reason = |parkable: &Parkable| match settings.endpoints.get(&parkable.endpoint) {
            _ if everything => ParkReason::Shutdown,
            Some(endpoint) if endpoint.enabled => ParkReason::LongWait,
            _ => ParkReason::Inactive,
        };
        self.park(found, Target::Pending, now, reason).await
    }

    /// Parks up to one batch of failed deliveries into `HOOKD_FAILED`, as
    /// [`Parker::pass`] does pending ones.
    pub async fn pass_failed(&self, cursor: &mut Vec<u8>) -> Result<usize, ParkError> {
        let now = clock::now_ms();
        let store = self.parkables.store.clone();
        let from = cursor.clone();
        let found = tokio::task::spawn_blocking(move || store.failed_parkable(&from, BATCH))
            .await
            .expect("the read does not panic")?;
        if let Some(last) = found.last() {
            cursor.clone_from(&last.next);
        }
        self.park(found, Target::Failed, now, |_| ParkReason::Failed).await
    }

    /// Publishes `found`, then lets go of what JetStream confirmed.
    async fn park(
        &self,
        found: Vec<Parkable>,
        target: Target,
        now: u64,
        reason: impl Fn(&Parkable) -> ParkReason,
    ) -> Result<usize, ParkError> {
        if found.is_empty() {
            return Ok(0);
        }
        let store = self.parkables.store.clone();
        let wanted = found.clone();
        let parcels = tokio::task::spawn_blocking(move || {
            wanted
                .iter()
                .map(|parkable| Parcel::read(&store, &parkable.id))
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .expect("the read does not panic")?;
        // Publish the whole batch, then wait for JetStream's confirmations.
        let mut acks: Vec<(Parkable, PublishAckFuture)> = Vec::with_capacity(parcels.len());
        for (parkable, parcel) in found.into_iter().zip(parcels) {
            let Some(parcel) = parcel else { continue };
            let payload = match parcel.encode() {
                Ok(payload) => payload,
                Err(error) => {
                    tracing::error!(delivery = %parcel.id, %error, "cannot park this delivery; it stays here");
                    continue;
                }
            };
            let (subject, kind) = match target {
                Target::Pending => (parked_subject(&parkable.endpoint), "pending"),
                Target::Failed => (failed_subject(&parkable.endpoint), "failed"),
            };
            let message = PublishMessage::build()
                .payload(Bytes::from(payload))
                .message_id(format!("{}:{kind}:{}", parcel.id, parcel.delivery.attempt_count));
            let ack = self
                .jetstream
                .send_publish(subject, message)
                .await
                .map_err(|error| ParkError::JetStream(error.to_string()))?;
            acks.push((parkable, ack));
        }
        let mut confirmed = Vec::with_capacity(acks.len());
        let mut unconfirmed = None;
        for (parkable, ack) in acks {
            match ack.await {
                Ok(ack) => confirmed.push((parkable, ack.sequence)),
                // What was confirmed before is let go below; the rest
                // stays here for the next pass, and the pass fails.
                Err(error) => {
                    unconfirmed = Some(ParkError::JetStream(format!(
                        "JetStream did not confirm the parking of {}: {error}",
                        parkable.id
                    )));
                    break;
                }
            }
        }
        let transitions = confirmed
            .iter()
            .map(|(parkable, _)| Transition {
                id: parkable.id.clone(),
                expect: match target {
                    Target::Pending => Expect::PendingDueAt(parkable.due_ms),
                    Target::Failed => Expect::Failed,
                },
                change: Change::Parked,
                now_ms: now,
            })
            .collect();
        let store = self.parkables.store.clone();
        let applied = tokio::task::spawn_blocking(move || store.transition_all(transitions))
            .await
            .expect("the write does not panic");
        let mut parked = 0;
        for ((parkable, sequence), applied) in confirmed.iter().zip(applied) {
            match applied {
                Ok(Applied::Done { .. }) => {
                    parked += 1;
                    self.metrics.parked(reason(parkable));
                }
                // It changed meanwhile: it stays here, so the copy goes.
                Ok(Applied::Stale | Applied::Missing) => self.take_back(target, *sequence).await,
                // Unknown whether it was let go: both copies stay, and
                // the worst case is one more send.
                Err(error) => tracing::warn!(delivery = %parkable.id, %error, "letting a parked delivery go failed"),
            }
        }
        match unconfirmed {
            Some(error) => Err(error),
            None => Ok(parked),
        }
    }

    /// Deletes a parked copy whose delivery stayed here.
    async fn take_back(&self, target: Target, sequence: u64) {
        let stream = match target {
            Target::Pending => &self.stream,
            Target::Failed => &self.failed,
        };
        if let Err(error) = stream.delete_message(sequence).await {
            tracing::warn!(sequence, %error, "cannot delete a parked copy of a delivery that stayed; it may be sent twice");
        }
    }
}
