//! `spec.cache` compiled: defaults, the embedding route resolved, field-named problems.

use serde_json::json;

use super::*;
use crate::config::{CacheConfig, CacheScope, SemanticConfig};

fn cached(name: &str, cache: Value) -> LLMRoute {
    route(
        name,
        "2026-01-01T00:00:00Z",
        json!({"model": name, "backends": [backend("mock", "mock-chat")], "cache": cache}),
    )
}

fn cache_of<'a>(c: &'a Compiled, model: &str) -> &'a CacheConfig {
    c.config
        .routes
        .iter()
        .find(|r| r.model == model)
        .and_then(|r| r.cache.as_ref())
        .unwrap()
}

#[test]
fn a_cache_compiles_with_its_defaults() {
    let mut w = World::new();
    w.routes.push(cached("chat", json!({"ttl": "10m"})));
    let c = w.compile();
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    assert_eq!(
        cache_of(&c, "chat"),
        &CacheConfig {
            ttl_ms: 600_000,
            max_entry_bytes: 1 << 20,
            scope: CacheScope::Team,
            semantic: None,
        }
    );
}

#[test]
fn a_semantic_cache_resolves_its_embedding_route_in_the_namespace() {
    let mut w = World::new();
    w.routes.push(cached("embed", json!({"ttl": "1h"})));
    w.routes.push(cached(
        "chat",
        json!({"ttl": "30s", "maxEntryBytes": 4096, "scope": "key",
               "semantic": {"embeddingRoute": {"name": "embed"}, "threshold": 0.9, "maxEntries": 50}}),
    ));
    let c = w.compile();
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    assert_eq!(
        cache_of(&c, "chat"),
        &CacheConfig {
            ttl_ms: 30_000,
            max_entry_bytes: 4096,
            scope: CacheScope::Key,
            semantic: Some(SemanticConfig {
                embedding_route: "team-a/embed".into(),
                threshold: 0.9,
                max_entries: 50,
            }),
        }
    );
}

#[test]
fn a_missing_embedding_route_is_named_and_the_exact_cache_stays() {
    let mut w = World::new();
    w.routes.push(cached(
        "chat",
        json!({"ttl": "1m", "semantic": {"embeddingRoute": {"name": "nowhere"}}}),
    ));
    let c = w.compile();
    assert_eq!(
        summary(&c),
        vec![(
            "chat".into(),
            "spec.cache.semantic.embeddingRoute.name".into(),
            Reason::RouteNotFound
        )]
    );
    assert_eq!(cache_of(&c, "chat").semantic, None);
    assert_eq!(cache_of(&c, "chat").ttl_ms, 60_000);
}

#[test]
fn an_embedding_route_with_its_own_semantic_cache_is_not_resolved() {
    let mut w = World::new();
    w.routes.push(cached(
        "a",
        json!({"ttl": "1m", "semantic": {"embeddingRoute": {"name": "b"}}}),
    ));
    w.routes.push(cached(
        "b",
        json!({"ttl": "1m", "semantic": {"embeddingRoute": {"name": "a"}}}),
    ));
    let c = w.compile();
    let fields: Vec<_> = summary(&c).into_iter().map(|(_, f, r)| (f, r)).collect();
    assert_eq!(
        fields,
        vec![
            (
                "spec.cache.semantic.embeddingRoute.name".into(),
                Reason::RouteNotFound
            ),
            (
                "spec.cache.semantic.embeddingRoute.name".into(),
                Reason::RouteNotFound
            ),
        ]
    );
}

#[test]
fn schema_violations_of_the_cache_name_their_field() {
    let mut w = World::new();
    w.routes.push(cached(
        "chat",
        json!({"ttl": "1m", "maxEntryBytes": 10, "semantic": {"embeddingRoute": {"name": "e"}, "threshold": 1.5}}),
    ));
    let c = w.compile();
    let fields: Vec<_> = summary(&c).into_iter().map(|(_, f, _)| f).collect();
    assert!(
        fields
            .iter()
            .any(|f| f.contains("spec.cache.maxEntryBytes")),
        "{fields:?}"
    );
    assert!(
        fields
            .iter()
            .any(|f| f.contains("spec.cache.semantic.threshold")),
        "{fields:?}"
    );
}
