//! `hookd receive`: a small local subscriber that prints each webhook and
//! whether its signature verifies, so a quick start can show an event
//! going all the way through on one machine.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;

use crate::dispatch::request::headers::SIGNATURE;
use crate::sign::HexSigner;

/// Serves until the process ends, printing to stdout.
pub async fn receive(listen: SocketAddr, secret: &str) -> anyhow::Result<()> {
    let signer = Arc::new(HexSigner::new(secret));
    let router = Router::new().fallback(webhook).with_state(signer);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!("hookd receive: listening on http://{}", listener.local_addr()?);
    axum::serve(listener, router).await?;
    Ok(())
}

async fn webhook(State(signer): State<Arc<HexSigner>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    // Header values that are not visible ASCII print as `-`.
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok()).unwrap_or("-");
    let verified = headers
        .get(SIGNATURE)
        .is_some_and(|given| signer.verifies(&body, given.as_bytes()));
    println!(
        "{} {} attempt {}: signature {}",
        header("x-webhook-id"),
        header("x-webhook-event"),
        header("x-webhook-attempt"),
        if verified { "ok" } else { "INVALID" }
    );
    println!("{}", printable(&String::from_utf8_lossy(&body)));
    if verified {
        StatusCode::OK
    } else {
        StatusCode::UNAUTHORIZED
    }
}

/// `text` safe to print on a terminal: control characters (escape
/// sequences, carriage returns, newlines) and bidirectional overrides are
/// shown as `\u{..}` escapes, so a body cannot move the cursor, recolour
/// the screen or disguise what it says.
fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn escapes_and_overrides_are_shown_not_obeyed() {
        assert_eq!(printable(r#"{"a":"b"}"#), r#"{"a":"b"}"#);
        assert_eq!(printable("\u{1b}[2J\r\n"), "\\u{1b}[2J\\u{d}\\u{a}");
        assert_eq!(printable("a\u{202e}b"), "a\\u{202e}b");
        assert_eq!(printable("Zoë"), "Zoë");
    }
}
