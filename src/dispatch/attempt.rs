//! One attempt: take the delivery (handed over by ingest, or read from the
//! store), send the signed request through the endpoint's stack (or, with
//! the endpoint's circuit open, nothing), judge the outcome, and record it
//! with the next step.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::StatusCode;
use time::OffsetDateTime;
use tower::{Service, ServiceExt};

use super::adaptive_limit::signal_of;
use super::breaker::{Breakers, CircuitChange, Probe};
use super::client::EndpointStack;
use super::health::EndpointHealth;
use super::inbox::{Claim, Fresh, SendableEvent};
use super::outcome::{ErrorKind, classify, read_snippet};
use super::permits::Permits;
use super::request::{self, Message, Target};
use super::retry::{AfterFailure, RetryPolicy, parse_retry_after};
use super::stats::{Finished, Stats};
use crate::catalog::HOOKD_EVENT_PREFIX;
use crate::clock;
use crate::metrics::Metrics;
use crate::operations::{FailedDelivery, Operations};
use crate::store::{self, AttemptRecord, Change, DeliveryStatus, Expect, NextStep, Store, Transition};

/// How long hookd waits for the first 1 KiB of a response body.
const SNIPPET_PATIENCE: Duration = Duration::from_secs(2);

/// What one attempt needs besides its delivery: its endpoint's own parts,
/// and those every endpoint shares (one pointer, so each of a fleet's
/// workers holds three).
pub struct AttemptContext {
    pub target: Arc<Target>,
    /// This endpoint's health figures.
    pub health: Arc<EndpointHealth>,
    pub shared: Arc<SharedContext>,
}

/// What the attempts of every endpoint of one config share.
pub struct SharedContext {
    pub store: Store,
    pub retry: RetryPolicy,
    /// Every endpoint's circuit.
    pub breakers: Arc<Breakers>,
    /// Every endpoint's attempts per minute.
    pub stats: Arc<Stats>,
    /// Where a delivery that failed for good and a change of the circuit
    /// are reported.
    pub operations: Arc<Operations>,
    pub metrics: Arc<Metrics>,
}

/// What an attempt did, for the worker's bookkeeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempted {
    /// Not made: the delivery is gone, no longer pending, or its record
    /// cannot be read (it was taken off the queue).
    Skipped,
    /// Recorded, with the step that follows (sent, or failed without a
    /// request because its records cannot be read).
    Recorded(NextStep),
}

/// What the worker let an attempt go with.
#[derive(Debug)]
pub enum Pass {
    /// The endpoint's circuit is open: a `circuit_open` attempt, no request.
    CircuitOpen,
    /// A request, holding its permits (and, as a half-open circuit's probe,
    /// the probe) until it is over.
    Send { permits: Permits, probe: Option<Probe> },
}

/// A delivery the worker starts, holding its claim until the attempt is
/// over.
#[derive(Debug)]
pub enum Job {
    /// Handed over by ingest: stored, never attempted, sent from memory.
    Fresh(Fresh),
    /// Read from the queue with its event ([`load`]).
    Stored { claim: Claim, outgoing: Outgoing },
    /// Read from the queue, but its event is missing or damaged: it fails
    /// without a request.
    Unsendable {
        claim: Claim,
        outgoing: Outgoing,
        reason: String,
    },
}

impl Job {
    pub fn id(&self) -> &str {
        match self {
            Job::Fresh(fresh) => fresh.claim.id(),
            Job::Stored { claim, .. } | Job::Unsendable { claim, .. } => claim.id(),
        }
    }

    /// The key whose order it holds a place in: the next of that key may
    /// go once it is finished.
    pub fn order_key(&self) -> Option<&str> {
        match self {
            Job::Fresh(_) => None,
            Job::Stored { outgoing, .. } | Job::Unsendable { outgoing, .. } => outgoing.order_key.as_deref(),
        }
    }

    /// Its place in the queue: the due time the store holds.
    pub fn due_at(&self) -> u64 {
        match self {
            Job::Fresh(fresh) => fresh.event.received_at,
            Job::Stored { outgoing, .. } | Job::Unsendable { outgoing, .. } => outgoing.due_at,
        }
    }
}

/// The delivery one attempt sends.
#[derive(Debug)]
pub struct Outgoing {
    event: Arc<SendableEvent>,
    /// Its due time, as the store holds it: what the outcome expects.
    due_at: u64,
    /// This attempt's number.
    number: u32,
    /// An operator's retry: if it fails, the delivery fails.
    manual_retry: bool,
    /// The `ordering_key` whose order it has a place in, if any.
    order_key: Option<String>,
}

