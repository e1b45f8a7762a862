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
    /// The credentials the request carried, kept only for error answers: providers echo
    /// keys in 400/403/500 bodies, which are quoted to clients and logs.
    credentials: Vec<HeaderValue>,
}

/// Headers that carry credentials (the AWS one holds the access key id).
const CREDENTIAL_HEADERS: [&str; 5] = [
    "authorization",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
    "x-amz-security-token",
];

/// What replaces a credential in quoted upstream text.
const REDACTED: &str = "<redacted>";

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
            credentials: Vec::new(),
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
                Ok(Err(e)) => Err(transport(e)),
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
        if !self.status.is_success() && !self.credentials.is_empty() {
            return Ok(scrub(out.freeze(), &self.credentials));
        }
        Ok(out.freeze())
    }
}

/// `body` with every credential value in `credentials` replaced by [`REDACTED`].
fn scrub(body: Bytes, credentials: &[HeaderValue]) -> Bytes {
    let secrets: Vec<&str> = credentials
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(secret_parts)
        .filter(|s| s.len() >= 8)
        .collect();
    let text = String::from_utf8_lossy(&body);
    if !secrets.iter().any(|s| text.contains(s)) {
        return body;
    }
    let mut text = text.into_owned();
    for secret in secrets {
        text = text.replace(secret, REDACTED);
    }
    Bytes::from(text)
}

/// The secret parts of a credential header value: the token after `Bearer `, the access key
/// id of a SigV4 `Credential=`, or the whole value.
fn secret_parts(value: &str) -> Vec<&str> {
    if let Some(token) = value.strip_prefix("Bearer ") {
        return vec![token.trim()];
    }
    if value.starts_with("AWS4-") {
        return value
            .split(['=', ',', ' '])
            .skip_while(|p| *p != "Credential")
            .nth(1)
            .and_then(|c| c.split('/').next())
            .into_iter()
            .collect();
    }
    vec![value]
}

/// Sends `req` and waits for the response headers until `deadline`.
pub async fn send(
    client: &reqwest::Client,
    req: UpstreamRequest,
    request_id: &str,
    deadline: Instant,
) -> Result<UpstreamResponse, Failure> {
    let credentials: Vec<HeaderValue> = CREDENTIAL_HEADERS
        .iter()
        .filter_map(|name| req.headers.get(*name).cloned())
        .collect();
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
        Ok(Err(e)) => Err(transport(e)),
        Ok(Ok(r)) => Ok(UpstreamResponse {
            status: r.status(),
            headers: r.headers().clone(),
            credentials: if r.status().is_success() {
                Vec::new()
            } else {
                credentials
            },
            body: Body::Remote(r),
        }),
    }
}

/// Classifies a transport error. The message names no URL: clients must not learn the
/// gateway's internal upstream addresses (reqwest's errors quote the URL).
fn transport(e: reqwest::Error) -> Failure {
    let e = e.without_url();
    let kind = if e.is_timeout() {
        FailureKind::Timeout
    } else if e.is_connect() {
        FailureKind::Connect
    } else {
        FailureKind::Protocol
    };
    let mut message = e.to_string();
    if let Some(source) = std::error::Error::source(&e) {
        message = format!("{message}: {source}");
    }
    Failure::new(kind, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_lose_every_credential_the_request_carried() {
        let credentials = [
            HeaderValue::from_static("Bearer sk-live-TOPSECRET-1"),
            HeaderValue::from_static(
                "AWS4-HMAC-SHA256 Credential=AKIATOPSECRET2/20250101/us-east-1/bedrock/aws4_request, SignedHeaders=host, Signature=abc",
            ),
            HeaderValue::from_static("TOPSECRET-goog-3"),
        ];
        let body = Bytes::from_static(
            br#"{"error": "keys sk-live-TOPSECRET-1, AKIATOPSECRET2 and TOPSECRET-goog-3 are wrong"}"#,
        );
        let scrubbed = scrub(body, &credentials);
        let text = String::from_utf8_lossy(&scrubbed);
        assert!(!text.contains("TOPSECRET"), "{text}");
        assert_eq!(text.matches(REDACTED).count(), 3, "{text}");
    }
}
