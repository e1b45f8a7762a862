use aws_smithy_eventstream::frame::write_message_to;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::*;
use crate::providers::bedrock::Bedrock;
use crate::providers::bedrock::tests::{MODEL, fixture, provider, target};
use crate::providers::{FailureKind, ProviderAdapter};
use crate::stream::eventstream::{Header, HeaderValue as FrameHeaderValue};
use crate::wire::openai::ChatChunk;

/// Encodes a fixture (a JSON list of `{event|exception, payload}`) as event-stream frames.
fn frames(events: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    for e in events.as_array().unwrap() {
        let payload = serde_json::to_vec(&e["payload"]).unwrap();
        let mut message = Frame::new(payload).add_header(Header::new(
            ":content-type",
            FrameHeaderValue::String("application/json".into()),
        ));
        message = if let Some(name) = e["event"].as_str() {
            message
                .add_header(Header::new(
                    ":event-type",
                    FrameHeaderValue::String(name.to_owned().into()),
                ))
                .add_header(Header::new(
                    ":message-type",
                    FrameHeaderValue::String("event".into()),
                ))
        } else {
            message
                .add_header(Header::new(
                    ":exception-type",
                    FrameHeaderValue::String(e["exception"].as_str().unwrap().to_owned().into()),
                ))
                .add_header(Header::new(
                    ":message-type",
                    FrameHeaderValue::String("exception".into()),
                ))
        };
        write_message_to(&message, &mut out).unwrap();
    }
    out
}

fn fixture_frames(name: &str) -> Vec<u8> {
    frames(&serde_json::from_slice(&fixture(name)).unwrap())
}

fn new_stream() -> BedrockStream {
    let p = provider();
    Bedrock.stream(&target(&p, None))
}

/// Feeds `pieces` in order, then finishes.
fn run(pieces: &[&[u8]]) -> Result<Vec<ChatChunk>, Failure> {
    let mut s = new_stream();
    let mut out = Vec::new();
    for piece in pieces {
        out.extend(s.feed(piece)?);
    }
    out.extend(s.finish()?);
    Ok(out)
}

/// The chunks for `input`, checked identical at every two-piece split and byte by byte.
fn every_split(input: &[u8]) -> Vec<ChatChunk> {
    let whole = run(&[input]).unwrap();
    for at in 1..input.len() {
        assert_eq!(
            run(&[&input[..at], &input[at..]]).unwrap(),
            whole,
            "split at {at}"
        );
    }
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(run(&bytes).unwrap(), whole, "byte by byte");
    whole
}

#[test]
fn a_text_stream_translates_identically_at_every_split() {
    let chunks = every_split(&fixture_frames("stream_text.json"));
    for c in &chunks {
        assert_eq!(
            (
                c.id.as_str(),
                c.model.as_str(),
                c.created,
                c.object.as_str()
            ),
            (
                "chatcmpl-req-1",
                MODEL,
                1_700_000_000,
                "chat.completion.chunk"
            )
        );
    }
    let deltas: Vec<_> = chunks.iter().filter_map(|c| c.choices.first()).collect();
    assert_eq!(deltas[0].delta.role.as_deref(), Some("assistant"));
    assert!(deltas[1..].iter().all(|d| d.delta.role.is_none()));
    let text: String = deltas
        .iter()
        .filter_map(|d| d.delta.content.as_deref())
        .collect();
    assert_eq!(text, "Hello! How can I help you today?");
    let last_delta = deltas.last().unwrap();
    assert_eq!(
        (last_delta.finish_reason.as_deref(), &last_delta.delta),
        (Some("stop"), &Delta::default())
    );
    let usage = chunks.last().unwrap();
    assert!(usage.choices.is_empty());
    assert_eq!(usage.usage, Some(Usage::new(1012, 9, 1000, 0)));
    assert_eq!(chunks.len(), 5);
}

