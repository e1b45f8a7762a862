//! A Responses request as the gateway's chat request, for backends without a Responses API
//! (every provider but OpenAI and Azure OpenAI). The chat request then goes through the
//! backend's own adapter, so everything the adapters translate or refuse applies here too.
//!
//! - `instructions` → a leading system message; then the items of the stored conversation
//!   (`previous_response_id`), then `input`.
//! - `message` items (with or without `type`): roles `user`, `assistant`, `system`,
//!   `developer`; parts `input_text`/`output_text`/`text` → text, `refusal` → text,
//!   `input_image` with `image_url` → `image_url`. Assistant text is joined into one string.
//!   `input_file`, images by `file_id`, audio and video are refused.
//! - `function_call` → a tool call of the assistant turn (consecutive calls share one turn);
//!   `function_call_output` → a `tool` message (text parts joined).
//! - `reasoning` items are dropped (they replay nothing a chat API can take); any other item
//!   type (`item_reference`, hosted-tool calls) is refused naming it.
//! - `tools`: `function` tools → chat tools; built-in tools (`web_search`, `file_search`,
//!   `code_interpreter`, `computer_use_preview`, `image_generation`, `mcp`, …) run only on
//!   OpenAI and are refused naming their type. `tool_choice` `none`/`auto`/`required`/a named
//!   function translate; other choices are refused.
//! - `max_output_tokens` → `max_completion_tokens`; `temperature`, `top_p`, `user`,
//!   `parallel_tool_calls: false`, `safety_identifier`, `prompt_cache_key` carry over.
//!   `text.format` `json_object`/`json_schema` → `response_format`.
//! - `metadata` and `store` stay with the gateway (echoed, and `store` keeps the response);
//!   `include`, `truncation`, `service_tier`, `stream_options` and `text.verbosity` change
//!   nothing a translated backend can do and are ignored; `background: true`,
//!   `conversation`, `prompt`, `top_logprobs` and any other field that is set are refused.
//!
//! `reasoning.effort` depends on the backend and is applied per attempt (see `super`).

use serde_json::{Map, Value, json};

use crate::{
    providers::RequestError,
    wire::{
        openai::{
            ChatRequest, Content, ContentPart, FunctionCall, FunctionDef, ImageUrl, Message, Role,
            Tool, ToolCall,
        },
        responses::ResponsesRequest,
    },
};

/// Fields a translated backend ignores without changing the answer.
const IGNORED: &[&str] = &["include", "truncation", "service_tier", "stream_options"];
/// Fields carried into the chat request as they are (the adapters know them).
const CARRIED: &[&str] = &["safety_identifier", "prompt_cache_key"];

fn bad(message: impl Into<String>, param: &str) -> RequestError {
    RequestError::new(message, Some(param))
}

/// Whether a value is "not set": null, false, 0, "" or empty.
fn is_unset(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// The chat request for `req`, continuing the conversation `history` (earlier items).
pub fn to_chat(req: &ResponsesRequest, history: &[Value]) -> Result<ChatRequest, RequestError> {
    let mut rest = Map::new();
    for (key, value) in &req.rest {
        match key.as_str() {
            k if IGNORED.contains(&k) => {}
            k if CARRIED.contains(&k) => _ = rest.insert(k.to_owned(), value.clone()),
            _ if is_unset(value) => {}
            k => {
                return Err(bad(
                    format!(
                        "`{k}` is not supported by this route's backends (only OpenAI's Responses API runs it)"
                    ),
                    k,
                ));
            }
        }
    }
    if req.parallel_tool_calls == Some(false) {
        rest.insert("parallel_tool_calls".into(), Value::Bool(false));
    }
    let mut messages = Vec::new();
    if let Some(text) = req.instructions.as_deref().filter(|t| !t.is_empty()) {
        messages.push(Message::text(Role::System, text));
    }
    for item in history {
        add_item(&mut messages, item, "previous_response_id")?;
    }
    if let Some(input) = &req.input {
        for (i, item) in input.items().iter().enumerate() {
            add_item(&mut messages, item, &format!("input[{i}]"))?;
        }
    }
    Ok(ChatRequest {
        model: req.model.clone(),
        messages,
        stream: req.stream,
        stream_options: None,
        tools: tools(req.tools.as_deref())?,
        tool_choice: req.tool_choice.as_ref().map(tool_choice).transpose()?,
        response_format: response_format(req.text.as_ref())?,
        n: None,
        stop: None,
        max_tokens: None,
        max_completion_tokens: req.max_output_tokens,
        temperature: req.temperature,
        top_p: req.top_p,
        seed: None,
        user: req.user.clone(),
        rest,
    })
}

fn str_field<'a>(item: &'a Value, key: &str, at: &str) -> Result<&'a str, RequestError> {
    item.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("`{key}` must be a string"), &format!("{at}.{key}")))
}

