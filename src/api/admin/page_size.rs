//! How many items one page of a listing holds: `limit`, 1 to 1000,
//! default 100 (SPEC section 6).

use crate::api::error::ApiError;

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

/// The page size a listing's `limit` asks for.
pub fn page_size(limit: Option<&str>) -> Result<usize, ApiError> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|limit| (1..=MAX_LIMIT).contains(limit))
            .ok_or_else(|| ApiError::invalid_field(format!("`limit` must be a number from 1 to {MAX_LIMIT}"))),
    }
}
