//! AWS Bedrock Converse: `POST {base}/model/{modelId}/converse` and `/converse-stream`, with
//! the model id percent-encoded into one path segment (ids contain `:`, ARNs `/`).
//!
//! Auth: AWS keys sign every request with SigV4 (service `bedrock`, the provider's
//! `bedrockRegion`, `x-amz-date`, `x-amz-content-sha256`, `x-amz-security-token` with a session
//! token); a Bedrock API key is sent as `Authorization: Bearer`. A request without a credential
//! goes out unsigned, and Bedrock's answer to it is classified like any other.
//!
//! Request mapping:
//! - `system`/`developer` messages, wherever they stand, become the top-level `system` blocks;
//!   `tool` results become `toolResult` blocks of a user message; consecutive messages of one
//!   role are merged (Converse wants alternating roles). Blank text parts are left out (Bedrock
//!   refuses blank text blocks; an empty tool result is sent with no content blocks); message
//!   `name` is dropped. System and tool messages take text parts only.
//! - Images must be base64 `data:` URLs (png, jpeg, gif, webp): Converse takes bytes or S3,
//!   so a remote URL is refused, as are audio and file parts.
//! - `max_completion_tokens`/`max_tokens`, `temperature`, `top_p`, `stop` → `inferenceConfig`.
//! - `tools` → `toolConfig.tools[].toolSpec` (`strict: true` passes through); `tool_choice`
//!   `auto` → `{auto}`, `required` → `{any}`, a named function → `{tool}`. Converse has no
//!   `none`: without tools in the conversation `toolConfig` is left out so no tool can be
//!   called, but a conversation holding tool calls must carry `toolConfig`, so `none` is
//!   refused there.
//! - `response_format` `json_schema` → Converse's native structured output,
//!   `outputConfig.textFormat` (`type: json_schema`, the schema as a JSON string); the model
//!   answers with JSON text, so nothing is rewritten on the way back. `json_object` has no
//!   schema-less equivalent and is refused; `text` is the default.
//! - Refused: `n > 1`, `logprobs`, `top_logprobs`, non-zero penalties, a non-empty
//!   `logit_bias`, `parallel_tool_calls: false`, `reasoning_effort` (model-specific on
//!   Bedrock), and any field this adapter does not know. Dropped as harmless: `seed` (no
//!   equivalent), `user`, `metadata`, `store`, `service_tier`, `prompt_cache_key`,
//!   `safety_identifier`, `parallel_tool_calls: true`.
//!
//! Response mapping: text blocks are joined into `content`; `toolUse` blocks become
//! `tool_calls` (arguments as compact JSON); reasoning text goes to `reasoning_content` (its
//! signature and redacted reasoning have no OpenAI field and are dropped). Stop reasons:
//! `end_turn`/`stop_sequence` → `stop`, `tool_use` → `tool_calls`, `max_tokens` and
//! `model_context_window_exceeded` → `length`, `guardrail_intervened`/`content_filtered` →
//! `content_filter`, anything else (`malformed_*`, future values) → `stop`. Usage: prompt =
//! `inputTokens + cacheReadInputTokens + cacheWriteInputTokens`, cached = cache reads.
//! Bedrock answers carry no id: responses use `chatcmpl-{request_id}` and the target model.
//!
//! Streaming: the body is AWS event-stream frames ([`crate::stream::eventstream`]).
//! `:message-type: event` frames carry the Converse events as JSON; `exception` and `error`
//! frames become a [`Failure`] classified like HTTP errors. The answer is complete at
//! `messageStop`; usage is sent when `metadata` arrives after it. Event types and union
//! members this adapter does not know (citations, future additions: Bedrock's unions are
//! open, its SDKs have an `Unknown` member for them) are skipped.
//!
//! Embeddings: not supported (Bedrock's embedding models speak `InvokeModel` with
//! per-model bodies, not Converse); the trait's default refusal applies.

