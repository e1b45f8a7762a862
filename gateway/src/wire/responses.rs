//! OpenAI Responses API wire types (`POST /v1/responses`): the request as the gateway reads
//! it and the `response` object it writes for translated backends.
//!
//! Passthrough-first, like the chat types: the request names only the fields the gateway
//! translates and keeps everything else in `rest`, so an OpenAI backend receives the client's
//! request whole. Input items, tools and formats stay JSON values here: their many shapes are
//! read once, by the translation, which names the offending item in its errors.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `POST /v1/responses` body.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponsesRequest {
    /// The model (route name or alias).
    pub model: String,
    /// A string (one user message) or a list of input items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Input>,
    /// A system message put before the input (not carried over by `previous_response_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    /// Continue the conversation of this stored response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_response_id: Option<String>,
    /// Whether to stream events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Tools: `function` tools translate; built-in tools run only on OpenAI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Value>>,
    /// `none`, `auto`, `required`, or `{"type":"function","name":…}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Value>,
    /// Output-token limit (reasoning included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u32>,
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// `{"format": {"type": "text" | "json_object" | "json_schema", …}, "verbosity"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<Value>,
    /// `{"effort", "summary"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<Value>,
    /// Up to 16 string pairs, echoed in the response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// Whether to keep the response for `previous_response_id` and `GET` (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<bool>,
    /// Whether the model may call several tools at once (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    /// End-user id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Every other field: passed through to OpenAI, checked for translated backends.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

impl ResponsesRequest {
    /// Whether the client asked for a stream.
    pub fn is_stream(&self) -> bool {
        self.stream.unwrap_or(false)
    }

    /// Whether the response is to be stored (the API's default is yes).
    pub fn stores(&self) -> bool {
        self.store.unwrap_or(true)
    }

    /// `reasoning.effort`, when set.
    pub fn reasoning_effort(&self) -> Option<&str> {
        self.reasoning
            .as_ref()
            .and_then(|r| r.get("effort"))
            .and_then(Value::as_str)
    }
}

/// `input`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Input {
    /// One user message.
    Text(String),
    /// Messages, function calls and their outputs, …
    Items(Vec<Value>),
}

impl Input {
    /// The input as items (a string is one user message).
    pub fn items(&self) -> Vec<Value> {
        match self {
            Input::Text(text) => vec![serde_json::json!({
                "type": "message", "role": "user", "content": text,
            })],
            Input::Items(items) => items.clone(),
        }
    }
}

/// The `response` object, with every field the published schema requires.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResponseObject {
    /// `resp_…`.
    pub id: String,
    /// Always `response`.
    pub object: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds, once complete.
    pub completed_at: Option<i64>,
    /// `in_progress`, `completed`, `incomplete` or `failed`.
    pub status: String,
    /// Why it is incomplete.
    pub incomplete_details: Option<Value>,
    /// The model that answered.
    pub model: String,
    /// The response this one continues.
    pub previous_response_id: Option<String>,
    /// The request's instructions.
    pub instructions: Option<String>,
    /// Output items.
    pub output: Vec<OutputItem>,
    /// `{code, message}` when failed.
    pub error: Option<Value>,
    /// The request's tools.
    pub tools: Vec<Value>,
    /// The request's tool choice.
    pub tool_choice: Value,
    /// Always `disabled`: the gateway never truncates.
    pub truncation: String,
    /// The request's setting.
    pub parallel_tool_calls: bool,
    /// `{"format": …}`.
    pub text: Value,
    /// The request's setting (1 when unset).
    pub top_p: f64,
    /// 0: not translated.
    pub presence_penalty: f64,
    /// 0: not translated.
    pub frequency_penalty: f64,
    /// 0: not translated.
    pub top_logprobs: u32,
    /// The request's setting (1 when unset).
    pub temperature: f64,
    /// `{effort, summary}`.
    pub reasoning: Value,
    /// The request's `user`.
    pub user: Option<String>,
    /// Token usage, once known.
    pub usage: Option<ResponseUsage>,
    /// The request's limit.
    pub max_output_tokens: Option<u32>,
    /// Not translated.
    pub max_tool_calls: Option<u32>,
    /// Whether the gateway stored it.
    pub store: bool,
    /// Always false: the gateway runs nothing in the background.
    pub background: bool,
    /// Always `default`.
    pub service_tier: String,
    /// The request's metadata (`{}` when unset).
    pub metadata: Value,
    /// The request's `safety_identifier`.
    pub safety_identifier: Option<String>,
    /// The request's `prompt_cache_key`.
    pub prompt_cache_key: Option<String>,
}

