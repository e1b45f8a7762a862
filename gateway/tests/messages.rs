//! The Anthropic Messages door (`/v1/messages`, `/v1/messages/count_tokens`) over real HTTP
//! on 127.0.0.1: byte-for-byte passthrough to an Anthropic backend (what the upstream
//! received, what the client got), a cut stream ending in an `error` event, translation to
//! an OpenAI-compatible backend (the mock upstream), Anthropic-shaped errors and `x-api-key`
//! client keys, token counting forwarded or estimated.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a broken fixture should fail the test loudly
#![allow(clippy::disallowed_types, reason = "the fake upstream's request log")]

mod common;

use std::sync::{Arc, Mutex};

use axum::{Router, body::Bytes, extract::State, http::HeaderMap, routing::post};
use common::*;
use serde_json::{Value, json};
use tollgate_gateway::mock_upstream::{DEFAULT_REPLY, Knobs, spawn};

/// A thinking answer with a signature, as Anthropic sends it (fields the gateway does not
/// know included).
const MESSAGE: &str = r#"{"id":"msg_01X","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[{"type":"thinking","thinking":"Two plus two.","signature":"ErUBCkYIBRgCIkD+/sig=="},{"type":"text","text":"4","citations":null}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":12,"cache_creation_input_tokens":100,"cache_read_input_tokens":2000,"cache_creation":{"ephemeral_5m_input_tokens":100,"ephemeral_1h_input_tokens":0},"output_tokens":30,"service_tier":"standard"},"container":null}"#;

/// The same answer streamed, with a `signature_delta`, a ping and an event type the
/// gateway has never heard of.
const STREAM: &str = concat!(
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01X\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5-20250929\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":12,\"cache_creation_input_tokens\":100,\"cache_read_input_tokens\":2000,\"output_tokens\":1}}}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}}\n\n",
    "event: ping\ndata: {\"type\": \"ping\"}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"Two plus two.\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\",\"signature\":\"ErUBCkYIBRgCIkD+/sig==\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
    "event: future_event\ndata: {\"type\":\"future_event\",\"x\":1}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"4\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
    "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":30}}\n\n",
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
);

/// A stream that fails before any content: Anthropic's in-band overloaded error.
const OVERLOADED_AT_START: &str = concat!(
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_02\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\",\"content\":[],\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n",
    "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
);

/// Where [`STREAM`] is cut when the client asks for a cut: after the first text delta.
fn cut_stream() -> &'static str {
    let end = STREAM
        .find("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}")
        .unwrap();
    &STREAM[..end]
}

/// What the fake Anthropic API received: headers and exact body bytes.
type Received = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

/// A fake Anthropic API: answers [`MESSAGE`], [`STREAM`] (cut when the prompt says `cut`)
/// and `{"input_tokens": 42}`, and records every request.
async fn anthropic_upstream() -> (String, Received) {
    async fn messages(
        State(r): State<Received>,
        headers: HeaderMap,
        body: Bytes,
    ) -> axum::response::Response {
        r.lock().unwrap().push((headers, body.clone()));
        let v: Value = serde_json::from_slice(&body).unwrap();
        if v["stream"] == true {
            let text = if body.windows(3).any(|w| w == b"cut") {
                cut_stream()
            } else if body.windows(8).any(|w| w == b"overload") {
                OVERLOADED_AT_START
            } else {
                STREAM
            };
            return ([("content-type", "text/event-stream")], text).into_response();
        }
        ([("content-type", "application/json")], MESSAGE).into_response()
    }
    async fn count(
        State(r): State<Received>,
        headers: HeaderMap,
        body: Bytes,
    ) -> axum::response::Response {
        r.lock().unwrap().push((headers, body));
        (
            [("content-type", "application/json")],
            r#"{"input_tokens":42}"#,
        )
            .into_response()
    }
    use axum::response::IntoResponse;
    let received = Received::default();
    let app = Router::new()
        .route("/v1/messages", post(messages))
        .route("/v1/messages/count_tokens", post(count))
        .with_state(Arc::clone(&received));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), received)
}

