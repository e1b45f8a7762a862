use std::collections::BTreeMap;

use serde_json::json;
use tollgate_crds::config::GatewayConfig;

use super::*;
use crate::snapshot::Snapshot;

fn snapshot() -> Snapshot {
    let b = |p: &str, priority: u32, weight: u32| json!({"provider": p, "model": "m", "timeouts": {"connectMs": 1, "firstTokenMs": 1, "idleMs": 1, "totalMs": 1}, "weight": weight, "priority": priority});
    let providers: Vec<serde_json::Value> = ["ns/a", "ns/b", "ns/c", "ns/d"]
        .iter()
        .map(|id| json!({"id": id, "type": "mock", "models": [{"name": "m", "pricing": {"input": "0", "output": "0", "cachedInput": "0", "cacheWrite": "0", "reasoning": "0"}, "priceSource": {"from": "spec"}}]}))
        .collect();
    let config: GatewayConfig = serde_json::from_value(json!({
        "version": 1, "budgets": [], "sources": [],
        "providers": providers,
        "routes": [{
            "id": "ns/r", "model": "chat",
            "backends": [b("ns/b", 1, 1), b("ns/a", 0, 0), b("ns/c", 0, 1)],
            "fallbacks": [{"provider": "ns/d", "model": "m", "timeouts": {"connectMs": 1, "firstTokenMs": 1, "idleMs": 1, "totalMs": 1}}],
            "rules": [
                {"name": "team", "match": {"headers": [{"name": "x-tollgate-team", "value": "res.*", "regex": true}]}, "backends": [b("ns/d", 0, 1)]},
                {"name": "words", "match": {"keywords": ["invoice"], "hasTools": false}, "backends": [b("ns/a", 0, 1)]},
            ],
            "retry": {"attempts": 1, "backoffInitialMs": 1, "backoffMaxMs": 1, "on": [], "budgetPercent": 0},
        }],
    }))
    .unwrap();
    Snapshot::build(config, &BTreeMap::new(), None).unwrap()
}

fn req(text: &str) -> ChatRequest {
    serde_json::from_value(
        json!({"model": "chat", "messages": [{"role": "user", "content": text}]}),
    )
    .unwrap()
}

fn providers<'a>(plan: &Plan<'a>) -> Vec<&'a str> {
    plan.backends
        .iter()
        .map(|b| b.config.provider.as_str())
        .collect()
}

#[test]
fn default_backends_by_priority_then_fallbacks() {
    let s = snapshot();
    let route = s.route("chat").unwrap();
    let p = plan(route, &req("hello"), &HeaderMap::new(), 0);
    assert_eq!(providers(&p), vec!["ns/c", "ns/a", "ns/b", "ns/d"]);
    assert_eq!((p.fallbacks, p.rule), (1, None));
}

#[test]
fn first_matching_rule_wins() {
    let s = snapshot();
    let route = s.route("chat").unwrap();
    let mut headers = HeaderMap::new();
    headers.insert("x-tollgate-team", "research".parse().unwrap());
    let p = plan(route, &req("my Invoice"), &headers, 0);
    assert_eq!(
        (p.rule, providers(&p)),
        (Some("team"), vec!["ns/d", "ns/d"])
    );
    let p = plan(route, &req("my Invoice"), &HeaderMap::new(), 0);
    assert_eq!(p.rule, Some("words"), "keywords are case-insensitive");
    headers.insert("x-tollgate-team", "xresearch".parse().unwrap());
    assert_eq!(
        plan(route, &req("nothing"), &headers, 0).rule,
        None,
        "header regexes match the whole value"
    );
}
