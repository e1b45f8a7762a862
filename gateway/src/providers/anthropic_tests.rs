use std::time::Duration;

use http::{HeaderMap, HeaderValue, StatusCode};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use tollgate_crds::config::{HeaderConfig, ProviderConfig, ProviderType};

use super::*;
use crate::providers::{FailureKind, ProviderAdapter, Secret, SecretString};

pub(super) fn provider(headers: Vec<HeaderConfig>) -> ProviderConfig {
    ProviderConfig {
        id: "ns/claude".into(),
        provider_type: ProviderType::Anthropic,
        base_url: Some("https://api.anthropic.com".into()),
        credentials: vec![],
        azure: None,
        bedrock_region: None,
        models: vec![],
        limits: None,
        headers,
    }
}

pub(super) fn key() -> Secret {
    Secret::ApiKey(SecretString::new("sk-ant-test"))
}

pub(super) fn target<'a>(p: &'a ProviderConfig, secret: &'a Secret) -> Target<'a> {
    Target {
        provider: p,
        model: "claude-sonnet-4-5",
        secret: Some(secret),
        request_id: "req-1",
        created: 1_700_000_000,
        answers_checked: false,
    }
}

fn request(body: Value) -> ChatRequest {
    serde_json::from_value(body).unwrap()
}

/// The Anthropic body for an OpenAI request body.
fn translate(body: Value) -> Result<Value, RequestError> {
    let p = provider(vec![]);
    let k = key();
    let up = Anthropic.chat_request(&target(&p, &k), &request(body))?;
    Ok(serde_json::from_slice(&up.body).unwrap())
}

pub(super) fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/anthropic/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

// === requests ===

#[test]
fn the_request_goes_to_v1_messages_with_key_version_and_extra_headers() {
    let p = provider(vec![
        HeaderConfig {
            name: "anthropic-beta".into(),
            value: "prompt-caching-2024-07-31".into(),
        },
        HeaderConfig {
            name: "anthropic-version".into(),
            value: "2099-01-01".into(),
        },
    ]);
    let k = key();
    let req = request(json!({"model": "chat", "messages": [{"role": "user", "content": "hi"}]}));
    let up = Anthropic.chat_request(&target(&p, &k), &req).unwrap();
    assert_eq!(up.method, http::Method::POST);
    assert_eq!(up.url, "https://api.anthropic.com/v1/messages");
    assert_eq!(up.headers["x-api-key"], "sk-ant-test");
    assert!(up.headers["x-api-key"].is_sensitive());
    assert_eq!(up.headers["content-type"], "application/json");
    assert_eq!(up.headers["anthropic-beta"], "prompt-caching-2024-07-31");
    assert_eq!(
        up.headers["anthropic-version"], "2099-01-01",
        "a configured version wins"
    );

    let plain = provider(vec![]);
    let up = Anthropic.chat_request(&target(&plain, &k), &req).unwrap();
    assert_eq!(up.headers["anthropic-version"], API_VERSION);
    assert!(
        !format!("{:?}", up.headers).contains("sk-ant-test"),
        "the key never prints"
    );
}

