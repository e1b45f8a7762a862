use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::Method;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use tollgate_crds::config::ProviderConfig;

use super::*;

pub(super) const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/bedrock");

pub(super) fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{name}")).unwrap()
}

pub(super) fn provider() -> ProviderConfig {
    serde_json::from_value(json!({
        "id": "team/bedrock",
        "type": "bedrock",
        "baseUrl": "https://bedrock-runtime.us-east-1.amazonaws.com",
        "bedrockRegion": "us-east-1",
        "models": [],
        "headers": [{"name": "x-team", "value": "search"}],
    }))
    .unwrap()
}

pub(super) const MODEL: &str = "anthropic.claude-3-5-sonnet-20240620-v1:0";

pub(super) fn target<'a>(provider: &'a ProviderConfig, secret: Option<&'a Secret>) -> Target<'a> {
    Target {
        provider,
        model: MODEL,
        secret,
        request_id: "req-1",
        created: 1_700_000_000,
        answers_checked: false,
    }
}

fn request(body: Value) -> ChatRequest {
    let mut body = body;
    body["model"] = json!("claude");
    serde_json::from_value(body).unwrap()
}

/// The Converse body sent for an OpenAI request body.
fn converse(body: Value) -> Value {
    let p = provider();
    let up = Bedrock
        .chat_request(&target(&p, None), &request(body))
        .unwrap();
    serde_json::from_slice(&up.body).unwrap()
}

fn refused(body: Value) -> RequestError {
    let p = provider();
    Bedrock
        .chat_request(&target(&p, None), &request(body))
        .unwrap_err()
}

fn aws(token: Option<&str>) -> Secret {
    Secret::Aws {
        access_key_id: SecretString::new("AKID"),
        secret_access_key: SecretString::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
        session_token: token.map(SecretString::new),
    }
}

// === request translation ===

#[test]
fn system_prompts_and_turns_translate_and_same_roles_merge() {
    let body = converse(json!({"messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "user", "content": [{"type": "text", "text": "there"}, {"type": "text", "text": " "}]},
        {"role": "assistant", "content": "Hello!", "name": "bot"},
        {"role": "developer", "content": "Answer in French."},
        {"role": "user", "content": "How are you?"},
    ]}));
    assert_eq!(
        body,
        json!({
            "messages": [
                {"role": "user", "content": [{"text": "Hi"}, {"text": "there"}]},
                {"role": "assistant", "content": [{"text": "Hello!"}]},
                {"role": "user", "content": [{"text": "How are you?"}]},
            ],
            "system": [{"text": "Be brief."}, {"text": "Answer in French."}],
        })
    );
}

#[test]
fn sampling_limits_and_stop_go_to_inference_config() {
    let body = converse(json!({
        "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": 100, "max_completion_tokens": 256, "temperature": 0.2, "top_p": 0.9, "stop": ["END", "\n\n"],
        "seed": 7, "user": "u-1", "metadata": {"a": "b"}, "parallel_tool_calls": true, "frequency_penalty": 0, "n": 1,
    }));
    assert_eq!(
        body["inferenceConfig"],
        json!({"maxTokens": 256, "temperature": 0.2, "topP": 0.9, "stopSequences": ["END", "\n\n"]})
    );
    let body = converse(
        json!({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 100, "stop": "END"}),
    );
    assert_eq!(
        body["inferenceConfig"],
        json!({"maxTokens": 100, "stopSequences": ["END"]})
    );
}

#[test]
fn images_need_base64_data_urls() {
    let body = converse(json!({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}},
        {"type": "image_url", "image_url": {"url": "data:image/webp;base64,UklGR"}},
    ]}]}));
    assert_eq!(
        body["messages"][0]["content"],
        json!([
            {"text": "What is this?"},
            {"image": {"format": "jpeg", "source": {"bytes": "/9j/4AAQ"}}},
            {"image": {"format": "webp", "source": {"bytes": "UklGR"}}},
        ])
    );
    let remote = json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]});
    assert_eq!(refused(remote).param.as_deref(), Some("messages"));
    let bmp = json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/bmp;base64,Qk0="}}]}]});
    assert!(refused(bmp).message.contains("image/bmp"));
    let audio = json!({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "x", "format": "wav"}}]}]});
    assert_eq!(refused(audio).param.as_deref(), Some("messages"));
}

