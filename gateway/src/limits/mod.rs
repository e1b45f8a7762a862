//! Route rate limits (`LLMRoute` `rateLimits`): requests and tokens per minute, counted per
//! route, per client-key team or per client key, in shared state token buckets
//! ([`crate::state::bucket`], GCRA). A request must fit every limit of its route; the check
//! is one atomic state operation (one Lua script with Redis), so replicas sharing a Redis
//! admit exactly what one gateway would.
//!
//! Tokens: admission reserves what is known — the prompt's estimate plus `max_tokens` when
//! the request sets it — and the [`Ticket`] corrects the reservation to the real usage when
//! the answer ends (JSON at once, streams at their end). A request that used more leaves
//! the bucket in debt, so later ones wait; one that used less gives the rest back. A request
//! that never got an answer gives its tokens back; its request still counts.
//!
//! The state failing is handled by [`FailMode`]: served unchecked (open) or refused with 503
//! (closed), with a metric and a log line at most every few seconds.

mod headers;
pub mod metrics;
pub mod quota;
#[cfg(test)]
mod tests;

use std::{sync::Arc, time::Duration};

use tollgate_crds::config::{RateLimitKey, RouteConfig};

pub use headers::{RateHeaders, Standing, duration};
pub use metrics::LimitMetrics;

use crate::{
    budget::WallClock,
    error::GatewayError,
    identity::Identity,
    metrics::Metrics,
    state::{BucketOp, FailMode, Outage, StateError, StateStore},
};

/// How often an outage of the shared state is logged at most.
const OUTAGE_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The rate limiter every request of every route goes through.
#[derive(Debug)]
pub struct Limiter {
    store: Arc<StateStore>,
    clock: WallClock,
    mode: FailMode,
    metrics: Arc<Metrics>,
    outage: Outage,
}

/// A request refused by a rate limit: the 429's message, kind, wait and headers.
#[derive(Debug)]
pub struct Refusal {
    /// What was exceeded, for the client.
    pub message: String,
    /// `requests` or `tokens` (OpenAI's error `type`).
    pub kind: &'static str,
    /// How long until the request would fit.
    pub retry_after: Duration,
    /// The `x-ratelimit-*` values.
    pub headers: RateHeaders,
}

/// What admission hands the pipeline: the token reservation and the headers to send.
#[derive(Debug, Default)]
pub struct Admitted {
    /// The tokens reserved, to settle (`None` when nothing counts tokens).
    pub ticket: Option<Ticket>,
    /// The `x-ratelimit-*` values for the answer.
    pub headers: RateHeaders,
}

/// Tokens reserved at admission. [`settle`](Ticket::settle) corrects them to the real usage;
/// dropped unsettled (no answer), they are given back.
#[derive(Debug)]
pub struct Ticket {
    limiter: Arc<Limiter>,
    reserved: Vec<BucketOp>,
}

fn scope(per: RateLimitKey) -> &'static str {
    match per {
        RateLimitKey::Route => "route",
        RateLimitKey::Team => "team",
        RateLimitKey::Key => "key",
    }
}

/// The state key of one limit's bucket for `identity`: requests without a team (or key)
/// share one bucket, so leaving the key out never escapes a per-key limit.
fn bucket_key(route: &str, per: RateLimitKey, identity: &Identity, tokens: bool) -> String {
    let subject = match per {
        RateLimitKey::Route => "",
        RateLimitKey::Team => identity.team.as_deref().unwrap_or("-"),
        RateLimitKey::Key => identity.key_id.as_deref().unwrap_or("-"),
    };
    let kind = if tokens { "t" } else { "r" };
    format!("rl:{route}:{}:{subject}:{kind}", scope(per))
}

impl Limiter {
    /// A limiter on `store`, timed by `clock`, failing as `mode` says.
    pub fn new(
        store: Arc<StateStore>,
        clock: WallClock,
        mode: FailMode,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            store,
            clock,
            mode,
            metrics,
            outage: Outage::new(OUTAGE_LOG_INTERVAL),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.clock.now().as_millisecond()).unwrap_or(0)
    }

    /// The state failed for a `check`: counted, logged now and then, and decided by the
    /// fail mode (`Ok` serves unchecked).
    pub fn state_failed(
        &self,
        check: &'static str,
        error: &StateError,
    ) -> Result<(), GatewayError> {
        self.metrics.limits.state_failure(check, self.mode.label());
        self.outage.failed(check, self.mode, error);
        match self.mode {
            FailMode::Open => Ok(()),
            FailMode::Closed => Err(GatewayError::StateUnavailable),
        }
    }
}

