//! One conformance table through the running gateway, for every adapter: a non-streamed and
//! a streamed answer, a tool call (both ways), image input, an upstream error, and a stream
//! cut mid-way. OpenAI, Azure, Anthropic and Gemini run against the mock-upstream test
//! double (real HTTP on 127.0.0.1); Bedrock against wiremock with Converse payloads and
//! event-stream frames.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a broken fixture should fail the test loudly

mod common;

use aws_smithy_eventstream::frame::write_message_to;
use common::*;
use serde_json::{Value, json};
use tollgate_gateway::{
    mock_upstream::{DEFAULT_REPLY, Knobs, spawn},
    stream::eventstream::{Header, HeaderValue as FrameValue, Message},
};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{header_regex, method, path},
};

/// `(provider type, baseURL suffix, model, extra spec lines)` for the mock upstream.
const TYPES: &[(&str, &str, &str)] = &[
    ("openai-compatible", "/v1", "gpt-4o-mini"),
    ("azure-openai", "", "gpt-4o"),
    ("anthropic", "", "claude-haiku-4-5"),
    ("gemini", "", "gemini-2.5-flash"),
];

fn manifests(kind: &str, base: &str, model: &str, headers: &str) -> String {
    let extra = match kind {
        "azure-openai" => "  azure: {}\n",
        _ => "",
    };
    format!(
        r#"
apiVersion: v1
kind: Secret
metadata: {{name: key, namespace: default}}
stringData: {{key: test-key}}
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMProvider
metadata: {{name: up, namespace: default}}
spec:
  type: {kind}
  baseURL: {base}
{extra}  auth: {{secretRefs: [{{name: key, key: key}}]}}
  models: [{{name: {model}, pricing: {{input: "1", output: "2"}}}}]
  headers: [{headers}]
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMRoute
metadata: {{name: chat, namespace: default}}
spec:
  model: chat
  backends: [{{providerRef: {{name: up}}, model: {model}}}]
"#
    )
}

fn tools() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}])
}

fn user(text: &str) -> Value {
    json!([{"role": "user", "content": text}])
}

