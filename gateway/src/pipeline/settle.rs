//! The settle stage: what an answer leaves behind once it is complete — the request's
//! metrics and the gateway's own overhead, the attempt's outcome, the key's token quota
//! corrected with the real usage. A JSON answer settles at once; a stream when it ends,
//! so a stream cut after its first chunk counts as the failure it is.
//!
//! Later features plug in here: cost settlement (usage × the model's pricing) and budget
//! reconciliation sit beside the quota correction in [`Settle::finish`].

use std::{sync::Arc, time::Duration};

use tokio::time::Instant;

use crate::{
    backend::Backend,
    failure::Failure,
    metrics::{Metrics, RequestLabels, TokenCounts},
    resilience::{
        health::{BackendHealth, HealthSettings},
        quota::KeyQuota,
    },
    wire::openai::Usage,
};

/// Token counts as metered, from OpenAI-shaped usage.
pub fn token_counts(u: &Usage) -> TokenCounts {
    let cached = u.cached();
    let reasoning = u.reasoning();
    TokenCounts {
        input: u.prompt_tokens.saturating_sub(cached),
        output: u.completion_tokens.saturating_sub(reasoning),
        cached_input: cached,
        reasoning,
    }
}

/// Everything an answer settles, owned, so a stream can settle after the request's
/// borrows are gone.
pub struct Settle {
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The request's labels (`error_type` set when it ends).
    pub labels: RequestLabels,
    /// When the request arrived.
    pub started: Instant,
    /// The backend that answered.
    pub backend: Arc<Backend>,
    /// Its key's health: a failure after the first chunk still counts against it.
    pub health: Arc<BackendHealth>,
    /// Ejection thresholds.
    pub settings: HealthSettings,
    /// The key's quota and the tokens reserved on it.
    pub quota: Option<(Arc<KeyQuota>, u64)>,
    /// Whether a `fallbacks` entry answered.
    pub fallback: bool,
    /// The route id, for attempt metrics.
    pub route: Arc<str>,
}

impl Settle {
    /// The answer is complete (`error_type` `None`) or ended by `error_type`: records the
    /// request, the gateway's own time `busy`, the attempt's outcome, and corrects the quota
    /// with `total_tokens`.
    pub fn finish(
        &mut self,
        error_type: Option<&'static str>,
        total_tokens: Option<u64>,
        tokens: Option<TokenCounts>,
        busy: Duration,
    ) {
        self.labels.error_type = error_type.unwrap_or("");
        if let (Some((quota, estimated)), Some(actual)) = (&self.quota, total_tokens) {
            quota.settle(Instant::now(), *estimated, actual);
        }
        self.metrics
            .request(&self.labels, self.started.elapsed().as_secs_f64(), tokens);
        self.metrics.overhead(
            self.labels.gen_ai_operation_name,
            &self.labels.route,
            busy.as_secs_f64(),
        );
        self.metrics.attempt(
            &self.route,
            &self.backend.config.provider,
            &self.backend.config.model,
            error_type.unwrap_or("success"),
            self.fallback,
        );
    }

    /// A stream failed after its first chunk: it counts against the backend's health.
    pub fn stream_failed(&self, failure: &Failure) {
        if let Some(ejection) =
            self.health
                .record_failure(Instant::now(), failure.kind, &self.settings)
        {
            tracing::warn!(
                backend = self.health.id(),
                cooldown_ms = ejection.cooldown.as_millis() as u64,
                "backend ejected after a failed stream"
            );
            self.metrics.ejection(
                &self.backend.config.provider,
                &self.backend.config.model,
                failure.kind.as_str(),
            );
        }
        tracing::warn!(
            kind = failure.kind.as_str(),
            error = %failure.safe_message(),
            route = %self.labels.route,
            "stream ended by an upstream failure"
        );
    }

    /// A stream's time to first token and per output token.
    pub fn stream_timing(&self, first: Instant, output_tokens: u64) {
        self.metrics.stream_timing(
            &self.labels,
            (first - self.started).as_secs_f64(),
            first.elapsed().as_secs_f64(),
            output_tokens,
        );
    }
}