#[test]
fn requests_translate() {
    let cases = [
        (
            "system and developer are hoisted; turns of one role merge; empty text is left out",
            json!({"model": "chat", "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
                {"role": "user", "content": [{"type": "text", "text": "there"}, {"type": "text", "text": ""}]},
                {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
                {"role": "assistant", "content": "Bonjour"},
                {"role": "assistant", "content": ""},
                {"role": "user", "content": "Ça va?", "name": "ann"},
            ]}),
            json!({"model": "claude-sonnet-4-5", "max_tokens": 4096,
            "system": "Be brief.\n\nAnswer in French.",
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "there"}]},
                {"role": "assistant", "content": [{"type": "text", "text": "Bonjour"}]},
                {"role": "user", "content": [{"type": "text", "text": "Ça va?"}]},
            ]}),
        ),
        (
            "images: a data URL is base64, an https URL is a url source",
            json!({"model": "chat", "messages": [{"role": "user", "content": [
                {"type": "text", "text": "Compare"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "high"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
            ]}]}),
            json!({"model": "claude-sonnet-4-5", "max_tokens": 4096, "messages": [{"role": "user", "content": [
                {"type": "text", "text": "Compare"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
            ]}]}),
        ),
        (
            "tools, tool_choice required → any, parallel_tool_calls false",
            json!({"model": "chat", "messages": [{"role": "user", "content": "Weather?"}],
                "tools": [
                    {"type": "function", "function": {"name": "get_weather", "description": "Weather now",
                        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}, "strict": true}},
                    {"type": "function", "function": {"name": "now"}},
                ],
                "tool_choice": "required", "parallel_tool_calls": false}),
            json!({"model": "claude-sonnet-4-5", "max_tokens": 4096,
                "messages": [{"role": "user", "content": [{"type": "text", "text": "Weather?"}]}],
                "tools": [
                    {"name": "get_weather", "description": "Weather now",
                        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
                    {"name": "now", "input_schema": {"type": "object", "properties": {}}},
                ],
                "tool_choice": {"type": "any", "disable_parallel_tool_use": true}}),
        ),
        (
            "tool_choice auto, none and a named function",
            json!({"model": "chat", "messages": [{"role": "user", "content": "x"}],
                "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
                "tool_choice": {"type": "function", "function": {"name": "f"}}}),
            json!({"model": "claude-sonnet-4-5", "max_tokens": 4096,
                "messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}],
                "tools": [{"name": "f", "input_schema": {"type": "object"}}],
                "tool_choice": {"type": "tool", "name": "f"}}),
        ),
        (
            "assistant tool_calls → tool_use; tool results and the next user text share one turn",
            json!({"model": "chat", "messages": [
                {"role": "user", "content": "Weather in SF and Paris?"},
                {"role": "assistant", "content": "Checking.", "tool_calls": [
                    {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"SF\"}"}},
                    {"id": "toolu_2", "type": "function", "function": {"name": "now", "arguments": ""}},
                ]},
                {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
                {"role": "tool", "tool_call_id": "toolu_2", "content": [{"type": "text", "text": "noon"}]},
                {"role": "user", "content": "Thanks"},
            ]}),
            json!({"model": "claude-sonnet-4-5", "max_tokens": 4096, "messages": [
                {"role": "user", "content": [{"type": "text", "text": "Weather in SF and Paris?"}]},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "SF"}},
                    {"type": "tool_use", "id": "toolu_2", "name": "now", "input": {}},
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "18C"}]},
                    {"type": "tool_result", "tool_use_id": "toolu_2", "content": [{"type": "text", "text": "noon"}]},
                    {"type": "text", "text": "Thanks"},
                ]},
            ]}),
        ),
        (
            "stop, max_completion_tokens over max_tokens, temperature, top_p, user, stream; harmless fields dropped",
            json!({"model": "chat", "messages": [{"role": "user", "content": "x"}],
                "stop": "END", "max_tokens": 100, "max_completion_tokens": 200, "temperature": 0.2, "top_p": 0.9,
                "user": "u-42", "stream": true, "stream_options": {"include_usage": true}, "seed": 7, "n": 1,
                "store": false, "presence_penalty": 0, "logprobs": false, "modalities": ["text"],
                "top_k": 40, "thinking": {"type": "enabled", "budget_tokens": 1024}}),
            json!({"model": "claude-sonnet-4-5", "max_tokens": 200,
                "messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}],
                "stop_sequences": ["END"], "temperature": 0.2, "top_p": 0.9, "top_k": 40,
                "thinking": {"type": "enabled", "budget_tokens": 1024},
                "metadata": {"user_id": "u-42"}, "stream": true}),
        ),
        (
            "the legacy max_tokens and several stop sequences",
            json!({"model": "chat", "messages": [{"role": "user", "content": "x"}], "max_tokens": 50, "stop": ["a", "b"]}),
            json!({"model": "claude-sonnet-4-5", "max_tokens": 50, "stop_sequences": ["a", "b"],
                "messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}]}),
        ),
        (
            "response_format json_object adds a system instruction",
            json!({"model": "chat", "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "x"}],
                "response_format": {"type": "json_object"}}),
            json!({"model": "claude-sonnet-4-5", "max_tokens": 4096, "system": format!("S\n\n{JSON_OBJECT_INSTRUCTION}"),
                "messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}]}),
        ),
        (
            "response_format json_schema forces an answer tool",
            json!({"model": "chat", "messages": [{"role": "user", "content": "x"}],
                "response_format": {"type": "json_schema", "json_schema": {"name": "weather_report", "strict": true,
                    "schema": {"type": "object", "properties": {"city": {"type": "string"}}}}}}),
            json!({"model": "claude-sonnet-4-5", "max_tokens": 4096,
                "messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}],
                "tools": [{"name": "tollgate_json__weather_report", "description": JSON_TOOL_DESCRIPTION,
                    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
                "tool_choice": {"type": "tool", "name": "tollgate_json__weather_report"}}),
        ),
        (
            "json_schema next to the client's tools: any tool, the answer tool included",
            json!({"model": "chat", "messages": [{"role": "user", "content": "x"}],
                "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "auto",
                "response_format": {"type": "json_schema", "json_schema": {"name": "r", "description": "The report",
                    "schema": {"type": "object"}}}}),
            json!({"model": "claude-sonnet-4-5", "max_tokens": 4096,
                "messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}],
                "tools": [
                    {"name": "f", "input_schema": {"type": "object", "properties": {}}},
                    {"name": "tollgate_json__r", "description": "The report", "input_schema": {"type": "object"}},
                ],
                "tool_choice": {"type": "any"}}),
        ),
        (
            "tool_choice none is kept; without tools tool_choice is left out",
            json!({"model": "chat", "messages": [{"role": "user", "content": "x"}], "tool_choice": "none"}),
            json!({"model": "claude-sonnet-4-5", "max_tokens": 4096,
                "messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}]}),
        ),
    ];
    for (name, openai, anthropic) in cases {
        assert_eq!(translate(openai).unwrap(), anthropic, "{name}");
    }
    let none = translate(
        json!({"model": "chat", "messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "none"}),
    )
    .unwrap();
    assert_eq!(none["tool_choice"], json!({"type": "none"}));
}

#[test]
fn long_schema_names_are_cut_to_the_tool_name_limit() {
    let name = "a".repeat(64);
    let body = translate(json!({"model": "chat", "messages": [{"role": "user", "content": "x"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": name, "schema": {"type": "object"}}}}))
    .unwrap();
    let tool = body["tools"][0]["name"].as_str().unwrap();
    assert_eq!(tool.len(), 64);
    assert!(tool.starts_with(JSON_TOOL_PREFIX));
    assert_eq!(body["tool_choice"]["name"], tool);
}

#[test]
fn untranslatable_requests_are_refused_naming_the_param() {
    let user = json!({"role": "user", "content": "x"});
    let cases = [
        (json!({"messages": [user], "n": 2}), "n"),
        (
            json!({"messages": [user, {"role": "assistant", "tool_calls": [
                {"id": "t", "type": "function", "function": {"name": "f", "arguments": "{not json"}}]}]}),
            "messages[1].tool_calls[0].function.arguments",
        ),
        (
            json!({"messages": [{"role": "assistant", "tool_calls": [
                {"id": "t", "type": "function", "function": {"name": "f", "arguments": "[1]"}}]}]}),
            "messages[0].tool_calls[0].function.arguments",
        ),
        (
            json!({"messages": [{"role": "tool", "content": "r"}]}),
            "messages[0].tool_call_id",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "text", "text": "x"},
                {"type": "input_audio", "input_audio": {"data": "AAA", "format": "wav"}}]}]}),
            "messages[0].content[1]",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}]}]}),
            "messages[0].content[0].image_url.url",
        ),
        (
            json!({"messages": [{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]}),
            "messages[0].content[0]",
        ),
        (
            json!({"messages": [user], "logit_bias": {"50256": -100}}),
            "logit_bias",
        ),
        (
            json!({"messages": [user], "frequency_penalty": 0.5}),
            "frequency_penalty",
        ),
        (json!({"messages": [user], "logprobs": true}), "logprobs"),
        (
            json!({"messages": [user], "reasoning_effort": "high"}),
            "reasoning_effort",
        ),
        (
            json!({"messages": [user], "parallel_tool_calls": "no"}),
            "parallel_tool_calls",
        ),
        (
            json!({"messages": [user], "tool_choice": "sometimes"}),
            "tool_choice",
        ),
        (
            json!({"messages": [user], "tools": [{"type": "custom", "function": {"name": "f"}}]}),
            "tools[0].type",
        ),
        (
            json!({"messages": [user], "tools": [{"type": "function", "function": {"name": "tollgate_json__x"}}]}),
            "tools[0].function.name",
        ),
        (
            json!({"messages": [user], "response_format": {"type": "json_schema", "json_schema": {"name": "r"}}}),
            "response_format.json_schema.schema",
        ),
        (
            json!({"messages": [user], "response_format": {"type": "xml"}}),
            "response_format.type",
        ),
    ];
    for (mut body, param) in cases {
        body["model"] = json!("chat");
        let err = translate(body.clone()).expect_err(param);
        assert_eq!(err.param.as_deref(), Some(param), "{body}: {}", err.message);
    }
}

// === responses ===

fn respond(body: &[u8]) -> ChatResponse {
    let p = provider(vec![]);
    let k = key();
    Anthropic.chat_response(&target(&p, &k), body).unwrap()
}

#[test]
fn a_text_answer_translates_with_cache_usage() {
    let r = respond(&fixture("response_text.json"));
    assert_eq!(r.id, "msg_01XFDUDYJgAACzvnptvVoYEL");
    assert_eq!(r.object, "chat.completion");
    assert_eq!(r.created, 1_700_000_000);
    assert_eq!(r.model, "claude-sonnet-4-5-20250929");
    let choice = &r.choices[0];
    assert_eq!(choice.message.role, "assistant");
    assert_eq!(
        choice.message.content.as_deref(),
        Some("Hi! My name is Claude.")
    );
    assert_eq!(choice.message.tool_calls, None);
    assert_eq!(choice.finish_reason.as_deref(), Some("stop"));
    let usage = r.usage.unwrap();
    assert_eq!(
        (
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.total_tokens
        ),
        (2095 + 300 + 1800, 503, 2095 + 300 + 1800 + 503)
    );
    assert_eq!(usage.cached(), 1800);
    assert_eq!(
        usage.reasoning(),
        0,
        "Anthropic reports no separate thinking count"
    );
}

#[test]
fn tool_use_and_thinking_translate() {
    let r = respond(&fixture("response_tool_use.json"));
    let m = &r.choices[0].message;
    assert_eq!(
        m.content.as_deref(),
        Some("I'll check the current weather in San Francisco for you.")
    );
    assert_eq!(
        m.rest["reasoning_content"],
        "The user wants the weather in San Francisco."
    );
    let calls = m.tool_calls.as_ref().unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].id, "toolu_01A09q90qw90lq917835lq9");
    assert_eq!(calls[0].kind, "function");
    assert_eq!(calls[0].function.name, "get_weather");
    assert_eq!(
        calls[0].function.arguments,
        r#"{"location":"San Francisco, CA","unit":"celsius"}"#
    );
    assert_eq!(r.choices[0].finish_reason.as_deref(), Some("tool_calls"));
    let usage = r.usage.unwrap();
    assert_eq!(
        (usage.prompt_tokens, usage.cached()),
        (384, 0),
        "null cache counts are 0"
    );
}

