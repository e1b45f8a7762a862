use std::time::Duration;

use pretty_assertions::assert_eq;
use tokio::time::Instant;

use super::*;
use crate::failure::FailureKind;

const SECOND: Duration = Duration::from_secs(1);

fn settings() -> HealthSettings {
    HealthSettings {
        failure_threshold: 3,
        base_cooldown: Duration::from_secs(5),
        max_cooldown: Duration::from_secs(30),
    }
}

/// Ejects a closed backend with `threshold` failures; returns the last call's result.
fn eject(health: &BackendHealth, now: Instant, s: &HealthSettings) -> Option<Ejection> {
    let mut last = None;
    for _ in 0..s.failure_threshold {
        last = health.record_failure(now, FailureKind::Server, s);
    }
    last
}

/// Moves an open backend to half-open, asserting this caller got the trial.
fn start_trial(health: &BackendHealth, now: Instant) {
    assert_eq!(health.admit(now), Admission::Trial);
}

#[test]
fn default_settings() {
    let s = HealthSettings::default();
    assert_eq!(s.failure_threshold, 5);
    assert_eq!(s.base_cooldown, Duration::from_secs(5));
    assert_eq!(s.max_cooldown, Duration::from_secs(300));
}

#[test]
fn cooldown_doubles_and_caps() {
    let s = settings();
    let secs: Vec<u64> = (0..6).map(|n| s.cooldown(n).as_secs()).collect();
    assert_eq!(secs, [5, 10, 20, 30, 30, 30]);
    // Overflowing exponents stay at the cap.
    assert_eq!(s.cooldown(40), s.max_cooldown);
    assert_eq!(s.cooldown(u32::MAX), s.max_cooldown);
}

#[test]
fn new_backend_is_closed() {
    let now = Instant::now();
    let health = BackendHealth::new("ns/openai#0/gpt-4o");
    assert_eq!(health.id(), "ns/openai#0/gpt-4o");
    assert_eq!(health.admit(now), Admission::Allowed);
    assert_eq!(health.cooldown_ends(now), None);
}

#[test]
fn ejects_at_threshold() {
    let s = settings();
    let now = Instant::now();
    let health = BackendHealth::new("b");
    assert_eq!(health.record_failure(now, FailureKind::Connect, &s), None);
    assert_eq!(health.record_failure(now, FailureKind::Timeout, &s), None);
    assert_eq!(health.admit(now), Admission::Allowed);
    assert_eq!(
        health.record_failure(now, FailureKind::Server, &s),
        Some(Ejection {
            cooldown: Duration::from_secs(5),
            ejections: 1
        })
    );
    let until = now + Duration::from_secs(5);
    assert_eq!(health.admit(now), Admission::Rejected { until });
    assert_eq!(
        health.admit(until - Duration::from_millis(1)),
        Admission::Rejected { until }
    );
    assert_eq!(health.cooldown_ends(now), Some(until));
}

#[test]
fn zero_threshold_ejects_on_first_failure() {
    let s = HealthSettings {
        failure_threshold: 0,
        ..settings()
    };
    let now = Instant::now();
    let health = BackendHealth::new("b");
    assert!(
        health
            .record_failure(now, FailureKind::Server, &s)
            .is_some()
    );
}

#[test]
fn every_backend_fault_kind_counts() {
    let s = HealthSettings {
        failure_threshold: 1,
        ..settings()
    };
    for kind in [
        FailureKind::Connect,
        FailureKind::Timeout,
        FailureKind::Server,
        FailureKind::Overloaded,
        FailureKind::Protocol,
        FailureKind::Authentication,
        FailureKind::PermissionDenied,
        FailureKind::NotFound,
    ] {
        let health = BackendHealth::new("b");
        assert!(is_backend_fault(kind), "{kind:?}");
        assert!(
            health.record_failure(Instant::now(), kind, &s).is_some(),
            "{kind:?}"
        );
    }
}

