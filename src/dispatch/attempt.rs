//! One attempt: read the delivery, send the signed request through the
//! endpoint's stack, judge the outcome, and record it with the next step.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::StatusCode;
use time::OffsetDateTime;
use tower::{Service, ServiceExt};

use super::client::EndpointStack;
use super::controls::Controls;
use super::outcome::{ErrorKind, classify, read_snippet};
use super::request::{self, Message, Target};
use super::retry::{AfterFailure, RetryPolicy, parse_retry_after};
use crate::clock;
use crate::metrics::Metrics;
use crate::store::{self, AttemptRecord, DeliveryStatus, NextStep, Store};

/// How long hookd waits for the first 1 KiB of a response body.
const SNIPPET_PATIENCE: Duration = Duration::from_secs(2);

/// What one attempt needs besides the delivery id.
pub struct AttemptContext {
    pub store: Store,
    pub target: Arc<Target>,
    pub retry: RetryPolicy,
    pub controls: Arc<Controls>,
    pub metrics: Arc<Metrics>,
}

/// What an attempt did, for the worker's bookkeeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempted {
    /// Not sent: the delivery is gone or no longer pending.
    Skipped,
    Sent(NextStep),
}

/// Makes one attempt of delivery `id` with `stack`, which is already ready
/// (its permits held).
pub async fn attempt(context: &AttemptContext, mut stack: EndpointStack, id: &str) -> Result<Attempted, store::Error> {
    let Some(delivery) = context.store.delivery(id)? else {
        return Ok(Attempted::Skipped);
    };
    // A read of the queue made before this delivery's last attempt was
    // recorded can still name it: not yet, it is due at its new time.
    if delivery.status != DeliveryStatus::Pending || delivery.next_attempt_at > clock::now_ms() {
        return Ok(Attempted::Skipped);
    }
    let Some(event) = context.store.event(&delivery.event_id)? else {
        return Err(store::Error::Corrupt(format!("delivery {id} has no event")));
    };
    let number = delivery.attempt_count + 1;
    let sent_at = OffsetDateTime::now_utc();
    let request = request::build(
        &context.target,
        &Message {
            event_id: &delivery.event_id,
            event: &delivery.event,
            body: Bytes::from(event.body),
            attempt: number,
            traceparent: event.meta.traceparent.as_deref(),
        },
        sent_at,
    );
    let started = Instant::now();
    let in_flight = context.metrics.in_flight();
    let result = match stack.ready().await {
        Ok(ready) => ready.call(request).await,
        Err(error) => Err(error),
    };
    let latency = started.elapsed();
    drop(in_flight);
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
    let next = match error_kind {
        None => NextStep::Succeeded,
        // An operator's retry is one extra attempt, not a new schedule.
        Some(_) if delivery.manual_retry => NextStep::Failed,
        Some(_) => match context
            .retry
            .after_failure(number, retry_after, rand::random_range(-1.0..=1.0))
        {
            AfterFailure::RetryIn(delay) => {
                NextStep::RetryAt(now + u64::try_from(delay.as_millis()).unwrap_or(u64::MAX / 2))
            }
            AfterFailure::GiveUp => NextStep::Failed,
        },
    };
    let record = AttemptRecord {
        n: number,
        at: clock::unix_millis(sent_at),
        status_code: status.map(|status| status.as_u16()),
        error_kind: error_kind.map(|kind| kind.as_str().to_owned()),
        latency_ms: u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
        response_snippet: String::from_utf8_lossy(&snippet).into_owned(),
    };
    log_outcome(&context.target.endpoint.id, id, &record, next);
    context.store.record_attempt(id, &record, next, now)?;
    context.controls.record(&context.target.endpoint.id, &record);
    let endpoint = &context.target.endpoint.id;
    let result = record.error_kind.as_deref().unwrap_or("success");
    context.metrics.attempt(endpoint, result, latency.as_secs_f64());
    match next {
        NextStep::Succeeded => context.metrics.delivery_finished(endpoint, "succeeded"),
        NextStep::Failed => context.metrics.delivery_finished(endpoint, "failed"),
        NextStep::RetryAt(_) => {}
    }
    Ok(Attempted::Sent(next))
}

fn log_outcome(endpoint: &str, id: &str, record: &AttemptRecord, next: NextStep) {
    let status = record.status_code;
    let kind = record.error_kind.as_deref();
    match next {
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
