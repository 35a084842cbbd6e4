//! The order of keyed deliveries (SPEC 4, "Ordering"): for an endpoint
//! with `ordering = "key"`, every pending delivery of an event with an
//! `ordering_key` has an entry in the default column family,
//! `order/{endpoint}\0{key length}{key}{sequence}{delivery id}`, so the
//! first entry of an endpoint and key is the delivery of that key the
//! endpoint may get now. Ingest gives each such delivery the next number
//! of one sequence for the whole store (so stored order is key order),
//! keeps the sequence's next number in the same write, and stores it
//! *waiting*: with no `due` entry, so no worker reads it.
//!
//! Only the change writer ([`super::lifecycle`]) lets one go, so a
//! delivery's end and a new delivery of its key never race:
//!
//! - ingest's [`super::Change::TakeTurn`], right after its write, makes a
//!   new delivery due if no earlier delivery of its key is pending;
//! - the write that finishes a delivery (succeeded, failed for good,
//!   parked) removes its entry and makes the next one of its key due;
//! - at open, the first of each key that still waits (a crash came between
//!   ingest's write and its turn) is made due ([`release_stranded`]);
//! - a worker of an endpoint without `ordering = "key"` lets every waiting
//!   delivery of its endpoint go (ordering was turned off).

use rocksdb::DB;
use serde::{Deserialize, Serialize};

use super::keys;
use super::records::{DeliveryRecord, DeliveryStatus};
use super::{Error, Store, with_prefix};

const ORDER_PREFIX: &[u8] = b"order/";
/// The sequence's next number, a u64 big-endian.
const SEQUENCE_KEY: &[u8] = b"order-sequence";

/// Where a delivery stands in its key's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPlace {
    pub key: String,
    pub seq: u64,
    /// Waiting for an earlier delivery of its key: not due.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub waits: bool,
}

/// The prefix of all of `endpoint`'s entries.
fn endpoint_prefix(endpoint: &str) -> Vec<u8> {
    let mut prefix = Vec::with_capacity(ORDER_PREFIX.len() + endpoint.len() + 1);
    prefix.extend_from_slice(ORDER_PREFIX);
    prefix.extend_from_slice(endpoint.as_bytes());
    prefix.push(0);
    prefix
}

/// The prefix of `endpoint`'s entries of `key`.
pub(super) fn group_prefix(endpoint: &str, key: &str) -> Vec<u8> {
    let mut prefix = endpoint_prefix(endpoint);
    // At most 256 bytes (the ingest API checks).
    let length = u16::try_from(key.len()).unwrap_or(u16::MAX);
    prefix.extend_from_slice(&length.to_be_bytes());
    prefix.extend_from_slice(key.as_bytes());
    prefix
}

/// The entry of delivery `id` of `endpoint` at `place`.
pub(super) fn entry(endpoint: &str, place: &OrderPlace, id: &str) -> Vec<u8> {
    let mut key = group_prefix(endpoint, &place.key);
    key.extend_from_slice(&place.seq.to_be_bytes());
    key.extend_from_slice(id.as_bytes());
    key
}

/// An entry's value: whether its delivery waits (so the pending counts,
/// made at open from the `due` entries, can count those without one).
pub(super) fn entry_value(place: &OrderPlace) -> &'static [u8] {
    if place.waits { WAITING } else { &[] }
}

const WAITING: &[u8] = &[1];

/// The endpoint and delivery id of each waiting delivery, from the
/// entries alone (their values say which wait).
pub(super) fn waiting_entries(db: &DB) -> impl Iterator<Item = Result<(String, String), Error>> + '_ {
    with_prefix(db, rocksdb::DEFAULT_COLUMN_FAMILY_NAME, ORDER_PREFIX).filter_map(|entry| match entry {
        Err(error) => Some(Err(error.into())),
        Ok((key, value)) if value.as_ref() == WAITING => {
            let (group, id) = split_entry(&key)?;
            let endpoint = &group[ORDER_PREFIX.len()..];
            let endpoint = &endpoint[..endpoint.iter().position(|b| *b == 0)?];
            Some(Ok((String::from_utf8_lossy(endpoint).into_owned(), id.to_owned())))
        }
        Ok(_) => None,
    })
}

