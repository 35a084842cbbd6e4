//! The durable store: RocksDB holding events, their deliveries and the
//! indexes the scheduler and the admin API read.
//!
//! # Key layout
//!
//! | column family | key | value |
//! |---|---|---|
//! | `default` | `schema_version` | `2` |
//! | `default` | `paused/{endpoint_id}` (an operator's pause) | empty |
//! | `events` | event id | [`EventRecord`]: metadata, then the wire body |
//! | `deliveries` | `{event_id}.{endpoint_id}` | [`DeliveryRecord`] |
//! | `attempts` | delivery id, NUL, attempt number (u32 BE) | attempt record (schema 1 only; see below) |
//! | `due` | endpoint id, NUL, next attempt time (ms, u64 BE), delivery id | empty |
//! | `recent` | creation time (ms, u64 BE), event id | empty |
//! | `finished` | finish time (ms, u64 BE), `d` or `e`, id | empty |
//! | `failed` | endpoint id, NUL, failure time (ms, u64 BE), delivery id | empty |
//!
//! # Invariants
//!
//! - An event and all its deliveries and index entries are written in one
//!   atomic `WriteBatch` with the write-ahead log synced before ingest
//!   answers: an acknowledged event is never partly stored.
//! - A pending delivery has exactly one `due` entry, at its
//!   `next_attempt_at`; a finished one has none, and one `finished` entry;
//!   a failed one also has one `failed` entry (for counts and bulk retry).
//! - Every event with deliveries has one `recent` entry, at its
//!   deliveries' `created_at`; it goes with the event.
//! - An event with no deliveries has a `finished` entry of kind `e` from
//!   the moment it is stored, so retention removes it too.
//! - Only the writer thread ([`writer`]) adds events, so the check for an
//!   existing id and the write that follows cannot race; only the change
//!   writer thread ([`change_writer`]) changes a delivery, so a change's
//!   check of the state it expects and its write cannot race either.
//!
//! # Schema 1
//!
//! A store written by a hookd of schema 1 is opened as it is, and marked
//! schema 2 (so that hookd refuses it afterwards). Its delivery records
//! (format 1) keep their attempts in the `attempts` column family and have
//! a `recent` entry each, keyed by delivery id; both are read where they
//! are, and a record's first change moves its attempts into it. Nothing is
//! rewritten on open.
//!
//! # Recovery
//!
//! RocksDB replays its write-ahead log on open. A torn record at a log's
//! tail (a crash mid-write) is dropped, and with it only a write that was
//! never acknowledged. Damage anywhere else (a corrupt record in the middle
//! of a log, a missing table file) refuses the open with
//! [`Error::Damaged`]: starting would silently lose what follows it.
//!
//! There is no separate "in flight" state to repair: a delivery stays in
//! `due` until its attempt's outcome is recorded, so one in flight at a
//! crash is simply due again.
//!
//! After a failed write (a full disk) RocksDB refuses all writes until it
//! is reopened; [`Store::recover`] does that in place, and every clone of
//! the handle sees the reopened database.
//!
//! # Growth
//!
//! [`retention`] removes finished deliveries and their events once they are
//! older than `storage.retention`. The `due` and `finished` indexes are
//! deleted from as fast as they are written; their column families compact
//! files that fill with tombstones early, and scans use iterator bounds, so
//! they do not wade through deleted entries.

mod attempts;
mod change_writer;
mod circuits;
mod counts;
mod keys;
mod lifecycle;
mod operator;
mod ordering;
mod parking;
mod queries;
mod records;
mod retention;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamilyDescriptor, DB, DBRecoveryMode, Direction, IteratorMode, Options,
    ReadOptions, WriteBatch, WriteBufferManager, WriteOptions,
};

pub use attempts::{AttemptRecord, NextStep};
pub use circuits::OpenCircuit;
pub use keys::delivery_id;
pub use lifecycle::{Applied, Change, Expect, Transition};
pub use operator::RetryError;
pub use ordering::OrderPlace;
pub use parking::{Park, Parkable};
pub use records::{DeliveryRecord, DeliveryStatus, EventMeta, EventRecord};
pub use retention::SweepStats;
pub use writer::{IngestError, IngestOutcome, NewEvent, WriteStats};

