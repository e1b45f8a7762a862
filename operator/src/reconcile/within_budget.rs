//! `WithinBudget` of an `LLMBudget`, from the spend that `spend.rs` copied into its status:
//! `True`/`WithinBudget` below every alert threshold, `True`/`ThresholdReached` past one
//! (a Warning Event each time a higher one is crossed), `False`/`BudgetExceeded` at the
//! limit (a Warning Event), `Unknown`/`SpendUnknown` before any gateway reported spend.

use jiff::Timestamp;
use rust_decimal::Decimal;
use tollgate_crds::{
    LLMBudget,
    budget::BudgetAction,
    conditions::{Condition, ConditionStatus, ConditionType},
};

/// Reason: spend is below every alert threshold.
pub const WITHIN: &str = "WithinBudget";
/// Reason: spend passed an alert threshold (the message names the highest).
pub const THRESHOLD: &str = "ThresholdReached";
/// Reason: spend reached the limit.
pub const EXCEEDED: &str = "BudgetExceeded";
/// Reason: no gateway has reported spend yet.
pub const UNKNOWN: &str = "SpendUnknown";

/// The condition for `budget` as its status stands.
pub fn condition(budget: &LLMBudget, generation: Option<i64>, now: Timestamp) -> Condition {
    let make = |status, reason: &str, message: String| {
        Condition::new(
            ConditionType::WithinBudget,
            status,
            reason,
            message,
            generation,
            now,
        )
    };
    let spec = &budget.spec;
    let limit = spec.limit.amount.to_decimal().unwrap_or(Decimal::ZERO);
    let Some(spent) = budget
        .status
        .as_ref()
        .and_then(|s| s.spent.as_ref())
        .and_then(|m| m.to_decimal().ok())
    else {
        return make(
            ConditionStatus::Unknown,
            UNKNOWN,
            "No gateway has reported spend for this budget yet".to_owned(),
        );
    };
    let percent = if limit.is_zero() {
        Decimal::ONE_HUNDRED
    } else {
        (spent * Decimal::ONE_HUNDRED / limit).round_dp(1)
    };
    if spent >= limit {
        let what = match (spec.shadow_mode.unwrap_or(false), spec.action) {
            (true, _) => "shadow mode: requests are still served (the action is only reported)",
            (false, BudgetAction::Reject) => {
                "requests in scope are refused with 429 budget_exceeded"
            }
            (false, BudgetAction::Downgrade) => {
                "requests in scope are served by the downgradeTo route"
            }
            (false, BudgetAction::Alert) => "action alert: requests are still served",
        };
        return make(
            ConditionStatus::False,
            EXCEEDED,
            format!("Spent {spent} of {limit} USD ({percent}%); {what}"),
        );
    }
    let crossed = spec
        .alert_thresholds
        .iter()
        .rev()
        .find(|t| percent >= Decimal::from(**t));
    match crossed {
        Some(t) => make(
            ConditionStatus::True,
            THRESHOLD,
            format!("Spent {spent} of {limit} USD ({percent}%), past the {t}% alert threshold"),
        ),
        None => make(
            ConditionStatus::True,
            WITHIN,
            format!("Spent {spent} of {limit} USD ({percent}%)"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_crds::LLMBudgetStatus;

    fn budget(spent: Option<&str>, thresholds: Vec<u32>, shadow: bool) -> LLMBudget {
        let mut b = LLMBudget::new(
            "cap",
            serde_json::from_value(serde_json::json!({
                "limit": {"amount": "100", "period": "monthly"},
                "action": "reject",
                "alertThresholds": thresholds,
                "shadowMode": shadow,
            }))
            .unwrap(),
        );
        b.status = Some(LLMBudgetStatus {
            spent: spent.map(Into::into),
            ..LLMBudgetStatus::default()
        });
        b
    }

    fn reason(b: &LLMBudget) -> (ConditionStatus, String, String) {
        let c = condition(b, Some(1), Timestamp::UNIX_EPOCH);
        (c.status, c.reason, c.message)
    }

    #[test]
    fn reasons_follow_spend_thresholds_and_the_limit() {
        assert_eq!(reason(&budget(None, vec![], false)).1, UNKNOWN);
        assert_eq!(reason(&budget(Some("10"), vec![50, 80], false)).1, WITHIN);
        let (status, r, message) = reason(&budget(Some("85.5"), vec![50, 80], false));
        assert_eq!((status, r.as_str()), (ConditionStatus::True, THRESHOLD));
        assert!(
            message.contains("85.5%") && message.contains("80% alert"),
            "{message}"
        );
        let (status, r, message) = reason(&budget(Some("100"), vec![50, 80], false));
        assert_eq!((status, r.as_str()), (ConditionStatus::False, EXCEEDED));
        assert!(message.contains("429"), "{message}");
        let (_, _, message) = reason(&budget(Some("120"), vec![], true));
        assert!(message.contains("shadow mode"), "{message}");
    }
}
