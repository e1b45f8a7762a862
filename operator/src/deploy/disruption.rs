//! The PodDisruptionBudget: node drains take at most `maxUnavailable` gateway pods at once.

use k8s_openapi::{
    api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec},
    apimachinery::pkg::{apis::meta::v1::LabelSelector, util::intstr::IntOrString},
};

use super::{Target, settings::GatewayDeployment};

/// The budget, or `None` when disabled.
pub fn disruption_budget(s: &GatewayDeployment, target: &Target) -> Option<PodDisruptionBudget> {
    s.disruption_budget.enabled.then(|| PodDisruptionBudget {
        metadata: target.metadata(s, &s.name),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(s.disruption_budget.max_unavailable)),
            selector: Some(LabelSelector {
                match_labels: Some(target.selector.clone()),
                ..LabelSelector::default()
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        status: None,
    })
}