const SCHEMA_VERSION_KEY: &[u8] = b"schema_version";
/// Schema 2 keeps attempts inside delivery records and one `recent`
/// entry per event.
const SCHEMA_VERSION: &[u8] = b"2";
/// Attempts apart, a `recent` entry per delivery; read as it is.
const SCHEMA_VERSION_1: &[u8] = b"1";

/// Column family names.
mod cf {
    pub const EVENTS: &str = "events";
    pub const DELIVERIES: &str = "deliveries";
    pub const ATTEMPTS: &str = "attempts";
    pub const DUE: &str = "due";
    pub const RECENT: &str = "recent";
    pub const FINISHED: &str = "finished";
    pub const FAILED: &str = "failed";
    pub const ALL: [&str; 7] = [EVENTS, DELIVERIES, ATTEMPTS, DUE, RECENT, FINISHED, FAILED];
}

/// Errors from the store.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("RocksDB: {0}")]
    Db(#[from] rocksdb::Error),
    #[error("corrupt record: {0}")]
    Corrupt(String),
    #[error("the store is closed")]
    Closed,
    #[error("the store is reopening after a failed write")]
    Reopening,
    #[error("{0}")]
    Incompatible(String),
    #[error(
        "the store is damaged ({0}); hookd will not start on it. Restore storage.path from a backup, \
         or move it away to start with an empty store (and lose what it holds)"
    )]
    Damaged(String),
}

/// How long [`Store::recover`] waits for reads of the old database to end.
const REOPEN_PATIENCE: Duration = Duration::from_secs(30);

/// A handle to the open store; clones share it.
#[derive(Clone)]
pub struct Store {
    /// `None` while [`Store::recover`] reopens it.
    db: Arc<RwLock<Option<Arc<DB>>>>,
    path: Arc<PathBuf>,
    writer: Arc<RwLock<Option<writer::Writer>>>,
    /// Set by a failed write: RocksDB refuses every write after one fails
    /// (a full disk, an I/O error) until it is reopened.
    failed: Arc<AtomicBool>,
    closed: Arc<AtomicBool>,
    counters: Arc<writer::Counters>,
    /// Pending and failed deliveries per endpoint, kept as work changes.
    counts: Arc<counts::DeliveryCounts>,
    /// Undoing batches of ingest writes that failed, applied by
    /// [`Store::recover`] before the reopened store is used.
    undo: Arc<Mutex<Vec<WriteBatch>>>,
    /// The only writer of delivery state ([`change_writer`]).
    changes: Arc<RwLock<Option<change_writer::ChangeWriter>>>,
    /// Told of each change the change writer made.
    change_observer: Arc<RwLock<Option<change_writer::ChangeObserver>>>,
}

/// What one read of an endpoint's queue found; see [`Store::due_scan`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DueScan {
    /// (due time, delivery id), earliest first.
    pub due: Vec<(u64, String)>,
    /// When the first delivery due later is due, if the read got that far.
    pub next_at: Option<u64>,
}

/// Entry counts per column family, from full scans: for tests and
/// diagnostics, not for hot paths.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub events: usize,
    pub deliveries: usize,
    pub attempts: usize,
    pub due: usize,
    pub recent: usize,
    pub finished: usize,
    pub failed: usize,
}

impl Store {
    /// Opens (or creates) the store at `path` and starts its writer.
    pub fn open(path: &Path) -> Result<Store, Error> {
        let db = Arc::new(open_db(path)?);
        release_stranded(&db)?;
        let counters = Arc::new(writer::Counters::default());
        let counts = Arc::new(counts::DeliveryCounts::count(&db)?);
        let failed = Arc::new(AtomicBool::new(false));
        let undo = Arc::default();
        let shared = writer::Shared {
            counters: counters.clone(),
            counts: counts.clone(),
            failed: failed.clone(),
            undo: Arc::clone(&undo),
        };
        let writer = writer::Writer::start(Arc::downgrade(&db), shared)?;
        let change_observer = Arc::default();
        let changes = change_writer::ChangeWriter::start(
            Arc::downgrade(&db),
            change_writer::Shared {
                counts: counts.clone(),
                failed: failed.clone(),
                observer: Arc::clone(&change_observer),
            },
        )?;
        Ok(Store {
            db: Arc::new(RwLock::new(Some(db))),
            path: Arc::new(path.to_owned()),
            writer: Arc::new(RwLock::new(Some(writer))),
            failed,
            closed: Arc::new(AtomicBool::new(false)),
            counters,
            counts,
            undo,
            changes: Arc::new(RwLock::new(Some(changes))),
            change_observer,
        })
    }

