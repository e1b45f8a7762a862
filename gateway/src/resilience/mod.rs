//! Routing resilience: pure building blocks the request path composes.
//!
//! - [`health`]: a passive circuit breaker per backend (provider + key + model), fed by the
//!   outcome of real requests, with exponential ejection and a single half-open trial.
//! - [`retry`]: full-jitter exponential backoff and a retry budget that caps retries at a
//!   share of requests, so an outage cannot multiply load.
//! - [`quota`]: a credential's own requests- and tokens-per-minute quota.
//!
//! Nothing here does I/O, sleeps or reads the clock: every time-dependent function takes
//! `now` (tokio's [`Instant`]), so tests are exact.

use std::time::Duration;

use tokio::time::Instant;

pub mod health;
pub mod quota;
pub mod retry;

pub use health::{
    Admission, BackendHealth, CircuitState, Ejection, HealthSettings, HealthView, is_backend_fault,
};
pub use quota::KeyQuota;
pub use retry::{RetryBudget, backoff, backoff_with};

/// The furthest ahead any deadline here is set: a bogus `Retry-After` (or a huge token debt)
/// cannot take a backend out for longer, nor overflow an `Instant`.
pub const MAX_HORIZON: Duration = Duration::from_secs(24 * 60 * 60);

/// `now + wait`, with `wait` capped at [`MAX_HORIZON`]. Never panics.
pub(crate) fn after(now: Instant, wait: Duration) -> Instant {
    now.checked_add(wait.min(MAX_HORIZON)).unwrap_or(now)
}
