//! The real gateway against OpenAI-type upstreams on 127.0.0.1 (wiremock stubs and a raw
//! TCP server that cuts a stream): pass-through, streaming, fallback rules, Azure.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a broken fixture should fail the test loudly

mod common;

use common::*;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{body_partial_json, header, method, path, query_param},
};

fn manifests(primary: &str, fallback: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Secret
metadata: {{name: keys, namespace: default}}
stringData: {{primary: sk-primary, fallback: sk-fallback}}
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMProvider
metadata: {{name: primary, namespace: default}}
spec:
  type: openai-compatible
  baseURL: {primary}
  auth: {{secretRefs: [{{name: keys, key: primary}}]}}
  models: [{{name: up-model, pricing: {{input: "1", output: "2"}}}}]
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMProvider
metadata: {{name: fallback, namespace: default}}
spec:
  type: openai-compatible
  baseURL: {fallback}
  auth: {{secretRefs: [{{name: keys, key: fallback}}]}}
  models: [{{name: fb-model, pricing: {{input: "1", output: "2"}}}}]
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMRoute
metadata: {{name: chat, namespace: default}}
spec:
  model: chat
  backends: [{{providerRef: {{name: primary}}, model: up-model}}]
  fallbacks: [{{providerRef: {{name: fallback}}, model: fb-model}}]
  timeouts: {{connect: 1s, firstToken: 5s, total: 10s}}
"#
    )
}

fn completion(model: &str, text: &str) -> Value {
    json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": model, "system_fingerprint": "fp_1",
           "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop", "logprobs": null}],
           "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13, "prompt_tokens_details": {"cached_tokens": 4}}})
}

fn chat(stream: bool) -> Value {
    json!({"model": "chat", "stream": stream, "messages": [{"role": "user", "content": "hi"}], "logit_bias": {"42": 1}})
}

#[tokio::test]
async fn requests_pass_through_with_key_model_and_unknown_fields() {
    let up = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(header("authorization", "Bearer sk-primary"))
        .and(body_partial_json(
            json!({"model": "up-model", "logit_bias": {"42": 1}}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion("up-model", "hello")))
        .expect(1)
        .mount(&up)
        .await;
    let (g, _dir) = start_with(&manifests(
        &format!("{}/v1", up.uri()),
        "http://127.0.0.1:9",
    ))
    .await;
    let (status, headers, body) = post(&g, "/v1/chat/completions", chat(false)).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "hello");
    assert_eq!(
        v["system_fingerprint"], "fp_1",
        "unknown response fields pass through"
    );
    assert_eq!(headers["x-tollgate-fallback"], "false");
    let received = &up.received_requests().await.unwrap()[0];
    assert!(
        received.headers.get("x-request-id").is_some(),
        "the request id goes upstream"
    );
    g.shutdown().await;
}

#[tokio::test]
async fn a_500_falls_back_and_a_400_does_not() {
    let (up, fb) = (MockServer::start().await, MockServer::start().await);
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500).set_body_string("boom"))
        .mount(&up)
        .await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(completion("fb-model", "from fallback")),
        )
        .mount(&fb)
        .await;
    let (g, _dir) = start_with(&manifests(&up.uri(), &fb.uri())).await;
    let (status, headers, body) = post(&g, "/v1/chat/completions", chat(false)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            headers["x-tollgate-attempts"].to_str().unwrap(),
            headers["x-tollgate-fallback"].to_str().unwrap()
        ),
        ("3", "true"), // one retry on the primary (retry.attempts defaults to 2), then the fallback
    );
    assert!(body.contains("from fallback"));

    up.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {"message": "bad temperature", "type": "invalid_request_error", "param": "temperature", "code": null}})))
        .mount(&up)
        .await;
    let (status, _, body) = post(&g, "/v1/chat/completions", chat(false)).await;
    assert_eq!(status, 400, "client errors never fall back: {body}");
    assert!(body.contains("bad temperature"));
    assert_eq!(
        fb.received_requests().await.unwrap().len(),
        1,
        "the fallback saw only the first request"
    );
    g.shutdown().await;
}