    /// Whether the store takes writes: open, and no write has failed since
    /// the last [`Store::recover`].
    pub fn is_writable(&self) -> bool {
        !self.closed.load(Ordering::SeqCst) && !self.failed.load(Ordering::SeqCst)
    }

    /// Whether a write failed and [`Store::recover`] should run.
    pub fn needs_recovery(&self) -> bool {
        self.failed.load(Ordering::SeqCst) && !self.closed.load(Ordering::SeqCst)
    }

    /// After a failed write, closes and reopens the database: RocksDB keeps
    /// refusing writes after one failed until then. Nothing synced is lost
    /// (the reopen replays the write-ahead log, dropping only a torn tail
    /// that was never acknowledged). While the cause lasts (the disk is
    /// still full) the reopen or the next write fails, and this is called
    /// again later. Reads and writes in the meantime get
    /// [`Error::Reopening`].
    ///
    /// Runs from one task at a time. Holds no lock while it waits, so
    /// ingest meanwhile gets [`Error::Reopening`] at once rather than
    /// blocking.
    pub fn recover(&self) -> Result<(), Error> {
        if !self.needs_recovery() {
            return Ok(());
        }
        self.stop_writers();
        let old = self.db.write().expect("db lock").take();
        if let Some(old) = old
            && let Err(old) = wait_until_unshared(old, REOPEN_PATIENCE)
        {
            *self.db.write().expect("db lock") = Some(old);
            return Err(Error::Reopening);
        }
        let db = Arc::new(open_db(&self.path)?);
        self.undo_failed_writes(&db)?;
        release_stranded(&db)?;
        let started = writer::Writer::start(Arc::downgrade(&db), self.writer_shared())?;
        let changes = change_writer::ChangeWriter::start(Arc::downgrade(&db), self.change_writer_shared())?;
        let mut writer = self.writer.write().expect("writer lock");
        if self.closed.load(Ordering::SeqCst) {
            // `close` ran meanwhile: leave the store closed.
            drop(writer);
            started.stop();
            changes.stop();
            return Err(Error::Closed);
        }
        *writer = Some(started);
        *self.changes.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(changes);
        *self.db.write().expect("db lock") = Some(db);
        self.failed.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// What the writer thread shares with this handle.
    fn writer_shared(&self) -> writer::Shared {
        writer::Shared {
            counters: self.counters.clone(),
            counts: self.counts.clone(),
            failed: self.failed.clone(),
            undo: self.undo.clone(),
        }
    }

    /// What the change writer shares with this handle.
    fn change_writer_shared(&self) -> change_writer::Shared {
        change_writer::Shared {
            counts: self.counts.clone(),
            failed: self.failed.clone(),
            observer: self.change_observer.clone(),
        }
    }

    /// Stops both writer threads, once each has answered what is queued.
    fn stop_writers(&self) {
        let writer = self.writer.write().expect("writer lock").take();
        if let Some(writer) = writer {
            writer.stop();
        }
        let changes = self
            .changes
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(changes) = changes {
            changes.stop();
        }
    }

    /// The error for a use of a store that is closed or reopening.
    fn unavailable(&self) -> Error {
        if self.closed.load(Ordering::SeqCst) {
            Error::Closed
        } else {
            Error::Reopening
        }
    }

    /// Removes, synced, what ingest writes that failed may have left in the
    /// log (RocksDB replays a record that reached the file unsynced), so an
    /// event answered with an error is never delivered or found later.
    fn undo_failed_writes(&self, db: &DB) -> Result<(), Error> {
        let mut undo = self.undo.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        while let Some(batch) = undo.pop() {
            if let Err(error) = write(db, batch, Durability::Synced) {
                tracing::error!(%error, "cannot undo a failed ingest write yet");
                return Err(Error::Reopening);
            }
        }
        Ok(())
    }

    /// Stops the writer after it has answered everything queued, and flushes
    /// memtables so the next start replays little. Idempotent.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.stop_writers();
        if let Ok(db) = self.db()
            && let Err(error) = db.flush()
        {
            tracing::warn!(%error, "flushing the store on close failed; the next start replays the log");
        }
    }

