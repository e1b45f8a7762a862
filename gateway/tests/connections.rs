//! Clients that hold connections: slow heads (slowloris), slow bodies, idle keep-alive
//! connections, more connections than the cap, and half-sent requests at shutdown. Raw TCP
//! on 127.0.0.1, so the test controls every byte.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a broken fixture should fail the test loudly

mod common;

use std::time::Duration;

use common::*;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use tollgate_gateway::{
    config::ConfigSource,
    server::{self, ConnectionLimits, Options, Running},
};

/// Longest any test waits for the gateway to act; far above the configured timeouts.
const PATIENCE: Duration = Duration::from_secs(15);

fn limits() -> ConnectionLimits {
    ConnectionLimits {
        header_read: Duration::from_millis(400),
        body_read: Duration::from_millis(400),
        idle: Duration::from_millis(400),
        max_connections: 4096,
    }
}

async fn gateway(limits: ConnectionLimits, drain: Duration) -> (Running, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), MOCK);
    let g = server::start(Options {
        drain_timeout: drain,
        recheck: Duration::from_secs(60),
        limits,
        ..test_options(ConfigSource::Dir(dir.path().to_path_buf()))
    })
    .await
    .unwrap();
    (g, dir)
}

/// Reads until the gateway closes the connection; returns what it sent. Panics if the
/// connection is still open after `PATIENCE`.
async fn read_until_closed(socket: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(PATIENCE, socket.read(&mut buf)).await {
            Err(_) => panic!(
                "the gateway kept the connection open; it sent: {}",
                String::from_utf8_lossy(&out)
            ),
            Ok(Ok(0) | Err(_)) => return String::from_utf8_lossy(&out).into_owned(),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}

const HALF_HEAD: &[u8] = b"POST /v1/chat/completions HTTP/1.1\r\nhost: gateway\r\nx-slow: ";

#[tokio::test]
async fn a_head_sent_one_byte_at_a_time_is_cut_off() {
    let (g, _dir) = gateway(limits(), Duration::from_secs(5)).await;
    let mut socket = TcpStream::connect(g.api_addr).await.unwrap();
    socket.write_all(HALF_HEAD).await.unwrap();
    // Keep trickling header bytes, far longer than the header-read timeout.
    let mut closed = false;
    for _ in 0..150 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if socket.write_all(b"a").await.is_err() {
            closed = true;
            break;
        }
        let mut probe = [0u8; 64];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(1), socket.read(&mut probe)).await
        {
            closed = true;
            break;
        }
    }
    assert!(closed, "a slowloris head kept its connection for 15 s");
    g.shutdown().await;
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_gets_408_as_openai_json() {
    let (g, _dir) = gateway(limits(), Duration::from_secs(5)).await;
    let mut socket = TcpStream::connect(g.api_addr).await.unwrap();
    socket
        .write_all(b"POST /v1/chat/completions HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"model\":")
        .await
        .unwrap();
    let answer = read_until_closed(&mut socket).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""code":"request_timeout""#), "{answer}");
    g.shutdown().await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let (g, _dir) = gateway(limits(), Duration::from_secs(5)).await;
    let mut socket = TcpStream::connect(g.api_addr).await.unwrap();
    socket
        .write_all(b"GET /v1/models HTTP/1.1\r\nhost: gateway\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut socket).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        !answer.contains("connection: close"),
        "the gateway offered keep-alive"
    );
    g.shutdown().await;
}

#[tokio::test]
async fn many_half_sent_requests_are_all_closed_and_the_gateway_keeps_serving() {
    let (g, _dir) = gateway(limits(), Duration::from_secs(5)).await;
    let mut sockets = Vec::new();
    for _ in 0..200 {
        let mut s = TcpStream::connect(g.api_addr).await.unwrap();
        s.write_all(HALF_HEAD).await.unwrap();
        sockets.push(s);
    }
    for s in &mut sockets {
        read_until_closed(s).await;
    }
    let (status, _, _) = post(
        &g,
        "/v1/chat/completions",
        serde_json::json!({"model": "demo", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(status, 200);
    g.shutdown().await;
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_until_one_closes() {
    let capped = ConnectionLimits {
        header_read: Duration::from_secs(120),
        idle: Duration::from_secs(120),
        max_connections: 2,
        ..limits()
    };
    let (g, _dir) = gateway(capped, Duration::from_secs(5)).await;
    let mut holders = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(g.api_addr).await.unwrap();
        s.write_all(HALF_HEAD).await.unwrap();
        holders.push(s);
    }
    let url = api(&g, "/v1/models");
    let mut third = tokio::spawn(async move { http().get(url).send().await.unwrap().status() });
    assert!(
        tokio::time::timeout(Duration::from_millis(500), &mut third)
            .await
            .is_err(),
        "a third connection was served while two held the cap of 2"
    );
    drop(holders.pop());
    let status = tokio::time::timeout(PATIENCE, third)
        .await
        .expect("served once a slot freed")
        .unwrap();
    assert_eq!(status, 200);
    g.shutdown().await;
}

#[tokio::test]
async fn shutdown_does_not_wait_for_a_half_sent_request() {
    let patient = ConnectionLimits {
        header_read: Duration::from_secs(120),
        idle: Duration::from_secs(120),
        ..limits()
    };
    // A drain timeout far above PATIENCE: only closing the half-sent connection at once
    // lets shutdown finish in time.
    let (g, _dir) = gateway(patient, Duration::from_secs(120)).await;
    let mut socket = TcpStream::connect(g.api_addr).await.unwrap();
    socket.write_all(HALF_HEAD).await.unwrap();
    let mut idle = TcpStream::connect(g.api_addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    tokio::time::timeout(PATIENCE, g.shutdown())
        .await
        .expect("shutdown waited on a half-sent request");
    read_until_closed(&mut socket).await;
    read_until_closed(&mut idle).await;
}

#[tokio::test]
async fn a_malformed_chunked_body_is_a_400_not_a_413() {
    let (g, _dir) = gateway(ConnectionLimits::default(), Duration::from_secs(5)).await;
    let mut socket = TcpStream::connect(g.api_addr).await.unwrap();
    socket
        .write_all(b"POST /v1/chat/completions HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\nZZ-not-hex\r\n{}\r\n0\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut socket).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("invalid_request_error"), "{answer}");
    g.shutdown().await;
}

#[tokio::test]
async fn an_http2_connection_pinging_between_requests_is_idle_not_a_slow_head() {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    let (g, _dir) = gateway(
        ConnectionLimits {
            idle: Duration::from_secs(60),
            ..limits()
        },
        Duration::from_secs(5),
    )
    .await;
    let tcp = TcpStream::connect(g.api_addr).await.unwrap();
    // Frequent pings: control frames between requests, as HTTP/2 clients send.
    let (mut send, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .keep_alive_interval(Duration::from_millis(100))
        .keep_alive_while_idle(true)
        .handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    for i in 0..3 {
        let req = http::Request::get(format!("http://{}/v1/models", g.api_addr))
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        let response = send
            .send_request(req)
            .await
            .unwrap_or_else(|e| panic!("request {i} on the same connection: {e}"));
        assert_eq!(response.status(), 200);
        // Longer than the header-read timeout: only a head deadline would close it now.
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
    g.shutdown().await;
}
