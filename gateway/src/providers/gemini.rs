//! Google's Gemini API (`generateContent`, `streamGenerateContent?alt=sse`,
//! `batchEmbedContents`), translated from and to OpenAI's chat and embeddings APIs.
//!
//! Request mapping:
//! - `system`/`developer` messages become `systemInstruction` (text only); `user` → `user`,
//!   `assistant` → `model`; consecutive contents of the same role are merged, so tool results
//!   (`functionResponse` parts in a `user` turn) land together after the `functionCall` turn.
//! - A tool result takes its function name from the earlier assistant call with the same
//!   `tool_call_id` (an unknown id is refused). A result that is not a JSON object is wrapped
//!   as `{"result": text}`, because `functionResponse.response` must be an object.
//! - Replayed `functionCall` parts carry Google's documented placeholder thought signature
//!   ([`THOUGHT_SIGNATURE_PLACEHOLDER`], see ai.google.dev/gemini-api/docs/thought-signatures):
//!   OpenAI's format has no place to keep the real one, and Gemini 3 models refuse replayed
//!   calls without any signature. Thought text and signatures in answers are therefore not
//!   round-tripped.
//! - Tool parameters go to `parametersJsonSchema`, which takes JSON Schema unchanged (no
//!   sanitising); `strict` is dropped (Gemini has no strict mode; its output is not
//!   guaranteed to match). `response_format` `json_schema` → `responseMimeType:
//!   application/json` + `responseJsonSchema` (JSON Schema; Google documents the supported
//!   subset and ignores other keywords).
//! - Images: only base64 `data:` URLs (→ `inlineData`); remote URLs are refused because
//!   Gemini reads only uploaded files. Other content part types are refused.
//! - Mapped: `temperature`, `top_p`, `max_completion_tokens`/`max_tokens`, `stop`, `n`,
//!   `seed` (must fit in 32 bits), `frequency_penalty`, `presence_penalty`;
//!   `reasoning_effort` → `thinkingConfig.thinkingBudget` (`none` 0, `minimal`/`low` 1024,
//!   `medium` 8192, `high` 24576). Dropped as
//!   harmless: `user`, `metadata`, `store`, `service_tier`, `prompt_cache_key`,
//!   `safety_identifier`, `parallel_tool_calls: true`, `logprobs: false`, message `name`.
//!   Every other field is refused with a [`RequestError`] naming it.
//!
//! Answers: thought parts go to `reasoning_content`, never `content`; a call's id is the
//! part's `id` or `call_{request_id}_{n}`. A stream has no end event: it is complete when
//! every candidate carried a `finishReason`. Embeddings: Gemini reports no token usage, so
//! `prompt_tokens` is 0; `encoding_format: base64` is encoded by the gateway from Gemini's
//! floats (little-endian float32, as OpenAI sends it).

use std::time::Duration;

use http::{HeaderMap, HeaderName, StatusCode};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::openai::json_request;
use super::{
    FINISH_CONTENT_FILTER, FINISH_LENGTH, FINISH_STOP, FINISH_TOOL_CALLS, Failure, FailureKind,
    ProviderAdapter, RequestError, Secret, StreamTranslator, Target, UpstreamRequest,
    classify_status, quote, retry_after,
};
use crate::stream::sse::SseDecoder;
use crate::wire::openai::{
    ChatChunk, ChatRequest, ChatResponse, Choice, Content, ContentPart, Delta, Embedding,
    EmbeddingsRequest, EmbeddingsResponse, EmbeddingsUsage, FunctionCall, FunctionCallDelta,
    Message, ResponseMessage, Role, ToolCall, ToolCallDelta, Usage,
};

/// Used when the provider config has no base URL (the operator always sets one).
pub const DEFAULT_BASE_URL: &str = "https://generativelanguage.googleapis.com";

/// Google's documented value for a `thoughtSignature` the client cannot supply.
pub const THOUGHT_SIGNATURE_PLACEHOLDER: &str = "skip_thought_signature_validator";

