//! What a request does when the shared state fails, and a log that stays quiet during an
//! outage: one line per interval saying how many failures it stands for, not one per
//! request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::StateError;

/// What a request gets when rate limits, budgets or shared quotas cannot be checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum FailMode {
    /// Serve it unchecked (availability first): the default.
    #[default]
    Open,
    /// Refuse it with 503 until the state answers again (limits first).
    Closed,
}

impl FailMode {
    /// `fail_open` or `fail_closed`, for metrics and logs.
    pub fn label(self) -> &'static str {
        match self {
            FailMode::Open => "fail_open",
            FailMode::Closed => "fail_closed",
        }
    }
}

/// At most one log line per interval about state failures.
#[derive(Debug)]
pub struct Outage {
    started: Instant,
    interval_ms: u64,
    /// Milliseconds after `started` of the last line, plus one (0: never logged).
    last_ms: AtomicU64,
    /// Failures since the last line.
    unlogged: AtomicU64,
}

impl Outage {
    /// A log that writes at most one line per `interval`.
    pub fn new(interval: Duration) -> Self {
        Self {
            started: Instant::now(),
            interval_ms: u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
            last_ms: AtomicU64::new(0),
            unlogged: AtomicU64::new(0),
        }
    }

    /// Records one failure of `what`; logs it (with the failures it stands for) unless a
    /// line was written less than an interval ago.
    pub fn failed(&self, what: &'static str, mode: FailMode, error: &StateError) {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.failed_at(now, what, mode, error);
    }

    fn failed_at(&self, elapsed_ms: u64, what: &'static str, mode: FailMode, error: &StateError) {
        let count = self.unlogged.fetch_add(1, Ordering::Relaxed) + 1;
        let now = elapsed_ms.saturating_add(1);
        let last = self.last_ms.load(Ordering::Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= self.interval_ms;
        if due
            && self
                .last_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let failures = self.unlogged.swap(0, Ordering::Relaxed).max(count);
            tracing::warn!(
                check = what,
                mode = mode.label(),
                failures,
                error = %error,
                "shared state unavailable; {}",
                match mode {
                    FailMode::Open => "serving requests without this check",
                    FailMode::Closed => "refusing requests (503) until it answers",
                }
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_logs_once_per_interval_with_the_count() {
        let outage = Outage::new(Duration::from_secs(10));
        let e = StateError::Timeout(Duration::from_millis(250));
        outage.failed_at(0, "rate_limit", FailMode::Open, &e);
        assert_eq!(
            outage.unlogged.load(Ordering::Relaxed),
            0,
            "the first one logs"
        );
        for ms in 0..100 {
            outage.failed_at(ms * 99, "rate_limit", FailMode::Open, &e);
        }
        assert_eq!(
            outage.unlogged.load(Ordering::Relaxed),
            100,
            "then it stays quiet"
        );
        outage.failed_at(10_000, "rate_limit", FailMode::Open, &e);
        assert_eq!(
            outage.unlogged.load(Ordering::Relaxed),
            0,
            "after an interval one line covers them all"
        );
    }
}
