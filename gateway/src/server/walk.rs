//! Walking a plan: which backend and key to try next, with passive health, per-key quotas,
//! retries (exponential backoff with jitter, `Retry-After`, a retry budget) and fallback.
//!
//! Order of decisions for each step:
//! 1. After a failure the route retries (`retry.on`), while attempts on this backend remain,
//!    the retry budget allows it, and the deadline leaves room for the backoff: same backend,
//!    the next usable key.
//! 2. Otherwise, if the failure may succeed elsewhere, the next backend in the plan.
//! 3. A backend is skipped while every one of its keys is ejected (circuit open) or over its
//!    quota. When the whole plan is skipped that way and nothing was tried yet ("panic
//!    mode"), the backend whose cooldown ends first is tried anyway, so a blip that ejects
//!    everything cannot turn into an outage.

use std::{sync::Arc, time::Duration};

use tokio::time::Instant;
use tollgate_crds::config::{BackendConfig, RetryConfig, RetryOn};

use super::AppState;
use crate::{
    config::{
        Snapshot,
        snapshot::{ProviderRuntime, RouteRuntime, backend_id},
    },
    metrics::Metrics,
    providers::{Failure, FailureKind, Secret},
    resilience::{
        health::{Admission, BackendHealth, HealthRegistry, HealthSettings},
        retry::{RetryBudget, backoff},
    },
    routing::Plan,
};

/// One attempt's choice.
pub struct Pick<'a> {
    /// The backend.
    pub backend: &'a BackendConfig,
    /// Its provider.
    pub provider: &'a ProviderRuntime,
    /// The key, if the provider has keys.
    pub secret: Option<&'a Secret>,
    /// Which key.
    pub key: usize,
    /// Its health.
    pub health: Arc<BackendHealth>,
    /// Whether it comes from `fallbacks`.
    pub fallback: bool,
    /// 1-based attempt number of the request.
    pub attempt: usize,
}

/// The walk's state for one request.
pub struct Walk<'a> {
    snapshot: &'a Snapshot,
    plan: &'a Plan<'a>,
    retry: &'a RetryConfig,
    budget: &'a RetryBudget,
    health: &'a HealthRegistry,
    settings: &'a HealthSettings,
    metrics: &'a Metrics,
    route: &'a str,
    estimated_tokens: u64,
    position: usize,
    tries_here: u32,
    attempts: usize,
    last: Option<Failure>,
    panicked: bool,
}

impl<'a> Walk<'a> {
    /// A walk over `plan` for `route`, with the app's health registry and metrics.
    pub fn new(
        app: &'a AppState,
        snapshot: &'a Snapshot,
        plan: &'a Plan<'a>,
        route: &'a RouteRuntime,
        estimated_tokens: u64,
    ) -> Self {
        route.budget.on_request();
        Self {
            snapshot,
            plan,
            retry: &route.config.retry,
            budget: &route.budget,
            health: &app.health,
            settings: &app.health_settings,
            metrics: &app.metrics,
            route: &route.config.id,
            estimated_tokens,
            position: 0,
            tries_here: 0,
            attempts: 0,
            last: None,
            panicked: false,
        }
    }

    /// When the walk must end: the longest total timeout among its backends, from `started`.
    pub fn deadline(&self, started: Instant) -> Instant {
        let longest = self
            .plan
            .backends
            .iter()
            .map(|b| b.timeouts.total_ms)
            .max()
            .unwrap_or(0);
        started + Duration::from_millis(longest)
    }

    /// The last failure, once the walk is over.
    pub fn into_failure(self) -> Option<Failure> {
        self.last
    }

