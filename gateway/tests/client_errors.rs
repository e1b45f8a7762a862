//! What a client sees when its request is wrong: OpenAI-shaped JSON with the right status,
//! naming the field in the API's words (not the gateway's Rust types), and quoting only a
//! bounded amount of what the client sent.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a broken fixture should fail the test loudly

mod common;

use common::*;
use serde_json::{Value, json};

#[tokio::test]
async fn a_wrongly_shaped_field_is_named_with_its_path_and_param() {
    let (g, _dir) = start_with(MOCK).await;
    let (status, _, body) = post(
        &g,
        "/v1/chat/completions",
        json!({"model": "demo", "messages": [{"role": "user", "content": 5}]}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"]["param"], "messages[0].content", "{body}");
    assert_eq!(error["error"]["type"], "invalid_request_error");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains("messages[0].content"), "{message}");
    assert!(
        !message.contains("untagged") && !message.contains("enum Content"),
        "{message}"
    );

    let (status, _, body) = post(
        &g,
        "/v1/embeddings",
        json!({"model": "demo", "input": "x", "dimensions": "many"}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"]["param"], "dimensions", "{body}");
    g.shutdown().await;
}
