//! A small real HTTP client for tests; it holds every answer of hookd's
//! APIs to the OpenAPI description ([`super::openapi`]).

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// An answer: status, headers, and the body parsed as JSON (or `Null`).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub json: serde_json::Value,
}

impl Answer {
    /// The `error.code` of an error answer.
    pub fn error_code(&self) -> &str {
        self.json["error"]["code"].as_str().unwrap_or("")
    }
}

#[derive(Clone)]
pub struct HttpClient {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Default for HttpClient {
    fn default() -> Self {
        HttpClient {
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }
}

impl HttpClient {
    pub async fn get(&self, url: &str) -> Answer {
        self.send(Method::GET, url, &[], Bytes::new()).await.expect("GET")
    }

    /// GETs a text answer.
    pub async fn get_text(&self, url: &str) -> String {
        let (_, _, body) = self.exchange(Method::GET, url, &[], Bytes::new()).await.expect("GET");
        String::from_utf8(body.to_vec()).expect("UTF-8")
    }

    /// POSTs `body` as JSON.
    pub async fn post_json(&self, url: &str, body: impl Into<Bytes>) -> Answer {
        self.send(Method::POST, url, &[("content-type", "application/json")], body.into())
            .await
            .expect("POST")
    }

    /// Sends any request; `Err` when the connection fails.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<Answer, hyper_util::client::legacy::Error> {
        let (status, headers, body) = self.exchange(method, url, headers, body).await?;
        let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
        Ok(Answer { status, headers, json })
    }

    /// Sends a request and reads the whole answer.
    async fn exchange(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<(StatusCode, HeaderMap, Bytes), hyper_util::client::legacy::Error> {
        let mut request = Request::builder().method(method.clone()).uri(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = self
            .client
            .request(request.body(Full::new(body)).expect("a valid request"))
            .await?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("reading the answer")
            .to_bytes();
        let content_type = headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok());
        super::openapi::check(&method, url, status, content_type, &body);
        Ok((status, headers, body))
    }
}
