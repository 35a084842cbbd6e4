//! The admin API for operators (SPEC section 6): health, endpoints,
//! deliveries, manual retry, the config, the dashboard that shows them and
//! the OpenAPI description of it all, behind [`guard`].

mod config;
mod dashboard;
mod deliveries;
mod endpoints;
mod guard;
mod health;
mod openapi;
mod page_size;
mod stats;
mod views;

use axum::Router;
use axum::routing::{get, post};

use super::AppState;
use super::error::{ApiError, method_not_allowed, not_found};
use crate::store::{self, Store};

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(dashboard::page).fallback(method_not_allowed))
        .route(
            dashboard::SCRIPT_PATH,
            get(dashboard::script).fallback(method_not_allowed),
        )
        .route(
            dashboard::STYLE_PATH,
            get(dashboard::style).fallback(method_not_allowed),
        )
        .route("/healthz", get(health::healthz).fallback(method_not_allowed))
        .route("/readyz", get(health::readyz).fallback(method_not_allowed))
        .route("/metrics", get(health::metrics).fallback(method_not_allowed))
        .route("/v1/endpoints", get(endpoints::list).fallback(method_not_allowed))
        .route(
            "/v1/endpoints/{id}/pause",
            post(endpoints::pause).fallback(method_not_allowed),
        )
        .route(
            "/v1/endpoints/{id}/resume",
            post(endpoints::resume).fallback(method_not_allowed),
        )
        .route(
            "/v1/endpoints/{id}/retry-failed",
            post(endpoints::retry_failed).fallback(method_not_allowed),
        )
        .route(
            "/v1/endpoints/{id}/test",
            post(endpoints::test).fallback(method_not_allowed),
        )
        .route(
            "/v1/endpoints/{id}/stats",
            get(stats::show).fallback(method_not_allowed),
        )
        .route("/v1/deliveries", get(deliveries::list).fallback(method_not_allowed))
        .route(
            "/v1/deliveries/{id}",
            get(deliveries::show).fallback(method_not_allowed),
        )
        .route(
            "/v1/deliveries/{id}/retry",
            post(deliveries::retry).fallback(method_not_allowed),
        )
        .route("/v1/config", get(config::show).fallback(method_not_allowed))
        .route("/openapi.json", get(openapi::show).fallback(method_not_allowed))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard::guard))
        .with_state(state)
}

/// An operator acts on `endpoint` (a retry, a test ping, a resume): an
/// open circuit becomes half-open at once, so the next delivery probes.
async fn probe_now(state: &AppState, endpoint: &str) -> Result<(), ApiError> {
    Ok(state.limits.breakers().probe_now(endpoint, &state.store).await?)
}

/// Runs store work off the async threads: listings and counts read many
/// keys.
async fn blocking<T: Send + 'static>(
    state: &AppState,
    work: impl FnOnce(&Store) -> Result<T, store::Error> + Send + 'static,
) -> Result<T, ApiError> {
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || work(&store))
        .await
        .map_err(|error| {
            tracing::error!(%error, "an admin store task panicked");
            ApiError::new(
                http::StatusCode::INTERNAL_SERVER_ERROR,
                super::error::code::INTERNAL,
                "internal error",
            )
        })?
        .map_err(ApiError::from)
}
