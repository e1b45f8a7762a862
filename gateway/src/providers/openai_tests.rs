use http::{HeaderMap, StatusCode};
use serde_json::json;
use tollgate_crds::config::{AzureConfig, ProviderConfig, ProviderType};

use super::*;
use crate::providers::{
    FailureKind, ProviderAdapter, Secret, SecretString, StreamTranslator, Target,
};

fn provider(kind: ProviderType) -> ProviderConfig {
    ProviderConfig {
        id: "ns/p".into(),
        provider_type: kind,
        base_url: Some("https://api.example.com/v1".into()),
        credentials: vec![],
        azure: (kind == ProviderType::AzureOpenAI).then(|| AzureConfig {
            api_version: "2024-10-21".into(),
            deployments: [("gpt-4o".to_string(), "prod-4o".to_string())].into(),
        }),
        bedrock_region: None,
        models: vec![],
        limits: None,
        headers: vec![tollgate_crds::config::HeaderConfig {
            name: "x-extra".into(),
            value: "1".into(),
        }],
    }
}

fn target<'a>(p: &'a ProviderConfig, secret: &'a Secret) -> Target<'a> {
    Target {
        provider: p,
        model: "gpt-4o",
        secret: Some(secret),
        request_id: "r1",
        created: 1,
        answers_checked: false,
    }
}

#[test]
fn requests_pass_through_with_the_model_replaced() {
    let p = provider(ProviderType::OpenAI);
    let key = Secret::ApiKey(SecretString::new("sk-test"));
    let req: ChatRequest = serde_json::from_value(json!({
        "model": "chat", "messages": [{"role": "user", "content": "hi"}],
        "stream": true, "logit_bias": {"1": 2}, "response_format": {"type": "json_object"},
    }))
    .unwrap();
    let up = OpenAI.chat_request(&target(&p, &key), &req).unwrap();
    assert_eq!(up.url, "https://api.example.com/v1/chat/completions");
    assert_eq!(up.headers["authorization"], "Bearer sk-test");
    assert!(
        up.headers["authorization"].is_sensitive(),
        "marked sensitive so it never prints"
    );
    assert_eq!(up.headers["x-extra"], "1");
    let body: serde_json::Value = serde_json::from_slice(&up.body).unwrap();
    assert_eq!(body["model"], "gpt-4o");
    assert_eq!(
        body["logit_bias"],
        json!({"1": 2}),
        "unknown fields pass through"
    );
    assert_eq!(
        body["stream_options"]["include_usage"], true,
        "usage is always metered"
    );
}

