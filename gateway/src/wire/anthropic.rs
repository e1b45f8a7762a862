//! Anthropic Messages wire types for the gateway's `/v1/messages` door.
//!
//! A request is kept twice: the client's exact bytes ([`MessagesRequest::raw`]), which an
//! Anthropic backend receives with only `model` replaced (every field, known or not, byte
//! for byte), and a typed view ([`MessagesBody`]) of what translation to other providers
//! reads. The typed view names only the fields it translates and keeps the rest in `rest`
//! maps, so translation can refuse what it cannot express instead of dropping it.

use std::{borrow::Cow, fmt};

use serde::{
    Deserialize, Deserializer,
    de::{self, MapAccess, Visitor},
};
use serde_json::{Map, Value, value::RawValue};

/// `POST /v1/messages` (and `/v1/messages/count_tokens`) body.
#[derive(Debug)]
pub struct MessagesRequest {
    /// The client's body as it came.
    pub raw: Box<RawValue>,
    /// The typed view.
    pub body: MessagesBody,
    /// `anthropic-version` and `anthropic-beta` from the client, for Anthropic backends.
    pub forward_headers: Vec<(http::HeaderName, http::HeaderValue)>,
}

impl<'de> Deserialize<'de> for MessagesRequest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        let de = &mut serde_json::Deserializer::from_str(raw.get());
        let body: MessagesBody = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            de::Error::custom(format_args!("invalid `{path}`: {}", e.into_inner()))
        })?;
        Ok(Self {
            raw,
            body,
            forward_headers: Vec::new(),
        })
    }
}

impl MessagesRequest {
    /// The client's body with `model` set to `model`: every other top-level field keeps
    /// its exact bytes and order.
    pub fn with_model(&self, model: &str) -> Result<Vec<u8>, serde_json::Error> {
        let fields: TopLevel<'_> = serde_json::from_str(self.raw.get())?;
        let mut out = Vec::with_capacity(self.raw.get().len() + model.len());
        out.push(b'{');
        let mut first = true;
        let mut push_key = |out: &mut Vec<u8>, key: &str| -> Result<(), serde_json::Error> {
            if !first {
                out.push(b',');
            }
            first = false;
            serde_json::to_writer(&mut *out, key)?;
            out.push(b':');
            Ok(())
        };
        push_key(&mut out, "model")?;
        serde_json::to_writer(&mut out, model)?;
        for (key, value) in &fields.0 {
            if key == "model" {
                continue;
            }
            push_key(&mut out, key)?;
            out.extend_from_slice(value.get().as_bytes());
        }
        out.push(b'}');
        Ok(out)
    }

    /// Whether the client asked for a stream.
    pub fn is_stream(&self) -> bool {
        self.body.stream.unwrap_or(false)
    }
}

/// A JSON object's fields in order, each value as its exact text.
struct TopLevel<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for TopLevel<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> Visitor<'de> for Fields {
            type Value = TopLevel<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut fields = Vec::new();
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    fields.push((key, map.next_value::<&'de RawValue>()?));
                }
                Ok(TopLevel(fields))
            }
        }
        d.deserialize_map(Fields)
    }
}

/// The typed view of a Messages request.
#[derive(Clone, Debug, Deserialize)]
pub struct MessagesBody {
    /// The model (route name or alias).
    pub model: String,
    /// The conversation.
    pub messages: Vec<InputMessage>,
    /// Output-token limit (required by `/v1/messages`, absent for `count_tokens`).
    #[serde(default)]
    pub max_tokens: Option<u32>,
    /// A string or text blocks.
    #[serde(default)]
    pub system: Option<System>,
    /// Stream the answer as server-sent events.
    #[serde(default)]
    pub stream: Option<bool>,
    /// Sampling temperature (0–1).
    #[serde(default)]
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    #[serde(default)]
    pub top_p: Option<f64>,
    /// Top-k sampling.
    #[serde(default)]
    pub top_k: Option<u32>,
    /// Custom stop sequences.
    #[serde(default)]
    pub stop_sequences: Option<Vec<String>>,
    /// Tools the model may call.
    #[serde(default)]
    pub tools: Option<Vec<ToolDef>>,
    /// How the model uses the tools.
    #[serde(default)]
    pub tool_choice: Option<ToolChoice>,
    /// `{"user_id": …}`.
    #[serde(default)]
    pub metadata: Option<Metadata>,
    /// Extended thinking (`{"type":"enabled","budget_tokens":N}` or `disabled`).
    #[serde(default)]
    pub thinking: Option<Value>,
    /// Every other field (`service_tier`, `container`, `mcp_servers`, later ones).
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// `system`: a string or text blocks.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum System {
    /// Plain text.
    Text(String),
    /// Blocks (text, with `cache_control`).
    Blocks(Vec<Block>),
}

/// One input message.
#[derive(Clone, Debug, Deserialize)]
pub struct InputMessage {
    /// `user` or `assistant`.
    pub role: InputRole,
    /// Text or blocks.
    pub content: InputContent,
}