    /// Stores `events` atomically (all or none) with their deliveries; see
    /// [`writer`] for idempotency and group commit.
    pub async fn ingest(&self, events: Vec<NewEvent>) -> Result<Vec<IngestOutcome>, IngestError> {
        let sender = self
            .writer
            .read()
            .expect("writer lock")
            .as_ref()
            .map(writer::Writer::sender)
            .ok_or_else(|| IngestError::Store(self.unavailable()))?;
        let keyed: Vec<String> = events
            .iter()
            .filter(|event| event.ordering_key.is_some())
            .flat_map(|event| {
                event
                    .keyed_endpoints
                    .iter()
                    .map(|endpoint| keys::delivery_id(&event.id, endpoint))
            })
            .collect();
        let outcomes = writer::submit(&sender, events).await?;
        if !keyed.is_empty() {
            // A duplicate's deliveries took their turn when first stored:
            // this one finds them not waiting, and changes nothing.
            self.take_turns(keyed, false).await;
        }
        Ok(outcomes)
    }

    /// Makes each of `ids` that waits for its key due, if no earlier one of
    /// its key is pending (or at all, when `unordered`); see
    /// [`ordering`]. A failure is logged: the turn is taken at the next
    /// open.
    pub async fn take_turns(&self, ids: Vec<String>, unordered: bool) {
        let now_ms = crate::clock::now_ms();
        let transitions = ids
            .into_iter()
            .map(|id| Transition {
                id,
                expect: Expect::Waiting,
                change: Change::TakeTurn { unordered },
                now_ms,
            })
            .collect();
        for result in self.apply_all(transitions).await {
            if let Err(error) = result {
                tracing::error!(%error, "a keyed delivery could not take its turn; it will at the next start");
            }
        }
    }

    /// Synced writes and the new events they stored, since open.
    pub fn write_stats(&self) -> WriteStats {
        self.counters.snapshot()
    }

    /// Calls `observe` with the time of each synced ingest write (one group
    /// commit), for the metrics; the last observer set is the one called.
    pub fn on_synced_write(&self, observe: impl Fn(Duration) + Send + Sync + 'static) {
        self.counters.observe_writes(Arc::new(observe));
    }

    pub fn event(&self, id: &str) -> Result<Option<EventRecord>, Error> {
        let db = self.db()?;
        db.get_pinned_cf(column_family(&db, cf::EVENTS), id)?
            .map(|value| EventRecord::decode(&value))
            .transpose()
    }

    pub fn delivery(&self, id: &str) -> Result<Option<DeliveryRecord>, Error> {
        let db = self.db()?;
        db.get_pinned_cf(column_family(&db, cf::DELIVERIES), id)?
            .map(|value| DeliveryRecord::decode(&value))
            .transpose()
    }

    /// Every delivery of one event, by delivery id.
    pub fn deliveries_of_event(&self, event_id: &str) -> Result<Vec<(String, DeliveryRecord)>, Error> {
        let db = self.db()?;
        let mut found = Vec::new();
        for entry in with_prefix(&db, cf::DELIVERIES, &keys::deliveries_prefix(event_id)) {
            let (key, value) = entry?;
            let id = String::from_utf8_lossy(&key).into_owned();
            found.push((id, DeliveryRecord::decode(&value)?));
        }
        Ok(found)
    }

    /// Up to `limit` deliveries to `endpoint` due at or before `now_ms`,
    /// earliest first, as (due time, delivery id).
    pub fn due(&self, endpoint: &str, now_ms: u64, limit: usize) -> Result<Vec<(u64, String)>, Error> {
        self.due_between(endpoint, 0, now_ms, limit)
    }

    /// Like [`Store::due`], starting at `from_ms`: the scheduler's cursor,
    /// so it does not re-read entries it already handed out.
    pub fn due_between(
        &self,
        endpoint: &str,
        from_ms: u64,
        now_ms: u64,
        limit: usize,
    ) -> Result<Vec<(u64, String)>, Error> {
        Ok(self.due_scan(endpoint, from_ms, now_ms, limit)?.due)
    }

