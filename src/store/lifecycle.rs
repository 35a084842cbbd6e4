//! The one owner of a delivery's state. Every change to a stored delivery
//! is a [`Change`] applied by the change writer ([`super::change_writer`]),
//! the only thread that writes delivery state: the caller names the state
//! it expects, and the record, its index entries and the counts
//! ([`super::counts`]) change together, in one atomic write. A change whose
//! expectation no longer holds writes nothing and answers
//! [`Applied::Stale`] (etcd's compare-then-write), so a stale actor can
//! never undo another's work. One thread applying them in order is what
//! makes the check and the write one step: no lock is taken.
//!
//! | change | expects | becomes | index entries |
//! |---|---|---|---|
//! | [`Change::Attempted`], next [`NextStep::RetryAt`] | pending, due at the time its actor read | pending, due later, the attempt added to its record | `due` moves |
//! | [`Change::Attempted`], next [`NextStep::Succeeded`] | as above | succeeded, the attempt added | `due` → `finished` |
//! | [`Change::Attempted`], next [`NextStep::Failed`] | as above | failed, the attempt added | `due` → `finished` and `failed` |
//! | [`Change::ManualRetry`] | failed | pending, one extra attempt due now | `finished` and `failed` → `due` |
//! | [`Change::Swept`] | finished before the retention cutoff | gone, with its attempts (and its event, with the event's last delivery) | all of its entries removed (the event's `recent` entry with the event) |
//! | [`Change::Parked`] | pending, due at the time its actor read | gone from this store, held by JetStream (cluster mode); its event stays, for duplicates | all of its entries removed; with the event's last delivery, the event's `recent` entry becomes a `finished` one |
//! | [`Change::QuietEventSwept`] (by event id) | nothing: it reads no record | the event gone, unless it has a delivery again | its `finished` entry removed |
//! | [`Change::Adopted`] | absent | pending as JetStream held it, attempts and schedule kept | `due`, and the event (if not stored) with its `recent` entry |
//! | [`Change::TakeTurn`] | pending, waiting for its key, no earlier delivery of its key pending (unless `unordered`) | pending, due now | `due` added |
//! | [`Store::unqueue`] | (its record cannot be read) | left as it is, off the queue | `due` entry removed |
//!
//! A keyed delivery's place in its key's order ([`super::ordering`]) is an
//! index entry too, kept while it is pending. The change that finishes a
//! keyed delivery (succeeded, failed, parked) also makes the next one of
//! its key due, if that one waits, in the same write.
//!
//! A record a hookd of schema 1 wrote keeps its attempts apart
//! ([`DeliveryRecord::attempts_apart`]); its first change other than a
//! sweep moves them into the record, in the same write.
//!
//! Who makes them: a worker records each attempt it made (and one of kind
//! `corrupt_record` for a delivery it cannot send); the sweeper records an
//! `expired` attempt for a delivery that waited past the retention on an
//! inactive endpoint, and sweeps; an operator retries. What those mean
//! (which outcome retries, after how long, what "expired" is) is decided
//! by them, above the store. In cluster mode the parker parks what waits
//! long and the adopter adopts what JetStream holds ([`crate::cluster`]).
//!
//! Ingest creates deliveries ([`super::writer`]); creation is not a change
//! of state and needs no expectation: a new id cannot be stored yet.

use std::collections::BTreeMap;

use rocksdb::{DB, WriteBatch};

use super::attempts::{self, AttemptRecord, NextStep};
use super::keys::{self, Finished};
use super::ordering;
use super::records::{DeliveryRecord, DeliveryStatus, EventRecord};
use super::{Durability, Error, cf, column_family, with_prefix};

/// What a change expects of the delivery as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Pending, due at this time (ms): as the actor read it from the queue.
    PendingDueAt(u64),
    /// Failed.
    Failed,
    /// Succeeded or failed, and finished before this time (ms).
    FinishedBefore(u64),
    /// Not stored.
    Absent,
    /// Pending, waiting for its key.
    Waiting,
}

impl Expect {
    fn holds(self, record: &DeliveryRecord) -> bool {
        match self {
            Expect::PendingDueAt(due) => record.status == DeliveryStatus::Pending && record.next_attempt_at == due,
            Expect::Failed => record.status == DeliveryStatus::Failed,
            Expect::FinishedBefore(cutoff) => {
                record.status.is_finished() && record.finished_at.is_some_and(|at| at < cutoff)
            }
            Expect::Absent => false,
            Expect::Waiting => {
                record.status == DeliveryStatus::Pending && record.order.as_ref().is_some_and(|place| place.waits)
            }
        }
    }
}

