//! `ack = "cluster"` (SPEC 11): JetStream holds a copy of every pending
//! delivery, so an acknowledged event survives the loss of the replica
//! that took it, volume and all.
//!
//! Ingest answers 202 only once each new delivery's copy is confirmed
//! (published to `HOOKD_PARKED` with the delivery id in its
//! de-duplication id, so a resubmission publishes nothing twice). The
//! holder still makes the attempts; its copy is due for the others `lease`
//! after the holder's next attempt, and each change of the delivery
//! replaces it (a finished or parked delivery's is deleted), so another
//! replica adopts the delivery only if its holder went silent. Copies are
//! kept in step by one task, which takes what changed meanwhile, each
//! delivery's last change only, and brings those copies in line at once;
//! which copy is a delivery's is remembered in memory, so after a
//! restart of the holder the copies of before stay until they are due:
//! then another replica may send a delivery the holder sends too (at least
//! once, never lost).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, context::PublishAckFuture, message::PublishMessage, stream};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::parcel::Parcel;
use super::streams::parked_subject;
use crate::clock;
use crate::store::{DeliveryRecord, DeliveryStatus, Store};

/// How long ingest waits for JetStream's confirmations.
const CONFIRM_PATIENCE: Duration = Duration::from_secs(5);
/// Deliveries whose copies are brought in line together, at most.
const FOLLOW_BATCH: usize = 1024;
/// Of those, how many at a time: one. Each is a request JetStream
/// replicates, and ingest's copies wait behind them: with 8 at a time end
/// to end made 984 deliveries/s, one at a time 2,705 (docs/BENCHMARKS.md).
const FOLLOW_CONCURRENCY: usize = 1;

/// Why JetStream does not hold the copies.
#[derive(Debug, thiserror::Error)]
#[error("JetStream did not take the deliveries' copies: {0}")]
pub struct LeaseError(String);

impl LeaseError {
    pub fn not_ready() -> LeaseError {
        LeaseError("JetStream has not been reached since hookd started".to_owned())
    }
}

pub struct Leases {
    jetstream: jetstream::Context,
    parked: stream::Stream,
    store: Store,
    lease: Duration,
    /// Each held delivery's copy: its stream sequence.
    copies: Mutex<HashMap<String, u64>>,
    /// To the task that keeps the copies in step.
    changes: mpsc::UnboundedSender<(String, Option<DeliveryRecord>)>,
}

impl Leases {
    /// Keeps the copies in step with every change the store makes, from
    /// now on.
    pub fn start(jetstream: jetstream::Context, parked: stream::Stream, store: Store, lease: Duration) -> Arc<Leases> {
        let (changes, mut changed) = mpsc::unbounded_channel::<(String, Option<DeliveryRecord>)>();
        let leases = Arc::new(Leases {
            jetstream,
            parked,
            store: store.clone(),
            lease,
            copies: Mutex::default(),
            changes: changes.clone(),
        });
        store.on_delivery_change(move |id, after| {
            let _ = changes.send((id.to_owned(), after.cloned()));
        });
        let keeper = leases.clone();
        tokio::spawn(async move {
            // What has come meanwhile, each delivery's last change only,
            // all at once.
            while let Some(first) = changed.recv().await {
                let mut latest: HashMap<String, Option<DeliveryRecord>> = HashMap::from([first]);
                while latest.len() < FOLLOW_BATCH
                    && let Ok((id, after)) = changed.try_recv()
                {
                    latest.insert(id, after);
                }
                let follows = latest.into_iter().map(|(id, after)| {
                    let keeper = keeper.clone();
                    async move { keeper.follow(&id, after).await }
                });
                futures_util::stream::iter(follows)
                    .buffer_unordered(FOLLOW_CONCURRENCY)
                    .for_each(|()| async {})
                    .await;
            }
        });
        leases
    }

