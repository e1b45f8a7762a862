//! The who-pays hooks of the pipeline: identity at admission, budget reservation after
//! planning, cost settlement when the answer is complete.

use std::sync::Arc;

use http::HeaderMap;
use rust_decimal::{Decimal, prelude::ToPrimitive};
use tollgate_crds::config::BudgetConfig;

use crate::{
    backend::Backend,
    budget::{Budgets, Refusal, Reservation, in_scope},
    cost::{TokenUsage, cost, estimate},
    error::GatewayError,
    identity::Identity,
    metrics::{CostLabels, Metrics, TokenCounts},
    routing::Plan,
    snapshot::Snapshot,
    usage::{UsageLog, UsageRecord},
};

/// Output tokens assumed for a reservation when the request sets no limit and the model's
/// context window is unknown.
pub const DEFAULT_OUTPUT_ESTIMATE: u64 = 4096;

/// Budgets, rate limits and the usage log, shared by every request.
#[derive(Debug)]
pub struct Pays {
    /// Budget counters.
    pub budgets: Budgets,
    /// Usage records.
    pub usage: UsageLog,
    /// Route rate limits; also what a request gets when the shared state fails.
    pub limits: Arc<crate::limits::Limiter>,
}

/// What a request carries from admission to settlement.
#[derive(Debug)]
pub struct Bill {
    /// Shared budgets and log.
    pub pays: Arc<Pays>,
    /// Who is calling.
    pub identity: Identity,
    /// Budget reservations to settle.
    pub reservations: Vec<Reservation>,
    /// The request id, for the usage record.
    pub request_id: String,
    /// Rate-limit token reservations, settled with the real usage.
    pub limits: Option<crate::limits::Ticket>,
    /// On a cached route, how the cache served it (`miss`, `bypass`), for the usage record.
    pub cache: Option<&'static str>,
    /// The guardrail rules that fired, for the usage record.
    pub guardrails: crate::guardrails::Fired,
}

/// Authenticates a request to `route_id`.
pub fn identify(
    pays: &Pays,
    snapshot: &Snapshot,
    headers: &HeaderMap,
    route_id: &str,
) -> Result<Identity, GatewayError> {
    snapshot
        .keys
        .authenticate(headers, route_id, pays.budgets.clock.now())
        .map_err(GatewayError::Unauthorized)
}

/// The most the request may cost on any backend the plan may try.
pub fn estimate_for(plan: &Plan<'_>, prompt_tokens: u64, max_output: Option<u64>) -> Decimal {
    plan.backends
        .iter()
        .filter_map(|b| {
            let pricing = b.pricing.as_ref()?;
            let output = max_output.unwrap_or_else(|| {
                b.context_window.map_or(DEFAULT_OUTPUT_ESTIMATE, |w| {
                    u64::from(w).saturating_sub(prompt_tokens).max(1)
                })
            });
            Some(estimate(pricing, prompt_tokens, output))
        })
        .max()
        .unwrap_or(Decimal::ZERO)
}

/// The budgets in scope, in config order.
pub fn budgets_for<'a>(
    snapshot: &'a Snapshot,
    route_id: &str,
    identity: &Identity,
) -> Vec<&'a BudgetConfig> {
    in_scope(&snapshot.config, route_id, identity).collect()
}

/// What budget admission decided for the pipeline.
pub enum Decision {
    /// Serve; settle these reservations.
    Serve(Vec<Reservation>),
    /// Serve from `route` instead: `downgrade` budget `budget` is full.
    Downgrade {
        /// The full budget.
        budget: String,
        /// The route to serve from.
        route: String,
    },
}

