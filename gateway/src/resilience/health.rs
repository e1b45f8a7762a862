//! Passive health per backend (provider + key + model): a circuit breaker fed by the outcome
//! of real requests.
//!
//! A backend is `closed` (traffic flows) until `failure_threshold` consecutive failures that
//! are its own fault eject it: it is `open` for `base_cooldown * 2^(ejections so far)`, capped at
//! `max_cooldown`. When the cooldown is over, exactly one caller gets a [`Admission::Trial`]
//! (`half_open`): its success closes the circuit and forgets past ejections, its failure
//! ejects again for twice as long. A 429 [`cool_down`](BackendHealth::cool_down) opens the
//! circuit for the provider's `Retry-After` without counting as a failure.
//!
//! Cooldowns only ever grow: neither an ejection nor a cool-down ends an existing cooldown
//! early.

#![allow(
    clippy::disallowed_types,
    reason = "a failing backend's state: a lock held for a few instructions, never across an await; healthy backends are read through an atomic"
)]

use std::sync::{
    Mutex, PoisonError,
    atomic::{AtomicBool, Ordering},
};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::after;
use crate::failure::FailureKind;

/// While a half-open trial is in flight, other callers are told to check again this soon.
pub const TRIAL_RECHECK: Duration = Duration::from_secs(1);

/// A trial that has neither succeeded nor failed after this long is presumed lost (its caller
/// was cancelled without reporting), and the next caller gets a new trial. Without it, a lost
/// trial would keep the backend out of rotation forever.
pub const TRIAL_TIMEOUT: Duration = Duration::from_secs(60);

/// How eagerly backends are ejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthSettings {
    /// Consecutive backend-fault failures that eject a closed backend (0 is treated as 1).
    pub failure_threshold: u32,
    /// The first ejection's cooldown, doubled by each further ejection in a row.
    pub base_cooldown: Duration,
    /// The longest cooldown.
    pub max_cooldown: Duration,
}

impl Default for HealthSettings {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            base_cooldown: Duration::from_secs(5),
            max_cooldown: Duration::from_secs(300),
        }
    }
}

impl HealthSettings {
    /// The cooldown of an ejection that follows `previous` ejections in a row:
    /// `base * 2^previous`, capped at `max`.
    pub fn cooldown(&self, previous: u32) -> Duration {
        2u32.checked_pow(previous)
            .and_then(|factor| self.base_cooldown.checked_mul(factor))
            .map_or(self.max_cooldown, |cooldown| {
                cooldown.min(self.max_cooldown)
            })
    }
}

/// Whether a request may use a backend now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// The circuit is closed.
    Allowed,
    /// The cooldown is over and this caller is the single half-open probe: it must report its
    /// outcome with `record_success`, `record_failure` or `cool_down`.
    Trial,
    /// The backend is out of rotation until `until` (or, during a trial, until a re-check).
    Rejected {
        /// When to ask again.
        until: Instant,
    },
}

/// A `record_failure` that ejected the backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ejection {
    /// How long this ejection lasts (the circuit may stay open longer when an earlier cooldown
    /// ends later).
    pub cooldown: Duration,
    /// Ejections in a row, this one included (1 for the first).
    pub ejections: u32,
}

/// A circuit's state, as shown in [`HealthView`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    /// Traffic flows.
    Closed,
    /// Out of rotation until the cooldown ends.
    Open,
    /// One trial request is in flight.
    HalfOpen,
}

/// One backend's health for `/debug/backends`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthView {
    /// The backend's id (provider + key + model).
    pub id: String,
    /// `closed`, `open` or `half_open`.
    pub state: CircuitState,
    /// Backend-fault failures since the last success.
    pub consecutive_failures: u32,
    /// Ejections in a row (reset by a successful trial).
    pub ejections: u32,
    /// Milliseconds until the cooldown ends (0 unless open).
    pub cooldown_remaining_ms: u64,
    /// The last backend-fault failure's kind (`FailureKind::as_str`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<&'static str>,
}

