//! Each endpoint's attempts over the last day, for
//! `GET /v1/endpoints/{id}/stats` (SPEC 6), the dashboard's charts and
//! `hookd endpoints stats`: per minute for the last hour, per ten minutes
//! before that, attempts by result, deliveries succeeded and failed, and
//! latency p50 and p99, and the periods in which its circuit was open.
//!
//! Kept in memory as attempts are recorded, and bounded: each attempt
//! counts in its minute and in its ten minutes at once, into the two
//! tallies under way, each with a fixed-size latency sketch ([`Sketch`],
//! 256 bytes); a tally that is over keeps its counts and its p50 and p99
//! only (68 bytes). An endpoint holds tallies only for the minutes (and
//! ten minutes) in which it had attempts: at most 70 and 145, about 15 KiB
//! with the sketches; one without attempts in the last day holds nothing. The figures are this replica's and start empty after a
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

/// The results an attempt can have, in the order entries list them.
const RESULTS: [&str; 13] = [
    "success",
    "status",
    "timeout",
    "connect",
    "tls",
    "dns",
    "blocked_destination",
    "redirect",
    "io",
    "expired",
    "corrupt_record",
    "tenant_mismatch",
    "circuit_open",
];
/// A tally's latency quantile when it has none.
const NO_LATENCY: u16 = u16::MAX;

/// What one minute (or ten) of an endpoint's attempts came to, once it is
/// over: 68 bytes, whatever the attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tally {
    start_minute: u32,
    attempts: [u32; RESULTS.len()],
    succeeded: u32,
    failed: u32,
    /// In ms, up to 65,534; [`NO_LATENCY`] without requests.
    p50: u16,
    p99: u16,
}

impl Tally {
    fn new(start_minute: u64) -> Tally {
        Tally {
            start_minute: u32::try_from(start_minute).unwrap_or(u32::MAX),
            attempts: [0; RESULTS.len()],
            succeeded: 0,
            failed: 0,
            p50: NO_LATENCY,
            p99: NO_LATENCY,
        }
    }
}

/// The minute (or ten) under way: its tally, and the sketch its quantiles
/// are read from when it is over.
#[derive(Debug)]
struct Open {
    tally: Tally,
    sketch: Box<Sketch>,
}

impl Open {
    fn new(start_minute: u64) -> Open {
        Open {
            tally: Tally::new(start_minute),
            sketch: Box::default(),
        }
    }

    fn record(&mut self, result: usize, latency_ms: Option<u64>, finished: Finished) {
        let tally = &mut self.tally;
        tally.attempts[result] = tally.attempts[result].saturating_add(1);
        match finished {
            Finished::Succeeded => tally.succeeded = tally.succeeded.saturating_add(1),
            Finished::Failed => tally.failed = tally.failed.saturating_add(1),
            Finished::No => {}
        }
        if let Some(latency_ms) = latency_ms {
            self.sketch.record(latency_ms);
        }
    }

    /// Its tally with the quantiles as of now.
    fn closed(&self) -> Tally {
        let quantile = |q: f64| {
            self.sketch.quantile(q).map_or(NO_LATENCY, |ms| {
                u16::try_from(ms).unwrap_or(NO_LATENCY - 1).min(NO_LATENCY - 1)
            })
        };
        Tally {
            p50: quantile(0.5),
            p99: quantile(0.99),
            ..self.tally
        }
    }
}

/// One entry of an endpoint's figures, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its first minute, since the epoch.
    pub start_minute: u64,
    /// Attempts by result (`success` or an error kind), those with any.
    pub attempts: Vec<(&'static str, u32)>,
    pub succeeded: u32,
    pub failed: u32,
    /// p50 and p99 in ms, when it had requests.
    pub latency_ms: Option<(u16, u16)>,
}

impl Entry {
    fn of(tally: &Tally) -> Entry {
        Entry {
            start_minute: u64::from(tally.start_minute),
            attempts: RESULTS
                .iter()
                .zip(tally.attempts)
                .filter(|(_, count)| *count > 0)
                .map(|(result, count)| (*result, count))
                .collect(),
            succeeded: tally.succeeded,
            failed: tally.failed,
            latency_ms: (tally.p50 != NO_LATENCY).then_some((tally.p50, tally.p99)),
        }
    }
}

