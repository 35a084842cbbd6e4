//! Value encodings for the store's records.
//!
//! Every value starts with a format version byte, so a later hookd can read
//! what an earlier one wrote. Metadata is JSON (self-describing, so fields
//! can be added with defaults); an event's wire body follows its metadata
//! raw, because it is the bulk of the record and is sent as it is.
//!
//! Delivery records come in two formats. Format 2 (schema 2) holds the
//! delivery's attempts, so recording an attempt rewrites one record instead
//! of adding a second entry. Format 1 (schema 1) kept each attempt apart,
//! in the `attempts` column family, and had a `recent` entry per delivery:
//! such a record reads as [`DeliveryRecord::attempts_apart`] and
//! [`DeliveryRecord::recent_per_delivery`], and its next change moves its
//! attempts in (see [`super::lifecycle`]).

use serde::{Deserialize, Serialize};

use super::Error;
use super::attempts::AttemptRecord;
use super::ordering::OrderPlace;

const FORMAT_V1: u8 = 1;
/// Delivery records with their attempts inside.
const FORMAT_V2: u8 = 2;

/// A stored event: its metadata and the exact body subscribers receive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    pub meta: EventMeta,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMeta {
    /// The event type, like `enrollment.created`.
    pub event: String,
    /// As sent: UTC with a `Z`.
    pub created_at: String,
    /// When hookd acknowledged it, in milliseconds since the epoch.
    pub received_at: u64,
    /// How many deliveries ingest created.
    pub deliveries: u32,
    /// Where `data` sits in the body.
    pub data_start: usize,
    pub data_end: usize,
    /// The W3C trace context the app sent, so every attempt joins its trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// The platform customer it belongs to (absent in stores written
    /// before tenants: those events have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The app's `ordering_key`, if it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordering_key: Option<String>,
}

impl EventRecord {
    /// The `data` bytes exactly as the app sent them.
    pub fn data(&self) -> &[u8] {
        self.body
            .get(self.meta.data_start..self.meta.data_end)
            .unwrap_or_default()
    }

    pub fn encode(&self) -> Vec<u8> {
        Self::encode_parts(&self.meta, &self.body)
    }

    /// Encodes a record from borrowed parts, sparing a copy of the body.
    pub fn encode_parts(meta: &EventMeta, body: &[u8]) -> Vec<u8> {
        let meta = serde_json::to_vec(meta).expect("event metadata always serializes");
        let meta_len = u32::try_from(meta.len()).expect("event metadata is small");
        let mut value = Vec::with_capacity(5 + meta.len() + body.len());
        value.push(FORMAT_V1);
        value.extend_from_slice(&meta_len.to_be_bytes());
        value.extend_from_slice(&meta);
        value.extend_from_slice(body);
        value
    }

    pub fn decode(value: &[u8]) -> Result<EventRecord, Error> {
        let corrupt = |reason: &str| Error::Corrupt(format!("event record: {reason}"));
        let rest = check_version(value).map_err(|reason| corrupt(&reason))?;
        let (len, rest) = rest.split_first_chunk::<4>().ok_or_else(|| corrupt("truncated"))?;
        let len = u32::from_be_bytes(*len) as usize;
        if rest.len() < len {
            return Err(corrupt("truncated metadata"));
        }
        let (meta, body) = rest.split_at(len);
        let meta: EventMeta = serde_json::from_slice(meta).map_err(|error| corrupt(&error.to_string()))?;
        if meta.data_start > meta.data_end || meta.data_end > body.len() {
            return Err(corrupt("data range outside the body"));
        }
        Ok(EventRecord {
            meta,
            body: body.to_vec(),
        })
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its next attempt, or in flight.
    Pending,
    Succeeded,
    Failed,
}

impl DeliveryStatus {
    pub fn is_finished(self) -> bool {
        matches!(self, DeliveryStatus::Succeeded | DeliveryStatus::Failed)
    }
}

/// One event's delivery to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    pub event_id: String,
    pub endpoint: String,
    /// The event type, kept here so listings need not read the event.
    pub event: String,
    /// The event's tenant, kept here for listings and for the check
    /// before each attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    pub status: DeliveryStatus,
    /// Attempts made so far (recorded outcomes).
    pub attempt_count: u32,
    /// When the next attempt is due (ms); its key in the `due` index.
    pub next_attempt_at: u64,
    /// When ingest created it (ms); its key in the `recent` index.
    pub created_at: u64,
    pub updated_at: u64,
    /// When it succeeded or failed (ms); its key in the `finished` index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<u64>,
    /// The next attempt is an operator's manual retry: if it fails, the
    /// delivery is failed again, whatever the schedule.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub manual_retry: bool,
    /// Every recorded attempt, in order (but see `attempts_apart`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<AttemptRecord>,
    /// Written in format 1 with attempts, which are then in the `attempts`
    /// column family, not in `attempts`; never stored.
    #[serde(skip)]
    pub attempts_apart: bool,
    /// Created by a hookd of schema 1: its `recent` entry is its own (keyed
    /// by delivery id), not its event's. Kept when the record is rewritten.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub recent_per_delivery: bool,
    /// Its place in its key's order, when its endpoint had `ordering =
    /// "key"` as ingest stored it and its event an `ordering_key`
    /// ([`super::ordering`]); none once an operator retries it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<OrderPlace>,
}

