//! An Anthropic Messages request as the gateway's chat request, for every backend that is
//! not Anthropic (the adapters then translate it on, as for `/v1/chat/completions`).
//!
//! - `system` (a string or text blocks) becomes one system message.
//! - User text and images (`base64` → a `data:` URL, `url` → the URL) become content parts.
//!   `tool_result` blocks become `role: tool` messages, before the user's other content;
//!   their content may only be text (`is_error` has no chat equivalent: the text is sent as
//!   it is, and is what tells the model the tool failed).
//! - Assistant text is joined; `tool_use` blocks become `tool_calls` (arguments = compact
//!   JSON of `input`); `thinking` and `redacted_thinking` blocks of earlier turns are left
//!   out: chat APIs take no reasoning back, and Anthropic itself ignores them in earlier
//!   turns.
//! - `max_tokens` becomes `max_completion_tokens` for OpenAI and Azure (their newer models
//!   refuse `max_tokens`), `max_tokens` for the others; `temperature`, `top_p` as they are;
//!   `stop_sequences` → `stop`; `metadata.user_id` → `user`; `top_k` passes to
//!   OpenAI-compatible servers (vLLM, Ollama take it) and is refused by the rest.
//! - Custom tools → functions (`input_schema` → `parameters`); `tool_choice` `auto`/`any`/
//!   `tool`/`none` → `auto`/`required`/the named function/`none`;
//!   `disable_parallel_tool_use: true` → `parallel_tool_calls: false` (refused for Gemini
//!   and Bedrock, which cannot limit the calls).
//! - `cache_control` anywhere is dropped: a caching hint, it changes cost, not meaning.
//! - Refused with a 400 naming the field, because no chat backend can honour them: enabled
//!   `thinking`, server tools (web search, code execution…), `document`, `search_result`
//!   and other block types, images given as a file id, text `citations`, and any other
//!   top-level field that is set (`service_tier`, `container`, `mcp_servers`, fields added
//!   later).

use serde_json::{Map, Value};
use tollgate_crds::config::ProviderType;

use crate::{
    providers::RequestError,
    wire::{
        anthropic::{Block, InputContent, InputRole, MessagesBody, System, ToolChoice},
        openai::{
            ChatRequest, Content, ContentPart, FunctionCall, FunctionDef, ImageUrl, Message, Role,
            Stop, StreamOptions, Tool, ToolCall,
        },
    },
};

fn bad(message: impl Into<String>, param: &str) -> RequestError {
    RequestError::new(message, Some(param))
}

