//! One endpoint's worker: starts an attempt for each delivery ingest hands
//! over ([`super::inbox`]) and for each due delivery it reads from the
//! store in time order, as its permits ([`super::permits`]) allow.
//!
//! Each endpoint has its own worker and its own `due` key range, so a
//! backlog or a hanging subscriber on one endpoint never stands in front of
//! another's work (no head-of-line blocking). The store is the queue of
//! record; the inbox only spares fresh deliveries a read. The worker reads
//! the store from a cursor (the due time of the last delivery it started
//! from there), only when something may be due there: at a wake (a retry
//! scheduled, a hand-over that did not fit, an operator's retry) and after
//! a resume; at start, at the next due time it saw, and once a minute as a
//! safety net, if the endpoint has deliveries pending (so 10,000 idle
//! endpoints read nothing). It skips what is claimed (in flight or handed
//! over), and claims and reads the records of the rest on a blocking
//! thread, in the background, so fresh deliveries never wait for a read.

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use super::attempt::{AttemptContext, Attempted, Job, Pass, attempt, load};
use super::breaker::Admission;
use super::client::EndpointStack;
use super::inbox::Inbox;
use super::limits::EndpointLimits;
use super::permits::{GlobalLimit, Permits};
use crate::clock;
use crate::store::{self, NextStep, Store};

/// Due deliveries read per look at the store, beyond those claimed.
const SCAN_BATCH: usize = 64;
/// The longest a worker sleeps without looking at its queue. Whatever
/// writes to the queue wakes the worker (ingest, a recorded retry, an
/// operator), so this is only a safety net; and a look that is not a wake
/// reads the store only if the endpoint has deliveries pending (the counts
/// kept as work changes say so), so an idle endpoint costs no read at all.
const MAX_IDLE: Duration = Duration::from_secs(60);
/// How often the worker reads its queue from the start rather than from its
/// cursor, in case the wall clock stepped back.
const FULL_RESCAN: Duration = Duration::from_secs(60);
/// The pause before reading again a window of the queue in which every
/// delivery was claimed, all due within the same millisecond.
const CLAIMED_WINDOW_PAUSE: Duration = Duration::from_millis(100);
/// The pause before retrying after the store failed to record an attempt.
const STORE_ERROR_BACKOFF: Duration = Duration::from_secs(1);

pub struct Worker {
    pub endpoint: String,
    /// The layers every attempt goes through, shared by the workers of
    /// one client and timeout; each attempt takes a clone.
    pub stack: Arc<EndpointStack>,
    /// The endpoint's limits and the global one: an attempt starts once its
    /// circuit admits it and it holds its permits.
    pub limits: EndpointLimits,
    pub global: Arc<GlobalLimit>,
    pub context: Arc<AttemptContext>,
    /// Fresh deliveries from ingest, wakes, and the claims of what is in
    /// flight (shared with the workers of earlier configs whose attempts
    /// may still be running).
    pub inbox: Arc<Inbox>,
    /// The endpoints an operator paused; this worker starts nothing while
    /// its own is among them.
    pub paused: watch::Receiver<HashSet<String>>,
}

/// Where the worker is in reading its queue from the store.
struct QueueReading {
    /// Every unclaimed delivery due before this time (ms) has been started,
    /// or a wake will bring the cursor back to it.
    cursor: u64,
    /// When to read the queue next.
    next_at: Instant,
    last_full_read: Instant,
    /// The read under way, on a blocking thread: fresh deliveries go on
    /// being started meanwhile.
    under_way: Option<JoinHandle<Result<QueueRead, store::Error>>>,
    /// A wake came while the read was under way: what it woke for may have
    /// been written after the read began, so the cursor must not pass it.
    woken_during_read: bool,
    /// A wake (or a resume) asked for the next read: it is made whatever
    /// the counts say, since they follow a write by a moment.
    woken: bool,
    /// Starting the jobs of the last read moves the cursor to each one's
    /// due time; not when a wake came during that read, which moved the
    /// cursor back to where it woke for (the jobs may be due later).
    jobs_move_cursor: bool,
}

/// What one read of the queue found.
struct QueueRead {
    /// When it read (ms), and how many due deliveries it read at most.
    read_at: u64,
    limit: usize,
    /// Due deliveries the read went through (up to its limit).
    found: usize,
    /// Of those, how many were not claimed (and so were claimed now).
    claimed: usize,
    /// When the first delivery due later is due, if the read got that far.
    next_at: Option<u64>,
    /// The due time of the last delivery the read went through.
    last_due: Option<u64>,
    /// The claimed ones to send, their records read.
    jobs: Vec<Job>,
}

