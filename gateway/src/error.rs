//! The gateway's one error type and the one place that turns it into an OpenAI-style JSON
//! response with the right status code.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

use crate::{
    providers::{Failure, FailureKind, RequestError},
    wire::openai::{ErrorBody, ErrorDetail},
};

/// Most bytes of client-supplied text (a model name, a serde message quoting a value) an
/// error message or log line quotes.
pub const MAX_QUOTE: usize = 256;

/// `text` cut to at most `max` bytes on a character boundary, with `…` when cut.
pub fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Which side of the exchange a rule fired on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PolicyStage {
    /// The prompt.
    Prompt,
    /// The answer.
    Response,
}

impl PolicyStage {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyStage::Prompt => "prompt",
            PolicyStage::Response => "response",
        }
    }
}

/// A refusal: which rule, on which side. Never carries the matched text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{} was blocked by guardrail rule {rule} (content policy)", match .stage { PolicyStage::Prompt => "the prompt", PolicyStage::Response => "the answer" })]
pub struct Violation {
    /// The rule's name (`pii.email`, `blockedPatterns[2]`, `maxPromptTokens`…).
    pub rule: String,
    /// Prompt or answer.
    pub stage: PolicyStage,
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The client sent something we cannot use. Messages may quote client text (a field
    /// name, a value): they are clipped.
    #[error("{}", clip(message, 4 * MAX_QUOTE))]
    BadRequest {
        /// What is wrong.
        message: String,
        /// The offending parameter.
        param: Option<String>,
    },
    /// The body is larger than the limit.
    #[error("request body exceeds {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The request body did not arrive within the body-read timeout.
    #[error("the request body did not arrive within {0} seconds")]
    RequestTimeout(u64),
    /// No route serves the model.
    #[error("The model `{}` does not exist or you do not have access to it.", clip(.0, MAX_QUOTE))]
    ModelNotFound(String),
    /// The route has no usable backend for this request.
    #[error(
        "no backend is available for model `{}`: {why}",
        clip(model, MAX_QUOTE)
    )]
    NoBackend {
        /// The requested model.
        model: String,
        /// Why.
        why: String,
    },
    /// No valid configuration is loaded yet.
    #[error("the gateway has no valid configuration loaded yet")]
    NotReady,
    /// The client key is missing, unknown, expired, or may not use the route.
    #[error("{0}")]
    Unauthorized(crate::identity::AuthError),
    /// A `reject` budget in scope has no room for this request.
    #[error("budget {budget} is exhausted for its current period")]
    BudgetExceeded {
        /// The budget's id.
        budget: String,
    },
    /// A route rate limit has no room for this request (429 with `Retry-After` and the
    /// `x-ratelimit-*` headers).
    #[error("{}", .0.message)]
    RateLimited(Box<crate::limits::Refusal>),
    /// Rate limits, budgets or shared quotas could not be checked (the shared state is
    /// down) and the gateway is set to fail closed.
    #[error(
        "rate limits and budgets cannot be checked right now (shared state unavailable); try again shortly"
    )]
    StateUnavailable,
    /// The route's guardrails refused the prompt or the answer. Names the rule, never the
    /// matched text.
    #[error("{0}")]
    ContentPolicy(Violation),
    /// The gateway failed itself (a bug, not the client's or a provider's fault).
    #[error("internal error: {0}")]
    Internal(&'static str),
    /// Every attempt failed; this is the last failure. Displays (and so logs) the safe
    /// message the client sees, never the provider's raw text.
    #[error("{}", .0.safe_message())]
    Upstream(Failure),
}

impl From<RequestError> for GatewayError {
    fn from(e: RequestError) -> Self {
        GatewayError::BadRequest {
            message: e.message,
            param: e.param,
        }
    }
}

