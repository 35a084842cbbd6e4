//! `/v1/endpoints`: health, pause and resume, bulk retry, test pings.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::response::IntoResponse;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::page_size::page_size;
use super::views::EndpointView;
use super::{blocking, probe_now};
use crate::api::AppState;
use crate::api::error::ApiError;
use crate::api::extract::{Path, Query};
use crate::api::json_body::read_json_body;
use crate::catalog::TEST_EVENT;
use crate::clock;
use crate::config::Endpoint;
use crate::event::made_by_hookd;
use crate::tenant::Audience;

/// The largest body the admin POSTs take.
const MAX_ADMIN_BODY: usize = 64 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// A tenant id; `*`: the endpoints for every tenant; empty: those
    /// without a tenant.
    tenant: Option<String>,
    /// Part of the id.
    q: Option<String>,
    limit: Option<String>,
    /// The last id of the previous page.
    cursor: Option<String>,
}

/// The endpoints sorted by id, a page at a time, filtered by tenant and
/// by part of the id.
pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let limit = page_size(query.limit.as_deref())?;
    let audience = match query.tenant.as_deref() {
        None => None,
        Some("") => Some(Audience::Untenanted),
        Some(written) => Some(
            Audience::parse(Some(written)).map_err(|reason| ApiError::invalid_field(format!("`tenant`: {reason}")))?,
        ),
    };
    let settings = state.settings();
    let (parked, failed_there) = match &state.cluster {
        Some(cluster) => {
            let (parked, failed) = tokio::join!(cluster.parked_counts(), cluster.failed_counts());
            (Some(parked), failed)
        }
        None => (None, None),
    };
    let mut matching = settings
        .endpoints
        .sorted_after(query.cursor.as_deref())
        .filter(|endpoint| audience.as_ref().is_none_or(|wanted| *wanted == endpoint.audience))
        .filter(|endpoint| query.q.as_deref().is_none_or(|part| endpoint.id.contains(part)));
    let page: Vec<EndpointView> = matching
        .by_ref()
        .take(limit)
        .map(|endpoint| {
            let mut view = view(&state, endpoint);
            view.failed += failed_there
                .as_ref()
                .and_then(|counts| counts.get(&endpoint.id))
                .map_or(0, |&n| n as usize);
            view.parked = parked.as_ref().map(|counts| {
                counts
                    .as_ref()
                    .map(|counts| counts.get(&endpoint.id).copied().unwrap_or(0))
            });
            view
        })
        .collect();
    let next_cursor = match page.last() {
        Some(last) if matching.next().is_some() => Some(last.id.clone()),
        _ => None,
    };
    Ok(Json(json!({ "data": page, "next_cursor": next_cursor })))
}

pub async fn pause(state: State<AppState>, id: Path<String>) -> Result<impl IntoResponse, ApiError> {
    set_paused(state, id, true).await
}

pub async fn resume(state: State<AppState>, id: Path<String>) -> Result<impl IntoResponse, ApiError> {
    set_paused(state, id, false).await
}

async fn set_paused(
    State(state): State<AppState>,
    Path(id): Path<String>,
    paused: bool,
) -> Result<impl IntoResponse, ApiError> {
    let endpoint = find(&state, &id)?;
    let endpoint_id = endpoint.id.clone();
    // In cluster mode every replica holds the pause: it is shared first.
    if let Some(cluster) = &state.cluster {
        cluster
            .share_pause(&endpoint.id, paused)
            .await
            .map_err(|error| ApiError::cluster_unavailable(format!("{error}; nothing was changed, retry later")))?;
    }
    let turn = state.pauses.turn().await;
    blocking(&state, move |store| store.set_endpoint_paused(&endpoint_id, paused)).await?;
    state.pauses.set(&endpoint.id, paused);
    drop(turn);
    if !paused {
        probe_now(&state, &endpoint.id).await?;
        state.inboxes.wake(&endpoint.id, 0);
    }
    tracing::info!(endpoint = %endpoint.id, paused, "operator changed the endpoint's pause");
    Ok(Json(view(&state, &endpoint)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RetryFailed {
    since: Option<String>,
}

pub async fn retry_failed(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    let endpoint = find(&state, &id)?;
    let bytes = read_json_body(&headers, body, MAX_ADMIN_BODY).await?;
    let request: RetryFailed = if bytes.iter().all(u8::is_ascii_whitespace) {
        RetryFailed::default()
    } else {
        serde_json::from_slice(&bytes).map_err(crate::api::error::json_error)?
    };
    let since_ms = match request.since.as_deref() {
        None => 0,
        Some(text) => OffsetDateTime::parse(text, &Rfc3339)
            .map(clock::unix_millis)
            .map_err(|_| ApiError::invalid_field(format!("`since` must be an RFC 3339 time, not `{text}`")))?,
    };
    probe_now(&state, &endpoint.id).await?;
    // Cluster mode: the failed deliveries JetStream holds first, so a
    // JetStream that does not answer changes nothing here.
    let in_cluster = match &state.cluster {
        Some(cluster) => cluster
            .retry_failed(&state.store, &endpoint.id, since_ms)
            .await
            .map_err(|error| ApiError::cluster_unavailable(format!("{error}; retry later")))?,
        None => 0,
    };
    let endpoint_id = endpoint.id.clone();
    let retried = in_cluster
        + blocking(&state, move |store| {
            // One that an operator retried meanwhile is no longer failed.
            store.retry_deliveries(store.failed_since(&endpoint_id, since_ms)?, clock::now_ms())
        })
        .await?;
    state.inboxes.wake(&endpoint.id, 0);
    tracing::info!(endpoint = %endpoint.id, retried, "operator retried failed deliveries");
    Ok((StatusCode::ACCEPTED, Json(json!({ "retried": retried }))))
}

/// Sends a signed `webhook.test` event to this endpoint only.
pub async fn test(State(state): State<AppState>, Path(id): Path<String>) -> Result<impl IntoResponse, ApiError> {
    let endpoint = find(&state, &id)?;
    let data = r#"{"message":"A test webhook from hookd. No action is needed."}"#;
    // The ping belongs to the endpoint's own tenant, so the check before
    // each attempt admits it.
    let tenant = match &endpoint.audience {
        Audience::Tenant(id) => Some(id.clone()),
        Audience::Everyone | Audience::Untenanted => None,
    };
    let event = made_by_hookd(TEST_EVENT, data, tenant, &endpoint.id, OffsetDateTime::now_utc());
    let (event_id, received_at) = (event.id.clone(), event.received_at);
    probe_now(&state, &endpoint.id).await?;
    state.store.ingest(vec![event]).await?;
    state.inboxes.wake(&endpoint.id, received_at);
    Ok((StatusCode::ACCEPTED, Json(json!({ "id": event_id }))))
}

fn find(state: &AppState, id: &str) -> Result<Arc<Endpoint>, ApiError> {
    state
        .settings()
        .endpoints
        .get(id)
        .cloned()
        .ok_or_else(|| ApiError::no_such("endpoint", id))
}

/// The endpoint with its health and counts (kept as work changes: no
/// store read).
fn view(state: &AppState, endpoint: &Endpoint) -> EndpointView {
    let pending = state.store.pending_count(&endpoint.id);
    let failed = state.store.failed_count(&endpoint.id);
    EndpointView::new(endpoint, state, pending, failed)
}