impl DeliveryRecord {
    /// A new delivery of event `event_id` to `endpoint`, due at once.
    pub fn new(event_id: &str, endpoint: &str, event: &str, tenant: Option<&str>, created_at: u64) -> DeliveryRecord {
        DeliveryRecord {
            event_id: event_id.to_owned(),
            endpoint: endpoint.to_owned(),
            event: event.to_owned(),
            tenant: tenant.map(str::to_owned),
            status: DeliveryStatus::Pending,
            attempt_count: 0,
            next_attempt_at: created_at,
            created_at,
            updated_at: created_at,
            finished_at: None,
            manual_retry: false,
            attempts: Vec::new(),
            attempts_apart: false,
            recent_per_delivery: false,
            order: None,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        debug_assert!(!self.attempts_apart, "a record is written with its attempts inside");
        let mut value = vec![FORMAT_V2];
        serde_json::to_writer(&mut value, self).expect("delivery records always serialize");
        value
    }

    pub fn decode(value: &[u8]) -> Result<DeliveryRecord, Error> {
        let corrupt = |reason: String| Error::Corrupt(format!("delivery record: {reason}"));
        let (version, json) = value.split_first().ok_or_else(|| corrupt("empty value".to_owned()))?;
        let mut record: DeliveryRecord = match *version {
            FORMAT_V1 | FORMAT_V2 => serde_json::from_slice(json).map_err(|error| corrupt(error.to_string()))?,
            version => return Err(corrupt(format!("unknown format version {version}"))),
        };
        if *version == FORMAT_V1 {
            record.attempts_apart = record.attempt_count > 0;
            record.recent_per_delivery = true;
        }
        Ok(record)
    }
}

fn check_version(value: &[u8]) -> Result<&[u8], String> {
    match value.split_first() {
        Some((&FORMAT_V1, rest)) => Ok(rest),
        Some((version, _)) => Err(format!("unknown format version {version}")),
        None => Err("empty value".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_records_round_trip_with_the_body_untouched() {
        let (body, range) =
            crate::event::wire_body("evt_1", "payment.completed", "2025-03-20T10:30:00Z", r#"{"a": 1.0}"#);
        let record = EventRecord {
            meta: EventMeta {
                event: "payment.completed".into(),
                created_at: "2025-03-20T10:30:00Z".into(),
                received_at: 1_742_466_600_000,
                deliveries: 2,
                data_start: range.start,
                data_end: range.end,
                traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
                tenant: Some("acme".into()),
                ordering_key: Some("student_xyz789".into()),
            },
            body,
        };
        let decoded = EventRecord::decode(&record.encode()).unwrap();
        assert_eq!(decoded, record);
        assert_eq!(decoded.data(), br#"{"a": 1.0}"#);
    }

    #[test]
    fn delivery_records_keep_their_attempts_inside() {
        let mut record = DeliveryRecord::new("evt_1", "crm", "payment.completed", Some("acme"), 1_000);
        record.attempt_count = 1;
        record.attempts.push(AttemptRecord {
            n: 1,
            at: 1_001,
            status_code: Some(500),
            error_kind: Some("http_5xx".into()),
            latency_ms: 3,
            response_snippet: "busy".into(),
        });
        let value = record.encode();
        assert_eq!(value[0], FORMAT_V2);
        assert_eq!(DeliveryRecord::decode(&value).unwrap(), record);
    }

    #[test]
    fn format_1_delivery_records_say_where_their_attempts_and_recent_entry_are() {
        let written_by_schema_1 = r#"{"event_id":"evt_1","endpoint":"crm","event":"payment.completed","status":"pending","attempt_count":2,"next_attempt_at":5,"created_at":1,"updated_at":4}"#;
        let mut value = vec![FORMAT_V1];
        value.extend_from_slice(written_by_schema_1.as_bytes());
        let record = DeliveryRecord::decode(&value).unwrap();
        assert!(record.attempts_apart && record.recent_per_delivery);
        assert_eq!((record.attempt_count, record.attempts.len()), (2, 0));

        let fresh = written_by_schema_1.replace(r#""attempt_count":2"#, r#""attempt_count":0"#);
        value.truncate(1);
        value.extend_from_slice(fresh.as_bytes());
        let record = DeliveryRecord::decode(&value).unwrap();
        assert!(!record.attempts_apart, "no attempts to look for");
        assert!(record.recent_per_delivery);
        let rewritten = DeliveryRecord::decode(&record.encode()).unwrap();
        assert!(
            rewritten.recent_per_delivery,
            "a rewrite keeps where its recent entry is"
        );
    }

    #[test]
    fn damaged_values_are_errors_not_panics() {
        for value in [
            &b""[..],
            b"\x02{}",
            b"\x03{}",
            b"\x01\x00\x00\x00\xff{}",
            b"\x01\x00\x00\x00\x02{}",
        ] {
            assert!(EventRecord::decode(value).is_err());
            assert!(DeliveryRecord::decode(value).is_err());
        }
    }
}