/// Appends one input item to the chat messages.
fn add_item(messages: &mut Vec<Message>, item: &Value, at: &str) -> Result<(), RequestError> {
    let kind = match item.get("type") {
        None | Some(Value::Null) => "message",
        Some(Value::String(t)) => t.as_str(),
        Some(_) => return Err(bad("`type` must be a string", &format!("{at}.type"))),
    };
    match kind {
        "message" => messages.push(message(item, at)?),
        "function_call" => {
            let call = ToolCall {
                id: str_field(item, "call_id", at)?.to_owned(),
                kind: "function".into(),
                function: FunctionCall {
                    name: str_field(item, "name", at)?.to_owned(),
                    arguments: str_field(item, "arguments", at)?.to_owned(),
                },
            };
            match messages.last_mut() {
                Some(m) if m.role == Role::Assistant => {
                    m.tool_calls.get_or_insert_with(Vec::new).push(call);
                }
                _ => messages.push(Message {
                    role: Role::Assistant,
                    content: None,
                    name: None,
                    tool_calls: Some(vec![call]),
                    tool_call_id: None,
                    rest: Map::new(),
                }),
            }
        }
        "function_call_output" => {
            let call_id = str_field(item, "call_id", at)?;
            let output = match item.get("output") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Array(parts)) => {
                    let mut text = Vec::new();
                    for (j, part) in parts.iter().enumerate() {
                        match part.get("type").and_then(Value::as_str) {
                            Some("input_text" | "output_text" | "text") => {
                                text.push(str_field(part, "text", &format!("{at}.output[{j}]"))?);
                            }
                            other => {
                                return Err(bad(
                                    format!(
                                        "function_call_output parts of type `{}` are not supported by this route's backends (only text)",
                                        other.unwrap_or("?")
                                    ),
                                    &format!("{at}.output[{j}].type"),
                                ));
                            }
                        }
                    }
                    text.join("\n")
                }
                _ => {
                    return Err(bad(
                        "`output` must be a string or a list of text parts",
                        &format!("{at}.output"),
                    ));
                }
            };
            let mut m = Message::text(Role::Tool, output);
            m.tool_call_id = Some(call_id.to_owned());
            messages.push(m);
        }
        "reasoning" => {}
        other => {
            return Err(bad(
                format!(
                    "input items of type `{other}` are not supported by this route's backends (only OpenAI's Responses API runs them)"
                ),
                &format!("{at}.type"),
            ));
        }
    }
    Ok(())
}

/// A `message` item as a chat message.
fn message(item: &Value, at: &str) -> Result<Message, RequestError> {
    let role = match str_field(item, "role", at)? {
        "user" => Role::User,
        "assistant" => Role::Assistant,
        "system" => Role::System,
        "developer" => Role::Developer,
        other => {
            return Err(bad(
                format!("message role `{other}` is not one of user, assistant, system, developer"),
                &format!("{at}.role"),
            ));
        }
    };
    let content = match item.get("content") {
        Some(Value::String(s)) => Content::Text(s.clone()),
        Some(Value::Array(parts)) => {
            let mut out = Vec::with_capacity(parts.len());
            for (j, part) in parts.iter().enumerate() {
                out.push(content_part(part, &format!("{at}.content[{j}]"))?);
            }
            let only_text = out.iter().all(|p| matches!(p, ContentPart::Text { .. }));
            if role != Role::User && only_text {
                let text: Vec<&str> = out
                    .iter()
                    .filter_map(|p| match p {
                        ContentPart::Text { text } => Some(text.as_str()),
                        _ => None,
                    })
                    .collect();
                Content::Text(text.join(""))
            } else {
                Content::Parts(out)
            }
        }
        _ => {
            return Err(bad(
                "`content` must be a string or a list of content parts",
                &format!("{at}.content"),
            ));
        }
    };
    Ok(Message {
        role,
        content: Some(content),
        name: None,
        tool_calls: None,
        tool_call_id: None,
        rest: Map::new(),
    })
}

