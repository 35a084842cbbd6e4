//! Value encodings for the store's records.
//!
//! Every value starts with a format version byte, so a later hookd can read
//! what an earlier one wrote. Metadata is JSON (self-describing, so fields
//! can be added with defaults); an event's wire body follows its metadata
//! raw, because it is the bulk of the record and is sent as it is.

use serde::{Deserialize, Serialize};

use super::Error;

const FORMAT_V1: u8 = 1;

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
}

impl DeliveryRecord {
    pub fn encode(&self) -> Vec<u8> {
        let mut value = vec![FORMAT_V1];
        serde_json::to_writer(&mut value, self).expect("delivery records always serialize");
        value
    }

    pub fn decode(value: &[u8]) -> Result<DeliveryRecord, Error> {
        let rest = check_version(value).map_err(|reason| Error::Corrupt(format!("delivery record: {reason}")))?;
        serde_json::from_slice(rest).map_err(|error| Error::Corrupt(format!("delivery record: {error}")))
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
            },
            body,
        };
        let decoded = EventRecord::decode(&record.encode()).unwrap();
        assert_eq!(decoded, record);
        assert_eq!(decoded.data(), br#"{"a": 1.0}"#);
    }

    #[test]
    fn damaged_values_are_errors_not_panics() {
        for value in [
            &b""[..],
            b"\x02{}",
            b"\x01\x00\x00\x00\xff{}",
            b"\x01\x00\x00\x00\x02{}",
        ] {
            assert!(EventRecord::decode(value).is_err());
            assert!(DeliveryRecord::decode(value).is_err());
        }
    }
}
