//! The client-facing stream: translated chunks as OpenAI SSE, forwarded as they arrive.
//! It ends with `data: [DONE]` only after the upstream's own end marker; any failure
//! (upstream error event, cut connection, idle or total timeout) ends it with an OpenAI
//! error event and no `[DONE]`, so SDKs raise instead of treating a cut answer as complete.
//! Dropping it (the client went away) drops the upstream response, which cancels it.

use std::{collections::VecDeque, convert::Infallible, sync::Arc, time::Duration};

use bytes::Bytes;
use futures_util::Stream;
use tokio::time::Instant;

use super::call::Deadlines;
use crate::{
    config::Snapshot,
    error::GatewayError,
    metrics::{Metrics, RequestLabels},
    providers::{AnyStream, Failure, StreamTranslator},
    resilience::health::{BackendHealth, HealthSettings},
    server::chat::token_counts,
    stream::sse::{DONE_FRAME, data_frame},
    upstream::UpstreamResponse,
    wire::openai::{ChatChunk, Usage},
};

/// What a stream starts from.
pub struct StreamParts {
    /// The upstream response, headers read.
    pub upstream: UpstreamResponse,
    /// Its translator.
    pub translator: AnyStream,
    /// Chunks already translated while waiting for the first one.
    pub first: Vec<ChatChunk>,
    /// Deadlines.
    pub deadlines: Deadlines,
    /// Whether the client asked for the usage chunk.
    pub include_usage: bool,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Metric labels.
    pub labels: RequestLabels,
    /// When the request arrived.
    pub started: Instant,
    /// Time spent waiting on the upstream so far.
    pub waited: Duration,
    /// The provider id, for metrics.
    pub provider: String,
    /// The backend's health: a failure after the first chunk still counts against it.
    pub health: Arc<BackendHealth>,
    /// Ejection thresholds.
    pub health_settings: HealthSettings,
    /// The snapshot, provider and key whose quota is corrected with the stream's usage.
    pub quota: Option<(Arc<Snapshot>, String, usize, u64)>,
}

/// The stream's state.
pub struct ChatStream {
    parts: StreamParts,
    pending: VecDeque<Bytes>,
    usage: Option<Usage>,
    first_at: Option<Instant>,
    busy: Duration,
    finished: bool,
    recorded: bool,
}

impl ChatStream {
    /// A stream that first sends `parts.first`.
    pub fn new(mut parts: StreamParts) -> Self {
        let first = std::mem::take(&mut parts.first);
        let mut s = Self {
            busy: parts.started.elapsed().saturating_sub(parts.waited),
            parts,
            pending: VecDeque::new(),
            usage: None,
            first_at: None,
            finished: false,
            recorded: false,
        };
        s.push(first);
        s
    }

    /// As a byte stream for the response body.
    pub fn into_stream(self) -> impl Stream<Item = Result<Bytes, Infallible>> + Send {
        futures_util::stream::unfold(self, |mut s| async move {
            s.next_frame().await.map(|frame| (Ok(frame), s))
        })
    }

    async fn next_frame(&mut self) -> Option<Bytes> {
        loop {
            if let Some(frame) = self.pending.pop_front() {
                return Some(frame);
            }
            if self.finished {
                return None;
            }
            let deadline = self.parts.deadlines.next_chunk();
            let piece = self.parts.upstream.chunk(deadline).await;
            let t = Instant::now();
            match piece {
                Ok(Some(bytes)) => match self.parts.translator.feed(&bytes) {
                    Ok(chunks) => self.push(chunks),
                    Err(f) => self.fail(f),
                },
                Ok(None) => match self.parts.translator.finish() {
                    Ok(chunks) => {
                        self.push(chunks);
                        self.pending.push_back(Bytes::from_static(DONE_FRAME));
                        self.finished = true;
                        self.record("");
                    }
                    Err(f) => self.fail(f),
                },
                Err(f) => self.fail(f),
            }
            self.busy += t.elapsed();
        }
    }

    fn push(&mut self, chunks: Vec<ChatChunk>) {
        for chunk in chunks {
            if let Some(u) = &chunk.usage {
                self.usage = Some(u.clone());
            }
            let usage_only = chunk.choices.is_empty() && chunk.usage.is_some();
            if usage_only && !self.parts.include_usage {
                continue;
            }
            if self.first_at.is_none() && !chunk.choices.is_empty() {
                self.first_at = Some(Instant::now());
            }
            match serde_json::to_vec(&chunk) {
                Ok(json) => self.pending.push_back(data_frame(&json)),
                Err(e) => {
                    self.fail(Failure::protocol(format!("chunk cannot be encoded: {e}")));
                    return;
                }
            }
        }
    }

    fn fail(&mut self, failure: Failure) {
        if let Some(ejection) = self.parts.health.record_failure(
            Instant::now(),
            failure.kind,
            &self.parts.health_settings,
        ) {
            tracing::warn!(
                backend = self.parts.health.id(),
                cooldown_ms = ejection.cooldown.as_millis() as u64,
                "backend ejected after a failed stream"
            );
            self.parts.metrics.ejection(
                &self.parts.provider,
                &self.parts.labels.gen_ai_response_model,
                failure.kind.as_str(),
            );
        }
        tracing::warn!(kind = failure.kind.as_str(), error = %failure.safe_message(), route = %self.parts.labels.route, "stream ended by an upstream failure");
        let kind = failure.kind.as_str();
        let body = GatewayError::Upstream(failure).body();
        let json = serde_json::to_vec(&body).unwrap_or_default();
        self.pending.push_back(data_frame(&json));
        self.finished = true;
        self.record(kind);
    }

    fn record(&mut self, error_type: &'static str) {
        if self.recorded {
            return;
        }
        self.recorded = true;
        let p = &self.parts;
        let mut labels = p.labels.clone();
        labels.error_type = error_type;
        let elapsed = p.started.elapsed();
        let counts = self.usage.as_ref().map(token_counts);
        if let (Some((snapshot, provider, key, estimated)), Some(usage)) = (&p.quota, &self.usage)
            && let Some(quota) = snapshot.provider(provider).and_then(|r| r.quota(*key))
        {
            quota.settle(Instant::now(), *estimated, usage.total_tokens);
        }
        p.metrics.request(&labels, elapsed.as_secs_f64(), counts);
        if let Some(first) = self.first_at {
            let output = self.usage.as_ref().map_or(0, |u| u.completion_tokens);
            p.metrics.stream_timing(
                &labels,
                (first - p.started).as_secs_f64(),
                first.elapsed().as_secs_f64(),
                output,
            );
        }
        p.metrics
            .overhead("chat", &labels.route, self.busy.as_secs_f64());
    }
}

impl Drop for ChatStream {
    fn drop(&mut self) {
        // The client went away before the end: count it; dropping the upstream cancels it.
        self.record("client_disconnected");
    }
}
