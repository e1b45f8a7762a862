//! OpenAI chat request → Converse request body (see the parent module for the mapping).

use std::borrow::Cow;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::providers::RequestError;
use crate::wire::openai::{ChatRequest, Content, ContentPart, Message, Role, Stop};

/// Request fields that carry no meaning Bedrock could honour and are dropped.
const DROPPED_FIELDS: &[&str] = &[
    "metadata",
    "store",
    "service_tier",
    "prompt_cache_key",
    "safety_identifier",
];

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ConverseRequest<'a> {
    messages: Vec<TurnOut<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    system: Vec<SystemBlock<'a>>,
    #[serde(skip_serializing_if = "InferenceConfig::is_empty")]
    inference_config: InferenceConfig<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_config: Option<ToolConfig<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_config: Option<OutputConfig<'a>>,
}

#[derive(Serialize)]
struct TurnOut<'a> {
    role: &'static str,
    content: Vec<BlockOut<'a>>,
}

#[derive(Serialize)]
struct SystemBlock<'a> {
    text: Cow<'a, str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum BlockOut<'a> {
    Text(&'a str),
    Image {
        format: &'static str,
        source: ImageSource<'a>,
    },
    #[serde(rename_all = "camelCase")]
    ToolUse {
        tool_use_id: &'a str,
        name: &'a str,
        input: Value,
    },
    #[serde(rename_all = "camelCase")]
    ToolResult {
        tool_use_id: &'a str,
        content: Vec<SystemBlock<'a>>,
    },
}

#[derive(Serialize)]
struct ImageSource<'a> {
    bytes: &'a str,
}

#[derive(Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct InferenceConfig<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    stop_sequences: Vec<&'a str>,
}

impl InferenceConfig<'_> {
    fn is_empty(&self) -> bool {
        self.max_tokens.is_none()
            && self.temperature.is_none()
            && self.top_p.is_none()
            && self.stop_sequences.is_empty()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolConfig<'a> {
    tools: Vec<ToolOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<ToolChoiceOut<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolOut<'a> {
    tool_spec: ToolSpec<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolSpec<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    input_schema: JsonDoc<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    strict: Option<bool>,
}

#[derive(Serialize)]
struct JsonDoc<'a> {
    json: Cow<'a, Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "lowercase")]
enum ToolChoiceOut<'a> {
    Auto {},
    Any {},
    Tool { name: &'a str },
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OutputConfig<'a> {
    text_format: TextFormat<'a>,
}

#[derive(Serialize)]
struct TextFormat<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    structure: FormatStructure<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FormatStructure<'a> {
    json_schema: JsonSchemaOut<'a>,
}

#[derive(Serialize)]
struct JsonSchemaOut<'a> {
    schema: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
}

/// The Converse body for an OpenAI request.
pub(super) fn converse_body(req: &ChatRequest) -> Result<ConverseRequest<'_>, RequestError> {
    check_unsupported(req)?;
    let mut system = Vec::new();
    let mut turns: Vec<TurnOut<'_>> = Vec::new();
    let mut has_tool_blocks = false;
    for msg in &req.messages {
        let (role, blocks) = match msg.role {
            Role::System | Role::Developer => {
                let text = text_only(msg)?;
                if !text.trim().is_empty() {
                    system.push(SystemBlock {
                        text: Cow::Owned(text),
                    });
                }
                continue;
            }
            Role::User => ("user", content_blocks(msg)?),
            Role::Assistant => {
                let mut blocks = content_blocks(msg)?;
                for call in msg.tool_calls.iter().flatten() {
                    has_tool_blocks = true;
                    blocks.push(BlockOut::ToolUse {
                        tool_use_id: &call.id,
                        name: &call.function.name,
                        input: tool_input(&call.function.arguments)?,
                    });
                }
                ("assistant", blocks)
            }
            Role::Tool => {
                has_tool_blocks = true;
                let id = msg.tool_call_id.as_deref().ok_or_else(|| {
                    RequestError::new("a tool message needs tool_call_id", Some("messages"))
                })?;
                let text = text_only(msg)?;
                // Bedrock refuses blank text blocks: an empty result has no content blocks.
                let content = if text.trim().is_empty() {
                    Vec::new()
                } else {
                    vec![SystemBlock {
                        text: Cow::Owned(text),
                    }]
                };
                (
                    "user",
                    vec![BlockOut::ToolResult {
                        tool_use_id: id,
                        content,
                    }],
                )
            }
        };
        if blocks.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some(last) if last.role == role => last.content.extend(blocks),
            _ => turns.push(TurnOut {
                role,
                content: blocks,
            }),
        }
    }
    let stop = match &req.stop {
        None => Vec::new(),
        Some(Stop::One(s)) => vec![s.as_str()],
        Some(Stop::Many(v)) => v.iter().map(String::as_str).collect(),
    };
    Ok(ConverseRequest {
        messages: turns,
        system,
        inference_config: InferenceConfig {
            max_tokens: req.output_limit(),
            temperature: req.temperature,
            top_p: req.top_p,
            stop_sequences: stop,
        },
        tool_config: tool_config(req, has_tool_blocks)?,
        output_config: output_config(req)?,
    })
}

