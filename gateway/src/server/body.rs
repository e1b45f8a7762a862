//! Request ids and bounded request bodies.

use axum::{
    body::Body,
    response::{IntoResponse, Response},
};
use http::{HeaderMap, HeaderValue};

use crate::error::GatewayError;

/// The client's `x-request-id` when it is short and printable, else a new UUID.
pub fn request_id(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned)
}

/// Reads at most `limit` bytes of body and parses it as JSON.
pub async fn json<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<T, GatewayError> {
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(GatewayError::PayloadTooLarge { limit });
    }
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|e| body_error(&e, limit))?;
    serde_json::from_slice(&bytes).map_err(|e| GatewayError::BadRequest {
        message: format!("the request body is not valid JSON for this endpoint: {e}"),
        param: None,
    })
}

/// Why a body could not be read: too large (413), too slow (408), or not valid HTTP framing
/// such as a malformed chunk (400).
fn body_error(e: &axum::Error, limit: usize) -> GatewayError {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.is::<http_body_util::LengthLimitError>() {
            return GatewayError::PayloadTooLarge { limit };
        }
        if let Some(t) = c.downcast_ref::<super::BodyTimeout>() {
            return GatewayError::RequestTimeout(t.0.as_secs().max(1));
        }
        cause = c.source();
    }
    GatewayError::BadRequest {
        message: "the request body could not be read: its HTTP framing is malformed".to_owned(),
        param: None,
    }
}

/// The response for a handler's result: errors as OpenAI JSON (logged once, here), and the
/// request id on every answer.
pub fn finish(
    operation: &str,
    request_id: &str,
    result: Result<Response, GatewayError>,
) -> Response {
    let mut response = match result {
        Ok(r) => r,
        Err(e) => {
            tracing::info!(request_id, operation, error = %e, status = e.parts().0.as_u16(), "request failed");
            e.into_response()
        }
    };
    if let Ok(id) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("x-request-id", id);
    }
    response
}
