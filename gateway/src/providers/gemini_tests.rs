use std::time::Duration;

use http::{HeaderMap, HeaderValue, StatusCode};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use tollgate_crds::config::{HeaderConfig, ProviderConfig, ProviderType};

use super::*;
use crate::providers::SecretString;

const STREAM_TEXT: &[u8] = include_bytes!("../../tests/fixtures/gemini/stream_text.sse");
const STREAM_TOOLS: &[u8] = include_bytes!("../../tests/fixtures/gemini/stream_tools.sse");
const RESPONSE_TEXT: &[u8] = include_bytes!("../../tests/fixtures/gemini/response_text.json");
const RESPONSE_TOOLS: &[u8] = include_bytes!("../../tests/fixtures/gemini/response_tools.json");
const RESPONSE_BLOCKED: &[u8] = include_bytes!("../../tests/fixtures/gemini/response_blocked.json");
const ERROR_RATE_LIMITED: &[u8] =
    include_bytes!("../../tests/fixtures/gemini/error_rate_limited.json");
const ERROR_CONTEXT: &[u8] =
    include_bytes!("../../tests/fixtures/gemini/error_context_window.json");
const ERROR_API_KEY: &[u8] = include_bytes!("../../tests/fixtures/gemini/error_api_key.json");
const EMBEDDINGS: &[u8] = include_bytes!("../../tests/fixtures/gemini/embeddings.json");

fn provider() -> ProviderConfig {
    ProviderConfig {
        id: "ns/gemini".into(),
        provider_type: ProviderType::Gemini,
        base_url: Some("https://generativelanguage.googleapis.com/".into()),
        credentials: Vec::new(),
        azure: None,
        bedrock_region: None,
        models: Vec::new(),
        limits: None,
        headers: vec![HeaderConfig {
            name: "x-team".into(),
            value: "search".into(),
        }],
    }
}

fn with_target<T>(f: impl FnOnce(&Target<'_>) -> T) -> T {
    let provider = provider();
    let secret = Secret::ApiKey(SecretString::new("AIza-test-key"));
    let target = Target {
        provider: &provider,
        model: "gemini-2.5-flash",
        secret: Some(&secret),
        request_id: "req1",
        created: 1_700_000_000,
        answers_checked: false,
    };
    f(&target)
}

fn request(body: Value) -> ChatRequest {
    serde_json::from_value(body).unwrap()
}

fn build(body: Value) -> Result<UpstreamRequest, RequestError> {
    with_target(|t| Gemini.chat_request(t, &request(body)))
}

fn body_of(req: Value) -> Value {
    serde_json::from_slice(&build(req).unwrap().body).unwrap()
}

fn chat(extra: Value) -> Value {
    let mut body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    body
}

fn refused(body: Value) -> RequestError {
    build(body).unwrap_err()
}

// === requests ===

#[test]
fn reasoning_effort_becomes_a_thinking_budget() {
    for (effort, budget) in [
        ("none", 0),
        ("low", 1024),
        ("medium", 8192),
        ("high", 24576),
    ] {
        let body = body_of(chat(json!({"reasoning_effort": effort})));
        assert_eq!(
            body["generationConfig"]["thinkingConfig"],
            json!({"thinkingBudget": budget})
        );
    }
    let err = refused(chat(json!({"reasoning_effort": "extreme"})));
    assert_eq!(err.param.as_deref(), Some("reasoning_effort"));
}

#[test]
fn url_headers_and_stream_url() {
    let req = build(chat(json!({}))).unwrap();
    assert_eq!(
        req.url,
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
    );
    assert_eq!(req.method, http::Method::POST);
    assert_eq!(req.headers["x-goog-api-key"], "AIza-test-key");
    assert!(req.headers["x-goog-api-key"].is_sensitive());
    assert_eq!(req.headers["x-team"], "search");
    assert_eq!(req.headers["content-type"], "application/json");
    let req = build(chat(json!({"stream": true}))).unwrap();
    assert_eq!(
        req.url,
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    );
    // The gateway's own stream fields never reach Gemini.
    let req = build(chat(
        json!({"stream": true, "stream_options": {"include_usage": true}}),
    ))
    .unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&req.body).unwrap(),
        json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]})
    );
}

