//! API fields whose feature is not built yet. Setting one makes the object `Accepted=False`
//! with reason `Unsupported`, instead of being silently ignored. Remove an entry in the
//! change that builds its feature.

use crate::{budget::LLMBudgetSpec, provider::LLMProviderSpec, route::LLMRouteSpec};

/// Not-yet-built provider fields: none.
pub(super) fn provider(_spec: &LLMProviderSpec) -> Vec<(&'static str, String)> {
    Vec::new()
}

/// Not-yet-built route fields: none.
pub(super) fn route(_spec: &LLMRouteSpec) -> Vec<(&'static str, String)> {
    Vec::new()
}

/// Not-yet-built budget fields: none.
pub(super) fn budget(_spec: &LLMBudgetSpec) -> Vec<(&'static str, String)> {
    Vec::new()
}