    /// One read of `endpoint`'s queue from `from_ms`: up to `limit`
    /// deliveries due at or before `now_ms`, and when the first one due
    /// after `now_ms` is due (known when fewer than `limit` were due).
    pub fn due_scan(&self, endpoint: &str, from_ms: u64, now_ms: u64, limit: usize) -> Result<DueScan, Error> {
        let db = self.db()?;
        let mut read = ReadOptions::default();
        read.set_iterate_lower_bound(keys::endpoint_timed(endpoint, from_ms, ""));
        read.set_iterate_upper_bound(keys::prefix_end(&keys::endpoint_prefix(endpoint)));
        let mut scan = DueScan::default();
        for entry in db.iterator_cf_opt(column_family(&db, cf::DUE), read, IteratorMode::Start) {
            let (key, _) = entry?;
            let (at, id) = keys::split_endpoint_timed(&key).ok_or_else(|| Error::Corrupt("due key".into()))?;
            if at > now_ms {
                scan.next_at = Some(at);
                break;
            }
            if scan.due.len() == limit {
                break;
            }
            scan.due.push((at, id.to_owned()));
        }
        Ok(scan)
    }

    /// Removes what finished before `now_ms - retention_ms`; see [`retention`].
    pub fn sweep(&self, now_ms: u64, retention_ms: u64) -> Result<SweepStats, Error> {
        retention::sweep(self, now_ms.saturating_sub(retention_ms))
    }

    /// The deliveries that have waited since before `now_ms - retention_ms`
    /// on endpoints that are not `active`, as (delivery id, due time).
    pub fn waiting_too_long(
        &self,
        active: &dyn Fn(&str) -> bool,
        now_ms: u64,
        retention_ms: u64,
    ) -> Result<Vec<(String, u64)>, Error> {
        retention::waiting_before(self, active, now_ms.saturating_sub(retention_ms))
    }

    /// Counts every entry; a full scan.
    pub fn counts(&self) -> Result<Counts, Error> {
        let db = self.db()?;
        let count = |name: &str| -> Result<usize, Error> {
            let mut total = 0;
            for entry in db.iterator_cf(column_family(&db, name), IteratorMode::Start) {
                entry?;
                total += 1;
            }
            Ok(total)
        };
        Ok(Counts {
            events: count(cf::EVENTS)?,
            deliveries: count(cf::DELIVERIES)?,
            attempts: count(cf::ATTEMPTS)?,
            due: count(cf::DUE)?,
            recent: count(cf::RECENT)?,
            finished: count(cf::FINISHED)?,
            failed: count(cf::FAILED)?,
        })
    }

    /// Takes delivery `id` off `endpoint`'s queue (its `due` entry at
    /// `due_ms`) without touching its record: for a record that cannot be
    /// read, so it is not tried again and again (no transition can apply
    /// to it). The record stays for an operator to look at.
    pub fn unqueue(&self, endpoint: &str, due_ms: u64, id: &str) -> Result<(), Error> {
        let db = self.db()?;
        let mut batch = WriteBatch::default();
        batch.delete_cf(column_family(&db, cf::DUE), keys::endpoint_timed(endpoint, due_ms, id));
        self.write(&db, batch, Durability::Written)?;
        self.counts.unqueued(endpoint);
        Ok(())
    }

    /// The open database, for one operation.
    fn db(&self) -> Result<Arc<DB>, Error> {
        match self.db.read().expect("db lock").as_ref() {
            Some(db) => Ok(db.clone()),
            None if self.closed.load(Ordering::SeqCst) => Err(Error::Closed),
            None => Err(Error::Reopening),
        }
    }

    /// Writes `batch`, synced to disk when `durability` says so; a failure
    /// marks the store for [`Store::recover`].
    fn write(&self, db: &DB, batch: WriteBatch, durability: Durability) -> Result<(), Error> {
        write(db, batch, durability).map_err(|error| {
            self.failed.store(true, Ordering::SeqCst);
            Error::from(error)
        })
    }
}

/// Whether a write must be on disk before it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Durability {
    /// Synced: survives a power cut.
    Synced,
    /// In the operating system's page cache: survives the process dying.
    Written,
}