#[tokio::test]
async fn a_dead_primary_falls_back_and_a_429_is_passed_on_with_retry_after() {
    let fb = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion("fb-model", "ok")))
        .mount(&fb)
        .await;
    // Port 9 on loopback: nothing listens, connection refused.
    let (g, _dir) = start_with(&manifests("http://127.0.0.1:9", &fb.uri())).await;
    let (status, headers, _) = post(&g, "/v1/chat/completions", chat(false)).await;
    assert_eq!(
        (status, headers["x-tollgate-fallback"].to_str().unwrap()),
        (200, "true")
    );
    g.shutdown().await;

    let up = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "17").set_body_json(json!({"error": {"message": "slow down", "type": "requests", "code": "rate_limit_exceeded"}})))
        .mount(&up)
        .await;
    let (g, _dir) = start_with(&manifests(&up.uri(), &up.uri())).await;
    let (status, headers, body) = post(&g, "/v1/chat/completions", chat(false)).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(headers["retry-after"], "17");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"]["type"],
        "rate_limit_error"
    );
    g.shutdown().await;
}

#[tokio::test]
async fn upstream_streams_are_forwarded_and_a_500_before_the_first_byte_falls_back() {
    let (up, fb) = (MockServer::start().await, MockServer::start().await);
    let sse = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/openai/stream_tool_call.sse"
    ))
    .unwrap();
    Mock::given(method("POST"))
        .and(body_partial_json(
            json!({"stream": true, "stream_options": {"include_usage": true}}),
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "text/event-stream")
                .set_body_string(sse),
        )
        .mount(&fb)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&up)
        .await;
    let (g, _dir) = start_with(&manifests(&up.uri(), &fb.uri())).await;
    let (status, headers, body) = post(&g, "/v1/chat/completions", chat(true)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["x-tollgate-fallback"], "true");
    let data = sse_data(&body);
    assert_eq!(data.last().unwrap(), "[DONE]");
    assert!(body.contains(r#""name":"get_weather""#));
    assert!(
        !body.contains(r#""usage":{"prompt_tokens""#),
        "the client did not ask for usage"
    );
    g.shutdown().await;
}

/// A server that starts a stream, sends one event, then drops the connection.
async fn cutting_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        for _ in 0..4 {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let mut buf = vec![0u8; 65536];
            let _ = socket.read(&mut buf).await;
            let event = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"up-model\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"partial\"},\"finish_reason\":null}]}\n\n";
            let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
            let chunk = format!("{:x}\r\n{event}\r\n", event.len());
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.write_all(chunk.as_bytes()).await;
            let _ = socket.flush().await;
            drop(socket);
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_stream_cut_mid_way_ends_with_an_error_event_and_no_done() {
    let fb = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion("fb-model", "unused")))
        .mount(&fb)
        .await;
    let (g, _dir) = start_with(&manifests(&cutting_server().await, &fb.uri())).await;
    let (status, _, body) = post(&g, "/v1/chat/completions", chat(true)).await;
    assert_eq!(status, 200);
    let data = sse_data(&body);
    assert!(data.iter().any(|d| d.contains("partial")), "{body}");
    let last: Value = serde_json::from_str(data.last().unwrap()).unwrap();
    assert_eq!(last["error"]["type"], "api_error", "{body}");
    assert!(
        !body.contains("[DONE]"),
        "a cut stream must never look finished: {body}"
    );
    assert!(
        fb.received_requests().await.unwrap().is_empty(),
        "no fallback after the first byte"
    );
    g.shutdown().await;
}

#[tokio::test]
async fn azure_uses_its_deployment_url_and_api_key() {
    let up = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/openai/deployments/prod-4o/chat/completions"))
        .and(query_param("api-version", "2024-10-21"))
        .and(header("api-key", "az-secret"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion("gpt-4o", "from azure")))
        .expect(1)
        .mount(&up)
        .await;
    let yaml = format!(
        r#"
apiVersion: v1
kind: Secret
metadata: {{name: az, namespace: default}}
stringData: {{key: az-secret}}
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMProvider
metadata: {{name: azure, namespace: default}}
spec:
  type: azure-openai
  baseURL: {}
  azure: {{deployments: [{{model: gpt-4o, deployment: prod-4o}}]}}
  auth: {{secretRefs: [{{name: az, key: key}}]}}
  models: [{{name: gpt-4o, pricing: {{input: "2.5", output: "10"}}}}]
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMRoute
metadata: {{name: chat, namespace: default}}
spec:
  model: chat
  backends: [{{providerRef: {{name: azure}}, model: gpt-4o}}]
"#,
        up.uri()
    );
    let (g, _dir) = start_with(&yaml).await;
    let (status, _, body) = post(&g, "/v1/chat/completions", chat(false)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("from azure"));
    g.shutdown().await;
}
