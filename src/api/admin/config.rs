//! `GET /v1/config`: the configuration in force, secrets redacted, with
//! when it was loaded and how the last reload went.

use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use serde_json::json;

use crate::api::AppState;
use crate::clock;

pub async fn show(State(state): State<AppState>) -> impl IntoResponse {
    let settings = state.settings();
    let status = state.config_status.get();
    Json(json!({
        "config": settings.file.redacted(),
        "loaded_at": clock::rfc3339(status.loaded_at_ms),
        "last_reload_error": status.last_reload_error,
        "restart_needed": status.restart_needed,
        "cluster": state.cluster.as_ref().map(|cluster| cluster.state()),
    }))
}
