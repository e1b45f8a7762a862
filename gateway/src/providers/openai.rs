//! OpenAI, Azure OpenAI and OpenAI-compatible servers (vLLM, Ollama, Groq, Mistral,
//! Together, DeepSeek…): the request passes through with only `model` replaced, unknown
//! fields included.
//!
//! - OpenAI / compatible: `POST {baseURL}/chat/completions`, `Authorization: Bearer`.
//! - Azure: `POST {baseURL}/openai/deployments/{deployment}/chat/completions?api-version=…`,
//!   `api-key` header; the deployment comes from `azure.deployments`, else the model name.
//! - Streams always ask upstream for `stream_options.include_usage`, so usage is metered
//!   even when the client did not ask for it (the server strips that chunk then).

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use serde::Deserialize;
use serde_json::Value;
use tollgate_crds::config::{ProviderConfig, ProviderType};

use super::{
    ChatAnswer, Failure, FailureKind, ProviderAdapter, RequestError, Secret, StreamTranslator,
    Target, UpstreamRequest, classify_status, quote, retry_after,
};
use crate::{
    stream::sse::SseDecoder,
    wire::openai::{
        ChatChunk, ChatRequest, ChatResponse, EmbeddingsRequest, EmbeddingsResponse, Message, Stop,
        StreamOptions, Tool, Usage,
    },
};

/// The OpenAI-type adapter.
#[derive(Clone, Copy, Debug, Default)]
pub struct OpenAI;

/// `POST` with JSON, the credential and the provider's extra headers.
pub(crate) fn json_request(
    url: String,
    provider: &ProviderConfig,
    auth: Option<(HeaderName, String)>,
    body: Vec<u8>,
) -> Result<UpstreamRequest, RequestError> {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    for h in &provider.headers {
        let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| {
            RequestError::new(
                format!("provider header {} is not a valid header name", h.name),
                None,
            )
        })?;
        let value = HeaderValue::from_str(&h.value).map_err(|_| {
            RequestError::new(
                format!("provider header {} has an invalid value", h.name),
                None,
            )
        })?;
        headers.insert(name, value);
    }
    if let Some((name, value)) = auth {
        let mut value = HeaderValue::from_str(&value).map_err(|_| {
            RequestError::new(
                "the provider credential contains characters not allowed in a header",
                None,
            )
        })?;
        value.set_sensitive(true);
        headers.insert(name, value);
    }
    Ok(UpstreamRequest {
        method: Method::POST,
        url,
        headers,
        body: Bytes::from(body),
    })
}

fn endpoint(target: &Target<'_>, path: &str) -> String {
    let p = target.provider;
    let base = p.base_url.as_deref().unwrap_or_default();
    match (&p.azure, p.provider_type) {
        (Some(azure), ProviderType::AzureOpenAI) => {
            let deployment = azure
                .deployments
                .get(target.model)
                .map_or(target.model, String::as_str);
            format!(
                "{base}/openai/deployments/{deployment}/{path}?api-version={}",
                azure.api_version
            )
        }
        _ => format!("{base}/{path}"),
    }
}

/// The credential header: `api-key` for Azure, else `Authorization: Bearer`.
pub(crate) fn auth(target: &Target<'_>) -> Option<(HeaderName, String)> {
    match target.secret {
        Some(Secret::ApiKey(key)) if target.provider.provider_type == ProviderType::AzureOpenAI => {
            Some((HeaderName::from_static("api-key"), key.expose().to_owned()))
        }
        Some(Secret::ApiKey(key)) => {
            Some((header::AUTHORIZATION, format!("Bearer {}", key.expose())))
        }
        _ => None,
    }
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, RequestError> {
    serde_json::to_vec(value)
        .map_err(|e| RequestError::new(format!("request cannot be encoded: {e}"), None))
}

/// The client's request as sent upstream: every field borrowed (nothing is copied), `model`
/// replaced, and `stream_options.include_usage` set on streams.
#[derive(serde::Serialize)]
struct Outgoing<'a> {
    model: &'a str,
    messages: &'a [Message],
    #[serde(skip_serializing_if = "Option::is_none")]
    stream: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tools: Option<&'a Vec<Tool>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    n: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop: Option<&'a Stop>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    #[serde(flatten)]
    rest: &'a serde_json::Map<String, Value>,
}

impl<'a> Outgoing<'a> {
    fn new(req: &'a ChatRequest, model: &'a str) -> Self {
        // No `..`: a field added to `ChatRequest` must be added here, or this fails to compile.
        let ChatRequest {
            model: _,
            messages,
            stream,
            stream_options,
            tools,
            tool_choice,
            response_format,
            n,
            stop,
            max_tokens,
            max_completion_tokens,
            temperature,
            top_p,
            seed,
            user,
            rest,
        } = req;
        let stream_options = if req.is_stream() {
            let mut options = stream_options.clone().unwrap_or_default();
            options.include_usage = Some(true);
            Some(options)
        } else {
            stream_options.clone()
        };
        Self {
            model,
            messages,
            stream: *stream,
            stream_options,
            tools: tools.as_ref(),
            tool_choice: tool_choice.as_ref(),
            response_format: response_format.as_ref(),
            n: *n,
            stop: stop.as_ref(),
            max_tokens: *max_tokens,
            max_completion_tokens: *max_completion_tokens,
            temperature: *temperature,
            top_p: *top_p,
            seed: *seed,
            user: user.as_deref(),
            rest,
        }
    }
}

impl ProviderAdapter for OpenAI {
    type Stream = OpenAIStream;