fn content_part(part: &Value, at: &str) -> Result<ContentPart, RequestError> {
    let kind = part.get("type").and_then(Value::as_str).unwrap_or("?");
    match kind {
        "input_text" | "output_text" | "text" => Ok(ContentPart::Text {
            text: str_field(part, "text", at)?.to_owned(),
        }),
        "refusal" => Ok(ContentPart::Text {
            text: str_field(part, "refusal", at)?.to_owned(),
        }),
        "input_image" => match part.get("image_url").and_then(Value::as_str) {
            Some(url) => Ok(ContentPart::ImageUrl {
                image_url: ImageUrl {
                    url: url.to_owned(),
                    detail: part
                        .get("detail")
                        .and_then(Value::as_str)
                        .filter(|d| *d != "auto")
                        .map(str::to_owned),
                },
            }),
            None => Err(bad(
                "images by `file_id` are not supported by this route's backends: send `image_url` (an https or data: URL)",
                &format!("{at}.image_url"),
            )),
        },
        other => Err(bad(
            format!("content parts of type `{other}` are not supported by this route's backends"),
            &format!("{at}.type"),
        )),
    }
}

/// `function` tools as chat tools; any other tool type is refused.
fn tools(tools: Option<&[Value]>) -> Result<Option<Vec<Tool>>, RequestError> {
    let Some(tools) = tools else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(tools.len());
    for (i, tool) in tools.iter().enumerate() {
        let at = format!("tools[{i}]");
        match tool.get("type").and_then(Value::as_str) {
            Some("function") => out.push(Tool {
                kind: "function".into(),
                function: FunctionDef {
                    name: str_field(tool, "name", &at)?.to_owned(),
                    description: tool
                        .get("description")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    parameters: tool.get("parameters").filter(|p| !p.is_null()).cloned(),
                    strict: tool.get("strict").and_then(Value::as_bool),
                },
            }),
            Some(other) => {
                return Err(bad(
                    format!(
                        "tool type `{other}` is built into OpenAI's Responses API and is not supported by this route's backends (only `function` tools translate)"
                    ),
                    &format!("{at}.type"),
                ));
            }
            None => return Err(bad("`type` must be a string", &format!("{at}.type"))),
        }
    }
    Ok(Some(out))
}

fn tool_choice(choice: &Value) -> Result<Value, RequestError> {
    match choice {
        Value::String(s) if matches!(s.as_str(), "none" | "auto" | "required") => {
            Ok(choice.clone())
        }
        Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("function") => {
            let name = o
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("`name` must be a string", "tool_choice.name"))?;
            Ok(json!({"type": "function", "function": {"name": name}}))
        }
        Value::Object(o) => Err(bad(
            format!(
                "tool_choice of type `{}` is not supported by this route's backends",
                o.get("type").and_then(Value::as_str).unwrap_or("?")
            ),
            "tool_choice",
        )),
        _ => Err(bad(
            "tool_choice must be none, auto, required or a function",
            "tool_choice",
        )),
    }
}

/// `text.format` as a chat `response_format`.
fn response_format(text: Option<&Value>) -> Result<Option<Value>, RequestError> {
    let Some(format) = text.and_then(|t| t.get("format")).filter(|f| !f.is_null()) else {
        return Ok(None);
    };
    match format.get("type").and_then(Value::as_str) {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(json!({"type": "json_object"}))),
        Some("json_schema") => {
            let mut schema = Map::new();
            schema.insert(
                "name".into(),
                Value::String(str_field(format, "name", "text.format")?.to_owned()),
            );
            for key in ["schema", "strict", "description"] {
                if let Some(v) = format.get(key).filter(|v| !v.is_null()) {
                    schema.insert(key.into(), v.clone());
                }
            }
            Ok(Some(
                json!({"type": "json_schema", "json_schema": Value::Object(schema)}),
            ))
        }
        _ => Err(bad(
            "text.format.type must be text, json_object or json_schema",
            "text.format.type",
        )),
    }
}