/// How an attempt ended, for the figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    No,
    Succeeded,
    Failed,
}

/// A period in which an endpoint's circuit was open, in ms since the
/// epoch; `until_ms`: none while it is still open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenPeriod {
    pub from_ms: u64,
    pub until_ms: Option<u64>,
}

/// Open periods an endpoint keeps at most: a circuit that opens more often
/// than that in a day forgets its oldest.
const MAX_OPEN_PERIODS: usize = 64;

/// One endpoint's figures. Each attempt counts in its minute and in its
/// ten minutes at once, so a minute that is over needs no merging: only
/// the two under way keep a sketch.
#[derive(Debug, Default)]
struct Slots {
    /// Minutes that are over, of the last hour or so, oldest first.
    fine: VecDeque<Tally>,
    minute: Option<Open>,
    /// Ten minutes that are over, of the last day, oldest first.
    coarse: VecDeque<Tally>,
    block: Option<Open>,
    /// The circuit's open periods of the last day, oldest first.
    circuit_open: VecDeque<OpenPeriod>,
}

impl Slots {
    /// Closes what is over at `minute` and forgets what is older than the
    /// window.
    fn roll(&mut self, minute: u64) {
        let block = minute / COARSE_MINUTES * COARSE_MINUTES;
        if let Some(open) = self.minute.take_if(|open| u64::from(open.tally.start_minute) != minute) {
            push_snug(&mut self.fine, open.closed());
        }
        if let Some(open) = self.block.take_if(|open| u64::from(open.tally.start_minute) != block) {
            push_snug(&mut self.coarse, open.closed());
        }
        while self
            .fine
            .front()
            .is_some_and(|oldest| u64::from(oldest.start_minute) + FINE_MINUTES + COARSE_MINUTES <= minute)
        {
            self.fine.pop_front();
        }
        while self
            .coarse
            .front()
            .is_some_and(|oldest| u64::from(oldest.start_minute) + COARSE_MINUTES + WINDOW_MINUTES <= minute)
        {
            self.coarse.pop_front();
        }
        let day_ago_ms = minute.saturating_sub(WINDOW_MINUTES + COARSE_MINUTES) * MINUTE_MS;
        while self
            .circuit_open
            .front()
            .is_some_and(|oldest| oldest.until_ms.is_some_and(|until| until < day_ago_ms))
        {
            self.circuit_open.pop_front();
        }
    }

    fn is_empty(&self) -> bool {
        self.fine.is_empty()
            && self.coarse.is_empty()
            && self.minute.is_none()
            && self.block.is_none()
            && self.circuit_open.is_empty()
    }

    fn is_open(&self) -> bool {
        self.circuit_open.back().is_some_and(|last| last.until_ms.is_none())
    }

    /// Begins an open period at `at_ms`, unless one is under way.
    fn open_circuit(&mut self, at_ms: u64) {
        if self.is_open() {
            return;
        }
        if self.circuit_open.len() == MAX_OPEN_PERIODS {
            self.circuit_open.pop_front();
        }
        self.circuit_open.push_back(OpenPeriod {
            from_ms: at_ms,
            until_ms: None,
        });
    }

    fn minute_at(&self, minute: u64) -> Option<Tally> {
        match &self.minute {
            Some(open) if u64::from(open.tally.start_minute) == minute => Some(open.closed()),
            _ => self
                .fine
                .iter()
                .find(|tally| u64::from(tally.start_minute) == minute)
                .copied(),
        }
    }

    fn block_at(&self, start: u64) -> Option<Tally> {
        match &self.block {
            Some(open) if u64::from(open.tally.start_minute) == start => Some(open.closed()),
            _ => self
                .coarse
                .iter()
                .find(|tally| u64::from(tally.start_minute) == start)
                .copied(),
        }
    }
}

