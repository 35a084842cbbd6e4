//! Ingest's side of handing fresh deliveries to their workers
//! ([`super::inbox`]): claim each new delivery before the write that stores
//! it, then, once the write is durable, hand it over with its body, so its
//! first attempt reads nothing from the store.
//!
//! A delivery whose endpoint has no worker taking from its inbox, or that
//! is claimed already (a resubmission of an event being sent), is not
//! claimed: the store has it, and a wake tells the worker where. Nor is a
//! keyed delivery of an endpoint with `ordering = "key"`: it may have to
//! wait for an earlier one of its key, which only the store knows, so its
//! worker reads it from there.

use std::sync::Arc;

use super::inbox::{Claim, Inbox, Inboxes, SendableEvent};
use crate::store::{IngestOutcome, NewEvent, delivery_id};

/// The claims of one ingest request, made before its write.
pub struct Handoff {
    events: Vec<ClaimedEvent>,
}

struct ClaimedEvent {
    event: Arc<SendableEvent>,
    deliveries: Vec<(Arc<Inbox>, Option<Claim>)>,
}

impl Handoff {
    /// Claims the deliveries `events` will create, before they are stored.
    pub fn claim(inboxes: &Inboxes, events: &[NewEvent]) -> Handoff {
        let events = events
            .iter()
            .map(|event| {
                let deliveries = event
                    .endpoints
                    .iter()
                    .map(|endpoint| {
                        let inbox = inboxes.get(endpoint);
                        let keyed = event.ordering_key.is_some() && event.keyed_endpoints.contains(endpoint);
                        let claim = if inbox.is_open() && !keyed {
                            inbox.claim(&delivery_id(&event.id, endpoint))
                        } else {
                            None
                        };
                        (inbox, claim)
                    })
                    .collect();
                ClaimedEvent {
                    event: Arc::new(SendableEvent {
                        event_id: event.id.clone(),
                        event: event.event.clone(),
                        body: event.body.clone(),
                        traceparent: event.traceparent.clone(),
                        tenant: event.tenant.clone(),
                        received_at: event.received_at,
                    }),
                    deliveries,
                }
            })
            .collect();
        Handoff { events }
    }

    /// The write is durable and answered `outcomes` (one per event, in
    /// order): hands over each new delivery, or wakes its worker for it.
    /// A resubmission's claims are given back; so are all of them when the
    /// write failed and this is dropped instead.
    pub fn hand_over(self, outcomes: &[IngestOutcome]) {
        for (claimed, outcome) in self.events.into_iter().zip(outcomes) {
            for (inbox, claim) in claimed.deliveries {
                match claim {
                    Some(claim) if !outcome.duplicate => inbox.hand_over(claim, claimed.event.clone()),
                    None if !outcome.duplicate => inbox.wake(claimed.event.received_at),
                    // The stored delivery was claimed meanwhile: a read of
                    // the queue may have passed it over. It is read again.
                    Some(claim) => {
                        drop(claim);
                        inbox.wake(0);
                    }
                    None => {}
                }
            }
        }
    }
}