/// Refuses fields Converse cannot honour.
fn check_unsupported(req: &ChatRequest) -> Result<(), RequestError> {
    if req.n.is_some_and(|n| n > 1) {
        return Err(RequestError::new(
            "Bedrock returns one choice: n must be 1",
            Some("n"),
        ));
    }
    for (key, value) in &req.rest {
        let harmless = match key.as_str() {
            k if DROPPED_FIELDS.contains(&k) => true,
            "parallel_tool_calls" => value.as_bool() != Some(false),
            "logprobs" => value.as_bool() != Some(true),
            "top_logprobs" | "frequency_penalty" | "presence_penalty" => {
                value.is_null() || value.as_f64() == Some(0.0)
            }
            "logit_bias" => value.is_null() || value.as_object().is_some_and(Map::is_empty),
            _ => value.is_null(),
        };
        if !harmless {
            return Err(RequestError::new(
                format!("{key} is not supported by Bedrock Converse"),
                Some(key),
            ));
        }
    }
    Ok(())
}

/// The text of a system or tool message, whose Converse counterparts take only text here.
fn text_only(msg: &Message) -> Result<String, RequestError> {
    if let Some(Content::Parts(parts)) = &msg.content
        && parts.iter().any(|p| !matches!(p, ContentPart::Text { .. }))
    {
        return Err(RequestError::new(
            "only text parts are supported in system, developer and tool messages for Bedrock",
            Some("messages"),
        ));
    }
    Ok(msg.text_content())
}

/// The content blocks of a user or assistant message (text and images).
fn content_blocks(msg: &Message) -> Result<Vec<BlockOut<'_>>, RequestError> {
    let mut blocks = Vec::new();
    match &msg.content {
        None => {}
        Some(Content::Text(text)) if text.trim().is_empty() => {}
        Some(Content::Text(text)) => blocks.push(BlockOut::Text(text)),
        Some(Content::Parts(parts)) => {
            for part in parts {
                match part {
                    ContentPart::Text { text } if text.trim().is_empty() => {}
                    ContentPart::Text { text } => blocks.push(BlockOut::Text(text)),
                    ContentPart::ImageUrl { image_url } => {
                        let Some((media_type, data)) = image_url.as_data() else {
                            return Err(RequestError::new(
                                "Bedrock Converse needs image bytes: send images as base64 data: URLs, not remote URLs",
                                Some("messages"),
                            ));
                        };
                        let format = match media_type {
                            "image/png" => "png",
                            "image/jpeg" | "image/jpg" => "jpeg",
                            "image/gif" => "gif",
                            "image/webp" => "webp",
                            other => {
                                return Err(RequestError::new(
                                    format!("image type {other} is not supported by Bedrock"),
                                    Some("messages"),
                                ));
                            }
                        };
                        blocks.push(BlockOut::Image {
                            format,
                            source: ImageSource { bytes: data },
                        });
                    }
                    ContentPart::Other(_) => {
                        return Err(RequestError::new(
                            "only text and image parts are supported by Bedrock Converse",
                            Some("messages"),
                        ));
                    }
                }
            }
        }
    }
    Ok(blocks)
}

