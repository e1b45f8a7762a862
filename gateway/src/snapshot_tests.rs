use std::collections::BTreeMap;

use serde_json::json;
use tokio::time::Instant;
use tollgate_crds::config::GatewayConfig;

use super::*;
use crate::{
    failure::FailureKind,
    resilience::health::{CircuitState, HealthSettings},
};

fn config(route_providers: &[&str], fallback: &str, limits: serde_json::Value) -> GatewayConfig {
    let t = json!({"connectMs": 1, "firstTokenMs": 1, "idleMs": 1, "totalMs": 1});
    let b =
        |p: &str| json!({"provider": p, "model": "m", "timeouts": t, "weight": 1, "priority": 0});
    let providers: Vec<serde_json::Value> = ["ns/a", "ns/b", "ns/c"]
        .iter()
        .map(|id| json!({"id": id, "type": "mock", "limits": limits, "models": [{"name": "m", "pricing": {"input": "0", "output": "0", "cachedInput": "0", "cacheWrite": "0", "reasoning": "0"}, "priceSource": {"from": "spec"}}]}))
        .collect();
    serde_json::from_value(json!({
        "version": 1, "budgets": [], "sources": [],
        "providers": providers,
        "routes": [{
            "id": "ns/r", "model": "chat",
            "backends": route_providers.iter().map(|p| b(p)).collect::<Vec<_>>(),
            "fallbacks": [{"provider": fallback, "model": "m", "timeouts": t}],
            "rules": [{"name": "r", "match": {"keywords": ["x"]}, "backends": [b("ns/a")]}],
            "retry": {"attempts": 1, "backoffInitialMs": 1, "backoffMaxMs": 1, "on": [], "budgetPercent": 0},
        }],
    }))
    .unwrap()
}

fn ids(s: &Snapshot) -> Vec<String> {
    s.health_views(Instant::now())
        .into_iter()
        .map(|v| v.id)
        .collect()
}

fn eject(backend: &Backend) {
    let settings = HealthSettings {
        failure_threshold: 1,
        ..HealthSettings::default()
    };
    backend.health[0].record_failure(Instant::now(), FailureKind::Server, &settings);
}

#[test]
fn every_backend_of_routes_rules_and_fallbacks_has_one_shared_health() {
    let s = Snapshot::build(
        config(&["ns/a", "ns/b"], "ns/c", json!(null)),
        &BTreeMap::new(),
        None,
    )
    .unwrap();
    assert_eq!(ids(&s), vec!["ns/a#0/m", "ns/b#0/m", "ns/c#0/m"]);
    let route = s.route("chat").unwrap();
    let in_rule = &route.rules[0].list.backends[0];
    let in_route = &route.list.backends[0];
    assert!(
        Arc::ptr_eq(&in_rule.health[0], &in_route.health[0]),
        "the same (provider, key, model) in a rule and in the route is one circuit"
    );
}

#[test]
fn a_reload_keeps_the_health_of_backends_still_named_and_forgets_the_others() {
    let first = Snapshot::build(
        config(&["ns/a", "ns/b"], "ns/c", json!(null)),
        &BTreeMap::new(),
        None,
    )
    .unwrap();
    let route = first.route("chat").unwrap();
    for b in &route.list.backends {
        eject(b);
    }
    let second = Snapshot::build(
        config(&["ns/a"], "ns/b", json!(null)),
        &BTreeMap::new(),
        Some(&first),
    )
    .unwrap();
    assert_eq!(ids(&second), vec!["ns/a#0/m", "ns/b#0/m"]);
    for view in second.health_views(Instant::now()) {
        assert_eq!(view.state, CircuitState::Open, "{} was ejected", view.id);
    }
    let third = Snapshot::build(
        config(&["ns/c"], "ns/c", json!(null)),
        &BTreeMap::new(),
        Some(&second),
    )
    .unwrap();
    let views = third.health_views(Instant::now());
    let c = views.iter().find(|v| v.id == "ns/c#0/m").unwrap();
    assert_eq!(
        c.state,
        CircuitState::Closed,
        "ns/c was not named by the snapshot before: it starts afresh"
    );
}

#[test]
fn a_reload_keeps_a_quota_while_its_limits_are_unchanged() {
    let limits = json!({"requestsPerMinute": 1});
    let first = Snapshot::build(
        config(&["ns/a"], "ns/c", limits.clone()),
        &BTreeMap::new(),
        None,
    )
    .unwrap();
    let quota = |s: &Snapshot| {
        s.route("chat").unwrap().list.backends[0].provider.keys[0]
            .quota
            .clone()
            .unwrap()
    };
    let now = Instant::now();
    assert!(quota(&first).try_acquire(now, 0));
    let second = Snapshot::build(
        config(&["ns/a"], "ns/c", limits),
        &BTreeMap::new(),
        Some(&first),
    )
    .unwrap();
    assert!(
        !quota(&second).try_acquire(now, 0),
        "the request made before the reload still counts"
    );
    let third = Snapshot::build(
        config(&["ns/a"], "ns/c", json!({"requestsPerMinute": 2})),
        &BTreeMap::new(),
        Some(&second),
    )
    .unwrap();
    assert!(
        quota(&third).try_acquire(now, 0),
        "new limits start a new quota"
    );
}