async fn check_type(kind: &str, suffix: &str, model: &str) {
    let up = spawn(Knobs::default()).await.unwrap();
    let base = format!("{}{suffix}", up.url());
    let (g, _dir) = start_with(&manifests(kind, &base, model, "")).await;

    // Non-streamed text.
    let (status, _, body) = post(
        &g,
        "/v1/chat/completions",
        json!({"model": "chat", "messages": user("Hi"), "max_tokens": 200}),
    )
    .await;
    assert_eq!(status, 200, "{kind}: {body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["choices"][0]["message"]["content"], DEFAULT_REPLY,
        "{kind}"
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop", "{kind}");
    assert!(
        v["usage"]["prompt_tokens"].as_u64().unwrap() > 0,
        "{kind}: {body}"
    );

    // Streamed text, with usage.
    let (status, _, body) = post(
        &g,
        "/v1/chat/completions",
        json!({"model": "chat", "stream": true, "stream_options": {"include_usage": true}, "messages": user("Hi"), "max_tokens": 200}),
    )
    .await;
    assert_eq!(status, 200, "{kind}: {body}");
    assert_eq!(streamed_text(&body), DEFAULT_REPLY, "{kind}: {body}");
    let data = sse_data(&body);
    assert_eq!(data.last().unwrap(), "[DONE]", "{kind}");
    let usage: Value = serde_json::from_str(&data[data.len() - 2]).unwrap();
    assert!(
        usage["usage"]["completion_tokens"].as_u64().unwrap() > 0,
        "{kind}: {body}"
    );

    // A tool call, non-streamed and streamed.
    let (status, _, body) = post(&g, "/v1/chat/completions", json!({"model": "chat", "tools": tools(), "messages": user("Weather in Paris?"), "max_tokens": 200})).await;
    assert_eq!(status, 200, "{kind}: {body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["choices"][0]["finish_reason"], "tool_calls",
        "{kind}: {body}"
    );
    let call = &v["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_weather", "{kind}");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert!(args.get("city").is_some(), "{kind}: {args}");
    let (_, _, body) = post(&g, "/v1/chat/completions", json!({"model": "chat", "stream": true, "tools": tools(), "messages": user("Weather?"), "max_tokens": 200})).await;
    let (mut name, mut arguments) = (String::new(), String::new());
    for d in sse_data(&body).iter().filter(|d| *d != "[DONE]") {
        let v: Value = serde_json::from_str(d).unwrap();
        for tc in v["choices"][0]["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            name += tc["function"]["name"].as_str().unwrap_or_default();
            arguments += tc["function"]["arguments"].as_str().unwrap_or_default();
        }
    }
    assert_eq!(name, "get_weather", "{kind}: {body}");
    assert!(
        serde_json::from_str::<Value>(&arguments).is_ok(),
        "{kind}: {arguments}"
    );

    // Image input (inline data) reaches the provider.
    let image = json!([{"role": "user", "content": [{"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]);
    let (status, _, body) = post(
        &g,
        "/v1/chat/completions",
        json!({"model": "chat", "messages": image, "max_tokens": 200}),
    )
    .await;
    assert_eq!(status, 200, "{kind}: {body}");
    let sent = up.last_request().unwrap().body.to_string();
    assert!(
        sent.contains("iVBORw0KGgo="),
        "{kind}: the image was sent upstream: {sent}"
    );
    g.shutdown().await;

    // An upstream 503 becomes an OpenAI-style 503 (no fallback configured).
    let (g, _dir) = start_with(&manifests(
        kind,
        &base,
        model,
        "{name: x-mock-status, value: \"503\"}",
    ))
    .await;
    let (status, _, body) = post(
        &g,
        "/v1/chat/completions",
        json!({"model": "chat", "messages": user("Hi"), "max_tokens": 200}),
    )
    .await;
    assert_eq!(status, 503, "{kind}: {body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"]["type"],
        "api_error",
        "{kind}"
    );
    g.shutdown().await;

    // A stream cut after five upstream events (content has reached the client) ends with an
    // error event and no [DONE].
    let (g, _dir) = start_with(&manifests(
        kind,
        &base,
        model,
        "{name: x-mock-disconnect-after, value: \"5\"}",
    ))
    .await;
    let (status, _, body) = post(
        &g,
        "/v1/chat/completions",
        json!({"model": "chat", "stream": true, "messages": user("Hi"), "max_tokens": 200}),
    )
    .await;
    assert_eq!(status, 200, "{kind}: {body}");
    let data = sse_data(&body);
    let last: Value = serde_json::from_str(data.last().unwrap()).unwrap_or(Value::Null);
    assert!(
        last.get("error").is_some(),
        "{kind}: the stream ends with an error event: {body}"
    );
    assert!(!body.contains("[DONE]"), "{kind}: {body}");
    g.shutdown().await;
}

#[tokio::test]
async fn openai_compatible_round_trip() {
    let (kind, suffix, model) = TYPES[0];
    check_type(kind, suffix, model).await;
}

#[tokio::test]
async fn azure_openai_round_trip() {
    let (kind, suffix, model) = TYPES[1];
    check_type(kind, suffix, model).await;
}

#[tokio::test]
async fn anthropic_round_trip() {
    let (kind, suffix, model) = TYPES[2];
    check_type(kind, suffix, model).await;
}

#[tokio::test]
async fn gemini_round_trip() {
    let (kind, suffix, model) = TYPES[3];
    check_type(kind, suffix, model).await;
}

fn event_frames(events: &[(&str, Value)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, payload) in events {
        let message = Message::new(serde_json::to_vec(payload).unwrap())
            .add_header(Header::new(
                ":event-type",
                FrameValue::String(name.to_string().into()),
            ))
            .add_header(Header::new(
                ":message-type",
                FrameValue::String("event".into()),
            ))
            .add_header(Header::new(
                ":content-type",
                FrameValue::String("application/json".into()),
            ));
        write_message_to(&message, &mut out).unwrap();
    }
    out
}

#[tokio::test]
async fn bedrock_round_trip_signed_with_sigv4() {
    let up = MockServer::start().await;
    let model = "amazon.nova-lite-v1:0";
    Mock::given(method("POST"))
        .and(path("/model/amazon.nova-lite-v1%3A0/converse"))
        .and(header_regex("authorization", r"^AWS4-HMAC-SHA256 Credential=AKIDTEST/\d{8}/us-east-1/bedrock/aws4_request, SignedHeaders=.*host.*x-amz-date.*, Signature=[0-9a-f]{64}$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "output": {"message": {"role": "assistant", "content": [{"text": "Hello from Bedrock"}]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": 9, "outputTokens": 4, "totalTokens": 13},
            "metrics": {"latencyMs": 100}
        })))
        .mount(&up)
        .await;
    let stream = event_frames(&[
        ("messageStart", json!({"role": "assistant"})),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "Hello "}}),
        ),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "stream"}}),
        ),
        ("contentBlockStop", json!({"contentBlockIndex": 0})),
        ("messageStop", json!({"stopReason": "end_turn"})),
        (
            "metadata",
            json!({"usage": {"inputTokens": 9, "outputTokens": 2, "totalTokens": 11}, "metrics": {"latencyMs": 50}}),
        ),
    ]);
    Mock::given(method("POST"))
        .and(path("/model/amazon.nova-lite-v1%3A0/converse-stream"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "application/vnd.amazon.eventstream")
                .set_body_bytes(stream),
        )
        .mount(&up)
        .await;
    let yaml = format!(
        r#"
apiVersion: v1
kind: Secret
metadata: {{name: aws, namespace: default}}
stringData: {{AWS_ACCESS_KEY_ID: AKIDTEST, AWS_SECRET_ACCESS_KEY: secret}}
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMProvider
metadata: {{name: br, namespace: default}}
spec:
  type: bedrock
  baseURL: {}
  bedrock: {{region: us-east-1}}
  auth: {{aws: {{secretName: aws}}}}
  models: [{{name: "{model}", pricing: {{input: "1", output: "2"}}}}]
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMRoute
metadata: {{name: chat, namespace: default}}
spec:
  model: chat
  backends: [{{providerRef: {{name: br}}, model: "{model}"}}]
"#,
        up.uri()
    );
    let (g, _dir) = start_with(&yaml).await;
    let (status, _, body) = post(
        &g,
        "/v1/chat/completions",
        json!({"model": "chat", "messages": user("Hi")}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "Hello from Bedrock");
    assert_eq!(v["usage"]["total_tokens"], 13);

    // Image input travels as bytes; tools as toolSpec (the stub answers text either way).
    let image = json!([{"role": "user", "content": [{"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]);
    let (status, _, body) = post(
        &g,
        "/v1/chat/completions",
        json!({"model": "chat", "messages": image, "tools": tools()}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let sent: Value =
        serde_json::from_slice(&up.received_requests().await.unwrap().last().unwrap().body)
            .unwrap();
    assert_eq!(
        sent["messages"][0]["content"][1]["image"]["source"]["bytes"], "iVBORw0KGgo=",
        "{sent}"
    );
    assert_eq!(
        sent["toolConfig"]["tools"][0]["toolSpec"]["name"], "get_weather",
        "{sent}"
    );
    let (status, _, body) = post(
        &g,
        "/v1/chat/completions",
        json!({"model": "chat", "stream": true, "messages": user("Hi")}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(streamed_text(&body), "Hello stream");
    assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
    g.shutdown().await;
}

#[tokio::test]
async fn bedrock_tool_calls_and_throttling_through_the_gateway() {
    let up = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/model/m1/converse"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "output": {"message": {"role": "assistant", "content": [{"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Paris"}}}]}},
            "stopReason": "tool_use",
            "usage": {"inputTokens": 20, "outputTokens": 8, "totalTokens": 28}
        })))
        .mount(&up)
        .await;
    Mock::given(method("POST"))
        .and(path("/model/m2/converse"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header(
                    "x-amzn-errortype",
                    "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/",
                )
                .insert_header("retry-after", "3")
                .set_body_json(
                    json!({"message": "Too many requests, please wait before trying again."}),
                ),
        )
        .mount(&up)
        .await;
    let yaml = |model: &str| {
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: k, namespace: default}}\nstringData: {{key: bedrock-api-key}}\n---\napiVersion: llm.tollgate.dev/v1alpha1\nkind: LLMProvider\nmetadata: {{name: br, namespace: default}}\nspec: {{type: bedrock, baseURL: \"{}\", bedrock: {{region: eu-west-1}}, auth: {{secretRefs: [{{name: k, key: key}}]}}, models: [{{name: {model}, pricing: {{input: \"1\", output: \"2\"}}}}]}}\n---\napiVersion: llm.tollgate.dev/v1alpha1\nkind: LLMRoute\nmetadata: {{name: chat, namespace: default}}\nspec: {{model: chat, backends: [{{providerRef: {{name: br}}, model: {model}}}]}}\n",
            up.uri()
        )
    };
    let (g, _dir) = start_with(&yaml("m1")).await;
    let (status, _, body) = post(
        &g,
        "/v1/chat/completions",
        json!({"model": "chat", "tools": tools(), "messages": user("Weather in Paris?")}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    let call = &v["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["id"], "tooluse_1");
    assert_eq!(
        serde_json::from_str::<Value>(call["function"]["arguments"].as_str().unwrap()).unwrap(),
        json!({"city": "Paris"})
    );
    let received = up.received_requests().await.unwrap();
    assert_eq!(
        received[0].headers["authorization"], "Bearer bedrock-api-key",
        "Bedrock API keys are bearer tokens"
    );
    g.shutdown().await;

    let (g, _dir) = start_with(&yaml("m2")).await;
    let (status, headers, body) = post(
        &g,
        "/v1/chat/completions",
        json!({"model": "chat", "messages": user("Hi")}),
    )
    .await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(headers["retry-after"], "3");
    assert!(body.contains("Too many requests"), "{body}");
    g.shutdown().await;
}