/// Makes one attempt of `job` through `stack`, as `pass` lets it.
///
/// A delivery whose records the store cannot read is never retried every
/// second: one whose event is missing or damaged fails at once with error
/// kind `corrupt_record`; one whose own record is damaged leaves the queue
/// ([`load`]). One whose event the endpoint's tenant, as configured now,
/// does not admit fails at once with `tenant_mismatch`.
pub async fn attempt(
    context: &AttemptContext,
    stack: EndpointStack,
    pass: Pass,
    job: &Job,
) -> Result<Attempted, store::Error> {
    let fresh;
    let outgoing = match job {
        Job::Fresh(handed_over) => {
            fresh = Outgoing {
                event: handed_over.event.clone(),
                due_at: handed_over.event.received_at,
                number: 1,
                manual_retry: false,
                order_key: None,
            };
            &fresh
        }
        Job::Stored { outgoing, .. } => outgoing,
        Job::Unsendable { outgoing, reason, .. } => {
            return fail_without_request(context, job.id(), outgoing, ErrorKind::CorruptRecord, reason).await;
        }
    };
    let endpoint = &context.target.endpoint;
    let tenant = outgoing.event.tenant.as_deref();
    // hookd's own events have no tenant and go to the alert endpoint
    // whatever its tenant says.
    let own_event = outgoing.event.event.starts_with(HOOKD_EVENT_PREFIX);
    if !own_event && !endpoint.audience.admits(tenant) {
        let reason = format!(
            "the endpoint's tenant ({}) does not admit events of tenant {}",
            endpoint.audience,
            tenant.unwrap_or("(none)")
        );
        return fail_without_request(context, job.id(), outgoing, ErrorKind::TenantMismatch, &reason).await;
    }
    match pass {
        Pass::CircuitOpen => refuse(context, job.id(), outgoing).await,
        Pass::Send { permits, probe } => {
            let result = send(context, stack, permits, job.id(), outgoing).await;
            // The probe is over once its outcome is known to the breaker.
            drop(probe);
            result
        }
    }
}

/// Reads a claimed delivery from `endpoint`'s queue (due at `due_at`) and
/// its event, for a worker's read of its queue, on a thread that may
/// block. `None` when there is nothing to send: gone, no longer pending,
/// not yet due, or its record is damaged (then it leaves the queue, so it
/// is not read again and again).
pub fn load(store: &Store, endpoint: &str, claim: Claim, due_at: u64) -> Result<Option<Job>, store::Error> {
    let id = claim.id();
    let delivery = match store.delivery(id) {
        Ok(Some(delivery)) => delivery,
        Ok(None) => return Ok(None),
        Err(store::Error::Corrupt(reason)) => {
            tracing::error!(endpoint, delivery = id, %reason, "a delivery record cannot be read; it leaves the queue");
            store.unqueue(endpoint, due_at, id)?;
            return Ok(None);
        }
        Err(error) => return Err(error),
    };
    // A read of the queue made before this delivery's last attempt was
    // recorded can still name it: not yet, it is due at its new time.
    if delivery.status != DeliveryStatus::Pending || delivery.next_attempt_at > clock::now_ms() {
        return Ok(None);
    }
    let outgoing = |body: Bytes, traceparent: Option<String>| Outgoing {
        event: Arc::new(SendableEvent {
            event_id: delivery.event_id.clone(),
            event: delivery.event.clone(),
            body,
            traceparent,
            tenant: delivery.tenant.clone(),
            received_at: delivery.created_at,
        }),
        due_at: delivery.next_attempt_at,
        number: delivery.attempt_count + 1,
        manual_retry: delivery.manual_retry,
        order_key: delivery.order.as_ref().map(|place| place.key.clone()),
    };
    let unsendable = |claim, reason: &str| Job::Unsendable {
        claim,
        outgoing: outgoing(Bytes::new(), None),
        reason: reason.to_owned(),
    };
    Ok(Some(match store.event(&delivery.event_id) {
        Ok(Some(event)) => Job::Stored {
            outgoing: outgoing(Bytes::from(event.body), event.meta.traceparent),
            claim,
        },
        Ok(None) => unsendable(claim, "its event is missing from the store"),
        Err(store::Error::Corrupt(reason)) => unsendable(claim, &reason),
        Err(error) => return Err(error),
    }))
}

