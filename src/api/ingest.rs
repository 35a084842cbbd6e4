//! The ingest API the platform app posts events to (SPEC section 3):
//! `POST /v1/events` and `POST /v1/events/batch`.
//!
//! An answer of 202 (or 200 for a faithful resubmission) means the event
//! and its deliveries are in RocksDB with the write-ahead log synced.

use std::collections::HashSet;

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

use super::AppState;
use super::error::{ApiError, json_error, method_not_allowed, not_found};
use super::event_request::{Context, parse_batch_item, parse_event};
use super::json_body::read_json_body;
use crate::store::{IngestOutcome, NewEvent};

/// The W3C trace context header.
const TRACEPARENT: &str = "traceparent";

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/events", post(post_event).fallback(method_not_allowed))
        .route("/v1/events/batch", post(post_batch).fallback(method_not_allowed))
        .fallback(not_found)
        .with_state(state)
}

async fn post_event(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let settings = state.settings();
    let bytes = read_json_body(&headers, body, settings.ingest.max_body_bytes).await?;
    let json = std::str::from_utf8(&bytes).map_err(|_| ApiError::invalid_json("the body is not valid UTF-8"))?;
    let context = Context {
        settings: &settings,
        now: OffsetDateTime::now_utc(),
        traceparent: traceparent(&headers),
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

async fn post_batch(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
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
    let context = Context {
        settings: &settings,
        now: OffsetDateTime::now_utc(),
        traceparent: traceparent(&headers),
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

/// Stores the events, then wakes the workers of the endpoints that got new
/// deliveries.
async fn store_and_wake(state: &AppState, events: Vec<NewEvent>) -> Result<Vec<IngestOutcome>, ApiError> {
    let deliveries: Vec<(Vec<String>, u64, String)> = events
        .iter()
        .map(|event| (event.endpoints.clone(), event.received_at, event.event.clone()))
        .collect();
    let outcomes = state.store.ingest(events).await?;
    for ((endpoints, due, event), outcome) in deliveries.iter().zip(&outcomes) {
        if !outcome.duplicate {
            state.metrics.event_received(event);
            for endpoint in endpoints {
                state.wakeups.wake(endpoint, *due);
            }
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

/// The incoming `traceparent`, kept only if it is well-formed W3C trace
/// context (`00-<32 hex>-<16 hex>-<2 hex>`); a malformed one is ignored, as
/// the W3C recommendation says.
fn traceparent(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(TRACEPARENT)?.to_str().ok()?;
    let parts: Vec<&str> = value.split('-').collect();
    let hex = |text: &str, len: usize| text.len() == len && text.bytes().all(|b| b.is_ascii_hexdigit());
    let well_formed = parts.len() == 4
        && hex(parts[0], 2)
        && parts[0] != "ff"
        && hex(parts[1], 32)
        && hex(parts[2], 16)
        && hex(parts[3], 2)
        && parts[1].bytes().any(|b| b != b'0')
        && parts[2].bytes().any(|b| b != b'0');
    well_formed.then_some(value)
}
