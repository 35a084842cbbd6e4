//! The baselines hookd is measured against, each the ceiling of one part
//! of its work on this machine:
//!
//! - `bare-server`: reads the body and answers 202, storing nothing (the
//!   HTTP ceiling);
//! - `bare-forwarder`: answers 202, then passes each body on to a target
//!   with one POST per endpoint, without storing or signing (the
//!   forwarding ceiling).

use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

const ACCEPTED: &str = r#"{"id":"evt_bare","deliveries":1}"#;

pub async fn bare_server(listen: SocketAddr) -> anyhow::Result<()> {
    async fn accept(body: Bytes) -> (StatusCode, &'static str) {
        std::hint::black_box(body);
        (StatusCode::ACCEPTED, ACCEPTED)
    }
    let router = Router::new()
        .route("/v1/events", post(accept))
        .route("/v1/events/batch", post(accept));
    serve(listen, router).await
}

#[derive(Clone)]
struct Forward {
    client: Client<HttpConnector, Full<Bytes>>,
    target: String,
    copies: usize,
}

/// Answers 202, then posts each body `copies` times to `target` (as hookd
/// delivers to that many endpoints).
pub async fn bare_forwarder(listen: SocketAddr, target: String, copies: usize) -> anyhow::Result<()> {
    async fn accept(State(forward): State<Forward>, body: Bytes) -> (StatusCode, &'static str) {
        for copy in 0..forward.copies {
            let (forward, body) = (forward.clone(), body.clone());
            tokio::spawn(async move {
                let request = Request::post(format!("{}/{copy}", forward.target))
                    .header("content-type", "application/json")
                    .body(Full::new(body))
                    .expect("a valid request");
                if let Ok(response) = forward.client.request(request).await {
                    let _ = response.into_body().collect().await;
                }
            });
        }
        (StatusCode::ACCEPTED, ACCEPTED)
    }
    let forward = Forward {
        client: Client::builder(TokioExecutor::new()).build_http(),
        target,
        copies,
    };
    serve(
        listen,
        Router::new().route("/v1/events", post(accept)).with_state(forward),
    )
    .await
}

async fn serve(listen: SocketAddr, router: Router) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    axum::serve(listener, router).await?;
    Ok(())
}