#[test]
fn system_and_developer_become_system_instruction_and_same_roles_merge() {
    let body = body_of(json!({"model": "m", "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
        {"role": "user", "content": "Hello"},
        {"role": "user", "content": [{"type": "text", "text": "Anyone there?"}]},
        {"role": "assistant", "content": "Bonjour."},
        {"role": "user", "content": "Merci"},
    ]}));
    assert_eq!(
        body,
        json!({
            "systemInstruction": {"parts": [{"text": "Be brief."}, {"text": "Answer in French."}]},
            "contents": [
                {"role": "user", "parts": [{"text": "Hello"}, {"text": "Anyone there?"}]},
                {"role": "model", "parts": [{"text": "Bonjour."}]},
                {"role": "user", "parts": [{"text": "Merci"}]},
            ],
        })
    );
}

#[test]
fn images_are_inline_data_and_remote_urls_are_refused() {
    let body = body_of(
        json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "high"}},
        ]}]}),
    );
    assert_eq!(
        body["contents"][0]["parts"],
        json!([
            {"text": "What is this?"},
            {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
        ])
    );
    let err = refused(
        json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        ]}]}),
    );
    assert_eq!(err.param.as_deref(), Some("messages[0]"));
    let err = refused(
        json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "input_audio", "input_audio": {"data": "AAA", "format": "wav"}},
        ]}]}),
    );
    assert!(err.message.contains("input_audio"), "{}", err.message);
    let err = refused(
        json!({"model": "m", "messages": [{"role": "system", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}},
        ]}]}),
    );
    assert_eq!(err.param.as_deref(), Some("messages[0]"));
}

fn weather_tool() -> Value {
    json!({"type": "function", "function": {"name": "get_weather", "description": "Weather of a city", "strict": true,
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": false}}})
}

#[test]
fn tools_and_each_tool_choice() {
    let body = body_of(chat(
        json!({"tools": [weather_tool(), {"type": "function", "function": {"name": "now"}}]}),
    ));
    assert_eq!(
        body["tools"],
        json!([{"functionDeclarations": [
            {"name": "get_weather", "description": "Weather of a city",
             "parametersJsonSchema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": false}},
            {"name": "now"},
        ]}])
    );
    assert_eq!(body.get("toolConfig"), None);
    let cases = [
        (json!("auto"), json!({"mode": "AUTO"})),
        (json!("none"), json!({"mode": "NONE"})),
        (json!("required"), json!({"mode": "ANY"})),
        (
            json!({"type": "function", "function": {"name": "get_weather"}}),
            json!({"mode": "ANY", "allowedFunctionNames": ["get_weather"]}),
        ),
    ];
    for (choice, expected) in cases {
        let body = body_of(chat(
            json!({"tools": [weather_tool()], "tool_choice": choice}),
        ));
        assert_eq!(
            body["toolConfig"],
            json!({"functionCallingConfig": expected}),
            "{choice}"
        );
    }
    assert_eq!(
        refused(chat(
            json!({"tools": [weather_tool()], "tool_choice": "sometimes"})
        ))
        .param
        .as_deref(),
        Some("tool_choice")
    );
    assert_eq!(
        refused(chat(json!({"tool_choice": "required"})))
            .param
            .as_deref(),
        Some("tool_choice")
    );
    assert_eq!(
        body_of(chat(json!({"tool_choice": "none"}))).get("toolConfig"),
        None
    );
    let err = refused(chat(
        json!({"tools": [{"type": "custom", "function": {"name": "x"}}]}),
    ));
    assert_eq!(err.param.as_deref(), Some("tools"));
}

#[test]
fn assistant_tool_calls_and_tool_results() {
    let body = body_of(json!({"model": "m", "messages": [
        {"role": "user", "content": "Weather and time in Paris?"},
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
            {"id": "call_b", "type": "function", "function": {"name": "get_time", "arguments": ""}},
        ]},
        {"role": "tool", "tool_call_id": "call_a", "content": "{\"temp_c\":18}"},
        {"role": "tool", "tool_call_id": "call_b", "content": "14:05"},
        {"role": "user", "content": "Thanks"},
    ]}));
    assert_eq!(
        body["contents"],
        json!([
            {"role": "user", "parts": [{"text": "Weather and time in Paris?"}]},
            {"role": "model", "parts": [
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": THOUGHT_SIGNATURE_PLACEHOLDER},
                {"functionCall": {"name": "get_time", "args": {}}},
            ]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"temp_c": 18}}},
                {"functionResponse": {"name": "get_time", "response": {"result": "14:05"}}},
                {"text": "Thanks"},
            ]},
        ])
    );
}

