//! The Responses door's translations against golden fixtures
//! (`tests/fixtures/responses/*.json`; `UPDATE_GOLDEN=1` rewrites them for review), every
//! answer and event validated against the vendored Open Responses schema, and the events of
//! recorded provider streams the same at every split of the upstream bytes.

use std::collections::VecDeque;

use bytes::Bytes;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use tollgate_crds::config::{ProviderConfig, ProviderType};

use super::{
    Operation, Responses, ResponsesCall, answer, encoder::ResponsesEncoder, to_chat::to_chat,
};
use crate::{
    failure::{Failure, FailureKind},
    pipeline::encode::StreamEncoder,
    providers::{Adapter, Secret, SecretString, StreamTranslator, Target},
    wire::{
        openai::{ChatChunk, ChatResponse, Usage},
        responses::ResponsesRequest,
    },
};

const ID: &str = "resp_0123456789abcdef";
const CREATED: i64 = 1_700_000_000;

fn fixtures() -> String {
    format!("{}/tests/fixtures", env!("CARGO_MANIFEST_DIR"))
}

/// Compares `actual` with the golden file `responses/{name}.json` (rewritten when
/// `UPDATE_GOLDEN` is set).
fn golden(name: &str, actual: &Value) {
    let path = format!("{}/responses/{name}.json", fixtures());
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        let text = serde_json::to_string_pretty(actual).unwrap() + "\n";
        std::fs::write(&path, text).unwrap();
        return;
    }
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let expected: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(actual, &expected, "golden {name}");
}

/// Validators for the vendored schema's `ResponseResource` and `StreamingEvent`.
pub(crate) struct Schema {
    response: jsonschema::Validator,
    event: jsonschema::Validator,
}

impl Schema {
    pub(crate) fn load() -> Self {
        let path = format!("{}/responses/open-responses-schema.json", fixtures());
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let rooted = |name: &str| {
            let mut d = doc.clone();
            d["$ref"] = json!(format!("#/components/schemas/{name}"));
            jsonschema::validator_for(&d).unwrap()
        };
        Self {
            response: rooted("ResponseResource"),
            event: rooted("StreamingEvent"),
        }
    }

    pub(crate) fn response(&self, value: &Value) {
        let errors: Vec<String> = self
            .response
            .iter_errors(value)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "response breaks the schema: {errors:#?}\n{value:#}"
        );
    }

    pub(crate) fn event(&self, value: &Value) {
        let errors: Vec<String> = self
            .event
            .iter_errors(value)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "event breaks the schema: {errors:#?}\n{value:#}"
        );
    }
}

fn request(body: Value) -> ResponsesRequest {
    serde_json::from_value(body).unwrap()
}

fn provider(kind: ProviderType) -> ProviderConfig {
    ProviderConfig {
        id: "ns/p".into(),
        provider_type: kind,
        base_url: Some("https://upstream.example".into()),
        credentials: vec![],
        azure: None,
        bedrock_region: None,
        models: vec![],
        limits: None,
        headers: vec![],
    }
}

fn target<'a>(p: &'a ProviderConfig, secret: &'a Secret, model: &'a str) -> Target<'a> {
    Target {
        provider: p,
        model,
        secret: Some(secret),
        request_id: "req-1",
        created: CREATED,
        answers_checked: false,
    }
}

fn case(name: &str) -> Value {
    let path = format!("{}/responses/{name}.request.json", fixtures());
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
        .unwrap()
}

const CASES: &[&str] = &[
    "text_instructions",
    "function_round_trip",
    "image_input",
    "options",
];

#[test]
fn requests_translate_to_chat_as_the_golden_files_say() {
    for name in CASES {
        let chat = to_chat(&request(case(name)), &[]).unwrap();
        golden(
            &format!("{name}.chat"),
            &serde_json::to_value(&chat).unwrap(),
        );
    }
}

/// The upstream body each translated provider receives for every case.
#[test]
fn translated_requests_reach_each_provider_as_the_golden_files_say() {
    let key = Secret::ApiKey(SecretString::new("k"));
    for (kind, model) in [
        (ProviderType::Anthropic, "claude-sonnet-4-5"),
        (ProviderType::Gemini, "gemini-2.5-flash"),
        (ProviderType::OpenAICompatible, "llama-3"),
    ] {
        let p = provider(kind);
        let t = target(&p, &key, model);
        for name in CASES {
            let call = ResponsesCall::from(request(case(name)));
            call.prepare_with(ID.into(), CREATED, None, Vec::new(), false);
            let upstream = Responses::translate(&Adapter::for_type(kind), &t, &call).unwrap();
            let body: Value = serde_json::from_slice(&upstream.body).unwrap();
            golden(&format!("{name}.{}", kind.as_str()), &body);
        }
    }
}