/// One change to a delivery.
#[derive(Debug, Clone)]
pub enum Change {
    /// An attempt's outcome (sent, or recorded without a request), and
    /// where the delivery goes next. The attempt is numbered here: one
    /// after the last recorded one.
    Attempted { attempt: AttemptRecord, next: NextStep },
    /// An operator's manual retry: one extra attempt, due now; if it fails
    /// the delivery is failed again, whatever the schedule.
    ManualRetry,
    /// Retention removes the delivery, its attempts, and its event once no
    /// other delivery of the event is left.
    Swept,
    /// JetStream confirmed it holds the delivery: this store lets it go,
    /// and keeps its event (and so its id, for duplicates) until the
    /// retention removes it.
    Parked,
    /// A delivery JetStream held comes to this store, with its event.
    Adopted {
        record: Box<DeliveryRecord>,
        event: Box<EventRecord>,
    },
    /// Retention removes an event that has no delivery (none routed, or
    /// all parked) with its `finished` entry: the transition's id is the
    /// event's. One that has a delivery again (adopted back) keeps it.
    QuietEventSwept { finished_key: Vec<u8> },
    /// A keyed delivery that waits for its key ([`super::ordering`]) is
    /// made due, if no earlier delivery of its key is pending, or whatever
    /// is pending when `unordered` (its endpoint no longer orders).
    TakeTurn { unordered: bool },
}

/// A change to apply: to which delivery, expecting what, at what time.
#[derive(Debug, Clone)]
pub struct Transition {
    pub id: String,
    pub expect: Expect,
    pub change: Change,
    pub now_ms: u64,
}

/// What a transition did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Written. For [`Change::Swept`], `event_removed` says whether the
    /// event went too (this was its last delivery).
    Done { event_removed: bool },
    /// The delivery is not as the change expected: nothing was written.
    Stale,
    /// There is no such delivery.
    Missing,
}

impl Applied {
    pub fn is_done(self) -> bool {
        matches!(self, Applied::Done { .. })
    }
}

/// The records one group of transitions changed so far (`None`: removed),
/// so a later transition in the group reads what an earlier one wrote.
pub(super) type Overlay = BTreeMap<String, Option<DeliveryRecord>>;

/// One transition planned into a group's write.
pub(super) struct Planned {
    pub applied: Applied,
    /// The record before and after (`None`: absent), for the counts;
    /// `None` when nothing changed.
    pub moved: Option<(Option<DeliveryRecord>, Option<DeliveryRecord>)>,
    pub durability: Durability,
}

