//! Adoption: taking a parked delivery from JetStream into this replica's
//! store once it is due, then going on with it as if it had always been
//! here (same attempt count, same place in the retry schedule).
//!
//! Every replica pulls from the one shared consumer, so normally one takes
//! each delivery. A message not due yet is handed back with a delay of
//! exactly what is left; one for an endpoint this replica does not work
//! (not in its config, disabled, paused here) is handed back for another
//! replica. A due one is written to the store, synced, by a
//! [`Change::Adopted`] transition, and only then acknowledged: a crash in
//! between makes JetStream hand it out again, which at worst sends it
//! twice, never loses it. One already here (such a redelivery) is just
//! acknowledged.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer::PullConsumer};
use futures_util::StreamExt;
use tokio::sync::watch;

use super::metrics::ClusterMetrics;
use super::parcel::{Parcel, ParcelError};
use crate::clock;
use crate::config::Settings;
use crate::dispatch::inbox::Inboxes;
use crate::dispatch::pauses::Pauses;
use crate::store::{Applied, Change, Expect, Store, Transition};

/// How long a message this replica cannot read waits before it is offered
/// again (to a newer hookd, perhaps).
const LEAVE_ALONE: Duration = Duration::from_secs(3600);
/// How long a message for an endpoint this replica does not work waits
/// before it is offered again, to any replica.
const NOT_HERE: Duration = Duration::from_secs(5);
/// After a failed write or a lost link: the pause before trying again.
const BACK_OFF: Duration = Duration::from_secs(1);

pub struct Adopter {
    pub store: Store,
    pub consumer: PullConsumer,
    pub settings: watch::Receiver<Arc<Settings>>,
    pub pauses: Arc<Pauses>,
    pub inboxes: Arc<Inboxes>,
    pub metrics: ClusterMetrics,
}

impl Adopter {
    /// Adopts what comes due until `stopped`.
    pub async fn run(self, mut stopped: watch::Receiver<bool>) {
        loop {
            let mut messages = match self.consumer.messages().await {
                Ok(messages) => messages,
                Err(error) => {
                    tracing::debug!(%error, "cannot pull parked deliveries yet");
                    tokio::select! {
                        _ = stopped.wait_for(|stop| *stop) => return,
                        () = tokio::time::sleep(BACK_OFF) => continue,
                    }
                }
            };
            loop {
                let next = tokio::select! {
                    _ = stopped.wait_for(|stop| *stop) => return,
                    next = messages.next() => next,
                };
                match next {
                    Some(Ok(message)) => self.take(message).await,
                    Some(Err(error)) => {
                        tracing::debug!(%error, "pulling parked deliveries failed; pulling again");
                        tokio::time::sleep(BACK_OFF).await;
                        break;
                    }
                    None => break,
                }
            }
        }
    }

    /// Adopts `message`, or hands it back for later or for another replica.
    async fn take(&self, message: jetstream::Message) {
        let parcel = match Parcel::decode(&message.payload) {
            Ok(parcel) => parcel,
            Err(error) => {
                let sequence = message.info().map(|info| info.stream_sequence).unwrap_or_default();
                match error {
                    ParcelError::Newer(_) => {
                        tracing::info!(sequence, %error, "a parked delivery left for a newer hookd")
                    }
                    ParcelError::Malformed(_) => {
                        tracing::warn!(sequence, %error, "a parked message this hookd cannot read; left alone")
                    }
                }
                hand_back(&message, LEAVE_ALONE).await;
                return;
            }
        };
        let now = clock::now_ms();
        let due = parcel.delivery.next_attempt_at;
        if due > now {
            hand_back(&message, Duration::from_millis(due - now)).await;
            return;
        }
        let endpoint = parcel.delivery.endpoint.clone();
        let worked_here = self
            .settings
            .borrow()
            .endpoints
            .get(&endpoint)
            .is_some_and(|configured| configured.enabled)
            && !self.pauses.is_paused(&endpoint);
        if !worked_here {
            hand_back(&message, NOT_HERE).await;
            return;
        }
        let transition = Transition {
            id: parcel.id.clone(),
            expect: Expect::Absent,
            change: Change::Adopted {
                record: Box::new(parcel.delivery),
                event: Box::new(parcel.event),
            },
            now_ms: now,
        };
        match self.store.apply(transition).await {
            Ok(Applied::Done { .. }) => {
                acknowledge(&message, &parcel.id).await;
                self.metrics.adopted();
                self.inboxes.wake(&endpoint, due);
            }
            Ok(Applied::Stale) => acknowledge(&message, &parcel.id).await,
            Ok(Applied::Missing) => hand_back(&message, BACK_OFF).await,
            Err(error) => {
                tracing::warn!(delivery = %parcel.id, %error, "adopting a parked delivery failed; it stays parked");
                hand_back(&message, BACK_OFF).await;
            }
        }
    }
}

/// Acknowledges an adopted delivery and waits for JetStream to confirm,
/// so it is not handed out again.
async fn acknowledge(message: &jetstream::Message, id: &str) {
    if let Err(error) = message.double_ack().await {
        tracing::warn!(delivery = %id, %error, "JetStream did not confirm an adoption; another replica may send it again");
    }
}

async fn hand_back(message: &jetstream::Message, delay: Duration) {
    if let Err(error) = message.ack_with(AckKind::Nak(Some(delay))).await {
        tracing::debug!(%error, "handing a parked delivery back failed; JetStream offers it again after its ack wait");
    }
}
