//! Provider adapters: pure translation between OpenAI's chat API and each provider's, with no
//! I/O. Each provider is one module implementing [`ProviderAdapter`]; the closed [`Adapter`]
//! enum dispatches by `match`, so the hot path has no trait objects.

pub mod anthropic;
pub mod bedrock;
pub mod gemini;
pub mod mock;
pub mod openai;

use std::{fmt, time::Duration};

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use tollgate_crds::config::{ProviderConfig, ProviderType};

use crate::wire::openai::{
    ChatChunk, ChatRequest, ChatResponse, EmbeddingsRequest, EmbeddingsResponse,
};

/// A secret value that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; call only where it is sent upstream.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(<redacted>)")
    }
}

/// One credential with its secret material, read from the mounted Secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Secret {
    /// An API key.
    ApiKey(SecretString),
    /// AWS access keys for SigV4.
    Aws {
        /// Access key id.
        access_key_id: SecretString,
        /// Secret access key.
        secret_access_key: SecretString,
        /// Session token for temporary credentials.
        session_token: Option<SecretString>,
    },
}

/// Everything an adapter needs to address one backend.
#[derive(Clone, Copy, Debug)]
pub struct Target<'a> {
    /// The provider, resolved.
    pub provider: &'a ProviderConfig,
    /// The provider's model id.
    pub model: &'a str,
    /// The credential to use (`None` for `mock` and keyless `openai-compatible`).
    pub secret: Option<&'a Secret>,
    /// The gateway's request id, for ids of translated responses.
    pub request_id: &'a str,
    /// Unix seconds when the gateway received the request, for `created`.
    pub created: i64,
}

/// An HTTP request to send upstream.
#[derive(Clone, Debug)]
pub struct UpstreamRequest {
    /// Method.
    pub method: Method,
    /// Absolute URL.
    pub url: String,
    /// Headers, credentials included (never log them).
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

/// A client request the adapter cannot translate (HTTP 400 to the client, no fallback).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RequestError {
    /// What is wrong, naming the parameter.
    pub message: String,
    /// The offending parameter, if any.
    pub param: Option<String>,
}

impl RequestError {
    /// An error about `param`.
    pub fn new(message: impl Into<String>, param: Option<&str>) -> Self {
        Self {
            message: message.into(),
            param: param.map(str::to_owned),
        }
    }
}

/// How an upstream failure is classified: decides retry, fallback and the client's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// The connection could not be established.
    Connect,
    /// A connect, first-token, idle or total timeout.
    Timeout,
    /// HTTP 429 or a provider's rate-limit error.
    RateLimited,
    /// The provider says it is overloaded (Anthropic 529, "overloaded_error", Bedrock throttling).
    Overloaded,
    /// HTTP 5xx.
    Server,
    /// The prompt does not fit this model's context window.
    ContextWindowExceeded,
    /// The request is too large for this provider.
    ContentTooLarge,
    /// The provider refused the request as malformed (the client's fault: no fallback).
    BadRequest,
    /// The provider refused our credential (ours to fix: try another backend).
    Authentication,
    /// The credential lacks permission for this model.
    PermissionDenied,
    /// The provider does not know the model or URL.
    NotFound,
    /// The provider answered something we cannot parse, or cut the stream.
    Protocol,
}

impl FailureKind {
    /// A short label for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Connect => "connect_error",
            FailureKind::Timeout => "timeout",
            FailureKind::RateLimited => "rate_limited",
            FailureKind::Overloaded => "overloaded",
            FailureKind::Server => "server_error",
            FailureKind::ContextWindowExceeded => "context_window_exceeded",
            FailureKind::ContentTooLarge => "content_too_large",
            FailureKind::BadRequest => "bad_request",
            FailureKind::Authentication => "authentication",
            FailureKind::PermissionDenied => "permission_denied",
            FailureKind::NotFound => "not_found",
            FailureKind::Protocol => "protocol_error",
        }
    }

    /// Whether another backend may succeed where this one failed. Client errors never fall
    /// back: another provider would refuse the same bad request.
    pub fn falls_back(self) -> bool {
        !matches!(self, FailureKind::BadRequest)
    }
}

/// A failed upstream call.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    /// Classification.
    pub kind: FailureKind,
    /// Upstream HTTP status, if there was a response.
    pub status: Option<u16>,
    /// The provider's message (capped, never containing our credentials).
    pub message: String,
    /// `Retry-After`, when the provider sent one.
    pub retry_after: Option<Duration>,
}

