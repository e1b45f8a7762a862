//! `GET /v1/models`: every route model name and alias.

use std::sync::Arc;

use axum::{
    Json,
    extract::State,
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use super::AppState;
use crate::error::GatewayError;

/// The handler.
pub async fn handle(State(app): State<Arc<AppState>>) -> Response {
    let Some(snapshot) = app.config.snapshot() else {
        return GatewayError::NotReady.into_response();
    };
    let data: Vec<Value> = snapshot
        .model_names()
        .into_iter()
        .map(|(name, route)| json!({"id": name, "object": "model", "created": 0, "owned_by": "tollgate", "route": route.id}))
        .collect();
    Json(json!({"object": "list", "data": data})).into_response()
}

/// Any other path: an OpenAI-style 404.
pub async fn not_found() -> Response {
    let body = json!({"error": {"message": "Unknown endpoint: this gateway serves /v1/chat/completions, /v1/embeddings, /v1/responses and /v1/models", "type": "invalid_request_error", "param": null, "code": "unknown_url"}});
    (http::StatusCode::NOT_FOUND, Json(body)).into_response()
}

/// A known path with the wrong method: an OpenAI-style 405 (axum's default has no body).
pub async fn method_not_allowed(method: http::Method, uri: http::Uri) -> Response {
    let path = crate::error::clip(uri.path(), crate::error::MAX_QUOTE);
    let body = json!({"error": {"message": format!("{path} does not accept {method}"), "type": "invalid_request_error", "param": null, "code": "method_not_allowed"}});
    (http::StatusCode::METHOD_NOT_ALLOWED, Json(body)).into_response()
}