/// Who wrote an input message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputRole {
    /// The user (tool results included).
    User,
    /// The model (tool calls included).
    Assistant,
}

/// A message's content: a string or blocks.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum InputContent {
    /// Plain text.
    Text(String),
    /// Content blocks.
    Blocks(Vec<Block>),
}

/// One content block.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    /// Text.
    Text {
        /// The text.
        text: String,
        /// `cache_control`, `citations`, later fields.
        #[serde(flatten)]
        rest: Map<String, Value>,
    },
    /// An image.
    Image {
        /// `{"type":"base64","media_type","data"}`, `{"type":"url","url"}` or a file.
        source: Value,
        /// `cache_control`, later fields.
        #[serde(flatten)]
        rest: Map<String, Value>,
    },
    /// A call the model made.
    ToolUse {
        /// Call id.
        id: String,
        /// Tool name.
        name: String,
        /// Arguments.
        input: Value,
        /// `cache_control`, later fields.
        #[serde(flatten)]
        rest: Map<String, Value>,
    },
    /// A tool's result.
    ToolResult {
        /// The call it answers.
        tool_use_id: String,
        /// A string or blocks.
        #[serde(default)]
        content: Option<InputContent>,
        /// Whether the tool failed.
        #[serde(default)]
        is_error: Option<bool>,
        /// `cache_control`, later fields.
        #[serde(flatten)]
        rest: Map<String, Value>,
    },
    /// The model's earlier thinking.
    Thinking {
        /// The thinking text.
        thinking: String,
        /// Anthropic's signature.
        #[serde(default)]
        signature: Option<String>,
    },
    /// Thinking Anthropic encrypted.
    RedactedThinking {
        /// The encrypted data.
        data: String,
    },
    /// Documents, search results, server-tool blocks, later types.
    #[serde(untagged)]
    Other(Value),
}

/// A tool definition: a custom tool (`input_schema`) or a server tool (`type` names it).
#[derive(Clone, Debug, Deserialize)]
pub struct ToolDef {
    /// Name.
    pub name: String,
    /// `custom` (or absent) for client tools, else a server tool's versioned type.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// What it does.
    #[serde(default)]
    pub description: Option<String>,
    /// JSON Schema of the input.
    #[serde(default)]
    pub input_schema: Option<Value>,
    /// `cache_control`, server-tool settings, later fields.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// `tool_choice`.
#[derive(Clone, Debug, Deserialize)]
pub struct ToolChoice {
    /// `auto`, `any`, `tool` or `none`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The tool, for `tool`.
    #[serde(default)]
    pub name: Option<String>,
    /// At most one tool call.
    #[serde(default)]
    pub disable_parallel_tool_use: Option<bool>,
}

/// `metadata`.
#[derive(Clone, Debug, Deserialize)]
pub struct Metadata {
    /// An opaque end-user id.
    #[serde(default)]
    pub user_id: Option<String>,
}

/// The Anthropic error type for an HTTP status, as Anthropic documents them.
pub fn error_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    }
}

/// `{"type":"error","error":{"type","message"}}`.
pub fn error_body(kind: &str, message: &str) -> Value {
    serde_json::json!({"type": "error", "error": {"type": kind, "message": message}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_is_replaced_and_every_other_byte_kept() {
        let body = r#"{"model":"claude-route","max_tokens":1024,"x_future":{"a":[1.50,2e3]},"messages":[{"role":"assistant","content":[{"type":"thinking","thinking":"hm","signature":"EqQBCkYIAR\u002fsig=="}]}],"system":[{"type":"text","text":"s","cache_control":{"type":"ephemeral","ttl":"1h"}}]}"#;
        let req: MessagesRequest = serde_json::from_str(body).unwrap();
        let out = String::from_utf8(req.with_model("claude-sonnet-4-5").unwrap()).unwrap();
        assert_eq!(
            out,
            body.replace("claude-route", "claude-sonnet-4-5"),
            "numbers, escapes and unknown fields unchanged"
        );
    }

    #[test]
    fn blocks_of_unknown_types_are_kept_for_translation_to_refuse() {
        let body = r#"{"model":"m","messages":[{"role":"user","content":[{"type":"document","source":{"type":"text","media_type":"text/plain","data":"d"}},{"type":"text","text":"hi"}]}]}"#;
        let req: MessagesRequest = serde_json::from_str(body).unwrap();
        let InputContent::Blocks(blocks) = &req.body.messages[0].content else {
            panic!("blocks expected");
        };
        assert!(matches!(&blocks[0], Block::Other(v) if v["type"] == "document"));
        assert!(matches!(&blocks[1], Block::Text { text, .. } if text == "hi"));
    }

    #[test]
    fn a_bad_field_is_named() {
        let err = serde_json::from_str::<MessagesRequest>(
            r#"{"model":"m","messages":[{"role":"robot","content":"x"}]}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("messages[0].role"), "{err}");
    }
}
