//! Retry pacing: full-jitter exponential backoff, and a budget that caps retries at a share of
//! requests so an outage cannot multiply the load on providers.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// Full-jitter exponential backoff: a uniform random delay in `[0, min(max, initial * 2^retry))`.
/// A provider's `Retry-After` takes precedence when present, as is (not jittered, not capped:
/// the caller decides whether waiting that long fits its deadline or it should fall back).
/// `retry` is 0 for the first retry.
pub fn backoff(
    retry: u32,
    initial: Duration,
    max: Duration,
    retry_after: Option<Duration>,
) -> Duration {
    backoff_with(retry, initial, max, retry_after, fastrand::f64())
}

/// [`backoff`] with the random draw given: `unit` in `[0, 1)` picks the delay within the
/// window (values outside are clamped, NaN counts as 0).
pub fn backoff_with(
    retry: u32,
    initial: Duration,
    max: Duration,
    retry_after: Option<Duration>,
    unit: f64,
) -> Duration {
    if let Some(retry_after) = retry_after {
        return retry_after;
    }
    let window = 2u32
        .checked_pow(retry)
        .and_then(|factor| initial.checked_mul(factor))
        .map_or(max, |window| window.min(max));
    let unit = if unit.is_nan() {
        0.0
    } else {
        unit.clamp(0.0, 1.0)
    };
    Duration::try_from_secs_f64(window.as_secs_f64() * unit)
        .unwrap_or(Duration::ZERO)
        .min(window)
}

/// Thousandths of a token: the budget's unit.
const MILLI: i64 = 1000;

/// Retries a [`RetryBudget`] can bank, so a quiet period cannot save up a retry storm.
pub const BUDGET_MAX_TOKENS: i64 = 10;

/// Retries a new [`RetryBudget`] allows before any request, so a cold gateway can still retry.
pub const BUDGET_INITIAL_TOKENS: i64 = 10;

/// Caps retries at `percent`% of requests. Each request deposits `percent / 100` of a token
/// (the bucket holds at most [`BUDGET_MAX_TOKENS`] and starts with [`BUDGET_INITIAL_TOKENS`]);
/// each retry withdraws a whole one. Lock-free: one atomic counter of milli-tokens.
#[derive(Debug)]
pub struct RetryBudget {
    percent: u32,
    /// Milli-tokens; never negative, never above `BUDGET_MAX_TOKENS * MILLI`.
    milli_tokens: AtomicI64,
}

// === impl RetryBudget ===

impl RetryBudget {
    /// A budget allowing retries for `percent`% of requests (above 100, several per request).
    pub fn new(percent: u32) -> Self {
        Self {
            percent,
            milli_tokens: AtomicI64::new(BUDGET_INITIAL_TOKENS * MILLI),
        }
    }

    /// The configured share.
    pub fn percent(&self) -> u32 {
        self.percent
    }

    /// Call once per original request (not per retry): deposits `percent / 100` of a token.
    pub fn on_request(&self) {
        // percent / 100 tokens = percent * 10 milli-tokens.
        let deposit = i64::from(self.percent) * (MILLI / 100);
        let cap = BUDGET_MAX_TOKENS * MILLI;
        // The closure always returns Some, so this cannot fail; the result carries nothing.
        let _ = self
            .milli_tokens
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |current| {
                Some(current.saturating_add(deposit).min(cap))
            });
    }

    /// Withdraws one token for a retry; false (and nothing withdrawn) when the budget is spent.
    pub fn try_retry(&self) -> bool {
        self.milli_tokens
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |current| {
                (current >= MILLI).then_some(current - MILLI)
            })
            .is_ok()
    }
}

#[cfg(test)]
#[path = "retry_tests.rs"]
mod tests;