#[test]
fn reasoning_effort_maps_where_the_backend_has_an_equivalent() {
    let key = Secret::ApiKey(SecretString::new("k"));
    let body = json!({"model": "m", "input": "think", "reasoning": {"effort": "medium"}});
    let upstream = |kind: ProviderType, body: &Value| {
        let p = provider(kind);
        let call = ResponsesCall::from(request(body.clone()));
        call.prepare_with(ID.into(), CREATED, None, Vec::new(), false);
        Responses::translate(&Adapter::for_type(kind), &target(&p, &key, "m"), &call)
            .map(|u| serde_json::from_slice::<Value>(&u.body).unwrap())
    };
    let anthropic = upstream(ProviderType::Anthropic, &body).unwrap();
    assert_eq!(
        anthropic["thinking"],
        json!({"type": "enabled", "budget_tokens": 4096})
    );
    assert!(
        anthropic["max_tokens"].as_u64().unwrap() > 4096,
        "{anthropic}"
    );
    let compatible = upstream(ProviderType::OpenAICompatible, &body).unwrap();
    assert_eq!(compatible["reasoning_effort"], "medium");
    let gemini = upstream(ProviderType::Gemini, &body).unwrap();
    assert_eq!(
        gemini["generationConfig"]["thinkingConfig"],
        json!({"thinkingBudget": 8192})
    );
    let err = upstream(ProviderType::Bedrock, &body).unwrap_err();
    assert_eq!(err.param.as_deref(), Some("reasoning.effort"));
    assert!(err.message.contains("bedrock"), "{}", err.message);
    let mut tight = body.clone();
    tight["max_output_tokens"] = json!(512);
    let err = upstream(ProviderType::Anthropic, &tight).unwrap_err();
    assert_eq!(err.param.as_deref(), Some("max_output_tokens"));
}

#[test]
fn what_cannot_translate_is_refused_naming_it() {
    let refused = [
        (
            json!({"tools": [{"type": "web_search"}]}),
            "tools[0].type",
            "web_search",
        ),
        (
            json!({"tools": [{"type": "function", "name": "f"}, {"type": "code_interpreter", "container": {"type": "auto"}}]}),
            "tools[1].type",
            "code_interpreter",
        ),
        (
            json!({"input": [{"type": "item_reference", "id": "msg_1"}]}),
            "input[0].type",
            "item_reference",
        ),
        (
            json!({"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]}),
            "input[0].content[0].type",
            "input_file",
        ),
        (
            json!({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]}),
            "input[0].content[0].image_url",
            "file_id",
        ),
        (json!({"background": true}), "background", "background"),
        (
            json!({"conversation": "conv_1"}),
            "conversation",
            "conversation",
        ),
        (
            json!({"tool_choice": {"type": "web_search_preview"}}),
            "tool_choice",
            "web_search_preview",
        ),
        (
            json!({"text": {"format": {"type": "yaml"}}}),
            "text.format.type",
            "json_schema",
        ),
    ];
    for (extra, param, named) in refused {
        let mut body = json!({"model": "m", "input": "hi"});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let err = to_chat(&request(body.clone()), &[]).unwrap_err();
        assert_eq!(err.param.as_deref(), Some(param), "{body}");
        assert!(err.message.contains(named), "{}: {}", body, err.message);
    }
    // Harmless fields are accepted.
    let ok = json!({"model": "m", "input": "hi", "include": ["reasoning.encrypted_content"],
        "truncation": "auto", "service_tier": "auto", "background": false, "top_logprobs": 0});
    to_chat(&request(ok), &[]).unwrap();
}

#[test]
fn a_built_in_tool_refusal_names_the_provider_type() {
    let key = Secret::ApiKey(SecretString::new("k"));
    let p = provider(ProviderType::Anthropic);
    let call = ResponsesCall::from(request(
        json!({"model": "m", "input": "hi", "tools": [{"type": "file_search", "vector_store_ids": []}]}),
    ));
    call.prepare_with(ID.into(), CREATED, None, Vec::new(), false);
    let err = Responses::translate(
        &Adapter::for_type(ProviderType::Anthropic),
        &target(&p, &key, "m"),
        &call,
    )
    .unwrap_err();
    assert!(
        err.message.contains("`file_search`") && err.message.contains("anthropic"),
        "{}",
        err.message
    );
}

#[test]
fn a_previous_response_continues_with_its_items_before_the_new_input() {
    let history = vec![
        json!({"type": "message", "role": "user", "content": "Weather in Paris?"}),
        json!({"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}", "status": "completed"}),
    ];
    let req = request(
        json!({"model": "m", "previous_response_id": "resp_1", "instructions": "Be brief.",
        "input": [{"type": "function_call_output", "call_id": "call_1", "output": "sunny"}]}),
    );
    let chat = to_chat(&req, &history).unwrap();
    let roles: Vec<Value> = chat.messages.iter().map(|m| json!(m.role)).collect();
    assert_eq!(
        roles,
        vec![
            json!("system"),
            json!("user"),
            json!("assistant"),
            json!("tool")
        ]
    );
    assert_eq!(
        chat.messages[2].tool_calls.as_ref().unwrap()[0].id,
        "call_1"
    );
    assert_eq!(chat.messages[3].tool_call_id.as_deref(), Some("call_1"));
}

fn chat_answer(message: Value, finish: &str) -> ChatResponse {
    serde_json::from_value(json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": CREATED, "model": "upstream-model",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 10, "total_tokens": 30,
            "prompt_tokens_details": {"cached_tokens": 4}, "completion_tokens_details": {"reasoning_tokens": 3}},
    }))
    .unwrap()
}