/// The sequence's next number, as the store keeps it (0 in a new store).
pub(super) fn next_sequence(db: &DB) -> Result<u64, Error> {
    Ok(db
        .get_pinned(SEQUENCE_KEY)?
        .and_then(|value| <[u8; 8]>::try_from(value.as_ref()).ok())
        .map_or(0, u64::from_be_bytes))
}

/// The key and value that keep `next` as the sequence's next number.
pub(super) fn sequence_entry(next: u64) -> (&'static [u8], [u8; 8]) {
    (SEQUENCE_KEY, next.to_be_bytes())
}

/// The delivery ids of the entries of `prefix` (a group's, or an
/// endpoint's), in order.
pub(super) fn entries<'a>(db: &'a DB, prefix: &'a [u8]) -> impl Iterator<Item = Result<(Vec<u8>, String), Error>> + 'a {
    with_prefix(db, rocksdb::DEFAULT_COLUMN_FAMILY_NAME, prefix).map(|entry| {
        let (key, _) = entry?;
        let (group, id) = split_entry(&key).ok_or_else(|| Error::Corrupt("order entry".into()))?;
        Ok((group.to_vec(), id.to_owned()))
    })
}

/// An entry's group prefix (its endpoint and key) and delivery id.
fn split_entry(key: &[u8]) -> Option<(&[u8], &str)> {
    let rest = key.strip_prefix(ORDER_PREFIX)?;
    let endpoint_end = rest.iter().position(|b| *b == 0)?;
    let length = u16::from_be_bytes(rest.get(endpoint_end + 1..endpoint_end + 3)?.try_into().ok()?) as usize;
    let group_end = ORDER_PREFIX.len() + endpoint_end + 3 + length;
    let id = key.get(group_end + 8..)?;
    Some((&key[..group_end], std::str::from_utf8(id).ok()?))
}

/// Makes due, at `now_ms`, the first delivery of each key that still
/// waits: ingest's write was durable but its turn was never taken (a
/// crash between the two). At open, before the writers start.
pub(super) fn release_stranded(db: &DB, now_ms: u64) -> Result<usize, Error> {
    let mut batch = rocksdb::WriteBatch::default();
    let mut released = 0;
    let mut last_group: Option<Vec<u8>> = None;
    for found in entries(db, ORDER_PREFIX) {
        let (group, id) = found?;
        if last_group.as_ref() == Some(&group) {
            continue;
        }
        last_group = Some(group);
        let Some(value) = db.get_pinned_cf(super::column_family(db, super::cf::DELIVERIES), &id)? else {
            continue;
        };
        let mut record = DeliveryRecord::decode(&value)?;
        if record.status == DeliveryStatus::Pending
            && let Some(place) = &mut record.order
            && place.waits
        {
            place.waits = false;
            record.next_attempt_at = now_ms;
            batch.put_cf(
                super::column_family(db, super::cf::DUE),
                keys::endpoint_timed(&record.endpoint, now_ms, &id),
                [],
            );
            batch.put(entry(&record.endpoint, place, &id), entry_value(place));
            batch.put_cf(super::column_family(db, super::cf::DELIVERIES), &id, record.encode());
            released += 1;
        }
    }
    if released > 0 {
        db.write(batch)?;
    }
    Ok(released)
}

impl Store {
    /// Every delivery that waits for its key, as (endpoint, delivery id):
    /// one read of the order's entries, nothing when no endpoint orders.
    pub fn waiting_in_order(&self) -> Result<Vec<(String, String)>, Error> {
        let db = self.db()?;
        waiting_entries(&db).collect()
    }
}
