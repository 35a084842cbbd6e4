//! `GET /openapi.json`: the OpenAPI 3.1 description of the ingest and admin
//! APIs, kept in the repo as `src/api/openapi.json` and served as written.
//! The integration tests check every answer they get against it.

use axum::response::IntoResponse;
use http::header;

/// The description, as kept in the repo.
pub const DESCRIPTION: &str = include_str!("../openapi.json");

pub async fn show() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DESCRIPTION)
}