/// Where thought text goes in OpenAI's message and delta.
const REASONING: &str = "reasoning_content";

/// Most candidates a stream may carry (Gemini allows `candidateCount` up to 8).
const MAX_CANDIDATES: usize = 16;

/// Top-level request fields dropped without effect on the answer.
const DROPPED_FIELDS: &[&str] = &[
    "metadata",
    "store",
    "service_tier",
    "prompt_cache_key",
    "safety_identifier",
];

/// The Gemini adapter.
#[derive(Clone, Copy, Debug, Default)]
pub struct Gemini;

impl ProviderAdapter for Gemini {
    type Stream = GeminiStream;

    fn chat_request(
        &self,
        target: &Target<'_>,
        req: &ChatRequest,
    ) -> Result<UpstreamRequest, RequestError> {
        let method = if req.is_stream() {
            "streamGenerateContent?alt=sse"
        } else {
            "generateContent"
        };
        upstream(target, method, &chat_body(req)?)
    }

    fn chat_response(&self, target: &Target<'_>, body: &[u8]) -> Result<ChatResponse, Failure> {
        let resp = parse::<GenerateResponse>(body)?.unblocked();
        let mut calls = 0;
        let mut choices = Vec::with_capacity(resp.candidates.len().max(1));
        for (pos, cand) in resp.candidates.iter().enumerate() {
            let said = cand.said(target.request_id, &mut calls)?;
            let finish = finish_reason(cand.finish_reason.as_deref(), !said.calls.is_empty());
            let mut message = ResponseMessage {
                role: "assistant".into(),
                content: said.text,
                tool_calls: (!said.calls.is_empty()).then_some(said.calls),
                rest: Map::new(),
            };
            if let Some(r) = said.reasoning {
                message.rest.insert(REASONING.into(), Value::String(r));
            }
            choices.push(choice(cand.index.unwrap_or(pos as u32), message, finish));
        }
        if choices.is_empty() {
            let msg = format!("Gemini answered no candidates: {}", quote(body));
            return Err(Failure::protocol(msg));
        }
        Ok(ChatResponse {
            id: resp.id(target.request_id),
            object: "chat.completion".into(),
            created: target.created,
            model: resp
                .model_version
                .unwrap_or_else(|| target.model.to_owned()),
            choices,
            usage: resp.usage_metadata.as_ref().map(GeminiUsage::to_openai),
            rest: Map::new(),
        })
    }

