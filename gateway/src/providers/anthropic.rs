//! Anthropic Messages API: `POST {baseURL}/v1/messages` with `x-api-key` and
//! `anthropic-version: 2023-06-01` (a provider header of the same name wins).
//!
//! Request mapping:
//! - `system`/`developer` messages are hoisted, in order, into the top-level `system`, joined
//!   with blank lines. Consecutive messages of one role are merged (Anthropic requires turns to
//!   alternate); `role: tool` messages become `tool_result` blocks of a user turn, so consecutive
//!   results share one user message. Assistant `tool_calls` become `tool_use` blocks whose
//!   `input` is the parsed `arguments` (empty means `{}`). Images: a base64 `data:` URL becomes a
//!   `base64` source, an `http(s)` URL a `url` source. Empty text is left out (Anthropic refuses
//!   empty text blocks); a message left with no content is left out too.
//! - `max_tokens` (required upstream) is `max_completion_tokens`, else `max_tokens`, else
//!   [`DEFAULT_MAX_TOKENS`]. `temperature` and `top_p` pass as they are (Anthropic accepts
//!   temperature 0–1 and refuses more), `stop` becomes `stop_sequences`, `user` (else
//!   `safety_identifier`) becomes `metadata.user_id`. `tools` become `{name, description,
//!   input_schema}` (`strict` is dropped); `tool_choice` `auto`/`required`/`none`/a named
//!   function become `auto`/`any`/`none`/`tool`; `parallel_tool_calls: false` becomes
//!   `disable_parallel_tool_use`.
//! - `response_format: json_object` appends [`JSON_OBJECT_INSTRUCTION`] to the system prompt.
//!   `json_schema` adds a tool named [`JSON_TOOL_PREFIX`] + the schema name, whose
//!   `input_schema` is the schema, and forces it (`tool_choice: tool`; `any` when the client's
//!   own tools are offered too). Its `tool_use` input comes back as the message content (JSON
//!   text) with `finish_reason: stop`, streamed or not. The adapter is stateless, so the answer
//!   is recognised by the reserved prefix; client tools may not use it.
//! - Anthropic-only fields `thinking` and `top_k` pass through. `seed`, `store`, `metadata`,
//!   `service_tier`, `prompt_cache_key` and `modalities: ["text"]` are dropped as harmless; any
//!   other field is refused unless it is unset (`null`, `false`, `0`, empty), so penalties,
//!   `logit_bias`, `logprobs`, `reasoning_effort` or audio never silently change meaning.
//!   `n` other than 1 is refused. Message `name` is dropped.
//!
//! Response mapping: text blocks are joined into `content`; `tool_use` blocks become
//! `tool_calls` (arguments = compact JSON of `input`); thinking text goes to
//! `message.reasoning_content`, never into `content`. `stop_reason` `end_turn`,
//! `stop_sequence`, `pause_turn` → `stop`; `max_tokens`, `model_context_window_exceeded` →
//! `length`; `tool_use` → `tool_calls`; `refusal` → `content_filter`; values added later →
//! `stop`. Usage: prompt = `input_tokens` + cache reads + cache writes, cached = cache reads,
//! completion = `output_tokens` (thinking included; Anthropic reports no separate count).
//!
//! Errors (`{"type":"error","error":{"type","message"}}`, also as a stream `error` event) are
//! classified by type: `overloaded_error`, `rate_limit_error`, `request_too_large`,
//! `authentication_error`, `permission_error`/`billing_error`, `not_found_error`, `api_error`,
//! `timeout_error` as their names say. `invalid_request_error` is a context-window failure when
//! its message says the prompt is too long or exceeds the context, permission-denied when it is
//! about the account's credit balance or spend limit (another backend may serve), else a bad
//! request. Other types fall back to the HTTP status (in a stream, to a server error);
//! `retry-after` is kept.
//!
//! Streams: the event names of the 2023-06-01 format are handled; names added later are
//! ignored, as Anthropic's versioning policy announces new event types. Content-block types
//! other than text, tool_use and thinking (redacted thinking, server tools) and delta types
//! other than text, JSON input and thinking (signatures, citations) carry nothing a chat
//! completion can show and are skipped. `message_stop` is the end marker.

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::openai::json_request;
use super::{
    FINISH_CONTENT_FILTER, FINISH_LENGTH, FINISH_STOP, FINISH_TOOL_CALLS, Failure, FailureKind,
    ProviderAdapter, RequestError, Secret, Target, UpstreamRequest, classify_status, quote,
    retry_after,
};
use crate::wire::openai::{
    ChatRequest, ChatResponse, Choice, Content, ContentPart, FunctionCall, Message,
    ResponseMessage, Role, ToolCall, Usage,
};

