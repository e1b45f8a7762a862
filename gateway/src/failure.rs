//! The failure taxonomy: how a failed upstream call is classified ([`FailureKind`]), which
//! decides retry, fallback, ejection and the client's status. Adapters refine the default
//! classification of an HTTP status from the provider's error body.

use std::time::Duration;

use http::{HeaderMap, StatusCode};

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
    /// The route's guardrails blocked the answer (not the provider's fault).
    ContentPolicy,
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
            FailureKind::ContentPolicy => "content_policy_violation",
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
