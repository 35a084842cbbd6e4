//! The admin API (SPEC section 6). So far: the health probes.

use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use http::StatusCode;
use serde_json::json;

use super::AppState;
use super::error::{method_not_allowed, not_found};

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz).fallback(method_not_allowed))
        .route("/readyz", get(readyz).fallback(method_not_allowed))
        .fallback(not_found)
        .with_state(state)
}

/// 200 while the process runs.
async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// 200 when the store is open and a config is loaded, else 503.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if state.store.is_open() {
        (StatusCode::OK, Json(json!({ "status": "ready" })))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "reason": "the store is closed" })),
        )
    }
}