#[test]
fn client_faults_never_eject() {
    let s = HealthSettings {
        failure_threshold: 1,
        ..settings()
    };
    let now = Instant::now();
    let health = BackendHealth::new("b");
    for kind in [
        FailureKind::BadRequest,
        FailureKind::ContextWindowExceeded,
        FailureKind::ContentTooLarge,
        FailureKind::RateLimited,
    ] {
        assert!(!is_backend_fault(kind), "{kind:?}");
        for _ in 0..10 {
            assert_eq!(health.record_failure(now, kind, &s), None, "{kind:?}");
        }
    }
    assert_eq!(health.admit(now), Admission::Allowed);
    let view = health.view(now);
    assert_eq!(view.consecutive_failures, 0);
    assert_eq!(view.last_failure, None);
}

#[test]
fn success_resets_consecutive_failures() {
    let s = settings();
    let now = Instant::now();
    let health = BackendHealth::new("b");
    for _ in 0..10 {
        assert_eq!(health.record_failure(now, FailureKind::Server, &s), None);
        assert_eq!(health.record_failure(now, FailureKind::Server, &s), None);
        health.record_success(now);
    }
    assert_eq!(health.view(now).consecutive_failures, 0);
    assert_eq!(health.admit(now), Admission::Allowed);
}

#[test]
fn trial_success_closes_and_forgets_ejections() {
    let s = settings();
    let t0 = Instant::now();
    let health = BackendHealth::new("b");
    eject(&health, t0, &s);
    let t1 = t0 + Duration::from_secs(5);
    start_trial(&health, t1);
    assert_eq!(health.view(t1).state, CircuitState::HalfOpen);
    health.record_success(t1);
    assert_eq!(health.admit(t1), Admission::Allowed);
    assert_eq!(health.cooldown_ends(t1), None);
    let view = health.view(t1);
    assert_eq!(
        (view.state, view.consecutive_failures, view.ejections),
        (CircuitState::Closed, 0, 0)
    );
    // The doubling starts over.
    assert_eq!(
        eject(&health, t1, &s),
        Some(Ejection {
            cooldown: Duration::from_secs(5),
            ejections: 1
        })
    );
}

#[test]
fn trial_failure_reopens_for_longer_up_to_the_cap() {
    let s = settings();
    let mut now = Instant::now();
    let health = BackendHealth::new("b");
    let first = eject(&health, now, &s).map(|e| e.cooldown);
    assert_eq!(first, Some(Duration::from_secs(5)));
    let mut cooldowns = vec![];
    let mut cooldown = Duration::from_secs(5);
    for _ in 0..5 {
        now += cooldown;
        start_trial(&health, now);
        // A single failure of the trial ejects, whatever the threshold.
        let ejection = health.record_failure(now, FailureKind::Timeout, &s);
        let Some(ejection) = ejection else {
            panic!("a failed trial ejects");
        };
        cooldown = ejection.cooldown;
        cooldowns.push((cooldown.as_secs(), ejection.ejections));
        assert_eq!(
            health.admit(now),
            Admission::Rejected {
                until: now + cooldown
            }
        );
    }
    assert_eq!(cooldowns, [(10, 2), (20, 3), (30, 4), (30, 5), (30, 6)]);
}

#[test]
fn only_one_trial_at_a_time() {
    let s = settings();
    let t0 = Instant::now();
    let health = BackendHealth::new("b");
    eject(&health, t0, &s);
    let t1 = t0 + Duration::from_secs(6);
    start_trial(&health, t1);
    for later in [Duration::ZERO, SECOND, Duration::from_secs(59)] {
        let now = t1 + later;
        assert_eq!(
            health.admit(now),
            Admission::Rejected {
                until: now + TRIAL_RECHECK
            }
        );
        assert_eq!(health.cooldown_ends(now), Some(now + TRIAL_RECHECK));
    }
    // The trial failed: open again, and nobody gets a trial during the new cooldown.
    assert!(health.record_failure(t1, FailureKind::Server, &s).is_some());
    assert!(matches!(health.admit(t1), Admission::Rejected { .. }));
}

