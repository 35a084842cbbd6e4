//! A small client for a running sidecar's admin API, for the operator
//! commands and `hookd healthcheck`.

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// Where the admin API is when neither `--admin` nor `HOOKD_ADMIN_URL` says.
pub const DEFAULT_ADMIN_URL: &str = "http://127.0.0.1:8788";

pub struct AdminClient {
    base: String,
    token: Option<String>,
    http: Client<HttpConnector, Full<Bytes>>,
}

impl AdminClient {
    pub fn new(base: &str, token: Option<String>) -> AdminClient {
        AdminClient {
            base: base.trim_end_matches('/').to_owned(),
            token,
            http: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<(StatusCode, Value)> {
        self.send(Method::GET, path).await
    }

    pub async fn post(&self, path: &str) -> anyhow::Result<(StatusCode, Value)> {
        self.send(Method::POST, path).await
    }

    /// GET or POST; an error answer becomes an error carrying its message.
    pub async fn expect_ok(&self, method: Method, path: &str) -> anyhow::Result<Value> {
        let (status, body) = self.send(method, path).await?;
        if status.is_success() {
            return Ok(body);
        }
        let message = body["error"]["message"].as_str().unwrap_or("no message");
        anyhow::bail!("{status}: {message}")
    }

    async fn send(&self, method: Method, path: &str) -> anyhow::Result<(StatusCode, Value)> {
        let url = format!("{}{path}", self.base);
        let mut request = Request::builder().method(method.clone()).uri(&url);
        if let Some(token) = &self.token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if method == Method::POST {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let response = self
            .http
            .request(request.body(Full::new(Bytes::new()))?)
            .await
            .map_err(|error| anyhow::anyhow!("cannot reach the admin API at {url}: {error}"))?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
    }
}
