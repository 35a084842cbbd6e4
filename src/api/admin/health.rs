//! `/healthz` and `/readyz` for container probes, `/metrics` for
//! Prometheus.

use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use http::StatusCode;
use serde_json::json;

use crate::api::AppState;
use crate::clock;
use crate::dispatch::breaker::Circuit;

/// 200 while the process runs.
pub async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// 200 when the store is open and a config is loaded, else 503.
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if state.store.is_writable() {
        (StatusCode::OK, Json(json!({ "status": "ready" })))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "reason": "the store is closed" })),
        )
    }
}

/// The Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, crate::api::error::ApiError> {
    let settings = state.settings();
    let (metrics, limits) = (state.metrics.clone(), state.limits.clone());
    let text = super::blocking(&state, move |store| {
        let now = clock::now_ms();
        let breakers = limits.breakers();
        metrics.render(store, &settings, |endpoint| {
            breakers.circuit(endpoint, now) != Circuit::Closed
        })
    })
    .await?;
    Ok(([(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], text))
}