const CLIENT_KEY: &str = "tg-claude-app-0123456789abcdef012345";

/// Routes `claude` (Anthropic at `anthropic`) and `compat` (OpenAI-compatible at `compat`),
/// in a namespace whose routes need a client key.
fn manifests(anthropic: &str, compat: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Secret
metadata: {{name: keys, namespace: apps}}
stringData: {{anthropic: sk-ant-upstream, compat: sk-compat}}
---
apiVersion: v1
kind: Secret
metadata:
  name: claude-app
  namespace: apps
  labels: {{tollgate.dev/client-key: "true"}}
stringData: {{key: "{CLIENT_KEY}"}}
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMProvider
metadata: {{name: anthropic, namespace: apps}}
spec:
  type: anthropic
  baseURL: {anthropic}
  auth: {{secretRefs: [{{name: keys, key: anthropic}}]}}
  models: [{{name: claude-sonnet-4-5, pricing: {{input: "3", output: "15"}}}}]
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMProvider
metadata: {{name: compat, namespace: apps}}
spec:
  type: openai-compatible
  baseURL: {compat}/v1
  auth: {{secretRefs: [{{name: keys, key: compat}}]}}
  models: [{{name: llama-3.1-8b, pricing: {{input: "0.1", output: "0.2"}}}}]
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMRoute
metadata: {{name: claude, namespace: apps}}
spec:
  model: claude
  backends: [{{providerRef: {{name: anthropic}}, model: claude-sonnet-4-5}}]
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMRoute
metadata: {{name: compat, namespace: apps}}
spec:
  model: compat
  backends: [{{providerRef: {{name: compat}}, model: llama-3.1-8b}}]
"#
    )
}

/// POSTs `body` (exact text) with the client key as `x-api-key` and Anthropic's headers.
async fn send(
    g: &tollgate_gateway::server::Running,
    path: &str,
    body: String,
) -> (u16, HeaderMap, String) {
    let r = http()
        .post(api(g, path))
        .header("x-api-key", CLIENT_KEY)
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", "interleaved-thinking-2025-05-14")
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.text().await.unwrap())
}

/// A request with a thinking block (signed), cache_control with a TTL, a document and a
/// field no API has yet, with deliberately unusual number and escape spellings.
fn rich_request(stream: bool, text: &str) -> String {
    format!(
        r#"{{"model":"claude","max_tokens":2048,"stream":{stream},"thinking":{{"type":"enabled","budget_tokens":1024}},"system":[{{"type":"text","text":"Be exact.","cache_control":{{"type":"ephemeral","ttl":"1h"}}}}],"messages":[{{"role":"user","content":[{{"type":"document","source":{{"type":"text","media_type":"text/plain","data":"2+2"}}}},{{"type":"text","text":"{text}"}}]}},{{"role":"assistant","content":[{{"type":"thinking","thinking":"Sum.","signature":"EqQBCkYIARgCKkB\u002fsig=="}},{{"type":"text","text":"4"}}]}},{{"role":"user","content":"sure?"}}],"temperature":1.0e0,"x_future_field":{{"nested":[1.50,"\u00e9"]}}}}"#
    )
}

