//! `LLMBudget` → `BudgetConfig`: scope resolved to route ids, period and action checked.

use super::{Context, Inputs, Kind, Reason, object_ref, route::Routes, unsupported};
use crate::{
    LLMBudget,
    budget::{BudgetAction, BudgetPeriod},
    config::{ActionConfig, BudgetConfig, PeriodConfig},
};

pub(super) fn compile_all(
    cx: &mut Context,
    inputs: &Inputs<'_>,
    routes: &Routes,
) -> Vec<BudgetConfig> {
    let mut sorted: Vec<&LLMBudget> = inputs.budgets.iter().collect();
    sorted.sort_by_key(|b| object_ref(Kind::LLMBudget, *b));
    let mut out: Vec<BudgetConfig> = Vec::new();
    for budget in sorted {
        let object = object_ref(Kind::LLMBudget, budget);
        if out.iter().any(|b| b.id == object.id()) {
            continue;
        }
        let spec = &budget.spec;
        let mut usable = cx.admit(&object, budget, unsupported::budget(spec));

        let time_zone = spec
            .limit
            .time_zone
            .clone()
            .unwrap_or_else(|| "UTC".to_owned());
        if jiff::tz::TimeZone::get(&time_zone).is_err() {
            cx.problem(
                &object,
                "spec.limit.timeZone",
                Reason::Invalid,
                format!("unknown IANA time zone {time_zone:?}"),
            );
            usable = false;
        }
        let ns = &object.namespace;
        let route_id = |name: &str| format!("{ns}/{name}");
        let scope_routes: Vec<String> = match spec.scope.as_ref().filter(|s| !s.routes.is_empty()) {
            Some(scope) => scope
                .routes
                .iter()
                .enumerate()
                .filter_map(|(i, name)| {
                    let id = route_id(name);
                    if routes.contains_key(&id) {
                        return Some(id);
                    }
                    cx.problem(
                        &object,
                        format!("spec.scope.routes[{i}]"),
                        Reason::RouteNotFound,
                        format!(
                            "LLMRoute {name:?} not found (or not accepted) in namespace {ns:?}"
                        ),
                    );
                    None
                })
                .collect(),
            None => routes
                .keys()
                .filter(|id| id.starts_with(&format!("{ns}/")))
                .cloned()
                .collect(),
        };
        let action = match spec.action {
            BudgetAction::Reject => Some(ActionConfig::Reject),
            BudgetAction::Alert => Some(ActionConfig::Alert),
            BudgetAction::Downgrade => spec.downgrade_to.as_ref().and_then(|target| {
                let id = route_id(&target.name);
                if routes.contains_key(&id) {
                    return Some(ActionConfig::Downgrade { route: id });
                }
                cx.problem(
                    &object,
                    "spec.downgradeTo.name",
                    Reason::RouteNotFound,
                    format!(
                        "LLMRoute {:?} not found (or not accepted) in namespace {ns:?}",
                        target.name
                    ),
                );
                None
            }),
        };
        let period = match spec.limit.period {
            BudgetPeriod::Daily => Some(PeriodConfig::Daily { time_zone }),
            BudgetPeriod::Weekly => Some(PeriodConfig::Weekly { time_zone }),
            BudgetPeriod::Monthly => Some(PeriodConfig::Monthly { time_zone }),
            BudgetPeriod::Rolling => spec
                .limit
                .window
                .as_ref()
                .and_then(|w| w.to_std().ok())
                .map(|w| PeriodConfig::Rolling {
                    window_ms: u64::try_from(w.as_millis()).unwrap_or(u64::MAX),
                }),
        };
        let limit = spec.limit.amount.to_decimal().ok();
        let (Some(action), Some(period), Some(limit), true) = (action, period, limit, usable)
        else {
            continue;
        };
        cx.source(&object, budget.metadata.generation);
        out.push(BudgetConfig {
            id: object.id(),
            routes: scope_routes,
            teams: spec
                .scope
                .as_ref()
                .map(|s| s.teams.clone())
                .unwrap_or_default(),
            keys: spec
                .scope
                .as_ref()
                .map(|s| s.keys.iter().map(|k| format!("{ns}/{k}")).collect())
                .unwrap_or_default(),
            limit,
            period,
            action,
            alert_thresholds: spec.alert_thresholds.clone(),
            shadow_mode: spec.shadow_mode.unwrap_or(false),
        });
    }
    out
}
