//! Status conditions, following the Kubernetes API conventions.
//!
//! Every kind carries a list-map of conditions keyed by `type`, all of positive polarity
//! (`True` is good). They start `Unknown` with reason `Pending` until the operator has looked.

use std::borrow::Cow;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// The condition types Tollgate sets. All have positive polarity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ConditionType {
    /// The spec is valid, supported and does not conflict with another object.
    Accepted,
    /// Every reference (providers, models, Secrets and their keys, routes) resolves.
    ResolvedRefs,
    /// Every ready gateway pod serves a config that contains this generation.
    Programmed,
    /// Summary: all of the above are true.
    Ready,
    /// Budgets only: spend in the current period is below the limit.
    WithinBudget,
}

impl ConditionType {
    /// The condition types every kind carries, in display order.
    pub const COMMON: [ConditionType; 4] = [
        ConditionType::Accepted,
        ConditionType::ResolvedRefs,
        ConditionType::Programmed,
        ConditionType::Ready,
    ];

    /// The wire name (`"Accepted"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionType::Accepted => "Accepted",
            ConditionType::ResolvedRefs => "ResolvedRefs",
            ConditionType::Programmed => "Programmed",
            ConditionType::Ready => "Ready",
            ConditionType::WithinBudget => "WithinBudget",
        }
    }
}

/// `True`, `False` or `Unknown`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// The condition does not hold; `reason` and `message` say why.
    False,
    /// Not determined yet.
    Unknown,
}

/// The reason every condition starts with, before the operator has looked at the object.
pub const REASON_PENDING: &str = "Pending";

/// One observation about an object, as in `metav1.Condition`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// The condition's type, e.g. `Ready`.
    #[serde(rename = "type")]
    #[schemars(
        length(min = 1, max = 316),
        regex(pattern = r"^[A-Za-z]([A-Za-z0-9_.-]*[A-Za-z0-9])?$")
    )]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: ConditionStatus,
    /// A CamelCase, machine-readable reason for the last transition.
    #[schemars(
        length(min = 1, max = 1024),
        regex(pattern = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
    )]
    pub reason: String,
    /// A human-readable explanation.
    #[schemars(length(max = 32768))]
    pub message: String,
    /// The `.metadata.generation` this condition was set for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub observed_generation: Option<i64>,
    /// When `status` last changed.
    #[schemars(schema_with = "time_schema")]
    pub last_transition_time: Time,
}

pub(crate) fn time_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "format": "date-time" })
}

/// The schema of a condition list: a list-map keyed by `type`, at most 8 entries.
pub(crate) fn conditions_schema(generator: &mut SchemaGenerator) -> Schema {
    let item = generator.subschema_for::<Condition>();
    json_schema!({
        "type": "array",
        "items": item,
        "maxItems": 8,
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
    })
}

/// The schema name of a condition list, for docs.
pub fn conditions_schema_name() -> Cow<'static, str> {
    "Conditions".into()
}

impl Condition {
    /// A condition of `type_` with `status`, set for `generation` at `now`.
    pub fn new(
        type_: ConditionType,
        status: ConditionStatus,
        reason: impl Into<String>,
        message: impl Into<String>,
        generation: Option<i64>,
        now: Timestamp,
    ) -> Self {
        Self {
            type_: type_.as_str().to_owned(),
            status,
            reason: reason.into(),
            message: message.into(),
            observed_generation: generation,
            last_transition_time: Time(now),
        }
    }
}

/// The conditions a fresh object starts with: each of `types` `Unknown`, reason `Pending`.
pub fn pending(types: &[ConditionType], generation: Option<i64>, now: Timestamp) -> Vec<Condition> {
    types
        .iter()
        .map(|t| {
            Condition::new(
                *t,
                ConditionStatus::Unknown,
                REASON_PENDING,
                "Waiting for the operator to reconcile this object",
                generation,
                now,
            )
        })
        .collect()
}

/// Sets `next` in `conditions`, keeping the old `lastTransitionTime` when the status did
/// not change (the convention). Returns whether anything observable changed, so callers
/// write status only when it did.
pub fn set_condition(conditions: &mut Vec<Condition>, mut next: Condition) -> bool {
    match conditions.iter_mut().find(|c| c.type_ == next.type_) {
        Some(current) => {
            if current.status == next.status {
                next.last_transition_time = current.last_transition_time.clone();
            }
            if *current == next {
                return false;
            }
            *current = next;
            true
        }
        None => {
            conditions.push(next);
            true
        }
    }
}

/// The condition of `type_`, if present.
pub fn find(conditions: &[Condition], type_: ConditionType) -> Option<&Condition> {
    conditions.iter().find(|c| c.type_ == type_.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap()
    }

    #[test]
    fn fresh_objects_start_unknown_pending() {
        let conds = pending(&ConditionType::COMMON, Some(3), ts(10));
        assert_eq!(conds.len(), 4);
        assert!(conds.iter().all(|c| c.status == ConditionStatus::Unknown
            && c.reason == REASON_PENDING
            && c.observed_generation == Some(3)));
        assert_eq!(find(&conds, ConditionType::Ready).unwrap().type_, "Ready");
    }

    #[test]
    fn same_status_keeps_transition_time() {
        let mut conds = vec![Condition::new(
            ConditionType::Ready,
            ConditionStatus::True,
            "Ready",
            "ok",
            Some(1),
            ts(10),
        )];
        let changed = set_condition(
            &mut conds,
            Condition::new(
                ConditionType::Ready,
                ConditionStatus::True,
                "Ready",
                "ok",
                Some(1),
                ts(99),
            ),
        );
        assert!(
            !changed,
            "an identical condition at a later time is no change"
        );
        assert_eq!(conds[0].last_transition_time, Time(ts(10)));

        let changed = set_condition(
            &mut conds,
            Condition::new(
                ConditionType::Ready,
                ConditionStatus::True,
                "Ready",
                "ok",
                Some(2),
                ts(99),
            ),
        );
        assert!(changed, "a new generation is a change");
        assert_eq!(
            conds[0].last_transition_time,
            Time(ts(10)),
            "status unchanged: time kept"
        );
    }

    #[test]
    fn status_flip_moves_transition_time() {
        let mut conds = pending(&[ConditionType::Accepted], Some(1), ts(10));
        assert!(set_condition(
            &mut conds,
            Condition::new(
                ConditionType::Accepted,
                ConditionStatus::False,
                "Invalid",
                "bad",
                Some(1),
                ts(20)
            ),
        ));
        assert_eq!(conds.len(), 1);
        assert_eq!(conds[0].last_transition_time, Time(ts(20)));
        assert_eq!(conds[0].status, ConditionStatus::False);
    }
}
