//! Serving a router on a listener, with the limits that keep slow or
//! greedy clients from wearing hookd down:
//!
//! - a client has [`HEADER_TIMEOUT`] to send a request's headers once it
//!   has started, or its connection is closed; a connection with no
//!   traffic for [`IDLE_TIMEOUT`] (one that never sends a byte, or an idle
//!   keep-alive) is closed too; bodies have their own limit
//!   ([`super::json_body`]);
//! - headers are capped at [`MAX_HEADER_BYTES`] (HTTP/1.1 answers 431 past
//!   it) and HTTP/2 at [`MAX_STREAMS`] requests at a time per connection;
//! - at most [`MAX_CONNECTIONS`] connections are served at once; more wait
//!   in the kernel's accept queue until one closes;
//! - on shutdown, listening stops, requests in progress are answered, and
//!   idle connections are closed.

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

use super::idle_timeout::IdleTimeout;

/// How long a client may take to send a request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection may stay silent.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// The most header bytes one HTTP/1.1 request may send.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Connections served at once, per listener.
pub const MAX_CONNECTIONS: usize = 1024;
/// Requests at a time on one HTTP/2 connection.
const MAX_STREAMS: u32 = 256;
/// How long to wait before accepting again after the process ran out of
/// file descriptors.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Serves `router` on `listener` until `stopped` turns true, then shuts
/// down gracefully.
pub async fn serve(listener: TcpListener, router: Router, mut stopped: watch::Receiver<bool>) -> std::io::Result<()> {
    let builder = Arc::new(connection_builder());
    let graceful = GracefulShutdown::new();
    let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut stop = pin!(async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    });
    loop {
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut stop => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(
            router
                .clone()
                .map_request(|request: Request<Incoming>| request.map(Body::new)),
        );
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let stream = IdleTimeout::new(stream, IDLE_TIMEOUT);
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            // Errors here are the client's doing (a reset, a header
            // timeout); nothing to report.
            let _ = watcher.watch(connection.into_owned()).await;
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

fn connection_builder() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_HEADER_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_STREAMS)
        .max_header_list_size(u32::try_from(MAX_HEADER_BYTES).unwrap_or(u32::MAX));
    builder
}
