//! Per-endpoint counts of pending and failed deliveries, kept as work
//! changes and never scanned on a read: `/metrics`, the endpoint listing
//! and the dashboard cost the same with a backlog of a million as with an
//! empty queue.
//!
//! They are counted once, when the store opens (one pass over the `due` and
//! `failed` indexes), and then moved by the only two writers of delivery
//! state: ingest adds pending deliveries once its write is durable, and
//! the change writer ([`super::change_writer`]) moves a delivery's count
//! with each change, after its write. So a count never runs ahead of what
//! the store holds.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use rocksdb::{DB, IteratorMode};

use super::records::{DeliveryRecord, DeliveryStatus};
use super::{Error, cf, column_family};

/// One endpoint's counts.
#[derive(Debug, Default)]
struct EndpointCounts {
    pending: AtomicU64,
    failed: AtomicU64,
}

impl EndpointCounts {
    /// The counter of `share` (the pending one for [`Share::Neither`],
    /// which callers never ask for).
    fn of(&self, share: Share) -> &AtomicU64 {
        match share {
            Share::Failed => &self.failed,
            Share::Pending | Share::Neither => &self.pending,
        }
    }
}

/// Every endpoint's counts.
#[derive(Debug, Default)]
pub struct DeliveryCounts {
    endpoints: RwLock<HashMap<String, Arc<EndpointCounts>>>,
}

/// What a delivery adds to its endpoint's counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Share {
    Pending,
    Failed,
    Neither,
}

impl Share {
    fn of(record: &DeliveryRecord) -> Share {
        match record.status {
            DeliveryStatus::Pending => Share::Pending,
            DeliveryStatus::Failed => Share::Failed,
            DeliveryStatus::Succeeded => Share::Neither,
        }
    }
}

impl DeliveryCounts {
    /// Counts what `db` holds: one pass over the `due` and `failed` indexes.
    pub fn count(db: &DB) -> Result<DeliveryCounts, Error> {
        let counts = DeliveryCounts::default();
        for (name, share) in [(cf::DUE, Share::Pending), (cf::FAILED, Share::Failed)] {
            for entry in db.iterator_cf(column_family(db, name), IteratorMode::Start) {
                let (key, _) = entry?;
                let endpoint_end = key
                    .iter()
                    .position(|&b| b == 0)
                    .ok_or_else(|| Error::Corrupt(format!("{name} key")))?;
                let endpoint = String::from_utf8_lossy(&key[..endpoint_end]);
                counts.add(&endpoint, share, 1);
            }
        }
        // Keyed deliveries that wait for their key have no `due` entry.
        for waiting in super::ordering::waiting_entries(db) {
            counts.add(&waiting?.0, Share::Pending, 1);
        }
        Ok(counts)
    }

    /// `endpoint`'s pending and failed deliveries.
    pub fn of(&self, endpoint: &str) -> (u64, u64) {
        let endpoints = self.endpoints.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        endpoints.get(endpoint).map_or((0, 0), |counts| {
            (
                counts.pending.load(Ordering::Relaxed),
                counts.failed.load(Ordering::Relaxed),
            )
        })
    }

    /// Ingest stored `n` new pending deliveries to `endpoint`.
    pub fn added_pending(&self, endpoint: &str, n: u64) {
        self.add(endpoint, Share::Pending, n);
    }

    /// A delivery changed from `before` to `after` (`None`: absent).
    pub fn moved(&self, before: Option<&DeliveryRecord>, after: Option<&DeliveryRecord>) {
        let Some(endpoint) = before.or(after).map(|record| record.endpoint.as_str()) else {
            return;
        };
        let from = before.map_or(Share::Neither, Share::of);
        let to = after.map_or(Share::Neither, Share::of);
        if from != to {
            self.remove(endpoint, from);
            self.add(endpoint, to, 1);
        }
    }

    /// A pending delivery left its queue without a record to move (its
    /// record cannot be read).
    pub fn unqueued(&self, endpoint: &str) {
        self.remove(endpoint, Share::Pending);
    }

    fn add(&self, endpoint: &str, share: Share, n: u64) {
        if share != Share::Neither {
            self.endpoint(endpoint).of(share).fetch_add(n, Ordering::Relaxed);
        }
    }

    fn remove(&self, endpoint: &str, share: Share) {
        if share != Share::Neither {
            // Never below zero, whatever a damaged store held at open.
            let _ = self
                .endpoint(endpoint)
                .of(share)
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        }
    }

    fn endpoint(&self, endpoint: &str) -> Arc<EndpointCounts> {
        if let Some(counts) = self
            .endpoints
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(endpoint)
        {
            return counts.clone();
        }
        self.endpoints
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(endpoint.to_owned())
            .or_default()
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(endpoint: &str, status: DeliveryStatus) -> DeliveryRecord {
        DeliveryRecord {
            status,
            ..DeliveryRecord::new("evt_1", endpoint, "payment.completed", None, 0)
        }
    }

    #[test]
    fn counts_follow_each_change() {
        let counts = DeliveryCounts::default();
        counts.added_pending("a", 3);
        assert_eq!(counts.of("a"), (3, 0));
        let pending = record("a", DeliveryStatus::Pending);
        let failed = record("a", DeliveryStatus::Failed);
        let succeeded = record("a", DeliveryStatus::Succeeded);
        counts.moved(Some(&pending), Some(&failed));
        counts.moved(Some(&pending), Some(&succeeded));
        counts.moved(Some(&pending), Some(&pending));
        assert_eq!(counts.of("a"), (1, 1));
        counts.moved(Some(&failed), Some(&pending));
        assert_eq!(counts.of("a"), (2, 0));
        counts.moved(Some(&succeeded), None);
        counts.unqueued("a");
        assert_eq!(counts.of("a"), (1, 0));
        assert_eq!(counts.of("b"), (0, 0));
        counts.unqueued("b");
        assert_eq!(counts.of("b"), (0, 0), "never below zero");
    }
}