#[test]
fn lost_trial_is_handed_to_the_next_caller() {
    let s = settings();
    let t0 = Instant::now();
    let health = BackendHealth::new("b");
    eject(&health, t0, &s);
    let t1 = t0 + Duration::from_secs(5);
    start_trial(&health, t1);
    // Its caller never reported back.
    start_trial(&health, t1 + TRIAL_TIMEOUT);
    assert!(matches!(
        health.admit(t1 + TRIAL_TIMEOUT),
        Admission::Rejected { .. }
    ));
}

#[test]
fn client_fault_during_trial_releases_it() {
    let s = settings();
    let t0 = Instant::now();
    let health = BackendHealth::new("b");
    eject(&health, t0, &s);
    let t1 = t0 + Duration::from_secs(5);
    start_trial(&health, t1);
    assert_eq!(health.record_failure(t1, FailureKind::BadRequest, &s), None);
    start_trial(&health, t1);
    health.record_success(t1);
    assert_eq!(health.admit(t1), Admission::Allowed);
}

#[test]
fn stale_failures_after_an_ejection_do_not_eject_again() {
    let s = settings();
    let now = Instant::now();
    let health = BackendHealth::new("b");
    eject(&health, now, &s);
    // Requests admitted before the ejection keep failing.
    for _ in 0..20 {
        assert_eq!(
            health.record_failure(now + SECOND, FailureKind::Server, &s),
            None
        );
    }
    let view = health.view(now);
    assert_eq!((view.ejections, view.consecutive_failures), (1, 23));
    assert_eq!(
        health.cooldown_ends(now),
        Some(now + Duration::from_secs(5))
    );
}

#[test]
fn stale_success_while_open_keeps_the_cooldown() {
    let s = settings();
    let now = Instant::now();
    let health = BackendHealth::new("b");
    eject(&health, now, &s);
    health.record_success(now + SECOND);
    assert_eq!(
        health.admit(now + SECOND),
        Admission::Rejected {
            until: now + Duration::from_secs(5)
        }
    );
}

#[test]
fn cool_down_honours_retry_after_without_counting() {
    let s = settings();
    let now = Instant::now();
    let health = BackendHealth::new("b");
    health.cool_down(now, Some(Duration::from_secs(42)), &s);
    let until = now + Duration::from_secs(42);
    assert_eq!(health.admit(now), Admission::Rejected { until });
    assert_eq!(health.cooldown_ends(now), Some(until));
    let view = health.view(now);
    assert_eq!(
        (view.state, view.consecutive_failures, view.ejections),
        (CircuitState::Open, 0, 0)
    );
    assert_eq!(view.cooldown_remaining_ms, 42_000);
    // After it, a trial; its success closes.
    start_trial(&health, until);
    health.record_success(until);
    assert_eq!(health.admit(until), Admission::Allowed);
}

#[test]
fn cool_down_without_retry_after_uses_the_base_cooldown() {
    let s = settings();
    let now = Instant::now();
    let health = BackendHealth::new("b");
    health.cool_down(now, None, &s);
    assert_eq!(health.cooldown_ends(now), Some(now + s.base_cooldown));
}

#[test]
fn cool_down_never_shortens_a_cooldown() {
    let s = settings();
    let now = Instant::now();
    let health = BackendHealth::new("b");
    health.cool_down(now, Some(Duration::from_secs(60)), &s);
    health.cool_down(now + SECOND, Some(Duration::from_secs(2)), &s);
    assert_eq!(
        health.cooldown_ends(now),
        Some(now + Duration::from_secs(60))
    );
    // A longer one extends it.
    health.cool_down(now + SECOND, Some(Duration::from_secs(90)), &s);
    assert_eq!(
        health.cooldown_ends(now),
        Some(now + Duration::from_secs(91))
    );

    // Nor does it shorten an ejection's cooldown.
    let ejected = BackendHealth::new("e");
    eject(&ejected, now, &s);
    ejected.cool_down(now, Some(SECOND), &s);
    assert_eq!(
        ejected.cooldown_ends(now),
        Some(now + Duration::from_secs(5))
    );
    // And stale failures after it still do not eject again.
    assert_eq!(ejected.record_failure(now, FailureKind::Server, &s), None);
}