#[path = "bedrock_request.rs"]
mod request;
#[path = "bedrock_stream.rs"]
mod stream;

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::{
    http_request::{
        PayloadChecksumKind, SignableBody, SignableRequest, SigningParams, SigningSettings, sign,
    },
    sign::v4,
};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::openai::json_request;
use super::{
    FINISH_CONTENT_FILTER, FINISH_LENGTH, FINISH_STOP, FINISH_TOOL_CALLS, Failure, FailureKind,
    ProviderAdapter, RequestError, Secret, SecretString, Target, UpstreamRequest, classify_status,
    quote, retry_after,
};
use crate::wire::openai::{
    ChatRequest, ChatResponse, Choice, FunctionCall, ResponseMessage, ToolCall, Usage,
};
use request::{converse_body, encode_segment};
pub use stream::BedrockStream;

/// The SigV4 signing name of the Bedrock runtime.
pub const SIGNING_NAME: &str = "bedrock";

/// The media type of Bedrock's streamed answers.
pub const EVENT_STREAM: &str = "application/vnd.amazon.eventstream";

/// The Bedrock adapter.
#[derive(Clone, Copy, Debug, Default)]
pub struct Bedrock;

impl ProviderAdapter for Bedrock {
    type Stream = BedrockStream;

    fn chat_request(
        &self,
        target: &Target<'_>,
        req: &ChatRequest,
    ) -> Result<UpstreamRequest, RequestError> {
        let body = serde_json::to_vec(&converse_body(req)?)
            .map_err(|e| RequestError::new(format!("cannot encode the request: {e}"), None))?;
        let base = target
            .provider
            .base_url
            .as_deref()
            .ok_or_else(|| RequestError::new("the Bedrock provider has no base URL", None))?;
        let operation = if req.is_stream() {
            "converse-stream"
        } else {
            "converse"
        };
        let url = format!("{base}/model/{}/{operation}", encode_segment(target.model));

        let bearer = match target.secret {
            Some(Secret::ApiKey(key)) => {
                Some((header::AUTHORIZATION, format!("Bearer {}", key.expose())))
            }
            _ => None,
        };
        let mut request = json_request(url, target.provider, bearer, body)?;
        let accept = if req.is_stream() {
            EVENT_STREAM
        } else {
            "application/json"
        };
        request
            .headers
            .insert(header::ACCEPT, HeaderValue::from_static(accept));
        if let Some(Secret::Aws {
            access_key_id,
            secret_access_key,
            session_token,
        }) = target.secret
        {
            let region = target
                .provider
                .bedrock_region
                .as_deref()
                .ok_or_else(|| RequestError::new("the Bedrock provider has no region", None))?;
            let keys = AwsKeys {
                access_key_id,
                secret_access_key,
                session_token: session_token.as_ref(),
            };
            sign_sigv4(&mut request, keys, region, SystemTime::now())?;
        }
        Ok(request)
    }

    fn chat_response(&self, target: &Target<'_>, body: &[u8]) -> Result<ChatResponse, Failure> {
        let resp: ConverseResponse = serde_json::from_slice(body).map_err(|e| {
            Failure::protocol(format!(
                "unparseable Bedrock response ({e}): {}",
                quote(body)
            ))
        })?;
        let mut text = String::new();
        let mut reasoning = String::new();
        let mut tool_calls = Vec::new();
        for block in resp.output.message.content {
            if let Some(t) = block.text {
                text.push_str(&t);
            }
            if let Some(r) = block.reasoning_content.and_then(|r| r.reasoning_text) {
                reasoning.push_str(&r.text);
            }
            if let Some(tool) = block.tool_use {
                let arguments = serde_json::to_string(&tool.input)
                    .map_err(|e| Failure::protocol(format!("tool input: {e}")))?;
                tool_calls.push(ToolCall {
                    id: tool.tool_use_id,
                    kind: "function".into(),
                    function: FunctionCall {
                        name: tool.name,
                        arguments,
                    },
                });
            }
        }
        let mut message = ResponseMessage {
            role: "assistant".into(),
            content: (!text.is_empty() || tool_calls.is_empty()).then_some(text),
            tool_calls: (!tool_calls.is_empty()).then_some(tool_calls),
            rest: Map::new(),
        };
        if !reasoning.is_empty() {
            message
                .rest
                .insert("reasoning_content".into(), Value::String(reasoning));
        }
        Ok(ChatResponse {
            id: response_id(target),
            object: "chat.completion".into(),
            created: target.created,
            model: target.model.to_owned(),
            choices: vec![Choice {
                index: 0,
                message,
                finish_reason: Some(finish_reason(&resp.stop_reason).to_owned()),
                rest: Map::new(),
            }],
            usage: Some(resp.usage.to_openai()),
            rest: Map::new(),
        })
    }