#[test]
fn bad_tool_history_is_refused() {
    let err = refused(json!({"model": "m", "messages": [
        {"role": "user", "content": "x"},
        {"role": "tool", "tool_call_id": "call_unknown", "content": "42"},
    ]}));
    assert_eq!(err.param.as_deref(), Some("messages[1]"));
    assert!(err.message.contains("call_unknown"));
    let err = refused(json!({"model": "m", "messages": [
        {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1]"}}]},
    ]}));
    assert_eq!(err.param.as_deref(), Some("messages[0]"));
}

#[test]
fn generation_config() {
    let body = body_of(chat(json!({
        "temperature": 0.2, "top_p": 0.9, "max_tokens": 10, "max_completion_tokens": 300, "stop": ["END", "STOP"],
        "n": 2, "seed": 7, "frequency_penalty": 0.5, "presence_penalty": -0.5, "user": "u1", "metadata": {"a": "b"},
        "parallel_tool_calls": true, "logprobs": false,
    })));
    assert_eq!(
        body["generationConfig"],
        json!({
            "temperature": 0.2, "topP": 0.9, "maxOutputTokens": 300, "stopSequences": ["END", "STOP"],
            "candidateCount": 2, "seed": 7, "frequencyPenalty": 0.5, "presencePenalty": -0.5,
        })
    );
    assert_eq!(
        body_of(chat(json!({"stop": "END", "max_tokens": 10})))["generationConfig"],
        json!({"maxOutputTokens": 10, "stopSequences": ["END"]})
    );
    assert_eq!(
        refused(chat(json!({"seed": 1_i64 << 40}))).param.as_deref(),
        Some("seed")
    );
}

#[test]
fn response_formats() {
    assert_eq!(
        body_of(chat(json!({"response_format": {"type": "text"}}))).get("generationConfig"),
        None
    );
    assert_eq!(
        body_of(chat(json!({"response_format": {"type": "json_object"}})))["generationConfig"],
        json!({"responseMimeType": "application/json"})
    );
    let schema = json!({"type": "object", "properties": {"answer": {"type": ["string", "null"]}}, "required": ["answer"]});
    let body = body_of(chat(
        json!({"response_format": {"type": "json_schema", "json_schema": {"name": "a", "strict": true, "schema": schema}}}),
    ));
    assert_eq!(
        body["generationConfig"],
        json!({"responseMimeType": "application/json", "responseJsonSchema": schema})
    );
    assert_eq!(
        refused(chat(
            json!({"response_format": {"type": "json_schema", "json_schema": {"name": "a"}}})
        ))
        .param
        .as_deref(),
        Some("response_format")
    );
    assert_eq!(
        refused(chat(json!({"response_format": {"type": "yaml"}})))
            .param
            .as_deref(),
        Some("response_format")
    );
}

#[test]
fn semantic_fields_gemini_cannot_honour_are_refused() {
    for (field, value) in [
        ("logit_bias", json!({"50256": -100})),
        ("logprobs", json!(true)),
        ("top_logprobs", json!(3)),
        ("parallel_tool_calls", json!(false)),
        ("reasoning_effort", json!(5)),
        ("audio", json!({"voice": "alloy"})),
    ] {
        let err = refused(chat(json!({ field: value })));
        assert_eq!(err.param.as_deref(), Some(field));
    }
}

#[test]
fn only_api_keys_are_sent_and_qualified_models_are_kept() {
    let provider = provider();
    let aws = Secret::Aws {
        access_key_id: SecretString::new("a"),
        secret_access_key: SecretString::new("b"),
        session_token: None,
    };
    for secret in [Some(&aws), None] {
        let target = Target {
            provider: &provider,
            model: "models/gemini-2.5-pro",
            secret,
            request_id: "r",
            created: 0,
            answers_checked: false,
        };
        let req = Gemini
            .chat_request(&target, &request(chat(json!({}))))
            .unwrap();
        assert!(!req.headers.contains_key("x-goog-api-key"));
        assert_eq!(
            req.url,
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-pro:generateContent"
        );
    }
}

// === responses ===

