//! Who may use a listener (SPEC section 8), checked before any handler.
//!
//! - With a token, a request needs `Authorization: Bearer <token>` (the
//!   scheme word in any case); 401 otherwise. The token is compared in
//!   constant time, as SHA-256 digests, so neither timing nor length tells
//!   a guesser how close it came.
//! - Without one, a request must name this machine in its `Host`: a
//!   loopback address (any port), `localhost`, or a name in the listener's
//!   `allowed_hosts`; 403 otherwise. A web page whose name an attacker
//!   points at 127.0.0.1 (DNS rebinding) sends its own name as `Host`, so
//!   it reaches neither API, even though the browser thinks it is
//!   same-origin.

use std::net::IpAddr;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::uri::Authority;
use http::{HeaderMap, StatusCode, Uri, header};
use sha2::{Digest, Sha256};

use super::AppState;
use super::error::{ApiError, code};
use crate::config::Access;

/// What the rules say of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// A token is set and the request did not carry it.
    NoToken,
    /// No token is set and the `Host` does not name this machine.
    ForeignHost,
}

/// Judges a request by `access`; `open` routes (probes, the dashboard's
/// page) need no token, but still the `Host` check when there is none.
pub fn judge(access: &Access, headers: &HeaderMap, uri: &Uri, open: bool) -> Verdict {
    match &access.token {
        Some(token) if open || bearer_matches(headers, token.expose()) => Verdict::Allowed,
        Some(_) => Verdict::NoToken,
        None if host_is_local(headers, uri, &access.allowed_hosts) => Verdict::Allowed,
        None => Verdict::ForeignHost,
    }
}

impl Verdict {
    /// The error answer, naming `listener` (`ingest`, `admin`).
    pub fn refusal(self, listener: &str) -> Option<ApiError> {
        match self {
            Verdict::Allowed => None,
            Verdict::NoToken => Some(ApiError::new(
                StatusCode::UNAUTHORIZED,
                code::UNAUTHORIZED,
                format!("send the {listener} token as Authorization: Bearer <token>"),
            )),
            Verdict::ForeignHost => Some(ApiError::new(
                StatusCode::FORBIDDEN,
                code::FORBIDDEN,
                format!(
                    "this {listener} listener answers only requests for a loopback address or localhost; \
                     add the name to {listener}.allowed_hosts, or set {listener}.token"
                ),
            )),
        }
    }
}

/// The ingest listener's guard: every route, token or `Host`.
pub async fn ingest_guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let settings = state.settings();
    let verdict = judge(&settings.ingest.access, request.headers(), request.uri(), false);
    match verdict.refusal("ingest") {
        Some(error) => error.into_response(),
        None => next.run(request).await,
    }
}

/// `Authorization: Bearer <token>`, the scheme word in any case.
fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    let Some((scheme, given)) = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
    else {
        return false;
    };
    scheme.eq_ignore_ascii_case("bearer") && same_secret(given.trim_start(), token)
}

/// Compares the digests, without stopping at the first difference.
fn same_secret(given: &str, expected: &str) -> bool {
    let given = Sha256::digest(given.as_bytes());
    let expected = Sha256::digest(expected.as_bytes());
    given
        .iter()
        .zip(expected.iter())
        .fold(0u8, |diff, (a, b)| diff | (a ^ b))
        == 0
}

/// Whether the request's `Host` (or HTTP/2 `:authority`) is a loopback
/// address, `localhost`, or one of `allowed`.
fn host_is_local(headers: &HeaderMap, uri: &Uri, allowed: &[String]) -> bool {
    let authority = match headers.get(header::HOST) {
        Some(value) => value.to_str().ok().and_then(|host| host.parse::<Authority>().ok()),
        None => uri.authority().cloned(),
    };
    let Some(authority) = authority else {
        return false;
    };
    let host = authority.host().to_ascii_lowercase();
    let host = host.strip_suffix('.').unwrap_or(&host);
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
        || allowed.iter().any(|name| name == host)
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;
    use crate::config::Secret;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn open_access(hosts: &[&str]) -> Access {
        Access {
            token: None,
            allowed_hosts: hosts.iter().map(|host| (*host).to_owned()).collect(),
        }
    }

    #[test]
    fn without_a_token_only_local_hosts_are_answered() {
        let access = open_access(&["hookd.internal"]);
        let uri = Uri::from_static("/v1/events");
        for host in [
            "127.0.0.1:8787",
            "127.3.4.5",
            "[::1]:8788",
            "localhost",
            "LocalHost:8787",
            "localhost.",
            "hookd.internal:80",
        ] {
            let verdict = judge(&access, &headers(&[("host", host)]), &uri, false);
            assert_eq!(verdict, Verdict::Allowed, "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:8787",
            "localhost.evil.example",
            "127.0.0.1.evil.example",
            "10.0.0.1:8787",
            "",
            "[::1",
        ] {
            let verdict = judge(&access, &headers(&[("host", host)]), &uri, false);
            assert_eq!(verdict, Verdict::ForeignHost, "{host}");
        }
        assert_eq!(judge(&access, &HeaderMap::new(), &uri, true), Verdict::ForeignHost);
        let h2 = Uri::from_static("http://127.0.0.1:8787/v1/events");
        assert_eq!(judge(&access, &HeaderMap::new(), &h2, false), Verdict::Allowed);
    }

    #[test]
    fn with_a_token_the_bearer_is_checked_in_any_case() {
        let access = Access {
            token: Some(Secret::new("s3cret")),
            allowed_hosts: Vec::new(),
        };
        let uri = Uri::from_static("/v1/events");
        let with = |value: &str| {
            judge(
                &access,
                &headers(&[("authorization", value), ("host", "evil.example")]),
                &uri,
                false,
            )
        };
        assert_eq!(with("Bearer s3cret"), Verdict::Allowed);
        assert_eq!(with("bearer s3cret"), Verdict::Allowed);
        assert_eq!(with("BEARER  s3cret"), Verdict::Allowed);
        assert_eq!(with("Bearer s3cre"), Verdict::NoToken);
        assert_eq!(with("Bearer s3cret2"), Verdict::NoToken);
        assert_eq!(with("Basic s3cret"), Verdict::NoToken);
        assert_eq!(with("s3cret"), Verdict::NoToken);
        assert_eq!(judge(&access, &HeaderMap::new(), &uri, true), Verdict::Allowed);
    }
}