    fn error(&self, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Failure {
        let mut failure = classify_error(Some(status), body);
        failure.retry_after = retry_after(headers).or(failure.retry_after);
        failure
    }

    fn stream(&self, target: &Target<'_>) -> Self::Stream {
        GeminiStream::new(target)
    }

    fn embeddings_request(
        &self,
        target: &Target<'_>,
        req: &EmbeddingsRequest,
    ) -> Result<UpstreamRequest, RequestError> {
        let texts = req.input.texts().ok_or_else(|| {
            RequestError::new("Gemini embeds text only, not token arrays", Some("input"))
        })?;
        if texts.is_empty() {
            return Err(RequestError::new("input must not be empty", Some("input")));
        }
        // Gemini answers floats; `base64` (the OpenAI SDKs' default) is encoded by the
        // gateway (`EmbeddingsResponse::encode_as`).
        if let Some(format) = req
            .encoding_format
            .as_deref()
            .filter(|f| !matches!(*f, "float" | "base64"))
        {
            let msg = format!("encoding_format {format:?} is not supported; use float or base64");
            return Err(RequestError::new(msg, Some("encoding_format")));
        }
        if let Some(key) = req.rest.keys().find(|k| k.as_str() != "user") {
            return Err(unsupported(key));
        }
        let model = model_name(target.model);
        let requests: Vec<Value> = texts
            .iter()
            .map(|text| {
                let mut r = json!({ "model": model, "content": { "parts": [{ "text": text }] } });
                if let Some(d) = req.dimensions {
                    r["outputDimensionality"] = json!(d);
                }
                r
            })
            .collect();
        upstream(
            target,
            "batchEmbedContents",
            &json!({ "requests": requests }),
        )
    }

    fn embeddings_response(
        &self,
        target: &Target<'_>,
        body: &[u8],
    ) -> Result<EmbeddingsResponse, Failure> {
        #[derive(Deserialize)]
        struct Batch {
            embeddings: Vec<Values>,
        }
        #[derive(Deserialize)]
        struct Values {
            values: Vec<f64>,
        }
        let batch: Batch = parse(body)?;
        let data = (0..)
            .zip(batch.embeddings)
            .map(|(index, e)| Embedding {
                object: "embedding".into(),
                index,
                embedding: Value::from(e.values),
            })
            .collect();
        Ok(EmbeddingsResponse {
            object: "list".into(),
            data,
            model: target.model.to_owned(),
            usage: EmbeddingsUsage::default(),
        })
    }
}

fn choice(index: u32, message: ResponseMessage, finish: &str) -> Choice {
    Choice {
        index,
        message,
        finish_reason: Some(finish.into()),
        rest: Map::new(),
    }
}

// === request ===

/// `models/{model}` (a model already naming its collection is kept).
fn model_name(model: &str) -> String {
    if model.starts_with("models/") || model.starts_with("tunedModels/") {
        model.to_owned()
    } else {
        format!("models/{model}")
    }
}

/// `POST {base}/v1beta/models/{model}:{method}` with `x-goog-api-key` (other credential
/// kinds send none: Gemini then refuses with an authentication error, which falls back).
fn upstream(
    target: &Target<'_>,
    method: &str,
    body: &Value,
) -> Result<UpstreamRequest, RequestError> {
    let p = target.provider;
    let base = p.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL);
    let url = format!(
        "{}/v1beta/{}:{method}",
        base.trim_end_matches('/'),
        model_name(target.model)
    );
    let auth = match target.secret {
        Some(Secret::ApiKey(key)) => Some((
            HeaderName::from_static("x-goog-api-key"),
            key.expose().to_owned(),
        )),
        _ => None,
    };
    let body = serde_json::to_vec(body)
        .map_err(|e| RequestError::new(format!("request cannot be encoded: {e}"), None))?;
    json_request(url, p, auth, body)
}

fn refuse(message: impl Into<String>, param: &str) -> RequestError {
    RequestError::new(message, Some(param))
}

fn unsupported(param: &str) -> RequestError {
    refuse(
        format!("parameter {param} is not supported by Gemini"),
        param,
    )
}

fn put<T: serde::Serialize>(map: &mut Map<String, Value>, key: &str, value: Option<T>) {
    if let Some(v) = value {
        map.insert(key.into(), json!(v));
    }
}

/// Gemini's `thinkingBudget` (tokens) for an OpenAI `reasoning_effort`.
fn thinking_budget(effort: &str) -> Option<u32> {
    Some(match effort {
        "none" => 0,
        "minimal" | "low" => 1024,
        "medium" => 8192,
        "high" | "xhigh" => 24576,
        _ => return None,
    })
}

