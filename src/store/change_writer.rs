//! The change writer: the one thread that applies every change of a
//! delivery's state ([`super::lifecycle`]), in groups.
//!
//! Workers, the sweeper and operators send their transitions here and wait
//! for the answer. The thread takes every transition that is waiting,
//! checks each one's expectation against the store as the earlier ones of
//! the group left it, writes all that hold in one `WriteBatch`, then moves
//! the counts and answers. So:
//!
//! - the check and the write cannot race: nothing else writes delivery
//!   state, and no lock is taken;
//! - the outcomes of many attempts share one write (group commit), made on
//!   this thread, off the async runtime: a RocksDB stall here never stalls
//!   an ingest request or a worker;
//! - the group is synced when one of its changes must be (an operator's
//!   retry), and written to the OS otherwise.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, Weak, mpsc};
use std::thread::JoinHandle;

use rocksdb::{DB, WriteBatch};
use tokio::sync::oneshot;

use super::counts::DeliveryCounts;
use super::lifecycle::{self, Applied, Change, Expect, Overlay, Planned, Transition};
use super::records::DeliveryRecord;
use super::{Durability, Error, Store};

/// Transitions in one write at most, so one group's latency stays bounded.
const MAX_GROUP: usize = 1_024;

/// What each transition of a request did, in order.
type Answer = Vec<Result<Applied, Error>>;

enum Reply {
    /// A task awaits it.
    Task(oneshot::Sender<Answer>),
    /// A thread blocks on it.
    Thread(mpsc::SyncSender<Answer>),
}

struct Request {
    transitions: Vec<Transition>,
    reply: Reply,
}

/// Told of every delivery a write changed: its id and its record after
/// (`None`: gone from this store).
pub type ChangeObserver = Arc<dyn Fn(&str, Option<&DeliveryRecord>) + Send + Sync>;

/// What the thread shares with the store's handles.
#[derive(Clone)]
pub(super) struct Shared {
    pub counts: Arc<DeliveryCounts>,
    /// Set by a failed write (see [`Store::recover`]).
    pub failed: Arc<AtomicBool>,
    /// Set by [`Store::on_delivery_change`].
    pub observer: Arc<RwLock<Option<ChangeObserver>>>,
}

pub(super) struct ChangeWriter {
    sender: mpsc::Sender<Request>,
    thread: JoinHandle<()>,
}

impl ChangeWriter {
    /// Starts the thread; it holds the database weakly, as the ingest
    /// writer does ([`super::writer::Writer::start`]).
    pub(super) fn start(db: Weak<DB>, shared: Shared) -> Result<ChangeWriter, Error> {
        let (sender, receiver) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("hookd-store-changes".into())
            .spawn(move || run(&db, &shared, &receiver))
            .map_err(|error| Error::Incompatible(format!("cannot start the change writer thread: {error}")))?;
        Ok(ChangeWriter { sender, thread })
    }

    /// Answers what is queued, then ends the thread.
    pub(super) fn stop(self) {
        drop(self.sender);
        if self.thread.join().is_err() {
            tracing::error!("the store's change writer thread panicked");
        }
    }
}

impl Store {
    /// Applies one transition; see [`lifecycle`].
    pub async fn apply(&self, transition: Transition) -> Result<Applied, Error> {
        let (reply, answer) = oneshot::channel();
        self.send_changes(vec![transition], Reply::Task(reply))?;
        let mut answer = answer.await.map_err(|_| Error::Closed)?;
        answer.pop().unwrap_or(Err(Error::Closed))
    }

    /// Applies several transitions in order, in writes of up to
    /// [`MAX_GROUP`], awaiting them all; what each did, in order.
    pub async fn apply_all(&self, transitions: Vec<Transition>) -> Vec<Result<Applied, Error>> {
        let mut transitions = transitions.into_iter().peekable();
        let mut results = Vec::new();
        while transitions.peek().is_some() {
            let chunk: Vec<Transition> = transitions.by_ref().take(MAX_GROUP).collect();
            let count = chunk.len();
            let (reply, answer) = oneshot::channel();
            results.extend(match self.send_changes(chunk, Reply::Task(reply)) {
                Ok(()) => answer.await.unwrap_or_else(|_| closed_answer(count, &Error::Closed)),
                Err(error) => closed_answer(count, &error),
            });
        }
        results
    }

    /// Applies `change` to delivery `id` at `now_ms` if it is as `expect`
    /// says, blocking this thread until it is written (for threads of
    /// their own, and tests); see [`lifecycle`].
    pub fn transition(&self, id: &str, expect: Expect, change: Change, now_ms: u64) -> Result<Applied, Error> {
        let transition = Transition {
            id: id.to_owned(),
            expect,
            change,
            now_ms,
        };
        self.transition_all(vec![transition])
            .pop()
            .unwrap_or(Err(Error::Closed))
    }

