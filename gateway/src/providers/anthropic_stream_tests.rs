use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::*;
use crate::providers::{
    FailureKind, ProviderAdapter,
    anthropic::{
        Anthropic,
        tests::{fixture, key, provider, target},
    },
};
use crate::wire::openai::Usage;

fn stream() -> AnthropicStream {
    let p = provider(vec![]);
    let k = key();
    Anthropic.stream(&target(&p, &k))
}

/// All chunks of `input` fed in the given pieces, `finish` included.
fn run(pieces: &[&[u8]]) -> Result<Vec<ChatChunk>, Failure> {
    let mut s = stream();
    let mut out = Vec::new();
    for piece in pieces {
        out.extend(s.feed(piece)?);
    }
    out.extend(s.finish()?);
    Ok(out)
}

/// Checks that every two-piece split and byte-by-byte feeding give the same chunks.
fn run_every_split(input: &[u8]) -> Vec<ChatChunk> {
    let whole = run(&[input]).unwrap();
    for cut in 0..=input.len() {
        let (a, b) = input.split_at(cut);
        assert_eq!(run(&[a, b]).unwrap(), whole, "split at byte {cut}");
    }
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(run(&bytes).unwrap(), whole, "byte by byte");
    whole
}

fn content(chunks: &[ChatChunk]) -> String {
    chunks
        .iter()
        .flat_map(|c| &c.choices)
        .filter_map(|c| c.delta.content.as_deref())
        .collect()
}

fn reasoning(chunks: &[ChatChunk]) -> String {
    chunks
        .iter()
        .flat_map(|c| &c.choices)
        .filter_map(|c| {
            c.delta
                .rest
                .get("reasoning_content")
                .and_then(Value::as_str)
        })
        .collect()
}

/// The finish reason of the last delta chunk and the usage of the usage-only chunk after it.
fn ending(chunks: &[ChatChunk]) -> (String, Usage) {
    let [.., last_delta, usage] = chunks else {
        panic!("too few chunks: {chunks:?}");
    };
    assert!(usage.choices.is_empty());
    assert_eq!(
        last_delta.choices[0].delta,
        Delta::default(),
        "an empty delta"
    );
    (
        last_delta.choices[0].finish_reason.clone().unwrap(),
        usage.usage.clone().unwrap(),
    )
}

#[test]
fn a_recorded_text_stream_translates_the_same_at_every_split() {
    let chunks = run_every_split(&fixture("stream_text.sse"));
    assert!(chunks.iter().all(|c| c.id == "msg_01XFDUDYJgAACzvnptvVoYEL"
        && c.model == "claude-sonnet-4-5-20250929"
        && c.created == 1_700_000_000
        && c.object == "chat.completion.chunk"));
    assert_eq!(content(&chunks), "Hello! Ça va? Here is a check mark: ✓");
    assert_eq!(
        chunks[0].choices[0].delta.role.as_deref(),
        Some("assistant")
    );
    assert!(
        chunks[1..]
            .iter()
            .flat_map(|c| &c.choices)
            .all(|c| c.delta.role.is_none())
    );
    let (finish, usage) = ending(&chunks);
    assert_eq!(finish, "stop");
    assert_eq!(usage, Usage::new(25 + 1024, 15, 1024, 0));
    assert!(
        chunks[..chunks.len() - 2]
            .iter()
            .all(|c| c.choices[0].finish_reason.is_none())
    );
}

