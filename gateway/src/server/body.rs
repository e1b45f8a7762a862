//! Request ids and bounded request bodies.

use axum::{body::Body, response::Response};
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
    parse(&bytes)
}

/// Parses a JSON body; an error names the field it is about (`messages[0].content`, also
/// as `param`) in words a client understands, not the gateway's Rust types, and quotes at
/// most a few hundred bytes of what the client sent.
pub fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, GatewayError> {
    // The path tracker allocates per key: parse plainly, and again with it only on failure.
    if let Ok(value) = serde_json::from_slice(bytes) {
        return Ok(value);
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let error = e.into_inner();
        let what = if error.is_syntax() || error.is_eof() {
            "the request body is not valid JSON".to_owned()
        } else {
            plain_words(&error)
        };
        let at = format!("line {} column {}", error.line(), error.column());
        if path.is_empty() || path == "." {
            GatewayError::BadRequest {
                message: format!("{what} ({at})"),
                param: None,
            }
        } else {
            GatewayError::BadRequest {
                message: format!("invalid `{path}`: {what} ({at})"),
                param: Some(crate::error::clip(&path, 200)),
            }
        }
    })
}

/// serde's message without its position, with the Rust type names it may carry replaced.
fn plain_words(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let text = text
        .rsplit_once(" at line ")
        .map_or(text.as_str(), |(head, _)| head);
    if text.contains("did not match any variant of untagged enum") {
        return "the value has none of the accepted shapes (see the OpenAI API reference for this field)".to_owned();
    }
    let text = match text.split_once(", expected struct ") {
        Some((head, _)) => format!("{head}, expected an object"),
        None => text.to_owned(),
    };
    crate::error::clip(&text, crate::error::MAX_QUOTE)
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

/// The response for a handler's result: errors rendered by `render` in the door's dialect
/// (logged once, here), and the request id on every answer.
pub fn finish(
    operation: &str,
    request_id: &str,
    result: Result<Response, GatewayError>,
    render: fn(GatewayError) -> Response,
) -> Response {
    let mut response = match result {
        Ok(r) => r,
        Err(e) => {
            tracing::info!(request_id, operation, error = %e, status = e.parts().0.as_u16(), "request failed");
            render(e)
        }
    };
    if let Ok(id) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("x-request-id", id);
    }
    response
}
