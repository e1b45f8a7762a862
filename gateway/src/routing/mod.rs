//! Which backends a request may go to, in order: the first rule that matches picks its
//! backends, else the route's; they are ordered by priority, balanced by weight within a
//! priority (`balance`), and followed by the route's fallbacks. Health, quotas and retries
//! are applied while walking this order (`server::attempts`).

pub mod balance;
pub mod tokens;

use http::HeaderMap;
use tollgate_crds::config::{BackendConfig, WeightedBackend};

use crate::{
    config::snapshot::{RouteRuntime, RuleRuntime},
    wire::openai::{ChatRequest, Content, ContentPart},
};

/// The ordered backends for one request, and the rule that chose them.
#[derive(Debug)]
pub struct Plan<'a> {
    /// Backends to try, in order.
    pub backends: Vec<&'a BackendConfig>,
    /// How many of them come from `fallbacks` (at the end).
    pub fallbacks: usize,
    /// The matching rule, if any.
    pub rule: Option<&'a str>,
}

/// Plans a chat request.
pub fn plan<'a>(route: &'a RouteRuntime, req: &ChatRequest, headers: &HeaderMap) -> Plan<'a> {
    let facts = Facts::of(
        req,
        route.rules.iter().any(|r| {
            r.config.matches.min_prompt_tokens.is_some()
                || r.config.matches.max_prompt_tokens.is_some()
        }),
    );
    match route.rules.iter().find(|r| matches(r, &facts, headers)) {
        Some(rule) => plan_from(
            &rule.config.backends,
            &rule.set,
            &route.config.fallbacks,
            Some(rule.config.name.as_str()),
        ),
        None => plan_default(route),
    }
}

/// Plans a request that rules do not apply to (embeddings).
pub fn plan_default(route: &RouteRuntime) -> Plan<'_> {
    plan_from(
        &route.config.backends,
        &route.set,
        &route.config.fallbacks,
        None,
    )
}

fn plan_from<'a>(
    chosen: &'a [WeightedBackend],
    set: &balance::BackendSet,
    fallbacks: &'a [BackendConfig],
    rule: Option<&'a str>,
) -> Plan<'a> {
    let mut backends: Vec<&BackendConfig> = set
        .order()
        .into_iter()
        .filter_map(|i| chosen.get(i))
        .map(|w| &w.backend)
        .collect();
    backends.extend(fallbacks.iter());
    Plan {
        backends,
        fallbacks: fallbacks.len(),
        rule,
    }
}

/// What rules look at, computed once per request.
struct Facts {
    has_tools: bool,
    has_images: bool,
    last_user: String,
    last_user_lower: String,
    prompt_tokens: u64,
}

impl Facts {
    fn of(req: &ChatRequest, count_tokens: bool) -> Self {
        let has_images = req.messages.iter().any(|m| match &m.content {
            Some(Content::Parts(parts)) => parts
                .iter()
                .any(|p| matches!(p, ContentPart::ImageUrl { .. })),
            _ => false,
        });
        let last_user = req.last_user_text();
        Self {
            has_tools: req.tools.as_ref().is_some_and(|t| !t.is_empty()),
            has_images,
            last_user_lower: last_user.to_lowercase(),
            last_user,
            prompt_tokens: if count_tokens {
                tokens::prompt_tokens(req)
            } else {
                0
            },
        }
    }
}

fn matches(rule: &RuleRuntime, facts: &Facts, headers: &HeaderMap) -> bool {
    let m = &rule.config.matches;
    let headers_ok = m
        .headers
        .iter()
        .zip(&rule.header_patterns)
        .all(|(h, pattern)| {
            let Some(value) = headers.get(h.name.as_str()).and_then(|v| v.to_str().ok()) else {
                return false;
            };
            match pattern {
                Some(re) => re.is_match(value),
                None => value == h.value,
            }
        });
    headers_ok
        && m.min_prompt_tokens
            .is_none_or(|min| facts.prompt_tokens >= u64::from(min))
        && m.max_prompt_tokens
            .is_none_or(|max| facts.prompt_tokens <= u64::from(max))
        && m.has_tools.is_none_or(|want| want == facts.has_tools)
        && m.has_images.is_none_or(|want| want == facts.has_images)
        && (m.keywords.is_empty()
            || m.keywords
                .iter()
                .any(|k| facts.last_user_lower.contains(k.as_str())))
        && rule
            .pattern
            .as_ref()
            .is_none_or(|re| re.is_match(&facts.last_user))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;
    use tollgate_crds::config::GatewayConfig;

    use super::*;
    use crate::config::Snapshot;

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
        plan.backends.iter().map(|b| b.provider.as_str()).collect()
    }

    #[test]
    fn default_backends_by_priority_then_fallbacks() {
        let s = snapshot();
        let route = s.route("chat").unwrap();
        let p = plan(route, &req("hello"), &HeaderMap::new());
        assert_eq!(providers(&p), vec!["ns/c", "ns/a", "ns/b", "ns/d"]);
        assert_eq!((p.fallbacks, p.rule), (1, None));
    }

    #[test]
    fn every_backend_of_routes_rules_and_fallbacks_has_a_health_identity() {
        let ids = snapshot().backend_ids();
        let mut ids: Vec<_> = ids.into_iter().collect();
        ids.sort();
        assert_eq!(ids, vec!["ns/a#0/m", "ns/b#0/m", "ns/c#0/m", "ns/d#0/m"]);
    }

    #[test]
    fn first_matching_rule_wins() {
        let s = snapshot();
        let route = s.route("chat").unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-tollgate-team", "research".parse().unwrap());
        let p = plan(route, &req("my Invoice"), &headers);
        assert_eq!(
            (p.rule, providers(&p)),
            (Some("team"), vec!["ns/d", "ns/d"])
        );
        let p = plan(route, &req("my Invoice"), &HeaderMap::new());
        assert_eq!(p.rule, Some("words"), "keywords are case-insensitive");
        headers.insert("x-tollgate-team", "xresearch".parse().unwrap());
        assert_eq!(
            plan(route, &req("nothing"), &headers).rule,
            None,
            "header regexes match the whole value"
        );
    }
}
