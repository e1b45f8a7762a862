//! Golden answers and streams: chat answers and chunk sequences (from recorded upstream
//! streams, fed at every byte split) as Anthropic messages and events.

use serde_json::Map;
use tollgate_crds::config::{ProviderConfig, ProviderType};

use super::*;
use crate::{
    failure::FailureKind,
    pipeline::messages::{
        answer,
        to_chat::tests::{fixture, golden},
    },
    providers::{Adapter, StreamTranslator, Target},
    wire::openai::{ChatResponse, Delta, FunctionCallDelta},
};

fn provider() -> ProviderConfig {
    ProviderConfig {
        id: "ns/p".into(),
        provider_type: ProviderType::OpenAI,
        base_url: Some("https://api.example.com".into()),
        credentials: vec![],
        azure: None,
        bedrock_region: None,
        models: vec![],
        limits: None,
        headers: vec![],
    }
}

fn encode_all(chunks: &[ChatChunk], end: Option<Usage>) -> String {
    let mut e = AnthropicEncoder::new("req-1", "backend-model");
    let mut out = VecDeque::new();
    for c in chunks {
        e.chunk(c, &mut out).unwrap();
    }
    e.end(end.as_ref(), None, &mut out);
    String::from_utf8(out.into_iter().flatten().collect()).unwrap()
}

#[test]
fn chat_answers_become_anthropic_messages() {
    for case in ["answer_tool_use", "answer_length"] {
        let chat: ChatResponse =
            serde_json::from_str(&fixture(&format!("{case}.chat.json"))).unwrap();
        let message = answer::message(chat).unwrap();
        let text = serde_json::to_string_pretty(&message).unwrap() + "\n";
        golden(&format!("{case}.message.json"), &text);
    }
}

#[test]
fn arguments_that_are_not_an_object_fail_the_answer() {
    assert_eq!(
        answer::tool_input("[1]").unwrap_err().kind,
        FailureKind::Protocol
    );
    assert_eq!(answer::tool_input(" ").unwrap(), serde_json::json!({}));
}

#[test]
fn recorded_tool_call_streams_become_the_same_events_at_every_split() {
    let cases = [
        (
            ProviderType::OpenAI,
            "openai/stream_tool_call.sse",
            "stream_tool_call.events.sse",
        ),
        (
            ProviderType::Gemini,
            "gemini/stream_tools.sse",
            "gemini_stream_tools.events.sse",
        ),
    ];
    for (kind, recorded, expected) in cases {
        let raw = std::fs::read(format!(
            "{}/tests/fixtures/{recorded}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let mut p = provider();
        p.provider_type = kind;
        let target = Target {
            provider: &p,
            model: "backend-model",
            secret: None,
            request_id: "req-1",
            created: 1,
            answers_checked: false,
        };
        let mut first: Option<String> = None;
        for split in 1..raw.len() {
            let mut translator = Adapter::for_type(kind).stream(&target);
            let mut chunks = Vec::new();
            for piece in raw.chunks(split) {
                chunks.extend(translator.feed(piece).unwrap());
            }
            chunks.extend(translator.finish().unwrap());
            let events = encode_all(&chunks, None);
            match &first {
                None => first = Some(events),
                Some(f) => assert_eq!(&events, f, "{recorded} split {split}"),
            }
        }
        golden(expected, &first.unwrap());
    }
}

fn delta(content: Option<&str>, reasoning: Option<&str>) -> ChatChunk {
    let mut rest = Map::new();
    if let Some(r) = reasoning {
        rest.insert("reasoning_content".into(), r.into());
    }
    let d = Delta {
        content: content.map(str::to_owned),
        rest,
        ..Delta::default()
    };
    ChatChunk::delta("chatcmpl-9", "reasoner", 1, d, None)
}

#[test]
fn reasoning_then_text_then_tools_open_one_block_each() {
    let call = |id: Option<&str>, args: &str| {
        let d = Delta {
            tool_calls: Some(vec![ToolCallDelta {
                index: 0,
                id: id.map(str::to_owned),
                kind: id.map(|_| "function".to_owned()),
                function: Some(FunctionCallDelta {
                    name: id.map(|_| "lookup".to_owned()),
                    arguments: Some(args.to_owned()),
                }),
            }]),
            ..Delta::default()
        };
        ChatChunk::delta("chatcmpl-9", "reasoner", 1, d, None)
    };
    let mut finish = ChatChunk::delta("chatcmpl-9", "reasoner", 1, Delta::default(), None);
    finish.choices[0].finish_reason = Some("tool_calls".into());
    let chunks = [
        delta(None, Some("Think")),
        delta(None, Some("ing.")),
        delta(Some("Hello "), None),
        delta(Some("world"), None),
        call(Some("call_7"), ""),
        call(None, "{\"q\":"),
        call(None, "1}"),
        finish,
        ChatChunk::usage("chatcmpl-9", "reasoner", 1, Usage::new(20, 9, 4, 3)),
    ];
    golden(
        "stream_reasoning_text_tool.events.sse",
        &encode_all(&chunks, None),
    );
}

#[test]
fn a_failure_ends_with_an_error_event_and_never_message_stop() {
    let mut e = AnthropicEncoder::new("req-1", "m");
    let mut out = VecDeque::new();
    e.chunk(&delta(Some("partial"), None), &mut out).unwrap();
    e.fail(
        &Failure::new(FailureKind::Overloaded, "busy upstream"),
        &mut out,
    );
    let text = String::from_utf8(out.into_iter().flatten().collect()).unwrap();
    assert!(!text.contains("message_stop"), "{text}");
    let last = text.trim_end().rsplit("\n\n").next().unwrap();
    assert!(last.starts_with("event: error\ndata: "), "{last}");
    let data: serde_json::Value =
        serde_json::from_str(last.split_once("data: ").unwrap().1).unwrap();
    assert_eq!(data["type"], "error");
    assert_eq!(data["error"]["type"], "overloaded_error");
}

#[test]
fn an_empty_stream_still_starts_and_stops_the_message() {
    let text = encode_all(&[], Some(Usage::new(5, 0, 0, 0)));
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(names, ["message_start", "message_delta", "message_stop"]);
    assert!(text.contains(r#""input_tokens":5"#), "{text}");
}