#[test]
fn only_tool_calls_leave_content_null() {
    let r = respond(
        br#"{"id": "msg_1", "model": "m", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}],
            "stop_reason": "tool_use", "usage": {"input_tokens": 1, "output_tokens": 1}}"#,
    );
    assert_eq!(r.choices[0].message.content, None);
    assert_eq!(
        r.choices[0].message.tool_calls.as_ref().unwrap()[0]
            .function
            .arguments,
        "{}"
    );
}

#[test]
fn a_json_schema_answer_becomes_content_with_stop() {
    let r = respond(&fixture("response_json_schema.json"));
    let m = &r.choices[0].message;
    assert_eq!(m.tool_calls, None);
    let content: Value = serde_json::from_str(m.content.as_deref().unwrap()).unwrap();
    assert_eq!(content, json!({"city": "Paris", "celsius": 21}));
    assert_eq!(r.choices[0].finish_reason.as_deref(), Some("stop"));
}

#[test]
fn every_stop_reason_maps() {
    for (stop, finish) in [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("a_reason_added_later", "stop"),
    ] {
        let body = json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
            "content": [{"type": "text", "text": "x"}], "stop_reason": stop,
            "usage": {"input_tokens": 1, "output_tokens": 1}});
        let r = respond(body.to_string().as_bytes());
        assert_eq!(
            r.choices[0].finish_reason.as_deref(),
            Some(finish),
            "{stop}"
        );
    }
}

