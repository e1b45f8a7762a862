//! Budgets enforced: before a request goes upstream its estimated cost is reserved on every
//! budget in scope (atomically, in the state layer); when the answer is complete the
//! reservation is corrected to the real cost. Concurrent requests therefore overshoot a
//! limit by at most what their real costs exceed their estimates (see `docs/budgets.md`).
//!
//! Spend is counted in nano-USD per budget and period: calendar periods are counters keyed
//! by the period's start (so a new period starts at zero by itself), rolling windows are
//! bucketed windows. With the Redis backend every replica shares the counters; in-process,
//! the operator seeds a restarted gateway from `LLMBudget.status` ([`Budgets::seed`]).

#[cfg(test)]
mod tests;

use std::sync::{
    Arc,
    atomic::{AtomicI64, Ordering},
};

use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use tollgate_crds::{
    config::{ActionConfig, BudgetConfig, GatewayConfig, PeriodConfig},
    period::{CurrentPeriod, current_period},
};

use crate::{
    cost::{from_nanos, to_nanos},
    identity::Identity,
    state::{StateError, StateStore, Window},
};

/// Where budget time comes from: the system clock, or a hand-driven one in tests.
#[derive(Clone, Debug, Default)]
pub enum WallClock {
    /// `jiff::Timestamp::now()`.
    #[default]
    System,
    /// Milliseconds since the epoch, set by the test.
    Manual(Arc<AtomicI64>),
}

impl WallClock {
    /// The current instant.
    pub fn now(&self) -> Timestamp {
        match self {
            WallClock::System => Timestamp::now(),
            WallClock::Manual(ms) => Timestamp::from_millisecond(ms.load(Ordering::Relaxed))
                .unwrap_or(Timestamp::UNIX_EPOCH),
        }
    }
}

fn millis(t: Timestamp) -> u64 {
    u64::try_from(t.as_millisecond()).unwrap_or(0)
}

/// How long a calendar counter outlives its period (so `/budgets` and the operator can
/// still read a period that just ended).
const KEEP_AFTER_PERIOD_MS: u64 = 86_400_000;

/// Where one budget's spend lives for the period at hand.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Slot {
    Counter { key: String, ttl_ms: u64 },
    Window { key: String, window: Window },
}

fn slot(budget: &BudgetConfig, period: &CurrentPeriod, now: Timestamp) -> Slot {
    match period {
        CurrentPeriod::Calendar { start, end } => Slot::Counter {
            key: format!("budget:{}:{}", budget.id, start.as_millisecond()),
            ttl_ms: millis(*end)
                .saturating_sub(millis(now))
                .saturating_add(KEEP_AFTER_PERIOD_MS),
        },
        CurrentPeriod::Rolling { window_ms, .. } => Slot::Window {
            key: format!("budget:{}:rolling", budget.id),
            window: Window::new(*window_ms),
        },
    }
}

/// A reservation on one budget, to be settled with the real cost.
#[derive(Clone, Debug)]
pub struct Reservation {
    budget: Arc<str>,
    slot: Slot,
    nanos: i64,
    at_ms: u64,
}

/// What admission decided.
#[derive(Debug, Default)]
pub struct Admitted {
    /// Reservations to settle.
    pub reservations: Vec<Reservation>,
    /// Budgets at or over their limit that only alert (or are in shadow mode).
    pub over: Vec<Arc<str>>,
}

/// Why a request is not served as asked.
#[derive(Debug)]
pub enum Refusal {
    /// A `reject` budget has no room: answer 429 `budget_exceeded`.
    Exceeded {
        /// The budget's id.
        budget: String,
    },
    /// A `downgrade` budget has no room: serve from this route instead.
    Downgrade {
        /// The budget's id.
        budget: String,
        /// The route id to use.
        route: String,
    },
}