/// The `generateContent` body.
fn chat_body(req: &ChatRequest) -> Result<Value, RequestError> {
    let mut config = Map::new();
    for (key, value) in &req.rest {
        match (key.as_str(), value) {
            ("frequency_penalty", v) => _ = config.insert("frequencyPenalty".into(), v.clone()),
            ("presence_penalty", v) => _ = config.insert("presencePenalty".into(), v.clone()),
            ("parallel_tool_calls", Value::Bool(true)) | ("logprobs", Value::Bool(false)) => {}
            ("reasoning_effort", Value::String(effort)) => {
                let budget = thinking_budget(effort)
                    .ok_or_else(|| refuse(format!("reasoning_effort `{effort}` is not one of none, minimal, low, medium, high"), "reasoning_effort"))?;
                config.insert("thinkingConfig".into(), json!({"thinkingBudget": budget}));
            }
            (k, _) if DROPPED_FIELDS.contains(&k) => {}
            (k, _) => return Err(unsupported(k)),
        }
    }
    put(&mut config, "temperature", req.temperature);
    put(&mut config, "topP", req.top_p);
    put(&mut config, "maxOutputTokens", req.output_limit());
    let stop = req.stop_sequences();
    put(
        &mut config,
        "stopSequences",
        (!stop.is_empty()).then_some(stop),
    );
    put(&mut config, "candidateCount", req.n);
    if let Some(seed) = req.seed {
        let seed = i32::try_from(seed)
            .map_err(|_| RequestError::new("Gemini takes a 32-bit seed", Some("seed")))?;
        config.insert("seed".into(), json!(seed));
    }
    if let Some(format) = &req.response_format {
        response_format(format, &mut config)?;
    }

    let (system, contents) = contents(&req.messages)?;
    let mut body = Map::new();
    body.insert("contents".into(), Value::Array(contents));
    if !system.is_empty() {
        body.insert("systemInstruction".into(), json!({ "parts": system }));
    }
    let tools = req.tools.as_deref().unwrap_or_default();
    if !tools.is_empty() {
        let mut declarations = Vec::with_capacity(tools.len());
        for tool in tools {
            if tool.kind != "function" {
                return Err(RequestError::new(
                    format!("tool type {:?} is not supported by Gemini", tool.kind),
                    Some("tools"),
                ));
            }
            let f = &tool.function;
            let mut d = Map::new();
            put(&mut d, "name", Some(&f.name));
            put(&mut d, "description", f.description.as_ref());
            put(&mut d, "parametersJsonSchema", f.parameters.as_ref());
            declarations.push(d);
        }
        body.insert(
            "tools".into(),
            json!([{ "functionDeclarations": declarations }]),
        );
    }
    if let Some(choice) = &req.tool_choice {
        let calling = tool_choice(choice)?;
        if tools.is_empty() && calling["mode"] != "NONE" && calling["mode"] != "AUTO" {
            return Err(refuse("tool_choice requires tools", "tool_choice"));
        }
        if !tools.is_empty() {
            body.insert(
                "toolConfig".into(),
                json!({ "functionCallingConfig": calling }),
            );
        }
    }
    if !config.is_empty() {
        body.insert("generationConfig".into(), Value::Object(config));
    }
    Ok(Value::Object(body))
}

fn response_format(format: &Value, config: &mut Map<String, Value>) -> Result<(), RequestError> {
    match format.get("type").and_then(Value::as_str) {
        Some("text") => {}
        Some("json_object") => {
            _ = config.insert("responseMimeType".into(), json!("application/json"))
        }
        Some("json_schema") => {
            let schema = format
                .pointer("/json_schema/schema")
                .ok_or_else(|| refuse("json_schema.schema is required", "response_format"))?;
            config.insert("responseMimeType".into(), json!("application/json"));
            config.insert("responseJsonSchema".into(), schema.clone());
        }
        _ => {
            let msg = "response_format must be text, json_object or json_schema";
            return Err(refuse(msg, "response_format"));
        }
    }
    Ok(())
}

/// `functionCallingConfig` for an OpenAI `tool_choice`.
fn tool_choice(choice: &Value) -> Result<Value, RequestError> {
    match choice {
        Value::String(s) if s == "auto" => Ok(json!({ "mode": "AUTO" })),
        Value::String(s) if s == "none" => Ok(json!({ "mode": "NONE" })),
        Value::String(s) if s == "required" => Ok(json!({ "mode": "ANY" })),
        _ => match choice.pointer("/function/name").and_then(Value::as_str) {
            Some(name) if choice.get("type").and_then(Value::as_str) == Some("function") => {
                Ok(json!({ "mode": "ANY", "allowedFunctionNames": [name] }))
            }
            _ => Err(RequestError::new(
                "tool_choice must be auto, none, required or a named function",
                Some("tool_choice"),
            )),
        },
    }
}