fn respond(body: &[u8]) -> Result<ChatResponse, Failure> {
    with_target(|t| Gemini.chat_response(t, body))
}

#[test]
fn text_response_with_thoughts_and_usage() {
    let resp = respond(RESPONSE_TEXT).unwrap();
    assert_eq!(resp.id, "BoYhabr8NP2mvdIPsu7F-Qk");
    assert_eq!(resp.model, "gemini-2.5-pro");
    assert_eq!(resp.created, 1_700_000_000);
    assert_eq!(resp.object, "chat.completion");
    let choice = &resp.choices[0];
    assert_eq!(
        choice.message.content.as_deref(),
        Some("Crisp leaves drift and fall,\namber light on quiet paths,\nthe year exhales slow.")
    );
    assert_eq!(
        choice.message.rest["reasoning_content"],
        "The user wants a haiku about autumn."
    );
    assert_eq!(choice.finish_reason.as_deref(), Some("stop"));
    assert_eq!(resp.usage, Some(Usage::new(2053, 19 + 242, 2040, 242)));
}

#[test]
fn tool_call_response() {
    let resp = respond(RESPONSE_TOOLS).unwrap();
    let choice = &resp.choices[0];
    assert_eq!(choice.finish_reason.as_deref(), Some("tool_calls"));
    assert_eq!(choice.message.content, None);
    let calls = choice.message.tool_calls.as_ref().unwrap();
    assert_eq!(
        calls[0],
        ToolCall {
            id: "fc_7d1e".into(),
            kind: "function".into(),
            function: FunctionCall {
                name: "get_weather".into(),
                arguments: r#"{"city":"Paris"}"#.into()
            }
        }
    );
    assert_eq!(calls[1].id, "call_req1_1");
    assert_eq!(calls[1].function.arguments, "{}");
    assert_eq!(resp.usage, Some(Usage::new(74, 22, 0, 0)));
}

#[test]
fn each_finish_reason() {
    let cases = [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("IMAGE_SAFETY", "content_filter"),
        ("LANGUAGE", "stop"),
        ("OTHER", "stop"),
        ("MALFORMED_FUNCTION_CALL", "stop"),
        ("FINISH_REASON_UNSPECIFIED", "stop"),
    ];
    for (gemini, openai) in cases {
        let body = json!({"candidates": [{"content": {"parts": [{"text": "x"}], "role": "model"}, "finishReason": gemini, "index": 0}]});
        let resp = respond(&serde_json::to_vec(&body).unwrap()).unwrap();
        assert_eq!(
            resp.choices[0].finish_reason.as_deref(),
            Some(openai),
            "{gemini}"
        );
        // Without responseId and modelVersion the gateway's own id and the target model are used.
        assert_eq!(resp.id, "chatcmpl-req1");
        assert_eq!(resp.model, "gemini-2.5-flash");
        assert_eq!(resp.usage, None);
    }
}

#[test]
fn blocked_prompt_is_a_content_filter_choice() {
    let resp = respond(RESPONSE_BLOCKED).unwrap();
    assert_eq!(resp.choices.len(), 1);
    assert_eq!(resp.choices[0].message.content, None);
    assert_eq!(
        resp.choices[0].finish_reason.as_deref(),
        Some("content_filter")
    );
    assert_eq!(resp.usage, Some(Usage::new(17, 0, 0, 0)));
}

#[test]
fn several_candidates_keep_their_index() {
    let body = json!({"candidates": [
        {"content": {"parts": [{"text": "A"}]}, "finishReason": "STOP", "index": 0},
        {"content": {"parts": [{"text": "B"}]}, "finishReason": "MAX_TOKENS", "index": 1},
    ]});
    let resp = respond(&serde_json::to_vec(&body).unwrap()).unwrap();
    let got: Vec<_> = resp
        .choices
        .iter()
        .map(|c| {
            (
                c.index,
                c.message.content.clone().unwrap(),
                c.finish_reason.clone().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (0, "A".into(), "stop".into()),
            (1, "B".into(), "length".into())
        ]
    );
}

#[test]
fn malformed_answers_are_protocol_failures() {
    for body in [
        &b"not json"[..],
        br#"{"candidates": []}"#,
        br#"{"candidates": [{"content": {"parts": [{"inlineData": {"mimeType": "image/png", "data": "AA=="}}]}, "finishReason": "STOP"}]}"#,
        br#"{"candidates": [{"content": {"parts": [{"functionCall": {"args": {}}}]}}]}"#,
    ] {
        assert_eq!(respond(body).unwrap_err().kind, FailureKind::Protocol, "{}", String::from_utf8_lossy(body));
    }
}

// === errors ===

fn error_body(status: &str, message: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"error": {"code": 400, "message": message, "status": status}}))
        .unwrap()
}

