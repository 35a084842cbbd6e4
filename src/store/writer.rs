//! The single writer that stores new events, with group commit.
//!
//! Ingest handlers send their events here and wait for the answer. The
//! writer thread takes every request that is waiting, decides each one
//! (new, duplicate of a stored event, or conflict), writes all the new
//! events of the group in one `WriteBatch` with the WAL synced, and only
//! then answers. So:
//!
//! - one fsync covers every request that arrived while the previous one
//!   ran (group commit): durability does not cap throughput at one fsync
//!   per event;
//! - a request is all or nothing: its events are decided together and
//!   written in the same batch, or it is refused whole;
//! - the existence check and the write cannot race, because this thread is
//!   the only one adding events; a duplicate of an event in the same group
//!   is answered only after the group's write is durable.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rocksdb::{DB, WriteBatch};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::{mpsc, oneshot};

use super::counts::DeliveryCounts;
use super::keys::{self, Finished};
use super::ordering::{self, OrderPlace};
use super::records::{DeliveryRecord, EventMeta, EventRecord};
use super::{Durability, Error, cf, column_family};

/// Requests waiting for the writer; senders wait when it is full.
const QUEUE_DEPTH: usize = 4096;
/// Events in one write at most, so one group's latency stays bounded.
const MAX_GROUP_EVENTS: usize = 10_000;

/// An event ready to store, built by the ingest API.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub id: String,
    /// hookd made the id, so it cannot be stored yet: no lookup needed.
    pub id_generated: bool,
    pub event: String,
    /// UTC with a `Z`.
    pub created_at: String,
    /// The app gave `created_at`, so a resubmission must match it.
    pub created_at_given: bool,
    /// The platform customer it belongs to.
    pub tenant: Option<String>,
    /// Its deliveries to `keyed_endpoints` go one at a time per key.
    pub ordering_key: Option<String>,
    /// Of `endpoints`, those with `ordering = "key"`.
    pub keyed_endpoints: Vec<String>,
    /// The wire body subscribers receive; shared with the hand-over to
    /// the workers.
    pub body: Bytes,
    /// Where `data` sits in `body`.
    pub data: Range<usize>,
    pub traceparent: Option<String>,
    /// The endpoints that get a delivery.
    pub endpoints: Vec<String>,
    /// Milliseconds since the epoch.
    pub received_at: u64,
}

/// The answer for one stored (or already stored) event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestOutcome {
    pub id: String,
    pub deliveries: u32,
    pub duplicate: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The id is stored with another event type, `data` or `created_at`.
    #[error("event id `{id}` is already stored with different content")]
    Conflict { index: usize, id: String },
    #[error(transparent)]
    Store(#[from] Error),
}

/// Something told the time of each synced write.
pub(super) type WriteObserver = Arc<dyn Fn(Duration) + Send + Sync>;

/// Counters of the writer's work, to see group commit at work, and who is
/// told how long each write took.
#[derive(Default)]
pub(super) struct Counters {
    synced_writes: AtomicU64,
    events: AtomicU64,
    observer: RwLock<Option<WriteObserver>>,
}

impl std::fmt::Debug for Counters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counters")
            .field("synced_writes", &self.synced_writes)
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

impl Counters {
    pub(super) fn observe_writes(&self, observer: WriteObserver) {
        *self.observer.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(observer);
    }

    fn written(&self, events: u64, took: Duration) {
        self.synced_writes.fetch_add(1, Ordering::Relaxed);
        self.events.fetch_add(events, Ordering::Relaxed);
        let observer = self
            .observer
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Some(observe) = observer {
            observe(took);
        }
    }
}

/// How many synced writes stored how many new events, since open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteStats {
    pub synced_writes: u64,
    pub events: u64,
}

impl Counters {
    pub(super) fn snapshot(&self) -> WriteStats {
        WriteStats {
            synced_writes: self.synced_writes.load(Ordering::Relaxed),
            events: self.events.load(Ordering::Relaxed),
        }
    }
}

