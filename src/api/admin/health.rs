//! `/healthz` and `/readyz`, for container probes.

use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use http::StatusCode;
use serde_json::json;

use crate::api::AppState;

/// 200 while the process runs.
pub async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// 200 when the store is open and a config is loaded, else 503.
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if state.store.is_open() {
        (StatusCode::OK, Json(json!({ "status": "ready" })))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "reason": "the store is closed" })),
        )
    }
}