/// Whether a value asks for nothing (`null`, `false`, empty).
fn is_unset(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// Refuses a block's extra fields other than `cache_control`.
fn check_block_rest(
    rest: &Map<String, Value>,
    param: &str,
    backend: &str,
) -> Result<(), RequestError> {
    for (key, value) in rest {
        if key != "cache_control" && !is_unset(value) {
            return Err(bad(
                format!("`{key}` is not supported by {backend} backends; use an Anthropic backend"),
                &format!("{param}.{key}"),
            ));
        }
    }
    Ok(())
}

/// The chat request for `body`, to be sent to a backend of `provider`.
pub fn to_chat(body: &MessagesBody, provider: ProviderType) -> Result<ChatRequest, RequestError> {
    let backend = provider.as_str();
    for (key, value) in &body.rest {
        if !is_unset(value) {
            return Err(bad(
                format!("`{key}` is not supported by {backend} backends; use an Anthropic backend"),
                key,
            ));
        }
    }
    if let Some(thinking) = &body.thinking
        && thinking.get("type").and_then(Value::as_str) != Some("disabled")
        && !thinking.is_null()
    {
        return Err(bad(
            format!(
                "extended thinking is not supported by {backend} backends; use an Anthropic backend"
            ),
            "thinking",
        ));
    }
    let mut rest = Map::new();
    if let Some(k) = body.top_k {
        if provider != ProviderType::OpenAICompatible && provider != ProviderType::Mock {
            return Err(bad(
                format!("`top_k` is not supported by {backend} backends"),
                "top_k",
            ));
        }
        rest.insert("top_k".to_owned(), Value::from(k));
    }
    let mut messages = Vec::with_capacity(body.messages.len() + 1);
    if let Some(system) = &body.system {
        let text = system_text(system)?;
        if !text.is_empty() {
            messages.push(Message::text(Role::System, text));
        }
    }
    for (i, m) in body.messages.iter().enumerate() {
        match m.role {
            InputRole::User => user_messages(&m.content, i, backend, &mut messages)?,
            InputRole::Assistant => messages.push(assistant_message(&m.content, i, backend)?),
        }
    }
    let tools = tools(body, backend)?;
    let tool_choice = match &body.tool_choice {
        None => None,
        Some(choice) => Some(tool_choice(choice, provider, &mut rest)?),
    };
    let stream = body.stream.unwrap_or(false);
    let limit = body.max_tokens;
    let openai_limit = matches!(provider, ProviderType::OpenAI | ProviderType::AzureOpenAI);
    Ok(ChatRequest {
        model: body.model.clone(),
        messages,
        stream: stream.then_some(true),
        stream_options: stream.then(|| StreamOptions {
            include_usage: Some(true),
            rest: Map::new(),
        }),
        tools,
        tool_choice,
        response_format: None,
        n: None,
        stop: body
            .stop_sequences
            .clone()
            .filter(|s| !s.is_empty())
            .map(Stop::Many),
        max_tokens: limit.filter(|_| !openai_limit),
        max_completion_tokens: limit.filter(|_| openai_limit),
        temperature: body.temperature,
        top_p: body.top_p,
        seed: None,
        user: body
            .metadata
            .as_ref()
            .and_then(|m| m.user_id.clone())
            .filter(|u| !u.is_empty()),
        rest,
    })
}

fn system_text(system: &System) -> Result<String, RequestError> {
    match system {
        System::Text(t) => Ok(t.clone()),
        System::Blocks(blocks) => {
            let mut texts = Vec::with_capacity(blocks.len());
            for (j, block) in blocks.iter().enumerate() {
                match block {
                    Block::Text { text, .. } => texts.push(text.as_str()),
                    _ => {
                        return Err(bad(
                            "system blocks can only be text",
                            &format!("system[{j}]"),
                        ));
                    }
                }
            }
            Ok(texts.join("\n\n"))
        }
    }
}

/// The name of a block's type, for messages.
fn block_type(block: &Block) -> String {
    match block {
        Block::Text { .. } => "text".to_owned(),
        Block::Image { .. } => "image".to_owned(),
        Block::ToolUse { .. } => "tool_use".to_owned(),
        Block::ToolResult { .. } => "tool_result".to_owned(),
        Block::Thinking { .. } => "thinking".to_owned(),
        Block::RedactedThinking { .. } => "redacted_thinking".to_owned(),
        Block::Other(v) => v
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_owned(),
    }
}

/// Block types the typed view knows: one of them landing in [`Block::Other`] is malformed.
const KNOWN_BLOCKS: [&str; 6] = [
    "text",
    "image",
    "tool_use",
    "tool_result",
    "thinking",
    "redacted_thinking",
];

fn unsupported_block(block: &Block, param: &str, backend: &str) -> RequestError {
    let kind = block_type(block);
    if matches!(block, Block::Other(_)) && KNOWN_BLOCKS.contains(&kind.as_str()) {
        return bad(
            format!("this `{kind}` block lacks a required field or has one of the wrong type"),
            param,
        );
    }
    bad(
        format!(
            "`{}` blocks are not supported here by {backend} backends; use an Anthropic backend",
            block_type(block)
        ),
        param,
    )
}

fn image_part(source: &Value, param: &str, backend: &str) -> Result<ContentPart, RequestError> {
    let field = |name: &str| source.get(name).and_then(Value::as_str);
    let url = match field("type") {
        Some("base64") => match (field("media_type"), field("data")) {
            (Some(media), Some(data)) => format!("data:{media};base64,{data}"),
            _ => {
                return Err(bad(
                    "a base64 image source needs media_type and data",
                    &format!("{param}.source"),
                ));
            }
        },
        Some("url") => field("url")
            .ok_or_else(|| bad("a url image source needs url", &format!("{param}.source")))?
            .to_owned(),
        _ => {
            return Err(bad(
                format!("images must be base64 or url sources for {backend} backends"),
                &format!("{param}.source.type"),
            ));
        }
    };
    Ok(ContentPart::ImageUrl {
        image_url: ImageUrl { url, detail: None },
    })
}

/// A user turn: its tool results as tool messages, then its text and images.
fn user_messages(
    content: &InputContent,
    i: usize,
    backend: &str,
    out: &mut Vec<Message>,
) -> Result<(), RequestError> {
    let blocks = match content {
        InputContent::Text(t) => {
            out.push(Message::text(Role::User, t.clone()));
            return Ok(());
        }
        InputContent::Blocks(blocks) => blocks,
    };
    let mut parts = Vec::with_capacity(blocks.len());
    for (j, block) in blocks.iter().enumerate() {
        let param = format!("messages[{i}].content[{j}]");
        match block {
            Block::Text { text, rest } => {
                check_block_rest(rest, &param, backend)?;
                parts.push(ContentPart::Text { text: text.clone() });
            }
            Block::Image { source, rest } => {
                check_block_rest(rest, &param, backend)?;
                parts.push(image_part(source, &param, backend)?);
            }
            Block::ToolResult {
                tool_use_id,
                content,
                rest,
                ..
            } => {
                check_block_rest(rest, &param, backend)?;
                let text = match content {
                    None => String::new(),
                    Some(InputContent::Text(t)) => t.clone(),
                    Some(InputContent::Blocks(inner)) => {
                        let mut texts = Vec::with_capacity(inner.len());
                        for (k, b) in inner.iter().enumerate() {
                            match b {
                                Block::Text { text, .. } => texts.push(text.as_str()),
                                other => {
                                    return Err(unsupported_block(
                                        other,
                                        &format!("{param}.content[{k}]"),
                                        backend,
                                    ));
                                }
                            }
                        }
                        texts.join("\n")
                    }
                };
                let mut m = Message::text(Role::Tool, text);
                m.tool_call_id = Some(tool_use_id.clone());
                out.push(m);
            }
            other => return Err(unsupported_block(other, &param, backend)),
        }
    }
    if !parts.is_empty() {
        out.push(Message {
            content: Some(Content::Parts(parts)),
            ..Message::text(Role::User, "")
        });
    }
    Ok(())
}

/// An assistant turn: its text, and its tool calls.
fn assistant_message(
    content: &InputContent,
    i: usize,
    backend: &str,
) -> Result<Message, RequestError> {
    let blocks = match content {
        InputContent::Text(t) => return Ok(Message::text(Role::Assistant, t.clone())),
        InputContent::Blocks(blocks) => blocks,
    };
    let mut text = String::new();
    let mut calls = Vec::new();
    for (j, block) in blocks.iter().enumerate() {
        let param = format!("messages[{i}].content[{j}]");
        match block {
            Block::Text { text: t, rest } => {
                check_block_rest(rest, &param, backend)?;
                text.push_str(t);
            }
            Block::ToolUse {
                id,
                name,
                input,
                rest,
            } => {
                check_block_rest(rest, &param, backend)?;
                calls.push(ToolCall {
                    id: id.clone(),
                    kind: "function".to_owned(),
                    function: FunctionCall {
                        name: name.clone(),
                        arguments: input.to_string(),
                    },
                });
            }
            Block::Thinking { .. } | Block::RedactedThinking { .. } => {}
            other => return Err(unsupported_block(other, &param, backend)),
        }
    }
    let mut m = Message::text(Role::Assistant, text);
    if calls.is_empty() {
        return Ok(m);
    }
    if m.text_content().is_empty() {
        m.content = None;
    }
    m.tool_calls = Some(calls);
    Ok(m)
}

fn tools(body: &MessagesBody, backend: &str) -> Result<Option<Vec<Tool>>, RequestError> {
    let Some(defs) = &body.tools else {
        return Ok(None);
    };
    let mut tools = Vec::with_capacity(defs.len());
    for (i, t) in defs.iter().enumerate() {
        let param = format!("tools[{i}]");
        if let Some(kind) = t.kind.as_deref().filter(|k| *k != "custom") {
            return Err(bad(
                format!(
                    "server tool `{kind}` is not supported by {backend} backends; use an Anthropic backend"
                ),
                &format!("{param}.type"),
            ));
        }
        let schema = t.input_schema.clone().ok_or_else(|| {
            bad(
                "custom tools need an input_schema",
                &format!("{param}.input_schema"),
            )
        })?;
        check_block_rest(&t.rest, &param, backend)?;
        tools.push(Tool {
            kind: "function".to_owned(),
            function: FunctionDef {
                name: t.name.clone(),
                description: t.description.clone(),
                parameters: Some(schema),
                strict: None,
            },
        });
    }
    Ok((!tools.is_empty()).then_some(tools))
}

fn tool_choice(
    choice: &ToolChoice,
    provider: ProviderType,
    rest: &mut Map<String, Value>,
) -> Result<Value, RequestError> {
    if choice.disable_parallel_tool_use == Some(true) {
        if matches!(provider, ProviderType::Gemini | ProviderType::Bedrock) {
            return Err(bad(
                format!(
                    "`disable_parallel_tool_use` is not supported by {} backends",
                    provider.as_str()
                ),
                "tool_choice.disable_parallel_tool_use",
            ));
        }
        rest.insert("parallel_tool_calls".to_owned(), Value::Bool(false));
    }
    Ok(match choice.kind.as_str() {
        "auto" => Value::from("auto"),
        "any" => Value::from("required"),
        "none" => Value::from("none"),
        "tool" => {
            let name = choice
                .name
                .as_deref()
                .ok_or_else(|| bad("tool_choice of type tool needs a name", "tool_choice.name"))?;
            serde_json::json!({"type": "function", "function": {"name": name}})
        }
        other => {
            return Err(bad(
                format!("tool_choice type `{other}` is not one of auto, any, tool, none"),
                "tool_choice.type",
            ));
        }
    })
}

#[cfg(test)]
#[path = "to_chat_tests.rs"]
pub(crate) mod tests;
