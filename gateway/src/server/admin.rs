//! Admin endpoints: liveness, readiness (a valid config is loaded), metrics, and which
//! config this pod serves.

use std::sync::Arc;

use axum::{
    Json,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};

use super::AppState;

/// Alive.
pub async fn healthz() -> &'static str {
    "ok"
}

/// Ready once a valid config is loaded.
pub async fn readyz(State(app): State<Arc<AppState>>) -> Response {
    match app.config.snapshot() {
        Some(_) => (StatusCode::OK, "ready").into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "no valid config loaded yet",
        )
            .into_response(),
    }
}

/// Prometheus text format.
pub async fn metrics(State(app): State<Arc<AppState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics.encode(),
    )
        .into_response()
}

/// The served config's hash and sources, and the last reload's result.
pub async fn config_status(State(app): State<Arc<AppState>>) -> Response {
    Json(app.config.status().as_ref().clone()).into_response()
}

/// Each backend's (provider, key, model) passive-health state.
pub async fn backends(State(app): State<Arc<AppState>>) -> Response {
    let now = tokio::time::Instant::now();
    let backends = app
        .config
        .snapshot()
        .map(|s| s.health_views(now))
        .unwrap_or_default();
    Json(serde_json::json!({ "backends": backends })).into_response()
}
