//! Read-only queries for the admin API: deliveries newest first, with a
//! cursor, and per-endpoint counts.

use rocksdb::{Direction, IteratorMode};

use super::keys;
use super::records::DeliveryRecord;
use super::{Error, Store, cf, column_family};

impl Store {
    /// Visits deliveries newest first, starting strictly after `cursor` (a
    /// key this method handed out before), until `visit` returns false.
    /// `visit` gets the delivery's cursor, id and record.
    pub fn scan_recent(
        &self,
        cursor: Option<&[u8]>,
        mut visit: impl FnMut(&[u8], &str, DeliveryRecord) -> bool,
    ) -> Result<(), Error> {
        let db = self.db()?;
        let mode = match cursor {
            Some(cursor) => IteratorMode::From(cursor, Direction::Reverse),
            None => IteratorMode::End,
        };
        for entry in db.iterator_cf(column_family(&db, cf::RECENT), mode) {
            let (key, _) = entry?;
            if cursor == Some(&key[..]) {
                continue;
            }
            let Some((_, id)) = keys::split_timed(&key) else {
                return Err(Error::Corrupt("recent key".into()));
            };
            // A delivery removed by retention between the two reads is skipped.
            if let Some(record) = self.delivery(id)?
                && !visit(&key, id, record)
            {
                break;
            }
        }
        Ok(())
    }

    /// How many deliveries to `endpoint` are pending (waiting, paused or in
    /// flight), from the counts kept as work changes: no scan.
    pub fn pending_count(&self, endpoint: &str) -> usize {
        usize::try_from(self.counts.of(endpoint).0).unwrap_or(usize::MAX)
    }

    /// How many deliveries to `endpoint` are failed; no scan.
    pub fn failed_count(&self, endpoint: &str) -> usize {
        usize::try_from(self.counts.of(endpoint).1).unwrap_or(usize::MAX)
    }
}
