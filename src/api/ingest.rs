//! The ingest API the platform app posts events to (SPEC section 3):
//! `POST /v1/events` and `POST /v1/events/batch`.
//!
//! An answer of 202 (or 200 for a faithful resubmission) means the event
//! and its deliveries are in RocksDB with the write-ahead log synced.

use std::collections::HashSet;
use std::future::Future;

use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::json;
use serde_json::value::RawValue;
use time::OffsetDateTime;
use tracing::{Instrument, Span};

use super::AppState;
use super::access;
use super::error::{ApiError, json_error, method_not_allowed, not_found};
use super::event_request::{Context, parse_batch_item, parse_event};
use super::json_body::read_json_body;
use crate::dispatch::handoff::Handoff;
use crate::store::{IngestOutcome, NewEvent};
use crate::telemetry::trace_context;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/events", post(post_event).fallback(method_not_allowed))
        .route("/v1/events/batch", post(post_batch).fallback(method_not_allowed))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            access::ingest_guard,
        ))
        .with_state(state)
}

async fn post_event(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let span = ingest_span("POST /v1/events", &headers);
    answer_in(span, accept_event(state, headers, body)).await
}

async fn post_batch(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let span = ingest_span("POST /v1/events/batch", &headers);
    answer_in(span, accept_batch(state, headers, body)).await
}

/// The span of one ingest request, a child of the app's span when it sent
/// a `traceparent`.
fn ingest_span(route: &'static str, headers: &HeaderMap) -> Span {
    let span = tracing::info_span!(
        "ingest",
        otel.name = route,
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty,
        events = tracing::field::Empty,
    );
    trace_context::adopt(&span, incoming_traceparent(headers));
    span
}

/// Runs `handling` in `span` and records its answer there.
async fn answer_in(span: Span, handling: impl Future<Output = Result<Response, ApiError>>) -> Response {
    let response = handling
        .instrument(span.clone())
        .await
        .unwrap_or_else(IntoResponse::into_response);
    span.record("http.response.status_code", response.status().as_u16());
    if response.status().is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    response
}

async fn accept_event(state: AppState, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let settings = state.settings();
    let bytes = read_json_body(&headers, body, settings.ingest.max_body_bytes).await?;
    let json = std::str::from_utf8(&bytes).map_err(|_| ApiError::invalid_json("the body is not valid UTF-8"))?;
    let traceparent = trace_to_store(&headers);
    let context = Context {
        settings: &settings,
        now: OffsetDateTime::now_utc(),
        traceparent: traceparent.as_deref(),
    };
    let event = parse_event(json, &context)?;
    let outcome = store_and_wake(&state, vec![event])
        .await?
        .pop()
        .expect("one outcome per event");
    let status = if outcome.duplicate {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json(outcome_json(&outcome))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Batch<'a> {
    #[serde(borrow)]
    events: Vec<&'a RawValue>,
}

async fn accept_batch(state: AppState, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let settings = state.settings();
    let bytes = read_json_body(&headers, body, settings.ingest.max_body_bytes).await?;
    let json = std::str::from_utf8(&bytes).map_err(|_| ApiError::invalid_json("the body is not valid UTF-8"))?;
    let batch: Batch<'_> = serde_json::from_str(json).map_err(json_error)?;
    let limit = settings.ingest.max_batch_events;
    if batch.events.len() > limit {
        return Err(ApiError::payload_too_large(format!(
            "the batch has {} events; at most {limit} are allowed (ingest.max_batch_events)",
            batch.events.len()
        )));
    }
    if batch.events.is_empty() {
        return Err(ApiError::invalid_field("`events` must hold at least one event"));
    }
    let traceparent = trace_to_store(&headers);
    let context = Context {
        settings: &settings,
        now: OffsetDateTime::now_utc(),
        traceparent: traceparent.as_deref(),
    };
    let mut events = Vec::with_capacity(batch.events.len());
    let mut ids = HashSet::with_capacity(batch.events.len());
    for (index, item) in batch.events.iter().enumerate() {
        let event = parse_batch_item(item, index, &context)?;
        if !event.id_generated && !ids.insert(event.id.clone()) {
            return Err(
                ApiError::invalid_field(format!("event id `{}` appears twice in this batch", event.id)).at(index),
            );
        }
        events.push(event);
    }
    let outcomes = store_and_wake(&state, events).await?;
    let answers: Vec<_> = outcomes.iter().map(outcome_json).collect();
    Ok((StatusCode::ACCEPTED, Json(json!({ "events": answers }))).into_response())
}

/// Stores the events, then hands their new deliveries to the endpoints'
/// workers ([`Handoff`]). With `cluster.ack = "cluster"`, also has
/// JetStream hold a copy of each pending delivery before answering; when
/// it cannot be reached, nothing is stored.
async fn store_and_wake(state: &AppState, events: Vec<NewEvent>) -> Result<Vec<IngestOutcome>, ApiError> {
    let copies = state.cluster.as_ref().filter(|cluster| cluster.copies_required());
    if let Some(cluster) = copies
        && !cluster.can_copy()
    {
        return Err(ApiError::cluster_unavailable(
            "JetStream cannot be reached to hold the event (cluster.ack = \"cluster\"); nothing was stored, retry later",
        ));
    }
    let types: Vec<String> = events.iter().map(|event| event.event.clone()).collect();
    let handoff = Handoff::claim(&state.inboxes, &events);
    Span::current().record("events", events.len());
    let write = tracing::info_span!("store.write", events = events.len());
    let outcomes = state.store.ingest(events).instrument(write).await?;
    handoff.hand_over(&outcomes);
    if let Some(cluster) = copies {
        let ids = outcomes.iter().map(|outcome| outcome.id.clone()).collect();
        cluster.copy(ids).await.map_err(|error| {
            ApiError::cluster_unavailable(format!(
                "{error}; the events are stored here: resubmit them with the same ids"
            ))
        })?;
    }
    for (event, outcome) in types.iter().zip(&outcomes) {
        if !outcome.duplicate {
            state.metrics.event_received(event);
        }
    }
    Ok(outcomes)
}

fn outcome_json(outcome: &IngestOutcome) -> serde_json::Value {
    let mut answer = json!({ "id": outcome.id, "deliveries": outcome.deliveries });
    if outcome.duplicate {
        answer["duplicate"] = json!(true);
    }
    answer
}

/// The trace context stored with the events of this request: the ingest
/// span's (the current span).
fn trace_to_store(headers: &HeaderMap) -> Option<String> {
    trace_context::to_store(&Span::current(), incoming_traceparent(headers))
}

/// The app's `traceparent`, if it sent one; [`trace_context`] ignores it
/// unless it is well-formed, as the W3C recommendation says.
fn incoming_traceparent(headers: &HeaderMap) -> Option<&str> {
    headers.get(trace_context::TRACEPARENT)?.to_str().ok()
}