fn weather_tool() -> Value {
    json!({"type": "function", "function": {"name": "get_weather", "description": "Weather by city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}})
}

#[test]
fn tools_and_tool_choice_translate() {
    let base = |choice: Value| {
        let mut body = json!({"messages": [{"role": "user", "content": "Weather?"}],
            "tools": [weather_tool(), {"type": "function", "function": {"name": "now", "strict": true}}]});
        if !choice.is_null() {
            body["tool_choice"] = choice;
        }
        converse(body)["toolConfig"].clone()
    };
    let tools = json!([
        {"toolSpec": {"name": "get_weather", "description": "Weather by city",
            "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}},
        {"toolSpec": {"name": "now", "inputSchema": {"json": {"type": "object", "properties": {}}}, "strict": true}},
    ]);
    assert_eq!(base(Value::Null), json!({"tools": tools}));
    assert_eq!(
        base(json!("auto")),
        json!({"tools": tools, "toolChoice": {"auto": {}}})
    );
    assert_eq!(
        base(json!("required")),
        json!({"tools": tools, "toolChoice": {"any": {}}})
    );
    assert_eq!(
        base(json!({"type": "function", "function": {"name": "now"}})),
        json!({"tools": tools, "toolChoice": {"tool": {"name": "now"}}})
    );
    // No tool history: `none` is honoured by not offering the tools at all.
    assert_eq!(base(json!("none")), Value::Null);
    assert_eq!(refused(json!({"messages": [{"role": "user", "content": "x"}], "tools": [weather_tool()], "tool_choice": "sometimes"})).param.as_deref(), Some("tool_choice"));
    assert_eq!(
        refused(json!({"messages": [{"role": "user", "content": "x"}], "tool_choice": "required"}))
            .param
            .as_deref(),
        Some("tool_choice")
    );
    let hosted = json!({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "web_search", "function": {"name": "w"}}]});
    assert_eq!(refused(hosted).param.as_deref(), Some("tools"));
}

fn tool_history() -> Value {
    json!([
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
            {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": ""}},
        ]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
        {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "21C"}]},
        {"role": "user", "content": "Thanks, and tomorrow?"},
    ])
}

#[test]
fn tool_calls_and_results_become_tool_use_and_tool_result_blocks() {
    let body = converse(json!({"messages": tool_history(), "tools": [weather_tool()]}));
    assert_eq!(
        body["messages"],
        json!([
            {"role": "user", "content": [{"text": "Weather in Paris and Rome?"}]},
            {"role": "assistant", "content": [
                {"toolUse": {"toolUseId": "call_1", "name": "get_weather", "input": {"city": "Paris"}}},
                {"toolUse": {"toolUseId": "call_2", "name": "get_weather", "input": {}}},
            ]},
            {"role": "user", "content": [
                {"toolResult": {"toolUseId": "call_1", "content": [{"text": "18C"}]}},
                {"toolResult": {"toolUseId": "call_2", "content": [{"text": "21C"}]}},
                {"text": "Thanks, and tomorrow?"},
            ]},
        ])
    );
    // Converse needs toolConfig whenever the conversation holds tool blocks.
    assert_eq!(
        refused(json!({"messages": tool_history()}))
            .param
            .as_deref(),
        Some("tools")
    );
    assert_eq!(
        refused(
            json!({"messages": tool_history(), "tools": [weather_tool()], "tool_choice": "none"})
        )
        .param
        .as_deref(),
        Some("tool_choice")
    );
    let bad_args = json!({"messages": [{"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]}], "tools": [weather_tool()]});
    assert_eq!(refused(bad_args).param.as_deref(), Some("messages"));
    let image_result = json!({"messages": [{"role": "tool", "tool_call_id": "c", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}}]}], "tools": [weather_tool()]});
    assert_eq!(refused(image_result).param.as_deref(), Some("messages"));
    let empty = converse(
        json!({"messages": [{"role": "tool", "tool_call_id": "c", "content": ""}], "tools": [weather_tool()]}),
    );
    assert_eq!(
        empty["messages"][0]["content"],
        json!([{"toolResult": {"toolUseId": "c", "content": []}}])
    );
    let no_id = json!({"messages": [{"role": "tool", "content": "x"}], "tools": [weather_tool()]});
    assert_eq!(refused(no_id).param.as_deref(), Some("messages"));
}

#[test]
fn json_schema_uses_native_structured_output_and_json_object_is_refused() {
    let schema = json!({"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"], "additionalProperties": false});
    let body = converse(json!({"messages": [{"role": "user", "content": "Extract"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "person", "strict": true, "schema": schema}}}));
    let out = &body["outputConfig"]["textFormat"];
    assert_eq!(out["type"], "json_schema");
    assert_eq!(out["structure"]["jsonSchema"]["name"], "person");
    let sent: Value =
        serde_json::from_str(out["structure"]["jsonSchema"]["schema"].as_str().unwrap()).unwrap();
    assert_eq!(sent, schema);
    let body = converse(
        json!({"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "text"}}),
    );
    assert_eq!(body.get("outputConfig"), None);
    let object = json!({"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_object"}});
    assert_eq!(refused(object).param.as_deref(), Some("response_format"));
}

#[test]
fn fields_converse_cannot_honour_are_refused_by_name() {
    for (field, value) in [
        ("n", json!(2)),
        ("logprobs", json!(true)),
        ("top_logprobs", json!(3)),
        ("presence_penalty", json!(0.5)),
        ("logit_bias", json!({"50256": -100})),
        ("parallel_tool_calls", json!(false)),
        ("reasoning_effort", json!("high")),
        ("audio", json!({"voice": "alloy"})),
    ] {
        let mut body = json!({"messages": [{"role": "user", "content": "x"}]});
        body[field] = value;
        assert_eq!(refused(body).param.as_deref(), Some(field), "{field}");
    }
}

#[test]
fn urls_encode_the_model_id_and_pick_the_operation() {
    let p = provider();
    let up = Bedrock
        .chat_request(
            &target(&p, None),
            &request(json!({"messages": [{"role": "user", "content": "x"}]})),
        )
        .unwrap();
    assert_eq!(up.method, Method::POST);
    assert_eq!(
        up.url,
        "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"
    );
    assert_eq!(up.headers["accept"], "application/json");
    assert_eq!(up.headers["content-type"], "application/json");
    assert_eq!(up.headers["x-team"], "search");
    assert!(up.headers.get("authorization").is_none());
    let up = Bedrock
        .chat_request(
            &target(&p, None),
            &request(json!({"messages": [{"role": "user", "content": "x"}], "stream": true})),
        )
        .unwrap();
    assert!(
        up.url
            .ends_with("/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse-stream")
    );
    assert_eq!(up.headers["accept"], EVENT_STREAM);
    assert_eq!(
        encode_segment("arn:aws:bedrock:us-east-1:123:inference-profile/us.meta~x"),
        "arn%3Aaws%3Abedrock%3Aus-east-1%3A123%3Ainference-profile%2Fus.meta~x"
    );
}

#[test]
fn api_keys_are_bearer_tokens() {
    let p = provider();
    let key = Secret::ApiKey(SecretString::new("bedrock-api-key-123"));
    let up = Bedrock
        .chat_request(
            &target(&p, Some(&key)),
            &request(json!({"messages": [{"role": "user", "content": "x"}]})),
        )
        .unwrap();
    assert_eq!(up.headers["authorization"], "Bearer bedrock-api-key-123");
    assert!(up.headers["authorization"].is_sensitive());
    assert!(up.headers.get("x-amz-date").is_none());
}

fn signed_at(body: &'static [u8], token: Option<&str>, time: SystemTime) -> HeaderMap {
    let mut req = UpstreamRequest {
        method: Method::POST,
        url:
            "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-v2%3A1/converse"
                .into(),
        headers: HeaderMap::from_iter([(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )]),
        body: Bytes::from_static(body),
    };
    let secret = aws(token);
    let Secret::Aws {
        access_key_id,
        secret_access_key,
        session_token,
    } = &secret
    else {
        unreachable!()
    };
    let keys = AwsKeys {
        access_key_id,
        secret_access_key,
        session_token: session_token.as_ref(),
    };
    sign_sigv4(&mut req, keys, "us-east-1", time).unwrap();
    req.headers
}

#[test]
fn sigv4_signs_with_the_bedrock_scope_at_the_given_time() {
    let new_year = UNIX_EPOCH + Duration::from_secs(1_735_689_600); // 2025-01-01T00:00:00Z
    let headers = signed_at(br#"{"messages":[]}"#, None, new_year);
    let auth = headers["authorization"].to_str().unwrap().to_owned();
    let prefix = "AWS4-HMAC-SHA256 Credential=AKID/20250101/us-east-1/bedrock/aws4_request, \
                  SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date, Signature=";
    assert!(auth.starts_with(prefix), "{auth}");
    let signature = &auth[prefix.len()..];
    assert_eq!(signature.len(), 64);
    assert!(signature.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(headers["authorization"].is_sensitive());
    assert_eq!(headers["x-amz-date"], "20250101T000000Z");
    // SHA-256 of the body, lowercase hex.
    assert_eq!(
        headers["x-amz-content-sha256"],
        "5e4ce7b36ba37b78a5d5f9fd08e6b7b54ba6879d651aa46ec9e1d6fa24ebe30a"
    );
    assert!(headers.get("x-amz-security-token").is_none());

    // Deterministic at a fixed time; any change of body or time changes the signature.
    assert_eq!(
        signed_at(br#"{"messages":[]}"#, None, new_year)["authorization"],
        headers["authorization"]
    );
    assert_ne!(
        signed_at(br#"{"messages":[1]}"#, None, new_year)["authorization"],
        headers["authorization"]
    );
    assert_ne!(
        signed_at(
            br#"{"messages":[]}"#,
            None,
            new_year + Duration::from_secs(1)
        )["authorization"],
        headers["authorization"]
    );
}

#[test]
fn sigv4_sends_and_signs_the_session_token() {
    let headers = signed_at(
        b"{}",
        Some("FwoGZXIvYXdzEBY"),
        UNIX_EPOCH + Duration::from_secs(1_735_689_600),
    );
    assert_eq!(headers["x-amz-security-token"], "FwoGZXIvYXdzEBY");
    assert!(headers["x-amz-security-token"].is_sensitive());
    assert!(headers["authorization"].to_str().unwrap().contains(
        "SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token,"
    ));
}

#[test]
fn aws_credentials_sign_the_adapter_request_now() {
    let p = provider();
    let secret = aws(None);
    let up = Bedrock
        .chat_request(
            &target(&p, Some(&secret)),
            &request(json!({"messages": [{"role": "user", "content": "x"}]})),
        )
        .unwrap();
    let auth = up.headers["authorization"].to_str().unwrap();
    let today = jiff::Timestamp::now().strftime("%Y%m%d").to_string();
    assert!(
        auth.contains(&format!(
            "Credential=AKID/{today}/us-east-1/bedrock/aws4_request"
        )),
        "{auth}"
    );
    assert!(
        auth.contains("x-team"),
        "provider headers are signed too: {auth}"
    );
}

// === response translation ===

fn respond(body: &[u8]) -> Result<ChatResponse, Failure> {
    let p = provider();
    Bedrock.chat_response(&target(&p, None), body)
}

#[test]
fn text_answers_join_text_and_keep_reasoning_and_cache_usage() {
    let resp = respond(&fixture("converse_text.json")).unwrap();
    assert_eq!(resp.id, "chatcmpl-req-1");
    assert_eq!(resp.object, "chat.completion");
    assert_eq!(resp.created, 1_700_000_000);
    assert_eq!(resp.model, MODEL);
    let choice = &resp.choices[0];
    assert_eq!(choice.message.role, "assistant");
    assert_eq!(
        choice.message.content.as_deref(),
        Some("Hello! How can I help you today?")
    );
    assert_eq!(choice.message.tool_calls, None);
    assert_eq!(
        choice.message.rest["reasoning_content"],
        "The user greets me; answer briefly."
    );
    assert_eq!(choice.finish_reason.as_deref(), Some("stop"));
    assert_eq!(
        resp.usage,
        Some(Usage::new(12 + 1000 + 200, 31, 1000, 0).with_cache_writes(200, 0))
    );
}

#[test]
fn tool_use_blocks_become_tool_calls_with_compact_arguments() {
    let resp = respond(&fixture("converse_tool_use.json")).unwrap();
    let choice = &resp.choices[0];
    assert_eq!(
        choice.message.content.as_deref(),
        Some("I'll look up the weather in Paris.")
    );
    assert_eq!(
        choice.message.tool_calls,
        Some(vec![ToolCall {
            id: "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q".into(),
            kind: "function".into(),
            function: FunctionCall {
                name: "get_weather".into(),
                arguments: r#"{"city":"Paris","unit":"celsius"}"#.into()
            },
        }])
    );
    assert_eq!(choice.finish_reason.as_deref(), Some("tool_calls"));
    assert_eq!(resp.usage, Some(Usage::new(411, 72, 0, 0)));
    let only_tool = json!({"output": {"message": {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t", "name": "f", "input": {}}}]}},
        "stopReason": "tool_use", "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2}});
    assert_eq!(
        respond(only_tool.to_string().as_bytes()).unwrap().choices[0]
            .message
            .content,
        None
    );
}

#[test]
fn every_stop_reason_maps_to_a_finish_reason() {
    for (stop, finish) in [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("tool_use", "tool_calls"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
        ("malformed_model_output", "stop"),
        ("something_new", "stop"),
    ] {
        let body = json!({"output": {"message": {"role": "assistant", "content": [{"text": "x"}]}}, "stopReason": stop,
            "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2}});
        assert_eq!(
            respond(body.to_string().as_bytes()).unwrap().choices[0]
                .finish_reason
                .as_deref(),
            Some(finish),
            "{stop}"
        );
    }
}

#[test]
fn malformed_answers_are_protocol_failures() {
    for body in [
        &b"<html>bad gateway</html>"[..],
        br#"{"output": {"message": {"content": []}}, "stopReason": "end_turn"}"#,
    ] {
        assert_eq!(respond(body).unwrap_err().kind, FailureKind::Protocol);
    }
}

// === errors ===

fn classify(status: u16, error_type: Option<&str>, body: &str) -> Failure {
    let mut headers = HeaderMap::new();
    if let Some(t) = error_type {
        headers.insert("x-amzn-errortype", HeaderValue::from_str(t).unwrap());
    }
    Bedrock.error(
        StatusCode::from_u16(status).unwrap(),
        &headers,
        body.as_bytes(),
    )
}

#[test]
fn aws_error_types_classify() {
    use FailureKind::*;
    for (status, header_type, body, kind) in [
        (
            429,
            Some("ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/"),
            r#"{"message":"Too many requests, please wait before trying again."}"#,
            RateLimited,
        ),
        (
            503,
            Some(
                "ServiceUnavailableException:http://internal.amazon.com/coral/com.amazon.bedrock/",
            ),
            r#"{"message":"Bedrock is unable to process your request."}"#,
            Overloaded,
        ),
        (
            429,
            Some("ModelNotReadyException"),
            r#"{"message":"Model is not ready for inference."}"#,
            Overloaded,
        ),
        (
            408,
            Some("ModelTimeoutException"),
            r#"{"message":"Model has timed out in processing the request."}"#,
            Timeout,
        ),
        (
            400,
            Some("ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/"),
            r#"{"message":"Input is too long for requested model."}"#,
            ContextWindowExceeded,
        ),
        (
            400,
            Some("ValidationException"),
            r#"{"message":"The model returned the following errors: prompt is too long: 200049 tokens > 200000 maximum"}"#,
            ContextWindowExceeded,
        ),
        (
            400,
            Some("ValidationException"),
            r#"{"message":"A conversation must start with a user message."}"#,
            BadRequest,
        ),
        (
            403,
            Some("AccessDeniedException"),
            r#"{"message":"You don't have access to the model with the specified model ID."}"#,
            PermissionDenied,
        ),
        (
            403,
            Some("UnrecognizedClientException"),
            r#"{"message":"The security token included in the request is invalid."}"#,
            Authentication,
        ),
        (
            403,
            Some("InvalidSignatureException"),
            r#"{"message":"The request signature we calculated does not match the signature you provided."}"#,
            Authentication,
        ),
        (
            403,
            Some("ExpiredTokenException"),
            r#"{"message":"The security token included in the request is expired"}"#,
            Authentication,
        ),
        (
            404,
            Some("ResourceNotFoundException"),
            r#"{"message":"Could not resolve the foundation model from the provided model identifier."}"#,
            NotFound,
        ),
        (
            500,
            Some("InternalServerException"),
            r#"{"message":"Internal server error"}"#,
            Server,
        ),
        (
            424,
            Some("ModelErrorException"),
            r#"{"message":"The system encountered an unexpected error during processing."}"#,
            Server,
        ),
        // No header: the body's __type decides.
        (
            400,
            None,
            r#"{"__type":"com.amazon.coral.service#UnrecognizedClientException","Message":"The security token included in the request is invalid."}"#,
            Authentication,
        ),
        // Nothing to go on but the status.
        (502, None, "<html>Bad Gateway</html>", Server),
        (429, None, "", RateLimited),
    ] {
        let f = classify(status, header_type, body);
        assert_eq!(f.kind, kind, "{header_type:?} {body}");
        assert_eq!(f.status, Some(status));
    }
}

#[test]
fn error_messages_name_the_type_and_retry_after_is_honoured() {
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-amzn-errortype",
        HeaderValue::from_static(
            "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/",
        ),
    );
    headers.insert("retry-after", HeaderValue::from_static("7"));
    let f = Bedrock.error(
        StatusCode::TOO_MANY_REQUESTS,
        &headers,
        br#"{"message":"Too many tokens, please wait before trying again."}"#,
    );
    assert_eq!(
        f.message,
        "ThrottlingException: Too many tokens, please wait before trying again."
    );
    assert_eq!(f.retry_after, Some(Duration::from_secs(7)));
    let long = "x".repeat(5000);
    assert!(classify(500, None, &long).message.len() <= MAX_QUOTE_BYTES);
}

const MAX_QUOTE_BYTES: usize = super::super::MAX_ERROR_QUOTE + '…'.len_utf8();