#[test]
fn ejection_never_shortens_a_cool_down() {
    let s = settings();
    let now = Instant::now();
    let health = BackendHealth::new("b");
    health.cool_down(now, Some(Duration::from_secs(120)), &s);
    // Requests in flight when the 429 arrived fail with backend faults: they count and eject,
    // but the 5s ejection keeps the 120s cooldown.
    assert_eq!(
        eject(&health, now + SECOND, &s),
        Some(Ejection {
            cooldown: Duration::from_secs(5),
            ejections: 1
        })
    );
    assert_eq!(
        health.cooldown_ends(now),
        Some(now + Duration::from_secs(120))
    );
    // Now ejected: further stale failures are ignored.
    assert_eq!(
        health.record_failure(now + SECOND, FailureKind::Server, &s),
        None
    );
    assert_eq!(health.view(now).ejections, 1);
}

#[test]
fn ejection_extends_a_shorter_cool_down() {
    let s = settings();
    let now = Instant::now();
    let health = BackendHealth::new("b");
    health.cool_down(now, Some(SECOND), &s);
    eject(&health, now, &s);
    assert_eq!(
        health.cooldown_ends(now),
        Some(now + Duration::from_secs(5))
    );
}

#[test]
fn rate_limit_during_trial_reopens_without_doubling() {
    let s = settings();
    let t0 = Instant::now();
    let health = BackendHealth::new("b");
    eject(&health, t0, &s);
    let t1 = t0 + Duration::from_secs(5);
    start_trial(&health, t1);
    health.cool_down(t1, Some(Duration::from_secs(3)), &s);
    assert_eq!(health.cooldown_ends(t1), Some(t1 + Duration::from_secs(3)));
    assert_eq!(health.view(t1).ejections, 1);
    let t2 = t1 + Duration::from_secs(3);
    start_trial(&health, t2);
    // Its failure ejects for the second time: 10s.
    assert_eq!(
        health
            .record_failure(t2, FailureKind::Server, &s)
            .map(|e| e.cooldown),
        Some(Duration::from_secs(10))
    );
}

#[test]
fn view_reports_state() {
    let s = settings();
    let now = Instant::now();
    let health = BackendHealth::new("ns/p#1/m");
    assert_eq!(
        health.view(now),
        HealthView {
            id: "ns/p#1/m".into(),
            state: CircuitState::Closed,
            consecutive_failures: 0,
            ejections: 0,
            cooldown_remaining_ms: 0,
            last_failure: None,
        }
    );
    health.record_failure(now, FailureKind::Connect, &s);
    health.record_failure(now, FailureKind::Connect, &s);
    health.record_failure(now, FailureKind::Overloaded, &s);
    let view = health.view(now + Duration::from_millis(1500));
    assert_eq!(
        serde_json::to_value(&view).unwrap(),
        serde_json::json!({
            "id": "ns/p#1/m",
            "state": "open",
            "consecutiveFailures": 3,
            "ejections": 1,
            "cooldownRemainingMs": 3500,
            "lastFailure": "overloaded",
        })
    );
    // Past the cooldown, nothing remains (until someone asks for a trial).
    assert_eq!(
        health
            .view(now + Duration::from_secs(9))
            .cooldown_remaining_ms,
        0
    );
    start_trial(&health, now + Duration::from_secs(9));
    assert_eq!(
        serde_json::to_value(health.view(now)).unwrap()["state"],
        "half_open"
    );
}
