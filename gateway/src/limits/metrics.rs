//! Rate-limit and shared-state metrics, registered with the gateway's registry.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family},
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitedLabels {
    route: String,
    /// `route`, `team` or `key`.
    scope: &'static str,
    /// `requests` or `tokens`.
    limit: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateFailureLabels {
    /// `rate_limit`, `budget` or `provider_quota`.
    check: &'static str,
    /// `fail_open`, `fail_closed` or `local`.
    mode: &'static str,
}

/// Requests refused by rate limits, and checks the shared state could not answer.
#[derive(Debug, Default)]
pub struct LimitMetrics {
    limited: Family<LimitedLabels, Counter>,
    state_failures: Family<StateFailureLabels, Counter>,
}

impl LimitMetrics {
    /// Registers both counters.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        registry.register(
            "tollgate_rate_limited",
            "Requests refused with 429 by a route rate limit, by route, scope (route, team, key) and limit (requests, tokens)",
            m.limited.clone(),
        );
        registry.register(
            "tollgate_state_failures",
            "Checks (rate_limit, budget, provider_quota) the shared state could not answer, by what the request got (fail_open, fail_closed, local: the in-process quota alone)",
            m.state_failures.clone(),
        );
        m
    }

    /// Counts one 429.
    pub fn limited(&self, route: &str, scope: &'static str, limit: &'static str) {
        self.limited
            .get_or_create(&LimitedLabels {
                route: route.to_owned(),
                scope,
                limit,
            })
            .inc();
    }

    /// Counts one check the state could not answer.
    pub fn state_failure(&self, check: &'static str, mode: &'static str) {
        self.state_failures
            .get_or_create(&StateFailureLabels { check, mode })
            .inc();
    }
}