#[test]
fn a_tool_stream_translates_identically_at_every_split() {
    let chunks = every_split(&fixture_frames("stream_tool_use.json"));
    let pieces: Vec<&ToolCallDelta> = chunks
        .iter()
        .flat_map(|c| c.choices.iter())
        .flat_map(|ch| ch.delta.tool_calls.iter().flatten())
        .collect();
    let first = pieces[0];
    assert_eq!(
        (first.index, first.id.as_deref(), first.kind.as_deref()),
        (0, Some("tooluse_kZJMlvQmRJ6eAyJE5GIl7Q"), Some("function"))
    );
    assert_eq!(
        first.function,
        Some(FunctionCallDelta {
            name: Some("get_weather".into()),
            arguments: Some(String::new())
        })
    );
    let args = |index: u32| -> String {
        pieces
            .iter()
            .filter(|p| p.index == index)
            .filter_map(|p| p.function.as_ref()?.arguments.clone())
            .collect()
    };
    assert_eq!(args(0), r#"{"city": "Paris"}"#);
    assert!(
        pieces
            .iter()
            .filter(|p| p.index == 0)
            .skip(1)
            .all(|p| p.id.is_none() && p.kind.is_none())
    );
    // A call without input deltas still gets valid JSON arguments.
    assert_eq!(
        pieces
            .iter()
            .find(|p| p.index == 1)
            .and_then(|p| p.id.as_deref()),
        Some("tooluse_3wq8KpTbRSqYH1qS0mCXnQ")
    );
    assert_eq!(args(1), "{}");
    let finish: Vec<_> = chunks
        .iter()
        .flat_map(|c| &c.choices)
        .filter_map(|c| c.finish_reason.as_deref())
        .collect();
    assert_eq!(finish, ["tool_calls"]);
    assert_eq!(
        chunks[0].choices[0].delta.content.as_deref(),
        Some("I'll look up the weather.")
    );
    assert_eq!(
        chunks[0].choices[0].delta.role.as_deref(),
        Some("assistant")
    );
    assert_eq!(
        chunks.last().unwrap().usage,
        Some(Usage::new(531, 72, 100, 0).with_cache_writes(20, 0))
    );
}

#[test]
fn reasoning_deltas_stream_as_reasoning_content() {
    let input = frames(&json!([
        {"event": "messageStart", "payload": {"role": "assistant"}},
        {"event": "contentBlockDelta", "payload": {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "Think."}}}},
        {"event": "contentBlockDelta", "payload": {"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": "EqoB"}}}},
        {"event": "contentBlockStop", "payload": {"contentBlockIndex": 0}},
        {"event": "contentBlockDelta", "payload": {"contentBlockIndex": 1, "delta": {"text": "Done."}}},
        {"event": "someFutureEvent", "payload": {"x": 1}},
        {"event": "messageStop", "payload": {"stopReason": "max_tokens"}},
    ]));
    let chunks = every_split(&input);
    assert_eq!(
        chunks.len(),
        3,
        "no usage chunk without metadata: {chunks:?}"
    );
    assert_eq!(
        chunks[0].choices[0].delta.rest["reasoning_content"],
        "Think."
    );
    assert_eq!(
        chunks[0].choices[0].delta.role.as_deref(),
        Some("assistant")
    );
    assert_eq!(chunks[1].choices[0].delta.content.as_deref(), Some("Done."));
    assert_eq!(
        chunks[2].choices[0].finish_reason.as_deref(),
        Some("length")
    );
}

#[test]
fn a_stream_cut_before_message_stop_fails() {
    let input = fixture_frames("stream_text.json");
    let events: Value = serde_json::from_slice(&fixture("stream_text.json")).unwrap();
    let until_stop = frames(&Value::Array(events.as_array().unwrap()[..5].to_vec()));
    let err = run(&[&until_stop]).unwrap_err();
    assert_eq!(err.kind, FailureKind::Protocol);
    assert!(err.message.contains("messageStop"), "{}", err.message);
    // Cut inside a frame, even after messageStop.
    let err = run(&[&input[..input.len() - 3]]).unwrap_err();
    assert_eq!(err.kind, FailureKind::Protocol);
    // messageStop without metadata is complete.
    let until_metadata = frames(&Value::Array(events.as_array().unwrap()[..6].to_vec()));
    assert!(run(&[&until_metadata]).is_ok());
}

#[test]
fn exceptions_mid_stream_become_classified_failures() {
    use FailureKind::*;
    for (exception, message, kind) in [
        (
            "throttlingException",
            "Too many tokens, please wait before trying again.",
            RateLimited,
        ),
        (
            "modelStreamErrorException",
            "The model stream errored.",
            Server,
        ),
        (
            "validationException",
            "Input is too long for requested model.",
            ContextWindowExceeded,
        ),
        (
            "validationException",
            "Malformed input request.",
            BadRequest,
        ),
        (
            "serviceUnavailableException",
            "Bedrock is unable to process your request.",
            Overloaded,
        ),
        ("internalServerException", "Internal server error.", Server),
    ] {
        let input = frames(&json!([
            {"event": "messageStart", "payload": {"role": "assistant"}},
            {"event": "contentBlockDelta", "payload": {"contentBlockIndex": 0, "delta": {"text": "Hel"}}},
            {"exception": exception, "payload": {"message": message}},
        ]));
        let mut s = new_stream();
        let err = s.feed(&input).unwrap_err();
        assert_eq!(err.kind, kind, "{exception}");
        assert_eq!(err.message, format!("{exception}: {message}"));
    }
    // A generic error frame.
    let message = Frame::new(Vec::new())
        .add_header(Header::new(
            ":message-type",
            FrameHeaderValue::String("error".into()),
        ))
        .add_header(Header::new(
            ":error-code",
            FrameHeaderValue::String("ThrottlingException".into()),
        ))
        .add_header(Header::new(
            ":error-message",
            FrameHeaderValue::String("Rate exceeded".into()),
        ));
    let mut input = Vec::new();
    write_message_to(&message, &mut input).unwrap();
    assert_eq!(new_stream().feed(&input).unwrap_err().kind, RateLimited);
}

#[test]
fn malformed_streams_are_protocol_failures() {
    for events in [
        json!([{"event": "contentBlockDelta", "payload": {"delta": {"text": "no index"}}}]),
        json!([{"event": "contentBlockDelta", "payload": {"contentBlockIndex": 3, "delta": {"toolUse": {"input": "{}"}}}}]),
        json!([{"event": "messageStop", "payload": {}}]),
        json!([{"event": "metadata", "payload": {"usage": {"inputTokens": "many"}}}]),
    ] {
        assert_eq!(
            new_stream().feed(&frames(&events)).unwrap_err().kind,
            FailureKind::Protocol,
            "{events}"
        );
    }
    assert_eq!(
        new_stream()
            .feed(b"data: {\"not\": \"event-stream\"}\n\n")
            .unwrap_err()
            .kind,
        FailureKind::Protocol
    );
}
