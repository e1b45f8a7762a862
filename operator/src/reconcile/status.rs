//! The conditions an object should carry, computed from the latest compile outcome and the
//! gateway pods' reports. Pure: the controllers compare the result with what is stored and
//! write only differences.

use jiff::Timestamp;
use tollgate_crds::{
    compile::{Kind, ObjectRef, Problem},
    conditions::{Condition, ConditionStatus, ConditionType, set_condition},
};

use super::{
    gateways::{GatewayView, Programmed},
    outcome::{Outcome, WriteFailure},
};

/// Longest condition message written (the API allows 32 KiB).
const MAX_MESSAGE: usize = 8 * 1024;

/// Reason of `Programmed=False` when the object is not in the config.
pub const NOT_IN_CONFIG: &str = "NotInConfig";
/// Reason of `WithinBudget=Unknown` until spend is tracked.
pub const NOT_ENFORCED: &str = "NotEnforced";

/// The desired conditions of `object` at `generation`.
pub fn desired(
    object: &ObjectRef,
    generation: Option<i64>,
    outcome: &Outcome,
    view: &GatewayView,
    now: Timestamp,
) -> Vec<Condition> {
    let problems: Vec<&Problem> = outcome.compiled.problems_of(object).collect();
    let make = |t, status, reason: &str, message: String| {
        Condition::new(t, status, reason, clip(message), generation, now)
    };
    let from_problems = |t: ConditionType, ok_message: &str| {
        let mine: Vec<&&Problem> = problems
            .iter()
            .filter(|p| p.reason.condition() == t)
            .collect();
        match mine.first() {
            None => make(t, ConditionStatus::True, t.as_str(), ok_message.to_owned()),
            Some(first) => make(
                t,
                ConditionStatus::False,
                first.reason.as_str(),
                mine.iter()
                    .map(|p| {
                        if p.field.is_empty() {
                            p.message.clone()
                        } else {
                            format!("{}: {}", p.field, p.message)
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
        }
    };
    let accepted = from_problems(ConditionType::Accepted, "The spec is valid");
    let resolved = from_problems(ConditionType::ResolvedRefs, "Every reference resolves");
    let programmed = programmed(object, generation, outcome, view, &accepted, &resolved);
    let programmed = make(
        ConditionType::Programmed,
        programmed.0,
        programmed.1,
        programmed.2,
    );
    let ready = ready(&[&accepted, &resolved, &programmed], generation, now);
    let mut out = vec![accepted, resolved, programmed, ready];
    if object.kind == Kind::LLMBudget {
        out.push(make(
            ConditionType::WithinBudget,
            ConditionStatus::Unknown,
            NOT_ENFORCED,
            "Spend is not tracked yet, so the limit is not enforced".to_owned(),
        ));
    }
    out
}

fn programmed(
    object: &ObjectRef,
    generation: Option<i64>,
    outcome: &Outcome,
    view: &GatewayView,
    accepted: &Condition,
    resolved: &Condition,
) -> (ConditionStatus, &'static str, String) {
    if let Some(failure) = &outcome.failure {
        let reason = match failure {
            WriteFailure::TooLarge(_) => "ConfigTooLarge",
            WriteFailure::Apply(_) => "ApplyFailed",
        };
        return (ConditionStatus::False, reason, failure.message().to_owned());
    }
    let id = object.id();
    let kind = object.kind.as_str();
    let generation = generation.unwrap_or(0);
    let in_config = outcome
        .compiled
        .config
        .sources
        .iter()
        .any(|s| s.kind == kind && s.id == id && s.generation == generation);
    if !in_config {
        let why = if accepted.status == ConditionStatus::False {
            "its spec is not accepted (see Accepted)"
        } else if resolved.status == ConditionStatus::False {
            "nothing usable is left once unresolved references are removed (see ResolvedRefs)"
        } else {
            "it is not used by the compiled config"
        };
        return (
            ConditionStatus::False,
            NOT_IN_CONFIG,
            format!("Left out of the gateway config: {why}"),
        );
    }
    match view.programmed(kind, &id, generation) {
        Programmed::Yes { pods } => (
            ConditionStatus::True,
            "Programmed",
            format!("Served by all {pods} ready gateway pod(s)"),
        ),
        Programmed::NoPods => (
            ConditionStatus::False,
            "NoGatewayPods",
            "No ready gateway pod matches the gateway pod selector".to_owned(),
        ),
        Programmed::Rejected { pod, message } => (
            ConditionStatus::False,
            "Rejected",
            format!(
                "Gateway pod {pod} rejected the config and keeps serving its previous one: {message}"
            ),
        ),
        Programmed::Pending {
            have,
            total,
            example,
        } => (
            ConditionStatus::False,
            "Pending",
            format!("{have} of {total} ready gateway pod(s) serve this generation; {example}"),
        ),
    }
}

/// `Ready`: true when every other condition is; else the first one that is not.
fn ready(others: &[&Condition], generation: Option<i64>, now: Timestamp) -> Condition {
    match others.iter().find(|c| c.status != ConditionStatus::True) {
        None => Condition::new(
            ConditionType::Ready,
            ConditionStatus::True,
            "Ready",
            "Accepted, references resolved and served by the gateway",
            generation,
            now,
        ),
        Some(c) => Condition::new(
            ConditionType::Ready,
            ConditionStatus::False,
            c.reason.clone(),
            format!("{}: {}", c.type_, c.message),
            generation,
            now,
        ),
    }
}

fn clip(mut message: String) -> String {
    if message.len() > MAX_MESSAGE {
        let mut cut = MAX_MESSAGE;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push('…');
    }
    message
}

/// A condition whose status or reason changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    /// The condition after the change.
    pub condition: Condition,
}

impl Transition {
    /// Whether it deserves an Event: a failure (Warning) of Accepted, ResolvedRefs or
    /// Programmed — not `Pending`, which is normal progress — or `Ready` turning true
    /// (Normal). Ready's own failures repeat another condition's, so they get none.
    pub fn event(&self) -> Option<(bool, &str, &str)> {
        let c = &self.condition;
        let warning = c.status == ConditionStatus::False;
        let wanted = match c.type_.as_str() {
            "Ready" => c.status == ConditionStatus::True,
            "WithinBudget" => false,
            _ => warning && c.reason != "Pending",
        };
        wanted.then_some((warning, c.reason.as_str(), c.message.as_str()))
    }
}

/// Merges `desired` into `current`, keeping transition times of unchanged statuses.
/// Returns whether anything changed and which conditions changed status or reason.
pub fn merge(current: &mut Vec<Condition>, desired: Vec<Condition>) -> (bool, Vec<Transition>) {
    let mut changed = false;
    let mut transitions = Vec::new();
    for next in desired {
        let before = current
            .iter()
            .find(|c| c.type_ == next.type_)
            .map(|c| (c.status, c.reason.clone()));
        let moved = before.as_ref() != Some(&(next.status, next.reason.clone()));
        let condition = next.clone();
        if set_condition(current, next) {
            changed = true;
            if moved {
                transitions.push(Transition { condition });
            }
        }
    }
    (changed, transitions)
}
