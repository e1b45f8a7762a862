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
/// Reason of `WithinBudget=Unknown`: the condition is not computed yet (spend is in the
/// status fields, written by `spend.rs`).
pub const NOT_ENFORCED: &str = "NotComputed";

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
        Condition::new(
            t,
            status,
            reason,
            clip(&message, MAX_MESSAGE),
            generation,
            now,
        )
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
            "The gateway enforces this budget; see status.spent and status.remaining (this condition is not computed yet)".to_owned(),
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

/// `text` cut to at most `max` bytes (on a character boundary), marked with `…` when cut.
pub fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut cut = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &text[..cut])
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
        let threshold = c.reason == super::within_budget::THRESHOLD;
        let warning = c.status == ConditionStatus::False || threshold;
        let wanted = match c.type_.as_str() {
            "Ready" => c.status == ConditionStatus::True,
            "WithinBudget" => threshold || c.reason == super::within_budget::EXCEEDED,
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::{BTreeSet, HashMap};

    use tollgate_crds::{
        compile::{Compiled, Reason},
        config::{GatewayConfig, Source},
    };

    use super::*;
    use crate::reconcile::gateways::{PodReport, PodState};

    fn route() -> ObjectRef {
        ObjectRef {
            kind: Kind::LLMRoute,
            namespace: "ns".into(),
            name: "chat".into(),
        }
    }

    fn outcome(problems: Vec<Problem>, in_config: bool, failure: Option<WriteFailure>) -> Outcome {
        let mut config = GatewayConfig::empty();
        if in_config {
            config.sources.push(Source {
                kind: "LLMRoute".into(),
                id: "ns/chat".into(),
                generation: 3,
            });
        }
        Outcome {
            compiled: Compiled { config, problems },
            generations: HashMap::new(),
            hash: Some("h".into()),
            failure,
        }
    }

    fn serving(generation: i64) -> GatewayView {
        GatewayView {
            pods: vec![PodReport {
                pod: "gw".into(),
                state: PodState::Reported {
                    hash: Some("h".into()),
                    sources: BTreeSet::from([(
                        "LLMRoute".to_owned(),
                        "ns/chat".to_owned(),
                        generation,
                    )]),
                    last_error: None,
                    waiting_for: None,
                },
            }],
        }
    }

    fn get<'a>(conds: &'a [Condition], t: &str) -> (&'a ConditionStatus, &'a str, &'a str) {
        let c = conds.iter().find(|c| c.type_ == t).unwrap();
        (&c.status, c.reason.as_str(), c.message.as_str())
    }

    #[test]
    fn all_good_is_ready_with_the_generation_observed() {
        let conds = desired(
            &route(),
            Some(3),
            &outcome(vec![], true, None),
            &serving(3),
            Timestamp::UNIX_EPOCH,
        );
        assert_eq!(conds.len(), 4);
        assert!(
            conds
                .iter()
                .all(|c| c.status == ConditionStatus::True && c.observed_generation == Some(3))
        );
        assert_eq!(get(&conds, "Ready").1, "Ready");
    }

    #[test]
    fn problems_set_their_condition_and_ready_names_the_first_failure() {
        let problem = |reason, field: &str, message: &str| Problem {
            object: route(),
            field: field.into(),
            reason,
            message: message.into(),
        };
        let problems = vec![
            problem(
                Reason::ProviderNotFound,
                "spec.backends[0].providerRef.name",
                "LLMProvider \"a\" not found",
            ),
            problem(
                Reason::ModelNotFound,
                "spec.backends[1].model",
                "no model \"m\"",
            ),
        ];
        let conds = desired(
            &route(),
            Some(3),
            &outcome(problems, true, None),
            &serving(3),
            Timestamp::UNIX_EPOCH,
        );
        assert_eq!(get(&conds, "Accepted").0, &ConditionStatus::True);
        assert_eq!(
            get(&conds, "ResolvedRefs"),
            (
                &ConditionStatus::False,
                "ProviderNotFound",
                "spec.backends[0].providerRef.name: LLMProvider \"a\" not found; spec.backends[1].model: no model \"m\""
            )
        );
        assert_eq!(
            get(&conds, "Programmed").0,
            &ConditionStatus::True,
            "the rest still serves"
        );
        let ready = get(&conds, "Ready");
        assert_eq!(
            (ready.0, ready.1),
            (&ConditionStatus::False, "ProviderNotFound")
        );
        assert!(ready.2.starts_with("ResolvedRefs: "));
    }

    #[test]
    fn write_failures_and_absence_from_the_config_are_not_programmed() {
        let too_large = outcome(vec![], true, Some(WriteFailure::TooLarge("1.2 MB".into())));
        let conds = desired(
            &route(),
            Some(3),
            &too_large,
            &serving(3),
            Timestamp::UNIX_EPOCH,
        );
        assert_eq!(
            get(&conds, "Programmed"),
            (&ConditionStatus::False, "ConfigTooLarge", "1.2 MB")
        );
        assert_eq!(get(&conds, "Ready").1, "ConfigTooLarge");

        let failed = outcome(vec![], true, Some(WriteFailure::Apply("forbidden".into())));
        let conds = desired(
            &route(),
            Some(3),
            &failed,
            &serving(3),
            Timestamp::UNIX_EPOCH,
        );
        assert_eq!(get(&conds, "Programmed").1, "ApplyFailed");

        let absent = outcome(vec![], false, None);
        let conds = desired(
            &route(),
            Some(3),
            &absent,
            &serving(3),
            Timestamp::UNIX_EPOCH,
        );
        assert_eq!(get(&conds, "Programmed").1, NOT_IN_CONFIG);

        let conds = desired(
            &route(),
            Some(3),
            &outcome(vec![], true, None),
            &serving(2),
            Timestamp::UNIX_EPOCH,
        );
        assert_eq!(
            get(&conds, "Programmed").1,
            "Pending",
            "the pod serves an older generation"
        );
    }

    #[test]
    fn events_for_failures_and_for_becoming_ready_only() {
        let at = |secs| Timestamp::from_second(secs).unwrap();
        let mut current = Vec::new();
        let good = desired(
            &route(),
            Some(3),
            &outcome(vec![], true, None),
            &serving(3),
            at(10),
        );
        let (changed, transitions) = merge(&mut current, good.clone());
        assert!(changed);
        let events: Vec<_> = transitions.iter().filter_map(Transition::event).collect();
        assert_eq!(
            events,
            vec![(
                false,
                "Ready",
                "Accepted, references resolved and served by the gateway"
            )]
        );

        let (changed, transitions) = merge(
            &mut current,
            desired(
                &route(),
                Some(3),
                &outcome(vec![], true, None),
                &serving(3),
                at(20),
            ),
        );
        assert!(
            !changed && transitions.is_empty(),
            "the same conditions later are no change"
        );

        let pending = desired(
            &route(),
            Some(3),
            &outcome(vec![], true, None),
            &serving(2),
            at(30),
        );
        let (_, transitions) = merge(&mut current, pending);
        assert!(
            transitions
                .iter()
                .filter_map(Transition::event)
                .next()
                .is_none(),
            "Pending is progress, not a warning"
        );
        let ready = current.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(ready.last_transition_time.0, at(30));

        let failed = desired(
            &route(),
            Some(3),
            &outcome(vec![], true, Some(WriteFailure::Apply("boom".into()))),
            &serving(3),
            at(40),
        );
        let (_, transitions) = merge(&mut current, failed);
        let events: Vec<_> = transitions.iter().filter_map(Transition::event).collect();
        assert_eq!(events, vec![(true, "ApplyFailed", "boom")]);
    }
}
