//! Retention: removing what finished long enough ago.
//!
//! The `finished` index is ordered by finish time, so the sweep reads it
//! from the start up to the cutoff and stops: it never looks at live data.
//! Each finished delivery goes by a [`Change::Swept`] transition, which
//! the change writer applies only if it is still finished (an operator
//! may have retried it a moment ago) and removes the record, its attempts,
//! its index entries and, with the event's last delivery, the event, in one
//! atomic write: a crash mid-sweep leaves a consistent store and the next
//! sweep carries on. An event that never had deliveries (or, in cluster
//! mode, had them all parked) has its own `finished` entry, removed by a
//! [`Change::QuietEventSwept`] on the same thread, so an adoption back of
//! one of its deliveries and the sweep never cross. The swept range of
//! `finished` is then compacted,
//! dropping the tombstones that would slow the next sweep's scan.
//!
//! Also here: which deliveries have waited past the retention on an
//! endpoint that is not worked, for the sweeper to expire.

use rocksdb::{DB, IteratorMode, ReadOptions, WriteBatch};

use super::keys::{self, Finished};
use super::lifecycle::{Applied, Change, Expect, Transition};
use super::{Error, Store, cf, column_family, with_prefix};

/// Entries handled per atomic batch.
const CHUNK: usize = 1_000;

/// What one sweep removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepStats {
    pub deliveries: usize,
    pub events: usize,
}

/// Removes everything that finished before `cutoff_ms`: each delivery by
/// a [`Change::Swept`] transition (so one an operator retried meanwhile
/// stays), each event that never had deliveries with its `finished` entry.
pub fn sweep(store: &Store, cutoff_ms: u64) -> Result<SweepStats, Error> {
    let db = store.db()?;
    let mut stats = SweepStats::default();
    loop {
        let chunk = finished_before(&db, cutoff_ms)?;
        let mut orphaned_entries = WriteBatch::default();
        let transitions = chunk.iter().map(|(key, kind, id)| match kind {
            Finished::Event => Transition {
                id: id.clone(),
                // Not checked: a quiet event's sweep reads no record.
                expect: Expect::Absent,
                change: Change::QuietEventSwept {
                    finished_key: key.clone(),
                },
                now_ms: cutoff_ms,
            },
            Finished::Delivery => Transition {
                id: id.clone(),
                expect: Expect::FinishedBefore(cutoff_ms),
                change: Change::Swept,
                now_ms: cutoff_ms,
            },
        });
        let applied = store.transition_all(transitions.collect());
        for ((key, kind, _), applied) in chunk.iter().zip(applied) {
            match (kind, applied?) {
                (Finished::Event, Applied::Done { event_removed }) => stats.events += usize::from(event_removed),
                (Finished::Delivery, Applied::Done { event_removed }) => {
                    stats.deliveries += 1;
                    stats.events += usize::from(event_removed);
                }
                // Retried meanwhile: it is pending again, and its
                // `finished` entry went with that change.
                (_, Applied::Stale) => {}
                // An entry left by nothing: drop it.
                (_, Applied::Missing) => orphaned_entries.delete_cf(column_family(&db, cf::FINISHED), key),
            }
        }
        db.write(orphaned_entries)?;
        if chunk.len() < CHUNK {
            break;
        }
    }
    if stats != SweepStats::default() {
        db.compact_range_cf(
            column_family(&db, cf::FINISHED),
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

/// The deliveries that have waited since before `cutoff_ms` on endpoints
/// that are not `active` (paused, disabled, or gone from the config), as
/// (delivery id, due time). Active endpoints' queues are skipped with one
/// seek each.
pub fn waiting_before(
    store: &Store,
    active: &dyn Fn(&str) -> bool,
    cutoff_ms: u64,
) -> Result<Vec<(String, u64)>, Error> {
    let db = &store.db()?;
    let mut waiting = Vec::new();
    let mut from: Vec<u8> = Vec::new();
    while let Some(endpoint) = super::next_queue(db, &from)? {
        let prefix = keys::endpoint_prefix(&endpoint);
        if !active(&endpoint) {
            for entry in with_prefix(db, cf::DUE, &prefix) {
                let (key, _) = entry?;
                match keys::split_endpoint_timed(&key) {
                    Some((at, id)) if at < cutoff_ms => waiting.push((id.to_owned(), at)),
                    _ => break,
                }
            }
        }
        from = keys::prefix_end(&prefix);
    }
    Ok(waiting)
}
