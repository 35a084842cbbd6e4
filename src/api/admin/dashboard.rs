//! `GET /`: the dashboard, one self-contained page served from the binary
//! (no outside CDN: sidecars often have no internet). It holds no data; its
//! script reads the admin API, with the token when one is set.

use axum::response::{Html, IntoResponse};
use http::{HeaderValue, header};

const PAGE: &str = include_str!("dashboard.html");

/// Only this origin, no framing: the page cannot be embedded by another
/// site nor load anything from elsewhere.
const POLICY: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                      connect-src 'self'; frame-ancestors 'none'; form-action 'none'";

pub async fn page() -> impl IntoResponse {
    let mut response = Html(PAGE).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