#[test]
fn chat_answers_become_response_objects_as_the_golden_files_say() {
    let schema = Schema::load();
    let req = request(case("options"));
    let answers = [
        (
            "answer_text",
            chat_answer(json!({"role": "assistant", "content": "Hello."}), "stop"),
        ),
        (
            "answer_tool_call",
            chat_answer(
                json!({"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                    {"id": "call_b", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]}),
                "tool_calls",
            ),
        ),
        (
            "answer_reasoning_text",
            chat_answer(
                json!({"role": "assistant", "content": "42.", "reasoning_content": "Deep thought."}),
                "stop",
            ),
        ),
        (
            "answer_length",
            chat_answer(json!({"role": "assistant", "content": "Cut"}), "length"),
        ),
    ];
    for (name, chat) in answers {
        let response = answer::from_chat(&req, ID, CREATED, &chat, CREATED + 1);
        let value = serde_json::to_value(&response).unwrap();
        schema.response(&value);
        golden(name, &value);
    }
}

/// The encoder's frames for `chunks` as (event name, data).
fn events_of(frames: &VecDeque<Bytes>) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for frame in frames {
        let text = std::str::from_utf8(frame).unwrap();
        if text.starts_with(':') {
            continue;
        }
        let name = text
            .lines()
            .find_map(|l| l.strip_prefix("event: "))
            .unwrap();
        let data = text.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
        let mut data: Value = serde_json::from_str(data).unwrap();
        if let Some(r) = data.get_mut("response") {
            r["completed_at"] = r["completed_at"]
                .as_i64()
                .map_or(Value::Null, |_| json!(CREATED));
        }
        out.push((name.to_owned(), data));
    }
    out
}

fn encoder() -> ResponsesEncoder {
    let req = request(json!({"model": "route", "input": "hi"}));
    ResponsesEncoder::new(answer::template(&req, ID, CREATED, "route"), None)
}

/// Upstream bytes in `pieces` through the provider's translator and the encoder.
fn encode(kind: ProviderType, pieces: &[&[u8]]) -> Vec<(String, Value)> {
    let key = Secret::ApiKey(SecretString::new("k"));
    let p = provider(kind);
    let mut translator = Adapter::for_type(kind).stream(&target(&p, &key, "m"));
    let mut chunks: Vec<ChatChunk> = Vec::new();
    for piece in pieces {
        chunks.extend(translator.feed(piece).unwrap());
    }
    chunks.extend(translator.finish().unwrap());
    let mut enc = encoder();
    let mut frames = VecDeque::new();
    let mut usage: Option<Usage> = None;
    for chunk in &chunks {
        if let Some(u) = &chunk.usage {
            usage = Some(u.clone());
        }
        enc.chunk(chunk, &mut frames).unwrap();
    }
    enc.end(usage.as_ref(), None, &mut frames);
    events_of(&frames)
}

/// The documented order: created, in_progress, items (each added … done), then completed
/// or incomplete; sequence numbers count from 0.
fn check_order(events: &[(String, Value)]) {
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(&names[..2], ["response.created", "response.in_progress"]);
    assert!(matches!(
        *names.last().unwrap(),
        "response.completed" | "response.incomplete"
    ));
    for (i, (name, data)) in events.iter().enumerate() {
        assert_eq!(data["sequence_number"], json!(i), "{name}");
        assert_eq!(data["type"], json!(name));
    }
    let mut open: Option<u64> = None;
    for (name, data) in events {
        match name.as_str() {
            "response.output_item.added" => {
                assert_eq!(open, None, "items never interleave");
                open = data["output_index"].as_u64();
            }
            "response.output_item.done" => {
                assert_eq!(open, data["output_index"].as_u64());
                open = None;
            }
            n if n.contains(".delta") || n.contains(".done") || n.contains("content_part") => {
                assert_eq!(open, data["output_index"].as_u64(), "{n} outside its item");
            }
            _ => {}
        }
    }
}

#[test]
fn recorded_provider_streams_become_the_same_events_at_every_split() {
    let schema = Schema::load();
    let streams = [
        (
            ProviderType::Anthropic,
            "anthropic/stream_text.sse",
            "stream_anthropic_text",
        ),
        (
            ProviderType::Anthropic,
            "anthropic/stream_tool_use.sse",
            "stream_anthropic_tool_use",
        ),
        (
            ProviderType::Gemini,
            "gemini/stream_text.sse",
            "stream_gemini_text",
        ),
        (
            ProviderType::Gemini,
            "gemini/stream_tools.sse",
            "stream_gemini_tools",
        ),
        (
            ProviderType::OpenAICompatible,
            "openai/stream_tool_call.sse",
            "stream_openai_tool_call",
        ),
    ];
    for (kind, file, name) in streams {
        let input = std::fs::read(format!("{}/{file}", fixtures())).unwrap();
        let whole = encode(kind, &[&input]);
        for cut in 0..=input.len() {
            let (a, b) = input.split_at(cut);
            assert_eq!(encode(kind, &[a, b]), whole, "{file} split at byte {cut}");
        }
        check_order(&whole);
        for (_, data) in &whole {
            schema.event(data);
        }
        let last = &whole.last().unwrap().1["response"];
        schema.response(last);
        let stored: Vec<Value> = whole
            .iter()
            .filter(|(n, _)| n == "response.output_item.done")
            .map(|(_, d)| d["item"].clone())
            .collect();
        assert_eq!(
            last["output"],
            json!(stored),
            "{file}: the final output is the items sent"
        );
        let events: Vec<Value> = whole.iter().map(|(_, d)| d.clone()).collect();
        golden(name, &json!(events));
    }
}

#[test]
fn a_failure_mid_stream_ends_with_response_failed_and_error_never_completed() {
    let schema = Schema::load();
    let key = Secret::ApiKey(SecretString::new("k"));
    let p = provider(ProviderType::Anthropic);
    let input = std::fs::read(format!("{}/anthropic/stream_text.sse", fixtures())).unwrap();
    let mut translator = Adapter::for_type(ProviderType::Anthropic).stream(&target(&p, &key, "m"));
    let chunks = translator.feed(&input[..input.len() * 4 / 5]).unwrap();
    assert!(!chunks.is_empty());
    let mut enc = encoder();
    let mut frames = VecDeque::new();
    for chunk in &chunks {
        enc.chunk(chunk, &mut frames).unwrap();
    }
    enc.fail(
        &Failure::new(FailureKind::Server, "upstream went away"),
        &mut frames,
    );
    let events = events_of(&frames);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(&names[names.len() - 2..], ["response.failed", "error"]);
    assert!(!names.contains(&"response.completed"));
    for (_, data) in &events {
        schema.event(data);
    }
    let failed = &events[events.len() - 2].1["response"];
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["error"]["code"], "upstream_error");
    assert!(
        failed["error"]["message"]
            .as_str()
            .unwrap()
            .contains("upstream went away")
    );
}