/// Writes `batch`, with the write-ahead log synced in the write for
/// [`Durability::Synced`]: RocksDB applies a synced write to its memtables
/// only once the log is on disk, so if the sync fails nothing can read
/// what was written (and [`Store::recover`] undoes what the log may still
/// hold).
fn write(db: &DB, batch: WriteBatch, durability: Durability) -> Result<(), rocksdb::Error> {
    let mut options = WriteOptions::default();
    options.set_sync(durability == Durability::Synced);
    db.write_opt(batch, &options)
}

/// Opens the database with every column family, and checks its schema.
fn open_db(path: &Path) -> Result<DB, Error> {
    let mut options = Options::default();
    options.create_if_missing(true);
    options.create_missing_column_families(true);
    // A torn write at a log's tail (a crash mid-write, never acknowledged)
    // is dropped; damage anywhere else refuses the open rather than
    // silently dropping what follows it.
    options.set_wal_recovery_mode(DBRecoveryMode::TolerateCorruptedTailRecords);
    options.set_max_background_jobs(2);
    // Flushes and compactions run below the threads that serve ingest and
    // delivery: on a small machine a flush's CPU burst otherwise preempts
    // them and shows as a latency spike of tens of milliseconds.
    let mut env = rocksdb::Env::new()?;
    env.lower_thread_pool_cpu_priority();
    env.lower_high_priority_thread_pool_cpu_priority();
    options.set_env(&env);
    options.set_keep_log_file_num(5);
    options.set_max_log_file_size(8 << 20);
    // Memory stays bounded however large the queue and the retention
    // window: one cache holds data blocks and (charged against it) every
    // column family's memtables, which are flushed once they pass
    // MEMTABLE_BUDGET together; at most MAX_OPEN_FILES table files keep
    // their index and filter blocks in memory.
    let cache = Cache::new_lru_cache(ROCKSDB_MEMORY);
    options.set_write_buffer_manager(&WriteBufferManager::new_write_buffer_manager_with_cache(
        MEMTABLE_BUDGET,
        false,
        cache.clone(),
    ));
    options.set_max_open_files(MAX_OPEN_FILES);
    bound_memory(&mut options, &cache);
    let descriptors = cf::ALL
        .iter()
        .map(|name| ColumnFamilyDescriptor::new(*name, cf_options(name, &cache)));
    let db = DB::open_cf_descriptors(&options, path, descriptors).map_err(|error| {
        // A corrupt record, or a file the manifest lists that is missing.
        if error.kind() == rocksdb::ErrorKind::Corruption || error.to_string().contains("No such file") {
            Error::Damaged(error.to_string())
        } else {
            Error::Db(error)
        }
    })?;
    check_schema(&db)?;
    Ok(db)
}

/// Lets go the keyed deliveries whose turn a crash (or a failed write)
/// kept from being taken ([`ordering::release_stranded`]).
fn release_stranded(db: &DB) -> Result<(), Error> {
    let released = ordering::release_stranded(db, crate::clock::now_ms())?;
    if released > 0 {
        tracing::info!(
            deliveries = released,
            "keyed deliveries whose turn was never taken are due"
        );
    }
    Ok(())
}

/// Takes sole ownership of `db` and closes it, once the reads that hold it
/// end; gives it back after `patience`.
fn wait_until_unshared(mut db: Arc<DB>, patience: Duration) -> Result<(), Arc<DB>> {
    let deadline = Instant::now() + patience;
    loop {
        match Arc::try_unwrap(db) {
            Ok(db) => {
                drop(db);
                return Ok(());
            }
            Err(shared) if Instant::now() < deadline => {
                db = shared;
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(shared) => return Err(shared),
        }
    }
}

/// The entries of column family `name` whose keys start with `prefix`, in
/// key order; the iterator stops at the prefix's end.
fn with_prefix<'a>(db: &'a DB, name: &str, prefix: &[u8]) -> rocksdb::DBIteratorWithThreadMode<'a, DB> {
    let mut read = ReadOptions::default();
    read.set_iterate_upper_bound(keys::prefix_end(prefix));
    db.iterator_cf_opt(
        column_family(db, name),
        read,
        IteratorMode::From(prefix, Direction::Forward),
    )
}