impl Worker {
    /// Runs until `stop` is cancelled; returns the attempts still in flight,
    /// for the shutdown grace period.
    pub async fn run(mut self, stop: CancellationToken) -> JoinSet<()> {
        let mut attempts = JoinSet::new();
        let mut queue = QueueReading {
            cursor: 0,
            next_at: Instant::now(),
            last_full_read: Instant::now(),
            under_way: None,
            woken_during_read: false,
            woken: false,
            jobs_move_cursor: true,
        };
        self.inbox.open();
        'work: while !stop.is_cancelled() {
            while attempts.try_join_next().is_some() {}
            if self.paused.borrow().contains(&self.endpoint) {
                // What was handed over stays in the store.
                self.inbox.close();
                tokio::select! {
                    _ = self.paused.changed() => {}
                    () = stop.cancelled() => {}
                }
                // Resumed: read the queue from the start.
                self.inbox.open();
                queue.cursor = 0;
                queue.next_at = Instant::now();
                queue.woken = true;
                continue;
            }
            if let Some(at) = self.inbox.take_earliest() {
                queue.cursor = queue.cursor.min(at);
                queue.next_at = Instant::now();
                queue.woken_during_read |= queue.under_way.is_some();
                queue.woken = true;
            }
            if queue.under_way.is_none() && Instant::now() >= queue.next_at {
                if queue.woken || self.context.shared.store.pending_count(&self.endpoint) > 0 {
                    self.start_read(&mut queue);
                } else {
                    // Nothing of this endpoint's is pending: nothing to read.
                    queue.next_at = Instant::now() + MAX_IDLE;
                }
                queue.woken = false;
            }
            // A finished read first: what waits in the store is older than
            // what was just handed over.
            let jobs = if queue.under_way.as_ref().is_some_and(JoinHandle::is_finished) {
                let result = queue.under_way.take().expect("a read under way").await;
                self.finish_read(&mut queue, result)
            } else if let Some(fresh) = self.inbox.take_fresh() {
                vec![Job::Fresh(fresh)]
            } else {
                tokio::select! {
                    result = async { queue.under_way.as_mut().expect("a read under way").await }, if queue.under_way.is_some() => {
                        queue.under_way = None;
                        self.finish_read(&mut queue, result)
                    }
                    () = self.inbox.notified() => continue,
                    () = tokio::time::sleep_until(queue.next_at.into()), if queue.under_way.is_none() => continue,
                    () = stop.cancelled() => continue,
                }
            };
            for job in jobs {
                if self.paused.borrow().contains(&self.endpoint) {
                    continue 'work;
                }
                // Stopped, or paused meanwhile: what was not started stays
                // in the store, read again from the start at the resume.
                let Some(pass) = self.pass(&stop).await else {
                    continue 'work;
                };
                if !matches!(job, Job::Fresh(_)) && queue.jobs_move_cursor {
                    queue.cursor = queue.cursor.max(job.due_at());
                }
                attempts.spawn(run_attempt(
                    self.context.clone(),
                    EndpointStack::clone(&self.stack),
                    pass,
                    job,
                    self.inbox.clone(),
                ));
            }
        }
        self.inbox.close();
        attempts
    }

    /// Waits until the next delivery may go: its circuit's admission (an
    /// open circuit lets it go at once, without a request; a half-open one
    /// holds it while a probe is in flight), then, to send it, the
    /// endpoint's permits, its rate limit's turn and a global permit.
    /// `None` when the worker stops or its endpoint is paused meanwhile.
    ///
    /// Boxed, once per pass: the worker's own future (which every idle
    /// worker of a fleet holds) need not carry this one's state.
    fn pass<'a>(&'a mut self, stop: &'a CancellationToken) -> Pin<Box<dyn Future<Output = Option<Pass>> + Send + 'a>> {
        let Worker {
            endpoint,
            limits,
            global,
            paused,
            context,
            ..
        } = self;
        let breakers = &context.shared.breakers;
        let admitted = async {
            loop {
                match breakers.admit(endpoint).await {
                    Admission::Refuse => return Pass::CircuitOpen,
                    Admission::Send(probe) => {
                        let permits = Permits::acquire(limits, global).await;
                        if probe.is_some() || breakers.is_closed(endpoint) {
                            return Pass::Send { permits, probe };
                        }
                        // The circuit opened while this delivery waited
                        // for its permits: it is judged again.
                    }
                }
            }
        };
        let paused = async {
            while paused.changed().await.is_ok() {
                if paused.borrow().contains(endpoint.as_str()) {
                    return;
                }
            }
            std::future::pending().await
        };
        Box::pin(async move {
            tokio::select! {
                pass = admitted => Some(pass),
                () = paused => None,
                () = stop.cancelled() => None,
            }
        })
    }

    /// Starts reading the due deliveries from the queue's cursor.
    fn start_read(&self, queue: &mut QueueReading) {
        if queue.last_full_read.elapsed() >= FULL_RESCAN {
            queue.cursor = 0;
            queue.last_full_read = Instant::now();
        }
        let (now, limit) = (clock::now_ms(), self.inbox.claimed() + SCAN_BATCH);
        queue.woken_during_read = false;
        let (store, endpoint, inbox) = (
            self.context.shared.store.clone(),
            self.endpoint.clone(),
            self.inbox.clone(),
        );
        let from = queue.cursor;
        queue.under_way = Some(tokio::task::spawn_blocking(move || {
            read_queue(&store, &endpoint, &inbox, from, now, limit)
        }));
    }

    /// Takes what a read found, and sets when to read again: at once if
    /// the read was cut at its limit, otherwise at the next due time it
    /// saw, a wake, or the safety net.
    fn finish_read(
        &self,
        queue: &mut QueueReading,
        result: Result<Result<QueueRead, store::Error>, tokio::task::JoinError>,
    ) -> Vec<Job> {
        let read = match result {
            Ok(Ok(scan)) => scan,
            Ok(Err(error)) => {
                tracing::error!(endpoint = %self.endpoint, %error, "cannot read due deliveries");
                queue.next_at = Instant::now() + STORE_ERROR_BACKOFF;
                return Vec::new();
            }
            Err(error) => {
                tracing::error!(endpoint = %self.endpoint, %error, "reading due deliveries panicked");
                queue.next_at = Instant::now() + STORE_ERROR_BACKOFF;
                return Vec::new();
            }
        };
        let full = read.found == read.limit;
        queue.jobs_move_cursor = !queue.woken_during_read;
        if full && read.claimed == 0 && !queue.woken_during_read {
            // Everything the read went through is claimed: in flight or
            // handed over. Each of those comes back with a wake unless it
            // finishes, so the next read goes on past them at once; reading
            // the same window again would find the same claims, while
            // unclaimed deliveries after it waited for the safety net.
            let past = read.last_due.unwrap_or(queue.cursor);
            queue.next_at = if past > queue.cursor {
                queue.cursor = past;
                Instant::now()
            } else {
                Instant::now() + CLAIMED_WINDOW_PAUSE
            };
            return read.jobs;
        }
        queue.next_at = if (full && read.claimed > 0) || queue.woken_during_read {
            Instant::now()
        } else {
            // Everything due by the read's time was found: the next read
            // starts there, past what finished since the last one. Later
            // work due earlier comes with a wake that moves the cursor back.
            if !full && !queue.woken_during_read {
                queue.cursor = queue.cursor.max(read.read_at);
            }
            let idle = read.next_at.map_or(MAX_IDLE, |at| {
                Duration::from_millis(at.saturating_sub(read.read_at)).min(MAX_IDLE)
            });
            Instant::now() + idle
        };
        read.jobs
    }
}