/// One output item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutputItem {
    /// The assistant's text.
    Message {
        /// `msg_…`.
        id: String,
        /// `in_progress`, `completed` or `incomplete`.
        status: String,
        /// Always `assistant`.
        role: String,
        /// Its parts.
        content: Vec<OutputContent>,
    },
    /// A call of a function tool.
    FunctionCall {
        /// `fc_…`.
        id: String,
        /// The id the `function_call_output` answers.
        call_id: String,
        /// Function name.
        name: String,
        /// JSON-encoded arguments.
        arguments: String,
        /// `in_progress`, `completed` or `incomplete`.
        status: String,
    },
    /// The model's reasoning text (Anthropic thinking, Gemini thoughts).
    Reasoning {
        /// `rs_…`.
        id: String,
        /// Always empty: translated providers send no summaries.
        summary: Vec<Value>,
        /// `reasoning_text` parts.
        content: Vec<OutputContent>,
    },
}

/// A content part of an output item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutputContent {
    /// Text of a message.
    OutputText {
        /// The text.
        text: String,
        /// Always empty.
        annotations: Vec<Value>,
        /// Always empty.
        logprobs: Vec<Value>,
    },
    /// Reasoning text.
    ReasoningText {
        /// The text.
        text: String,
    },
}

impl OutputContent {
    /// An `output_text` part.
    pub fn text(text: impl Into<String>) -> Self {
        OutputContent::OutputText {
            text: text.into(),
            annotations: Vec::new(),
            logprobs: Vec::new(),
        }
    }
}

/// `usage` in the Responses shape.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseUsage {
    /// Input tokens, cached ones included.
    pub input_tokens: u64,
    /// `{cached_tokens}`.
    pub input_tokens_details: InputTokensDetails,
    /// Output tokens, reasoning included.
    pub output_tokens: u64,
    /// `{reasoning_tokens}`.
    pub output_tokens_details: OutputTokensDetails,
    /// Sum of both.
    pub total_tokens: u64,
}

/// `input_tokens_details`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputTokensDetails {
    /// Input tokens read from a prompt cache.
    #[serde(default)]
    pub cached_tokens: u64,
}

/// `output_tokens_details`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputTokensDetails {
    /// Reasoning tokens.
    #[serde(default)]
    pub reasoning_tokens: u64,
}

impl ResponseUsage {
    /// From chat usage.
    pub fn from_chat(u: &super::openai::Usage) -> Self {
        Self {
            input_tokens: u.prompt_tokens,
            input_tokens_details: InputTokensDetails {
                cached_tokens: u.cached(),
            },
            output_tokens: u.completion_tokens,
            output_tokens_details: OutputTokensDetails {
                reasoning_tokens: u.reasoning(),
            },
            total_tokens: u.total_tokens,
        }
    }

    /// As chat usage, for metering.
    pub fn to_chat(&self) -> super::openai::Usage {
        let mut usage = super::openai::Usage::new(
            self.input_tokens,
            self.output_tokens,
            self.input_tokens_details.cached_tokens,
            self.output_tokens_details.reasoning_tokens,
        );
        usage.total_tokens = self
            .total_tokens
            .max(self.input_tokens + self.output_tokens);
        usage
    }
}
