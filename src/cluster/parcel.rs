//! A parked delivery as JetStream holds it: everything a replica needs to
//! go on with it (the event's wire body and metadata, trace context and
//! tenant included, the delivery's attempts and due time) and nothing
//! secret: an endpoint's secret stays in each replica's config.
//!
//! One JSON document; `v` is the format version, and a hookd leaves alone
//! a parcel of a version newer than it knows ([`Parcel::decode`] says so).

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::store::{DeliveryRecord, EventMeta, EventRecord, Store};

/// The format this hookd writes and reads.
pub const VERSION: u32 = 1;

/// A delivery on its way between replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parcel {
    pub id: String,
    pub delivery: DeliveryRecord,
    pub event: EventRecord,
}

#[derive(Serialize)]
struct Written<'a> {
    v: u32,
    id: &'a str,
    delivery: &'a DeliveryRecord,
    event: &'a EventMeta,
    /// The wire body: JSON, embedded as it is.
    body: &'a RawValue,
}

#[derive(Deserialize)]
struct Read {
    v: u32,
    id: String,
    delivery: DeliveryRecord,
    event: EventMeta,
    body: Box<RawValue>,
}

/// Why a message is not a parcel this hookd can take.
#[derive(Debug, thiserror::Error)]
pub enum ParcelError {
    #[error("parcel format {0} is newer than this hookd's ({VERSION})")]
    Newer(u32),
    #[error("not a parcel: {0}")]
    Malformed(String),
}

impl Parcel {
    pub fn encode(&self) -> Result<Vec<u8>, ParcelError> {
        let body = std::str::from_utf8(&self.event.body)
            .ok()
            .and_then(|text| serde_json::from_str::<&RawValue>(text).ok())
            .ok_or_else(|| ParcelError::Malformed(format!("the body of {} is not JSON", self.id)))?;
        let written = Written {
            v: VERSION,
            id: &self.id,
            delivery: &self.delivery,
            event: &self.event.meta,
            body,
        };
        Ok(serde_json::to_vec(&written).expect("parcels always serialize"))
    }

    /// Delivery `id` as `store` holds it, with its event and attempts;
    /// `None` when it is gone.
    pub fn read(store: &Store, id: &str) -> Result<Option<Parcel>, crate::store::Error> {
        let Some(delivery) = store.delivery(id)? else {
            return Ok(None);
        };
        let Some(event) = store.event(&delivery.event_id)? else {
            return Ok(None);
        };
        Parcel::assemble(store, id.to_owned(), delivery, event).map(Some)
    }

    /// Delivery `id` of `event` as read: a record of schema 1 takes in the
    /// attempts it kept apart.
    pub fn assemble(
        store: &Store,
        id: String,
        mut delivery: DeliveryRecord,
        event: EventRecord,
    ) -> Result<Parcel, crate::store::Error> {
        if delivery.attempts_apart {
            delivery.attempts = store.attempts(&id)?;
            delivery.attempts_apart = false;
        }
        Ok(Parcel { id, delivery, event })
    }

    pub fn decode(bytes: &[u8]) -> Result<Parcel, ParcelError> {
        #[derive(Deserialize)]
        struct Version {
            v: u32,
        }
        let version: Version =
            serde_json::from_slice(bytes).map_err(|error| ParcelError::Malformed(error.to_string()))?;
        if version.v > VERSION {
            return Err(ParcelError::Newer(version.v));
        }
        let read: Read = serde_json::from_slice(bytes).map_err(|error| ParcelError::Malformed(error.to_string()))?;
        debug_assert_eq!(read.v, version.v);
        let mut delivery = read.delivery;
        // Adopted, its `recent` entry is its event's (schema 2).
        delivery.recent_per_delivery = false;
        Ok(Parcel {
            id: read.id,
            delivery,
            event: EventRecord {
                meta: read.event,
                body: read.body.get().as_bytes().to_vec(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::AttemptRecord;

    fn parcel() -> Parcel {
        let body =
            br#"{"id":"evt_1","type":"payment.completed","created_at":"2026-12-03T10:00:00Z","data":{"amount": 1}}"#;
        let mut delivery = DeliveryRecord::new("evt_1", "crm", "payment.completed", Some("acme"), 1_000);
        delivery.attempt_count = 1;
        delivery.next_attempt_at = 61_000;
        delivery.attempts.push(AttemptRecord {
            n: 1,
            at: 1_000,
            status_code: Some(503),
            error_kind: Some("http_5xx".into()),
            latency_ms: 4,
            response_snippet: "down".into(),
        });
        Parcel {
            id: "evt_1.crm".into(),
            delivery,
            event: EventRecord {
                meta: EventMeta {
                    event: "payment.completed".into(),
                    created_at: "2026-12-03T10:00:00Z".into(),
                    received_at: 1_000,
                    deliveries: 1,
                    data_start: 85,
                    data_end: 98,
                    traceparent: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into()),
                    tenant: Some("acme".into()),
                    ordering_key: None,
                },
                body: body.to_vec(),
            },
        }
    }

    #[test]
    fn a_parcel_reads_back_as_it_was_written_body_byte_for_byte() {
        let parcel = parcel();
        assert_eq!(Parcel::decode(&parcel.encode().unwrap()).unwrap(), parcel);
    }

    #[test]
    fn a_newer_format_is_left_alone_with_its_version() {
        let mut value: serde_json::Value = serde_json::from_slice(&parcel().encode().unwrap()).unwrap();
        value["v"] = 2.into();
        let error = Parcel::decode(&serde_json::to_vec(&value).unwrap()).unwrap_err();
        assert!(matches!(error, ParcelError::Newer(2)), "{error}");
    }

    #[test]
    fn anything_else_is_malformed() {
        assert!(matches!(Parcel::decode(b"{}"), Err(ParcelError::Malformed(_))));
        assert!(matches!(Parcel::decode(b"\xff"), Err(ParcelError::Malformed(_))));
    }
}