pub(super) struct Request {
    events: Vec<NewEvent>,
    reply: oneshot::Sender<Result<Vec<IngestOutcome>, IngestError>>,
}

/// What the writer shares with the store's handles.
#[derive(Clone)]
pub(super) struct Shared {
    pub counters: Arc<Counters>,
    /// Every new delivery is added here once its write is durable.
    pub counts: Arc<DeliveryCounts>,
    /// Set by a failed write (see [`super::Store::recover`]).
    pub failed: Arc<AtomicBool>,
    /// For each failed write, the batch that undoes it: the write may be on
    /// disk unsynced, and come back when the store is reopened.
    pub undo: Arc<Mutex<Vec<WriteBatch>>>,
}

pub(super) struct Writer {
    sender: mpsc::Sender<Request>,
    thread: JoinHandle<()>,
}

impl Writer {
    /// Starts the thread. It holds the database weakly: the store closes
    /// when its last handle is dropped, not when this thread next wakes (a
    /// database still open when the process exits can crash RocksDB's
    /// static teardown).
    /// A failed write sets `failed` (see [`super::Store::recover`]).
    pub(super) fn start(db: Weak<DB>, shared: Shared) -> Result<Writer, Error> {
        let (sender, receiver) = mpsc::channel(QUEUE_DEPTH);
        let thread = std::thread::Builder::new()
            .name("hookd-store-writer".into())
            .spawn(move || run(&db, &shared, receiver))
            .map_err(|error| Error::Incompatible(format!("cannot start the writer thread: {error}")))?;
        Ok(Writer { sender, thread })
    }

    pub(super) fn sender(&self) -> mpsc::Sender<Request> {
        self.sender.clone()
    }

    /// Answers what is queued, then ends the thread.
    pub(super) fn stop(self) {
        drop(self.sender);
        if self.thread.join().is_err() {
            tracing::error!("the store writer thread panicked");
        }
    }
}

pub(super) async fn submit(
    sender: &mpsc::Sender<Request>,
    events: Vec<NewEvent>,
) -> Result<Vec<IngestOutcome>, IngestError> {
    let (reply, answer) = oneshot::channel();
    sender
        .send(Request { events, reply })
        .await
        .map_err(|_| Error::Closed)?;
    answer.await.map_err(|_| Error::Closed)?
}

fn run(db: &Weak<DB>, shared: &Shared, mut receiver: mpsc::Receiver<Request>) {
    // This thread is the only one to number keyed deliveries.
    let mut sequence = match db.upgrade().map(|db| ordering::next_sequence(&db)) {
        Some(Ok(next)) => next,
        Some(Err(error)) => {
            tracing::error!(%error, "cannot read the ordering sequence; the store is marked failed");
            shared.failed.store(true, Ordering::SeqCst);
            return;
        }
        None => 0,
    };
    while let Some(first) = receiver.blocking_recv() {
        let mut events = first.events.len();
        let mut group = vec![first];
        while events < MAX_GROUP_EVENTS {
            match receiver.try_recv() {
                Ok(request) => {
                    events += request.events.len();
                    group.push(request);
                }
                Err(_) => break,
            }
        }
        match db.upgrade() {
            Some(db) => commit(&db, shared, group, &mut sequence),
            None => {
                for request in group {
                    let _ = request.reply.send(Err(IngestError::Store(Error::Closed)));
                }
            }
        }
    }
}

/// How one request is answered, decided before the group's write.
enum Verdict {
    Accept {
        outcomes: Vec<IngestOutcome>,
        /// The answer is true only once the group's write succeeds.
        needs_write: bool,
    },
    Refuse(IngestError),
}

