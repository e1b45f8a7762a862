//! One upstream call: send, classify a non-2xx answer, time what was spent waiting.

use std::time::Duration;

use tokio::time::Instant;
use tollgate_crds::config::BackendConfig;

use crate::{
    config::{Snapshot, snapshot::ProviderRuntime},
    providers::{Failure, FailureKind, UpstreamRequest},
    upstream::{self, UpstreamResponse},
};

/// Deadlines of one attempt.
#[derive(Clone, Copy, Debug)]
pub struct Deadlines {
    /// The whole request.
    pub total: Instant,
    /// The first response byte.
    pub first_byte: Instant,
    /// Longest gap between stream chunks.
    pub idle: Duration,
}

impl Deadlines {
    /// Deadlines for `backend`, counted from `started`.
    pub fn new(backend: &BackendConfig, started: Instant) -> Self {
        let t = backend.timeouts;
        let total = started + Duration::from_millis(t.total_ms);
        Self {
            total,
            first_byte: total.min(Instant::now() + Duration::from_millis(t.first_token_ms)),
            idle: Duration::from_millis(t.idle_ms),
        }
    }

    /// The deadline for the next stream chunk.
    pub fn next_chunk(&self) -> Instant {
        self.total.min(Instant::now() + self.idle)
    }
}

/// Sends `req` to `backend`; a non-2xx answer becomes a classified [`Failure`]. Adds the
/// time spent waiting on the upstream to `waited`.
pub async fn call(
    snapshot: &Snapshot,
    provider: &ProviderRuntime,
    backend: &BackendConfig,
    req: UpstreamRequest,
    request_id: &str,
    deadlines: &Deadlines,
    waited: &mut Duration,
) -> Result<UpstreamResponse, Failure> {
    let Some(client) = snapshot.client(backend.timeouts.connect_ms) else {
        return Err(Failure::new(
            FailureKind::Connect,
            "no HTTP client for this backend",
        ));
    };
    let sent = Instant::now();
    let result = upstream::send(client, req, request_id, deadlines.first_byte).await;
    *waited += sent.elapsed();
    let response = result?;
    if response.status.is_success() {
        return Ok(response);
    }
    let (status, headers) = (response.status, response.headers.clone());
    let read = Instant::now();
    let body = response.bytes(deadlines.total).await.unwrap_or_default();
    *waited += read.elapsed();
    Err(provider.adapter.error(status, &headers, &body))
}
