//! `LLMBudget`: a spend limit per period for a scope, and what happens when it is hit.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    common::{Duration, LocalRef, Money},
    conditions::{Condition, conditions_schema},
};

/// A spend limit for the routes (and optionally teams or client keys) of one namespace.
// The derive repeats `type_ = "string"` across printer columns, which clippy mistakes
// for duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "llm.tollgate.dev",
    version = "v1alpha1",
    kind = "LLMBudget",
    plural = "llmbudgets",
    singular = "llmbudget",
    namespaced,
    status = "LLMBudgetStatus",
    derive = "PartialEq",
    shortname = "llmb",
    category = "tollgate",
    doc = "A spend limit per period for a scope of routes and teams, and the action taken when it is reached.",
    printcolumn(name = "Limit", type_ = "string", json_path = ".spec.limit.amount"),
    printcolumn(name = "Spent", type_ = "string", json_path = ".status.spent"),
    printcolumn(name = "Remaining", type_ = "string", json_path = ".status.remaining"),
    printcolumn(name = "Period", type_ = "string", json_path = ".spec.limit.period"),
    printcolumn(name = "Period End", type_ = "string", json_path = ".status.periodEnd"),
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = ".status.conditions[?(@.type=='WithinBudget')].reason"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("(self.action == 'downgrade') == has(self.downgradeTo)")
        .message("downgradeTo is required for, and only allowed with, action downgrade")
        .field_path(".downgradeTo")
        .reason(kube::core::Reason::FieldValueInvalid),
    validation = Rule::new("!has(self.downgradeTo) || !has(self.scope) || !has(self.scope.routes) || !(self.downgradeTo.name in self.scope.routes)")
        .message("downgradeTo must name a route outside the budget's scope")
        .field_path(".downgradeTo.name")
        .reason(kube::core::Reason::FieldValueInvalid)
)]
pub struct LLMBudgetSpec {
    /// What the budget counts. Absent: every route in this namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<BudgetScope>,
    /// The spend limit and its period.
    pub limit: BudgetLimit,
    /// What happens once spend reaches the limit.
    pub action: BudgetAction,
    /// The cheaper `LLMRoute` (in this namespace) that requests are sent to instead, with
    /// action `downgrade`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub downgrade_to: Option<LocalRef>,
    /// Percentages of the limit at which a Warning Event and a metric are raised,
    /// strictly ascending.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10), inner(range(min = 1, max = 100)))]
    #[x_kube(validation = Rule::new("self.isSorted() && self.all(x, self.exists_one(y, y == x))")
        .message("alertThresholds must be strictly ascending"))]
    pub alert_thresholds: Vec<u32>,
    /// Count and report, never enforce: `action` is only reported, as "would have".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow_mode: Option<bool>,
}

/// What a budget counts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.routes) || has(self.teams) || has(self.keys)")
    .message("scope needs routes, teams or keys; omit scope to cover the whole namespace"))]
pub struct BudgetScope {
    /// `LLMRoute` names in this namespace. Absent: every route in the namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 253)))]
    pub routes: Vec<String>,
    /// Only requests whose client key belongs to one of these teams (the key Secret's
    /// `tollgate.dev/team` annotation). Absent: all requests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 128)))]
    pub teams: Vec<String>,
    /// Only requests made with one of these client keys (names of client-key Secrets in this
    /// namespace). Absent: all requests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 253)))]
    pub keys: Vec<String>,
}

/// A limit per period.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("(self.period == 'rolling') == has(self.window)")
        .message("window is required for, and only allowed with, period rolling")
        .field_path(".window")
        .reason(kube::core::Reason::FieldValueInvalid),
    validation = Rule::new("self.period != 'rolling' || !has(self.timeZone)")
        .message("timeZone only applies to calendar periods (daily, weekly, monthly)")
        .field_path(".timeZone")
        .reason(kube::core::Reason::FieldValueForbidden)
)]
pub struct BudgetLimit {
    /// The amount, as a decimal string (`"250.00"`).
    pub amount: Money,
    /// The currency of `amount` and of all prices. Only `USD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<Currency>,
    /// A calendar period (`daily`, `weekly` from Monday, `monthly`) or a `rolling` window.
    pub period: BudgetPeriod,
    /// IANA time zone in which calendar periods start, e.g. `Europe/Berlin`. Default `UTC`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 64),
        regex(pattern = r"^[A-Za-z][A-Za-z0-9_+/-]*$")
    )]
    pub time_zone: Option<String>,
    /// Length of the rolling window, e.g. `24h`; only with period `rolling`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Duration>,
}

/// The only currency so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Currency {
    /// US dollars.
    USD,
}

/// How a budget's period is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BudgetPeriod {
    /// A calendar day.
    Daily,
    /// A calendar week, Monday to Sunday.
    Weekly,
    /// A calendar month.
    Monthly,
    /// The trailing `window`.
    Rolling,
}

/// What happens when spend reaches the limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BudgetAction {
    /// Refuse requests in scope with HTTP 429 and an OpenAI-style `budget_exceeded` error.
    Reject,
    /// Serve requests in scope from the `downgradeTo` route.
    Downgrade,
    /// Keep serving; raise a Warning Event and set `WithinBudget=False`.
    Alert,
}

/// Observed state of an `LLMBudget`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LLMBudgetStatus {
    /// The `.metadata.generation` the operator last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Accepted`, `ResolvedRefs`, `Programmed`, `Ready`, `WithinBudget`.
    #[serde(default)]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// Spend in the current period, in USD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spent: Option<Money>,
    /// `limit.amount` minus `spent`, never below zero.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining: Option<Money>,
    /// Start of the current period (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::conditions::time_schema")]
    pub period_start: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
    /// End of the current period (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::conditions::time_schema")]
    pub period_end: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
}
