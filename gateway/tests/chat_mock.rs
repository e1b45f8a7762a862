//! The real gateway on 127.0.0.1 with the in-process mock provider.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a broken fixture should fail the test loudly

mod common;

use common::*;
use serde_json::{Value, json};

#[tokio::test]
async fn non_streaming_chat_answers_with_usage_and_routing_headers() {
    let (g, _dir) = start_with(MOCK).await;
    let (status, headers, body) = post(
        &g,
        "/v1/chat/completions",
        json!({"model": "demo", "messages": [{"role": "user", "content": "Hello"}]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "Hello from Tollgate's mock provider. You said: Hello"
    );
    assert!(v["usage"]["total_tokens"].as_u64().unwrap() > 0);
    assert_eq!(headers["x-tollgate-route"], "default/demo");
    assert_eq!(headers["x-tollgate-provider"], "default/mock");
    assert_eq!(headers["x-tollgate-attempts"], "1");
    assert_eq!(headers["x-tollgate-fallback"], "false");
    assert!(headers.contains_key("x-request-id"));
    g.shutdown().await;
}

#[tokio::test]
async fn aliases_select_the_route_and_request_ids_are_echoed() {
    let (g, _dir) = start_with(MOCK).await;
    let r = http()
        .post(api(&g, "/v1/chat/completions"))
        .header("x-request-id", "req-123")
        .json(&json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-request-id"], "req-123");
    g.shutdown().await;
}

#[tokio::test]
async fn streams_end_with_done_and_usage_only_when_asked() {
    let (g, _dir) = start_with(MOCK).await;
    let (status, headers, body) = post(
        &g,
        "/v1/chat/completions",
        json!({"model": "demo", "stream": true, "messages": [{"role": "user", "content": "Hi"}]}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/event-stream");
    let data = sse_data(&body);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    assert_eq!(
        streamed_text(&body),
        "Hello from Tollgate's mock provider. You said: Hi"
    );
    assert!(
        !body.contains("\"usage\":{"),
        "no usage chunk unless asked: {body}"
    );

    let (_, _, body) = post(
        &g,
        "/v1/chat/completions",
        json!({"model": "demo", "stream": true, "stream_options": {"include_usage": true}, "messages": [{"role": "user", "content": "Hi"}]}),
    )
    .await;
    let data = sse_data(&body);
    let usage: Value = serde_json::from_str(&data[data.len() - 2]).unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert!(usage["usage"]["completion_tokens"].as_u64().unwrap() > 0);
    g.shutdown().await;
}

#[tokio::test]
async fn tool_calls_and_image_inputs_work() {
    let (g, _dir) = start_with(MOCK).await;
    let tools = json!([{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
    let (status, _, body) = post(
        &g,
        "/v1/chat/completions",
        json!({"model": "demo", "tools": tools, "messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is in this image?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
        ]}]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(
        v["choices"][0]["message"]["tool_calls"][0]["function"]["name"],
        "get_weather"
    );
    g.shutdown().await;
}

#[tokio::test]
async fn client_errors_use_openai_error_json() {
    let (g, _dir) = start_with(MOCK).await;
    let (status, _, body) = post(
        &g,
        "/v1/chat/completions",
        json!({"model": "nope", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(status, 404);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (v["error"]["code"].as_str(), v["error"]["param"].as_str()),
        (Some("model_not_found"), Some("model"))
    );

    let (status, _, body) = post(
        &g,
        "/v1/chat/completions",
        json!({"model": "demo", "messages": []}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"]["param"],
        "messages"
    );

    let r = http()
        .post(api(&g, "/v1/chat/completions"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["type"],
        "invalid_request_error"
    );

    let huge = "x".repeat(2 * 1024 * 1024);
    let (status, _, body) = post(
        &g,
        "/v1/chat/completions",
        json!({"model": "demo", "messages": [{"role": "user", "content": huge}]}),
    )
    .await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"]["code"],
        "request_too_large"
    );

    let r = http().get(api(&g, "/v2/whatever")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(
        r.json::<Value>().await.unwrap()["error"]["message"]
            .as_str()
            .is_some()
    );
    g.shutdown().await;
}

#[tokio::test]
async fn models_embeddings_and_admin_endpoints() {
    let (g, _dir) = start_with(MOCK).await;
    let models: Value = http()
        .get(api(&g, "/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["demo", "gpt-4o-mini"]);

    let (status, _, body) = post(
        &g,
        "/v1/embeddings",
        json!({"model": "demo", "input": ["a", "b"]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 2);

    assert_eq!(
        http()
            .get(admin(&g, "/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        http()
            .get(admin(&g, "/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let status: Value = admin_json(&g, "/config/status").await;
    assert_eq!(status["hash"].as_str().unwrap().len(), 64);
    assert!(status["lastError"].is_null());
    let metrics = admin_text(&g, "/metrics").await;
    for name in [
        "gen_ai_client_token_usage",
        "gen_ai_server_request_duration",
        "tollgate_gateway_overhead_seconds",
        "tollgate_config_info",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
    assert!(metrics.contains(r#"gen_ai_token_type="input""#));
    assert!(metrics.contains(r#"gen_ai_operation_name="embeddings""#));
    g.shutdown().await;
}

#[tokio::test]
async fn not_ready_without_a_valid_config() {
    let dir = tempfile::tempdir().unwrap();
    write_raw_config(dir.path(), "{\"version\": 99}");
    let g = start(dir.path()).await;
    assert_eq!(
        http()
            .get(admin(&g, "/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        503
    );
    let (status, _, body) = post(
        &g,
        "/v1/chat/completions",
        json!({"model": "demo", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(status, 503, "{body}");
    let status: Value = admin_json(&g, "/config/status").await;
    assert!(
        status["lastError"]
            .as_str()
            .unwrap()
            .contains("version 99 is not supported"),
        "{status}"
    );
    g.shutdown().await;
}