#[tokio::test]
async fn anthropic_backends_get_the_body_byte_for_byte_and_answer_unchanged() {
    let (anthropic, received) = anthropic_upstream().await;
    let compat = spawn(Knobs::default()).await.unwrap();
    let (g, _dir) = start_with(&manifests(&anthropic, &compat.url())).await;

    let sent = rich_request(false, "what is it?");
    let (status, headers, body) = send(&g, "/v1/messages", sent.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, MESSAGE, "the answer passes through unchanged");
    assert_eq!(headers["x-tollgate-provider"], "apps/anthropic");
    // Priced from the usage read out of the passed-through body.
    assert!(headers.contains_key("x-tollgate-cost-usd"), "{headers:?}");

    let (up_headers, up_body) = received.lock().unwrap()[0].clone();
    let expected = sent.replacen(r#""model":"claude""#, r#""model":"claude-sonnet-4-5""#, 1);
    assert_eq!(
        std::str::from_utf8(&up_body).unwrap(),
        expected,
        "only the model differs"
    );
    assert_eq!(
        up_headers["x-api-key"], "sk-ant-upstream",
        "the provider's key, never the client's"
    );
    assert_eq!(up_headers["anthropic-version"], "2023-06-01");
    assert_eq!(
        up_headers["anthropic-beta"],
        "interleaved-thinking-2025-05-14"
    );
    // Metered as chat, with the cache reads read out of the passed-through usage.
    let metrics = admin_text(&g, "/metrics").await;
    let cached = metrics
        .lines()
        .find(|l| {
            l.starts_with("gen_ai_client_token_usage_sum{")
                && l.contains(r#"gen_ai_operation_name="chat""#)
                && l.contains(r#"gen_ai_token_type="cached_input""#)
                && l.contains(r#"route="apps/claude""#)
        })
        .unwrap_or_else(|| panic!("no cached-input tokens for the route:\n{metrics}"));
    assert!(
        cached.ends_with(" 2000.0") || cached.ends_with(" 2000"),
        "{cached}"
    );
    g.shutdown().await;
}

#[tokio::test]
async fn anthropic_streams_pass_through_and_a_cut_one_ends_with_an_error_event() {
    let (anthropic, _received) = anthropic_upstream().await;
    let compat = spawn(Knobs::default()).await.unwrap();
    let (g, _dir) = start_with(&manifests(&anthropic, &compat.url())).await;

    let (status, headers, body) = send(&g, "/v1/messages", rich_request(true, "go")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["content-type"], "text/event-stream");
    let rest = body
        .strip_prefix(STREAM)
        .unwrap_or_else(|| panic!("not passed through unchanged:\n{body}"));
    assert!(
        rest.starts_with(": x-tollgate-cost-usd=")
            && rest.lines().all(|l| l.is_empty() || l.starts_with(':')),
        "after the upstream's events only the cost comment: {rest:?}"
    );

    let (status, _, body) = send(&g, "/v1/messages", rich_request(true, "cut")).await;
    assert_eq!(status, 200, "{body}");
    let rest = body
        .strip_prefix(cut_stream())
        .unwrap_or_else(|| panic!("{body}"));
    assert!(rest.starts_with("event: error\ndata: "), "{rest}");
    let error: Value =
        serde_json::from_str(rest.lines().nth(1).unwrap().strip_prefix("data: ").unwrap()).unwrap();
    assert_eq!(error["type"], "error");
    assert_eq!(error["error"]["type"], "api_error");
    assert!(
        !body.contains("message_stop"),
        "a cut stream never ends cleanly"
    );
    g.shutdown().await;
}

#[tokio::test]
async fn other_backends_answer_translated_messages_and_events() {
    let (anthropic, _) = anthropic_upstream().await;
    let compat = spawn(Knobs::default()).await.unwrap();
    let (g, _dir) = start_with(&manifests(&anthropic, &compat.url())).await;
    let req = |stream: bool| {
        json!({"model": "compat", "max_tokens": 200, "stream": stream, "system": "Be brief.",
            "messages": [{"role": "user", "content": "Hi"}]})
        .to_string()
    };

    let (status, _, body) = send(&g, "/v1/messages", req(false)).await;
    assert_eq!(status, 200, "{body}");
    let m: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(m["type"], "message");
    assert_eq!(m["content"][0]["text"], DEFAULT_REPLY);
    assert_eq!(m["stop_reason"], "end_turn");
    assert!(m["usage"]["input_tokens"].as_u64().unwrap() > 0, "{body}");
    let up = compat.last_request().unwrap();
    assert_eq!(
        up.body["messages"][0],
        json!({"role": "system", "content": "Be brief."})
    );
    assert_eq!(up.body["model"], "llama-3.1-8b");

    let (status, _, body) = send(&g, "/v1/messages", req(true)).await;
    assert_eq!(status, 200, "{body}");
    let names: Vec<&str> = body
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(
        &names[names.len() - 2..],
        ["message_delta", "message_stop"],
        "{body}"
    );
    let text: String = sse_data(&body)
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| v["delta"]["text"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(text, DEFAULT_REPLY);

    g.shutdown().await;

    // A backend that cuts the stream after two chunks: an error event, no message_stop.
    let cutting = spawn(Knobs {
        disconnect_after: Some(2),
        ..Knobs::default()
    })
    .await
    .unwrap();
    let (g, _dir) = start_with(&manifests(&anthropic, &cutting.url())).await;
    let (status, _, body) = send(&g, "/v1/messages", req(true)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with("event: message_start"), "{body}");
    assert!(!body.contains("message_stop"), "{body}");
    let last = body.trim_end().rsplit("\n\n").next().unwrap();
    assert!(last.starts_with("event: error\ndata: {"), "{body}");
    g.shutdown().await;
}

#[tokio::test]
async fn errors_are_anthropic_shaped_and_x_api_key_is_the_client_key() {
    let (anthropic, _) = anthropic_upstream().await;
    let compat = spawn(Knobs::default()).await.unwrap();
    let (g, _dir) = start_with(&manifests(&anthropic, &compat.url())).await;
    let error = |body: &str| -> (String, String) {
        let v: Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["type"], "error", "{body}");
        (
            v["error"]["type"].as_str().unwrap().to_owned(),
            v["error"]["message"].as_str().unwrap().to_owned(),
        )
    };
    let ok = json!({"model": "compat", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]});

    let r = http()
        .post(api(&g, "/v1/messages"))
        .json(&ok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(error(&r.text().await.unwrap()).0, "authentication_error");

    let (status, _, body) = send(
        &g,
        "/v1/messages",
        json!({"model": "nope", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]})
            .to_string(),
    )
    .await;
    assert_eq!(
        (status, error(&body).0.as_str()),
        (404, "not_found_error"),
        "{body}"
    );

    let (status, _, body) = send(
        &g,
        "/v1/messages",
        json!({"model": "compat", "messages": [{"role": "user", "content": "x"}]}).to_string(),
    )
    .await;
    assert_eq!(
        (status, error(&body).0.as_str()),
        (400, "invalid_request_error")
    );
    assert!(error(&body).1.contains("max_tokens"), "{body}");

    let (status, _, body) = send(&g, "/v1/messages", json!({"model": "compat", "max_tokens": 10, "thinking": {"type": "enabled", "budget_tokens": 1024}, "messages": [{"role": "user", "content": "x"}]}).to_string()).await;
    assert_eq!(
        (status, error(&body).0.as_str()),
        (400, "invalid_request_error"),
        "{body}"
    );
    assert!(error(&body).1.contains("thinking"), "{body}");

    let (status, _, body) = send(
        &g,
        "/v1/messages",
        json!({"model": "compat", "max_tokens": 10, "messages": [{"role": "user", "content": [{"type": "text"}]}]}).to_string(),
    )
    .await;
    assert_eq!(
        (status, error(&body).0.as_str()),
        (400, "invalid_request_error")
    );
    assert!(error(&body).1.contains("messages[0].content"), "{body}");

    let (status, _, body) = send(&g, "/v1/messages", "{not json".to_owned()).await;
    assert_eq!(
        (status, error(&body).0.as_str()),
        (400, "invalid_request_error")
    );

    g.shutdown().await;

    // A backend's rate limit reaches the client as Anthropic's rate_limit_error.
    let limited = spawn(Knobs {
        status: Some(429),
        ..Knobs::default()
    })
    .await
    .unwrap();
    let (g, _dir) = start_with(&manifests(&anthropic, &limited.url())).await;
    let (status, _, body) = send(&g, "/v1/messages", ok.to_string()).await;
    assert_eq!(
        (status, error(&body).0.as_str()),
        (429, "rate_limit_error"),
        "{body}"
    );
    g.shutdown().await;

    // An overloaded Anthropic backend: Anthropic's own 529 and overloaded_error.
    let overloaded = spawn(Knobs {
        status: Some(529),
        ..Knobs::default()
    })
    .await
    .unwrap();
    let (g, _dir) = start_with(&manifests(&overloaded.url(), &limited.url())).await;
    let claude = json!({"model": "claude", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]});
    let (status, _, body) = send(&g, "/v1/messages", claude.to_string()).await;
    assert_eq!(
        (status, error(&body).0.as_str()),
        (529, "overloaded_error"),
        "{body}"
    );
    g.shutdown().await;
}

#[tokio::test]
async fn count_tokens_is_forwarded_to_anthropic_and_estimated_elsewhere() {
    let (anthropic, received) = anthropic_upstream().await;
    let compat = spawn(Knobs::default()).await.unwrap();
    let (g, _dir) = start_with(&manifests(&anthropic, &compat.url())).await;
    let body = |model: &str| {
        json!({"model": model, "system": "Be brief.", "messages": [{"role": "user", "content": "How many tokens is this sentence?"}]}).to_string()
    };

    let (status, headers, text) = send(&g, "/v1/messages/count_tokens", body("claude")).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(text, r#"{"input_tokens":42}"#);
    assert!(!headers.contains_key("x-tollgate-token-count"));
    let (_, up_body) = received.lock().unwrap()[0].clone();
    assert_eq!(
        serde_json::from_slice::<Value>(&up_body).unwrap()["model"],
        "claude-sonnet-4-5"
    );

    let (status, headers, text) = send(&g, "/v1/messages/count_tokens", body("compat")).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(headers["x-tollgate-token-count"], "estimate");
    let n = serde_json::from_str::<Value>(&text).unwrap()["input_tokens"]
        .as_u64()
        .unwrap();
    assert!((8..40).contains(&n), "{n}");
    assert!(
        compat.last_request().is_none(),
        "estimated without calling the backend"
    );

    let r = http()
        .post(api(&g, "/v1/messages/count_tokens"))
        .body(body("compat"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        401,
        "the client key is checked for estimates too"
    );
    g.shutdown().await;
}

#[tokio::test]
async fn a_passthrough_stream_failing_before_content_falls_back() {
    let (anthropic, received) = anthropic_upstream().await;
    let compat = spawn(Knobs::default()).await.unwrap();
    let yaml = manifests(&anthropic, &compat.url()).replace(
        "  backends: [{providerRef: {name: anthropic}, model: claude-sonnet-4-5}]",
        "  backends: [{providerRef: {name: anthropic}, model: claude-sonnet-4-5}]\n  fallbacks: [{providerRef: {name: compat}, model: llama-3.1-8b}]\n  retry: {attempts: 1}",
    );
    let (g, _dir) = start_with(&yaml).await;
    let req = json!({"model": "claude", "max_tokens": 100, "stream": true,
        "messages": [{"role": "user", "content": "overload me"}]});
    let (status, headers, body) = send(&g, "/v1/messages", req.to_string()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["x-tollgate-fallback"], "true", "{body}");
    assert_eq!(
        received.lock().unwrap().len(),
        1,
        "the Anthropic backend was tried first"
    );
    assert!(
        !body.contains("overloaded_error") && !body.contains("msg_02"),
        "nothing of the failed attempt reached the client: {body}"
    );
    assert!(
        body.contains(DEFAULT_REPLY.split(' ').next().unwrap()),
        "{body}"
    );
    assert!(
        body.trim_end().ends_with("{\"type\":\"message_stop\"}"),
        "{body}"
    );
    g.shutdown().await;
}