#[path = "anthropic_stream.rs"]
mod stream;
pub use stream::AnthropicStream;

/// The Messages API version this adapter speaks.
pub const API_VERSION: &str = "2023-06-01";
/// `max_tokens` when the client sets no output limit (Anthropic requires one).
pub const DEFAULT_MAX_TOKENS: u32 = 4096;
/// Base URL when the provider has none (the compiler normally fills it in).
const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
/// Tool names starting with this carry a `json_schema` answer.
pub const JSON_TOOL_PREFIX: &str = "tollgate_json__";
/// Anthropic's limit on tool-name length.
const MAX_TOOL_NAME: usize = 64;
/// Appended to the system prompt for `response_format: json_object`.
pub const JSON_OBJECT_INSTRUCTION: &str =
    "Answer with exactly one JSON object and nothing else: no prose, no Markdown code fences.";

/// The Anthropic adapter.
#[derive(Clone, Copy, Debug, Default)]
pub struct Anthropic;

// === request ===

#[derive(Serialize)]
struct MessagesRequest<'a> {
    model: &'a str,
    max_tokens: u32,
    messages: Vec<Turn<'a>>,
    #[serde(skip_serializing_if = "String::is_empty")]
    system: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_k: Option<&'a Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    stop_sequences: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<ToolDef<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<ToolChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<Metadata<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking: Option<&'a Value>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
}

#[derive(Serialize)]
struct Turn<'a> {
    role: &'static str,
    content: Vec<Block<'a>>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block<'a> {
    Text {
        text: &'a str,
    },
    Image {
        source: ImageSource<'a>,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: Value,
    },
    ToolResult {
        tool_use_id: &'a str,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        content: Vec<Block<'a>>,
    },
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ImageSource<'a> {
    Base64 { media_type: &'a str, data: &'a str },
    Url { url: &'a str },
}

#[derive(Serialize)]
struct ToolDef<'a> {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    input_schema: Value,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ToolChoice {
    Auto {
        #[serde(skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    Any {
        #[serde(skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    Tool {
        name: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    None,
}

#[derive(Serialize)]
struct Metadata<'a> {
    user_id: &'a str,
}

fn bad(message: impl Into<String>, param: &str) -> RequestError {
    RequestError::new(message, Some(param))
}

/// Whether a field's value asks for nothing (`null`, `false`, `0`, empty).
fn is_unset(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => true,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Bool(true) => false,
    }
}

/// Checks the fields outside the typed ones; returns `parallel_tool_calls`.
fn check_extra_fields(rest: &Map<String, Value>) -> Result<Option<bool>, RequestError> {
    let mut parallel = None;
    for (key, value) in rest {
        match key.as_str() {
            "thinking" | "top_k" | "safety_identifier" => {}
            "store" | "metadata" | "service_tier" | "prompt_cache_key" => {}
            "modalities" if *value == Value::from(vec!["text"]) => {}
            "parallel_tool_calls" => {
                parallel = Some(value.as_bool().ok_or_else(|| {
                    bad(
                        "parallel_tool_calls must be a boolean",
                        "parallel_tool_calls",
                    )
                })?);
            }
            _ if is_unset(value) => {}
            _ => {
                return Err(bad(
                    format!("`{key}` is not supported by Anthropic backends"),
                    key,
                ));
            }
        }
    }
    Ok(parallel)
}