impl GatewayError {
    /// Status, OpenAI error `type` and `code`.
    pub fn parts(&self) -> (StatusCode, &'static str, Option<&'static str>) {
        match self {
            GatewayError::BadRequest { .. } => {
                (StatusCode::BAD_REQUEST, "invalid_request_error", None)
            }
            GatewayError::PayloadTooLarge { .. } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request_error",
                Some("request_too_large"),
            ),
            GatewayError::RequestTimeout(_) => (
                StatusCode::REQUEST_TIMEOUT,
                "invalid_request_error",
                Some("request_timeout"),
            ),
            GatewayError::ModelNotFound(_) => (
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                Some("model_not_found"),
            ),
            GatewayError::NoBackend { .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "api_error",
                Some("no_backend_available"),
            ),
            GatewayError::Unauthorized(e) => {
                let (status, kind, code) = e.parts();
                (status, kind, Some(code))
            }
            GatewayError::BudgetExceeded { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "insufficient_quota",
                Some("budget_exceeded"),
            ),
            GatewayError::NotReady => (
                StatusCode::SERVICE_UNAVAILABLE,
                "api_error",
                Some("not_ready"),
            ),
            GatewayError::RateLimited(r) => (
                StatusCode::TOO_MANY_REQUESTS,
                r.kind,
                Some("rate_limit_exceeded"),
            ),
            GatewayError::StateUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "api_error",
                Some("state_unavailable"),
            ),
            GatewayError::ContentPolicy(_) => (
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                Some("content_policy_violation"),
            ),
            GatewayError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "api_error",
                Some("internal_error"),
            ),
            GatewayError::Upstream(f) => match f.kind {
                FailureKind::ContentPolicy => (
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    Some("content_policy_violation"),
                ),
                FailureKind::BadRequest => (StatusCode::BAD_REQUEST, "invalid_request_error", None),
                FailureKind::ContextWindowExceeded => (
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    Some("context_length_exceeded"),
                ),
                FailureKind::ContentTooLarge => (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "invalid_request_error",
                    Some("request_too_large"),
                ),
                FailureKind::RateLimited => (
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limit_error",
                    Some("rate_limit_exceeded"),
                ),
                FailureKind::Overloaded => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "api_error",
                    Some("upstream_overloaded"),
                ),
                FailureKind::Timeout => (
                    StatusCode::GATEWAY_TIMEOUT,
                    "api_error",
                    Some("upstream_timeout"),
                ),
                FailureKind::Connect => (
                    StatusCode::BAD_GATEWAY,
                    "api_error",
                    Some("upstream_unreachable"),
                ),
                FailureKind::Server | FailureKind::Protocol => {
                    (StatusCode::BAD_GATEWAY, "api_error", Some("upstream_error"))
                }
                // The provider refused *our* credential or model: not the client's fault.
                FailureKind::Authentication
                | FailureKind::PermissionDenied
                | FailureKind::NotFound => (
                    StatusCode::BAD_GATEWAY,
                    "api_error",
                    Some("upstream_configuration_error"),
                ),
            },
        }
    }

    /// The OpenAI error body.
    pub fn body(&self) -> ErrorBody {
        let (_, kind, code) = self.parts();
        let message = match self {
            GatewayError::Upstream(f) if f.kind == FailureKind::ContentPolicy => f.message.clone(),
            GatewayError::Upstream(f) => match f.status {
                Some(status) => format!("upstream returned {status}: {}", f.safe_message()),
                None => format!("upstream {}: {}", f.kind.as_str(), f.safe_message()),
            },
            other => other.to_string(),
        };
        ErrorBody {
            error: ErrorDetail {
                message,
                kind: kind.to_owned(),
                param: match self {
                    GatewayError::BadRequest { param, .. } => {
                        param.as_deref().map(|p| clip(p, MAX_QUOTE))
                    }
                    GatewayError::ModelNotFound(_) => Some("model".to_owned()),
                    _ => None,
                },
                code: code.map(str::to_owned),
            },
        }
    }

    /// A label for the `error_type` metric label.
    pub fn metric_label(&self) -> &'static str {
        match self {
            GatewayError::BadRequest { .. } => "bad_request",
            GatewayError::PayloadTooLarge { .. } => "payload_too_large",
            GatewayError::RequestTimeout(_) => "request_timeout",
            GatewayError::ModelNotFound(_) => "model_not_found",
            GatewayError::NoBackend { .. } => "no_backend",
            GatewayError::Unauthorized(_) => "unauthorized",
            GatewayError::BudgetExceeded { .. } => "budget_exceeded",
            GatewayError::NotReady => "not_ready",
            GatewayError::RateLimited(_) => "rate_limited",
            GatewayError::StateUnavailable => "state_unavailable",
            GatewayError::ContentPolicy(_) => "content_policy_violation",
            GatewayError::Internal(_) => "internal_error",
            GatewayError::Upstream(f) => f.kind.as_str(),
        }
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let (status, _, _) = self.parts();
        let body = serde_json::to_vec(&self.body()).unwrap_or_default();
        let mut response =
            (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
        if let GatewayError::Upstream(f) = &self
            && let Some(after) = f.retry_after
            && let Ok(value) = HeaderValue::from_str(&after.as_secs().max(1).to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        let wait = match &self {
            GatewayError::RateLimited(r) => {
                r.headers.apply(response.headers_mut());
                Some(r.retry_after)
            }
            GatewayError::StateUnavailable => Some(std::time::Duration::from_secs(1)),
            _ => None,
        };
        if let Some(wait) = wait {
            // Whole seconds, rounded up: a client retrying at once would be refused again.
            let seconds = u64::try_from(wait.as_millis().div_ceil(1000).max(1)).unwrap_or(u64::MAX);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn upstream_failures_map_to_openai_statuses() {
        let cases = [
            (FailureKind::RateLimited, 429, "rate_limit_error"),
            (FailureKind::Timeout, 504, "api_error"),
            (FailureKind::Connect, 502, "api_error"),
            (FailureKind::Overloaded, 503, "api_error"),
            (FailureKind::BadRequest, 400, "invalid_request_error"),
            (
                FailureKind::ContextWindowExceeded,
                400,
                "invalid_request_error",
            ),
            (FailureKind::Authentication, 502, "api_error"),
        ];
        for (kind, status, kind_name) in cases {
            let e = GatewayError::Upstream(Failure::new(kind, "x"));
            assert_eq!(e.parts().0.as_u16(), status, "{kind:?}");
            assert_eq!(e.body().error.kind, kind_name);
        }
    }

    #[test]
    fn rate_limits_carry_retry_after_to_the_client() {
        let mut f = Failure::new(FailureKind::RateLimited, "slow down");
        f.retry_after = Some(Duration::from_secs(7));
        let response = GatewayError::Upstream(f).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "7");
    }

    #[test]
    fn rejected_credentials_are_never_quoted() {
        let mut f = Failure::new(
            FailureKind::Authentication,
            "Incorrect API key provided: sk-proj-****abcd",
        );
        f.status = Some(401);
        let body = GatewayError::Upstream(f).body();
        assert!(
            !body.error.message.contains("sk-proj"),
            "{}",
            body.error.message
        );
        assert!(
            body.error
                .message
                .contains("rejected the gateway's credential")
        );
    }

    #[test]
    fn the_logged_text_of_an_upstream_failure_is_the_redacted_one() {
        let f = Failure::new(
            FailureKind::Authentication,
            "Incorrect API key provided: sk-live-TOPSECRET",
        );
        let logged = GatewayError::Upstream(f).to_string();
        assert!(!logged.contains("TOPSECRET"), "{logged}");
    }

    #[test]
    fn a_huge_model_name_is_quoted_only_in_part() {
        let e = GatewayError::ModelNotFound("m".repeat(1 << 20));
        assert!(
            e.to_string().len() < 2 * MAX_QUOTE,
            "the log line is bounded"
        );
        assert!(e.body().error.message.len() < 2 * MAX_QUOTE);
        assert_eq!(clip("ééé", 3), "é…", "cut on a character boundary");
    }

    #[test]
    fn bad_request_messages_and_params_are_clipped() {
        let e = GatewayError::BadRequest {
            message: format!("unknown field {}", "x".repeat(1 << 20)),
            param: Some("x".repeat(1 << 20)),
        };
        assert!(e.to_string().len() <= 4 * MAX_QUOTE + 3);
        let body = e.body();
        assert!(body.error.message.len() <= 4 * MAX_QUOTE + 3);
        assert!(body.error.param.unwrap().len() <= MAX_QUOTE + 3);
    }

    #[test]
    fn unknown_models_name_the_param() {
        let body = GatewayError::ModelNotFound("gpt-9".into()).body();
        assert_eq!(body.error.param.as_deref(), Some("model"));
        assert_eq!(body.error.code.as_deref(), Some("model_not_found"));
        assert!(body.error.message.contains("gpt-9"));
    }
}