    fn chat_request(
        &self,
        target: &Target<'_>,
        req: &ChatRequest,
    ) -> Result<UpstreamRequest, RequestError> {
        let body = encode(&Outgoing::new(req, target.model))?;
        json_request(
            endpoint(target, "chat/completions"),
            target.provider,
            auth(target),
            body,
        )
    }

    fn chat_response(&self, _target: &Target<'_>, body: &[u8]) -> Result<ChatResponse, Failure> {
        serde_json::from_slice(body).map_err(|e| {
            Failure::protocol(format!("unreadable chat completion ({e}): {}", quote(body)))
        })
    }

    /// Passes the body through: only `model`, `choices` (that it is there) and `usage` are
    /// read, for metering; nothing is re-encoded.
    fn chat_answer(&self, _target: &Target<'_>, body: Bytes) -> Result<ChatAnswer, Failure> {
        #[derive(Deserialize)]
        struct Metered {
            model: String,
            #[allow(
                dead_code,
                reason = "required: a body without choices is no chat completion"
            )]
            choices: Vec<serde::de::IgnoredAny>,
            #[serde(default)]
            usage: Option<Usage>,
        }
        let metered: Metered = serde_json::from_slice(&body).map_err(|e| {
            Failure::protocol(format!(
                "unreadable chat completion ({e}): {}",
                quote(&body)
            ))
        })?;
        Ok(ChatAnswer {
            body,
            model: metered.model,
            usage: metered.usage,
        })
    }

    fn error(&self, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Failure {
        openai_error(status, headers, body)
    }

    fn stream(&self, _target: &Target<'_>) -> Self::Stream {
        OpenAIStream::default()
    }

    fn embeddings_request(
        &self,
        target: &Target<'_>,
        req: &EmbeddingsRequest,
    ) -> Result<UpstreamRequest, RequestError> {
        let mut upstream = req.clone();
        upstream.model = target.model.to_owned();
        json_request(
            endpoint(target, "embeddings"),
            target.provider,
            auth(target),
            encode(&upstream)?,
        )
    }

    fn embeddings_response(
        &self,
        _target: &Target<'_>,
        body: &[u8],
    ) -> Result<EmbeddingsResponse, Failure> {
        serde_json::from_slice(body).map_err(|e| {
            Failure::protocol(format!(
                "unreadable embeddings response ({e}): {}",
                quote(body)
            ))
        })
    }
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: ErrorFields,
}

#[derive(Deserialize)]
struct ErrorFields {
    #[serde(default)]
    message: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    code: Option<Value>,
}

/// Classifies an OpenAI-shaped error (also used for errors inside a stream).
pub(crate) fn openai_error(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Failure {
    let parsed: Option<ErrorFields> = serde_json::from_slice::<ErrorEnvelope>(body)
        .ok()
        .map(|e| e.error);
    let code = parsed
        .as_ref()
        .and_then(|e| e.code.as_ref())
        .and_then(Value::as_str)
        .unwrap_or_default();
    let kind_name = parsed
        .as_ref()
        .and_then(|e| e.kind.as_deref())
        .unwrap_or_default();
    let kind = match code {
        "context_length_exceeded" | "string_above_max_length" => FailureKind::ContextWindowExceeded,
        "rate_limit_exceeded" | "insufficient_quota" => FailureKind::RateLimited,
        // An error object inside a 200 stream: classify by its type.
        _ if status.is_success() => match kind_name {
            "invalid_request_error" => FailureKind::BadRequest,
            "rate_limit_error" | "tokens" | "requests" => FailureKind::RateLimited,
            _ => FailureKind::Server,
        },
        _ => classify_status(status),
    };
    Failure {
        kind,
        status: (!status.is_success()).then_some(status.as_u16()),
        message: parsed
            .and_then(|e| e.message)
            .unwrap_or_else(|| quote(body)),
        retry_after: retry_after(headers),
    }
}

/// Parses OpenAI SSE: `data: {chunk}` events until `data: [DONE]`.
#[derive(Debug, Default)]
pub struct OpenAIStream {
    decoder: SseDecoder,
    done: bool,
}

impl StreamTranslator for OpenAIStream {
    fn feed(&mut self, bytes: &[u8]) -> Result<Vec<ChatChunk>, Failure> {
        let events = self
            .decoder
            .feed(bytes)
            .map_err(|e| Failure::protocol(e.to_string()))?;
        let mut out = Vec::with_capacity(events.len());
        for event in events {
            let data = event.data.trim();
            if data == "[DONE]" {
                self.done = true;
                continue;
            }
            if self.done {
                return Err(Failure::protocol("data after [DONE]"));
            }
            let value: Value = serde_json::from_str(data).map_err(|e| {
                Failure::protocol(format!(
                    "unreadable stream event ({e}): {}",
                    quote(data.as_bytes())
                ))
            })?;
            if value.get("error").is_some() {
                return Err(openai_error(
                    StatusCode::OK,
                    &HeaderMap::new(),
                    data.as_bytes(),
                ));
            }
            let chunk: ChatChunk = serde_json::from_value(value).map_err(|e| {
                Failure::protocol(format!(
                    "unexpected stream chunk ({e}): {}",
                    quote(data.as_bytes())
                ))
            })?;
            out.push(chunk);
        }
        Ok(out)
    }

    fn finish(&mut self) -> Result<Vec<ChatChunk>, Failure> {
        if self.done {
            Ok(Vec::new())
        } else {
            Err(Failure::protocol("the upstream stream ended before [DONE]"))
        }
    }
}

#[cfg(test)]
#[path = "openai_tests.rs"]
mod tests;
