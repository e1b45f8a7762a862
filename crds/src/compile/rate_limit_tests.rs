//! Route rate limits: both forms compile into one sorted list; broken ones name their field.

use serde_json::json;

use super::*;
use crate::config::{RateLimitConfig, RateLimitKey};

fn limited(name: &str, limits: serde_json::Value) -> LLMRoute {
    let mut spec = json!({"model": name, "backends": [backend("mock", "mock-chat")]});
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), limits.as_object()) {
        spec.extend(extra.clone());
    }
    route(name, "2026-01-01T00:00:00Z", spec)
}

#[test]
fn one_limit_and_several_limits_compile_sorted_by_what_they_count() {
    let mut w = World::new();
    w.routes.push(limited(
        "single",
        json!({"rateLimit": {"requestsPerMinute": 60}}),
    ));
    w.routes.push(limited(
        "several",
        json!({"rateLimits": [
            {"per": "key", "requestsPerMinute": 10, "tokensPerMinute": 5000},
            {"tokensPerMinute": 100000},
            {"per": "team", "requestsPerMinute": 30},
        ]}),
    ));
    let c = w.compile();
    assert_eq!(summary(&c), vec![]);
    let by_model = |m: &str| {
        c.config
            .routes
            .iter()
            .find(|r| r.model == m)
            .map(|r| r.rate_limits.clone())
            .unwrap()
    };
    assert_eq!(
        by_model("single"),
        vec![RateLimitConfig {
            per: RateLimitKey::Route,
            requests_per_minute: Some(60),
            tokens_per_minute: None,
        }]
    );
    let several = by_model("several");
    let per: Vec<RateLimitKey> = several.iter().map(|l| l.per).collect();
    assert_eq!(
        per,
        vec![RateLimitKey::Route, RateLimitKey::Team, RateLimitKey::Key]
    );
    assert_eq!(several[0].tokens_per_minute, Some(100_000));
    assert_eq!(several[2].requests_per_minute, Some(10));
}

#[test]
fn broken_rate_limits_are_invalid_and_name_their_field() {
    let mut w = World::new();
    w.routes
        .push(limited("empty", json!({"rateLimits": [{"per": "key"}]})));
    w.routes.push(limited(
        "twice",
        json!({"rateLimits": [{"per": "key", "requestsPerMinute": 1}, {"per": "key", "tokensPerMinute": 1}]}),
    ));
    w.routes.push(limited(
        "both",
        json!({"rateLimit": {"requestsPerMinute": 1}, "rateLimits": [{"per": "key", "requestsPerMinute": 1}]}),
    ));
    w.routes.push(limited(
        "zero",
        json!({"rateLimits": [{"requestsPerMinute": 0}]}),
    ));
    let c = w.compile();
    let mut got = summary(&c);
    got.sort();
    assert_eq!(
        got,
        vec![
            ("both".into(), "spec".into(), Reason::Invalid),
            ("empty".into(), "spec.rateLimits[0]".into(), Reason::Invalid),
            ("twice".into(), "spec.rateLimits".into(), Reason::Invalid),
            (
                "zero".into(),
                "spec.rateLimits[0].requestsPerMinute".into(),
                Reason::Invalid
            ),
        ]
    );
    let message = |name: &str| {
        c.problems
            .iter()
            .find(|p| p.object.name == name)
            .map(|p| p.message.clone())
            .unwrap()
    };
    assert!(message("both").contains("not both"), "{}", message("both"));
    assert!(message("twice").contains("unique"), "{}", message("twice"));
    assert!(
        message("empty").contains("requestsPerMinute or tokensPerMinute"),
        "{}",
        message("empty")
    );
    assert!(c.config.routes.is_empty());
}