/// System parts and `contents`, same-role turns merged.
fn contents(messages: &[Message]) -> Result<(Vec<Value>, Vec<Value>), RequestError> {
    let mut system = Vec::new();
    let mut contents: Vec<(&str, Vec<Value>)> = Vec::new();
    let mut call_names: Vec<(&str, &str)> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let param = format!("messages[{i}]");
        let (role, parts) = match m.role {
            Role::System | Role::Developer => {
                if matches!(&m.content, Some(Content::Parts(p)) if p.iter().any(|p| !matches!(p, ContentPart::Text { .. })))
                {
                    return Err(refuse("Gemini system instructions are text only", &param));
                }
                let text = m.text_content();
                if !text.is_empty() {
                    system.push(json!({ "text": text }));
                }
                continue;
            }
            Role::User => ("user", user_parts(m, &param)?),
            Role::Assistant => {
                let mut parts = Vec::new();
                let text = m.text_content();
                if !text.is_empty() {
                    parts.push(json!({ "text": text }));
                }
                for (n, call) in m.tool_calls.iter().flatten().enumerate() {
                    call_names.push((call.id.as_str(), call.function.name.as_str()));
                    let args = parse_arguments(&call.function.arguments).ok_or_else(|| {
                        refuse("tool call arguments must be a JSON object", &param)
                    })?;
                    let mut part =
                        json!({ "functionCall": { "name": call.function.name, "args": args } });
                    if n == 0 {
                        part["thoughtSignature"] = json!(THOUGHT_SIGNATURE_PLACEHOLDER);
                    }
                    parts.push(part);
                }
                ("model", parts)
            }
            Role::Tool => {
                let id = m.tool_call_id.as_deref().unwrap_or_default();
                let Some(&(_, name)) = call_names.iter().rev().find(|(cid, _)| *cid == id) else {
                    let msg = format!("tool_call_id {id:?} answers no earlier assistant tool call");
                    return Err(refuse(msg, &param));
                };
                let text = m.text_content();
                let response = match serde_json::from_str::<Value>(&text) {
                    Ok(obj @ Value::Object(_)) => obj,
                    _ => json!({ "result": text }),
                };
                (
                    "user",
                    vec![json!({ "functionResponse": { "name": name, "response": response } })],
                )
            }
        };
        if parts.is_empty() {
            continue;
        }
        match contents.last_mut() {
            Some((last, prev)) if *last == role => prev.extend(parts),
            _ => contents.push((role, parts)),
        }
    }
    let contents = contents
        .into_iter()
        .map(|(role, parts)| json!({ "role": role, "parts": parts }))
        .collect();
    Ok((system, contents))
}

fn user_parts(m: &Message, param: &str) -> Result<Vec<Value>, RequestError> {
    let parts = match &m.content {
        None => return Ok(Vec::new()),
        Some(Content::Text(t)) if t.is_empty() => return Ok(Vec::new()),
        Some(Content::Text(t)) => return Ok(vec![json!({ "text": t })]),
        Some(Content::Parts(parts)) => parts,
    };
    let part = |part: &ContentPart| match part {
        ContentPart::Text { text } => Ok(json!({ "text": text })),
        ContentPart::ImageUrl { image_url } => match image_url.as_data() {
            Some((mime, data)) => Ok(json!({ "inlineData": { "mimeType": mime, "data": data } })),
            None => Err(refuse(
                "Gemini takes images only as base64 data: URLs",
                param,
            )),
        },
        ContentPart::Other(v) => {
            let kind = v.get("type").and_then(Value::as_str).unwrap_or("unknown");
            Err(refuse(
                format!("content part {kind:?} is not supported by Gemini"),
                param,
            ))
        }
    };
    parts.iter().map(part).collect()
}

