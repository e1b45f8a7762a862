//! `/healthz`, `/readyz` and `/metrics` on the metrics address.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU8, Ordering},
    },
};

use axum::{Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use tokio::net::TcpListener;

use crate::metrics::Metrics;

/// Where this replica is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// Starting: not ready.
    Starting = 0,
    /// Waiting for the lease: ready (so rollouts proceed), writes nothing.
    Standby = 1,
    /// Leading, but the first config is not written yet: not ready.
    Syncing = 2,
    /// Leading and has written a config: ready.
    Ready = 3,
}

/// What the health endpoints report; shared with the main loop.
#[derive(Default)]
pub struct Health {
    phase: AtomicU8,
}

impl Health {
    /// Moves to `phase`.
    pub fn set(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::Release);
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Acquire) {
            1 => Phase::Standby,
            2 => Phase::Syncing,
            3 => Phase::Ready,
            _ => Phase::Starting,
        }
    }
}

struct AppState {
    health: Arc<Health>,
    metrics: Arc<Metrics>,
}

/// The router (separate from serving, for tests).
pub fn router(health: Arc<Health>, metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(Arc::new(AppState { health, metrics }))
}

async fn readyz(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    match state.health.phase() {
        Phase::Ready => (StatusCode::OK, "ready: leading, config written\n"),
        Phase::Standby => (StatusCode::OK, "ready: standby, waiting for the lease\n"),
        Phase::Syncing => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: leading, first config not written yet\n",
        ),
        Phase::Starting => (StatusCode::SERVICE_UNAVAILABLE, "not ready: starting\n"),
    }
}

async fn metrics_text(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
}

/// Binds `addr` and serves until the process ends.
pub async fn serve(
    addr: SocketAddr,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = TcpListener::bind(addr).await?;
    let app = router(health, metrics);
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "health server stopped");
        }
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    async fn get(app: &Router, path: &str) -> (StatusCode, String) {
        use tower::ServiceExt;
        let response = app
            .clone()
            .oneshot(
                axum::http::Request::get(path)
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = response.status();
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap()
            .to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn ready_when_leading_with_a_config_or_standing_by() {
        let health = Arc::new(Health::default());
        let metrics = Arc::new(Metrics::new());
        let app = router(health.clone(), metrics.clone());
        assert_eq!(get(&app, "/healthz").await.0, StatusCode::OK);
        assert_eq!(
            get(&app, "/readyz").await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        health.set(Phase::Standby);
        assert_eq!(
            get(&app, "/readyz").await,
            (
                StatusCode::OK,
                "ready: standby, waiting for the lease\n".into()
            )
        );
        health.set(Phase::Syncing);
        assert_eq!(
            get(&app, "/readyz").await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        health.set(Phase::Ready);
        assert_eq!(get(&app, "/readyz").await.0, StatusCode::OK);
        metrics.set_leader(true);
        let (code, text) = get(&app, "/metrics").await;
        assert_eq!(code, StatusCode::OK);
        assert!(text.contains("tollgate_operator_leader 1"), "{text}");
    }
}