#[test]
fn error_classification() {
    let cases = [
        (
            400,
            "INVALID_ARGUMENT",
            "Request contains an invalid argument.",
            FailureKind::BadRequest,
        ),
        (
            400,
            "FAILED_PRECONDITION",
            "Precondition check failed.",
            FailureKind::BadRequest,
        ),
        (
            401,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials.",
            FailureKind::Authentication,
        ),
        (
            403,
            "PERMISSION_DENIED",
            "The caller does not have permission",
            FailureKind::PermissionDenied,
        ),
        (
            404,
            "NOT_FOUND",
            "models/gemini-9 is not found for API version v1beta",
            FailureKind::NotFound,
        ),
        (
            429,
            "RESOURCE_EXHAUSTED",
            "Resource has been exhausted (e.g. check quota).",
            FailureKind::RateLimited,
        ),
        (
            500,
            "INTERNAL",
            "An internal error has occurred.",
            FailureKind::Server,
        ),
        (
            503,
            "UNAVAILABLE",
            "The model is overloaded. Please try again later.",
            FailureKind::Overloaded,
        ),
        (
            504,
            "DEADLINE_EXCEEDED",
            "Deadline expired before operation could complete.",
            FailureKind::Timeout,
        ),
    ];
    for (code, status, message, kind) in cases {
        let f = Gemini.error(
            StatusCode::from_u16(code).unwrap(),
            &HeaderMap::new(),
            &error_body(status, message),
        );
        assert_eq!(
            (f.kind, f.status, f.message.as_str(), f.retry_after),
            (kind, Some(code), message, None),
            "{status}"
        );
    }
    let f = Gemini.error(StatusCode::BAD_REQUEST, &HeaderMap::new(), ERROR_CONTEXT);
    assert_eq!(f.kind, FailureKind::ContextWindowExceeded);
    let f = Gemini.error(StatusCode::BAD_REQUEST, &HeaderMap::new(), ERROR_API_KEY);
    assert_eq!(f.kind, FailureKind::Authentication);
    // Not JSON: the HTTP status decides, the body is quoted.
    let f = Gemini.error(
        StatusCode::BAD_GATEWAY,
        &HeaderMap::new(),
        b"<html>bad gateway</html>",
    );
    assert_eq!(
        (f.kind, f.message.as_str()),
        (FailureKind::Server, "<html>bad gateway</html>")
    );
    // The non-SSE stream wraps errors in an array.
    let wrapped = format!(
        "[{}]",
        String::from_utf8_lossy(&error_body("UNAVAILABLE", "overloaded"))
    );
    assert_eq!(
        Gemini
            .error(
                StatusCode::SERVICE_UNAVAILABLE,
                &HeaderMap::new(),
                wrapped.as_bytes()
            )
            .kind,
        FailureKind::Overloaded
    );
}

#[test]
fn retry_delays_are_honoured() {
    let f = Gemini.error(
        StatusCode::TOO_MANY_REQUESTS,
        &HeaderMap::new(),
        ERROR_RATE_LIMITED,
    );
    assert_eq!(
        (f.kind, f.retry_after),
        (FailureKind::RateLimited, Some(Duration::from_secs(26)))
    );
    let mut headers = HeaderMap::new();
    headers.insert("retry-after", HeaderValue::from_static("7"));
    let f = Gemini.error(StatusCode::TOO_MANY_REQUESTS, &headers, ERROR_RATE_LIMITED);
    assert_eq!(f.retry_after, Some(Duration::from_secs(7)));
    let f = Gemini.error(
        StatusCode::SERVICE_UNAVAILABLE,
        &headers,
        &error_body("UNAVAILABLE", "busy"),
    );
    assert_eq!(f.retry_after, Some(Duration::from_secs(7)));
    assert_eq!(parse_duration("0.250s"), Some(Duration::from_millis(250)));
    assert_eq!(parse_duration("soon"), None);
}

// === streaming ===

