//! Read-only queries for the admin API: deliveries newest first, with a
//! cursor, and per-endpoint counts.
//!
//! The `recent` index has one entry per event (schema 1: per delivery),
//! so a listing reads an event's deliveries together, in the order of
//! their ids, highest first.

use rocksdb::{Direction, IteratorMode};

use super::keys;
use super::records::DeliveryRecord;
use super::{Error, Store, cf, column_family};

/// Where a listing stopped: a `recent` entry, and for an event's entry
/// (schema 2) the last delivery of the event visited. Encoded as the
/// entry's key, then a NUL and the delivery id.
struct Cursor<'a> {
    entry: &'a [u8],
    delivery: Option<String>,
}

impl<'a> Cursor<'a> {
    fn parse(cursor: &'a [u8]) -> Cursor<'a> {
        // The key's time may hold NULs; its id cannot.
        match cursor.iter().skip(8).position(|&byte| byte == 0) {
            Some(at) => Cursor {
                entry: &cursor[..8 + at],
                delivery: Some(String::from_utf8_lossy(&cursor[8 + at + 1..]).into_owned()),
            },
            None => Cursor {
                entry: cursor,
                delivery: None,
            },
        }
    }
}

impl Store {
    /// Visits deliveries newest first, starting strictly after `cursor` (a
    /// cursor this method handed out before), until `visit` returns false.
    /// `visit` gets the delivery's cursor, id and record.
    pub fn scan_recent(
        &self,
        cursor: Option<&[u8]>,
        mut visit: impl FnMut(&[u8], &str, DeliveryRecord) -> bool,
    ) -> Result<(), Error> {
        let db = self.db()?;
        let resume = cursor.map(Cursor::parse);
        if let Some(Cursor {
            entry,
            delivery: Some(last),
        }) = &resume
            && !self.visit_entry(entry, Some(last), &mut visit)?
        {
            return Ok(());
        }
        let mode = match &resume {
            Some(resume) => IteratorMode::From(resume.entry, Direction::Reverse),
            None => IteratorMode::End,
        };
        for entry in db.iterator_cf(column_family(&db, cf::RECENT), mode) {
            let (key, _) = entry?;
            if resume.as_ref().is_some_and(|resume| resume.entry == &key[..]) {
                continue;
            }
            if !self.visit_entry(&key, None, &mut visit)? {
                break;
            }
        }
        Ok(())
    }

    /// Visits the deliveries of one `recent` entry: an event's, newest
    /// (highest id) first, those before `last` only if it is given; or, in
    /// a store of schema 1, one delivery. Returns what `visit` last did.
    fn visit_entry(
        &self,
        key: &[u8],
        last: Option<&str>,
        visit: &mut impl FnMut(&[u8], &str, DeliveryRecord) -> bool,
    ) -> Result<bool, Error> {
        let Some((_, id)) = keys::split_timed(key) else {
            return Err(Error::Corrupt("recent key".into()));
        };
        // An event id holds no `.`; a delivery id does.
        if id.contains('.') {
            // A delivery removed by retention between the two reads is skipped.
            return Ok(match self.delivery(id)? {
                Some(record) => visit(key, id, record),
                None => true,
            });
        }
        let mut cursor = key.to_vec();
        cursor.push(0);
        for (delivery_id, record) in self.deliveries_of_event(id)?.into_iter().rev() {
            if last.is_some_and(|last| delivery_id.as_str() >= last) {
                continue;
            }
            cursor.truncate(key.len() + 1);
            cursor.extend_from_slice(delivery_id.as_bytes());
            if !visit(&cursor, &delivery_id, record) {
                return Ok(false);
            }
        }
        Ok(true)
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
