//! What reaches an endpoint's worker between its reads of the queue: fresh
//! deliveries handed over by ingest, with their body, and wakes.
//!
//! The store stays the queue of record: a delivery is handed over only
//! once the write that stored it is durable, and one that does not fit
//! (the worker is behind, or not running) is simply left to the store,
//! with a wake carrying its due time, so the worker's next read finds it.
//! Nothing is lost when the inbox is full or hookd dies.
//!
//! No delivery is sent twice at once: each one being sent, or handed over
//! and waiting to be, holds a [`Claim`] in its endpoint's in-flight set.
//! Ingest claims a new delivery *before* its write, so no read of the queue
//! can see it unclaimed and start it beside the hand-over; the worker
//! claims what it reads from the queue, and skips what is claimed. A claim
//! is given back when dropped: when the attempt ends, when the worker drops
//! its inbox (stopped or paused), and also when an attempt panics.
//!
//! The inbox is open only while a worker takes from it; handing over to a
//! closed one fails, and closing drops what it holds, in one step under
//! its lock, so nothing waits in an inbox nobody reads.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use bytes::Bytes;
use tokio::sync::Notify;

/// Fresh deliveries one inbox holds at most.
const CAPACITY: usize = 1_024;
/// Bytes of bodies all inboxes hold at most together, in flight included
/// (each delivery counts its event's whole body, though endpoints share it).
const BUDGET_BYTES: usize = 32 << 20;

/// An event as its deliveries send it: handed over by ingest (what the
/// store holds, never read back), or read from the store.
#[derive(Debug)]
pub struct SendableEvent {
    pub event_id: String,
    pub event: String,
    /// The wire body, shared by every endpoint of the event.
    pub body: Bytes,
    pub traceparent: Option<String>,
    /// The platform customer it belongs to.
    pub tenant: Option<String>,
    /// When ingest stored it (ms): its fresh deliveries' due time.
    pub received_at: u64,
}

/// A delivery handed over by ingest: stored and durable, never attempted.
#[derive(Debug)]
pub struct Fresh {
    pub claim: Claim,
    pub event: Arc<SendableEvent>,
    /// Its share of [`BUDGET_BYTES`], given back when it is dropped.
    _charge: Charge,
}

/// One endpoint's inbox.
#[derive(Debug)]
pub struct Inbox {
    notify: Notify,
    /// The earliest due time woken for since the worker last looked;
    /// `u64::MAX` when none.
    earliest: AtomicU64,
    /// Deliveries of this endpoint being sent or handed over, by id;
    /// shared by successive workers of the endpoint, so a reload never
    /// sends one twice at once.
    in_flight: Mutex<HashSet<String>>,
    fresh: Mutex<FreshQueue>,
    budget: Arc<AtomicUsize>,
}

#[derive(Debug, Default)]
struct FreshQueue {
    /// A worker takes from it.
    open: bool,
    deliveries: VecDeque<Fresh>,
}

impl Inbox {
    fn new(budget: Arc<AtomicUsize>) -> Inbox {
        Inbox {
            notify: Notify::new(),
            earliest: AtomicU64::new(u64::MAX),
            in_flight: Mutex::default(),
            fresh: Mutex::default(),
            budget,
        }
    }

    /// Work due at `due_ms` is in the store: the worker reads its queue
    /// from there.
    pub fn wake(&self, due_ms: u64) {
        self.earliest.fetch_min(due_ms, Ordering::AcqRel);
        self.notify.notify_one();
    }

    /// The earliest due time woken for since the last call, if any.
    pub fn take_earliest(&self) -> Option<u64> {
        match self.earliest.swap(u64::MAX, Ordering::AcqRel) {
            u64::MAX => None,
            at => Some(at),
        }
    }

    /// Completes at the next wake or hand-over (or at once if one came
    /// since the last).
    pub async fn notified(&self) {
        self.notify.notified().await;
    }

    /// Claims delivery `id`, unless it is claimed already.
    pub fn claim(self: &Arc<Self>, id: &str) -> Option<Claim> {
        lock(&self.in_flight).insert(id.to_owned()).then(|| Claim {
            inbox: self.clone(),
            id: id.to_owned(),
        })
    }

    /// Whether a worker takes from this inbox.
    pub fn is_open(&self) -> bool {
        lock(&self.fresh).open
    }

    /// Hands over a delivery whose write is durable (claimed before that
    /// write). If it does not fit, it is left to the store: its claim is
    /// given back and the worker woken for it.
    pub fn hand_over(&self, claim: Claim, event: Arc<SendableEvent>) {
        let due = event.received_at;
        let handed = {
            let mut fresh = lock(&self.fresh);
            let charge = (fresh.open && fresh.deliveries.len() < CAPACITY)
                .then(|| Charge::take(&self.budget, event.body.len()))
                .flatten();
            match charge {
                Some(charge) => {
                    fresh.deliveries.push_back(Fresh {
                        claim,
                        event,
                        _charge: charge,
                    });
                    true
                }
                None => {
                    drop(claim);
                    false
                }
            }
        };
        if handed {
            self.notify.notify_one();
        } else {
            self.wake(due);
        }
    }

    /// The oldest delivery handed over, if any.
    pub fn take_fresh(&self) -> Option<Fresh> {
        lock(&self.fresh).deliveries.pop_front()
    }

    /// A worker starts taking from this inbox.
    pub fn open(&self) {
        lock(&self.fresh).open = true;
    }

    /// The worker stops taking from it: what it holds is dropped (the
    /// store has it), and the next worker reads its queue from the start.
    pub fn close(&self) {
        let dropped = {
            let mut fresh = lock(&self.fresh);
            fresh.open = false;
            std::mem::take(&mut fresh.deliveries)
        };
        drop(dropped);
        self.wake(0);
    }