fn stream() -> GeminiStream {
    with_target(|t| Gemini.stream(t))
}

fn run(input: &[u8], split: usize) -> Result<Vec<ChatChunk>, Failure> {
    let mut s = stream();
    let mut out = Vec::new();
    for piece in input.chunks(split.max(1)) {
        out.extend(s.feed(piece)?);
    }
    out.extend(s.finish()?);
    Ok(out)
}

fn assert_same_at_every_split(input: &[u8]) -> Vec<ChatChunk> {
    let whole = run(input, input.len()).unwrap();
    for split in 1..input.len() {
        assert_eq!(run(input, split).unwrap(), whole, "split {split}");
    }
    whole
}

fn deltas(chunks: &[ChatChunk]) -> Vec<Value> {
    chunks
        .iter()
        .map(|c| json!({"choices": c.choices, "usage": c.usage}))
        .collect()
}

#[test]
fn text_stream_at_every_split() {
    let chunks = assert_same_at_every_split(STREAM_TEXT);
    assert!(chunks.iter().all(|c| c.id == "mIMhacbLBeGtvdIPpv2rsQ4"
        && c.model == "gemini-2.5-flash"
        && c.created == 1_700_000_000));
    assert_eq!(
        deltas(&chunks),
        vec![
            json!({"choices": [{"index": 0, "delta": {"role": "assistant", "reasoning_content": "**Considering the greeting**\n\nThe user says hello."}, "finish_reason": null}], "usage": null}),
            json!({"choices": [{"index": 0, "delta": {"content": "Hello! How can"}, "finish_reason": null}], "usage": null}),
            json!({"choices": [{"index": 0, "delta": {"content": " I help you today?"}, "finish_reason": null}], "usage": null}),
            json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": null}),
            json!({"choices": [], "usage": serde_json::to_value(Usage::new(12, 50, 4, 41)).unwrap()}),
        ]
    );
}

#[test]
fn tool_stream_at_every_split() {
    let chunks = assert_same_at_every_split(STREAM_TOOLS);
    assert_eq!(
        deltas(&chunks),
        vec![
            json!({"choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": [
            {"index": 0, "id": "call_req1_0", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\",\"unit\":\"celsius\"}"}},
            {"index": 1, "id": "call_req1_1", "type": "function", "function": {"name": "get_time", "arguments": "{\"timezone\":\"Europe/Paris\"}"}},
        ]}, "finish_reason": null}], "usage": null}),
            json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}], "usage": null}),
            json!({"choices": [], "usage": serde_json::to_value(Usage::new(58, 118, 0, 87)).unwrap()}),
        ]
    );
}

#[test]
fn a_cut_stream_fails_at_finish() {
    let last_event = STREAM_TEXT
        .windows(4)
        .rposition(|w| w == b"\r\n\r\n")
        .unwrap();
    let before_last = STREAM_TEXT[..last_event]
        .windows(4)
        .rposition(|w| w == b"\r\n\r\n")
        .unwrap()
        + 4;
    // Whole events, but none with a finishReason.
    let mut s = stream();
    assert!(!s.feed(&STREAM_TEXT[..before_last]).unwrap().is_empty());
    assert_eq!(s.finish().unwrap_err().kind, FailureKind::Protocol);
    // Cut inside the last event.
    let mut s = stream();
    s.feed(&STREAM_TEXT[..last_event - 10]).unwrap();
    assert_eq!(s.finish().unwrap_err().kind, FailureKind::Protocol);
    // Nothing at all.
    assert_eq!(stream().finish().unwrap_err().kind, FailureKind::Protocol);
}

#[test]
fn an_error_event_mid_stream_is_a_failure() {
    let mut s = stream();
    let first_end = STREAM_TEXT
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap()
        + 4;
    s.feed(&STREAM_TEXT[..first_end]).unwrap();
    let err = s.feed(b"data: {\"error\": {\"code\": 503, \"message\": \"The model is overloaded.\", \"status\": \"UNAVAILABLE\"}}\r\n\r\n").unwrap_err();
    assert_eq!(
        (err.kind, err.status, err.message.as_str()),
        (
            FailureKind::Overloaded,
            Some(503),
            "The model is overloaded."
        )
    );
    let err = stream()
        .feed(b"data: {\"candidates\": [{\"content\": \r\n\r\n")
        .unwrap_err();
    assert_eq!(err.kind, FailureKind::Protocol);
}