    /// The next attempt, sleeping for a backoff first when retrying; `None` when the walk is
    /// over (or the deadline leaves no time).
    pub async fn next(&mut self, deadline: Instant) -> Option<Pick<'a>> {
        if let Some((kind, retry_after)) = self.last.as_ref().map(|f| (f.kind, f.retry_after)) {
            let retryable = retry_class(kind).is_some_and(|c| self.retry.on.contains(&c));
            let here = self.plan.backends.get(self.position.saturating_sub(1));
            if retryable
                && here.is_some()
                && self.tries_here < self.retry.attempts
                && self.budget.try_retry()
            {
                let wait = backoff(
                    self.tries_here.saturating_sub(1),
                    Duration::from_millis(self.retry.backoff_initial_ms),
                    Duration::from_millis(self.retry.backoff_max_ms),
                    retry_after,
                );
                if Instant::now() + wait < deadline {
                    self.metrics.retry(self.route, kind.as_str());
                    tokio::time::sleep(wait).await;
                    if let Some(pick) = self.take(self.position - 1, false) {
                        return Some(pick);
                    }
                }
            }
            if !kind.falls_back() {
                return None;
            }
        }
        while self.position < self.plan.backends.len() {
            let index = self.position;
            self.position += 1;
            self.tries_here = 0;
            if let Some(pick) = self.take(index, false) {
                return Some(pick);
            }
        }
        if self.attempts == 0 && !self.panicked {
            self.panicked = true;
            let soonest = (0..self.plan.backends.len()).min_by_key(|i| self.cooldown_end(*i));
            if let Some(index) = soonest {
                tracing::warn!(
                    route = self.route,
                    "every backend is ejected or over quota; trying the one whose cooldown ends first"
                );
                self.metrics.panic_mode(self.route);
                self.position = index + 1;
                return self.take(index, true);
            }
        }
        None
    }

    /// Records the outcome of `pick`.
    pub fn report(&mut self, pick: &Pick<'_>, outcome: Result<(), &Failure>) {
        let now = Instant::now();
        match outcome {
            Ok(()) => pick.health.record_success(now),
            Err(failure) => {
                if failure.kind == FailureKind::RateLimited {
                    pick.health
                        .cool_down(now, failure.retry_after, self.settings);
                } else if let Some(ejection) =
                    pick.health.record_failure(now, failure.kind, self.settings)
                {
                    tracing::warn!(
                        backend = pick.health.id(),
                        kind = failure.kind.as_str(),
                        cooldown_ms = ejection.cooldown.as_millis() as u64,
                        ejections = ejection.ejections,
                        "backend ejected"
                    );
                    self.metrics.ejection(
                        &pick.backend.provider,
                        &pick.backend.model,
                        failure.kind.as_str(),
                    );
                }
                self.last = Some(failure.clone());
            }
        }
        self.metrics.attempt(
            self.route,
            &pick.backend.provider,
            &pick.backend.model,
            outcome.err().map_or("success", |f| f.kind.as_str()),
            pick.fallback,
        );
    }

    /// Attempts made so far.
    pub fn attempts(&self) -> usize {
        self.attempts
    }

    fn take(&mut self, index: usize, force: bool) -> Option<Pick<'a>> {
        let backend = *self.plan.backends.get(index)?;
        let provider = self.snapshot.provider(&backend.provider)?;
        // A prompt that cannot fit this model's context window goes to a backend that can.
        if self.estimated_tokens > 0
            && provider
                .context_window(&backend.model)
                .is_some_and(|w| self.estimated_tokens > u64::from(w))
            && !force
        {
            return None;
        }
        let now = Instant::now();
        let keys = provider.key_count().max(1);
        let start = provider.next_key();
        for k in 0..keys {
            let key = (start + k) % keys;
            // Quota first, without reserving: admitting a half-open trial and then not
            // sending it would hold the trial back.
            let quota = provider.quota(key);
            if !force && quota.is_some_and(|q| q.ready_at(now, self.estimated_tokens) > now) {
                continue;
            }
            let health = self.health.get(&backend_id(backend, key));
            let admitted = match health.admit(now) {
                Admission::Allowed | Admission::Trial => true,
                Admission::Rejected { .. } => force,
            };
            if !admitted {
                continue;
            }
            if let Some(q) = quota {
                // Room was checked above; if another request took it meanwhile, this one
                // still goes (unreserved) rather than failing.
                let _ = q.try_acquire(now, self.estimated_tokens);
            }
            self.attempts += 1;
            self.tries_here += 1;
            return Some(Pick {
                backend,
                provider,
                secret: provider.secret(key),
                key,
                health,
                fallback: index >= self.plan.backends.len() - self.plan.fallbacks,
                attempt: self.attempts,
            });
        }
        None
    }

    fn cooldown_end(&self, index: usize) -> Instant {
        let now = Instant::now();
        let Some(backend) = self.plan.backends.get(index) else {
            return now + Duration::from_secs(86_400);
        };
        let keys = self
            .snapshot
            .provider(&backend.provider)
            .map_or(1, |p| p.key_count().max(1));
        (0..keys)
            .map(|k| {
                self.health
                    .get(&backend_id(backend, k))
                    .cooldown_ends(now)
                    .unwrap_or(now)
            })
            .min()
            .unwrap_or(now)
    }
}

/// The `retry.on` class of a failure, if it is retryable at all.
fn retry_class(kind: FailureKind) -> Option<RetryOn> {
    match kind {
        FailureKind::Connect => Some(RetryOn::ConnectError),
        FailureKind::Timeout => Some(RetryOn::Timeout),
        FailureKind::RateLimited => Some(RetryOn::RateLimited),
        FailureKind::Server | FailureKind::Overloaded => Some(RetryOn::ServerError),
        _ => None,
    }
}