/// Tool-call arguments as the JSON object Converse wants.
fn tool_input(arguments: &str) -> Result<Value, RequestError> {
    if arguments.trim().is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    serde_json::from_str(arguments)
        .map_err(|_| RequestError::new("tool call arguments must be JSON", Some("messages")))
}

fn tool_config(
    req: &ChatRequest,
    has_tool_blocks: bool,
) -> Result<Option<ToolConfig<'_>>, RequestError> {
    let tools = req.tools.as_deref().unwrap_or_default();
    let choice = match &req.tool_choice {
        None => None,
        Some(Value::String(s)) => match s.as_str() {
            "auto" => Some(ToolChoiceOut::Auto {}),
            "required" => Some(ToolChoiceOut::Any {}),
            "none" if has_tool_blocks => {
                return Err(RequestError::new(
                    "Bedrock cannot forbid tool calls in a conversation that holds tool calls: tool_choice none is not supported here",
                    Some("tool_choice"),
                ));
            }
            "none" => return Ok(None),
            other => {
                return Err(RequestError::new(
                    format!("unknown tool_choice {other:?}"),
                    Some("tool_choice"),
                ));
            }
        },
        Some(v) => match v.pointer("/function/name").and_then(Value::as_str) {
            Some(name) if v.get("type").and_then(Value::as_str) == Some("function") => {
                Some(ToolChoiceOut::Tool { name })
            }
            _ => {
                return Err(RequestError::new(
                    "tool_choice must be none, auto, required or a function",
                    Some("tool_choice"),
                ));
            }
        },
    };
    if tools.is_empty() {
        if has_tool_blocks {
            return Err(RequestError::new(
                "Bedrock needs the tools declared when the conversation holds tool calls",
                Some("tools"),
            ));
        }
        if matches!(
            choice,
            Some(ToolChoiceOut::Any {} | ToolChoiceOut::Tool { .. })
        ) {
            return Err(RequestError::new(
                "tool_choice requires tools",
                Some("tool_choice"),
            ));
        }
        return Ok(None);
    }
    let empty_schema = || Cow::Owned(serde_json::json!({"type": "object", "properties": {}}));
    let tools = tools
        .iter()
        .map(|t| {
            if t.kind != "function" {
                return Err(RequestError::new(
                    format!("tool type {} is not supported by Bedrock", t.kind),
                    Some("tools"),
                ));
            }
            let f = &t.function;
            Ok(ToolOut {
                tool_spec: ToolSpec {
                    name: &f.name,
                    description: f.description.as_deref(),
                    input_schema: JsonDoc {
                        json: f
                            .parameters
                            .as_ref()
                            .map_or_else(empty_schema, Cow::Borrowed),
                    },
                    strict: f.strict.filter(|s| *s),
                },
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(Some(ToolConfig {
        tools,
        tool_choice: choice,
    }))
}

fn output_config(req: &ChatRequest) -> Result<Option<OutputConfig<'_>>, RequestError> {
    let Some(format) = &req.response_format else {
        return Ok(None);
    };
    match format.get("type").and_then(Value::as_str) {
        Some("text") => Ok(None),
        Some("json_schema") => {
            let spec = format.get("json_schema");
            let schema = spec.and_then(|s| s.get("schema")).ok_or_else(|| {
                RequestError::new(
                    "response_format json_schema needs json_schema.schema",
                    Some("response_format"),
                )
            })?;
            Ok(Some(OutputConfig {
                text_format: TextFormat {
                    kind: "json_schema",
                    structure: FormatStructure {
                        json_schema: JsonSchemaOut {
                            schema: schema.to_string(),
                            name: spec.and_then(|s| s.get("name")).and_then(Value::as_str),
                            description: spec
                                .and_then(|s| s.get("description"))
                                .and_then(Value::as_str),
                        },
                    },
                },
            }))
        }
        Some("json_object") => Err(RequestError::new(
            "Bedrock has no schema-less JSON mode: use response_format json_schema",
            Some("response_format"),
        )),
        _ => Err(RequestError::new(
            "unknown response_format type",
            Some("response_format"),
        )),
    }
}

/// Percent-encodes one path segment, keeping only RFC 3986 unreserved characters.
pub(super) fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
