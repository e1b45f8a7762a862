//! Anthropic's Messages API, as the mock answers it.

use std::sync::Arc;

use axum::{Extension, extract::State, response::Response};
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::{
    Api, Inbound, Shared, begin, reply,
    stream::{self, Streamed},
};

/// Characters per streamed `input_json_delta`.
const ARGUMENT_FRAGMENT: usize = 8;

/// An error in Anthropic's `{"type": "error", "error": {type, message}, "request_id"}` shape.
pub(crate) fn error(
    status: StatusCode,
    message: &str,
    retry_after: Option<u64>,
    n: u64,
) -> Response {
    let kind = match status.as_u16() {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    };
    let body = json!({
        "type": "error",
        "error": {"type": kind, "message": message},
        "request_id": format!("req_mock{n}"),
    });
    stream::error(status, &body, retry_after, request_id(n))
}

fn request_id(n: u64) -> HeaderMap {
    stream::one_header("request-id", &format!("req_mock{n}"))
}

/// What the assistant answers.
enum Answer {
    Text { text: String, truncated: bool },
    Tool { name: String, input: Value },
}

/// `POST /v1/messages`.
pub(crate) async fn messages(
    State(shared): State<Arc<Shared>>,
    Extension(inbound): Extension<Inbound>,
) -> Response {
    let n = inbound.number;
    let knobs = match begin(Api::Anthropic, &shared, &inbound).await {
        Ok(knobs) => knobs,
        Err(response) => return response,
    };
    let body = inbound.body();
    let bad = |message: &str| error(StatusCode::BAD_REQUEST, message, None, n);
    let Some(model) = body.get("model").and_then(Value::as_str) else {
        return bad("model: Field required");
    };
    let Some(max_tokens) = body.get("max_tokens").and_then(Value::as_u64) else {
        return bad("max_tokens: Field required");
    };
    let Some(messages) = body
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
    else {
        return bad("messages: Field required");
    };
    let prompt = reply::prompt_tokens(&[body.get("system"), body.get("messages")]);
    let answer = match pick_tool(body, messages) {
        Some((name, schema)) => Answer::Tool {
            name,
            input: reply::arguments(schema),
        },
        None => {
            let (text, truncated) = reply::truncate(&knobs.reply, Some(max_tokens));
            Answer::Text { text, truncated }
        }
    };
    let (output, stop_reason) = match &answer {
        Answer::Text { text, truncated } => (
            reply::tokens(text.chars().count()),
            if *truncated { "max_tokens" } else { "end_turn" },
        ),
        Answer::Tool { name, input } => (
            reply::tokens(name.chars().count() + input.to_string().chars().count()) + 4,
            "tool_use",
        ),
    };
    let id = format!("msg_mock{n}");
    let tool_id = format!("toolu_mock{n}");
    if body.get("stream").and_then(Value::as_bool).unwrap_or(false) {
        let message = json!({
            "id": id, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": prompt, "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0, "output_tokens": 1, "service_tier": "standard"},
        });
        let mut frames = vec![event(
            "message_start",
            &json!({"type": "message_start", "message": message}),
        )];
        let (block, deltas) = match &answer {
            Answer::Text { text, .. } => (
                json!({"type": "text", "text": ""}),
                reply::pieces(text)
                    .into_iter()
                    .map(|p| json!({"type": "text_delta", "text": p}))
                    .collect(),
            ),
            Answer::Tool { name, input } => (
                json!({"type": "tool_use", "id": tool_id, "name": name, "input": {}}),
                reply::fragments(&input.to_string(), ARGUMENT_FRAGMENT)
                    .into_iter()
                    .map(|p| json!({"type": "input_json_delta", "partial_json": p}))
                    .collect::<Vec<_>>(),
            ),
        };
        frames.push(event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": 0, "content_block": block}),
        ));
        frames.push(event("ping", &json!({"type": "ping"})));
        for delta in deltas {
            frames.push(event(
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": 0, "delta": delta}),
            ));
        }
        frames.push(event(
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": 0}),
        ));
        frames.push(event(
            "message_delta",
            &json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null},
                "usage": {"output_tokens": output}}),
        ));
        frames.push(event("message_stop", &json!({"type": "message_stop"})));
        Streamed::sse(frames).into_response(
            knobs.chunk_delay,
            knobs.disconnect_after,
            request_id(n),
        )
    } else {
        let content = match &answer {
            Answer::Text { text, .. } => json!([{"type": "text", "text": text}]),
            Answer::Tool { name, input } => {
                json!([{"type": "tool_use", "id": tool_id, "name": name, "input": input}])
            }
        };
        let value = json!({
            "id": id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": null,
            "usage": {"input_tokens": prompt, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                "output_tokens": output, "service_tier": "standard"},
        });
        stream::json(
            StatusCode::OK,
            &value,
            knobs.disconnect_after.is_some(),
            request_id(n),
        )
    }
}

/// `POST /v1/messages/count_tokens`: the prompt estimate of `system` and `messages`.
pub(crate) async fn count_tokens(
    State(shared): State<Arc<Shared>>,
    Extension(inbound): Extension<Inbound>,
) -> Response {
    let n = inbound.number;
    if let Err(response) = begin(Api::Anthropic, &shared, &inbound).await {
        return response;
    }
    let body = inbound.body();
    if body.get("model").and_then(Value::as_str).is_none() {
        return error(StatusCode::BAD_REQUEST, "model: Field required", None, n);
    }
    let prompt = reply::prompt_tokens(&[body.get("system"), body.get("messages")]);
    stream::json(
        StatusCode::OK,
        &json!({"input_tokens": prompt}),
        false,
        request_id(n),
    )
}

fn event(name: &str, data: &Value) -> Bytes {
    stream::sse_frame(Some(name), &data.to_string(), false)
}

/// The tool to call, when the request offers custom tools (those with an `input_schema`), its
/// tool choice is not `none` and its last message does not carry a tool result.
fn pick_tool<'a>(body: &'a Value, messages: &[Value]) -> Option<(String, Option<&'a Value>)> {
    let tools: Vec<(&str, &Value)> = body
        .get("tools")?
        .as_array()?
        .iter()
        .filter(|t| t.get("input_schema").is_some())
        .filter_map(|t| Some((t.get("name")?.as_str()?, t)))
        .collect();
    let choice = body.get("tool_choice");
    let wanted = match choice.and_then(|c| c.get("type")).and_then(Value::as_str) {
        Some("none") => return None,
        Some("tool") => choice.and_then(|c| c.get("name")).and_then(Value::as_str),
        _ => None,
    };
    let last = messages.last()?;
    let answers_a_tool = last
        .get("content")
        .and_then(Value::as_array)
        .is_some_and(|blocks| {
            blocks
                .iter()
                .any(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
        });
    if answers_a_tool {
        return None;
    }
    let (name, tool) = wanted
        .and_then(|w| tools.iter().find(|(name, _)| *name == w))
        .or_else(|| tools.first())?;
    Some(((*name).to_owned(), tool.get("input_schema")))
}
