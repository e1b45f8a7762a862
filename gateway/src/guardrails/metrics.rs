//! `tollgate_guardrail_findings`: requests on which a rule fired, by route, rule, action and
//! stage (prompt or response). Counted once per request and rule, never with content.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family},
    registry::Registry,
};
use tollgate_crds::config::GuardrailAction;

use super::{Fired, RouteGuardrails, Stage};

/// Labels of one finding count.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FindingLabels {
    /// Route id.
    pub route: String,
    /// Rule name (`pii.email`, `blockedPatterns[0]`…).
    pub rule: String,
    /// `block`, `redact` or `flag`.
    pub action: &'static str,
    /// `prompt` or `response`.
    pub stage: &'static str,
}

/// The guardrail metric families.
#[derive(Debug, Default)]
pub struct GuardrailMetrics {
    findings: Family<FindingLabels, Counter>,
}

impl GuardrailMetrics {
    /// Registers the families in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        registry.register(
            "tollgate_guardrail_findings",
            "Requests on which a guardrail rule fired, by route, rule, action (block, redact, flag) and stage (prompt, response)",
            m.findings.clone(),
        );
        m
    }

    /// Counts the rules in `bits` not yet counted on this request, and logs them (names only).
    pub fn fired(
        &self,
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
            self.findings
                .get_or_create(&FindingLabels {
                    route: route.to_owned(),
                    rule: name.to_string(),
                    action: action_label(guard.action_of(id, stage)),
                    stage: stage.as_str(),
                })
                .inc();
        }
        tracing::info!(route, stage = stage.as_str(), rules = %names.join(","), "guardrail rules fired");
    }

    /// The count for one label set (tests).
    pub fn count(&self, route: &str, rule: &str, action: &'static str, stage: Stage) -> u64 {
        self.findings
            .get_or_create(&FindingLabels {
                route: route.to_owned(),
                rule: rule.to_owned(),
                action,
                stage: stage.as_str(),
            })
            .get()
    }
}

/// The metric label of an action.
pub fn action_label(a: GuardrailAction) -> &'static str {
    match a {
        GuardrailAction::Block => "block",
        GuardrailAction::Redact => "redact",
        GuardrailAction::Flag => "flag",
    }
}