/// Text of a system or developer message.
fn system_text(m: &Message, i: usize) -> Result<String, RequestError> {
    if let Some(Content::Parts(parts)) = &m.content {
        for (j, part) in parts.iter().enumerate() {
            if !matches!(part, ContentPart::Text { .. }) {
                return Err(bad(
                    "system and developer messages can only hold text",
                    &format!("messages[{i}].content[{j}]"),
                ));
            }
        }
    }
    Ok(m.text_content())
}

/// Text and image blocks of a message's content.
fn content_blocks<'a>(
    content: Option<&'a Content>,
    i: usize,
) -> Result<Vec<Block<'a>>, RequestError> {
    let parts = match content {
        None => return Ok(Vec::new()),
        Some(Content::Text(t)) if t.is_empty() => return Ok(Vec::new()),
        Some(Content::Text(t)) => return Ok(vec![Block::Text { text: t }]),
        Some(Content::Parts(parts)) => parts,
    };
    let mut blocks = Vec::with_capacity(parts.len());
    for (j, part) in parts.iter().enumerate() {
        let param = || format!("messages[{i}].content[{j}]");
        match part {
            ContentPart::Text { text } if text.is_empty() => {}
            ContentPart::Text { text } => blocks.push(Block::Text { text }),
            ContentPart::ImageUrl { image_url } => {
                let source = if let Some((media_type, data)) = image_url.as_data() {
                    ImageSource::Base64 { media_type, data }
                } else if image_url.url.starts_with("https://")
                    || image_url.url.starts_with("http://")
                {
                    ImageSource::Url {
                        url: &image_url.url,
                    }
                } else {
                    return Err(bad(
                        "images must be an http(s) URL or a base64 data: URL",
                        &format!("{}.image_url.url", param()),
                    ));
                };
                blocks.push(Block::Image { source });
            }
            ContentPart::Other(_) => {
                return Err(bad(
                    "only text and image_url content parts are supported by Anthropic backends",
                    &param(),
                ));
            }
        }
    }
    Ok(blocks)
}

/// `tool_use` blocks of an assistant message's `tool_calls`.
fn tool_use_blocks<'a>(m: &'a Message, i: usize) -> Result<Vec<Block<'a>>, RequestError> {
    let mut blocks = Vec::new();
    for (j, call) in m.tool_calls.iter().flatten().enumerate() {
        let param = format!("messages[{i}].tool_calls[{j}].function.arguments");
        let args = call.function.arguments.trim();
        let input = if args.is_empty() {
            Value::Object(Map::new())
        } else {
            serde_json::from_str::<Value>(args).map_err(|e| {
                bad(
                    format!("tool call arguments are not valid JSON: {e}"),
                    &param,
                )
            })?
        };
        if !input.is_object() {
            return Err(bad("tool call arguments must be a JSON object", &param));
        }
        blocks.push(Block::ToolUse {
            id: &call.id,
            name: &call.function.name,
            input,
        });
    }
    Ok(blocks)
}

/// Appends a turn, merging it into the previous one when the role repeats.
fn push_turn<'a>(turns: &mut Vec<Turn<'a>>, role: &'static str, blocks: Vec<Block<'a>>) {
    if blocks.is_empty() {
        return;
    }
    match turns.last_mut() {
        Some(last) if last.role == role => last.content.extend(blocks),
        _ => turns.push(Turn {
            role,
            content: blocks,
        }),
    }
}

