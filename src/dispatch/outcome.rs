//! What one attempt came to: success, or a failure of a named kind, with
//! the status, latency and the first 1 KiB of the response body.

use std::error::Error as StdError;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::connector::ConnectError;

/// The most of a response body hookd reads and keeps.
pub const SNIPPET_LIMIT: usize = 1024;

/// Why an attempt failed. The names are part of the API and the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A status other than 2xx or 3xx.
    Status,
    /// No response headers within `delivery.timeout`.
    Timeout,
    Connect,
    Tls,
    Dns,
    /// The destination resolved to an address the SSRF guard refuses.
    BlockedDestination,
    /// A 3xx: redirects are not followed.
    Redirect,
    /// Anything else on the wire: a reset mid-response, a protocol error.
    Io,
    /// Paused for longer than `storage.retention`.
    Expired,
    /// The delivery's event is missing from the store, or its record cannot
    /// be read: nothing can be sent, now or later.
    CorruptRecord,
    /// The endpoint's tenant, as configured now, no longer admits the
    /// event (SPEC section 4, "Tenants"): no request is sent.
    TenantMismatch,
    /// The endpoint's circuit is open ([`super::breaker`]): no request is
    /// sent, and the delivery keeps its schedule.
    CircuitOpen,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Status => "status",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Connect => "connect",
            ErrorKind::Tls => "tls",
            ErrorKind::Dns => "dns",
            ErrorKind::BlockedDestination => "blocked_destination",
            ErrorKind::Redirect => "redirect",
            ErrorKind::Io => "io",
            ErrorKind::Expired => "expired",
            ErrorKind::CorruptRecord => "corrupt_record",
            ErrorKind::TenantMismatch => "tenant_mismatch",
            ErrorKind::CircuitOpen => "circuit_open",
        }
    }

    /// Whether a failed attempt of this kind counts toward opening the
    /// endpoint's circuit: those that sent a request, or tried to.
    pub fn counts_toward_the_breaker(self) -> bool {
        !matches!(
            self,
            ErrorKind::BlockedDestination
                | ErrorKind::CircuitOpen
                | ErrorKind::TenantMismatch
                | ErrorKind::Expired
                | ErrorKind::CorruptRecord
        )
    }

    /// The kind a non-2xx status is filed under.
    pub fn of_status(status: http::StatusCode) -> Option<ErrorKind> {
        if status.is_success() {
            None
        } else if status.is_redirection() {
            Some(ErrorKind::Redirect)
        } else {
            Some(ErrorKind::Status)
        }
    }
}

/// Names the failure behind an error from the outbound stack.
pub fn classify(error: &(dyn StdError + 'static)) -> ErrorKind {
    let mut current: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(error) = current {
        if error.is::<tower::timeout::error::Elapsed>() {
            return ErrorKind::Timeout;
        }
        if let Some(connect) = error.downcast_ref::<ConnectError>() {
            return connect.kind();
        }
        if error.is::<rustls::Error>() {
            return ErrorKind::Tls;
        }
        current = match error.downcast_ref::<std::io::Error>() {
            // An io::Error's `source()` skips its payload (rustls wraps its
            // errors in one, hyper-rustls that in another): look inside.
            Some(io) => io.get_ref().map(|inner| inner as &(dyn StdError + 'static)),
            None => error.source(),
        };
    }
    let connecting = error
        .downcast_ref::<hyper_util::client::legacy::Error>()
        .is_some_and(hyper_util::client::legacy::Error::is_connect);
    if connecting { ErrorKind::Connect } else { ErrorKind::Io }
}

/// Whether an error says the endpoint is overloaded or unreachable, which
/// halves its concurrency: a timeout or a failure to connect.
pub fn is_overload_error(error: &(dyn StdError + 'static)) -> bool {
    matches!(
        classify(error),
        ErrorKind::Timeout | ErrorKind::Connect | ErrorKind::Tls | ErrorKind::Dns
    )
}

/// Reads at most [`SNIPPET_LIMIT`] bytes of `body` within `patience`. What
/// is left is dropped with the body, which closes the connection instead of
/// draining a huge or trickling answer.
pub async fn read_snippet(body: Incoming, patience: Duration) -> Bytes {
    let mut snippet = BytesMut::new();
    let read = async {
        let mut body = body;
        while snippet.len() < SNIPPET_LIMIT {
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        let room = SNIPPET_LIMIT - snippet.len();
                        snippet.extend_from_slice(&data[..data.len().min(room)]);
                    }
                }
                _ => break,
            }
        }
    };
    let _ = tokio::time::timeout(patience, read).await;
    snippet.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_kinds() {
        assert_eq!(ErrorKind::of_status(http::StatusCode::OK), None);
        assert_eq!(ErrorKind::of_status(http::StatusCode::NO_CONTENT), None);
        assert_eq!(ErrorKind::of_status(http::StatusCode::FOUND), Some(ErrorKind::Redirect));
        assert_eq!(ErrorKind::of_status(http::StatusCode::GONE), Some(ErrorKind::Status));
        assert_eq!(
            ErrorKind::of_status(http::StatusCode::BAD_GATEWAY),
            Some(ErrorKind::Status)
        );
    }

    #[test]
    fn errors_are_classified_through_their_sources() {
        let elapsed: tower::BoxError = Box::new(tower::timeout::error::Elapsed::new());
        assert_eq!(classify(elapsed.as_ref()), ErrorKind::Timeout);
        let blocked = ConnectError::Blocked {
            host: "metadata".into(),
        };
        assert_eq!(classify(&blocked), ErrorKind::BlockedDestination);
        let tls = std::io::Error::new(std::io::ErrorKind::InvalidData, rustls::Error::DecryptError);
        let wrapped = std::io::Error::other(tls);
        assert_eq!(classify(&wrapped), ErrorKind::Tls, "as hyper-rustls nests it");
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert_eq!(classify(&reset), ErrorKind::Io);
    }
}