impl Failure {
    /// A failure without an HTTP status.
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            status: None,
            message: message.into(),
            retry_after: None,
        }
    }

    /// A malformed upstream answer.
    pub fn protocol(message: impl Into<String>) -> Self {
        Self::new(FailureKind::Protocol, message)
    }

    /// The message to show clients and logs. Authentication errors are replaced: providers
    /// quote (part of) the rejected key in them.
    pub fn safe_message(&self) -> &str {
        match self.kind {
            FailureKind::Authentication => {
                "the provider rejected the gateway's credential; check the LLMProvider's Secret"
            }
            _ => &self.message,
        }
    }
}

/// Upstream error bodies are quoted in messages up to this many bytes.
pub const MAX_ERROR_QUOTE: usize = 1024;

/// The first [`MAX_ERROR_QUOTE`] bytes of a body as text, for messages.
pub fn quote(body: &[u8]) -> String {
    let cut = body.len().min(MAX_ERROR_QUOTE);
    let mut text = String::from_utf8_lossy(&body[..cut]).into_owned();
    if body.len() > cut {
        text.push('…');
    }
    text
}

/// `Retry-After` in seconds or an HTTP date's distance from now; `retry-after-ms` too.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    if let Some(ms) = headers
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        && ms.is_finite()
        && ms >= 0.0
    {
        return Duration::try_from_secs_f64(ms / 1000.0).ok();
    }
    let value = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    let delta = when.duration_since(jiff::Timestamp::now());
    Some(Duration::try_from(delta).unwrap_or_default())
}

/// The default classification of an HTTP status, before a provider's body refines it.
pub fn classify_status(status: StatusCode) -> FailureKind {
    match status.as_u16() {
        400 | 422 => FailureKind::BadRequest,
        401 => FailureKind::Authentication,
        403 => FailureKind::PermissionDenied,
        404 => FailureKind::NotFound,
        408 => FailureKind::Timeout,
        413 => FailureKind::ContentTooLarge,
        429 => FailureKind::RateLimited,
        503 | 529 => FailureKind::Overloaded,
        s if s >= 500 => FailureKind::Server,
        _ => FailureKind::Protocol,
    }
}

/// Translates a provider's raw response stream into OpenAI chunks. Pure: bytes in, chunks
/// out, tested on every split of recorded streams.
pub trait StreamTranslator {
    /// Feeds upstream bytes (any split); returns the chunks they complete.
    fn feed(&mut self, bytes: &[u8]) -> Result<Vec<ChatChunk>, Failure>;
    /// The upstream body ended. Returns the last chunks (a usage-only chunk when usage is
    /// known) or a [`FailureKind::Protocol`] failure when the stream ended before the
    /// provider's end marker: a cut stream must never look like a clean finish.
    fn finish(&mut self) -> Result<Vec<ChatChunk>, Failure>;
}

/// One provider API.
pub trait ProviderAdapter {
    /// Its stream translator.
    type Stream: StreamTranslator;

    /// The upstream request for a chat completion (streamed when `req.is_stream()`).
    fn chat_request(
        &self,
        target: &Target<'_>,
        req: &ChatRequest,
    ) -> Result<UpstreamRequest, RequestError>;