#[test]
fn a_blocked_prompt_stream_ends_with_content_filter() {
    let event = format!(
        "data: {}\r\n\r\n",
        String::from_utf8_lossy(
            &serde_json::to_vec(&serde_json::from_slice::<Value>(RESPONSE_BLOCKED).unwrap())
                .unwrap()
        )
    );
    let chunks = run(event.as_bytes(), 7).unwrap();
    assert_eq!(
        deltas(&chunks),
        vec![
            json!({"choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": "content_filter"}], "usage": null}),
            json!({"choices": [], "usage": serde_json::to_value(Usage::new(17, 0, 0, 0)).unwrap()}),
        ]
    );
}

#[test]
fn several_streamed_candidates_finish_separately() {
    let events = "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"A\"}]}, \"index\": 0}, {\"content\": {\"parts\": [{\"text\": \"B\"}]}, \"index\": 1}]}\r\n\r\n\
                  data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"!\"}]}, \"finishReason\": \"STOP\", \"index\": 0}]}\r\n\r\n";
    let mut s = stream();
    let chunks = s.feed(events.as_bytes()).unwrap();
    assert_eq!(
        chunks
            .iter()
            .map(|c| c.choices[0].index)
            .collect::<Vec<_>>(),
        vec![0, 1, 0, 0]
    );
    assert_eq!(
        s.finish().unwrap_err().kind,
        FailureKind::Protocol,
        "candidate 1 never finished"
    );
    s.feed(b"data: {\"candidates\": [{\"finishReason\": \"MAX_TOKENS\", \"index\": 1}]}\r\n\r\n")
        .unwrap();
    assert_eq!(s.finish().unwrap(), Vec::new(), "no usage was reported");
}

// === embeddings ===

fn embeddings(body: Value) -> Result<UpstreamRequest, RequestError> {
    with_target(|t| Gemini.embeddings_request(t, &serde_json::from_value(body).unwrap()))
}

#[test]
fn embeddings_request_and_refusals() {
    let req = embeddings(json!({"model": "m", "input": ["a", "b"], "dimensions": 256, "encoding_format": "float", "user": "u"})).unwrap();
    assert_eq!(
        req.url,
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:batchEmbedContents"
    );
    assert_eq!(req.headers["x-goog-api-key"], "AIza-test-key");
    assert_eq!(
        serde_json::from_slice::<Value>(&req.body).unwrap(),
        json!({"requests": [
            {"model": "models/gemini-2.5-flash", "content": {"parts": [{"text": "a"}]}, "outputDimensionality": 256},
            {"model": "models/gemini-2.5-flash", "content": {"parts": [{"text": "b"}]}, "outputDimensionality": 256},
        ]})
    );
    let one = embeddings(json!({"model": "m", "input": "solo"})).unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&one.body).unwrap()["requests"][0],
        json!({"model": "models/gemini-2.5-flash", "content": {"parts": [{"text": "solo"}]}})
    );
    for (body, param) in [
        (json!({"model": "m", "input": [[1, 2, 3]]}), "input"),
        (json!({"model": "m", "input": []}), "input"),
        (
            json!({"model": "m", "input": "x", "encoding_format": "float16"}),
            "encoding_format",
        ),
        (
            json!({"model": "m", "input": "x", "task": "retrieval"}),
            "task",
        ),
    ] {
        assert_eq!(embeddings(body).unwrap_err().param.as_deref(), Some(param));
    }
}

#[test]
fn embeddings_response() {
    let resp = with_target(|t| Gemini.embeddings_response(t, EMBEDDINGS)).unwrap();
    assert_eq!(resp.object, "list");
    assert_eq!(resp.model, "gemini-2.5-flash");
    assert_eq!(
        resp.usage,
        EmbeddingsUsage {
            prompt_tokens: 0,
            total_tokens: 0
        }
    );
    assert_eq!(
        resp.data.iter().map(|e| e.index).collect::<Vec<_>>(),
        vec![0, 1]
    );
    assert_eq!(
        resp.data[0].embedding,
        json!([0.013168517, -0.00871193, -0.046782672, 0.00069969177])
    );
    assert_eq!(
        with_target(|t| Gemini.embeddings_response(t, b"{}"))
            .unwrap_err()
            .kind,
        FailureKind::Protocol
    );
}
