//! The TCP connector behind the HTTP client: resolves the host, refuses any
//! address the [`DestinationPolicy`] does not permit, and connects only to
//! an address it checked. Checking the address actually connected to,
//! after DNS, is what makes DNS rebinding useless against the guard; a URL
//! with a literal IP goes through the same check.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};

use http::Uri;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::destination::DestinationPolicy;
use super::outcome::ErrorKind;

/// Why no connection was made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("the URL has no host")]
    NoHost,
    #[error("cannot resolve {host}: {source}")]
    Dns {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{host} resolves only to addresses hookd may not connect to (private, loopback or reserved)")]
    Blocked { host: String },
    #[error("cannot connect to {host}: {source}")]
    Connect {
        host: String,
        #[source]
        source: std::io::Error,
    },
}

impl ConnectError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ConnectError::NoHost | ConnectError::Connect { .. } => ErrorKind::Connect,
            ConnectError::Dns { .. } => ErrorKind::Dns,
            ConnectError::Blocked { .. } => ErrorKind::BlockedDestination,
        }
    }
}

/// Connects to checked addresses only. Clones share the policy, so a config
/// reload reaches every connection made after it.
#[derive(Clone)]
pub struct GuardedConnector {
    policy: Arc<RwLock<DestinationPolicy>>,
}

impl GuardedConnector {
    pub fn new(policy: Arc<RwLock<DestinationPolicy>>) -> GuardedConnector {
        GuardedConnector { policy }
    }
}

impl tower::Service<Uri> for GuardedConnector {
    type Response = TokioIo<TcpStream>;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, ConnectError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = uri.host().ok_or(ConnectError::NoHost)?.to_owned();
            let port = uri
                .port_u16()
                .unwrap_or(if uri.scheme_str() == Some("https") { 443 } else { 80 });
            let addresses = resolve(&host, port).await?;
            let permitted: Vec<SocketAddr> = {
                let policy = policy.read().expect("policy lock");
                addresses
                    .into_iter()
                    .filter(|address| policy.permits(address.ip()))
                    .collect()
            };
            if permitted.is_empty() {
                return Err(ConnectError::Blocked { host });
            }
            let mut last_error = None;
            for address in permitted {
                match TcpStream::connect(address).await {
                    Ok(stream) => {
                        let _ = stream.set_nodelay(true);
                        return Ok(TokioIo::new(stream));
                    }
                    Err(error) => last_error = Some(error),
                }
            }
            Err(ConnectError::Connect {
                host,
                source: last_error.expect("at least one address was tried"),
            })
        })
    }
}

/// A literal IP as it is (brackets removed), or every address DNS gives.
async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, ConnectError> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let dns_error = |source| ConnectError::Dns {
        host: host.to_owned(),
        source,
    };
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((bare, port))
        .await
        .map_err(dns_error)?
        .collect();
    if addresses.is_empty() {
        return Err(dns_error(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no addresses",
        )));
    }
    Ok(addresses)
}