/// Adds `transition` to `batch` if the delivery, as stored or as `overlay`
/// has it, is as the transition expects; records the new state in
/// `overlay`.
pub(super) fn plan(
    db: &DB,
    batch: &mut WriteBatch,
    overlay: &mut Overlay,
    transition: Transition,
) -> Result<Planned, Error> {
    let Transition {
        id,
        expect,
        change,
        now_ms,
    } = transition;
    let unchanged = |applied| Planned {
        applied,
        moved: None,
        durability: Durability::Written,
    };
    // By event id: no delivery record is read (an event's id may be
    // another event's delivery id).
    if let Change::QuietEventSwept { finished_key } = &change {
        batch.delete_cf(column_family(db, cf::FINISHED), finished_key);
        let kept = event_has_deliveries(db, overlay, &id, None)?;
        if !kept {
            batch.delete_cf(column_family(db, cf::EVENTS), &id);
        }
        return Ok(Planned {
            applied: Applied::Done { event_removed: !kept },
            moved: None,
            durability: Durability::Written,
        });
    }
    let Some(before) = current(db, overlay, &id)? else {
        return match change {
            Change::Adopted { mut record, event } if expect == Expect::Absent => {
                // Its place in another replica's order means nothing here.
                record.order = None;
                adopt(db, batch, &id, &record, &event)?;
                overlay.insert(id, Some((*record).clone()));
                Ok(Planned {
                    applied: Applied::Done { event_removed: false },
                    moved: Some((None, Some(*record))),
                    durability: Durability::Synced,
                })
            }
            _ => Ok(unchanged(Applied::Missing)),
        };
    };
    if !expect.holds(&before) {
        return Ok(unchanged(Applied::Stale));
    }
    // Every read before the first entry is added, so a failed read leaves
    // nothing of this transition in the group's write.
    if let Change::TakeTurn { unordered } = change
        && !unordered
        && earlier_of_key_pending(db, overlay, &id, &before)?
    {
        return Ok(unchanged(Applied::Stale));
    }
    // A delivery of a key that finishes or leaves lets the next one go.
    let ends = match &change {
        Change::Attempted { next, .. } => matches!(next, NextStep::Succeeded | NextStep::Failed),
        Change::Parked => true,
        _ => false,
    };
    let next_of_key = match &before.order {
        Some(place) if ends && !place.waits => next_waiting_of_key(db, overlay, &id, &before)?,
        _ => None,
    };
    let swept = matches!(change, Change::Swept);
    let leaves = swept || matches!(change, Change::Parked);
    let last_of_event = leaves && !has_other_deliveries(db, overlay, &id, &before)?;
    // A record of schema 1 takes its attempts in at its first change.
    let moved_in = match before.attempts_apart && !leaves {
        true => Some(attempts::apart(db, &id)?),
        false => None,
    };
    unindex(db, batch, &id, &before);
    // Attempts are not synced: a process crash keeps them (the log is in
    // the OS), and a power cut that loses one only means the attempt is
    // made again. A manual retry is: the operator's 202 promises it.
    let (mut after, durability, event_removed) = match change {
        Change::Attempted { mut attempt, next } => {
            attempt.n = before.attempt_count + 1;
            let mut after = attempted(&before, attempt.n, next, now_ms);
            after.attempts.push(attempt);
            (Some(after), Durability::Written, false)
        }
        Change::ManualRetry => (Some(retried(&before, now_ms)), Durability::Synced, false),
        Change::Swept => {
            remove(db, batch, &id, &before, last_of_event);
            (None, Durability::Written, last_of_event)
        }
        // Not synced: JetStream holds it already, and a crash that loses
        // this write only leaves a copy that is sent twice at worst.
        Change::Parked => {
            let_go(db, batch, &id, &before, last_of_event.then_some(now_ms));
            (None, Durability::Written, false)
        }
        Change::TakeTurn { .. } => (Some(released(&before, now_ms)), Durability::Written, false),
        // Their `expect` is `Absent`, which no stored record meets.
        Change::Adopted { .. } | Change::QuietEventSwept { .. } => unreachable!("expects no record"),
    };
    if let Some((next_id, next)) = next_of_key {
        let after_next = released(&next, now_ms);
        unindex(db, batch, &next_id, &next);
        index(db, batch, &next_id, &after_next);
        batch.put_cf(column_family(db, cf::DELIVERIES), &next_id, after_next.encode());
        overlay.insert(next_id, Some(after_next));
    }
    if let (Some(after), Some(mut apart)) = (&mut after, moved_in) {
        delete_attempts_apart(db, batch, &id);
        apart.append(&mut after.attempts);
        after.attempts = apart;
        after.attempts_apart = false;
    }
    if let Some(after) = &after {
        index(db, batch, &id, after);
        batch.put_cf(column_family(db, cf::DELIVERIES), &id, after.encode());
    }
    overlay.insert(id, after.clone());
    Ok(Planned {
        applied: Applied::Done { event_removed },
        moved: Some((Some(before), after)),
        durability,
    })
}

/// Delivery `id` as the group has left it, or as stored.
fn current(db: &DB, overlay: &Overlay, id: &str) -> Result<Option<DeliveryRecord>, Error> {
    if let Some(record) = overlay.get(id) {
        return Ok(record.clone());
    }
    db.get_pinned_cf(column_family(db, cf::DELIVERIES), id)?
        .map(|value| DeliveryRecord::decode(&value))
        .transpose()
}

/// The delivery after attempt `n`, moving to `next`.
fn attempted(before: &DeliveryRecord, n: u32, next: NextStep, now_ms: u64) -> DeliveryRecord {
    let mut after = before.clone();
    after.attempt_count = n;
    after.updated_at = now_ms;
    after.manual_retry = false;
    match next {
        NextStep::RetryAt(at) => {
            after.next_attempt_at = at;
            after.finished_at = None;
        }
        NextStep::Succeeded | NextStep::Failed => {
            after.status = if next == NextStep::Succeeded {
                DeliveryStatus::Succeeded
            } else {
                DeliveryStatus::Failed
            };
            after.finished_at = Some(now_ms);
        }
    }
    after
}