    fn error(&self, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Failure {
        let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
        let header_type = headers
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok());
        let error_type = header_type
            .or(parsed.as_ref().and_then(|b| b.kind.as_deref()))
            .map(error_name);
        let message = parsed.as_ref().and_then(ErrorBody::text);
        let kind = classify_error(error_type, message.unwrap_or(""), classify_status(status));
        let message = match (error_type, message) {
            (Some(t), Some(m)) => quote(format!("{t}: {m}").as_bytes()),
            (None, Some(m)) => quote(m.as_bytes()),
            _ => quote(body),
        };
        Failure {
            kind,
            status: Some(status.as_u16()),
            message,
            retry_after: retry_after(headers),
        }
    }

    fn stream(&self, target: &Target<'_>) -> Self::Stream {
        BedrockStream::new(target)
    }
}

// === SigV4 ===

/// AWS access keys, borrowed from the credential.
#[derive(Clone, Copy, Debug)]
struct AwsKeys<'a> {
    access_key_id: &'a SecretString,
    secret_access_key: &'a SecretString,
    session_token: Option<&'a SecretString>,
}

/// Signs `request` in place with SigV4 at `time`: adds `authorization`, `x-amz-date`,
/// `x-amz-content-sha256` and, with a session token, `x-amz-security-token`. Every header
/// already on the request is signed, as is `host` (from the URL).
fn sign_sigv4(
    request: &mut UpstreamRequest,
    keys: AwsKeys<'_>,
    region: &str,
    time: SystemTime,
) -> Result<(), RequestError> {
    let failed = |e: &dyn std::fmt::Display| {
        RequestError::new(format!("cannot sign the Bedrock request: {e}"), None)
    };
    let identity = Credentials::new(
        keys.access_key_id.expose(),
        keys.secret_access_key.expose(),
        keys.session_token.map(|t| t.expose().to_owned()),
        None,
        "tollgate",
    )
    .into();
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let params: SigningParams<'_> = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(SIGNING_NAME)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| failed(&e))?
        .into();
    let headers = request
        .headers
        .iter()
        .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)));
    let signable = SignableRequest::new(
        request.method.as_str(),
        request.url.as_str(),
        headers,
        SignableBody::Bytes(&request.body),
    )
    .map_err(|e| failed(&e))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| failed(&e))?
        .into_parts();
    for h in instructions.into_parts().0 {
        let mut value = HeaderValue::from_str(h.value()).map_err(|e| failed(&e))?;
        // The signature authorises replays for minutes: keep it out of logs like the token.
        value.set_sensitive(h.sensitive() || h.name() == header::AUTHORIZATION);
        request.headers.insert(h.name(), value);
    }
    Ok(())
}

// === response ===

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConverseResponse {
    output: OutputIn,
    stop_reason: String,
    usage: UsageIn,
}

#[derive(Deserialize)]
struct OutputIn {
    message: MessageIn,
}

#[derive(Deserialize)]
struct MessageIn {
    content: Vec<BlockIn>,
}

