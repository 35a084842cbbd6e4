//! Adoption: taking a parked delivery from JetStream into this replica's
//! store once it is due, then going on with it as if it had always been
//! here (same attempt count, same place in the retry schedule).
//!
//! Every replica pulls from the one shared consumer, so normally one takes
//! each delivery. A message not due yet is handed back with a delay of
//! exactly what is left; one for an endpoint this replica does not work
//! (not in its config, disabled, paused here) is handed back for another
//! replica. A due one is written to the store, synced, by a
//! [`Change::Adopted`] transition (those that arrived together in one
//! write), and only then acknowledged: a crash in
//! between makes JetStream hand it out again, which at worst sends it
//! twice, never loses it. One already here (such a redelivery) is just
//! acknowledged. One for an endpoint not in this replica's config that
//! waited past the retention is adopted all the same, and the sweeper
//! fails it as `expired`.

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
use crate::store::{Applied, Change, DeliveryStatus, Expect, Store, Transition};

/// How long a message this replica cannot read waits before it is offered
/// again (to a newer hookd, perhaps).
const LEAVE_ALONE: Duration = Duration::from_secs(3600);
/// How long a message for an endpoint this replica does not work waits
/// before it is offered again, to any replica.
const NOT_HERE: Duration = Duration::from_secs(5);
/// After a failed write or a lost link: the pause before trying again.
const BACK_OFF: Duration = Duration::from_secs(1);
/// Messages adopted together, in one synced write.
const CHUNK: usize = 256;

pub struct Adopter {
    pub store: Store,
    pub consumer: PullConsumer,
    pub settings: watch::Receiver<Arc<Settings>>,
    pub pauses: Arc<Pauses>,
    pub inboxes: Arc<Inboxes>,
    pub metrics: ClusterMetrics,
    /// `ack = "cluster"`: the lease, how long this replica's own copy of a
    /// delivery it holds is handed back for.
    pub lease: Option<Duration>,
}

impl Adopter {
    /// Adopts what comes due until `stopped`, in chunks of what has
    /// arrived: one synced write and concurrent acknowledgements a chunk.
    pub async fn run(self, mut stopped: watch::Receiver<bool>) {
        loop {
            let messages = match self.consumer.messages().await {
                Ok(messages) => messages,
                Err(error) => {
                    tracing::debug!(%error, "cannot pull parked deliveries yet");
                    tokio::select! {
                        _ = stopped.wait_for(|stop| *stop) => return,
                        () = tokio::time::sleep(BACK_OFF) => continue,
                    }
                }
            };
            let mut chunks = messages.ready_chunks(CHUNK);
            loop {
                let chunk = tokio::select! {
                    _ = stopped.wait_for(|stop| *stop) => return,
                    chunk = chunks.next() => chunk,
                };
                let Some(chunk) = chunk else { break };
                let (messages, failed): (Vec<_>, Vec<_>) = chunk.into_iter().partition(Result::is_ok);
                self.take(messages.into_iter().filter_map(Result::ok).collect()).await;
                if let Some(Err(error)) = failed.into_iter().next() {
                    tracing::debug!(%error, "pulling parked deliveries failed; pulling again");
                    tokio::time::sleep(BACK_OFF).await;
                    break;
                }
            }
        }
    }

    /// Adopts what of `messages` is due and worked here, or hands each
    /// back for later or for another replica.
    async fn take(&self, messages: Vec<jetstream::Message>) {
        let now = clock::now_ms();
        let mut handed_back = Vec::new();
        let mut adopting = Vec::new();
        for message in messages {
            match self.verdict(&message, now) {
                Verdict::HandBack(delay) => handed_back.push((message, delay)),
                Verdict::Adopt(parcel) => adopting.push((message, parcel)),
            }
        }
        let transitions: Vec<Transition> = adopting
            .iter()
            .map(|(_, parcel)| Transition {
                id: parcel.id.clone(),
                expect: Expect::Absent,
                change: Change::Adopted {
                    record: Box::new(parcel.delivery.clone()),
                    event: Box::new(parcel.event.clone()),
                },
                now_ms: now,
            })
            .collect();
        let store = self.store.clone();
        let applied = tokio::task::spawn_blocking(move || store.transition_all(transitions))
            .await
            .expect("the write does not panic");
        let mut acknowledged = Vec::new();
        for ((message, parcel), applied) in adopting.into_iter().zip(applied) {
            match applied {
                Ok(Applied::Done { .. }) => {
                    self.metrics.adopted();
                    self.inboxes
                        .wake(&parcel.delivery.endpoint, parcel.delivery.next_attempt_at);
                    acknowledged.push((message, parcel.id));
                }
                // Already here: a redelivery after a crash between the
                // two, or (`ack = "cluster"`) this replica's own copy of a
                // delivery it holds, which stays while it is pending.
                Ok(Applied::Stale) => match self.lease {
                    Some(lease) if self.pending_here(&parcel.id).await => handed_back.push((message, lease)),
                    _ => acknowledged.push((message, parcel.id)),
                },
                Ok(Applied::Missing) => handed_back.push((message, BACK_OFF)),
                Err(error) => {
                    tracing::warn!(delivery = %parcel.id, %error, "adopting a parked delivery failed; it stays parked");
                    handed_back.push((message, BACK_OFF));
                }
            }
        }
        let acks = acknowledged.iter().map(|(message, id)| acknowledge(message, id));
        let naks = handed_back.iter().map(|(message, delay)| hand_back(message, *delay));
        futures_util::future::join(
            futures_util::future::join_all(acks),
            futures_util::future::join_all(naks),
        )
        .await;
    }

    /// Whether delivery `id` is pending in this replica's store.
    async fn pending_here(&self, id: &str) -> bool {
        let store = self.store.clone();
        let id = id.to_owned();
        tokio::task::spawn_blocking(move || store.delivery(&id))
            .await
            .expect("the read does not panic")
            .is_ok_and(|record| record.is_some_and(|record| record.status == DeliveryStatus::Pending))
    }

    /// What to do with `message` at `now`.
    fn verdict(&self, message: &jetstream::Message, now: u64) -> Verdict {
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
                return Verdict::HandBack(LEAVE_ALONE);
            }
        };
        let due = parcel.delivery.next_attempt_at;
        if due > now {
            return Verdict::HandBack(Duration::from_millis(due - now));
        }
        let endpoint = &parcel.delivery.endpoint;
        let settings = self.settings.borrow().clone();
        let worked_here = settings
            .endpoints
            .get(endpoint)
            .is_some_and(|configured| configured.enabled)
            && !self.pauses.is_paused(endpoint);
        // One that no replica took within the retention, for an endpoint
        // this replica does not have, is taken to be failed as `expired`
        // by the sweeper, as a standalone hookd would.
        let retention = settings.storage.retention.as_millis() as u64;
        let orphaned = settings.endpoints.get(endpoint).is_none() && due < now.saturating_sub(retention);
        match worked_here || orphaned {
            true => Verdict::Adopt(Box::new(parcel)),
            false => Verdict::HandBack(NOT_HERE),
        }
    }
}

enum Verdict {
    HandBack(Duration),
    Adopt(Box<Parcel>),
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
