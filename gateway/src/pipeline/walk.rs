//! The walk stage: which backend and key to try next, with passive health, per-key quotas,
//! context windows, retries (exponential backoff with jitter, `Retry-After`, a retry budget)
//! and fallback.
//!
//! Order of decisions for each step:
//! 1. After a failure the route retries (`retry.on`), while attempts on this backend remain,
//!    one of its keys is usable by the end of the backoff, the retry budget allows it, and
//!    the deadline leaves room for the backoff: same backend, the next usable key. A retry
//!    that could not be sent is neither counted nor slept for.
//! 2. Otherwise, if the failure may succeed elsewhere, the next backend in the plan.
//! 3. A backend is skipped when the prompt does not fit its context window, when its adapter
//!    cannot express the request (reported by the caller with [`Walk::refused`]), or while
//!    every one of its keys is ejected (circuit open) or over its quota. When backends were
//!    skipped for health or quota only and nothing was tried yet ("panic mode"), the one
//!    whose cooldown ends first is tried anyway, so a blip that ejects everything cannot turn
//!    into an outage.
//! 4. With shared state, a key's quota is also taken from the shared buckets every replica
//!    counts in (`limits::quota`); a key they refuse is skipped like one over its local
//!    quota.

use std::{sync::Arc, time::Duration};

use tokio::time::Instant;
use tollgate_crds::config::{RetryConfig, RetryOn};

use crate::{
    backend::{Backend, Key},
    error::GatewayError,
    failure::{Failure, FailureKind},
    limits::quota::SharedQuota,
    metrics::Metrics,
    providers::{RequestError, Secret},
    resilience::{
        health::{Admission, BackendHealth, HealthSettings},
        quota::KeyQuota,
        retry::{RetryBudget, backoff},
    },
    routing::{Plan, RouteRuntime},
};

/// One attempt's choice.
pub struct Pick<'a> {
    /// The backend.
    pub backend: &'a Arc<Backend>,
    /// The key, if the provider has keys.
    pub secret: Option<&'a Secret>,
    /// The key's quota, if any.
    pub quota: Option<&'a Arc<KeyQuota>>,
    /// Its health.
    pub health: &'a Arc<BackendHealth>,
    /// Whether it comes from `fallbacks`.
    pub fallback: bool,
    /// Whether the key's quota was also taken from shared state.
    pub shared_quota: bool,
    /// 1-based number of this attempt among those sent upstream (retries included).
    pub attempt: usize,
    index: usize,
}

/// What the prompt weighs, as far as the walk needs it.
#[derive(Clone, Copy, Debug, Default)]
pub struct PromptSize {
    /// Estimated prompt tokens (0 when nothing needed them).
    pub tokens: u64,
}

/// The walk's state for one request.
pub struct Walk<'a> {
    plan: &'a Plan<'a>,
    retry: &'a RetryConfig,
    budget: &'a RetryBudget,
    settings: &'a HealthSettings,
    metrics: &'a Metrics,
    route: &'a str,
    quotas: Option<&'a Arc<crate::limits::Limiter>>,
    deadline: Instant,
    prompt: PromptSize,
    position: usize,
    tries_here: u32,
    attempts: usize,
    last: Option<Failure>,
    refusal: Option<RequestError>,
    /// Backends whose adapter refused the request (a bit per plan index; plans are short).
    refused: u64,
    /// The plan index of the last failure.
    last_index: Option<usize>,
    too_long: bool,
    unavailable: bool,
    panicked: bool,
}

impl<'a> Walk<'a> {
    /// A walk over `plan` for `route`, ending at `started` + the route's longest timeout.
    pub fn new(
        plan: &'a Plan<'a>,
        route: &'a RouteRuntime,
        settings: &'a HealthSettings,
        metrics: &'a Metrics,
        prompt: PromptSize,
        started: Instant,
    ) -> Self {
        route.budget.on_request();
        Self {
            plan,
            retry: &route.config.retry,
            budget: &route.budget,
            settings,
            metrics,
            route: &route.config.id,
            quotas: None,
            deadline: started + route.longest_total,
            prompt,
            position: 0,
            tries_here: 0,
            attempts: 0,
            last: None,
            refusal: None,
            refused: 0,
            last_index: None,
            too_long: false,
            unavailable: false,
            panicked: false,
        }
    }