/// A content block: a union, of which this adapter reads three members.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlockIn {
    text: Option<String>,
    tool_use: Option<ToolUseIn>,
    reasoning_content: Option<ReasoningIn>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToolUseIn {
    tool_use_id: String,
    name: String,
    input: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReasoningIn {
    reasoning_text: Option<ReasoningText>,
}

#[derive(Deserialize)]
struct ReasoningText {
    text: String,
}

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UsageIn {
    input_tokens: u64,
    output_tokens: u64,
    #[serde(default)]
    cache_read_input_tokens: u64,
    #[serde(default)]
    cache_write_input_tokens: u64,
}

impl UsageIn {
    fn to_openai(self) -> Usage {
        let prompt =
            self.input_tokens + self.cache_read_input_tokens + self.cache_write_input_tokens;
        Usage::new(prompt, self.output_tokens, self.cache_read_input_tokens, 0)
            .with_cache_writes(self.cache_write_input_tokens, 0)
    }
}

fn response_id(target: &Target<'_>) -> String {
    format!("chatcmpl-{}", target.request_id)
}

/// OpenAI's `finish_reason` for a Converse `stopReason`.
fn finish_reason(stop_reason: &str) -> &'static str {
    match stop_reason {
        "tool_use" => FINISH_TOOL_CALLS,
        "max_tokens" | "model_context_window_exceeded" => FINISH_LENGTH,
        "guardrail_intervened" | "content_filtered" => FINISH_CONTENT_FILTER,
        _ => FINISH_STOP,
    }
}

// === errors ===

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(rename = "__type")]
    kind: Option<String>,
    message: Option<String>,
    #[serde(rename = "Message")]
    message_upper: Option<String>,
}

impl ErrorBody {
    fn text(&self) -> Option<&str> {
        self.message.as_deref().or(self.message_upper.as_deref())
    }
}

/// `ValidationException` from `ValidationException:http://…` or `com.amazon.coral…#ValidationException`.
fn error_name(raw: &str) -> &str {
    let raw = raw.split(':').next().unwrap_or(raw);
    raw.rsplit('#').next().unwrap_or(raw).trim()
}

/// Classifies an AWS error by its type name (any case), refining `fallback` (from the status).
fn classify_error(error_type: Option<&str>, message: &str, fallback: FailureKind) -> FailureKind {
    let kind = match error_type.map(str::to_ascii_lowercase).as_deref() {
        Some(
            "throttlingexception" | "servicequotaexceededexception" | "toomanyrequestsexception",
        ) => FailureKind::RateLimited,
        Some("serviceunavailableexception" | "modelnotreadyexception") => FailureKind::Overloaded,
        Some("modeltimeoutexception") => FailureKind::Timeout,
        Some("validationexception") => FailureKind::BadRequest,
        Some("accessdeniedexception") => FailureKind::PermissionDenied,
        Some(
            "unrecognizedclientexception"
            | "invalidsignatureexception"
            | "incompletesignatureexception"
            | "expiredtokenexception"
            | "missingauthenticationtokenexception"
            | "invalidclienttokenid"
            | "signaturedoesnotmatch",
        ) => FailureKind::Authentication,
        Some("resourcenotfoundexception") => FailureKind::NotFound,
        Some("internalserverexception" | "modelerrorexception" | "modelstreamerrorexception") => {
            FailureKind::Server
        }
        _ => fallback,
    };
    if matches!(kind, FailureKind::BadRequest | FailureKind::ContentTooLarge)
        && exceeds_context(message)
    {
        FailureKind::ContextWindowExceeded
    } else {
        kind
    }
}

/// Whether a validation message says the prompt does not fit the model.
fn exceeds_context(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "input is too long",
        "prompt is too long",
        "too many input tokens",
        "context window",
        "context length",
        "input length",
    ]
    .iter()
    .any(|needle| m.contains(needle))
}

#[cfg(test)]
#[path = "bedrock_tests.rs"]
mod tests;
