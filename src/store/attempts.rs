//! Recording attempts: each outcome and the state change it causes, in one
//! atomic write.
//!
//! An attempt's record, the delivery's new state, and the move of its index
//! entry (to a later `due` time, or from `due` to `finished`) are written in
//! one batch. Until that write, the delivery's `due` entry stays where it
//! was, so an attempt cut short by a crash is simply due again, under the
//! same number.

use rocksdb::{DB, WriteBatch};
use serde::{Deserialize, Serialize};

use super::keys::{self, Finished};
use super::records::{DeliveryRecord, DeliveryStatus};
use super::{Durability, Error, Store, cf, column_family, with_prefix};

/// One attempt as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// 1-based.
    pub n: u32,
    /// When it was sent, ms since the epoch.
    pub at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    /// `None` on success; otherwise one of the SPEC's error kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<String>,
    pub latency_ms: u64,
    /// The first 1 KiB of the response body, lossily as UTF-8.
    #[serde(default)]
    pub response_snippet: String,
}

/// Where a delivery goes after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// Pending, due again at this time (ms).
    RetryAt(u64),
    Succeeded,
    Failed,
}

impl Store {
    /// Records `attempt` of delivery `id` and moves it to `next`, at `now_ms`.
    pub fn record_attempt(&self, id: &str, attempt: &AttemptRecord, next: NextStep, now_ms: u64) -> Result<(), Error> {
        let db = self.db()?;
        let _guard = self.lock_delivery(id);
        let mut record = self
            .delivery(id)?
            .ok_or_else(|| Error::Corrupt(format!("attempt for unknown delivery {id}")))?;
        let mut batch = WriteBatch::default();
        let mut value = vec![1u8];
        serde_json::to_writer(&mut value, attempt).expect("attempt records serialize");
        batch.put_cf(column_family(&db, cf::ATTEMPTS), keys::attempt(id, attempt.n), value);
        self.unindex(&db, &mut batch, id, &record);
        record.attempt_count = record.attempt_count.max(attempt.n);
        record.updated_at = now_ms;
        record.manual_retry = false;
        match next {
            NextStep::RetryAt(at) => {
                record.status = DeliveryStatus::Pending;
                record.next_attempt_at = at;
                record.finished_at = None;
            }
            NextStep::Succeeded | NextStep::Failed => {
                record.status = if next == NextStep::Succeeded {
                    DeliveryStatus::Succeeded
                } else {
                    DeliveryStatus::Failed
                };
                record.finished_at = Some(now_ms);
            }
        }
        self.index(&db, &mut batch, id, &record);
        batch.put_cf(column_family(&db, cf::DELIVERIES), id, record.encode());
        // Not synced: a process crash keeps it (the WAL is in the OS), and
        // a power cut that loses it only means the attempt is made again.
        self.write(&db, batch, Durability::Written)
    }

    /// Takes delivery `id` off `endpoint`'s queue (its `due` entry at
    /// `due_ms`) without touching its record: for a record that cannot be
    /// read, so it is not tried again and again. The record stays for an
    /// operator to look at.
    pub fn unqueue(&self, endpoint: &str, due_ms: u64, id: &str) -> Result<(), Error> {
        let db = self.db()?;
        let _guard = self.lock_delivery(id);
        let mut batch = WriteBatch::default();
        batch.delete_cf(column_family(&db, cf::DUE), keys::endpoint_timed(endpoint, due_ms, id));
        self.write(&db, batch, Durability::Written)
    }

    /// Every recorded attempt of a delivery, in order.
    pub fn attempts(&self, id: &str) -> Result<Vec<AttemptRecord>, Error> {
        let db = self.db()?;
        let mut attempts = Vec::new();
        for entry in with_prefix(&db, cf::ATTEMPTS, &keys::attempts_prefix(id)) {
            let (_, value) = entry?;
            let json = value
                .split_first()
                .filter(|(version, _)| **version == 1)
                .map(|(_, json)| json)
                .ok_or_else(|| Error::Corrupt("attempt record version".into()))?;
            attempts.push(serde_json::from_slice(json).map_err(|error| Error::Corrupt(error.to_string()))?);
        }
        Ok(attempts)
    }

    /// Deletes the index entries `record` has now: `due`, or `finished`
    /// (and `failed`).
    pub(super) fn unindex(&self, db: &DB, batch: &mut WriteBatch, id: &str, record: &DeliveryRecord) {
        match record.finished_at {
            Some(at) if record.status.is_finished() => {
                batch.delete_cf(
                    column_family(db, cf::FINISHED),
                    keys::finished(at, Finished::Delivery, id),
                );
                if record.status == DeliveryStatus::Failed {
                    batch.delete_cf(
                        column_family(db, cf::FAILED),
                        keys::endpoint_timed(&record.endpoint, at, id),
                    );
                }
            }
            _ => batch.delete_cf(
                column_family(db, cf::DUE),
                keys::endpoint_timed(&record.endpoint, record.next_attempt_at, id),
            ),
        }
    }

    /// Adds the index entries `record` needs: `due`, or `finished` (and
    /// `failed`).
    pub(super) fn index(&self, db: &DB, batch: &mut WriteBatch, id: &str, record: &DeliveryRecord) {
        match record.finished_at {
            Some(at) if record.status.is_finished() => {
                batch.put_cf(
                    column_family(db, cf::FINISHED),
                    keys::finished(at, Finished::Delivery, id),
                    [],
                );
                if record.status == DeliveryStatus::Failed {
                    batch.put_cf(
                        column_family(db, cf::FAILED),
                        keys::endpoint_timed(&record.endpoint, at, id),
                        [],
                    );
                }
            }
            _ => batch.put_cf(
                column_family(db, cf::DUE),
                keys::endpoint_timed(&record.endpoint, record.next_attempt_at, id),
                [],
            ),
        }
    }
}