/// One budget's standing, for `/budgets` and the operator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BudgetStanding {
    /// `namespace/name`.
    pub id: String,
    /// The limit in USD.
    pub limit: Decimal,
    /// Spend in the current period (reservations in flight included), USD.
    pub spent: Decimal,
    /// `limit - spent`, never below zero.
    pub remaining: Decimal,
    /// Start of the period (RFC 3339).
    pub period_start: String,
    /// End of the period (RFC 3339).
    pub period_end: String,
    /// Whether the period is a rolling window.
    pub rolling: bool,
}

/// A spend seed from the operator: the spend it last saw for a budget's period.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Seed {
    /// `namespace/name`.
    pub id: String,
    /// Start of the period the spend belongs to (RFC 3339).
    pub period_start: String,
    /// The spend, USD.
    pub spent: Decimal,
}

/// The budgets' runtime: the state store and the clock.
#[derive(Debug)]
pub struct Budgets {
    /// Where counters live (shared with rate limits).
    pub store: Arc<StateStore>,
    /// Where time comes from.
    pub clock: WallClock,
}

/// The budgets of `config` that count a request to `route_id` by `identity`.
pub fn in_scope<'a>(
    config: &'a GatewayConfig,
    route_id: &str,
    identity: &Identity,
) -> impl Iterator<Item = &'a BudgetConfig> {
    let team = identity.team.as_deref();
    let key = identity.key_id.as_deref();
    config.budgets.iter().filter(move |b| {
        b.routes.iter().any(|r| r == route_id)
            && (b.teams.is_empty() || team.is_some_and(|t| b.teams.iter().any(|x| x == t)))
            && (b.keys.is_empty() || key.is_some_and(|k| b.keys.iter().any(|x| x == k)))
    })
}

impl Budgets {
    /// Budgets on `store`, timed by `clock`.
    pub fn new(store: StateStore, clock: WallClock) -> Self {
        Self {
            store: Arc::new(store),
            clock,
        }
    }

    /// Reserves `estimate` on every budget in `budgets`. A `reject` or `downgrade` budget
    /// without room refuses (releasing what was reserved on the others); `alert` budgets
    /// and budgets in shadow mode always count and only report.
    pub async fn admit(
        &self,
        budgets: &[&BudgetConfig],
        estimate: Decimal,
    ) -> Result<Result<Admitted, Refusal>, StateError> {
        let now = self.clock.now();
        let now_ms = millis(now);
        let nanos = to_nanos(estimate);
        let mut admitted = Admitted::default();
        for budget in budgets {
            let Ok(period) = current_period(&budget.period, now) else {
                continue;
            };
            let slot = slot(budget, &period, now);
            let limit = to_nanos(budget.limit);
            let enforced = !budget.shadow_mode && !matches!(budget.action, ActionConfig::Alert);
            let outcome = if enforced {
                self.reserve(&slot, nanos, limit, now_ms).await
            } else {
                self.add(&slot, nanos, now_ms, now_ms).await.map(|total| {
                    if total >= limit {
                        admitted.over.push(Arc::from(budget.id.as_str()));
                    }
                    true
                })
            };
            let granted = match outcome {
                Ok(granted) => granted,
                Err(e) => {
                    self.release(&admitted.reservations).await;
                    return Err(e);
                }
            };
            if !granted {
                self.release(&admitted.reservations).await;
                return Ok(Err(match &budget.action {
                    ActionConfig::Downgrade { route } => Refusal::Downgrade {
                        budget: budget.id.clone(),
                        route: route.clone(),
                    },
                    _ => Refusal::Exceeded {
                        budget: budget.id.clone(),
                    },
                }));
            }
            admitted.reservations.push(Reservation {
                budget: Arc::from(budget.id.as_str()),
                slot,
                nanos,
                at_ms: now_ms,
            });
        }
        Ok(Ok(admitted))
    }

    async fn reserve(
        &self,
        slot: &Slot,
        nanos: i64,
        limit: i64,
        now_ms: u64,
    ) -> Result<bool, StateError> {
        Ok(match slot {
            Slot::Counter { key, ttl_ms } => self
                .store
                .counter_reserve(key, nanos, limit, *ttl_ms, now_ms)
                .await?
                .granted(),
            Slot::Window { key, window } => self
                .store
                .window_reserve(key, nanos, limit, *window, now_ms)
                .await?
                .granted(),
        })
    }

