//! Each endpoint's attempts over the last day, for
//! `GET /v1/endpoints/{id}/stats` (SPEC 6), the dashboard's charts and
//! `hookd endpoints stats`: per minute for the last hour, per ten minutes
//! before that, attempts by result, deliveries succeeded and failed, and
//! latency p50 and p99.
//!
//! Kept in memory as attempts are recorded, and bounded: an endpoint holds
//! a slot only for a minute (or ten) in which it had attempts, at most 60
//! one-minute and 138 ten-minute slots, each with a fixed-size latency
//! sketch ([`Sketch`]); an endpoint without attempts in the last day holds
//! nothing. The figures are this replica's and start empty after a
//! restart: rebuilding them would mean reading a day of delivery records
//! at every start, for figures that fill again within the hour.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

const MINUTE_MS: u64 = 60_000;
/// Minutes kept one by one.
pub const FINE_MINUTES: u64 = 60;
/// The width of a slot older than [`FINE_MINUTES`].
pub const COARSE_MINUTES: u64 = 10;
/// The longest window.
pub const WINDOW_MINUTES: u64 = 24 * 60;

/// Latency buckets: bucket `i` holds latencies below 2^((i+1)/4) ms, so a
/// quantile read from the sketch is within 10% of the truth; the last
/// bucket holds everything from about 50 s on.
const BUCKETS: usize = 64;

/// A fixed-size latency histogram: 256 bytes, whatever the attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sketch {
    counts: [u32; BUCKETS],
}

impl Default for Sketch {
    fn default() -> Sketch {
        Sketch { counts: [0; BUCKETS] }
    }
}

impl Sketch {
    fn bucket(latency_ms: u64) -> usize {
        if latency_ms == 0 {
            return 0;
        }
        // 4 log2(latency), rounded down.
        let quarter_powers = (latency_ms as f64).log2() * 4.0;
        (quarter_powers.max(0.0) as usize).min(BUCKETS - 1)
    }

    fn record(&mut self, latency_ms: u64) {
        let bucket = &mut self.counts[Self::bucket(latency_ms)];
        *bucket = bucket.saturating_add(1);
    }

    fn merge(&mut self, other: &Sketch) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts) {
            *mine = mine.saturating_add(theirs);
        }
    }

    /// The latency below which `quantile` of the attempts fall, in ms (the
    /// middle of its bucket); `None` without attempts.
    pub fn quantile(&self, quantile: f64) -> Option<u64> {
        let total: u64 = self.counts.iter().map(|count| u64::from(*count)).sum();
        if total == 0 {
            return None;
        }
        let rank = ((total as f64) * quantile).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (bucket, count) in self.counts.iter().enumerate() {
            seen += u64::from(*count);
            if seen >= rank {
                if bucket == 0 {
                    return Some(0);
                }
                let low = 2f64.powf(bucket as f64 / 4.0);
                let high = 2f64.powf((bucket + 1) as f64 / 4.0);
                return Some(((low * high).sqrt()).round() as u64);
            }
        }
        None
    }
}

/// What one minute (or ten) of an endpoint's attempts came to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Slot {
    /// Its first minute, since the epoch.
    pub start_minute: u64,
    /// Attempts by result: `success` or an error kind.
    pub attempts: Vec<(String, u32)>,
    pub succeeded: u32,
    pub failed: u32,
    pub latency: Sketch,
}

impl Slot {
    fn new(start_minute: u64) -> Slot {
        Slot {
            start_minute,
            ..Slot::default()
        }
    }

    fn count(&mut self, result: &str, n: u32) {
        match self.attempts.iter_mut().find(|(known, _)| known == result) {
            Some((_, count)) => *count = count.saturating_add(n),
            None => self.attempts.push((result.to_owned(), n)),
        }
    }

    fn merge(&mut self, other: &Slot) {
        for (result, n) in &other.attempts {
            self.count(result, *n);
        }
        self.succeeded = self.succeeded.saturating_add(other.succeeded);
        self.failed = self.failed.saturating_add(other.failed);
        self.latency.merge(&other.latency);
    }
}

