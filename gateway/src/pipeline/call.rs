//! The call stage: send one attempt over the backend's transport, classify a non-2xx
//! answer, and keep the time spent waiting on the upstream (the rest is the gateway's own
//! overhead).

use std::time::Duration;

use tokio::time::Instant;

use crate::{
    backend::{Backend, Transport},
    failure::Failure,
    providers::UpstreamRequest,
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
    pub fn new(backend: &Backend, started: Instant) -> Self {
        let t = backend.config.timeouts;
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

/// An attempt's deadlines and the time it spent waiting on the upstream.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    /// Deadlines.
    pub deadlines: Deadlines,
    /// Time spent waiting on the upstream so far (the whole request's, across attempts).
    pub waited: Duration,
}

impl Clock {
    /// Runs `wait` (a read from the upstream), adding its duration to `waited`.
    pub async fn wait<T>(&mut self, wait: impl Future<Output = T>) -> T {
        let t = Instant::now();
        let out = wait.await;
        self.waited += t.elapsed();
        out
    }
}

/// Sends `req` to `backend`; a non-2xx answer becomes a classified [`Failure`].
pub async fn call(
    backend: &Backend,
    req: UpstreamRequest,
    request_id: &str,
    clock: &mut Clock,
) -> Result<UpstreamResponse, Failure> {
    let response = match &backend.transport {
        Transport::InProcess(respond) => {
            let (status, pieces) = respond(&req.url, &req.body);
            UpstreamResponse::local(status, pieces)
        }
        Transport::Http(client) => {
            let first_byte = clock.deadlines.first_byte;
            clock
                .wait(upstream::send(client, req, request_id, first_byte))
                .await?
        }
    };
    if response.status.is_success() {
        return Ok(response);
    }
    let (status, headers) = (response.status, response.headers.clone());
    let total = clock.deadlines.total;
    let body = clock.wait(response.bytes(total)).await.unwrap_or_default();
    Err(backend.provider.adapter.error(status, &headers, &body))
}
