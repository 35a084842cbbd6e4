//! `GET /v1/endpoints/{id}/stats?window=1h` (SPEC 6): an endpoint's
//! attempts per minute for the last hour, per ten minutes before that, from
//! this replica's figures ([`crate::dispatch::stats`]), and the periods in
//! which its circuit was open (`circuit_open`, for the dashboard's bands).

use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::api::AppState;
use crate::api::error::ApiError;
use crate::api::extract::{Path, Query};
use crate::clock;
use crate::config::parse_duration;
use crate::dispatch::stats::{Entry, WINDOW_MINUTES};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsQuery {
    /// A duration from `1m` to `24h`; default `1h`.
    window: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<StatsQuery>,
) -> Result<impl IntoResponse, ApiError> {
    if state.settings().endpoints.get(&id).is_none() {
        return Err(ApiError::no_such("endpoint", &id));
    }
    let window = query.window.unwrap_or_else(|| "1h".to_owned());
    let minutes = parse_duration(&window)
        .ok()
        .map(|duration| duration.as_secs().div_ceil(60))
        .filter(|minutes| (1..=WINDOW_MINUTES).contains(minutes))
        .ok_or_else(|| {
            ApiError::invalid_field(format!("`window` must be a duration from 1m to 24h, not `{window}`"))
        })?;
    let now = clock::now_ms();
    let entries: Vec<Value> = state.stats.entries(&id, now, minutes).iter().map(entry).collect();
    let circuit_open: Vec<Value> = state
        .stats
        .circuit_open(&id, now, minutes)
        .iter()
        .map(|period| {
            json!({
                "from": clock::rfc3339(period.from_ms),
                "until": period.until_ms.map(clock::rfc3339),
            })
        })
        .collect();
    Ok(Json(json!({
        "endpoint": id,
        "window": window,
        "minutes": entries,
        "circuit_open": circuit_open,
    })))
}

fn entry(entry: &Entry) -> Value {
    let attempts: Map<String, Value> = entry
        .attempts
        .iter()
        .map(|(result, count)| ((*result).to_owned(), Value::from(*count)))
        .collect();
    let latency = match entry.latency_ms {
        Some((p50, p99)) => json!({ "p50": p50, "p99": p99 }),
        None => Value::Null,
    };
    json!({
        "at": clock::rfc3339(entry.start_minute * 60_000),
        "attempts": attempts,
        "succeeded": entry.succeeded,
        "failed": entry.failed,
        "latency_ms": latency,
    })
}
