//! `/v1/deliveries`: listing newest first with filters and a cursor, one
//! delivery with its payload and attempts, and the manual retry.

use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use http::StatusCode;
use serde::Deserialize;
use serde_json::json;

use super::page_size::page_size;
use super::views::{AttemptView, DeliveryDetail, DeliveryView, shown_status};
use super::{blocking, probe_now};
use crate::api::AppState;
use crate::api::error::{ApiError, code};
use crate::api::extract::{Path, Query};
use crate::clock;
use crate::store::{DeliveryRecord, DeliveryStatus, RetryError};

/// Deliveries one listing reads at most. A sparse filter over a large store
/// answers with what it found so far and a cursor to go on from.
const SCAN_BUDGET: usize = 20_000;
const STATUSES: [&str; 4] = ["pending", "succeeded", "failed", "paused"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    status: Option<String>,
    endpoint: Option<String>,
    event: Option<String>,
    /// Empty: deliveries of events without a tenant.
    tenant: Option<String>,
    /// The deliveries of one event: read by key, not found by a scan.
    event_id: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let limit = page_size(query.limit.as_deref())?;
    if let Some(status) = query.status.as_deref()
        && !STATUSES.contains(&status)
    {
        return Err(ApiError::invalid_field(format!(
            "`status` must be one of {}",
            STATUSES.join(", ")
        )));
    }
    let cursor = query
        .cursor
        .as_deref()
        .map(|text| hex::decode(text).map_err(|_| ApiError::invalid_field("`cursor` is not one this API handed out")))
        .transpose()?;
    let settings = state.settings();
    let pauses = state.pauses.clone();
    let (data, next_cursor) = blocking(&state, move |store| {
        let mut data = Vec::new();
        // The delivery as listed, if the filters want it.
        let wanted_view = |id: &str, record: &DeliveryRecord| {
            let status = shown_status(record, &settings, &pauses);
            let wanted = query.status.as_deref().is_none_or(|wanted| wanted == status)
                && query.endpoint.as_deref().is_none_or(|wanted| wanted == record.endpoint)
                && query.event.as_deref().is_none_or(|wanted| wanted == record.event)
                && query
                    .tenant
                    .as_deref()
                    .is_none_or(|wanted| record.tenant.as_deref().unwrap_or_default() == wanted);
            wanted.then(|| DeliveryView::new(id, record, status))
        };
        if let Some(event_id) = &query.event_id {
            for (id, record) in store.deliveries_of_event(event_id)? {
                data.extend(wanted_view(&id, &record));
            }
            data.truncate(limit);
            return Ok((data, None));
        }
        let mut scanned = 0usize;
        let mut last_key: Option<Vec<u8>> = None;
        store.scan_recent(cursor.as_deref(), |key, id, record| {
            scanned += 1;
            last_key = Some(key.to_vec());
            data.extend(wanted_view(id, &record));
            data.len() < limit && scanned < SCAN_BUDGET
        })?;
        // More may follow only if the scan stopped early.
        let stopped_early = data.len() == limit || scanned == SCAN_BUDGET;
        Ok((data, last_key.filter(|_| stopped_early).map(hex::encode)))
    })
    .await?;
    Ok(Json(json!({ "data": data, "next_cursor": next_cursor })))
}

pub async fn show(State(state): State<AppState>, Path(id): Path<String>) -> Result<impl IntoResponse, ApiError> {
    let settings = state.settings();
    let pauses = state.pauses.clone();
    let lookup = id.clone();
    let detail = blocking(&state, move |store| {
        let Some(record) = store.delivery(&lookup)? else {
            return Ok(None);
        };
        let payload = store
            .event(&record.event_id)?
            .map(|event| String::from_utf8_lossy(&event.body).into_owned())
            .unwrap_or_default();
        let attempts = store.attempts(&lookup)?.into_iter().map(AttemptView::from).collect();
        let status = shown_status(&record, &settings, &pauses);
        Ok(Some(DeliveryDetail {
            delivery: DeliveryView::new(&lookup, &record, status),
            payload,
            attempts,
        }))
    })
    .await?;
    detail.map(Json).ok_or_else(|| ApiError::no_such("delivery", &id))
}

pub async fn retry(State(state): State<AppState>, Path(id): Path<String>) -> Result<impl IntoResponse, ApiError> {
    let lookup = id.clone();
    let failed_to = blocking(&state, move |store| {
        Ok(store
            .delivery(&lookup)?
            .filter(|record| record.status == DeliveryStatus::Failed)
            .map(|record| record.endpoint))
    })
    .await?;
    // Before the retry is due, so that it is the probe.
    if let Some(endpoint) = failed_to {
        probe_now(&state, &endpoint).await?;
    }
    let lookup = id.clone();
    let now = clock::now_ms();
    let outcome = blocking(&state, move |store| {
        Ok(match store.retry_delivery(&lookup, now) {
            Ok(()) => Ok(store.delivery(&lookup)?.map(|record| record.endpoint)),
            Err(RetryError::Store(error)) => return Err(error),
            Err(error) => Err(error),
        })
    })
    .await?;
    match outcome {
        Ok(endpoint) => {
            if let Some(endpoint) = endpoint {
                state.inboxes.wake(&endpoint, now);
            }
            tracing::info!(delivery = %id, "operator retried a delivery");
            Ok((StatusCode::ACCEPTED, Json(json!({ "id": id, "status": "pending" }))))
        }
        // Cluster mode: JetStream may hold it, failed on another replica.
        Err(RetryError::NotFound(_)) => match &state.cluster {
            Some(cluster) => match cluster.retry_one(&state.store, &id).await {
                Ok(true) => {
                    if let Some((_, endpoint)) = id.rsplit_once('.') {
                        state.inboxes.wake(endpoint, now);
                    }
                    tracing::info!(delivery = %id, "operator retried a delivery JetStream held");
                    Ok((StatusCode::ACCEPTED, Json(json!({ "id": id, "status": "pending" }))))
                }
                Ok(false) => Err(ApiError::no_such("delivery", &id)),
                Err(error) => Err(ApiError::cluster_unavailable(format!(
                    "{error}; the delivery is not in this replica's store, retry later"
                ))),
            },
            None => Err(ApiError::no_such("delivery", &id)),
        },
        Err(_) => Err(ApiError::new(
            StatusCode::CONFLICT,
            code::NOT_FAILED,
            format!("delivery `{id}` is not failed; only failed deliveries can be retried"),
        )),
    }
}
