//! Each endpoint's circuit breaker (SPEC 4, "Circuit breaker").
//!
//! After `breaker.failures` consecutive failed attempts that sent a request
//! the circuit opens for `cooldown`. While it is open the worker sends
//! nothing: a delivery that comes due gets a failed attempt of kind
//! `circuit_open` and keeps its schedule. Once the cooldown is over the
//! circuit is half-open: the next due delivery goes as the probe, and the
//! worker holds the others (without an attempt) until the probe's outcome
//! is known. Success closes the circuit; failure opens it again for twice
//! the period, up to `max_cooldown`. An operator's retry, test ping or
//! resume makes an open circuit half-open at once.
//!
//! A circuit is per hookd and kept across reloads with the endpoint's
//! other limits ([`super::limits`]), which hold [`Breakers`]. An endpoint
//! gets its breaker at its first failure that counts: most endpoints of a
//! fleet never fail, and hold nothing. Its open period is kept in the
//! store, so it survives a restart; the count of failures toward opening it
//! does not (it starts again at zero).

use std::collections::HashMap;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Notify;

use super::outcome::ErrorKind;
use crate::clock;
use crate::config::BreakerSettings;
use crate::store::{self, OpenCircuit, Store};

/// A circuit's state, as the endpoint JSON shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Circuit {
    Closed,
    Open,
    HalfOpen,
}

/// What the worker does with a delivery that came due.
#[derive(Debug)]
pub enum Admission {
    /// Send it; as the probe of a half-open circuit, holding [`Probe`]
    /// until its outcome is recorded.
    Send(Option<Probe>),
    /// The circuit is open: record a `circuit_open` attempt, send nothing.
    Refuse,
}

/// How the circuit changed after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitChange {
    Opened(OpenCircuit),
    /// A failed probe: open again, for longer.
    Reopened(OpenCircuit),
    /// Closed, after the open period it was in.
    Closed(OpenCircuit),
}

/// One endpoint's circuit.
#[derive(Debug)]
pub struct Breaker {
    state: Mutex<State>,
    /// Signalled when a probe is over, for the deliveries held behind it.
    probe_over: Notify,
    /// Held while the state is written to the store, so the last write
    /// holds the latest state.
    persisting: tokio::sync::Mutex<()>,
}

#[derive(Debug)]
struct State {
    settings: BreakerSettings,
    /// Consecutive failed attempts that sent a request.
    failures: u32,
    /// `None`: closed.
    open: Option<OpenCircuit>,
    /// A probe is in flight.
    probing: bool,
}

