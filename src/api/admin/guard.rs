//! Who may use the admin API.
//!
//! - With `admin.token` set, every route but the probes (`/healthz`,
//!   `/readyz`, `/metrics`) and the dashboard's page itself wants
//!   `Authorization: Bearer <token>`: 401 otherwise.
//! - Every POST must be `Content-Type: application/json` and is refused
//!   when an `Origin` header names another site, so a web page open in an
//!   operator's browser cannot drive the admin API (a cross-site form can
//!   send neither JSON nor a matching Origin).

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{Method, StatusCode, header};

use crate::api::AppState;
use crate::api::error::{ApiError, code};

/// Routes that answer without a token.
const OPEN_ROUTES: [&str; 4] = ["/healthz", "/readyz", "/metrics", "/"];

pub async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if !OPEN_ROUTES.contains(&path)
        && let Some(token) = &state.settings().admin.token
    {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "));
        if !given.is_some_and(|given| constant_time_eq(given.as_bytes(), token.expose().as_bytes())) {
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                code::UNAUTHORIZED,
                "send the admin token as Authorization: Bearer <token>",
            )
            .into_response();
        }
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

/// No `Origin` (a CLI, curl) or an `Origin` naming this very host.
fn same_origin(request: &Request) -> bool {
    let Some(origin) = request.headers().get(header::ORIGIN) else {
        return true;
    };
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|value| value.to_str().ok());
    let origin_host = origin.to_str().ok().and_then(|origin| {
        origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
    });
    matches!((origin_host, host), (Some(origin), Some(host)) if origin.eq_ignore_ascii_case(host))
}

/// Compares without stopping at the first difference, so response timing
/// does not reveal how much of a guessed token was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn tokens_compare_exactly() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