    /// Applies several transitions in order, in writes of up to
    /// [`MAX_GROUP`], blocking this thread until all are written; what each
    /// did, in order.
    pub fn transition_all(&self, transitions: Vec<Transition>) -> Vec<Result<Applied, Error>> {
        let mut transitions = transitions.into_iter().peekable();
        let mut waiting = Vec::new();
        while transitions.peek().is_some() {
            let chunk: Vec<Transition> = transitions.by_ref().take(MAX_GROUP).collect();
            let count = chunk.len();
            let (reply, answer) = mpsc::sync_channel(1);
            let sent = self.send_changes(chunk, Reply::Thread(reply));
            waiting.push((count, sent.map(|()| answer)));
        }
        let mut results = Vec::new();
        for (count, answer) in waiting {
            results.extend(match answer {
                Ok(answer) => answer.recv().unwrap_or_else(|_| closed_answer(count, &Error::Closed)),
                Err(error) => closed_answer(count, &error),
            });
        }
        results
    }

    /// Calls `observe` with every delivery a write of the change writer
    /// changed, on its thread, after the write (cluster mode keeps
    /// JetStream's copies in step); the last observer set is the one
    /// called. It must not block.
    pub fn on_delivery_change(&self, observe: impl Fn(&str, Option<&DeliveryRecord>) + Send + Sync + 'static) {
        *self
            .change_observer
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Arc::new(observe));
    }

    fn send_changes(&self, transitions: Vec<Transition>, reply: Reply) -> Result<(), Error> {
        let changes = self.changes.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let writer = changes.as_ref().ok_or_else(|| self.unavailable())?;
        writer
            .sender
            .send(Request { transitions, reply })
            .map_err(|_| Error::Closed)
    }
}

fn closed_answer(count: usize, error: &Error) -> Answer {
    (0..count).map(|_| Err(error.clone())).collect()
}

fn run(db: &Weak<DB>, shared: &Shared, receiver: &mpsc::Receiver<Request>) {
    while let Ok(first) = receiver.recv() {
        let mut transitions = first.transitions.len();
        let mut group = vec![first];
        while transitions < MAX_GROUP {
            match receiver.try_recv() {
                Ok(request) => {
                    transitions += request.transitions.len();
                    group.push(request);
                }
                Err(_) => break,
            }
        }
        match db.upgrade() {
            Some(db) => commit(&db, shared, group),
            None => {
                for request in group {
                    let count = request.transitions.len();
                    answer(request.reply, closed_answer(count, &Error::Closed));
                }
            }
        }
    }
}

/// A transition's delivery id and its plan.
type PlannedFor = (String, Result<Planned, Error>);

/// Plans every transition of the group into one write, writes it, then
/// moves the counts and answers.
fn commit(db: &DB, shared: &Shared, group: Vec<Request>) {
    let mut batch = WriteBatch::default();
    let mut overlay = Overlay::new();
    let mut planned: Vec<(Reply, Vec<PlannedFor>)> = Vec::with_capacity(group.len());
    for request in group {
        let plans = request
            .transitions
            .into_iter()
            .map(|transition| {
                let id = transition.id.clone();
                (id, lifecycle::plan(db, &mut batch, &mut overlay, transition))
            })
            .collect();
        planned.push((request.reply, plans));
    }
    let must_sync = planned
        .iter()
        .flat_map(|(_, plans)| plans)
        .any(|(_, plan)| plan.as_ref().is_ok_and(|plan| plan.durability == Durability::Synced));
    let durability = if must_sync {
        Durability::Synced
    } else {
        Durability::Written
    };
    let written = if batch.is_empty() {
        Ok(())
    } else {
        super::write(db, batch, durability)
    };
    if let Err(error) = &written {
        tracing::error!(%error, "writing delivery changes failed");
        shared.failed.store(true, Ordering::SeqCst);
    }
    let observer = shared
        .observer
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    for (reply, plans) in planned {
        let results = plans
            .into_iter()
            .map(|(id, plan)| {
                let plan = plan?;
                match (&written, plan.moved) {
                    (Err(error), Some(_)) => Err(Error::Db(error.clone())),
                    (_, moved) => {
                        if let Some((before, after)) = moved {
                            shared.counts.moved(before.as_ref(), after.as_ref());
                            if let Some(observe) = &observer {
                                observe(&id, after.as_ref());
                            }
                        }
                        Ok(plan.applied)
                    }
                }
            })
            .collect();
        answer(reply, results);
    }
}

/// Sends the answer; the asker may have gone (a task cancelled), and the
/// write stands.
fn answer(reply: Reply, results: Answer) {
    match reply {
        Reply::Task(sender) => {
            let _ = sender.send(results);
        }
        Reply::Thread(sender) => {
            let _ = sender.send(results);
        }
    }
}