/// Whether a failure is the backend's fault and counts toward ejection. Client faults
/// (`BadRequest`, `ContextWindowExceeded`, `ContentTooLarge`) would fail anywhere, and
/// `RateLimited` is handled by [`BackendHealth::cool_down`].
pub fn is_backend_fault(kind: FailureKind) -> bool {
    match kind {
        FailureKind::Connect
        | FailureKind::Timeout
        | FailureKind::Server
        | FailureKind::Overloaded
        | FailureKind::Protocol
        | FailureKind::Authentication
        | FailureKind::PermissionDenied
        | FailureKind::NotFound => true,
        FailureKind::BadRequest
        | FailureKind::ContextWindowExceeded
        | FailureKind::ContentTooLarge
        | FailureKind::RateLimited
        | FailureKind::ContentPolicy => false,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Circuit {
    Closed,
    /// `ejected` is false when only a 429 cool-down opened it: failures of requests still in
    /// flight may then eject it (lengthening the cooldown), whereas after an ejection they are
    /// stale news and must not eject it again.
    Open {
        until: Instant,
        ejected: bool,
    },
    HalfOpen {
        trial_since: Instant,
    },
}

#[derive(Debug)]
struct State {
    circuit: Circuit,
    consecutive_failures: u32,
    ejections: u32,
    last_failure: Option<FailureKind>,
}

/// Passive health of one backend. Cheap to share (`Arc`). A healthy backend (closed, no
/// failure since its last success) is read and kept healthy through one atomic flag, so the
/// common path takes no lock; otherwise a small mutex is held for a few instructions, never
/// across an await.
#[derive(Debug)]
pub struct BackendHealth {
    id: String,
    state: Mutex<State>,
    /// Closed with no failure since the last success; written under the lock.
    healthy: AtomicBool,
}

/// The locked state; on release it refreshes the `healthy` flag (while still holding the lock).
struct Guard<'a> {
    state: std::sync::MutexGuard<'a, State>,
    healthy: &'a AtomicBool,
}

impl std::ops::Deref for Guard<'_> {
    type Target = State;
    fn deref(&self) -> &State {
        &self.state
    }
}

impl std::ops::DerefMut for Guard<'_> {
    fn deref_mut(&mut self) -> &mut State {
        &mut self.state
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        let healthy = self.state.circuit == Circuit::Closed && self.state.consecutive_failures == 0;
        self.healthy.store(healthy, Ordering::Release);
    }
}

// === impl BackendHealth ===

