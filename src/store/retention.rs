//! Retention: removing what finished long enough ago.
//!
//! The `finished` index is ordered by finish time, so the sweep reads it
//! from the start up to the cutoff and stops: it never looks at live data.
//! For each finished delivery it deletes the record, its attempts and its
//! `recent` entry; an event goes once none of its deliveries is left (an
//! event that never had any has its own `finished` entry). Work is done in
//! chunks of atomic batches, so a crash mid-sweep leaves a consistent store
//! and the next sweep carries on. The swept range of `finished` is then
//! compacted, dropping the tombstones that would slow the next sweep's scan.

use std::collections::BTreeSet;

use rocksdb::{DB, IteratorMode, ReadOptions, WriteBatch};

use super::keys::{self, Finished};
use super::records::DeliveryRecord;
use super::{Error, cf, column_family, with_prefix};

/// Entries handled per atomic batch.
const CHUNK: usize = 1_000;

/// What one sweep removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepStats {
    pub deliveries: usize,
    pub events: usize,
}

/// Removes everything that finished before `cutoff_ms`.
pub fn sweep(db: &DB, cutoff_ms: u64) -> Result<SweepStats, Error> {
    let mut stats = SweepStats::default();
    loop {
        let chunk = finished_before(db, cutoff_ms)?;
        if chunk.is_empty() {
            break;
        }
        let mut batch = WriteBatch::default();
        let mut touched_events = BTreeSet::new();
        for (key, kind, id) in &chunk {
            batch.delete_cf(column_family(db, cf::FINISHED), key);
            match kind {
                Finished::Event => {
                    batch.delete_cf(column_family(db, cf::EVENTS), id);
                    stats.events += 1;
                }
                Finished::Delivery => {
                    if let Some(value) = db.get_pinned_cf(column_family(db, cf::DELIVERIES), id)? {
                        let delivery = DeliveryRecord::decode(&value)?;
                        batch.delete_cf(column_family(db, cf::RECENT), keys::timed(delivery.created_at, id));
                        if let Some(at) = delivery.finished_at {
                            batch.delete_cf(
                                column_family(db, cf::FAILED),
                                keys::endpoint_timed(&delivery.endpoint, at, id),
                            );
                        }
                        touched_events.insert(delivery.event_id);
                    }
                    batch.delete_cf(column_family(db, cf::DELIVERIES), id);
                    let attempts = keys::attempts_prefix(id);
                    batch.delete_range_cf(column_family(db, cf::ATTEMPTS), &attempts, &keys::prefix_end(&attempts));
                    stats.deliveries += 1;
                }
            }
        }
        db.write(batch)?;
        // Now the chunk's deliveries are gone, drop events left with none.
        let mut orphans = WriteBatch::default();
        for event_id in &touched_events {
            if !has_deliveries(db, event_id)? {
                orphans.delete_cf(column_family(db, cf::EVENTS), event_id);
                stats.events += 1;
            }
        }
        db.write(orphans)?;
        if chunk.len() < CHUNK {
            break;
        }
    }
    if stats != SweepStats::default() {
        db.compact_range_cf(
            column_family(db, cf::FINISHED),
            None::<&[u8]>,
            Some(keys::time_bound(cutoff_ms)),
        );
    }
    Ok(stats)
}

/// The first [`CHUNK`] `finished` entries before `cutoff_ms`.
fn finished_before(db: &DB, cutoff_ms: u64) -> Result<Vec<(Vec<u8>, Finished, String)>, Error> {
    let mut read = ReadOptions::default();
    read.set_iterate_upper_bound(keys::time_bound(cutoff_ms));
    let mut chunk = Vec::new();
    for entry in db.iterator_cf_opt(column_family(db, cf::FINISHED), read, IteratorMode::Start) {
        let (key, _) = entry?;
        let (_, kind, id) = keys::split_finished(&key).ok_or_else(|| Error::Corrupt("finished key".into()))?;
        let id = id.to_owned();
        chunk.push((key.to_vec(), kind, id));
        if chunk.len() == CHUNK {
            break;
        }
    }
    Ok(chunk)
}

fn has_deliveries(db: &DB, event_id: &str) -> Result<bool, Error> {
    let mut iterator = with_prefix(db, cf::DELIVERIES, &keys::deliveries_prefix(event_id));
    Ok(iterator.next().transpose()?.is_some())
}

/// Fails deliveries that have waited since before `cutoff_ms` on endpoints
/// that are not `active` (paused, disabled, or gone from the config): each
/// gets a last attempt of kind `expired` (no request is sent). Returns how
/// many. Active endpoints' queues are skipped with one seek each.
pub fn expire_waiting(
    store: &super::Store,
    active: &dyn Fn(&str) -> bool,
    cutoff_ms: u64,
    now_ms: u64,
) -> Result<usize, Error> {
    let db = &store.db()?;
    let mut expired = Vec::new();
    let mut from: Vec<u8> = Vec::new();
    loop {
        let mut iterator = db.iterator_cf(
            column_family(db, cf::DUE),
            IteratorMode::From(&from, rocksdb::Direction::Forward),
        );
        let Some(entry) = iterator.next() else { break };
        let (key, _) = entry?;
        let endpoint_end = key
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| Error::Corrupt("due key".into()))?;
        let endpoint = String::from_utf8_lossy(&key[..endpoint_end]).into_owned();
        let prefix = keys::endpoint_prefix(&endpoint);
        if !active(&endpoint) {
            for entry in db.iterator_cf(
                column_family(db, cf::DUE),
                IteratorMode::From(&prefix, rocksdb::Direction::Forward),
            ) {
                let (key, _) = entry?;
                if !key.starts_with(&prefix) {
                    break;
                }
                match keys::split_endpoint_timed(&key) {
                    Some((at, id)) if at < cutoff_ms => expired.push(id.to_owned()),
                    _ => break,
                }
            }
        }
        from = keys::prefix_end(&prefix);
    }
    for id in &expired {
        let Some(record) = store.delivery(id)? else { continue };
        let attempt = super::AttemptRecord {
            n: record.attempt_count + 1,
            at: now_ms,
            status_code: None,
            error_kind: Some(EXPIRED.to_owned()),
            latency_ms: 0,
            response_snippet: String::new(),
        };
        store.record_attempt(id, &attempt, super::NextStep::Failed, now_ms)?;
    }
    Ok(expired.len())
}

/// The error kind of a delivery that waited too long on a paused endpoint.
const EXPIRED: &str = "expired";