/// Pushes `tally`, growing the queue by a few at a time rather than by
/// doubling, so it never holds much more than its tallies.
fn push_snug(tallies: &mut VecDeque<Tally>, tally: Tally) {
    if tallies.len() == tallies.capacity() {
        tallies.reserve_exact(8);
    }
    tallies.push_back(tally);
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
        let Some(result) = RESULTS.iter().position(|known| *known == result) else {
            debug_assert!(false, "unknown attempt result {result}");
            return;
        };
        let slots = super::per_endpoint::entry_of(&self.endpoints, endpoint);
        let mut slots = slots.lock().unwrap_or_else(PoisonError::into_inner);
        let minute = now_ms / MINUTE_MS;
        slots.roll(minute);
        slots
            .minute
            .get_or_insert_with(|| Open::new(minute))
            .record(result, latency_ms, finished);
        slots
            .block
            .get_or_insert_with(|| Open::new(minute / COARSE_MINUTES * COARSE_MINUTES))
            .record(result, latency_ms, finished);
    }

    /// Notes that `endpoint`'s circuit opened at `at_ms` (a failed probe
    /// that opens it again continues the period).
    pub fn circuit_opened(&self, endpoint: &str, at_ms: u64) {
        let slots = super::per_endpoint::entry_of(&self.endpoints, endpoint);
        let mut slots = slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots.roll(at_ms / MINUTE_MS);
        slots.open_circuit(at_ms);
    }

    /// Notes that `endpoint`'s circuit closed at `at_ms`; `opened_at_ms`:
    /// when the period began, for one these figures did not see begin
    /// (it was open before a restart).
    pub fn circuit_closed(&self, endpoint: &str, opened_at_ms: u64, at_ms: u64) {
        let slots = super::per_endpoint::entry_of(&self.endpoints, endpoint);
        let mut slots = slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots.roll(at_ms / MINUTE_MS);
        slots.open_circuit(opened_at_ms.min(at_ms));
        if let Some(last) = slots.circuit_open.back_mut() {
            last.until_ms = Some(at_ms);
        }
    }

    /// `endpoint`'s open periods that overlap the last `window_minutes` at
    /// `now_ms`, oldest first.
    pub fn circuit_open(&self, endpoint: &str, now_ms: u64, window_minutes: u64) -> Vec<OpenPeriod> {
        let since_ms = now_ms.saturating_sub(window_minutes.clamp(1, WINDOW_MINUTES) * MINUTE_MS);
        self.kept(endpoint).map_or_else(Vec::new, |slots| {
            let slots = slots.lock().unwrap_or_else(PoisonError::into_inner);
            slots
                .circuit_open
                .iter()
                .filter(|period| period.until_ms.is_none_or(|until| until >= since_ms))
                .copied()
                .collect()
        })
    }

    fn kept(&self, endpoint: &str) -> Option<Arc<Mutex<Slots>>> {
        self.endpoints
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(endpoint)
            .cloned()
    }

    /// `endpoint`'s entries over the last `window_minutes` at `now_ms`,
    /// oldest first, empty ones included: one per minute from the ten
    /// minutes that hold the start of the last hour (60 to 69 entries),
    /// one per ten minutes before that.
    pub fn entries(&self, endpoint: &str, now_ms: u64, window_minutes: u64) -> Vec<Entry> {
        let minute = now_ms / MINUTE_MS;
        let window = window_minutes.clamp(1, WINDOW_MINUTES);
        let first = minute + 1 - window.min(minute + 1);
        let fine_from = (minute + 1 - FINE_MINUTES.min(minute + 1)) / COARSE_MINUTES * COARSE_MINUTES;
        match self.kept(endpoint) {
            Some(kept) => {
                let mut kept = kept.lock().unwrap_or_else(PoisonError::into_inner);
                kept.roll(minute);
                entries_of(&kept, first, fine_from, minute)
            }
            None => entries_of(&Slots::default(), first, fine_from, minute),
        }
    }

    /// Forgets the endpoints without an attempt in the last day.
    pub fn prune(&self, now_ms: u64) {
        let minute = now_ms / MINUTE_MS;
        self.endpoints
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, slots| {
                let mut slots = slots.lock().unwrap_or_else(PoisonError::into_inner);
                slots.roll(minute);
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

/// The entries of `slots` from `first` to `minute`, minutes from
/// `fine_from` on.
fn entries_of(slots: &Slots, first: u64, fine_from: u64, minute: u64) -> Vec<Entry> {
    let mut entries = Vec::new();
    let mut start = first / COARSE_MINUTES * COARSE_MINUTES;
    while start < fine_from {
        let tally = slots.block_at(start).unwrap_or_else(|| Tally::new(start));
        entries.push(Entry::of(&tally));
        start += COARSE_MINUTES;
    }
    for at in first.max(fine_from)..=minute {
        let tally = slots.minute_at(at).unwrap_or_else(|| Tally::new(at));
        entries.push(Entry::of(&tally));
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR_MS: u64 = 60 * MINUTE_MS;

    fn attempts(entry: &Entry) -> u32 {
        entry.attempts.iter().map(|(_, n)| n).sum()
    }

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
        // One attempt a minute for a day and a half; every fourth fails.
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
        assert!(hour.iter().all(|entry| attempts(entry) == 1));
        assert_eq!(hour[0].latency_ms, Some((21, 21)));
        let day = stats.entries("crm", now, WINDOW_MINUTES);
        // 2159 is the last minute: minutes from 2100, ten-minute blocks
        // from 720.
        assert_eq!(day.len(), 138 + 60);
        let block = &day[10];
        assert_eq!((attempts(block), block.succeeded + block.failed), (10, 10), "{block:?}");
        assert!(block.attempts.contains(&("status", 3)) || block.attempts.contains(&("status", 2)));
        assert_eq!(block.latency_ms, Some((21, 21)));
        let gaps: Vec<u64> = day
            .windows(2)
            .map(|pair| pair[1].start_minute - pair[0].start_minute)
            .collect();
        assert!(gaps[..137].iter().all(|gap| *gap == 10) && gaps[138..].iter().all(|gap| *gap == 1));
    }

    #[test]
    fn attempts_without_a_request_count_but_have_no_latency() {
        let stats = Stats::default();
        stats.record("crm", 0, "circuit_open", None, Finished::No);
        let entries = stats.entries("crm", 0, 1);
        assert_eq!(entries[0].attempts, [("circuit_open", 1)]);
        assert_eq!(entries[0].latency_ms, None);
    }

    #[test]
    fn open_periods_of_the_circuit_in_the_window() {
        let stats = Stats::default();
        let start = 1_000 * 24 * HOUR_MS;
        stats.circuit_opened("crm", start);
        // A failed probe continues the period.
        stats.circuit_opened("crm", start + MINUTE_MS);
        stats.circuit_closed("crm", start, start + 5 * MINUTE_MS);
        // Open before a restart: its period starts when it opened.
        stats.circuit_closed("crm", start + 9 * MINUTE_MS, start + 10 * MINUTE_MS);
        stats.circuit_opened("crm", start + 30 * MINUTE_MS);
        let periods = |now, window| {
            stats
                .circuit_open("crm", now, window)
                .iter()
                .map(|period| (period.from_ms - start, period.until_ms.map(|until| until - start)))
                .collect::<Vec<_>>()
        };
        let now = start + 40 * MINUTE_MS;
        assert_eq!(
            periods(now, 60),
            [
                (0, Some(5 * MINUTE_MS)),
                (9 * MINUTE_MS, Some(10 * MINUTE_MS)),
                (30 * MINUTE_MS, None)
            ]
        );
        assert_eq!(periods(now, 20), [(30 * MINUTE_MS, None)]);
        // A day later only the one still open is kept.
        stats.prune(now + 25 * HOUR_MS);
        assert_eq!(periods(now + 25 * HOUR_MS, WINDOW_MINUTES), [(30 * MINUTE_MS, None)]);
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
                .all(|entry| entry.attempts.is_empty())
        );
    }
}