/// The conversation and the system prompt.
fn translate_messages(req: &ChatRequest) -> Result<(Vec<Turn<'_>>, Vec<String>), RequestError> {
    let mut system = Vec::new();
    let mut turns: Vec<Turn<'_>> = Vec::with_capacity(req.messages.len());
    for (i, m) in req.messages.iter().enumerate() {
        match m.role {
            Role::System | Role::Developer => {
                let text = system_text(m, i)?;
                if !text.is_empty() {
                    system.push(text);
                }
            }
            Role::User => push_turn(&mut turns, "user", content_blocks(m.content.as_ref(), i)?),
            Role::Assistant => {
                let mut blocks = content_blocks(m.content.as_ref(), i)?;
                blocks.extend(tool_use_blocks(m, i)?);
                push_turn(&mut turns, "assistant", blocks);
            }
            Role::Tool => {
                let tool_use_id = m.tool_call_id.as_deref().ok_or_else(|| {
                    bad(
                        "tool messages need a tool_call_id",
                        &format!("messages[{i}].tool_call_id"),
                    )
                })?;
                let content = content_blocks(m.content.as_ref(), i)?;
                push_turn(
                    &mut turns,
                    "user",
                    vec![Block::ToolResult {
                        tool_use_id,
                        content,
                    }],
                );
            }
        }
    }
    Ok((turns, system))
}

/// `tools`, checking that none uses the reserved prefix.
fn translate_tools(req: &ChatRequest) -> Result<Vec<ToolDef<'_>>, RequestError> {
    let mut tools = Vec::new();
    for (i, tool) in req.tools.iter().flatten().enumerate() {
        if tool.kind != "function" {
            return Err(bad(
                format!(
                    "tool type `{}` is not supported by Anthropic backends",
                    tool.kind
                ),
                &format!("tools[{i}].type"),
            ));
        }
        if tool.function.name.starts_with(JSON_TOOL_PREFIX) {
            return Err(bad(
                format!(
                    "tool names starting with `{JSON_TOOL_PREFIX}` are reserved by the gateway"
                ),
                &format!("tools[{i}].function.name"),
            ));
        }
        tools.push(ToolDef {
            name: tool.function.name.clone(),
            description: tool.function.description.as_deref(),
            input_schema: tool
                .function
                .parameters
                .clone()
                .unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}})),
        });
    }
    Ok(tools)
}

/// The client's `tool_choice`.
fn translate_tool_choice(
    choice: Option<&Value>,
    disable_parallel: Option<bool>,
) -> Result<Option<ToolChoice>, RequestError> {
    let invalid = || {
        bad(
            "tool_choice must be none, auto, required or a named function",
            "tool_choice",
        )
    };
    Ok(Some(match choice {
        None if disable_parallel.is_none() => return Ok(None),
        None => ToolChoice::Auto {
            disable_parallel_tool_use: disable_parallel,
        },
        Some(Value::String(s)) => match s.as_str() {
            "auto" => ToolChoice::Auto {
                disable_parallel_tool_use: disable_parallel,
            },
            "required" => ToolChoice::Any {
                disable_parallel_tool_use: disable_parallel,
            },
            "none" => ToolChoice::None,
            _ => return Err(invalid()),
        },
        Some(v) => {
            let name = v
                .pointer("/function/name")
                .and_then(Value::as_str)
                .ok_or_else(invalid)?;
            ToolChoice::Tool {
                name: name.to_owned(),
                disable_parallel_tool_use: disable_parallel,
            }
        }
    }))
}