/// A delivery that waited for its key, due at `now_ms`.
fn released(before: &DeliveryRecord, now_ms: u64) -> DeliveryRecord {
    let mut after = before.clone();
    if let Some(place) = &mut after.order {
        place.waits = false;
    }
    after.next_attempt_at = now_ms;
    after
}

/// Whether a delivery of `record`'s key stored before it is pending, as
/// the group has left it or as stored.
fn earlier_of_key_pending(db: &DB, overlay: &Overlay, id: &str, record: &DeliveryRecord) -> Result<bool, Error> {
    let Some(place) = &record.order else {
        return Ok(false);
    };
    for entry in ordering::entries(db, &ordering::group_prefix(&record.endpoint, &place.key)) {
        let (_, other) = entry?;
        if other == id {
            return Ok(false);
        }
        if current(db, overlay, &other)?.is_some_and(|earlier| earlier.status == DeliveryStatus::Pending) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The first delivery of `record`'s key after it that waits, with its
/// record, if no other pending one stands between.
fn next_waiting_of_key(
    db: &DB,
    overlay: &Overlay,
    id: &str,
    record: &DeliveryRecord,
) -> Result<Option<(String, DeliveryRecord)>, Error> {
    let Some(place) = &record.order else {
        return Ok(None);
    };
    for entry in ordering::entries(db, &ordering::group_prefix(&record.endpoint, &place.key)) {
        let (_, other) = entry?;
        if other == id {
            continue;
        }
        match current(db, overlay, &other)? {
            Some(next) if next.status == DeliveryStatus::Pending => {
                let waits = next.order.as_ref().is_some_and(|place| place.waits);
                return Ok(waits.then_some((other, next)));
            }
            // Finished or gone earlier in this group: its entry goes with
            // this write.
            _ => {}
        }
    }
    Ok(None)
}

/// The delivery after an operator's retry at `now_ms`.
fn retried(before: &DeliveryRecord, now_ms: u64) -> DeliveryRecord {
    let mut after = before.clone();
    after.status = DeliveryStatus::Pending;
    after.finished_at = None;
    after.next_attempt_at = now_ms;
    after.updated_at = now_ms;
    after.manual_retry = true;
    // It neither waits for its key nor is waited for.
    after.order = None;
    after
}

/// Deletes the attempts a record of schema 1 kept apart.
fn delete_attempts_apart(db: &DB, batch: &mut WriteBatch, id: &str) {
    let attempts = keys::attempts_prefix(id);
    batch.delete_range_cf(column_family(db, cf::ATTEMPTS), &attempts, &keys::prefix_end(&attempts));
}

/// Deletes everything of a finished delivery: the record with its
/// attempts, and its event with its last delivery, with the event's
/// `recent` entry (in the same write, so a crash never leaves the event
/// behind).
fn remove(db: &DB, batch: &mut WriteBatch, id: &str, record: &DeliveryRecord, last_of_event: bool) {
    delete_record(db, batch, id, record);
    if last_of_event {
        batch.delete_cf(
            column_family(db, cf::RECENT),
            keys::timed(record.created_at, &record.event_id),
        );
        batch.delete_cf(column_family(db, cf::EVENTS), &record.event_id);
    }
}

/// Deletes a delivery's record, the attempts a record of schema 1 kept
/// apart, and the `recent` entry of its own a record of schema 1 has.
fn delete_record(db: &DB, batch: &mut WriteBatch, id: &str, record: &DeliveryRecord) {
    batch.delete_cf(column_family(db, cf::DELIVERIES), id);
    if record.attempts_apart {
        delete_attempts_apart(db, batch, id);
    }
    if record.recent_per_delivery {
        batch.delete_cf(column_family(db, cf::RECENT), keys::timed(record.created_at, id));
    }
}

/// Deletes a parked delivery's record, attempts and `recent` entry; with
/// the event's last delivery (`quiet_since`: now), its event's `recent`
/// entry becomes a `finished` one, so retention removes the event in
/// time and a resubmission meanwhile is a duplicate.
fn let_go(db: &DB, batch: &mut WriteBatch, id: &str, record: &DeliveryRecord, quiet_since: Option<u64>) {
    delete_record(db, batch, id, record);
    if let Some(now_ms) = quiet_since {
        batch.delete_cf(
            column_family(db, cf::RECENT),
            keys::timed(record.created_at, &record.event_id),
        );
        batch.put_cf(
            column_family(db, cf::FINISHED),
            keys::finished(now_ms, Finished::Event, &record.event_id),
            [],
        );
    }
}

/// Writes an adopted delivery, and its event unless it is stored here
/// already (its other deliveries, or this one parked from here).
fn adopt(db: &DB, batch: &mut WriteBatch, id: &str, record: &DeliveryRecord, event: &EventRecord) -> Result<(), Error> {
    if db
        .get_pinned_cf(column_family(db, cf::EVENTS), &record.event_id)?
        .is_none()
    {
        batch.put_cf(column_family(db, cf::EVENTS), &record.event_id, event.encode());
    }
    batch.put_cf(
        column_family(db, cf::RECENT),
        keys::timed(record.created_at, &record.event_id),
        [],
    );
    index(db, batch, id, record);
    batch.put_cf(column_family(db, cf::DELIVERIES), id, record.encode());
    Ok(())
}

/// Whether delivery `id`'s event has another delivery, as stored and not
/// removed earlier in the group.
fn has_other_deliveries(db: &DB, overlay: &Overlay, id: &str, record: &DeliveryRecord) -> Result<bool, Error> {
    event_has_deliveries(db, overlay, &record.event_id, Some(id))
}

/// Whether event `event_id` has a delivery other than `except`, as stored
/// and not removed earlier in the group, or added earlier in the group.
fn event_has_deliveries(db: &DB, overlay: &Overlay, event_id: &str, except: Option<&str>) -> Result<bool, Error> {
    let prefix = keys::deliveries_prefix(event_id);
    let other = |id: &str| Some(id) != except;
    // Ordered by id, the group's deliveries of this event are one range.
    let of_event = String::from_utf8_lossy(&prefix).into_owned();
    let added = overlay
        .range::<str, _>((std::ops::Bound::Included(of_event.as_str()), std::ops::Bound::Unbounded))
        .take_while(|(id, _)| id.starts_with(&of_event))
        .any(|(id, record)| record.is_some() && other(id));
    if added {
        return Ok(true);
    }
    for entry in with_prefix(db, cf::DELIVERIES, &prefix) {
        let (key, _) = entry?;
        let sibling = String::from_utf8_lossy(&key);
        if other(&sibling) && overlay.get(sibling.as_ref()) != Some(&None) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The index entries `record` has: `due` (and its place in its key's
/// order, if it has one) while pending; `finished` (and `failed`) once
/// finished.
fn index_entries(id: &str, record: &DeliveryRecord) -> Vec<(&'static str, Vec<u8>)> {
    match record.finished_at {
        Some(at) if record.status.is_finished() => {
            let mut entries = vec![(cf::FINISHED, keys::finished(at, Finished::Delivery, id))];
            if record.status == DeliveryStatus::Failed {
                entries.push((cf::FAILED, keys::endpoint_timed(&record.endpoint, at, id)));
            }
            entries
        }
        _ => {
            let mut entries = Vec::with_capacity(2);
            if record.order.as_ref().is_none_or(|place| !place.waits) {
                entries.push((
                    cf::DUE,
                    keys::endpoint_timed(&record.endpoint, record.next_attempt_at, id),
                ));
            }
            if let Some(place) = &record.order {
                entries.push((
                    rocksdb::DEFAULT_COLUMN_FAMILY_NAME,
                    ordering::entry(&record.endpoint, place, id),
                ));
            }
            entries
        }
    }
}

/// Deletes the index entries `record` has now.
fn unindex(db: &DB, batch: &mut WriteBatch, id: &str, record: &DeliveryRecord) {
    for (family, key) in index_entries(id, record) {
        batch.delete_cf(column_family(db, family), key);
    }
}

/// Adds the index entries `record` needs.
fn index(db: &DB, batch: &mut WriteBatch, id: &str, record: &DeliveryRecord) {
    for (family, key) in index_entries(id, record) {
        let value = match &record.order {
            Some(place) if family == rocksdb::DEFAULT_COLUMN_FAMILY_NAME => ordering::entry_value(place),
            _ => &[],
        };
        batch.put_cf(column_family(db, family), key, value);
    }
}
