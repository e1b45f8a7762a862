//! API fields whose feature is not built yet. Setting one makes the object `Accepted=False`
//! with reason `Unsupported`, instead of being silently ignored. Remove an entry in the
//! change that builds its feature.

use crate::{budget::LLMBudgetSpec, provider::LLMProviderSpec, route::LLMRouteSpec};

/// Not-yet-built provider fields: none.
pub(super) fn provider(_spec: &LLMProviderSpec) -> Vec<(&'static str, String)> {
    Vec::new()
}

/// Not-yet-built route fields.
pub(super) fn route(spec: &LLMRouteSpec) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if spec.rate_limit.is_some() {
        out.push((
            "spec.rateLimit",
            "route rate limiting is not built yet; remove spec.rateLimit".to_owned(),
        ));
    }
    if spec.guardrails.is_some() {
        out.push((
            "spec.guardrails",
            "guardrails are not built yet; remove spec.guardrails".to_owned(),
        ));
    }
    out
}

/// Not-yet-built budget fields: none.
pub(super) fn budget(_spec: &LLMBudgetSpec) -> Vec<(&'static str, String)> {
    Vec::new()
}