    /// How many deliveries are claimed.
    pub fn claimed(&self) -> usize {
        lock(&self.in_flight).len()
    }
}

/// A delivery's place in its endpoint's in-flight set, given back when
/// dropped.
#[derive(Debug)]
pub struct Claim {
    inbox: Arc<Inbox>,
    id: String,
}

impl Claim {
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        lock(&self.inbox.in_flight).remove(&self.id);
    }
}

/// Bytes taken from the shared budget, given back when dropped.
#[derive(Debug)]
struct Charge {
    budget: Arc<AtomicUsize>,
    bytes: usize,
}

impl Charge {
    /// `bytes` of what is left of `budget`, if that many are left.
    fn take(budget: &Arc<AtomicUsize>, bytes: usize) -> Option<Charge> {
        budget
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| left.checked_sub(bytes))
            .ok()
            .map(|_| Charge {
                budget: budget.clone(),
                bytes,
            })
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget.fetch_add(self.bytes, Ordering::AcqRel);
    }
}

/// Every endpoint's inbox, by endpoint id; shared by the ingest and admin
/// APIs (which hand over and wake) and the dispatcher (whose workers take).
#[derive(Debug)]
pub struct Inboxes {
    by_endpoint: RwLock<HashMap<String, Arc<Inbox>>>,
    budget: Arc<AtomicUsize>,
}

impl Default for Inboxes {
    fn default() -> Self {
        Inboxes {
            by_endpoint: RwLock::default(),
            budget: Arc::new(AtomicUsize::new(BUDGET_BYTES)),
        }
    }
}

impl Inboxes {
    pub fn get(&self, endpoint: &str) -> Arc<Inbox> {
        if let Some(inbox) = read(&self.by_endpoint).get(endpoint) {
            return inbox.clone();
        }
        let mut by_endpoint = self
            .by_endpoint
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        by_endpoint
            .entry(endpoint.to_owned())
            .or_insert_with(|| Arc::new(Inbox::new(self.budget.clone())))
            .clone()
    }

    pub fn wake(&self, endpoint: &str, due_ms: u64) {
        self.get(endpoint).wake(due_ms);
    }
}

/// An inbox's sets and queue: a panic while one was held leaves it usable
/// (each is consistent after any single insert or remove).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh_event(body: &'static [u8]) -> Arc<SendableEvent> {
        Arc::new(SendableEvent {
            event_id: "evt_1".into(),
            event: "payment.completed".into(),
            body: Bytes::from_static(body),
            traceparent: None,
            tenant: None,
            received_at: 10,
        })
    }

    #[tokio::test]
    async fn a_wake_before_waiting_is_not_lost() {
        let inboxes = Inboxes::default();
        inboxes.wake("crm", 20);
        inboxes.wake("crm", 10);
        let inbox = inboxes.get("crm");
        tokio::time::timeout(std::time::Duration::from_secs(5), inbox.notified())
            .await
            .expect("the stored wake completes at once");
        assert_eq!(inbox.take_earliest(), Some(10));
        assert_eq!(inbox.take_earliest(), None);
    }

    #[test]
    fn a_claimed_delivery_cannot_be_claimed_again_until_given_back() {
        let inbox = Inboxes::default().get("crm");
        let claim = inbox.claim("evt_1.crm").expect("first claim");
        assert!(inbox.claim("evt_1.crm").is_none());
        drop(claim);
        assert!(inbox.claim("evt_1.crm").is_some());
    }

    #[test]
    fn a_closed_inbox_leaves_the_delivery_to_the_store_and_wakes_for_it() {
        let inbox = Inboxes::default().get("crm");
        let claim = inbox.claim("evt_1.crm").unwrap();
        inbox.hand_over(claim, fresh_event(b"{}"));
        assert!(inbox.take_fresh().is_none());
        assert_eq!(inbox.claimed(), 0, "its claim is given back");
        assert_eq!(
            inbox.take_earliest(),
            Some(10),
            "the worker reads its queue from its due time"
        );
    }

    #[test]
    fn an_open_inbox_holds_what_fits_and_closing_drops_it() {
        let inbox = Inboxes::default().get("crm");
        inbox.open();
        for n in 0..CAPACITY + 1 {
            let claim = inbox.claim(&format!("evt_{n}.crm")).unwrap();
            inbox.hand_over(claim, fresh_event(b"{}"));
        }
        assert_eq!(inbox.claimed(), CAPACITY, "the one past capacity was given back");
        assert_eq!(inbox.take_earliest(), Some(10));
        let first = inbox.take_fresh().expect("held");
        assert_eq!(first.claim.id(), "evt_0.crm");
        inbox.close();
        assert_eq!(inbox.claimed(), 1, "only the one taken is still claimed");
        assert!(inbox.take_fresh().is_none());
    }

    #[test]
    fn the_byte_budget_bounds_what_all_inboxes_hold() {
        let inboxes = Inboxes::default();
        let inbox = inboxes.get("crm");
        inbox.open();
        inboxes.budget.store(3, Ordering::SeqCst);
        inbox.hand_over(inbox.claim("a").unwrap(), fresh_event(b"12"));
        inbox.hand_over(inbox.claim("b").unwrap(), fresh_event(b"34"));
        assert_eq!(inbox.claimed(), 1, "the second did not fit the budget");
        drop(inbox.take_fresh());
        assert_eq!(
            inboxes.budget.load(Ordering::SeqCst),
            3,
            "its bytes are given back when dropped"
        );
    }
}
