//! A chat answer as an Anthropic `message`, and the gateway's errors in Anthropic's shape.
//!
//! `finish_reason` `stop` → `end_turn` (chat answers do not say which stop sequence hit),
//! `length` → `max_tokens`, `tool_calls` → `tool_use`, `content_filter` → `refusal`, others
//! → `end_turn`. Reasoning the backend returned (`reasoning_content`, or `reasoning` as some
//! OpenAI-compatible servers name it) becomes a `thinking` block first, with an empty
//! signature (only Anthropic signs thinking; a later turn sent to a non-Anthropic backend
//! drops thinking blocks anyway). A refusal becomes text with `stop_reason: refusal`.
//! Usage: `input_tokens` excludes cache reads and writes, which have their own fields, as
//! Anthropic counts them.

use axum::{body::Body, response::IntoResponse};
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;
use serde_json::Value;

use crate::{
    error::GatewayError,
    failure::{Failure, FailureKind},
    providers::{FINISH_CONTENT_FILTER, FINISH_LENGTH, FINISH_TOOL_CALLS},
    wire::{
        anthropic::{error_body, error_type},
        openai::{ChatResponse, Usage},
    },
};

/// Anthropic's `stop_reason` for a chat `finish_reason`.
pub fn stop_reason(finish: Option<&str>) -> &'static str {
    match finish {
        Some(FINISH_LENGTH) => "max_tokens",
        Some(FINISH_TOOL_CALLS) => "tool_use",
        Some(FINISH_CONTENT_FILTER) => "refusal",
        _ => "end_turn",
    }
}

/// Anthropic's usage object.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AnthropicUsageOut {
    /// Input tokens not read from or written to the cache.
    pub input_tokens: u64,
    /// Output tokens (thinking included).
    pub output_tokens: u64,
    /// Input tokens written to the cache.
    pub cache_creation_input_tokens: u64,
    /// Input tokens read from the cache.
    pub cache_read_input_tokens: u64,
}

impl From<&Usage> for AnthropicUsageOut {
    fn from(u: &Usage) -> Self {
        let cached = u.cached();
        let writes = u.cache_write_tokens.saturating_add(u.cache_write_1h_tokens);
        Self {
            input_tokens: u
                .prompt_tokens
                .saturating_sub(cached)
                .saturating_sub(writes),
            output_tokens: u.completion_tokens,
            cache_creation_input_tokens: writes,
            cache_read_input_tokens: cached,
        }
    }
}

/// One content block of an answer.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutBlock {
    /// Reasoning.
    Thinking {
        /// The text.
        thinking: String,
        /// Always empty: only Anthropic signs thinking.
        signature: String,
    },
    /// Text.
    Text {
        /// The text.
        text: String,
    },
    /// A tool call.
    ToolUse {
        /// Call id.
        id: String,
        /// Tool name.
        name: String,
        /// Arguments.
        input: Value,
    },
}

/// An Anthropic `message`.
#[derive(Debug, Serialize)]
pub struct OutMessage {
    /// `msg_…`.
    pub id: String,
    /// Always `message`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Always `assistant`.
    pub role: &'static str,
    /// The model that answered.
    pub model: String,
    /// The blocks.
    pub content: Vec<OutBlock>,
    /// Why it stopped.
    pub stop_reason: &'static str,
    /// Which stop sequence hit (chat answers do not say).
    pub stop_sequence: Option<String>,
    /// Usage.
    pub usage: AnthropicUsageOut,
}

/// A message id: the chat id, prefixed `msg_` unless it already is.
pub fn message_id(id: &str) -> String {
    if id.starts_with("msg_") {
        id.to_owned()
    } else {
        format!("msg_{id}")
    }
}

/// The reasoning text of a message's or delta's extra fields.
pub fn reasoning(rest: &serde_json::Map<String, Value>) -> Option<&str> {
    ["reasoning_content", "reasoning"]
        .iter()
        .find_map(|k| rest.get(*k).and_then(Value::as_str))
        .filter(|s| !s.is_empty())
}

/// The Anthropic message for a chat answer; `Err` when a tool call's arguments are not a
/// JSON object (Anthropic's `input` must be one).
pub fn message(chat: ChatResponse) -> Result<OutMessage, Failure> {
    let usage = chat
        .usage
        .as_ref()
        .map(AnthropicUsageOut::from)
        .unwrap_or_default();
    let choice = chat.choices.into_iter().next();
    let mut content = Vec::new();
    let mut stop = stop_reason(choice.as_ref().and_then(|c| c.finish_reason.as_deref()));
    if let Some(choice) = choice {
        let m = choice.message;
        if let Some(r) = reasoning(&m.rest) {
            content.push(OutBlock::Thinking {
                thinking: r.to_owned(),
                signature: String::new(),
            });
        }
        if let Some(text) = m.content.filter(|t| !t.is_empty()) {
            content.push(OutBlock::Text { text });
        }
        if let Some(refusal) = m.rest.get("refusal").and_then(Value::as_str) {
            content.push(OutBlock::Text {
                text: refusal.to_owned(),
            });
            stop = "refusal";
        }
        for call in m.tool_calls.into_iter().flatten() {
            content.push(OutBlock::ToolUse {
                input: tool_input(&call.function.arguments)?,
                id: call.id,
                name: call.function.name,
            });
        }
    }
    Ok(OutMessage {
        id: message_id(&chat.id),
        kind: "message",
        role: "assistant",
        model: chat.model,
        content,
        stop_reason: stop,
        stop_sequence: None,
        usage,
    })
}

/// A tool call's arguments as Anthropic's `input` object (empty arguments are `{}`).
pub fn tool_input(arguments: &str) -> Result<Value, Failure> {
    if arguments.trim().is_empty() {
        return Ok(Value::Object(serde_json::Map::new()));
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err(Failure::protocol(
            "the backend's tool call arguments are not a JSON object",
        )),
    }
}

/// Status, Anthropic error type and message for a gateway error.
pub fn error_parts(e: &GatewayError) -> (StatusCode, &'static str, String) {
    let (status, _, _) = e.parts();
    let mut message = e.body().error.message;
    // Anthropic's errors have no `param`: the field goes in front, as Anthropic writes it.
    if let GatewayError::BadRequest { param: Some(p), .. } = e
        && !message.contains(p.as_str())
    {
        message = format!(
            "{}: {message}",
            crate::error::clip(p, crate::error::MAX_QUOTE)
        );
    }
    let status = match e {
        // Anthropic's own status for an overloaded service, which its SDKs retry.
        GatewayError::Upstream(f) if f.kind == FailureKind::Overloaded => {
            StatusCode::from_u16(529).unwrap_or(status)
        }
        _ => status,
    };
    (status, error_type(status.as_u16()), message)
}

/// The gateway's error as Anthropic's JSON error, keeping the headers the OpenAI door sets
/// (`retry-after`, `www-authenticate`).
pub fn error_response(e: GatewayError) -> axum::response::Response {
    let (status, kind, message) = error_parts(&e);
    let body = serde_json::to_vec(&error_body(kind, &message)).unwrap_or_default();
    let (mut parts, _) = e.into_response().into_parts();
    parts.status = status;
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    http::Response::from_parts(parts, Body::from(body))
}

/// A stream failure as Anthropic's `error` event.
pub fn error_event(failure: &Failure) -> Bytes {
    let (_, kind, message) = error_parts(&GatewayError::Upstream(failure.clone()));
    let data = error_body(kind, &message).to_string();
    Bytes::from(format!("event: error\ndata: {data}\n\n"))
}