#[test]
fn azure_uses_deployments_api_version_and_api_key() {
    let p = provider(ProviderType::AzureOpenAI);
    let key = Secret::ApiKey(SecretString::new("az-key"));
    let req: ChatRequest = serde_json::from_value(
        json!({"model": "chat", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .unwrap();
    let up = OpenAI.chat_request(&target(&p, &key), &req).unwrap();
    assert_eq!(
        up.url,
        "https://api.example.com/v1/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21"
    );
    assert_eq!(up.headers["api-key"], "az-key");
    assert!(!up.headers.contains_key("authorization"));
}

#[test]
fn errors_are_classified_from_code_and_status() {
    let body = br#"{"error":{"message":"This model's maximum context length is 128000 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#;
    let f = OpenAI.error(StatusCode::BAD_REQUEST, &HeaderMap::new(), body);
    assert_eq!(f.kind, FailureKind::ContextWindowExceeded);
    assert!(f.message.contains("maximum context length"));

    let mut headers = HeaderMap::new();
    headers.insert("retry-after", "12".parse().unwrap());
    let f = OpenAI.error(StatusCode::TOO_MANY_REQUESTS, &headers, br#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#);
    assert_eq!(
        (f.kind, f.status, f.retry_after.map(|d| d.as_secs())),
        (FailureKind::RateLimited, Some(429), Some(12))
    );

    let f = OpenAI.error(
        StatusCode::BAD_REQUEST,
        &HeaderMap::new(),
        br#"{"error":{"message":"bad","type":"invalid_request_error","code":null}}"#,
    );
    assert_eq!(f.kind, FailureKind::BadRequest);
    assert!(!f.kind.falls_back());
    assert_eq!(
        OpenAI
            .error(
                StatusCode::BAD_GATEWAY,
                &HeaderMap::new(),
                b"<html>bad gateway</html>"
            )
            .kind,
        FailureKind::Server
    );
}

fn fixture() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/openai/stream_tool_call.sse"
    ))
    .unwrap()
}

#[test]
fn streams_decode_identically_at_every_split() {
    let bytes = fixture();
    let mut whole = OpenAIStream::default();
    let mut expected = whole.feed(&bytes).unwrap();
    expected.extend(whole.finish().unwrap());
    assert_eq!(expected.len(), 5);
    let tool = &expected[0].choices[0].delta.tool_calls.as_ref().unwrap()[0];
    assert_eq!(tool.id.as_deref(), Some("call_x1"));
    assert_eq!(
        expected[3].choices[0].finish_reason.as_deref(),
        Some("tool_calls")
    );
    assert_eq!(expected[4].usage.as_ref().unwrap().total_tokens, 77);
    for split in [1, 2, 3, 7, 64, 500] {
        let mut s = OpenAIStream::default();
        let mut got = Vec::new();
        for piece in bytes.chunks(split) {
            got.extend(s.feed(piece).unwrap());
        }
        got.extend(s.finish().unwrap());
        assert_eq!(got, expected, "split {split}");
    }
}

#[test]
fn a_stream_cut_before_done_is_a_failure() {
    let bytes = fixture();
    let cut = bytes.len() - "data: [DONE]\n\n".len();
    let mut s = OpenAIStream::default();
    s.feed(&bytes[..cut]).unwrap();
    let f = s.finish().unwrap_err();
    assert_eq!(f.kind, FailureKind::Protocol);
}

#[test]
fn an_error_event_mid_stream_is_a_failure() {
    let mut s = OpenAIStream::default();
    let f = s.feed(b"data: {\"error\":{\"message\":\"The server had an error\",\"type\":\"server_error\"}}\n\n").unwrap_err();
    assert_eq!(f.kind, FailureKind::Server);
    assert_eq!(f.message, "The server had an error");
}

#[test]
fn answers_pass_through_unchanged_and_are_metered() {
    let p = provider(ProviderType::OpenAI);
    let key = Secret::ApiKey(SecretString::new("sk-test"));
    let body = br#"{"id":"c1","object":"chat.completion","created":1,"model":"gpt-4o-2024","choices":[{"index":0,"message":{"role":"assistant","content":"hi","annotations":[]},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4},"system_fingerprint":"fp_x","service_tier":"default"}"#;
    let answer = OpenAI
        .chat_answer(&target(&p, &key), bytes::Bytes::from_static(body))
        .unwrap();
    assert_eq!(&answer.body[..], &body[..], "not re-encoded");
    assert_eq!(answer.model, "gpt-4o-2024");
    assert_eq!(answer.usage.map(|u| u.total_tokens), Some(4));
    let not_a_completion = OpenAI
        .chat_answer(
            &target(&p, &key),
            bytes::Bytes::from_static(br#"{"model":"m"}"#),
        )
        .unwrap_err();
    assert_eq!(not_a_completion.kind, FailureKind::Protocol);
}

#[test]
fn every_field_is_sent_as_the_client_wrote_it_with_model_and_usage_set() {
    let p = provider(ProviderType::OpenAI);
    let key = Secret::ApiKey(SecretString::new("sk-test"));
    let client = json!({
        "model": "chat", "messages": [{"role": "user", "content": "hi", "name": "u"}],
        "stream": true, "stream_options": {"continuous_usage_stats": true},
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "tool_choice": "auto", "response_format": {"type": "json_object"}, "n": 2,
        "stop": ["x"], "max_tokens": 5, "max_completion_tokens": 6, "temperature": 0.5,
        "top_p": 0.9, "seed": 7, "user": "me", "logprobs": true, "metadata": {"k": "v"}
    });
    let req: ChatRequest = serde_json::from_value(client.clone()).unwrap();
    let up = OpenAI.chat_request(&target(&p, &key), &req).unwrap();
    let sent: serde_json::Value = serde_json::from_slice(&up.body).unwrap();
    let mut expected = client;
    expected["model"] = json!("gpt-4o");
    expected["stream_options"]["include_usage"] = json!(true);
    assert_eq!(sent, expected);
}