/// How an attempt ended, for the figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    No,
    Succeeded,
    Failed,
}

#[derive(Debug, Default)]
struct Slots {
    /// One-minute slots of the last hour, oldest first.
    fine: VecDeque<Slot>,
    /// Ten-minute slots before that, oldest first.
    coarse: VecDeque<Slot>,
}

impl Slots {
    /// Moves what is older than an hour at `minute` into ten-minute slots
    /// and drops what is older than a day.
    fn age(&mut self, minute: u64) {
        while let Some(oldest) = self.fine.front()
            && oldest.start_minute + FINE_MINUTES <= minute
        {
            let oldest = self.fine.pop_front().expect("a slot");
            let start = oldest.start_minute / COARSE_MINUTES * COARSE_MINUTES;
            match self.coarse.back_mut() {
                Some(slot) if slot.start_minute == start => slot.merge(&oldest),
                _ => {
                    let mut slot = Slot::new(start);
                    slot.merge(&oldest);
                    self.coarse.push_back(slot);
                }
            }
        }
        while self
            .coarse
            .front()
            .is_some_and(|oldest| oldest.start_minute + COARSE_MINUTES + WINDOW_MINUTES <= minute)
        {
            self.coarse.pop_front();
        }
    }

    fn is_empty(&self) -> bool {
        self.fine.is_empty() && self.coarse.is_empty()
    }
}

/// Every endpoint's figures.
#[derive(Debug, Default)]
pub struct Stats {
    endpoints: RwLock<HashMap<String, Arc<Mutex<Slots>>>>,
}

impl Stats {
    /// Notes an attempt of `endpoint` recorded at `now_ms`; `latency_ms`:
    /// none when it sent no request (it counts, but has no latency).
    pub fn record(&self, endpoint: &str, now_ms: u64, result: &str, latency_ms: Option<u64>, finished: Finished) {
        let slots = self.slots_of(endpoint);
        let mut slots = slots.lock().unwrap_or_else(PoisonError::into_inner);
        let minute = now_ms / MINUTE_MS;
        slots.age(minute);
        if slots.fine.back().is_none_or(|last| last.start_minute != minute) {
            slots.fine.push_back(Slot::new(minute));
        }
        let slot = slots.fine.back_mut().expect("a slot for this minute");
        slot.count(result, 1);
        if let Some(latency_ms) = latency_ms {
            slot.latency.record(latency_ms);
        }
        match finished {
            Finished::Succeeded => slot.succeeded = slot.succeeded.saturating_add(1),
            Finished::Failed => slot.failed = slot.failed.saturating_add(1),
            Finished::No => {}
        }
    }

    fn slots_of(&self, endpoint: &str) -> Arc<Mutex<Slots>> {
        if let Some(slots) = self
            .endpoints
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(endpoint)
        {
            return slots.clone();
        }
        self.endpoints
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(endpoint.to_owned())
            .or_default()
            .clone()
    }

    /// `endpoint`'s entries over the last `window_minutes` at `now_ms`,
    /// oldest first: one per ten minutes before the last hour, one per
    /// minute in it, empty ones included.
    pub fn entries(&self, endpoint: &str, now_ms: u64, window_minutes: u64) -> Vec<Slot> {
        let minute = now_ms / MINUTE_MS;
        let window = window_minutes.clamp(1, WINDOW_MINUTES);
        let first = minute + 1 - window.min(minute + 1);
        let fine_from = minute + 1 - FINE_MINUTES.min(minute + 1);
        let kept = self
            .endpoints
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(endpoint)
            .cloned();
        let (fine, coarse) = match kept {
            Some(slots) => {
                let mut slots = slots.lock().unwrap_or_else(PoisonError::into_inner);
                slots.age(minute);
                (slots.fine.clone(), slots.coarse.clone())
            }
            None => (VecDeque::new(), VecDeque::new()),
        };
        let mut entries = Vec::new();
        // Ten-minute entries for what lies before the last hour.
        let mut start = first / COARSE_MINUTES * COARSE_MINUTES;
        while first < fine_from && start < fine_from {
            entries.push(
                coarse
                    .iter()
                    .find(|slot| slot.start_minute == start)
                    .cloned()
                    .unwrap_or_else(|| Slot::new(start)),
            );
            start += COARSE_MINUTES;
        }
        for at in first.max(fine_from)..=minute {
            entries.push(
                fine.iter()
                    .find(|slot| slot.start_minute == at)
                    .cloned()
                    .unwrap_or_else(|| Slot::new(at)),
            );
        }
        entries
    }

