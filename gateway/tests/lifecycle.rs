//! Connection lifecycle: graceful shutdown drains streams, a client that goes away cancels
//! its upstream request, and HTTP/2 without TLS (h2c) is served.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a broken fixture should fail the test loudly

mod common;

use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use serde_json::json;

fn stream_request() -> serde_json::Value {
    json!({"model": "old", "stream": true, "messages": [{"role": "user", "content": "go"}]})
}

#[tokio::test]
async fn shutdown_lets_in_flight_streams_finish() {
    let (base, counts) = slow_stream_server(8, Duration::from_millis(60)).await;
    let (g, _dir) = start_with(&slow_route(&base)).await;
    let url = api(&g, "/v1/chat/completions");
    let in_flight = tokio::spawn(async move {
        http()
            .post(url)
            .json(&stream_request())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let addr = g.api_addr;
    g.shutdown().await;
    let body = in_flight.await.unwrap();
    assert!(
        body.ends_with("data: [DONE]\n\n"),
        "drained to the end: {body}"
    );
    assert_eq!(counts.completed(), 1);
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no new connections after shutdown"
    );
}

#[tokio::test]
async fn a_client_that_goes_away_cancels_the_upstream_request() {
    let (base, counts) = slow_stream_server(50, Duration::from_millis(40)).await;
    let (g, _dir) = start_with(&slow_route(&base)).await;
    let response = http()
        .post(api(&g, "/v1/chat/completions"))
        .json(&stream_request())
        .send()
        .await
        .unwrap();
    let mut body = response.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("w0"));
    drop(body);
    let mut cancelled = false;
    for _ in 0..60 {
        if counts.aborted() == 1 {
            cancelled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        cancelled,
        "the upstream saw the cancellation (completed {}, aborted {})",
        counts.completed(),
        counts.aborted()
    );
    g.shutdown().await;
}

#[tokio::test]
async fn h2c_prior_knowledge_is_served() {
    let (g, _dir) = start_with(MOCK).await;
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let r = client
        .post(api(&g, "/v1/chat/completions"))
        .json(&json!({"model": "demo", "messages": [{"role": "user", "content": "h2"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), 200);
    g.shutdown().await;
}
