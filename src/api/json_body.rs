//! Reading a JSON request body: the content type checked, the size and
//! the time to send it capped.

use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tokio::sync::Semaphore;

use super::error::{ApiError, code};

/// Request bodies being read at once may hold at most this much memory
/// together (64 MiB, counted in KiB): a thousand slow clients each sending
/// a large body wait their turn instead of each holding a buffer.
const BODY_BUDGET_KIB: usize = 64 * 1024;
static BODY_BUDGET: Semaphore = Semaphore::const_new(BODY_BUDGET_KIB);

/// How long a client may take to send a whole body.
/// Shorter than the server's idle timeout, so a stalled body gets its 408
/// before the connection is dropped.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(20);

/// Reads the whole body if it is declared `application/json` and no longer
/// than `limit` bytes. A body over the limit is refused as soon as its
/// declared or received length passes it, without reading the rest; one
/// that takes longer than [`BODY_TIMEOUT`] to arrive (its wait for a share
/// of the memory budget included) gets 408.
pub async fn read_json_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    if !is_json(headers) {
        return Err(ApiError::new(
            http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code::UNSUPPORTED_MEDIA_TYPE,
            "send the body as Content-Type: application/json",
        ));
    }
    let too_large =
        || ApiError::payload_too_large(format!("the body is larger than {limit} bytes (ingest.max_body_bytes)"));
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(too_large());
    }
    // The body's share of the budget: its declared length, or the limit.
    let kib = declared
        .map_or(limit as u64, |length| length)
        .div_ceil(1024)
        .clamp(1, BODY_BUDGET_KIB as u64);
    let read = tokio::time::timeout(BODY_TIMEOUT, async {
        let _share = BODY_BUDGET
            .acquire_many(u32::try_from(kib).unwrap_or(u32::MAX))
            .await
            .expect("the budget is never closed");
        Limited::new(body, limit).collect().await
    })
    .await;
    let Ok(read) = read else {
        return Err(ApiError::new(
            http::StatusCode::REQUEST_TIMEOUT,
            code::REQUEST_TIMEOUT,
            format!("the body did not arrive within {} seconds", BODY_TIMEOUT.as_secs()),
        ));
    };
    match read {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<LengthLimitError>() => Err(too_large()),
        Err(error) => Err(ApiError::invalid_json(format!("could not read the body: {error}"))),
    }
}

/// `application/json`, with or without parameters such as a charset.
pub fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media_type| media_type.trim().eq_ignore_ascii_case("application/json"))
}
