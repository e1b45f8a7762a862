//! What fired on a request: counted once per request and rule in
//! `tollgate_guardrail_findings{route, rule, action, stage}` and logged by name, never with
//! content.

use tollgate_crds::config::GuardrailAction;

use super::{Fired, RouteGuardrails, Stage};
use crate::metrics::{GuardrailLabels, Metrics};

/// Counts the rules in `bits` not yet counted on this request, and logs them (names only).
pub fn fired(
    metrics: &Metrics,
    route: &str,
    guard: &RouteGuardrails,
    fired: &Fired,
    bits: u64,
    stage: Stage,
) {
    let new = fired.add(bits);
    if new == 0 {
        return;
    }
    let mut names = Vec::new();
    for (id, name) in guard.names.iter().enumerate().filter(|(i, _)| *i < 64) {
        if new & (1 << id) == 0 {
            continue;
        }
        names.push(&**name);
        metrics.guardrail_finding(&GuardrailLabels {
            route: route.to_owned(),
            rule: name.to_string(),
            action: action_label(guard.action_of(id, stage)),
            stage: stage.as_str(),
        });
    }
    tracing::info!(route, stage = stage.as_str(), rules = %names.join(","), "guardrail rules fired");
}

/// The metric label of an action.
pub fn action_label(a: GuardrailAction) -> &'static str {
    match a {
        GuardrailAction::Block => "block",
        GuardrailAction::Redact => "redact",
        GuardrailAction::Flag => "flag",
    }
}