/// Checks and counts the request against every limit of `route`. `tokens` estimates what
/// the request will use; it is called only when a limit counts tokens.
pub async fn admit(
    limiter: &Arc<Limiter>,
    route: &RouteConfig,
    identity: &Identity,
    tokens: impl FnOnce() -> u64,
) -> Result<Admitted, GatewayError> {
    if route.rate_limits.is_empty() {
        return Ok(Admitted::default());
    }
    let mut estimate = Some(tokens);
    let mut estimated = 0u64;
    let mut ops = Vec::with_capacity(route.rate_limits.len() * 2);
    let mut kinds = Vec::with_capacity(route.rate_limits.len() * 2);
    for limit in &route.rate_limits {
        if let Some(rpm) = limit.requests_per_minute {
            ops.push(BucketOp {
                key: bucket_key(&route.id, limit.per, identity, false),
                per_minute: rpm,
                tokens: 1,
            });
            kinds.push((limit.per, false));
        }
        if let Some(tpm) = limit.tokens_per_minute {
            if let Some(f) = estimate.take() {
                estimated = f();
            }
            ops.push(BucketOp {
                key: bucket_key(&route.id, limit.per, identity, true),
                per_minute: tpm,
                tokens: i64::try_from(estimated).unwrap_or(i64::MAX),
            });
            kinds.push((limit.per, true));
        }
    }
    let taken = match limiter.store.buckets_take(&ops, limiter.now_ms()).await {
        Ok(taken) => taken,
        Err(e) => {
            limiter.state_failed("rate_limit", &e)?;
            return Ok(Admitted::default());
        }
    };
    let mut headers = RateHeaders::default();
    for ((op, (_, is_tokens)), level) in ops.iter().zip(&kinds).zip(&taken.levels) {
        headers.add(
            *is_tokens,
            Standing {
                limit: op.per_minute,
                remaining: level.remaining(),
                reset_ms: level.full_in_ms(),
            },
        );
    }
    if !taken.granted {
        // The limit that frees up last decides the wait.
        let slowest = ops
            .iter()
            .zip(&kinds)
            .zip(&taken.levels)
            .map(|((op, kind), level)| {
                let amount = u64::try_from(op.tokens).unwrap_or(0);
                (level.ready_in_ms(amount), *kind, op)
            })
            .max_by_key(|(wait, _, _)| *wait);
        let Some((wait_ms, (per, is_tokens), op)) = slowest else {
            return Ok(Admitted::default());
        };
        let kind = if is_tokens { "tokens" } else { "requests" };
        limiter.metrics.limits.limited(&route.id, scope(per), kind);
        let retry_after = Duration::from_millis(wait_ms);
        return Err(GatewayError::RateLimited(Box::new(Refusal {
            message: format!(
                "Rate limit reached for model `{}` {}: limit {} {kind} per minute{}. Please try again in {}.",
                route.model,
                match per {
                    RateLimitKey::Route => "on this route",
                    RateLimitKey::Team => "per client-key team",
                    RateLimitKey::Key => "per client key",
                },
                op.per_minute,
                if is_tokens {
                    format!(", requested {estimated}")
                } else {
                    String::new()
                },
                duration(wait_ms),
            ),
            kind,
            retry_after,
            headers,
        })));
    }
    let reserved: Vec<BucketOp> = ops
        .into_iter()
        .zip(&kinds)
        .filter(|(op, (_, is_tokens))| *is_tokens && op.tokens > 0)
        .map(|(op, _)| op)
        .collect();
    Ok(Admitted {
        ticket: (!reserved.is_empty()).then(|| Ticket {
            limiter: Arc::clone(limiter),
            reserved,
        }),
        headers,
    })
}

impl Ticket {
    /// The answer ended having used `total_tokens` (input + output): each reservation is
    /// corrected by the difference. Unknown usage (a stream cut short) keeps the
    /// reservation as the count.
    pub fn settle(mut self, total_tokens: Option<u64>) {
        let reserved = std::mem::take(&mut self.reserved);
        let Some(actual) = total_tokens else { return };
        let actual = i64::try_from(actual).unwrap_or(i64::MAX);
        let corrections: Vec<BucketOp> = reserved
            .into_iter()
            .filter(|op| op.tokens != actual)
            .map(|op| BucketOp {
                tokens: op.tokens.saturating_sub(actual),
                ..op
            })
            .collect();
        self.adjust(corrections);
    }

    fn adjust(&self, ops: Vec<BucketOp>) {
        if ops.is_empty() {
            return;
        }
        let limiter = Arc::clone(&self.limiter);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            if let Err(e) = limiter.store.buckets_adjust(&ops, limiter.now_ms()).await {
                limiter.outage.failed("rate_limit", limiter.mode, &e);
            }
        });
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        // Not settled: no answer came, so the reserved tokens go back.
        let reserved = std::mem::take(&mut self.reserved);
        self.adjust(reserved);
    }
}