/// Applies `response_format`: a forced answer tool, or a system instruction.
fn apply_response_format<'a>(
    format: Option<&'a Value>,
    system: &mut Vec<String>,
    tools: &mut Vec<ToolDef<'a>>,
    choice: &mut Option<ToolChoice>,
) -> Result<(), RequestError> {
    let Some(format) = format else {
        return Ok(());
    };
    match format.get("type").and_then(Value::as_str) {
        Some("text") => {}
        Some("json_object") => system.push(JSON_OBJECT_INSTRUCTION.to_owned()),
        Some("json_schema") => {
            let spec = format.get("json_schema");
            let field = |name: &str| spec.and_then(|s| s.get(name));
            let schema = field("schema").filter(|s| s.is_object()).ok_or_else(|| {
                bad(
                    "json_schema needs a schema object",
                    "response_format.json_schema.schema",
                )
            })?;
            let base = field("name").and_then(Value::as_str).unwrap_or("response");
            let mut name = format!("{JSON_TOOL_PREFIX}{base}");
            if let Some((cut, _)) = name.char_indices().nth(MAX_TOOL_NAME) {
                name.truncate(cut);
            }
            let forced = match choice.take() {
                // The client forces one of its own tools: that stays.
                Some(named @ ToolChoice::Tool { .. }) => named,
                // The client's tools stay callable; the answer tool ends the turn otherwise.
                Some(
                    ToolChoice::Auto {
                        disable_parallel_tool_use,
                    }
                    | ToolChoice::Any {
                        disable_parallel_tool_use,
                    },
                ) if !tools.is_empty() => ToolChoice::Any {
                    disable_parallel_tool_use,
                },
                None if !tools.is_empty() => ToolChoice::Any {
                    disable_parallel_tool_use: None,
                },
                _ => ToolChoice::Tool {
                    name: name.clone(),
                    disable_parallel_tool_use: None,
                },
            };
            tools.push(ToolDef {
                name,
                description: Some(
                    field("description")
                        .and_then(Value::as_str)
                        .unwrap_or(JSON_TOOL_DESCRIPTION),
                ),
                input_schema: schema.clone(),
            });
            *choice = Some(forced);
        }
        _ => {
            return Err(bad(
                "response_format type must be text, json_object or json_schema",
                "response_format.type",
            ));
        }
    }
    Ok(())
}

/// Description of the answer tool when the schema has none.
const JSON_TOOL_DESCRIPTION: &str =
    "Give your final answer by calling this tool: its input is the answer, in the required format.";

impl ProviderAdapter for Anthropic {
    type Stream = AnthropicStream;

    fn chat_request(
        &self,
        target: &Target<'_>,
        req: &ChatRequest,
    ) -> Result<UpstreamRequest, RequestError> {
        if req.n.is_some_and(|n| n != 1) {
            return Err(bad(
                "Anthropic backends return one choice: n must be 1",
                "n",
            ));
        }
        let parallel = check_extra_fields(&req.rest)?;
        let (messages, mut system) = translate_messages(req)?;
        let mut tools = translate_tools(req)?;
        let disable_parallel = (parallel == Some(false)).then_some(true);
        let mut tool_choice = translate_tool_choice(req.tool_choice.as_ref(), disable_parallel)?;
        apply_response_format(
            req.response_format.as_ref(),
            &mut system,
            &mut tools,
            &mut tool_choice,
        )?;
        if tools.is_empty() {
            tool_choice = None;
        }
        let user = req
            .user
            .as_deref()
            .or_else(|| req.rest.get("safety_identifier").and_then(Value::as_str))
            .filter(|u| !u.is_empty());
        let present = |key: &str| req.rest.get(key).filter(|v| !v.is_null());
        let body = MessagesRequest {
            model: target.model,
            max_tokens: req.output_limit().unwrap_or(DEFAULT_MAX_TOKENS),
            messages,
            system: system.join("\n\n"),
            temperature: req.temperature,
            top_p: req.top_p,
            top_k: present("top_k"),
            stop_sequences: req.stop_sequences(),
            tools,
            tool_choice,
            metadata: user.map(|user_id| Metadata { user_id }),
            thinking: present("thinking"),
            stream: req.is_stream(),
        };
        let body = serde_json::to_vec(&body)
            .map_err(|e| RequestError::new(format!("request cannot be encoded: {e}"), None))?;
        upstream_request(target, "/v1/messages", body, &[])
    }

    fn chat_response(&self, target: &Target<'_>, body: &[u8]) -> Result<ChatResponse, Failure> {
        let msg: MessageBody = serde_json::from_slice(body).map_err(|e| {
            Failure::protocol(format!(
                "unreadable Anthropic message ({e}): {}",
                quote(body)
            ))
        })?;
        Ok(msg.into_chat(target))
    }

