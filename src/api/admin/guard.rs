//! Who may use the admin API.
//!
//! - The listener's rules ([`crate::api::access`]): with `admin.token` set,
//!   every route but the probes (`/healthz`, `/readyz`, `/metrics`) and the
//!   dashboard's page, script and style sheet wants `Authorization: Bearer <token>` (401
//!   otherwise); without one, every request must name this machine in its
//!   `Host` (403 otherwise).
//! - Every POST must be `Content-Type: application/json` and is refused
//!   when an `Origin` header is not this listener's own origin, so a web
//!   page open in an operator's browser cannot drive the admin API (a
//!   cross-site form can send neither JSON nor a matching Origin).

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{Method, StatusCode, header};

use crate::api::AppState;
use crate::api::access::judge;
use crate::api::error::{ApiError, code};

/// Routes that answer without a token.
const OPEN_ROUTES: [&str; 6] = [
    "/healthz",
    "/readyz",
    "/metrics",
    "/",
    super::dashboard::SCRIPT_PATH,
    super::dashboard::STYLE_PATH,
];

pub async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let open = OPEN_ROUTES.contains(&request.uri().path());
    let verdict = judge(&state.settings().admin.access, request.headers(), request.uri(), open);
    if let Some(error) = verdict.refusal("admin") {
        return error.into_response();
    }
    if request.method() == Method::POST {
        if !crate::api::json_body::is_json(request.headers()) {
            return ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                code::UNSUPPORTED_MEDIA_TYPE,
                "admin POSTs must be Content-Type: application/json",
            )
            .into_response();
        }
        if !same_origin(&request) {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                code::FORBIDDEN,
                "requests from another site's page are refused",
            )
            .into_response();
        }
    }
    next.run(request).await
}

/// No `Origin` (a CLI, curl), or this listener's own origin: hookd serves
/// plain HTTP, so `http://` and the `Host` the request was sent to.
fn same_origin(request: &Request) -> bool {
    let Some(origin) = request.headers().get(header::ORIGIN) else {
        return true;
    };
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|value| value.to_str().ok());
    let origin_host = origin.to_str().ok().and_then(|origin| origin.strip_prefix("http://"));
    matches!((origin_host, host), (Some(origin), Some(host)) if origin.eq_ignore_ascii_case(host))
}