/// A column family that `open` created; its absence is a bug.
/// The endpoint of the first `due` entry at or after `from`: the next
/// queue, for a walk over every endpoint's queue with one seek each.
fn next_queue(db: &DB, from: &[u8]) -> Result<Option<String>, Error> {
    let mut first = db.iterator_cf(column_family(db, cf::DUE), IteratorMode::From(from, Direction::Forward));
    let Some(entry) = first.next() else {
        return Ok(None);
    };
    let (key, _) = entry?;
    let endpoint_end = key
        .iter()
        .position(|&b| b == 0)
        .ok_or_else(|| Error::Corrupt("due key".into()))?;
    Ok(Some(String::from_utf8_lossy(&key[..endpoint_end]).into_owned()))
}

fn column_family<'a>(db: &'a DB, name: &str) -> &'a rocksdb::ColumnFamily {
    db.cf_handle(name)
        .unwrap_or_else(|| panic!("column family {name} is created at open"))
}

/// RocksDB's memory that grows with load: memtables and data blocks.
const ROCKSDB_MEMORY: usize = 64 << 20;
/// Table files open at once, each holding its index and filter blocks
/// (well under 1% of its size): 512 files of up to 64 MiB is 32 GiB of store
/// before a file must be closed to open another.
const MAX_OPEN_FILES: i32 = 512;
/// What every column family's memtables may hold together (part of
/// `ROCKSDB_MEMORY`).
const MEMTABLE_BUDGET: usize = 32 << 20;
/// One memtable of one column family, before it is flushed.
const MEMTABLE_SIZE: usize = 8 << 20;

/// Small memtables and the shared cache, for one column family.
fn bound_memory(options: &mut Options, cache: &Cache) {
    options.set_write_buffer_size(MEMTABLE_SIZE);
    let mut table = BlockBasedOptions::default();
    // Index and filter blocks stay with their open table files, outside
    // the cache: in the cache, every point read (each new id is looked up
    // before it is stored) paid a cache lookup per file, and batched ingest
    // ran at two thirds of the speed. Their memory is bounded by
    // MAX_OPEN_FILES instead.
    table.set_block_cache(cache);
    // Point reads (a delivery, its event) skip the files that cannot hold
    // the key, however many files a large queue has.
    table.set_bloom_filter(10.0, false);
    options.set_block_based_table_factory(&table);
}

fn cf_options(name: &str, cache: &Cache) -> Options {
    let mut options = Options::default();
    bound_memory(&mut options, cache);
    match name {
        cf::EVENTS | cf::ATTEMPTS => options.set_compression_type(rocksdb::DBCompressionType::Lz4),
        // Index entries are deleted as fast as they are written; files that
        // fill with tombstones are compacted early so scans stay cheap.
        cf::DUE | cf::FINISHED => options.add_compact_on_deletion_collector_factory(1024, 256, 0.5),
        _ => {}
    }
    options
}

/// Writes the schema version on a new store; upgrades a store of schema 1
/// (whose records this hookd reads as they are: see [`records`]), so a
/// hookd of schema 1 refuses it from then on rather than misread what
/// this one writes; refuses a store written in a format this hookd does
/// not know.
fn check_schema(db: &DB) -> Result<(), Error> {
    let mut synced = rocksdb::WriteOptions::default();
    synced.set_sync(true);
    match db.get(SCHEMA_VERSION_KEY)? {
        None => {
            db.put_opt(SCHEMA_VERSION_KEY, SCHEMA_VERSION, &synced)?;
            Ok(())
        }
        Some(version) if version == SCHEMA_VERSION => Ok(()),
        Some(version) if version == SCHEMA_VERSION_1 => {
            tracing::info!("the store has schema version 1: upgrading it to 2 in place (no record is rewritten)");
            db.put_opt(SCHEMA_VERSION_KEY, SCHEMA_VERSION, &synced)?;
            Ok(())
        }
        Some(version) => Err(Error::Incompatible(format!(
            "the store has schema version {}, this hookd reads versions 1 and {}",
            String::from_utf8_lossy(&version),
            String::from_utf8_lossy(SCHEMA_VERSION)
        ))),
    }
}
