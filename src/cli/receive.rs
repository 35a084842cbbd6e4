//! `hookd receive`: a small local subscriber that prints each webhook and
//! whether its signature verifies, so a quick start can show an event
//! going all the way through on one machine.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;

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
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok()).unwrap_or("-");
    let verified = headers
        .get("x-webhook-signature")
        .is_some_and(|given| given.as_bytes() == signer.sign(&body).as_bytes());
    println!(
        "{} {} attempt {}: signature {}",
        header("x-webhook-id"),
        header("x-webhook-event"),
        header("x-webhook-attempt"),
        if verified { "ok" } else { "INVALID" }
    );
    println!("{}", String::from_utf8_lossy(&body));
    if verified {
        StatusCode::OK
    } else {
        StatusCode::UNAUTHORIZED
    }
}