/// Reserves `estimate` on `budgets`. When the state layer fails, the fail mode decides:
/// served unmetered (open) or refused with 503 (closed), with a metric and a log line.
pub async fn admit(
    pays: &Pays,
    metrics: &Metrics,
    budgets: &[&BudgetConfig],
    estimate: Decimal,
) -> Result<Decision, GatewayError> {
    if budgets.is_empty() {
        return Ok(Decision::Serve(Vec::new()));
    }
    match pays.budgets.admit(budgets, estimate).await {
        Ok(Ok(admitted)) => {
            for over in &admitted.over {
                metrics.budget_decision(over, "over");
                tracing::warn!(budget = %over, "budget at or over its limit (alert or shadow mode: served)");
            }
            Ok(Decision::Serve(admitted.reservations))
        }
        Ok(Err(Refusal::Exceeded { budget })) => {
            metrics.budget_decision(&budget, "rejected");
            Err(GatewayError::BudgetExceeded { budget })
        }
        Ok(Err(Refusal::Downgrade { budget, route })) => {
            metrics.budget_decision(&budget, "downgraded");
            Ok(Decision::Downgrade { budget, route })
        }
        Err(e) => {
            for b in budgets {
                metrics.budget_decision(&b.id, "unavailable");
            }
            pays.limits.state_failed("budget", &e)?;
            Ok(Decision::Serve(Vec::new()))
        }
    }
}

impl Bill {
    /// Gives the reservations back (the request failed before any provider answered); the
    /// rate-limit ticket gives its tokens back when dropped here.
    pub fn release(self) {
        if self.reservations.is_empty() {
            return;
        }
        let pays = Arc::clone(&self.pays);
        tokio::spawn(async move { pays.budgets.release(&self.reservations).await });
    }

    /// The answer ended: prices its usage, counts the cost, writes the usage record and
    /// settles the reservations. Without usage (a stream cut short) the reservation stands
    /// as the spend: the provider may bill a partial answer. Returns the cost when known.
    #[allow(clippy::too_many_arguments)]
    pub fn settle(
        &mut self,
        metrics: &Metrics,
        backend: &Backend,
        route: &str,
        operation: &str,
        tokens: Option<TokenCounts>,
        status: &str,
        latency_ms: u64,
    ) -> Option<Decimal> {
        let usage = tokens.map(|t| TokenUsage {
            input: t.input,
            cached_input: t.cached_input,
            cache_write: t.cache_write,
            cache_write_1h: t.cache_write_1h,
            output: t.output,
            reasoning: t.reasoning,
        });
        let usd = usage
            .as_ref()
            .zip(backend.pricing.as_ref())
            .map(|(u, p)| cost(p, u));
        if let Some(usd) = usd {
            metrics.cost(
                &CostLabels {
                    route: route.to_owned(),
                    provider: backend.config.provider.clone(),
                    model: backend.config.model.clone(),
                    team: self.identity.team.as_deref().unwrap_or("").to_owned(),
                },
                usd.to_f64().unwrap_or(0.0),
            );
        }
        if self.pays.usage.enabled() {
            self.pays.usage.record(
                &UsageRecord {
                    record: "usage",
                    time: jiff::Timestamp::now().to_string(),
                    request_id: &self.request_id,
                    key_id: self.identity.key_id.as_deref(),
                    team: self.identity.team.as_deref(),
                    route,
                    provider: &backend.config.provider,
                    model: &backend.config.model,
                    operation,
                    tokens: usage,
                    cost_usd: usd,
                    latency_ms,
                    status,
                    cache: self.cache,
                    cost_saved_usd: None,
                    guardrails: self.guardrails.names(),
                },
                metrics,
            );
        }
        if let Some(ticket) = self.limits.take() {
            ticket.settle(tokens.map(|t| {
                t.input
                    .saturating_add(t.cached_input)
                    .saturating_add(t.cache_write)
                    .saturating_add(t.cache_write_1h)
                    .saturating_add(t.output)
                    .saturating_add(t.reasoning)
            }));
        }
        let reservations = std::mem::take(&mut self.reservations);
        if let (Some(usd), false) = (usd, reservations.is_empty()) {
            let pays = Arc::clone(&self.pays);
            tokio::spawn(async move { pays.budgets.settle(&reservations, usd).await });
        }
        usd
    }
}

/// The `x-tollgate-cost-usd` value: USD with the exact decimals.
pub fn cost_header(usd: Decimal) -> String {
    usd.normalize().to_string()
}