#[test]
fn an_unreadable_answer_is_a_protocol_failure() {
    let p = provider(vec![]);
    let k = key();
    let err = Anthropic
        .chat_response(&target(&p, &k), b"<html>bad gateway</html>")
        .unwrap_err();
    assert_eq!(err.kind, FailureKind::Protocol);
    assert!(err.message.contains("bad gateway"));
}

// === errors ===

fn error_body(kind: &str, message: &str) -> Vec<u8> {
    json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"})
        .to_string()
        .into_bytes()
}

#[test]
fn every_error_type_is_classified() {
    let cases = [
        (
            529,
            "overloaded_error",
            "Overloaded",
            FailureKind::Overloaded,
        ),
        (
            429,
            "rate_limit_error",
            "Number of request tokens has exceeded your per-minute rate limit",
            FailureKind::RateLimited,
        ),
        (
            413,
            "request_too_large",
            "Request exceeds the maximum allowed number of bytes.",
            FailureKind::ContentTooLarge,
        ),
        (
            400,
            "invalid_request_error",
            "prompt is too long: 207791 tokens > 200000 maximum",
            FailureKind::ContextWindowExceeded,
        ),
        (
            400,
            "invalid_request_error",
            "input length and `max_tokens` exceed context limit: 178959 + 64000 > 200000, decrease input length or `max_tokens` and try again",
            FailureKind::ContextWindowExceeded,
        ),
        (
            400,
            "invalid_request_error",
            "messages: roles must alternate between \"user\" and \"assistant\"",
            FailureKind::BadRequest,
        ),
        (
            400,
            "invalid_request_error",
            "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits.",
            FailureKind::PermissionDenied,
        ),
        (
            401,
            "authentication_error",
            "invalid x-api-key",
            FailureKind::Authentication,
        ),
        (
            403,
            "permission_error",
            "Your API key does not have permission to use the specified resource.",
            FailureKind::PermissionDenied,
        ),
        (
            402,
            "billing_error",
            "billing issue",
            FailureKind::PermissionDenied,
        ),
        (
            404,
            "not_found_error",
            "model: claude-nope",
            FailureKind::NotFound,
        ),
        (
            500,
            "api_error",
            "Internal server error",
            FailureKind::Server,
        ),
        (
            504,
            "timeout_error",
            "Request timed out",
            FailureKind::Timeout,
        ),
        (503, "an_error_added_later", "?", FailureKind::Overloaded),
    ];
    for (status, kind, message, expected) in cases {
        let status = StatusCode::from_u16(status).unwrap();
        let f = Anthropic.error(status, &HeaderMap::new(), &error_body(kind, message));
        assert_eq!(f.kind, expected, "{kind}: {message}");
        assert_eq!(f.status, Some(status.as_u16()));
        assert!(f.message.contains(message), "{}", f.message);
        assert_eq!(f.retry_after, None);
    }
}

#[test]
fn retry_after_is_honoured() {
    let mut headers = HeaderMap::new();
    headers.insert("retry-after", HeaderValue::from_static("17"));
    let f = Anthropic.error(
        StatusCode::TOO_MANY_REQUESTS,
        &headers,
        &error_body("rate_limit_error", "slow down"),
    );
    assert_eq!(f.kind, FailureKind::RateLimited);
    assert_eq!(f.retry_after, Some(Duration::from_secs(17)));
}

#[test]
fn a_body_that_is_not_anthropic_json_falls_back_to_the_status() {
    let f = Anthropic.error(
        StatusCode::PAYLOAD_TOO_LARGE,
        &HeaderMap::new(),
        b"<html><body>413 Request Entity Too Large</body></html>",
    );
    assert_eq!(f.kind, FailureKind::ContentTooLarge);
    assert!(f.message.contains("413 Request Entity Too Large"));
}
