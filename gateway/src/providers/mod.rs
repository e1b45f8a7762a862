//! Provider adapters: pure translation between OpenAI's chat API and each provider's, with no
//! I/O. Each provider is one module implementing [`ProviderAdapter`]; the closed [`Adapter`]
//! enum dispatches by `match`, so the hot path has no trait objects.

pub mod anthropic;
pub mod bedrock;
pub mod gemini;
pub mod mock;
pub mod openai;

pub use crate::failure::{
    Failure, FailureKind, MAX_ERROR_QUOTE, classify_status, quote, retry_after,
};

use std::fmt;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use tollgate_crds::config::{ProviderConfig, ProviderType};

use crate::wire::openai::{
    ChatChunk, ChatRequest, ChatResponse, EmbeddingsRequest, EmbeddingsResponse, Usage,
};

/// A successful non-streamed chat answer, encoded for the client, with what it meters.
#[derive(Clone, Debug)]
pub struct ChatAnswer {
    /// The client's body (OpenAI JSON).
    pub body: Bytes,
    /// The model that answered.
    pub model: String,
    /// Token usage, when the provider reported it.
    pub usage: Option<Usage>,
}

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
    /// Whether the route's guardrails check answers: a stream must then reach the client
    /// through the pipeline's chunk filters, never as raw passthrough.
    pub answers_checked: bool,
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

    /// The client's body for a successful answer: by default parsed with
    /// [`chat_response`](Self::chat_response) and encoded again; an adapter whose provider
    /// already speaks OpenAI may pass the body through.
    fn chat_answer(&self, target: &Target<'_>, body: Bytes) -> Result<ChatAnswer, Failure> {
        let answer = self.chat_response(target, &body)?;
        let encoded = serde_json::to_vec(&answer)
            .map_err(|e| Failure::protocol(format!("answer cannot be encoded: {e}")))?;
        Ok(ChatAnswer {
            body: Bytes::from(encoded),
            model: answer.model,
            usage: answer.usage,
        })
    }

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
    /// Anthropic (boxed: its usage and tool state make it several times the others' size).
    Anthropic(Box<<anthropic::Anthropic as ProviderAdapter>::Stream>),
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

    /// See [`ProviderAdapter::chat_answer`].
    pub fn chat_answer(&self, target: &Target<'_>, body: Bytes) -> Result<ChatAnswer, Failure> {
        dispatch!(self, a => a.chat_answer(target, body))
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
            Adapter::Anthropic(a) => AnyStream::Anthropic(Box::new(a.stream(target))),
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
