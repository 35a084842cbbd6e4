//! API errors and the JSON shape every error answer has:
//! `{"error": {"code": "...", "message": "...", "index"?: n}}`.
//!
//! The caller's mistakes get a 4xx with a message that says what to fix.
//! Internal failures get an opaque answer and a log line.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde_json::json;

use crate::store::{self, IngestError};

/// Wire error codes, written once.
pub mod code {
    pub const INVALID_JSON: &str = "invalid_json";
    pub const INVALID_FIELD: &str = "invalid_field";
    pub const ID_CONFLICT: &str = "id_conflict";
    pub const PAYLOAD_TOO_LARGE: &str = "payload_too_large";
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "unsupported_media_type";
    pub const REQUEST_TIMEOUT: &str = "request_timeout";
    pub const UNKNOWN_EVENT: &str = "unknown_event";
    pub const STORAGE_UNAVAILABLE: &str = "storage_unavailable";
    pub const CLUSTER_UNAVAILABLE: &str = "cluster_unavailable";
    pub const NOT_FOUND: &str = "not_found";
    pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
    pub const UNAUTHORIZED: &str = "unauthorized";
    pub const FORBIDDEN: &str = "forbidden";
    pub const NOT_FAILED: &str = "not_failed";
    pub const INTERNAL: &str = "internal";
}

/// How long a client should wait before retrying after a 503.
const RETRY_AFTER_SECONDS: &str = "1";

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// The batch item the error is about.
    pub index: Option<usize>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            index: None,
        }
    }

    pub fn invalid_json(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code::INVALID_JSON, message)
    }

    pub fn invalid_field(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code::INVALID_FIELD, message)
    }

    pub fn unknown_event(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code::UNKNOWN_EVENT, message)
    }

    pub fn payload_too_large(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, code::PAYLOAD_TOO_LARGE, message)
    }

    pub fn not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, code::NOT_FOUND, "no such route")
    }

    /// A route that exists, for a thing that does not.
    pub fn no_such(what: &str, id: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, code::NOT_FOUND, format!("no {what} `{id}`"))
    }

    pub fn method_not_allowed() -> ApiError {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            code::METHOD_NOT_ALLOWED,
            "this route does not take that method",
        )
    }

    /// Cluster mode cannot reach JetStream for what the request needs.
    pub fn cluster_unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code::CLUSTER_UNAVAILABLE, message)
    }

    /// Ties the error to batch item `index`.
    pub fn at(mut self, index: usize) -> ApiError {
        self.index = Some(index);
        self
    }
}

impl From<IngestError> for ApiError {
    fn from(error: IngestError) -> ApiError {
        match error {
            IngestError::Conflict { index, id } => ApiError::new(
                StatusCode::CONFLICT,
                code::ID_CONFLICT,
                format!("event id `{id}` is already stored with a different event, data or created_at"),
            )
            .at(index),
            IngestError::Store(error) => ApiError::from(error),
        }
    }
}

impl From<store::Error> for ApiError {
    fn from(error: store::Error) -> ApiError {
        match error {
            store::Error::Db(_) | store::Error::Closed | store::Error::Reopening => {
                tracing::error!(%error, "the store refused a write");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    code::STORAGE_UNAVAILABLE,
                    "the store cannot take writes right now; nothing was stored, retry later",
                )
            }
            store::Error::Corrupt(_) | store::Error::Incompatible(_) | store::Error::Damaged(_) => {
                tracing::error!(%error, "internal store error");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, code::INTERNAL, "internal error")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some(index) = self.index {
            error["index"] = json!(index);
        }
        let mut response = (self.status, Json(json!({ "error": error }))).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
        }
        response
    }
}

/// A JSON error as the API reports it: malformed JSON, or well-formed JSON
/// of the wrong shape.
pub fn json_error(error: serde_json::Error) -> ApiError {
    match error.classify() {
        serde_json::error::Category::Data => ApiError::invalid_field(error.to_string()),
        _ => ApiError::invalid_json(error.to_string()),
    }
}

/// The JSON 404 for unknown routes.
pub async fn not_found() -> ApiError {
    ApiError::not_found()
}

/// The JSON 405 for a known route with the wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}
