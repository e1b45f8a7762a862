//! `GET` and `DELETE /v1/responses/{id}`: the responses the gateway stored for translated
//! backends, as the caller's key sees them (see `pipeline::responses::store`). A response
//! that is not there, expired, or stored for another key is the same OpenAI-style 404.

use std::sync::Arc;

use axum::{
    Json,
    extract::{Path, State},
    response::{IntoResponse, Response},
};
use http::{HeaderMap, StatusCode};
use serde_json::json;

use super::AppState;
use crate::{
    error::{GatewayError, MAX_QUOTE, clip},
    pipeline::responses::store::ResponseStore,
};

/// The caller's store, or the error to answer with.
fn store(app: &AppState, headers: &HeaderMap) -> Result<ResponseStore, GatewayError> {
    let snapshot = app.config.snapshot().ok_or(GatewayError::NotReady)?;
    let identity = snapshot
        .keys
        .caller(headers, app.pays.budgets.clock.now())
        .map_err(GatewayError::Unauthorized)?;
    Ok(ResponseStore::new(&app.pays, &identity))
}

fn not_found(id: &str) -> Response {
    let body = json!({"error": {
        "message": format!("No response with id '{}' found.", clip(id, MAX_QUOTE)),
        "type": "invalid_request_error", "param": null, "code": "response_not_found",
    }});
    (StatusCode::NOT_FOUND, Json(body)).into_response()
}

fn unavailable(e: &crate::state::StateError) -> Response {
    tracing::warn!(error = %e, "stored responses unavailable");
    let body = json!({"error": {
        "message": "stored responses are unavailable right now; retry later",
        "type": "api_error", "param": null, "code": "state_unavailable",
    }});
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}

/// `GET /v1/responses/{id}`.
pub async fn get(
    State(app): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let store = match store(&app, &headers) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    match store.load(&id).await {
        Ok(Some(stored)) => Json(stored.response).into_response(),
        Ok(None) => not_found(&id),
        Err(e) => unavailable(&e),
    }
}

/// `DELETE /v1/responses/{id}`.
pub async fn delete(
    State(app): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let store = match store(&app, &headers) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    match store.delete(&id).await {
        Ok(true) => Json(json!({"id": id, "object": "response", "deleted": true})).into_response(),
        Ok(false) => not_found(&id),
        Err(e) => unavailable(&e),
    }
}