/// Sends `outgoing`, judges the outcome, and records it with the next step.
async fn send(
    context: &AttemptContext,
    mut stack: EndpointStack,
    mut permits: Permits,
    id: &str,
    outgoing: &Outgoing,
) -> Result<Attempted, store::Error> {
    let event = &outgoing.event;
    let sent_at = OffsetDateTime::now_utc();
    let message = Message {
        event_id: &event.event_id,
        event: &event.event,
        body: event.body.clone(),
        attempt: outgoing.number,
        traceparent: event.traceparent.as_deref(),
    };
    let Ok(request) = request::build(&context.target, &message, sent_at) else {
        return fail_without_request(
            context,
            id,
            outgoing,
            ErrorKind::CorruptRecord,
            "the stored event id or type is not a valid header value",
        )
        .await;
    };
    let started = Instant::now();
    let in_flight = context.shared.metrics.in_flight();
    let result = match stack.ready().await {
        Ok(ready) => permits.await_response(ready.call(request)).await,
        Err(error) => Err(error),
    };
    let latency = started.elapsed();
    drop(in_flight);
    let signal = signal_of(&result);
    let (status, error_kind, retry_after, snippet) = match result {
        Ok(response) => {
            let status = response.status();
            let retry_after = (status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE)
                .then(|| response.headers().get(http::header::RETRY_AFTER))
                .flatten()
                .and_then(|value| value.to_str().ok())
                .and_then(|value| parse_retry_after(value, SystemTime::now()));
            let snippet = read_snippet(response.into_body(), SNIPPET_PATIENCE).await;
            (Some(status), ErrorKind::of_status(status), retry_after, snippet)
        }
        Err(error) => (None, Some(classify(error.as_ref())), None, Bytes::new()),
    };
    let now = clock::now_ms();
    // Before the permits go back: a delivery waiting for them must find
    // the circuit as this outcome leaves it.
    let change = context
        .shared
        .breakers
        .record(&context.target.endpoint.id, error_kind, now);
    permits.finish(signal);
    if let Some(change) = change {
        circuit_changed(context, change).await;
    }
    let next = match error_kind {
        None => NextStep::Succeeded,
        Some(_) => next_after_failure(context, outgoing, retry_after, now),
    };
    let attempt = AttemptRecord {
        n: outgoing.number,
        at: clock::unix_millis(sent_at),
        status_code: status.map(|status| status.as_u16()),
        error_kind: error_kind.map(|kind| kind.as_str().to_owned()),
        latency_ms: u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
        response_snippet: String::from_utf8_lossy(&snippet).into_owned(),
    };
    record(context, id, outgoing, attempt, next, Some(latency)).await
}

/// The step after a failed attempt: the next one as the schedule (and a
/// `Retry-After`) says, or none: when the schedule is over, or after an
/// operator's retry, which is one extra attempt, not a new schedule.
fn next_after_failure(
    context: &AttemptContext,
    outgoing: &Outgoing,
    retry_after: Option<Duration>,
    now: u64,
) -> NextStep {
    if outgoing.manual_retry {
        return NextStep::Failed;
    }
    match context
        .shared
        .retry
        .after_failure(outgoing.number, retry_after, rand::random_range(-1.0..=1.0))
    {
        AfterFailure::RetryIn(delay) => NextStep::RetryAt(clock::after(now, delay)),
        AfterFailure::GiveUp => NextStep::Failed,
    }
}

/// Logs a change of the endpoint's circuit and keeps it in the store.
async fn circuit_changed(context: &AttemptContext, change: CircuitChange) {
    let endpoint = &context.target.endpoint;
    let tenant = endpoint.audience.as_written();
    match change {
        CircuitChange::Opened(open) => {
            tracing::warn!(
                endpoint = %endpoint.id,
                tenant,
                failures = open.failures,
                cooldown_ms = open.cooldown_ms,
                "the endpoint's circuit opened: no requests until the cooldown is over"
            );
            context.shared.stats.circuit_opened(&endpoint.id, open.opened_at_ms);
            context
                .shared
                .operations
                .circuit_opened(endpoint, open.failures, open.cooldown_ms);
        }
        CircuitChange::Reopened(open) => tracing::warn!(
            endpoint = %endpoint.id,
            tenant,
            cooldown_ms = open.cooldown_ms,
            "the probe failed: the endpoint's circuit is open again"
        ),
        CircuitChange::Closed(open) => {
            tracing::info!(endpoint = %endpoint.id, tenant, "the endpoint's circuit closed");
            context
                .shared
                .stats
                .circuit_closed(&endpoint.id, open.opened_at_ms, clock::now_ms());
            context
                .shared
                .operations
                .circuit_closed(endpoint, open.failures, open.cooldown_ms);
        }
    }
    if let Err(error) = context
        .shared
        .breakers
        .persist(&endpoint.id, &context.shared.store)
        .await
    {
        tracing::error!(endpoint = %endpoint.id, %error, "cannot keep the circuit's state in the store");
    }
}

/// The endpoint's circuit is open: an attempt of kind `circuit_open`,
/// without a request, and the delivery keeps its schedule.
async fn refuse(context: &AttemptContext, id: &str, outgoing: &Outgoing) -> Result<Attempted, store::Error> {
    let now = clock::now_ms();
    let attempt = AttemptRecord {
        n: outgoing.number,
        at: now,
        status_code: None,
        error_kind: Some(ErrorKind::CircuitOpen.as_str().to_owned()),
        latency_ms: 0,
        response_snippet: "the endpoint's circuit is open: no request was sent".to_owned(),
    };
    let next = next_after_failure(context, outgoing, None, now);
    record(context, id, outgoing, attempt, next, None).await
}