    /// Counts provider key quotas in `limiter`'s shared state too (when it has one).
    pub fn sharing_quotas(mut self, limiter: &'a Arc<crate::limits::Limiter>) -> Self {
        self.quotas = limiter.shares_quotas().then_some(limiter);
        self
    }

    /// The next attempt, sleeping for a backoff first when retrying; `None` when the walk is
    /// over (or the deadline leaves no time).
    pub async fn next(&mut self) -> Option<Pick<'a>> {
        if let Some((kind, retry_after)) = self.last.as_ref().map(|f| (f.kind, f.retry_after)) {
            if let Some(pick) = self.retry(kind, retry_after).await {
                return Some(pick);
            }
            if !kind.falls_back() {
                return None;
            }
        }
        while self.position < self.plan.backends.len() {
            let index = self.position;
            self.position += 1;
            self.tries_here = 0;
            if let Some(pick) = self.take(index, false).await {
                return Some(pick);
            }
        }
        self.panic().await
    }

    async fn retry(
        &mut self,
        kind: FailureKind,
        retry_after: Option<Duration>,
    ) -> Option<Pick<'a>> {
        let retryable = retry_class(kind).is_some_and(|c| self.retry.on.contains(&c));
        let index = self.position.checked_sub(1)?;
        let here = *self.plan.backends.get(index)?;
        if !retryable || self.tries_here >= self.retry.attempts || self.last_index != Some(index) {
            return None;
        }
        let wait = backoff(
            self.tries_here.saturating_sub(1),
            Duration::from_millis(self.retry.backoff_initial_ms),
            Duration::from_millis(self.retry.backoff_max_ms),
            retry_after,
        );
        let now = Instant::now();
        let at = now + wait;
        if at >= self.deadline || !self.usable_by(here, now, at) || !self.budget.try_retry() {
            return None;
        }
        self.metrics.retry(self.route, kind.as_str());
        tokio::time::sleep(wait).await;
        self.take(index, false).await
    }

    /// Whether one of `backend`'s keys will be usable at `at`: its circuit closed or its
    /// cooldown over, and its quota refilled enough.
    fn usable_by(&self, backend: &Backend, now: Instant, at: Instant) -> bool {
        (0..backend.key_count()).any(|k| {
            backend.slot(k).is_some_and(|(key, health)| {
                health.cooldown_ends(now).is_none_or(|end| end <= at)
                    && key
                        .quota
                        .as_ref()
                        .is_none_or(|q| q.ready_at(now, self.prompt.tokens) <= at)
            })
        })
    }

    /// Panic mode: nothing was tried because health or quotas ruled every backend out; try
    /// the one whose cooldown ends first (among those the prompt fits and that can express
    /// the request).
    async fn panic(&mut self) -> Option<Pick<'a>> {
        if self.attempts > 0 || self.panicked || !self.unavailable {
            return None;
        }
        self.panicked = true;
        let now = Instant::now();
        let soonest = (0..self.plan.backends.len())
            .filter(|i| !self.is_refused(*i))
            .filter(|i| !self.plan.backends[*i].too_long(self.prompt.tokens))
            .min_by_key(|i| cooldown_end(self.plan.backends[*i], now))?;
        tracing::warn!(
            route = self.route,
            "every backend is ejected or over quota; trying the one whose cooldown ends first"
        );
        self.metrics.panic_mode(self.route);
        self.position = soonest + 1;
        self.take(soonest, true).await
    }

    /// The adapter of `pick` cannot express the request: the attempt is taken back (nothing
    /// was sent; its quota and any half-open trial are released) and the walk moves on.
    pub fn refused(&mut self, pick: Pick<'a>, refusal: RequestError) {
        self.attempts -= 1;
        self.tries_here = self.tries_here.saturating_sub(1);
        let now = Instant::now();
        if let Some(q) = pick.quota {
            q.release(now, self.prompt.tokens);
            if let (true, Some(limiter)) = (pick.shared_quota, self.quotas) {
                crate::limits::quota::release(limiter, q, self.prompt.tokens);
            }
        }
        // A client fault says nothing about the backend; it only releases a trial.
        pick.health
            .record_failure(now, FailureKind::BadRequest, self.settings);
        if let Some(bit) = 1u64.checked_shl(pick.index as u32) {
            self.refused |= bit;
        }
        self.refusal.get_or_insert(refusal);
    }

    /// `pick` answered (the answer's settlement records the attempt's outcome).
    pub fn succeeded(&mut self, pick: &Pick<'_>) {
        pick.health.record_success(Instant::now());
    }

    /// `pick` failed with `failure`.
    pub fn failed(&mut self, pick: &Pick<'_>, failure: Failure) {
        let now = Instant::now();
        if failure.kind == FailureKind::RateLimited {
            pick.health
                .cool_down(now, failure.retry_after, self.settings);
        } else if let Some(ejection) = pick.health.record_failure(now, failure.kind, self.settings)
        {
            tracing::warn!(
                backend = pick.health.id(),
                kind = failure.kind.as_str(),
                cooldown_ms = ejection.cooldown.as_millis() as u64,
                ejections = ejection.ejections,
                "backend ejected"
            );
            self.metrics.ejection(
                &pick.backend.config.provider,
                &pick.backend.config.model,
                failure.kind.as_str(),
            );
        }
        self.metrics.attempt(
            self.route,
            &pick.backend.config.provider,
            &pick.backend.config.model,
            failure.kind.as_str(),
            pick.fallback,
        );
        self.last = Some(failure);
        self.last_index = Some(pick.index);
    }

    fn is_refused(&self, index: usize) -> bool {
        1u64.checked_shl(index as u32)
            .is_some_and(|bit| self.refused & bit != 0)
    }

    /// Why the walk ended without an answer.
    pub fn into_error(self, model: &str) -> GatewayError {
        if let Some(failure) = self.last {
            return GatewayError::Upstream(failure);
        }
        if let Some(refusal) = self.refusal {
            return refusal.into();
        }
        if self.too_long {
            return GatewayError::Upstream(Failure::new(
                FailureKind::ContextWindowExceeded,
                format!(
                    "the prompt (about {} tokens) does not fit the context window of any backend of this model",
                    self.prompt.tokens
                ),
            ));
        }
        GatewayError::NoBackend {
            model: model.to_owned(),
            why: "no provider of the route is loaded".into(),
        }
    }

    async fn take(&mut self, index: usize, force: bool) -> Option<Pick<'a>> {
        let backend = *self.plan.backends.get(index)?;
        if self.is_refused(index) {
            return None;
        }
        // A prompt that cannot fit this model's context window goes to a backend that can.
        if backend.too_long(self.prompt.tokens) {
            self.too_long = true;
            return None;
        }
        let now = Instant::now();
        let keys = backend.key_count();
        let start = backend.provider.next_key();
        for k in 0..keys {
            let key = (start + k) % keys;
            let Some((Key { secret, quota }, health)) = backend.slot(key) else {
                continue;
            };
            // Quota first, without reserving: admitting a half-open trial and then not
            // sending it would hold the trial back.
            if !force
                && quota
                    .as_ref()
                    .is_some_and(|q| q.ready_at(now, self.prompt.tokens) > now)
            {
                self.unavailable = true;
                continue;
            }
            // The shared quota next (still before health, for the same reason); panic mode
            // ignores quotas, as it does locally.
            let shared = match (quota, self.quotas) {
                (Some(q), Some(limiter)) if !force => {
                    match limiter.take_quota(q, self.prompt.tokens).await {
                        SharedQuota::Taken => true,
                        SharedQuota::Local => false,
                        SharedQuota::Full(_) => {
                            self.unavailable = true;
                            continue;
                        }
                    }
                }
                _ => false,
            };
            let admitted = match health.admit(now) {
                Admission::Allowed | Admission::Trial => true,
                Admission::Rejected { .. } => force,
            };
            if !admitted {
                if let (true, Some(q), Some(limiter)) = (shared, quota, self.quotas) {
                    crate::limits::quota::release(limiter, q, self.prompt.tokens);
                }
                self.unavailable = true;
                continue;
            }
            if let Some(q) = quota {
                // Room was checked above; if another request took it meanwhile, this one
                // still goes (unreserved) rather than failing.
                let _ = q.try_acquire(now, self.prompt.tokens);
            }
            self.attempts += 1;
            self.tries_here += 1;
            return Some(Pick {
                backend,
                secret: secret.as_ref(),
                quota: quota.as_ref(),
                health,
                fallback: self.plan.is_fallback(index),
                shared_quota: shared,
                attempt: self.attempts,
                index,
            });
        }
        None
    }
}

/// When the first of `backend`'s keys leaves its cooldown (`now` when one is closed).
fn cooldown_end(backend: &Backend, now: Instant) -> Instant {
    backend
        .health
        .iter()
        .map(|h| h.cooldown_ends(now).unwrap_or(now))
        .min()
        .unwrap_or(now)
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