/// Tool-call arguments as a JSON object (empty means none).
fn parse_arguments(args: &str) -> Option<Value> {
    if args.trim().is_empty() {
        return Some(json!({}));
    }
    serde_json::from_str::<Value>(args)
        .ok()
        .filter(Value::is_object)
}

// === answers ===

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GenerateResponse {
    #[serde(default)]
    candidates: Vec<Candidate>,
    prompt_feedback: Option<PromptFeedback>,
    usage_metadata: Option<GeminiUsage>,
    model_version: Option<String>,
    response_id: Option<String>,
}

impl GenerateResponse {
    fn id(&self, request_id: &str) -> String {
        let id = self.response_id.clone();
        id.unwrap_or_else(|| format!("chatcmpl-{request_id}"))
    }

    /// A blocked prompt has no candidates: it becomes one filtered, empty candidate.
    fn unblocked(mut self) -> Self {
        let blocked = self
            .prompt_feedback
            .as_ref()
            .and_then(|f| f.block_reason.as_ref());
        if self.candidates.is_empty() && blocked.is_some() {
            self.candidates.push(Candidate {
                content: None,
                finish_reason: Some("SAFETY".into()),
                index: Some(0),
            });
        }
        self
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback {
    block_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate {
    content: Option<GeminiContent>,
    finish_reason: Option<String>,
    index: Option<u32>,
}

#[derive(Debug, Deserialize)]
struct GeminiContent {
    #[serde(default)]
    parts: Vec<Part>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Part {
    text: Option<String>,
    #[serde(default)]
    thought: bool,
    function_call: Option<GeminiCall>,
    /// Everything else (`thoughtSignature`, `inlineData`, `executableCode`, …).
    #[serde(flatten)]
    rest: Map<String, Value>,
}

/// What one candidate's parts say.
#[derive(Default)]
struct Said {
    text: Option<String>,
    reasoning: Option<String>,
    calls: Vec<ToolCall>,
}

impl Candidate {
    /// Text, thoughts and calls, in OpenAI's terms; `calls` numbers generated call ids. A
    /// part kind the gateway never asks for (images, code) is refused rather than dropped.
    fn said(&self, request_id: &str, calls: &mut u32) -> Result<Said, Failure> {
        let mut said = Said::default();
        for part in self.content.iter().flat_map(|c| &c.parts) {
            match (&part.text, &part.function_call) {
                (Some(t), None) if t.is_empty() => {}
                (Some(t), None) if part.thought => {
                    said.reasoning.get_or_insert_default().push_str(t)
                }
                (Some(t), None) => said.text.get_or_insert_default().push_str(t),
                (None, Some(call)) => {
                    let args = call.args.clone().unwrap_or_else(|| json!({}));
                    said.calls.push(ToolCall {
                        id: call
                            .id
                            .clone()
                            .filter(|id| !id.is_empty())
                            .unwrap_or_else(|| format!("call_{request_id}_{calls}")),
                        kind: "function".into(),
                        function: FunctionCall {
                            name: call.name.clone(),
                            arguments: args.to_string(),
                        },
                    });
                    *calls += 1;
                }
                (None, None) if part.rest.keys().all(|k| k == "thoughtSignature") => {}
                _ => {
                    let keys: Vec<_> = part.rest.keys().collect();
                    let msg =
                        format!("Gemini answered a part the gateway cannot translate: {keys:?}");
                    return Err(Failure::protocol(msg));
                }
            }
        }
        Ok(said)
    }
}

#[derive(Debug, Deserialize)]
struct GeminiCall {
    id: Option<String>,
    name: String,
    args: Option<Value>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct GeminiUsage {
    prompt_token_count: u64,
    cached_content_token_count: u64,
    candidates_token_count: u64,
    thoughts_token_count: u64,
}

impl GeminiUsage {
    fn to_openai(&self) -> Usage {
        Usage::new(
            self.prompt_token_count,
            self.candidates_token_count + self.thoughts_token_count,
            self.cached_content_token_count,
            self.thoughts_token_count,
        )
    }
}

/// OpenAI's `finish_reason` for a Gemini one.
fn finish_reason(reason: Option<&str>, called_tools: bool) -> &'static str {
    match reason {
        Some("MAX_TOKENS") => FINISH_LENGTH,
        Some(
            "SAFETY"
            | "RECITATION"
            | "BLOCKLIST"
            | "PROHIBITED_CONTENT"
            | "SPII"
            | "IMAGE_SAFETY"
            | "IMAGE_PROHIBITED_CONTENT"
            | "IMAGE_RECITATION",
        ) => FINISH_CONTENT_FILTER,
        _ if called_tools => FINISH_TOOL_CALLS,
        _ => FINISH_STOP,
    }
}

fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, Failure> {
    serde_json::from_slice(body)
        .map_err(|e| Failure::protocol(format!("unreadable Gemini answer ({e}): {}", quote(body))))
}

// === errors ===

#[derive(Debug, Deserialize)]
struct ErrorEnvelope {
    error: GeminiError,
}

#[derive(Debug, Deserialize)]
struct GeminiError {
    code: Option<u16>,
    #[serde(default)]
    message: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    details: Vec<Value>,
}

/// Classifies a Gemini error body (`{"error": {...}}`, or that inside a one-element array as
/// the non-SSE stream sends it); `status` is the HTTP status when there is one.
fn classify_error(status: Option<StatusCode>, body: &[u8]) -> Failure {
    let parsed = serde_json::from_slice::<ErrorEnvelope>(body)
        .or_else(|_| serde_json::from_slice::<[ErrorEnvelope; 1]>(body).map(|[e]| e));
    let http_status = status.or_else(|| {
        let code = parsed.as_ref().ok()?.error.code?;
        StatusCode::from_u16(code).ok()
    });
    let default = http_status.map_or(FailureKind::Protocol, classify_status);
    let Ok(ErrorEnvelope { error }) = parsed else {
        return Failure {
            kind: default,
            status: http_status.map(|s| s.as_u16()),
            message: quote(body),
            retry_after: None,
        };
    };
    let reason = |r: &str| {
        error
            .details
            .iter()
            .any(|d| d.get("reason").and_then(Value::as_str) == Some(r))
    };
    let lower = error.message.to_ascii_lowercase();
    let kind = match error.status.as_str() {
        "INVALID_ARGUMENT" if reason("API_KEY_INVALID") => FailureKind::Authentication,
        "INVALID_ARGUMENT" if lower.contains("input token count") && lower.contains("exceeds") => {
            FailureKind::ContextWindowExceeded
        }
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" => FailureKind::BadRequest,
        "RESOURCE_EXHAUSTED" => FailureKind::RateLimited,
        "UNAVAILABLE" => FailureKind::Overloaded,
        "UNAUTHENTICATED" => FailureKind::Authentication,
        "PERMISSION_DENIED" => FailureKind::PermissionDenied,
        "NOT_FOUND" => FailureKind::NotFound,
        "INTERNAL" | "UNKNOWN" => FailureKind::Server,
        "DEADLINE_EXCEEDED" => FailureKind::Timeout,
        _ => default,
    };
    let retry = error.details.iter().find_map(|d| {
        (d.get("@type")?.as_str()?.ends_with("google.rpc.RetryInfo"))
            .then(|| parse_duration(d.get("retryDelay")?.as_str()?))?
    });
    let message = if error.message.is_empty() {
        quote(body)
    } else {
        quote(error.message.as_bytes())
    };
    Failure {
        kind,
        status: http_status.map(|s| s.as_u16()),
        message,
        retry_after: retry,
    }
}

/// A protobuf JSON duration such as `"53s"` or `"0.25s"`.
fn parse_duration(s: &str) -> Option<Duration> {
    let secs: f64 = s.strip_suffix('s')?.parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

// === streaming ===

#[path = "gemini_stream.rs"]
mod stream;
pub use stream::GeminiStream;

#[cfg(test)]
#[path = "gemini_tests.rs"]
mod tests;