    fn error(&self, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Failure {
        let (kind, message) = match serde_json::from_slice::<ErrorEnvelope>(body) {
            Ok(e) => (
                e.error.kind().unwrap_or_else(|| classify_status(status)),
                e.error.describe(),
            ),
            Err(_) => (classify_status(status), quote(body)),
        };
        Failure {
            kind,
            status: Some(status.as_u16()),
            message,
            retry_after: retry_after(headers),
        }
    }

    fn stream(&self, target: &Target<'_>) -> Self::Stream {
        AnthropicStream::new(target)
    }
}

// === response ===

#[derive(Deserialize)]
struct MessageBody {
    id: String,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    content: Vec<ResponseBlock>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: AnthropicUsage,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ResponseBlock {
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
    Thinking {
        thinking: String,
    },
    /// Redacted thinking, server-tool blocks and types added later.
    #[serde(other)]
    Other,
}

/// Anthropic's usage; every field may be absent or null (stream deltas carry only some).
#[derive(Clone, Copy, Debug, Default, Deserialize)]
pub(crate) struct AnthropicUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    /// The cache writes split by tier (newer API versions).
    #[serde(default)]
    cache_creation: Option<CacheCreation>,
}

/// `usage.cache_creation`: cache writes per tier.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
struct CacheCreation {
    #[serde(default)]
    ephemeral_5m_input_tokens: u64,
    #[serde(default)]
    ephemeral_1h_input_tokens: u64,
}

impl AnthropicUsage {
    /// Takes every count `newer` carries (stream counts are cumulative).
    pub(crate) fn merge(&mut self, newer: AnthropicUsage) {
        self.input_tokens = newer.input_tokens.or(self.input_tokens);
        self.output_tokens = newer.output_tokens.or(self.output_tokens);
        self.cache_creation_input_tokens = newer
            .cache_creation_input_tokens
            .or(self.cache_creation_input_tokens);
        self.cache_read_input_tokens = newer
            .cache_read_input_tokens
            .or(self.cache_read_input_tokens);
        self.cache_creation = newer.cache_creation.or(self.cache_creation);
    }

    pub(crate) fn to_openai(self) -> Usage {
        let cached = self.cache_read_input_tokens.unwrap_or(0);
        let writes = self.cache_creation_input_tokens.unwrap_or(0);
        let prompt = self.input_tokens.unwrap_or(0) + cached + writes;
        let cost = crate::cost::TokenUsage::from_anthropic(
            0,
            writes,
            self.cache_creation
                .map(|c| (c.ephemeral_5m_input_tokens, c.ephemeral_1h_input_tokens)),
            0,
            0,
        );
        Usage::new(prompt, self.output_tokens.unwrap_or(0), cached, 0)
            .with_cache_writes(cost.cache_write, cost.cache_write_1h)
    }
}

/// OpenAI's `finish_reason` for a stop reason; `json_only` when the only tool called was the
/// `json_schema` answer tool.
fn finish_reason(stop_reason: Option<&str>, json_only: bool) -> &'static str {
    match stop_reason {
        Some("max_tokens" | "model_context_window_exceeded") => FINISH_LENGTH,
        Some("tool_use") if !json_only => FINISH_TOOL_CALLS,
        Some("refusal") => FINISH_CONTENT_FILTER,
        _ => FINISH_STOP,
    }
}

impl MessageBody {
    fn into_chat(self, target: &Target<'_>) -> ChatResponse {
        let mut text = String::new();
        let mut thinking = String::new();
        let mut calls = Vec::new();
        let mut json_answer = false;
        for block in self.content {
            match block {
                ResponseBlock::Text { text: t } => text.push_str(&t),
                ResponseBlock::ToolUse { name, input, .. }
                    if name.starts_with(JSON_TOOL_PREFIX) =>
                {
                    json_answer = true;
                    text.push_str(&input.to_string());
                }
                ResponseBlock::ToolUse { id, name, input } => calls.push(ToolCall {
                    id,
                    kind: "function".to_owned(),
                    function: FunctionCall {
                        name,
                        arguments: input.to_string(),
                    },
                }),
                ResponseBlock::Thinking { thinking: t } => thinking.push_str(&t),
                ResponseBlock::Other => {}
            }
        }
        let finish = finish_reason(self.stop_reason.as_deref(), json_answer && calls.is_empty());
        let mut rest = Map::new();
        if !thinking.is_empty() {
            rest.insert("reasoning_content".to_owned(), Value::String(thinking));
        }
        ChatResponse {
            id: self.id,
            object: "chat.completion".to_owned(),
            created: target.created,
            model: self.model.unwrap_or_else(|| target.model.to_owned()),
            choices: vec![Choice {
                index: 0,
                message: ResponseMessage {
                    role: "assistant".to_owned(),
                    content: (!text.is_empty() || calls.is_empty()).then_some(text),
                    tool_calls: (!calls.is_empty()).then_some(calls),
                    rest,
                },
                finish_reason: Some(finish.to_owned()),
                rest: Map::new(),
            }],
            usage: Some(self.usage.to_openai()),
            rest: Map::new(),
        }
    }
}

