//! The API handlers: request id, bounded body, then the attempt pipeline for the
//! operation; errors become OpenAI JSON once, here.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    response::Response,
};
use tokio::time::Instant;

use super::{AppState, body};
use crate::pipeline::{self, Operation};

/// `POST` handler for operation `O`.
pub async fn handle<O: Operation>(State(app): State<Arc<AppState>>, request: Request) -> Response {
    let started = Instant::now();
    let request_id = body::request_id(request.headers());
    let (parts, raw) = request.into_parts();
    let result = match body::json::<O::Request>(&parts.headers, raw, app.max_body).await {
        Ok(req) => pipeline::serve::<O>(&app, req, &parts.headers, &request_id, started).await,
        Err(e) => Err(e),
    };
    body::finish(O::NAME, &request_id, result, O::error_response)
}

/// `POST /v1/messages/count_tokens`.
pub async fn count_tokens(State(app): State<Arc<AppState>>, request: Request) -> Response {
    use pipeline::messages::{CountTokens, count_tokens};
    let started = Instant::now();
    let request_id = body::request_id(request.headers());
    let (parts, raw) = request.into_parts();
    let result = match body::json::<_>(&parts.headers, raw, app.max_body).await {
        Ok(req) => count_tokens(&app, req, &parts.headers, &request_id, started).await,
        Err(e) => Err(e),
    };
    body::finish(
        CountTokens::NAME,
        &request_id,
        result,
        CountTokens::error_response,
    )
}
