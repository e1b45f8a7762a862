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

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The client sent something we cannot use.
    #[error("{message}")]
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
    #[error("The model `{0}` does not exist or you do not have access to it.")]
    ModelNotFound(String),
    /// The route has no usable backend for this request.
    #[error("no backend is available for model `{model}`: {why}")]
    NoBackend {
        /// The requested model.
        model: String,
        /// Why.
        why: String,
    },
    /// No valid configuration is loaded yet.
    #[error("the gateway has no valid configuration loaded yet")]
    NotReady,
    /// Every attempt failed; this is the last failure.
    #[error("{0}")]
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
            GatewayError::NotReady => (
                StatusCode::SERVICE_UNAVAILABLE,
                "api_error",
                Some("not_ready"),
            ),
            GatewayError::Upstream(f) => match f.kind {
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
                    GatewayError::BadRequest { param, .. } => param.clone(),
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
            GatewayError::NotReady => "not_ready",
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
    fn unknown_models_name_the_param() {
        let body = GatewayError::ModelNotFound("gpt-9".into()).body();
        assert_eq!(body.error.param.as_deref(), Some("model"));
        assert_eq!(body.error.code.as_deref(), Some("model_not_found"));
        assert!(body.error.message.contains("gpt-9"));
    }
}