    async fn add(
        &self,
        slot: &Slot,
        nanos: i64,
        at_ms: u64,
        now_ms: u64,
    ) -> Result<i64, StateError> {
        match slot {
            Slot::Counter { key, ttl_ms } => {
                // A settlement after the period ended still lands in its period's counter.
                let ttl = ttl_ms.saturating_sub(now_ms.saturating_sub(at_ms)).max(1);
                self.store.counter_add(key, nanos, ttl, now_ms).await
            }
            Slot::Window { key, window } => {
                self.store
                    .window_add(key, nanos, *window, at_ms, now_ms)
                    .await
            }
        }
    }

    /// Takes back reservations (a refused or failed-before-upstream request).
    pub async fn release(&self, reservations: &[Reservation]) {
        let now_ms = millis(self.clock.now());
        for r in reservations {
            if let Err(e) = self.add(&r.slot, -r.nanos, r.at_ms, now_ms).await {
                tracing::warn!(budget = %r.budget, error = %e, "cannot release a budget reservation");
            }
        }
    }

    /// Corrects each reservation to the real `cost`.
    pub async fn settle(&self, reservations: &[Reservation], cost: Decimal) {
        let now_ms = millis(self.clock.now());
        let real = to_nanos(cost);
        for r in reservations {
            let delta = real.saturating_sub(r.nanos);
            if delta == 0 {
                continue;
            }
            if let Err(e) = self.add(&r.slot, delta, r.at_ms, now_ms).await {
                tracing::warn!(budget = %r.budget, error = %e, "cannot settle a budget reservation");
            }
        }
    }

    /// Every budget's standing now.
    pub async fn standings(
        &self,
        config: &GatewayConfig,
    ) -> Result<Vec<BudgetStanding>, StateError> {
        let now = self.clock.now();
        let now_ms = millis(now);
        let mut out = Vec::with_capacity(config.budgets.len());
        for budget in &config.budgets {
            let Ok(period) = current_period(&budget.period, now) else {
                continue;
            };
            let nanos = match slot(budget, &period, now) {
                Slot::Counter { key, .. } => self.store.counter_get(&key, now_ms).await?,
                Slot::Window { key, window } => self.store.window_get(&key, window, now_ms).await?,
            };
            let spent = from_nanos(nanos.max(0));
            out.push(BudgetStanding {
                id: budget.id.clone(),
                limit: budget.limit,
                remaining: (budget.limit - spent).max(Decimal::ZERO),
                spent,
                period_start: period.start().to_string(),
                period_end: period.end().to_string(),
                rolling: matches!(budget.period, PeriodConfig::Rolling { .. }),
            });
        }
        Ok(out)
    }

    /// Raises each seeded budget's current-period counter to the seeded spend (never
    /// lowers it). Seeds for another period, for rolling windows, or for unknown budgets
    /// are ignored: a rolling window's past cannot be placed in its buckets. Returns how
    /// many seeds were applied.
    pub async fn seed(&self, config: &GatewayConfig, seeds: &[Seed]) -> Result<usize, StateError> {
        let now = self.clock.now();
        let now_ms = millis(now);
        let mut applied = 0;
        for seed in seeds {
            let Some(budget) = config.budgets.iter().find(|b| b.id == seed.id) else {
                continue;
            };
            let Ok(period @ CurrentPeriod::Calendar { start, .. }) =
                current_period(&budget.period, now)
            else {
                continue;
            };
            if seed.period_start.parse::<Timestamp>().ok() != Some(start) {
                continue;
            }
            if let Slot::Counter { key, ttl_ms } = slot(budget, &period, now) {
                self.store
                    .counter_raise(&key, to_nanos(seed.spent), ttl_ms, now_ms)
                    .await?;
                applied += 1;
            }
        }
        Ok(applied)
    }
}
