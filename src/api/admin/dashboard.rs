//! `GET /`: the dashboard, a page with its script and style sheet, all
//! served from the binary (no outside CDN: sidecars often have no
//! internet). It holds no data; its script reads the admin API, with the
//! token when one is set.
//!
//! The content security policy allows scripts and styles from this origin
//! only, none inline: even if an attacker got text into a page (a delivery
//! id, a response snippet), the browser would not run it.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, header};

const PAGE: &str = include_str!("dashboard.html");
const SCRIPT: &str = include_str!("dashboard.js");
const STYLE: &str = include_str!("dashboard.css");

/// Where the page loads its script and style sheet from.
pub const SCRIPT_PATH: &str = "/dashboard.js";
pub const STYLE_PATH: &str = "/dashboard.css";

/// Only this origin, nothing inline, no framing: the page cannot be
/// embedded by another site nor load anything from elsewhere.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                      base-uri 'none'; frame-ancestors 'none'; form-action 'none'";

pub async fn page() -> Response {
    asset(PAGE, "text/html; charset=utf-8")
}

pub async fn script() -> Response {
    asset(SCRIPT, "text/javascript; charset=utf-8")
}

pub async fn style() -> Response {
    asset(STYLE, "text/css; charset=utf-8")
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