    /// Forgets the endpoints without an attempt in the last day.
    pub fn prune(&self, now_ms: u64) {
        let minute = now_ms / MINUTE_MS;
        self.endpoints
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, slots| {
                let mut slots = slots.lock().unwrap_or_else(PoisonError::into_inner);
                slots.age(minute);
                !slots.is_empty()
            });
    }

    /// Forgets, every ten minutes, the endpoints without an attempt in the
    /// last day, until the task is dropped.
    pub async fn prune_forever(self: Arc<Self>) {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(600));
        loop {
            tick.tick().await;
            self.prune(crate::clock::now_ms());
        }
    }

    /// How many endpoints hold figures.
    pub fn endpoints(&self) -> usize {
        self.endpoints.read().unwrap_or_else(PoisonError::into_inner).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR_MS: u64 = 60 * MINUTE_MS;

    #[test]
    fn quantiles_are_within_ten_percent() {
        let mut sketch = Sketch::default();
        for latency in 1..=1000 {
            sketch.record(latency);
        }
        let p50 = sketch.quantile(0.5).unwrap() as f64;
        let p99 = sketch.quantile(0.99).unwrap() as f64;
        assert!((p50 - 500.0).abs() / 500.0 < 0.1, "{p50}");
        assert!((p99 - 990.0).abs() / 990.0 < 0.1, "{p99}");
        assert_eq!(Sketch::default().quantile(0.5), None);
    }

    #[test]
    fn the_last_hour_by_the_minute_the_rest_by_ten_minutes() {
        let stats = Stats::default();
        let start = 1_000 * 24 * HOUR_MS;
        // One attempt a minute for a day and a half.
        for minute in 0..36 * 60 {
            let at = start + minute * MINUTE_MS;
            let (result, finished) = if minute % 4 == 0 {
                ("status", Finished::Failed)
            } else {
                ("success", Finished::Succeeded)
            };
            stats.record("crm", at, result, Some(20), finished);
        }
        let now = start + (36 * 60 - 1) * MINUTE_MS;
        let hour = stats.entries("crm", now, 60);
        assert_eq!(hour.len(), 60);
        assert!(
            hour.iter()
                .all(|slot| slot.attempts.iter().map(|(_, n)| n).sum::<u32>() == 1)
        );
        let day = stats.entries("crm", now, WINDOW_MINUTES);
        assert_eq!(day.len(), 138 + 60);
        let coarse = &day[10];
        assert_eq!(coarse.succeeded + coarse.failed, 10, "{coarse:?}");
        assert_eq!(coarse.latency.quantile(0.5), Some(21));
        let windows: Vec<u64> = day
            .windows(2)
            .map(|pair| pair[1].start_minute - pair[0].start_minute)
            .collect();
        assert!(windows[..137].iter().all(|gap| *gap == 10) && windows[138..].iter().all(|gap| *gap == 1));
    }

    #[test]
    fn endpoints_without_attempts_in_a_day_hold_nothing() {
        let stats = Stats::default();
        stats.record("quiet", 0, "success", Some(5), Finished::Succeeded);
        stats.record("busy", 24 * HOUR_MS, "success", None, Finished::Succeeded);
        stats.prune(24 * HOUR_MS + 11 * MINUTE_MS);
        assert_eq!(stats.endpoints(), 1);
        assert!(
            stats
                .entries("never", 0, 60)
                .iter()
                .all(|slot| slot.attempts.is_empty())
        );
    }
}