impl Breaker {
    fn new(settings: BreakerSettings, open: Option<OpenCircuit>) -> Breaker {
        Breaker {
            state: Mutex::new(State {
                settings,
                failures: 0,
                open,
                probing: false,
            }),
            probe_over: Notify::new(),
            persisting: tokio::sync::Mutex::new(()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn circuit(&self, now_ms: u64) -> Circuit {
        match self.state().open {
            None => Circuit::Closed,
            Some(open) if now_ms < open.until_ms => Circuit::Open,
            Some(_) => Circuit::HalfOpen,
        }
    }

    pub fn is_closed(&self) -> bool {
        self.state().open.is_none()
    }

    /// Whether a delivery that came due may be sent; while a probe is in
    /// flight, waits for its outcome.
    pub async fn admit(self: &Arc<Self>) -> Admission {
        loop {
            let mut over = pin!(self.probe_over.notified());
            over.as_mut().enable();
            {
                let mut state = self.state();
                match state.open {
                    None => return Admission::Send(None),
                    Some(open) if clock::now_ms() < open.until_ms => return Admission::Refuse,
                    Some(_) if !state.probing => {
                        state.probing = true;
                        return Admission::Send(Some(Probe(self.clone())));
                    }
                    Some(_) => {}
                }
            }
            over.await;
        }
    }

    /// Notes the outcome of an attempt that was sent: `None` for success,
    /// else its error kind.
    pub fn record(&self, error: Option<ErrorKind>, now_ms: u64) -> Option<CircuitChange> {
        let mut state = self.state();
        let Some(kind) = error else {
            state.failures = 0;
            return state.open.take().map(CircuitChange::Closed);
        };
        if !kind.counts_toward_the_breaker() {
            return None;
        }
        state.failures = state.failures.saturating_add(1);
        let (threshold, cooldown, max_cooldown) = (
            state.settings.failures,
            millis(state.settings.cooldown),
            millis(state.settings.max_cooldown),
        );
        let failures = state.failures;
        match state.open {
            // Half-open: the probe failed.
            Some(open) if now_ms >= open.until_ms => {
                let cooldown_ms = open.cooldown_ms.saturating_mul(2).min(max_cooldown).max(1);
                let period = OpenCircuit {
                    opened_at_ms: now_ms,
                    until_ms: now_ms.saturating_add(cooldown_ms),
                    cooldown_ms,
                    failures,
                };
                state.open = Some(period);
                Some(CircuitChange::Reopened(period))
            }
            // Already open: an attempt sent before it opened.
            Some(_) => None,
            None if threshold > 0 && failures >= threshold => {
                let period = OpenCircuit {
                    opened_at_ms: now_ms,
                    until_ms: now_ms.saturating_add(cooldown),
                    cooldown_ms: cooldown,
                    failures,
                };
                state.open = Some(period);
                Some(CircuitChange::Opened(period))
            }
            None => None,
        }
    }

    /// An operator acted on the endpoint: an open circuit becomes
    /// half-open at once. Whether it changed.
    pub fn probe_now(&self, now_ms: u64) -> bool {
        let mut state = self.state();
        match &mut state.open {
            Some(open) if now_ms < open.until_ms => {
                open.until_ms = now_ms;
                true
            }
            _ => false,
        }
    }

    fn set_settings(&self, settings: BreakerSettings) {
        let mut state = self.state();
        if settings.failures == 0 {
            // Never opens: an open circuit closes.
            state.open = None;
        }
        state.settings = settings;
    }

    /// Writes the circuit's state to the store as `endpoint`'s, on a thread
    /// that may block.
    async fn persist(&self, endpoint: &str, store: &Store) -> Result<(), store::Error> {
        let _turn = self.persisting.lock().await;
        let open = self.state().open;
        let (store, endpoint) = (store.clone(), endpoint.to_owned());
        tokio::task::spawn_blocking(move || store.set_circuit(&endpoint, open.as_ref()))
            .await
            .expect("the write does not panic")
    }
}

/// A half-open circuit's probe in flight; over when dropped, however the
/// attempt ended.
#[derive(Debug)]
pub struct Probe(Arc<Breaker>);

impl Drop for Probe {
    fn drop(&mut self) {
        self.0.state().probing = false;
        self.0.probe_over.notify_waiters();
    }
}

/// Every endpoint's circuit, kept across reloads: the breakers of the
/// endpoints that have had a failure that counts, or an open circuit the
/// store kept.
#[derive(Debug)]
pub struct Breakers {
    endpoints: RwLock<HashMap<String, Arc<Breaker>>>,
    settings: RwLock<BreakerSettings>,
}

impl Breakers {
    /// Starts with the open circuits the store kept.
    pub fn restore(open: impl IntoIterator<Item = (String, OpenCircuit)>, settings: BreakerSettings) -> Breakers {
        let endpoints = open
            .into_iter()
            .map(|(endpoint, open)| (endpoint, Arc::new(Breaker::new(settings, Some(open)))))
            .collect();
        Breakers {
            endpoints: RwLock::new(endpoints),
            settings: RwLock::new(settings),
        }
    }

    /// Every breaker follows `settings` from now on (a reload). Under the
    /// map's lock, as a breaker is made, so none is made with the old ones.
    pub(super) fn set_settings(&self, settings: BreakerSettings) {
        if *self.settings.read().unwrap_or_else(PoisonError::into_inner) == settings {
            return;
        }
        let endpoints = self.endpoints.write().unwrap_or_else(PoisonError::into_inner);
        *self.settings.write().unwrap_or_else(PoisonError::into_inner) = settings;
        for breaker in endpoints.values() {
            breaker.set_settings(settings);
        }
    }

    /// Whether a delivery of `endpoint` that came due may be sent
    /// ([`Breaker::admit`]); an endpoint without a breaker sends.
    pub async fn admit(&self, endpoint: &str) -> Admission {
        match self.get(endpoint) {
            Some(breaker) => breaker.admit().await,
            None => Admission::Send(None),
        }
    }

    /// Whether `endpoint`'s circuit is closed (it is, without a breaker).
    pub fn is_closed(&self, endpoint: &str) -> bool {
        self.get(endpoint).is_none_or(|breaker| breaker.is_closed())
    }

    /// Notes the outcome of an attempt of `endpoint` that was sent
    /// ([`Breaker::record`]); its first failure that counts makes its
    /// breaker.
    pub fn record(&self, endpoint: &str, error: Option<ErrorKind>, now_ms: u64) -> Option<CircuitChange> {
        let breaker = match error {
            Some(kind) if kind.counts_toward_the_breaker() => Some(self.made(endpoint)),
            _ => self.get(endpoint),
        };
        breaker.and_then(|breaker| breaker.record(error, now_ms))
    }

    /// Writes `endpoint`'s circuit to the store.
    pub async fn persist(&self, endpoint: &str, store: &Store) -> Result<(), store::Error> {
        match self.get(endpoint) {
            Some(breaker) => breaker.persist(endpoint, store).await,
            None => Ok(()),
        }
    }

    /// `endpoint`'s breaker, made now if it has none.
    fn made(&self, endpoint: &str) -> Arc<Breaker> {
        if let Some(breaker) = self.get(endpoint) {
            return breaker;
        }
        let mut endpoints = self.endpoints.write().unwrap_or_else(PoisonError::into_inner);
        let settings = *self.settings.read().unwrap_or_else(PoisonError::into_inner);
        endpoints
            .entry(endpoint.to_owned())
            .or_insert_with(|| Arc::new(Breaker::new(settings, None)))
            .clone()
    }

    fn get(&self, endpoint: &str) -> Option<Arc<Breaker>> {
        self.endpoints
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(endpoint)
            .cloned()
    }

    /// The endpoint's circuit; closed if it has never had one.
    pub fn circuit(&self, endpoint: &str, now_ms: u64) -> Circuit {
        self.get(endpoint)
            .map_or(Circuit::Closed, |breaker| breaker.circuit(now_ms))
    }

    /// An operator's retry, test ping or resume: an open circuit becomes
    /// half-open at once, in the store too.
    pub async fn probe_now(&self, endpoint: &str, store: &Store) -> Result<(), store::Error> {
        match self.get(endpoint) {
            Some(breaker) if breaker.probe_now(clock::now_ms()) => breaker.persist(endpoint, store).await,
            _ => Ok(()),
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(failures: u32) -> BreakerSettings {
        BreakerSettings {
            failures,
            cooldown: Duration::from_secs(30),
            max_cooldown: Duration::from_secs(100),
        }
    }

    #[test]
    fn opens_after_consecutive_failures_only() {
        let breaker = Breaker::new(settings(3), None);
        assert_eq!(breaker.record(Some(ErrorKind::Status), 0), None);
        assert_eq!(breaker.record(Some(ErrorKind::Timeout), 0), None);
        // A success starts the count again; kinds without a request do
        // not count.
        assert_eq!(breaker.record(None, 0), None);
        for kind in [
            ErrorKind::Status,
            ErrorKind::Connect,
            ErrorKind::BlockedDestination,
            ErrorKind::TenantMismatch,
        ] {
            assert_eq!(breaker.record(Some(kind), 1_000), None);
        }
        let Some(CircuitChange::Opened(open)) = breaker.record(Some(ErrorKind::Status), 1_000) else {
            panic!("the third failure opens the circuit");
        };
        assert_eq!((open.until_ms, open.cooldown_ms, open.failures), (31_000, 30_000, 3));
        assert_eq!(breaker.circuit(30_999), Circuit::Open);
        assert_eq!(breaker.circuit(31_000), Circuit::HalfOpen);
    }

    #[test]
    fn a_failed_probe_doubles_the_cooldown_up_to_the_most() {
        let breaker = Breaker::new(settings(1), None);
        breaker.record(Some(ErrorKind::Status), 0);
        let mut cooldowns = Vec::new();
        let mut now = 0;
        for _ in 0..3 {
            now += 200_000;
            let Some(CircuitChange::Reopened(open)) = breaker.record(Some(ErrorKind::Status), now) else {
                panic!("a failed probe opens the circuit again");
            };
            cooldowns.push(open.cooldown_ms);
        }
        assert_eq!(cooldowns, [60_000, 100_000, 100_000]);
        // While open, a late failure changes nothing; a success closes.
        assert_eq!(breaker.record(Some(ErrorKind::Status), now + 1), None);
        assert!(matches!(breaker.record(None, now + 2), Some(CircuitChange::Closed(_))));
        assert_eq!(breaker.circuit(now + 2), Circuit::Closed);
    }

    #[test]
    fn an_endpoint_gets_a_breaker_at_its_first_failure_that_counts() {
        let breakers = Breakers::restore([], settings(2));
        assert_eq!(breakers.record("crm", None, 0), None);
        assert_eq!(breakers.record("crm", Some(ErrorKind::TenantMismatch), 0), None);
        assert!(
            breakers.get("crm").is_none(),
            "a success or a failure that does not count makes none"
        );
        assert_eq!(breakers.record("crm", Some(ErrorKind::Status), 0), None);
        assert!(breakers.get("crm").is_some());
        // A reload's settings reach the breakers made before it and after.
        breakers.set_settings(settings(1));
        assert!(matches!(
            breakers.record("crm", Some(ErrorKind::Status), 0),
            Some(CircuitChange::Opened(_))
        ));
        assert!(matches!(
            breakers.record("billing", Some(ErrorKind::Status), 0),
            Some(CircuitChange::Opened(_))
        ));
        assert_eq!(breakers.circuit("crm", 1), Circuit::Open);
        assert!(breakers.is_closed("quiet") && breakers.get("quiet").is_none());
    }

    #[test]
    fn zero_failures_never_opens() {
        let breaker = Breaker::new(settings(0), None);
        for _ in 0..100 {
            assert_eq!(breaker.record(Some(ErrorKind::Status), 0), None);
        }
    }

    #[test]
    fn an_operator_makes_an_open_circuit_half_open() {
        let breaker = Breaker::new(settings(1), None);
        breaker.record(Some(ErrorKind::Status), 0);
        assert!(breaker.probe_now(10));
        assert_eq!(breaker.circuit(10), Circuit::HalfOpen);
        assert!(!breaker.probe_now(11), "already half-open");
    }

    #[tokio::test]
    async fn one_probe_at_a_time_and_the_others_wait_for_it() {
        let now = clock::now_ms();
        let open = OpenCircuit {
            opened_at_ms: now - 2,
            until_ms: now - 1,
            cooldown_ms: 1,
            failures: 1,
        };
        let breaker = Arc::new(Breaker::new(settings(1), Some(open)));
        let Admission::Send(Some(probe)) = breaker.admit().await else {
            panic!("the first delivery after the cooldown is the probe");
        };
        let waiting = tokio::spawn({
            let breaker = breaker.clone();
            async move { breaker.admit().await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "a second delivery waits for the probe");
        breaker.record(None, clock::now_ms());
        drop(probe);
        assert!(matches!(waiting.await.unwrap(), Admission::Send(None)));
    }
}
