//! The operator's HTTP/1.1 client for the gateway pods' admin port (`/config/status`,
//! `/budgets`): one connection per call, a bounded answer, a deadline. Plain hyper, because
//! the pods are reached by IP on the cluster network, without TLS or pooling.

use std::{net::SocketAddr, time::Duration};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// The largest answer read (`/config/status` lists every object, so it can be large).
const MAX_ANSWER: usize = 8 * 1024 * 1024;

/// One HTTP/1.1 request to a pod's admin port, bounded by `timeout`.
pub async fn exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<Bytes>,
    timeout: Duration,
) -> Result<Bytes, String> {
    let call = async {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
                .await
                .map_err(|e| format!("HTTP handshake with {addr} failed: {e}"))?;
        let driver = tokio::spawn(connection);
        let request = http::Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, addr.to_string())
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("request to {addr} failed: {e}"))?;
        let status = response.status();
        let bytes = Limited::new(response.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| format!("reading the answer from {addr} failed: {e}"))?
            .to_bytes();
        driver.abort();
        if !status.is_success() {
            return Err(format!("{addr} answered HTTP {status} to {method} {path}"));
        }
        Ok(bytes)
    };
    tokio::time::timeout(timeout, call)
        .await
        .map_err(|_| format!("no answer from {addr} within {timeout:?}"))?
}