fn commit(db: &DB, shared: &Shared, group: Vec<Request>, sequence: &mut u64) {
    let numbered_from = *sequence;
    let mut write = Undoable {
        db,
        batch: WriteBatch::default(),
        undo: WriteBatch::default(),
    };
    let mut new_events = 0;
    let mut new_deliveries: HashMap<String, u64> = HashMap::new();
    let mut verdicts = Vec::with_capacity(group.len());
    {
        // Events accepted earlier in this group, by id.
        let mut in_group: HashMap<&str, &NewEvent> = HashMap::new();
        for request in &group {
            let verdict = decide(db, &in_group, &request.events);
            if let Verdict::Accept { outcomes, .. } = &verdict {
                for (event, outcome) in request.events.iter().zip(outcomes) {
                    if !outcome.duplicate {
                        add_event(&mut write, event, sequence);
                        new_events += 1;
                        in_group.insert(&event.id, event);
                        for endpoint in &event.endpoints {
                            *new_deliveries.entry(endpoint.clone()).or_default() += 1;
                        }
                    }
                }
            }
            verdicts.push(verdict);
        }
    }
    if *sequence != numbered_from {
        // Not undone with the rest: a number is never given twice.
        let (key, value) = ordering::sequence_entry(*sequence);
        write.batch.put(key, value);
    }
    let written = if write.batch.is_empty() {
        Ok(())
    } else {
        let started = Instant::now();
        super::write(db, write.batch, Durability::Synced)
            .inspect(|()| shared.counters.written(new_events, started.elapsed()))
    };
    match &written {
        Ok(()) => {
            for (endpoint, added) in &new_deliveries {
                shared.counts.added_pending(endpoint, *added);
            }
        }
        Err(error) => {
            // The write may yet be on disk, unsynced: the reopen replays it,
            // then undoes it before anything reads it.
            tracing::error!(%error, "storing events failed");
            shared
                .undo
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(write.undo);
            shared.failed.store(true, Ordering::SeqCst);
        }
    }
    for (request, verdict) in group.into_iter().zip(verdicts) {
        let answer = match verdict {
            Verdict::Accept { outcomes, needs_write } => match &written {
                Err(error) if needs_write => Err(IngestError::Store(Error::Db(error.clone()))),
                _ => Ok(outcomes),
            },
            Verdict::Refuse(error) => Err(error),
        };
        // The handler may have gone (client hung up); the write stands.
        let _ = request.reply.send(answer);
    }
}

/// Decides a request: every event new or a faithful duplicate, or refused.
fn decide(db: &DB, in_group: &HashMap<&str, &NewEvent>, events: &[NewEvent]) -> Verdict {
    let mut outcomes = Vec::with_capacity(events.len());
    let mut needs_write = false;
    for (index, event) in events.iter().enumerate() {
        let earlier = match in_group.get(event.id.as_str()) {
            Some(original) => {
                needs_write = true;
                Some(Stored {
                    event: original.event.clone(),
                    tenant: original.tenant.clone(),
                    ordering_key: original.ordering_key.clone(),
                    data: original.body[original.data.clone()].to_vec(),
                    created_at: original.created_at.clone(),
                    deliveries: delivery_count(original),
                })
            }
            None if event.id_generated => None,
            None => match stored(db, &event.id) {
                Ok(found) => found,
                Err(error) => return Verdict::Refuse(error.into()),
            },
        };
        match earlier {
            None => {
                needs_write = true;
                outcomes.push(IngestOutcome {
                    id: event.id.clone(),
                    deliveries: delivery_count(event),
                    duplicate: false,
                });
            }
            Some(original) if original.matches(event) => outcomes.push(IngestOutcome {
                id: event.id.clone(),
                deliveries: original.deliveries,
                duplicate: true,
            }),
            Some(_) => {
                return Verdict::Refuse(IngestError::Conflict {
                    index,
                    id: event.id.clone(),
                });
            }
        }
    }
    Verdict::Accept { outcomes, needs_write }
}