    /// Publishes the copies of `ids`' pending deliveries and waits for
    /// JetStream to confirm them all.
    pub async fn cover(&self, event_ids: Vec<String>) -> Result<(), LeaseError> {
        let store = self.store.clone();
        let parcels = tokio::task::spawn_blocking(move || -> Result<Vec<Parcel>, crate::store::Error> {
            let mut parcels = Vec::new();
            for event_id in event_ids {
                let Some(event) = store.event(&event_id)? else { continue };
                for (id, record) in store.deliveries_of_event(&event_id)? {
                    if record.status == DeliveryStatus::Pending {
                        parcels.push(Parcel::assemble(&store, id, record, event.clone())?);
                    }
                }
            }
            Ok(parcels)
        })
        .await
        .expect("the read does not panic")
        .map_err(|error| LeaseError(error.to_string()))?;
        let mut acks = Vec::with_capacity(parcels.len());
        for parcel in parcels {
            acks.push((parcel.id.clone(), self.publish(parcel).await?));
        }
        let mut copied = Vec::with_capacity(acks.len());
        for (id, ack) in acks {
            let ack = tokio::time::timeout(CONFIRM_PATIENCE, ack.into_future())
                .await
                .map_err(|_| LeaseError("no confirmation in time".to_owned()))?
                .map_err(|error| LeaseError(error.to_string()))?;
            self.replace(&id, ack.sequence).await;
            copied.push(id);
        }
        // A first attempt may have finished the delivery while its copy
        // was on its way, its change followed before the copy was known:
        // known now, the copy of one no longer pending goes (by the task
        // that keeps them in step: the 202 does not wait for it).
        let store = self.store.clone();
        let finished = tokio::task::spawn_blocking(move || {
            copied
                .into_iter()
                .filter(|id| {
                    !store
                        .delivery(id)
                        .is_ok_and(|record| record.is_some_and(|record| record.status == DeliveryStatus::Pending))
                })
                .collect::<Vec<_>>()
        })
        .await
        .expect("the read does not panic");
        for id in finished {
            let _ = self.changes.send((id, None));
        }
        Ok(())
    }

    /// Publishes `parcel`'s copy, due `lease` after its next attempt.
    async fn publish(&self, mut parcel: Parcel) -> Result<PublishAckFuture, LeaseError> {
        let due = parcel.delivery.next_attempt_at.max(clock::now_ms());
        parcel.delivery.next_attempt_at = clock::after(due, self.lease);
        let payload = parcel.encode().map_err(|error| LeaseError(error.to_string()))?;
        let message = PublishMessage::build()
            .payload(Bytes::from(payload))
            .message_id(format!("{}:lease:{}", parcel.id, parcel.delivery.attempt_count));
        self.jetstream
            .send_publish(parked_subject(&parcel.delivery.endpoint), message)
            .await
            .map_err(|error| LeaseError(error.to_string()))
    }

    /// Remembers `sequence` as `id`'s copy; deletes the one before.
    async fn replace(&self, id: &str, sequence: u64) {
        let before = self.copies.lock().expect("copies lock").insert(id.to_owned(), sequence);
        if let Some(before) = before.filter(|before| *before != sequence) {
            self.delete(before).await;
        }
    }

    async fn delete(&self, sequence: u64) {
        if let Err(error) = self.parked.delete_message(sequence).await {
            tracing::debug!(sequence, %error, "an old copy of a delivery was not deleted; it is adopted when due, at worst sent twice");
        }
    }

    /// Brings `id`'s copy in line with its record after a change: a new
    /// copy while it is pending here, none once it finished or left.
    async fn follow(&self, id: &str, after: Option<DeliveryRecord>) {
        match after {
            Some(record) if record.status == DeliveryStatus::Pending => {
                // The change is written; the parcel is read as it stands.
                let store = self.store.clone();
                let owned = id.to_owned();
                let parcel = tokio::task::spawn_blocking(move || Parcel::read(&store, &owned))
                    .await
                    .expect("the read does not panic");
                let Ok(Some(parcel)) = parcel else { return };
                match self.publish(parcel).await {
                    Ok(ack) => match ack.await {
                        Ok(ack) => self.replace(id, ack.sequence).await,
                        Err(error) => tracing::debug!(delivery = id, %error, "a delivery's copy was not renewed"),
                    },
                    Err(error) => tracing::debug!(delivery = id, %error, "a delivery's copy was not renewed"),
                }
            }
            _ => self.forget(id).await,
        }
    }

    /// Deletes `id`'s copy, if it has one.
    async fn forget(&self, id: &str) {
        let before = self.copies.lock().expect("copies lock").remove(id);
        if let Some(before) = before {
            self.delete(before).await;
        }
    }
}