/// Fails a delivery that must not or cannot be sent (its stored records
/// are missing or damaged, or its tenant is not the endpoint's): one
/// attempt of `kind`, no request, the reason as its snippet.
async fn fail_without_request(
    context: &AttemptContext,
    id: &str,
    outgoing: &Outgoing,
    kind: ErrorKind,
    reason: &str,
) -> Result<Attempted, store::Error> {
    let endpoint = &context.target.endpoint;
    tracing::error!(
        endpoint = %endpoint.id,
        tenant = endpoint.audience.as_written(),
        delivery = id,
        error_kind = kind.as_str(),
        reason,
        "a delivery is not sent: it fails"
    );
    let attempt = AttemptRecord {
        n: outgoing.number,
        at: clock::now_ms(),
        status_code: None,
        error_kind: Some(kind.as_str().to_owned()),
        latency_ms: 0,
        response_snippet: reason.to_owned(),
    };
    record(context, id, outgoing, attempt, NextStep::Failed, None).await
}

/// Records an attempt's outcome: in the store, if the delivery is still
/// pending and due at `due_at` as the attempt found it, and in the health
/// figures, the stats and the metrics. `latency`: none when no request
/// was sent.
async fn record(
    context: &AttemptContext,
    id: &str,
    outgoing: &Outgoing,
    attempt: AttemptRecord,
    next: NextStep,
    latency: Option<Duration>,
) -> Result<Attempted, store::Error> {
    let endpoint = &context.target.endpoint.id;
    log_outcome(endpoint, id, &attempt, next);
    context.health.record(&attempt);
    let (result, number, status_code) = (attempt.error_kind.clone(), attempt.n, attempt.status_code);
    let transition = Transition {
        id: id.to_owned(),
        expect: Expect::PendingDueAt(outgoing.due_at),
        change: Change::Attempted { attempt, next },
        now_ms: clock::now_ms(),
    };
    if !context.shared.store.apply(transition).await?.is_done() {
        // The sweeper expired it meanwhile: its outcome stays as recorded.
        tracing::warn!(
            endpoint,
            delivery = id,
            "the delivery changed while its attempt was in flight; this outcome is not recorded"
        );
        return Ok(Attempted::Skipped);
    }
    let result_name = result.as_deref().unwrap_or("success");
    context
        .shared
        .metrics
        .attempt(endpoint, result_name, latency.unwrap_or_default().as_secs_f64());
    let finished = match next {
        NextStep::Succeeded => Finished::Succeeded,
        NextStep::Failed => Finished::Failed,
        NextStep::RetryAt(_) => Finished::No,
    };
    context.shared.stats.record(
        endpoint,
        clock::now_ms(),
        result_name,
        latency.map(|latency| u64::try_from(latency.as_millis()).unwrap_or(u64::MAX)),
        finished,
    );
    match next {
        NextStep::Succeeded => context.shared.metrics.delivery_finished(endpoint, "succeeded"),
        NextStep::Failed => {
            context.shared.metrics.delivery_finished(endpoint, "failed");
            let event = &outgoing.event;
            context.shared.operations.delivery_failed(
                &context.target.endpoint,
                &FailedDelivery {
                    delivery_id: id,
                    event_id: &event.event_id,
                    event: &event.event,
                    attempts: number,
                    error_kind: result.as_deref(),
                    status_code,
                },
            );
        }
        NextStep::RetryAt(_) => {}
    }
    Ok(Attempted::Recorded(next))
}

fn log_outcome(endpoint: &str, id: &str, record: &AttemptRecord, next: NextStep) {
    let status = record.status_code;
    let kind = record.error_kind.as_deref();
    match next {
        // The circuit's opening was logged; each delivery it holds is not.
        NextStep::RetryAt(at) if kind == Some(ErrorKind::CircuitOpen.as_str()) => tracing::debug!(
            endpoint,
            delivery = id,
            attempt = record.n,
            retry_at = %clock::from_millis(at),
            "circuit open: no request; will retry"
        ),
        NextStep::Succeeded => {
            tracing::debug!(
                endpoint,
                delivery = id,
                attempt = record.n,
                ?status,
                latency_ms = record.latency_ms,
                "delivered"
            );
        }
        NextStep::RetryAt(at) => tracing::warn!(
            endpoint,
            delivery = id,
            attempt = record.n,
            ?status,
            error_kind = kind,
            retry_at = %clock::from_millis(at),
            "attempt failed; will retry"
        ),
        NextStep::Failed => tracing::warn!(
            endpoint,
            delivery = id,
            attempt = record.n,
            ?status,
            error_kind = kind,
            "attempt failed; delivery failed"
        ),
    }
}