// === errors ===

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: ErrorFields,
}

/// `{"type": "...", "message": "..."}`, in error bodies and stream `error` events.
#[derive(Debug, Deserialize)]
pub(crate) struct ErrorFields {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    message: String,
}

/// Phrases of `invalid_request_error` messages about the context window.
const CONTEXT_PHRASES: &[&str] = &[
    "prompt is too long",
    "exceed context limit",
    "context window",
    "context length",
];
/// Phrases of `invalid_request_error` messages about our account, not the request.
const ACCOUNT_PHRASES: &[&str] = &["credit balance", "spend limit"];

impl ErrorFields {
    /// The classification of Anthropic's error type, `None` for types added later.
    pub(crate) fn kind(&self) -> Option<FailureKind> {
        Some(match self.kind.as_str() {
            "overloaded_error" => FailureKind::Overloaded,
            "rate_limit_error" => FailureKind::RateLimited,
            "request_too_large" => FailureKind::ContentTooLarge,
            "authentication_error" => FailureKind::Authentication,
            "permission_error" | "billing_error" => FailureKind::PermissionDenied,
            "not_found_error" => FailureKind::NotFound,
            // A generic server error: the HTTP status (500, 503…) says more.
            "api_error" => return None,
            "timeout_error" => FailureKind::Timeout,
            "invalid_request_error" => {
                let message = self.message.to_ascii_lowercase();
                if CONTEXT_PHRASES.iter().any(|p| message.contains(p)) {
                    FailureKind::ContextWindowExceeded
                } else if ACCOUNT_PHRASES.iter().any(|p| message.contains(p)) {
                    FailureKind::PermissionDenied
                } else {
                    FailureKind::BadRequest
                }
            }
            _ => return None,
        })
    }

    pub(crate) fn describe(&self) -> String {
        quote(format!("{}: {}", self.kind, self.message).as_bytes())
    }
}

/// A request to `path` of an Anthropic provider: its base URL, the key as `x-api-key`, then
/// `forwarded` client headers where the provider sets none, then the default
/// `anthropic-version`. Shared by the chat adapter and the Messages door's passthrough.
pub(crate) fn upstream_request(
    target: &Target<'_>,
    path: &str,
    body: Vec<u8>,
    forwarded: &[(HeaderName, HeaderValue)],
) -> Result<UpstreamRequest, RequestError> {
    let base = target
        .provider
        .base_url
        .as_deref()
        .unwrap_or(DEFAULT_BASE_URL);
    let auth = match target.secret {
        Some(Secret::ApiKey(key)) => Some((
            HeaderName::from_static("x-api-key"),
            key.expose().to_owned(),
        )),
        _ => None,
    };
    let mut up = json_request(format!("{base}{path}"), target.provider, auth, body)?;
    for (name, value) in forwarded {
        up.headers.entry(name).or_insert_with(|| value.clone());
    }
    up.headers
        .entry(HeaderName::from_static("anthropic-version"))
        .or_insert(HeaderValue::from_static(API_VERSION));
    Ok(up)
}

#[cfg(test)]
#[path = "anthropic_tests.rs"]
mod tests;
