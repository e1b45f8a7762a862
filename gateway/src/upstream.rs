//! Sending translated requests: pooled keep-alive connections, HTTP/2 where the provider
//! offers it (ALPN), rustls, timeouts. A response can also be made in process (the `mock`
//! provider's), so the rest of the request path reads both alike.

use std::{collections::VecDeque, time::Duration};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, StatusCode};
use tokio::time::Instant;

use crate::providers::{Failure, FailureKind, UpstreamRequest};

/// Largest non-streamed upstream body the gateway reads.
pub const MAX_UPSTREAM_BODY: usize = 64 * 1024 * 1024;

/// An HTTP client with this connect timeout.
pub fn client(connect_timeout: Duration) -> Result<reqwest::Client, String> {
    crate::install_crypto_provider();
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(256)
        .tcp_keepalive(Duration::from_secs(60))
        .tcp_nodelay(true)
        .user_agent(concat!("tollgate-gateway/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| e.to_string())
}

/// The body of an upstream response.
#[derive(Debug)]
enum Body {
    Remote(reqwest::Response),
    Local(VecDeque<Bytes>),
}

/// A response whose headers arrived.
#[derive(Debug)]
pub struct UpstreamResponse {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    body: Body,
}

impl UpstreamResponse {
    /// A JSON response made in process, its body already cut into `pieces`.
    pub fn local(status: StatusCode, pieces: Vec<Bytes>) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Self {
            status,
            headers,
            body: Body::Local(pieces.into()),
        }
    }

    /// The next piece of the body; `None` at the end. `deadline` bounds the wait.
    pub async fn chunk(&mut self, deadline: Instant) -> Result<Option<Bytes>, Failure> {
        match &mut self.body {
            Body::Local(pieces) => Ok(pieces.pop_front()),
            Body::Remote(r) => match tokio::time::timeout_at(deadline, r.chunk()).await {
                Err(_) => Err(Failure::new(
                    FailureKind::Timeout,
                    "the upstream stopped sending",
                )),
                Ok(Err(e)) => Err(transport(&e)),
                Ok(Ok(chunk)) => Ok(chunk),
            },
        }
    }

    /// The whole body, bounded in size and by `deadline`.
    pub async fn bytes(mut self, deadline: Instant) -> Result<Bytes, Failure> {
        let mut out = BytesMut::new();
        while let Some(chunk) = self.chunk(deadline).await? {
            if out.len() + chunk.len() > MAX_UPSTREAM_BODY {
                return Err(Failure::protocol(format!(
                    "upstream body exceeds {MAX_UPSTREAM_BODY} bytes"
                )));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out.freeze())
    }
}

/// Sends `req` and waits for the response headers until `deadline`.
pub async fn send(
    client: &reqwest::Client,
    req: UpstreamRequest,
    request_id: &str,
    deadline: Instant,
) -> Result<UpstreamResponse, Failure> {
    let mut builder = client
        .request(req.method, &req.url)
        .headers(req.headers)
        .body(req.body);
    if let Ok(id) = HeaderValue::from_str(request_id) {
        builder = builder.header("x-request-id", id);
    }
    match tokio::time::timeout_at(deadline, builder.send()).await {
        Err(_) => Err(Failure::new(
            FailureKind::Timeout,
            "no response from the upstream in time",
        )),
        Ok(Err(e)) => Err(transport(&e)),
        Ok(Ok(r)) => Ok(UpstreamResponse {
            status: r.status(),
            headers: r.headers().clone(),
            body: Body::Remote(r),
        }),
    }
}

/// Classifies a transport error; the message names no URL (URLs may carry deployment names
/// but never credentials; still, keep logs short).
fn transport(e: &reqwest::Error) -> Failure {
    let kind = if e.is_timeout() {
        FailureKind::Timeout
    } else if e.is_connect() {
        FailureKind::Connect
    } else {
        FailureKind::Protocol
    };
    let mut message = e.to_string();
    if let Some(source) = std::error::Error::source(e) {
        message = format!("{message}: {source}");
    }
    Failure::new(kind, message)
}