impl BackendHealth {
    /// A closed, healthy backend.
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            state: Mutex::new(State {
                circuit: Circuit::Closed,
                consecutive_failures: 0,
                ejections: 0,
                last_failure: None,
            }),
            healthy: AtomicBool::new(true),
        }
    }

    /// The backend's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn state(&self) -> Guard<'_> {
        // The state is valid after every statement, so a panic elsewhere cannot corrupt it.
        Guard {
            state: self.state.lock().unwrap_or_else(PoisonError::into_inner),
            healthy: &self.healthy,
        }
    }

    fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Acquire)
    }

    /// Closed: `Allowed`. Open with the cooldown running: `Rejected { until }`. Open with the
    /// cooldown over: half-open, and `Trial` for this one caller; while the trial is in flight
    /// the others get `Rejected { until: now + TRIAL_RECHECK }` (a trial older than
    /// [`TRIAL_TIMEOUT`] is presumed lost and handed to the next caller).
    pub fn admit(&self, now: Instant) -> Admission {
        if self.is_healthy() {
            return Admission::Allowed;
        }
        let mut state = self.state();
        match state.circuit {
            Circuit::Closed => Admission::Allowed,
            Circuit::Open { until, .. } if now < until => Admission::Rejected { until },
            Circuit::HalfOpen { trial_since }
                if now.saturating_duration_since(trial_since) < TRIAL_TIMEOUT =>
            {
                Admission::Rejected {
                    until: after(now, TRIAL_RECHECK),
                }
            }
            Circuit::Open { .. } | Circuit::HalfOpen { .. } => {
                state.circuit = Circuit::HalfOpen { trial_since: now };
                Admission::Trial
            }
        }
    }

    /// A successful request. Closes a half-open circuit and forgets past ejections (the next
    /// ejection starts again at the base cooldown); resets the consecutive failures of a closed
    /// one. A success while open comes from a request admitted before the circuit opened: it
    /// changes nothing, since the cooldown is never shortened and the trial decides.
    pub fn record_success(&self, _now: Instant) {
        if self.is_healthy() {
            return;
        }
        let mut state = self.state();
        match state.circuit {
            Circuit::Closed => state.consecutive_failures = 0,
            Circuit::HalfOpen { .. } => {
                state.circuit = Circuit::Closed;
                state.consecutive_failures = 0;
                state.ejections = 0;
            }
            Circuit::Open { .. } => {}
        }
    }

    /// A failed request. Only [backend faults](is_backend_fault) count. A closed backend is
    /// ejected when its consecutive failures reach the threshold, a half-open one by any
    /// failure of its trial; the cooldown is `base * 2^(ejections so far)`, capped at `max`,
    /// and never ends an existing cooldown early. Returns the ejection this call caused.
    ///
    /// A client fault during a trial says nothing about the backend: the trial is released and
    /// the next caller gets a new one.
    pub fn record_failure(
        &self,
        now: Instant,
        kind: FailureKind,
        settings: &HealthSettings,
    ) -> Option<Ejection> {
        let mut state = self.state();
        if !is_backend_fault(kind) {
            if let Circuit::HalfOpen { .. } = state.circuit {
                state.circuit = Circuit::Open {
                    until: now,
                    ejected: true,
                };
            }
            return None;
        }
        state.consecutive_failures = state.consecutive_failures.saturating_add(1);
        state.last_failure = Some(kind);
        let eject = match state.circuit {
            Circuit::Closed | Circuit::Open { ejected: false, .. } => {
                state.consecutive_failures >= settings.failure_threshold.max(1)
            }
            Circuit::HalfOpen { .. } => true,
            Circuit::Open { ejected: true, .. } => false,
        };
        if !eject {
            return None;
        }
        let cooldown = settings.cooldown(state.ejections);
        state.ejections = state.ejections.saturating_add(1);
        let until = match state.circuit {
            Circuit::Open { until, .. } => until.max(after(now, cooldown)),
            Circuit::Closed | Circuit::HalfOpen { .. } => after(now, cooldown),
        };
        state.circuit = Circuit::Open {
            until,
            ejected: true,
        };
        Some(Ejection {
            cooldown,
            ejections: state.ejections,
        })
    }

    /// A 429: out of rotation until `now + retry_after` (the base cooldown without one; at most
    /// [`MAX_HORIZON`](super::MAX_HORIZON)), never ending an existing cooldown early. It neither counts toward the failure threshold nor
    /// doubles later cooldowns. During a trial, it ends the trial.
    pub fn cool_down(
        &self,
        now: Instant,
        retry_after: Option<Duration>,
        settings: &HealthSettings,
    ) {
        let mut state = self.state();
        let until = after(now, retry_after.unwrap_or(settings.base_cooldown));
        state.circuit = match state.circuit {
            Circuit::Open {
                until: current,
                ejected,
            } => Circuit::Open {
                until: current.max(until),
                ejected,
            },
            Circuit::Closed | Circuit::HalfOpen { .. } => Circuit::Open {
                until,
                ejected: false,
            },
        };
    }

    /// When the backend may next be tried: the end of its cooldown when open (possibly already
    /// past, when the next `admit` would grant a trial), the trial re-check when half-open,
    /// `None` when closed. For "panic mode": when every backend of a route is out, try the one
    /// that frees up first.
    pub fn cooldown_ends(&self, now: Instant) -> Option<Instant> {
        if self.is_healthy() {
            return None;
        }
        match self.state().circuit {
            Circuit::Closed => None,
            Circuit::Open { until, .. } => Some(until),
            Circuit::HalfOpen { .. } => Some(after(now, TRIAL_RECHECK)),
        }
    }

    /// A snapshot for `/debug/backends`.
    pub fn view(&self, now: Instant) -> HealthView {
        let state = self.state();
        let (circuit, remaining) = match state.circuit {
            Circuit::Closed => (CircuitState::Closed, Duration::ZERO),
            Circuit::Open { until, .. } => {
                (CircuitState::Open, until.saturating_duration_since(now))
            }
            Circuit::HalfOpen { .. } => (CircuitState::HalfOpen, Duration::ZERO),
        };
        HealthView {
            id: self.id.clone(),
            state: circuit,
            consecutive_failures: state.consecutive_failures,
            ejections: state.ejections,
            cooldown_remaining_ms: u64::try_from(remaining.as_millis()).unwrap_or(u64::MAX),
            last_failure: state.last_failure.map(FailureKind::as_str),
        }
    }
}

#[cfg(test)]
#[path = "health_tests.rs"]
mod tests;