#[test]
fn a_recorded_tool_stream_translates_the_same_at_every_split() {
    let chunks = run_every_split(&fixture("stream_tool_use.sse"));
    assert_eq!(
        reasoning(&chunks),
        "The user wants the weather in two cities, so I call the tool twice."
    );
    assert_eq!(content(&chunks), "Okay, let's check the weather.");
    let pieces: Vec<&ToolCallDelta> = chunks
        .iter()
        .flat_map(|c| &c.choices)
        .flat_map(|c| c.delta.tool_calls.iter().flatten())
        .collect();
    let first = |i: u32| *pieces.iter().find(|p| p.index == i).unwrap();
    assert_eq!(
        first(0).id.as_deref(),
        Some("toolu_01T1x1fJ34qAmk2tNTrN7Up6")
    );
    assert_eq!(first(0).kind.as_deref(), Some("function"));
    assert_eq!(
        first(0).function,
        Some(FunctionCallDelta {
            name: Some("get_weather".into()),
            arguments: Some(String::new())
        })
    );
    assert_eq!(
        first(1).id.as_deref(),
        Some("toolu_01Ab8bQ2CwhFbVEXcJHJqjtk")
    );
    let arguments = |i: u32| -> String {
        pieces
            .iter()
            .filter(|p| p.index == i)
            .filter_map(|p| p.function.as_ref()?.arguments.as_deref())
            .collect()
    };
    let args0: Value = serde_json::from_str(&arguments(0)).unwrap();
    assert_eq!(
        args0,
        json!({"location": "San Francisco, CA", "unit": "fahrenheit"})
    );
    assert_eq!(arguments(1), r#"{"location": "Paris"}"#);
    assert!(
        pieces
            .iter()
            .filter(|p| p.id.is_none())
            .all(|p| p.kind.is_none() && p.function.as_ref().is_some_and(|f| f.name.is_none())),
        "only the first piece names the call"
    );
    let (finish, usage) = ending(&chunks);
    assert_eq!(finish, "tool_calls");
    assert_eq!(usage, Usage::new(472, 89, 0, 0));
}

#[test]
fn a_streamed_json_schema_answer_is_content_with_stop() {
    let chunks = run_every_split(&fixture("stream_json_schema.sse"));
    let answer: Value = serde_json::from_str(&content(&chunks)).unwrap();
    assert_eq!(answer, json!({"city": "Paris", "celsius": 21}));
    assert!(
        chunks
            .iter()
            .flat_map(|c| &c.choices)
            .all(|c| c.delta.tool_calls.is_none())
    );
    let (finish, usage) = ending(&chunks);
    assert_eq!(finish, "stop");
    assert_eq!(
        usage,
        Usage::new(310 + 200, 24, 0, 0).with_cache_writes(200, 0),
        "cache writes count as prompt, as 5-minute writes"
    );
}

#[test]
fn a_stream_cut_anywhere_before_message_stop_fails_at_finish() {
    let input = fixture("stream_tool_use.sse");
    for cut in 0..input.len() - 1 {
        let mut s = stream();
        s.feed(&input[..cut]).unwrap();
        let err = s.finish().expect_err(&format!("cut at {cut}"));
        assert_eq!(err.kind, FailureKind::Protocol);
    }
}

#[test]
fn an_error_event_mid_stream_is_a_classified_failure() {
    let input = fixture("stream_overloaded.sse");
    let mut s = stream();
    let err = s.feed(&input).unwrap_err();
    assert_eq!(err.kind, FailureKind::Overloaded);
    assert_eq!(err.status, None);
    assert!(err.message.contains("Overloaded"));

    let mut s = stream();
    let first = input
        .windows(12)
        .position(|w| w == b"event: error")
        .unwrap();
    let chunks = s.feed(&input[..first]).unwrap();
    assert_eq!(
        content(&chunks),
        "Once upon",
        "text before the error still flows"
    );

    let mut s = stream();
    let err = s
        .feed(b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":\"slow\"}}\n\n")
        .unwrap_err();
    assert_eq!(
        err.kind,
        FailureKind::RateLimited,
        "an error may come first"
    );
}

#[test]
fn unknown_events_and_delta_types_are_skipped() {
    let start = b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"m\",\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n";
    let rest = concat!(
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        "event: message_annotation\ndata: {\"type\":\"message_annotation\",\"anything\":[1,2]}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"citations_delta\",\"citation\":{\"cited_text\":\"x\"}}}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"server_tool_use\",\"id\":\"srvtoolu_1\",\"name\":\"web_search\",\"input\":{}}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"query\\\":1}\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"ok\"}}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":2}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    );
    let chunks = run(&[start, rest.as_bytes()]).unwrap();
    assert_eq!(content(&chunks), "ok");
    assert_eq!(chunks.len(), 3, "text, finish, usage: {chunks:?}");
}

#[test]
fn malformed_or_out_of_order_events_are_protocol_failures() {
    let start = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"usage\":{}}}\n\n";
    let cases = [
        (
            "a delta before message_start",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}\n\n".to_owned(),
        ),
        (
            "a known event that does not parse",
            format!("{start}event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0}}\n\n"),
        ),
        (
            "a delta for a block never started",
            format!("{start}event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":4,\"delta\":{{\"type\":\"text_delta\",\"text\":\"x\"}}}}\n\n"),
        ),
        (
            "a JSON delta for a text block",
            format!("{start}event: content_block_start\ndata: {{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{{\"type\":\"text\",\"text\":\"\"}}}}\n\nevent: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"input_json_delta\",\"partial_json\":\"{{\"}}}}\n\n"),
        ),
        ("a second message_start", format!("{start}{start}")),
        (
            "events after message_stop",
            format!("{start}event: message_stop\ndata: {{\"type\":\"message_stop\"}}\n\n{start}"),
        ),
        ("data that is not JSON", "data: not json\n\n".to_owned()),
    ];
    for (name, input) in cases {
        let err = run(&[input.as_bytes()]).expect_err(name);
        assert_eq!(err.kind, FailureKind::Protocol, "{name}: {}", err.message);
    }
}

#[test]
fn an_empty_answer_still_ends_with_role_finish_and_usage() {
    let input = concat!(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"m\",\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"max_tokens\"},\"usage\":{\"output_tokens\":1}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    );
    let chunks = run(&[input.as_bytes()]).unwrap();
    assert_eq!(chunks.len(), 2);
    assert_eq!(
        chunks[0].choices[0].delta.role.as_deref(),
        Some("assistant")
    );
    assert_eq!(
        chunks[0].choices[0].finish_reason.as_deref(),
        Some("length")
    );
    assert_eq!(chunks[1].usage, Some(Usage::new(3, 1, 0, 0)));
}
