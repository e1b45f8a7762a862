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
    let writes = u.cache_write_tokens.saturating_add(u.cache_write_1h_tokens);
    TokenCounts {
        input: u
            .prompt_tokens
            .saturating_sub(cached)
            .saturating_sub(writes),
        output: u.completion_tokens.saturating_sub(reasoning),
        cached_input: cached,
        reasoning,
        cache_write: u.cache_write_tokens,
        cache_write_1h: u.cache_write_1h_tokens,
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
    /// The request's span (request id, operation), for what a stream logs after the
    /// handler returned.
    pub span: tracing::Span,
    /// Who pays: identity, budget reservations, the usage record (taken by the one answer
    /// that succeeds, so always present here).
    pub bill: Option<super::pays::Bill>,
}

impl Settle {
    /// The answer is complete (`error_type` `None`) or ended by `error_type`: records the
    /// request, the gateway's own time `busy`, the attempt's outcome, and corrects the quota
    /// with `total_tokens`; then prices the answer and settles its bill. Returns the cost
    /// when the usage is known.
    pub fn finish(
        &mut self,
        error_type: Option<&'static str>,
        total_tokens: Option<u64>,
        tokens: Option<TokenCounts>,
        busy: Duration,
    ) -> Option<rust_decimal::Decimal> {
        self.labels.error_type = error_type.unwrap_or("");
        if let (Some((quota, estimated)), Some(actual)) = (&self.quota, total_tokens) {
            quota.settle(Instant::now(), *estimated, actual);
            if let Some(bill) = &self.bill {
                crate::limits::quota::settle(&bill.pays.limits, quota, *estimated, actual);
            }
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
        let latency_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.bill.as_mut().and_then(|bill| {
            bill.settle(
                &self.metrics,
                &self.backend,
                &self.route,
                self.labels.gen_ai_operation_name,
                tokens,
                error_type.unwrap_or("ok"),
                latency_ms,
            )
        })
    }

    /// A stream failed after its first chunk: it counts against the backend's health.
    pub fn stream_failed(&self, failure: &Failure) {
        let _in_request = self.span.enter();
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