/// What a resubmission is compared with.
struct Stored {
    event: String,
    tenant: Option<String>,
    ordering_key: Option<String>,
    data: Vec<u8>,
    created_at: String,
    deliveries: u32,
}

impl Stored {
    /// Same type, tenant and ordering key, byte-identical `data`, and the same
    /// `created_at` if the resubmission gives one (compared as instants).
    fn matches(&self, event: &NewEvent) -> bool {
        let same_time = || {
            let parse = |text: &str| OffsetDateTime::parse(text, &Rfc3339).ok();
            parse(&self.created_at).is_some() && parse(&self.created_at) == parse(&event.created_at)
        };
        self.event == event.event
            && self.tenant == event.tenant
            && self.ordering_key == event.ordering_key
            && self.data == event.body[event.data.clone()]
            && (!event.created_at_given || same_time())
    }
}

fn stored(db: &DB, id: &str) -> Result<Option<Stored>, Error> {
    let Some(value) = db.get_pinned_cf(column_family(db, cf::EVENTS), id)? else {
        return Ok(None);
    };
    let record = EventRecord::decode(&value)?;
    Ok(Some(Stored {
        data: record.data().to_vec(),
        event: record.meta.event,
        tenant: record.meta.tenant,
        ordering_key: record.meta.ordering_key,
        created_at: record.meta.created_at,
        deliveries: record.meta.deliveries,
    }))
}

fn delivery_count(event: &NewEvent) -> u32 {
    u32::try_from(event.endpoints.len()).expect("endpoints are few")
}

/// A write and its undoing: every put to `batch` is a delete in `undo`.
struct Undoable<'a> {
    db: &'a DB,
    batch: WriteBatch,
    undo: WriteBatch,
}

impl Undoable<'_> {
    fn put(&mut self, family: &str, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        let family = column_family(self.db, family);
        self.batch.put_cf(family, key.as_ref(), value);
        self.undo.delete_cf(family, key);
    }
}

/// Adds the event, its deliveries and their index entries to `write`; a
/// keyed delivery takes the next number of `sequence`.
fn add_event(write: &mut Undoable<'_>, event: &NewEvent, sequence: &mut u64) {
    let meta = EventMeta {
        event: event.event.clone(),
        created_at: event.created_at.clone(),
        received_at: event.received_at,
        deliveries: delivery_count(event),
        data_start: event.data.start,
        data_end: event.data.end,
        traceparent: event.traceparent.clone(),
        tenant: event.tenant.clone(),
        ordering_key: event.ordering_key.clone(),
    };
    write.put(cf::EVENTS, &event.id, EventRecord::encode_parts(&meta, &event.body));
    for endpoint in &event.endpoints {
        let id = keys::delivery_id(&event.id, endpoint);
        let mut delivery = DeliveryRecord::new(
            &event.id,
            endpoint,
            &event.event,
            event.tenant.as_deref(),
            event.received_at,
        );
        if let Some(key) = &event.ordering_key
            && event.keyed_endpoints.contains(endpoint)
        {
            // It waits, off the queue, until the change writer gives it
            // its turn (see super::ordering).
            let place = OrderPlace {
                key: key.clone(),
                seq: *sequence,
                waits: true,
            };
            *sequence += 1;
            write.put(
                rocksdb::DEFAULT_COLUMN_FAMILY_NAME,
                ordering::entry(endpoint, &place, &id),
                ordering::entry_value(&place),
            );
            delivery.order = Some(place);
        } else {
            write.put(cf::DUE, keys::endpoint_timed(endpoint, event.received_at, &id), []);
        }
        write.put(cf::DELIVERIES, &id, delivery.encode());
    }
    if !event.endpoints.is_empty() {
        write.put(cf::RECENT, keys::timed(event.received_at, &event.id), []);
    } else {
        write.put(
            cf::FINISHED,
            keys::finished(event.received_at, Finished::Event, &event.id),
            [],
        );
    }
}