    /// Parses a successful (2xx) non-streamed answer.
    fn chat_response(&self, target: &Target<'_>, body: &[u8]) -> Result<ChatResponse, Failure>;

    /// Classifies a non-2xx answer, refining [`classify_status`] from the body.
    fn error(&self, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Failure;

    /// A translator for one streamed answer.
    fn stream(&self, target: &Target<'_>) -> Self::Stream;

    /// The upstream request for embeddings; providers without an embeddings API refuse.
    fn embeddings_request(
        &self,
        target: &Target<'_>,
        req: &EmbeddingsRequest,
    ) -> Result<UpstreamRequest, RequestError> {
        let _ = req;
        Err(RequestError::new(
            format!(
                "provider type {} has no embeddings API",
                target.provider.provider_type.as_str()
            ),
            Some("model"),
        ))
    }

    /// Parses a successful embeddings answer.
    fn embeddings_response(
        &self,
        target: &Target<'_>,
        body: &[u8],
    ) -> Result<EmbeddingsResponse, Failure> {
        let _ = (target, body);
        Err(Failure::protocol("this provider has no embeddings API"))
    }
}

/// The adapter for each provider type.
#[derive(Clone, Copy, Debug)]
pub enum Adapter {
    /// OpenAI, Azure OpenAI and OpenAI-compatible servers.
    OpenAI(openai::OpenAI),
    /// Anthropic Messages.
    Anthropic(anthropic::Anthropic),
    /// Gemini generateContent.
    Gemini(gemini::Gemini),
    /// Bedrock Converse.
    Bedrock(bedrock::Bedrock),
    /// The in-process test double.
    Mock(mock::Mock),
}

/// A stream translator of any adapter.
pub enum AnyStream {
    /// OpenAI-type.
    OpenAI(<openai::OpenAI as ProviderAdapter>::Stream),
    /// Anthropic.
    Anthropic(<anthropic::Anthropic as ProviderAdapter>::Stream),
    /// Gemini.
    Gemini(<gemini::Gemini as ProviderAdapter>::Stream),
    /// Bedrock.
    Bedrock(<bedrock::Bedrock as ProviderAdapter>::Stream),
    /// Mock.
    Mock(<mock::Mock as ProviderAdapter>::Stream),
}

macro_rules! dispatch {
    ($self:expr, $a:ident => $body:expr) => {
        match $self {
            Adapter::OpenAI($a) => $body,
            Adapter::Anthropic($a) => $body,
            Adapter::Gemini($a) => $body,
            Adapter::Bedrock($a) => $body,
            Adapter::Mock($a) => $body,
        }
    };
}

impl Adapter {
    /// The adapter for a provider type.
    pub fn for_type(provider_type: ProviderType) -> Self {
        match provider_type {
            ProviderType::OpenAI | ProviderType::AzureOpenAI | ProviderType::OpenAICompatible => {
                Adapter::OpenAI(openai::OpenAI)
            }
            ProviderType::Anthropic => Adapter::Anthropic(anthropic::Anthropic),
            ProviderType::Gemini => Adapter::Gemini(gemini::Gemini),
            ProviderType::Bedrock => Adapter::Bedrock(bedrock::Bedrock),
            ProviderType::Mock => Adapter::Mock(mock::Mock),
        }
    }

    /// See [`ProviderAdapter::chat_request`].
    pub fn chat_request(
        &self,
        target: &Target<'_>,
        req: &ChatRequest,
    ) -> Result<UpstreamRequest, RequestError> {
        dispatch!(self, a => a.chat_request(target, req))
    }

    /// See [`ProviderAdapter::chat_response`].
    pub fn chat_response(&self, target: &Target<'_>, body: &[u8]) -> Result<ChatResponse, Failure> {
        dispatch!(self, a => a.chat_response(target, body))
    }

    /// See [`ProviderAdapter::error`].
    pub fn error(&self, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Failure {
        dispatch!(self, a => a.error(status, headers, body))
    }

    /// See [`ProviderAdapter::embeddings_request`].
    pub fn embeddings_request(
        &self,
        target: &Target<'_>,
        req: &EmbeddingsRequest,
    ) -> Result<UpstreamRequest, RequestError> {
        dispatch!(self, a => a.embeddings_request(target, req))
    }

    /// See [`ProviderAdapter::embeddings_response`].
    pub fn embeddings_response(
        &self,
        target: &Target<'_>,
        body: &[u8],
    ) -> Result<EmbeddingsResponse, Failure> {
        dispatch!(self, a => a.embeddings_response(target, body))
    }

    /// See [`ProviderAdapter::stream`].
    pub fn stream(&self, target: &Target<'_>) -> AnyStream {
        match self {
            Adapter::OpenAI(a) => AnyStream::OpenAI(a.stream(target)),
            Adapter::Anthropic(a) => AnyStream::Anthropic(a.stream(target)),
            Adapter::Gemini(a) => AnyStream::Gemini(a.stream(target)),
            Adapter::Bedrock(a) => AnyStream::Bedrock(a.stream(target)),
            Adapter::Mock(a) => AnyStream::Mock(a.stream(target)),
        }
    }
}

impl StreamTranslator for AnyStream {
    fn feed(&mut self, bytes: &[u8]) -> Result<Vec<ChatChunk>, Failure> {
        match self {
            AnyStream::OpenAI(s) => s.feed(bytes),
            AnyStream::Anthropic(s) => s.feed(bytes),
            AnyStream::Gemini(s) => s.feed(bytes),
            AnyStream::Bedrock(s) => s.feed(bytes),
            AnyStream::Mock(s) => s.feed(bytes),
        }
    }

    fn finish(&mut self) -> Result<Vec<ChatChunk>, Failure> {
        match self {
            AnyStream::OpenAI(s) => s.finish(),
            AnyStream::Anthropic(s) => s.finish(),
            AnyStream::Gemini(s) => s.finish(),
            AnyStream::Bedrock(s) => s.finish(),
            AnyStream::Mock(s) => s.finish(),
        }
    }
}

/// OpenAI `finish_reason` for a provider stop reason that has no direct equivalent.
pub const FINISH_STOP: &str = "stop";
/// Output limit reached.
pub const FINISH_LENGTH: &str = "length";
/// The model called tools.
pub const FINISH_TOOL_CALLS: &str = "tool_calls";
/// Content was filtered.
pub const FINISH_CONTENT_FILTER: &str = "content_filter";
