//! Which deliveries cluster mode parks ([`crate::cluster`]), read from the
//! `due` index: of each endpoint's queue, the deliveries due from a time
//! on (every one, or the long waits before a retry), or none, as the
//! caller says of the endpoint. Each queue is reached with one seek, so a
//! pass over many idle endpoints stays cheap. Failed deliveries are read
//! from the `failed` index, all of them. The parking itself is a
//! transition ([`super::lifecycle`]).

use rocksdb::{Direction, IteratorMode};

use super::keys;
use super::{Error, Store, cf, column_family};

/// What of an endpoint's queue to park.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Park {
    /// Those due at or after this time (ms); 0: every one.
    DueFrom(u64),
    /// None.
    Nothing,
}

/// A delivery to park, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parkable {
    pub id: String,
    pub endpoint: String,
    /// When it is due (what its parking transition expects), or for a
    /// failed one when it failed.
    pub due_ms: u64,
    /// Where a next read goes on from: just past this one's index entry.
    pub next: Vec<u8>,
}

impl Store {
    /// Up to `limit` deliveries to park, of each endpoint what `park`
    /// says. The read starts at `from` (empty, or the last one's
    /// [`Parkable::next`]), so a run of reads does not wade again through
    /// what the ones before let go.
    pub fn parkable(&self, park: &dyn Fn(&str) -> Park, from: &[u8], limit: usize) -> Result<Vec<Parkable>, Error> {
        let db = self.db()?;
        let mut found = Vec::new();
        let mut from: Vec<u8> = from.to_vec();
        while found.len() < limit {
            let Some(endpoint) = super::next_queue(&db, &from)? else {
                break;
            };
            let prefix = keys::endpoint_prefix(&endpoint);
            let park = park(&endpoint);
            let start = match park {
                Park::DueFrom(from_ms) => keys::endpoint_timed(&endpoint, from_ms, ""),
                Park::Nothing => {
                    from = keys::prefix_end(&prefix);
                    continue;
                }
            };
            let start = start.max(from.clone());
            let queue = db.iterator_cf(
                column_family(&db, cf::DUE),
                IteratorMode::From(&start, Direction::Forward),
            );
            for entry in queue {
                let (key, _) = entry?;
                if !key.starts_with(&prefix) || found.len() == limit {
                    break;
                }
                let (due_ms, id) = keys::split_endpoint_timed(&key).ok_or_else(|| Error::Corrupt("due key".into()))?;
                let mut next = key.to_vec();
                next.push(0);
                found.push(Parkable {
                    next,
                    id: id.to_owned(),
                    endpoint: endpoint.clone(),
                    due_ms,
                });
            }
            from = keys::prefix_end(&prefix);
        }
        Ok(found)
    }

    /// Up to `limit` failed deliveries, from `from` on (as for
    /// [`Store::parkable`]), every endpoint's.
    pub fn failed_parkable(&self, from: &[u8], limit: usize) -> Result<Vec<Parkable>, Error> {
        let db = self.db()?;
        let mut found = Vec::new();
        let failed = db.iterator_cf(
            column_family(&db, cf::FAILED),
            IteratorMode::From(from, Direction::Forward),
        );
        for entry in failed.take(limit) {
            let (key, _) = entry?;
            let corrupt = || Error::Corrupt("failed key".into());
            let endpoint_end = key.iter().position(|&b| b == 0).ok_or_else(corrupt)?;
            let (failed_at, id) = keys::split_endpoint_timed(&key).ok_or_else(corrupt)?;
            let mut next = key.to_vec();
            next.push(0);
            found.push(Parkable {
                id: id.to_owned(),
                endpoint: String::from_utf8_lossy(&key[..endpoint_end]).into_owned(),
                due_ms: failed_at,
                next,
            });
        }
        Ok(found)
    }
}