/// Reads `endpoint`'s queue from `from_ms`: claims each due delivery that
/// is not claimed and reads its records ([`load`]); on a thread that may
/// block.
fn read_queue(
    store: &Store,
    endpoint: &str,
    inbox: &Arc<Inbox>,
    from_ms: u64,
    now_ms: u64,
    limit: usize,
) -> Result<QueueRead, store::Error> {
    let scan = store.due_scan(endpoint, from_ms, now_ms, limit)?;
    let mut read = QueueRead {
        read_at: now_ms,
        limit,
        found: scan.due.len(),
        claimed: 0,
        next_at: scan.next_at,
        last_due: scan.due.last().map(|(at, _)| *at),
        jobs: Vec::new(),
    };
    for (due_at, id) in scan.due {
        if let Some(claim) = inbox.claim(&id) {
            read.claimed += 1;
            read.jobs.extend(load(store, endpoint, claim, due_at)?);
        }
    }
    Ok(read)
}

/// One attempt, with what follows it: a retry's due time wakes the
/// worker; a failure to record it makes it due again a little later.
async fn run_attempt(context: Arc<AttemptContext>, stack: EndpointStack, pass: Pass, job: Job, inbox: Arc<Inbox>) {
    let result = attempt(&context, stack, pass, &job).await;
    let due_at = job.due_at();
    let order_key = job.order_key().map(str::to_owned);
    // Its claim is given back here, also if the attempt panicked.
    let id = job.id().to_owned();
    drop(job);
    match result {
        Ok(Attempted::Recorded(NextStep::RetryAt(at))) => inbox.wake(at),
        // The next delivery of its key was made due with this outcome's
        // write, at its time, which is no earlier than this one's due time.
        Ok(Attempted::Recorded(NextStep::Succeeded | NextStep::Failed)) if order_key.is_some() => inbox.wake(due_at),
        Ok(_) => {}
        Err(error) => {
            tracing::error!(delivery = %id, %error, "cannot record an attempt; it will be made again");
            tokio::time::sleep(STORE_ERROR_BACKOFF).await;
            inbox.wake(due_at);
        }
    }
}
