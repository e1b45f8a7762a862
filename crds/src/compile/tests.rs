//! The compile function, problem by problem.

use serde_json::{Value, json};

use super::*;
use crate::config::{Credential, PriceSource, TimeoutsConfig};

fn provider(name: &str, spec: Value) -> LLMProvider {
    serde_json::from_value(json!({
        "apiVersion": "llm.tollgate.dev/v1alpha1", "kind": "LLMProvider",
        "metadata": {"name": name, "namespace": "team-a", "generation": 1},
        "spec": spec,
    }))
    .unwrap()
}

fn route(name: &str, created: &str, spec: Value) -> LLMRoute {
    serde_json::from_value(json!({
        "apiVersion": "llm.tollgate.dev/v1alpha1", "kind": "LLMRoute",
        "metadata": {"name": name, "namespace": "team-a", "generation": 2, "creationTimestamp": created},
        "spec": spec,
    }))
    .unwrap()
}

fn budget(name: &str, spec: Value) -> LLMBudget {
    serde_json::from_value(json!({
        "apiVersion": "llm.tollgate.dev/v1alpha1", "kind": "LLMBudget",
        "metadata": {"name": name, "namespace": "team-a"},
        "spec": spec,
    }))
    .unwrap()
}

fn openai(keys: &[&str]) -> LLMProvider {
    let refs: Vec<Value> = keys
        .iter()
        .map(|k| json!({"name": "openai", "key": k}))
        .collect();
    provider(
        "openai",
        json!({
            "type": "openai",
            "auth": {"secretRefs": refs},
            "models": [{"name": "gpt-4o-mini", "pricing": {"input": "0.15", "output": "0.60"}}],
            "timeouts": {"connect": "2s", "idle": "10s"},
        }),
    )
}

fn mock() -> LLMProvider {
    provider(
        "mock",
        json!({"type": "mock", "models": [{"name": "mock-chat", "pricing": {"input": "0", "output": "0"}}]}),
    )
}

fn backend(provider: &str, model: &str) -> Value {
    json!({"providerRef": {"name": provider}, "model": model})
}

fn secrets(keys: &[&str]) -> SecretIndex {
    let mut index = SecretIndex::default();
    index.insert("team-a", "openai", keys.iter().map(|k| k.to_string()));
    index
}

struct World {
    providers: Vec<LLMProvider>,
    routes: Vec<LLMRoute>,
    budgets: Vec<LLMBudget>,
    secrets: SecretIndex,
    catalogue: PriceCatalogue,
}

impl World {
    fn new() -> Self {
        Self {
            providers: vec![openai(&["key-a"]), mock()],
            routes: Vec::new(),
            budgets: Vec::new(),
            secrets: secrets(&["key-a"]),
            catalogue: PriceCatalogue::default(),
        }
    }

    fn compile(&self) -> Compiled {
        let compiled = compile(&Inputs {
            providers: &self.providers,
            routes: &self.routes,
            budgets: &self.budgets,
            secrets: &self.secrets,
            catalogue: &self.catalogue,
        })
        .unwrap();
        compiled
            .config
            .validate()
            .expect("compile only emits valid configs");
        compiled
    }
}

/// `(object name, field, reason)` of every problem, for compact assertions.
fn summary(c: &Compiled) -> Vec<(String, String, Reason)> {
    c.problems
        .iter()
        .map(|p| (p.object.name.clone(), p.field.clone(), p.reason))
        .collect()
}

fn one_problem(c: &Compiled) -> &Problem {
    assert_eq!(c.problems.len(), 1, "{:#?}", c.problems);
    &c.problems[0]
}

#[test]
fn a_valid_world_compiles_without_problems() {
    let mut w = World::new();
    w.routes.push(route(
        "chat",
        "2026-01-01T00:00:00Z",
        json!({"model": "chat", "aliases": ["chat-v1"], "backends": [backend("openai", "gpt-4o-mini"), backend("mock", "mock-chat")]}),
    ));
    let c = w.compile();
    assert!(c.problems.is_empty(), "{:#?}", c.problems);
    assert_eq!(c.config.providers.len(), 2);
    let r = &c.config.routes[0];
    assert_eq!((r.id.as_str(), r.model.as_str()), ("team-a/chat", "chat"));
    assert_eq!(r.backends.len(), 2);
    assert_eq!(
        (r.backends[0].weight, r.backends[0].priority),
        (1, 0),
        "documented defaults"
    );
    assert_eq!(
        (
            r.retry.attempts,
            r.retry.backoff_initial_ms,
            r.retry.backoff_max_ms,
            r.retry.budget_percent
        ),
        (2, 250, 10_000, 20)
    );
    assert_eq!(r.retry.on.len(), 4);
    let sources: Vec<_> = c
        .config
        .sources
        .iter()
        .map(|s| (s.kind.as_str(), s.id.as_str(), s.generation))
        .collect();
    assert_eq!(
        sources,
        vec![
            ("LLMProvider", "team-a/mock", 1),
            ("LLMProvider", "team-a/openai", 1),
            ("LLMRoute", "team-a/chat", 2)
        ]
    );
}

#[test]
fn credentials_are_named_by_gateway_secret_key_never_by_value() {
    let w = World::new();
    let c = w.compile();
    let openai = c
        .config
        .providers
        .iter()
        .find(|p| p.id == "team-a/openai")
        .unwrap();
    assert_eq!(
        openai.credentials,
        vec![Credential::ApiKey {
            secret_key: "team-a__openai__key-a".into()
        }]
    );
    assert_eq!(
        openai.base_url.as_deref(),
        Some("https://api.openai.com/v1")
    );
}

#[test]
fn missing_secret_is_reported_and_the_provider_is_not_usable() {
    let mut w = World::new();
    w.secrets = SecretIndex::default();
    w.routes.push(route("chat", "2026-01-01T00:00:00Z", json!({"model": "chat", "backends": [backend("openai", "gpt-4o-mini"), backend("mock", "mock-chat")]})));
    let c = w.compile();
    assert_eq!(
        summary(&c),
        vec![
            (
                "openai".into(),
                "spec.auth.secretRefs[0].name".into(),
                Reason::SecretNotFound
            ),
            (
                "chat".into(),
                "spec.backends[0].providerRef.name".into(),
                Reason::ProviderNotReady
            ),
        ]
    );
    assert!(
        c.problems[0]
            .message
            .contains(r#"Secret "openai" not found in namespace "team-a""#)
    );
    assert!(
        c.problems[1]
            .message
            .contains("none of its credentials resolve"),
        "{}",
        c.problems[1].message
    );
    assert!(c.config.providers.iter().all(|p| p.id != "team-a/openai"));
    let r = &c.config.routes[0];
    assert_eq!(
        r.backends.len(),
        1,
        "the route keeps serving with its other backend"
    );
    assert_eq!(r.backends[0].backend.provider, "team-a/mock");
}

#[test]
fn one_missing_key_never_blocks_the_others() {
    let mut w = World::new();
    w.providers[0] = openai(&["key-a", "key-b"]);
    w.secrets = secrets(&["key-b"]);
    let c = w.compile();
    let p = one_problem(&c);
    assert_eq!(
        (p.field.as_str(), p.reason),
        ("spec.auth.secretRefs[0].key", Reason::SecretKeyNotFound)
    );
    assert_eq!(p.message, r#"Secret team-a/openai has no key "key-a""#);
    assert_eq!(
        p.reason.condition(),
        crate::conditions::ConditionType::ResolvedRefs
    );
    let openai = c
        .config
        .providers
        .iter()
        .find(|p| p.id == "team-a/openai")
        .unwrap();
    assert_eq!(
        openai.credentials,
        vec![Credential::ApiKey {
            secret_key: "team-a__openai__key-b".into()
        }]
    );
}

#[test]
fn missing_provider_drops_only_that_backend() {
    let mut w = World::new();
    w.routes.push(route(
        "chat",
        "2026-01-01T00:00:00Z",
        json!({"model": "chat", "backends": [backend("mock", "mock-chat")], "fallbacks": [backend("gone", "x")]}),
    ));
    let c = w.compile();
    let p = one_problem(&c);
    assert_eq!(
        (p.field.as_str(), p.reason),
        (
            "spec.fallbacks[0].providerRef.name",
            Reason::ProviderNotFound
        )
    );
    assert_eq!(
        p.message,
        r#"LLMProvider "gone" not found in namespace "team-a""#
    );
    assert_eq!(c.config.routes[0].backends.len(), 1);
    assert!(c.config.routes[0].fallbacks.is_empty());
}

#[test]
fn a_rule_whose_backends_all_fail_to_resolve_stays_and_answers_nothing_else() {
    let mut w = World::new();
    w.routes.push(route(
        "chat",
        "2026-01-01T00:00:00Z",
        json!({
            "model": "chat",
            "backends": [backend("mock", "mock-chat")],
            "rules": [{"name": "eu", "match": {"headers": [{"name": "X-Region", "value": "eu"}]}, "backends": [backend("gone", "x")]}],
        }),
    ));
    let c = w.compile();
    assert_eq!(
        one_problem(&c).field,
        "spec.rules[0].backends[0].providerRef.name"
    );
    let rule = &c.config.routes[0].rules[0];
    assert!(
        rule.backends.is_empty(),
        "no silent re-routing of rule traffic to the defaults"
    );
    assert_eq!(
        rule.matches.headers[0].name, "x-region",
        "header names are lower-cased"
    );
}

#[test]
fn unlisted_model_is_reported_with_what_the_provider_lists() {
    let mut w = World::new();
    w.routes.push(route("chat", "2026-01-01T00:00:00Z", json!({"model": "chat", "backends": [backend("mock", "mock-chat"), backend("openai", "gpt-5")]})));
    let c = w.compile();
    let p = one_problem(&c);
    assert_eq!(
        (p.field.as_str(), p.reason),
        ("spec.backends[1].model", Reason::ModelNotFound)
    );
    assert!(
        p.message
            .contains(r#"does not list model "gpt-5" (it lists: gpt-4o-mini)"#),
        "{}",
        p.message
    );
}

#[test]
fn the_older_route_keeps_a_contested_model_name() {
    let mut w = World::new();
    let spec = |model: &str, aliases: Value| json!({"model": model, "aliases": aliases, "backends": [backend("mock", "mock-chat")]});
    w.routes.push(route(
        "newer",
        "2026-03-01T00:00:00Z",
        spec("chat", json!([])),
    ));
    w.routes.push(route(
        "older",
        "2026-01-01T00:00:00Z",
        spec("chat", json!([])),
    ));
    w.routes.push(route(
        "alias-clash",
        "2026-02-01T00:00:00Z",
        spec("other", json!(["chat"])),
    ));
    let c = w.compile();
    assert_eq!(
        summary(&c),
        vec![
            (
                "alias-clash".into(),
                "spec.aliases[0]".into(),
                Reason::ModelNameConflict
            ),
            (
                "newer".into(),
                "spec.model".into(),
                Reason::ModelNameConflict
            ),
        ]
    );
    assert!(
        c.problems[1]
            .message
            .contains("already served by LLMRoute team-a/older"),
        "{}",
        c.problems[1].message
    );
    let ids: Vec<_> = c.config.routes.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, vec!["team-a/older"]);
}

#[test]
fn objects_left_out_for_size_are_reported_on_themselves_only() {
    let mut w = World::new();
    let spec = |model: &str, backends: Value| json!({"model": model, "backends": backends});
    w.routes.push(route(
        "chat",
        "2026-01-01T00:00:00Z",
        spec(
            "chat",
            json!([
                backend("openai", "gpt-4o-mini"),
                backend("mock", "mock-chat")
            ]),
        ),
    ));
    w.routes.push(route(
        "big",
        "2026-02-01T00:00:00Z",
        spec("big", json!([backend("mock", "mock-chat")])),
    ));
    let left_out = BTreeMap::from([
        (
            object_ref(Kind::LLMRoute, &w.routes[1]),
            "too large".to_owned(),
        ),
        (
            object_ref(Kind::LLMProvider, &w.providers[1]),
            "too large".to_owned(),
        ),
    ]);
    let c = compile_leaving_out(
        &Inputs {
            providers: &w.providers,
            routes: &w.routes,
            budgets: &w.budgets,
            secrets: &w.secrets,
            catalogue: &w.catalogue,
        },
        &left_out,
    )
    .unwrap();
    assert_eq!(
        summary(&c),
        vec![
            ("mock".into(), "".into(), Reason::ConfigTooLarge),
            ("big".into(), "".into(), Reason::ConfigTooLarge),
            (
                "chat".into(),
                "spec.backends[1].providerRef.name".into(),
                Reason::ProviderNotReady
            ),
        ]
    );
    assert_eq!(
        Reason::ConfigTooLarge.condition(),
        crate::conditions::ConditionType::Accepted
    );
    let ids: Vec<_> = c.config.routes.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, vec!["team-a/chat"], "the older route keeps serving");
    assert_eq!(c.config.routes[0].backends.len(), 1);
    let providers: Vec<_> = c.config.providers.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(providers, vec!["team-a/openai"]);
}

#[test]
fn model_without_any_price_is_refused_never_free() {
    let mut w = World::new();
    w.providers.push(provider("vllm", json!({"type": "openai-compatible", "baseURL": "http://vllm:8000/v1", "models": [{"name": "llama"}]})));
    w.routes.push(route(
        "llama",
        "2026-01-01T00:00:00Z",
        json!({"model": "llama", "backends": [backend("vllm", "llama")]}),
    ));
    let c = w.compile();
    assert_eq!(
        summary(&c),
        vec![
            (
                "vllm".into(),
                "spec.models[0].pricing".into(),
                Reason::PriceUnknown
            ),
            (
                "llama".into(),
                "spec.backends[0].providerRef.name".into(),
                Reason::ProviderNotReady
            ),
        ]
    );
    assert!(
        c.problems[0].message.contains("openai-compatible/llama"),
        "{}",
        c.problems[0].message
    );
    assert_eq!(
        c.problems[0].reason.condition(),
        crate::conditions::ConditionType::Accepted
    );
}

#[test]
fn catalogue_prices_fill_in_and_say_where_they_came_from() {
    let mut w = World::new();
    w.catalogue = PriceCatalogue::parse(
        "version: 1\ncurrency: USD\nunit: per-million-tokens\nmodels:\n  - provider: anthropic\n    model: claude-haiku-4-5\n    input: \"1\"\n    output: \"5\"\n    cachedInput: \"0.1\"\n    source: https://example.com/pricing\n    read: \"2026-11-22\"\n",
    )
    .unwrap();
    w.secrets
        .insert("team-a", "anthropic", ["api-key".to_owned()]);
    w.providers.push(provider(
        "anthropic",
        json!({"type": "anthropic", "auth": {"secretRefs": [{"name": "anthropic", "key": "api-key"}]}, "models": [{"name": "claude-haiku-4-5"}]}),
    ));
    let c = w.compile();
    assert!(c.problems.is_empty(), "{:#?}", c.problems);
    let m = &c
        .config
        .providers
        .iter()
        .find(|p| p.id == "team-a/anthropic")
        .unwrap()
        .models[0];
    assert_eq!(m.pricing.cached_input.to_string(), "0.1");
    assert_eq!(
        m.pricing.cache_write.to_string(),
        "1",
        "defaults to the input price"
    );
    assert_eq!(
        m.price_source,
        PriceSource::Catalogue {
            source: "https://example.com/pricing".into(),
            read: "2026-11-22".into()
        }
    );
}

#[test]
fn schema_and_cel_violations_are_invalid_with_field_paths() {
    let mut w = World::new();
    w.routes.push(route(
        "weights",
        "2026-01-01T00:00:00Z",
        json!({"model": "weights", "backends": [{"providerRef": {"name": "mock"}, "model": "mock-chat", "weight": 5000}]}),
    ));
    w.routes.push(route(
        "repeat",
        "2026-01-01T00:00:00Z",
        json!({"model": "repeat", "backends": [backend("mock", "mock-chat")], "fallbacks": [backend("mock", "mock-chat")]}),
    ));
    let c = w.compile();
    assert_eq!(
        summary(&c),
        vec![
            ("repeat".into(), "spec.fallbacks".into(), Reason::Invalid),
            (
                "weights".into(),
                "spec.backends[0].weight".into(),
                Reason::Invalid
            ),
        ]
    );
    assert!(
        c.problems[0]
            .message
            .contains("fallbacks may not repeat a primary backend"),
        "{}",
        c.problems[0].message
    );
    assert!(
        c.problems[1].message.contains("5000"),
        "{}",
        c.problems[1].message
    );
    assert!(c.config.routes.is_empty());
}

#[test]
fn bad_regular_expressions_are_invalid() {
    let mut w = World::new();
    w.routes.push(route(
        "rx",
        "2026-01-01T00:00:00Z",
        json!({
            "model": "rx",
            "backends": [backend("mock", "mock-chat")],
            "rules": [{"name": "r", "match": {"pattern": "(unclosed", "headers": [{"name": "x-a", "value": "[z-a]", "type": "regex"}]}, "backends": [backend("mock", "mock-chat")]}],
        }),
    ));
    let c = w.compile();
    assert_eq!(
        summary(&c),
        vec![
            (
                "rx".into(),
                "spec.rules[0].match.headers[0].value".into(),
                Reason::Invalid
            ),
            (
                "rx".into(),
                "spec.rules[0].match.pattern".into(),
                Reason::Invalid
            ),
        ]
    );
}

#[test]
fn link_local_base_url_is_refused_offline_too() {
    let mut w = World::new();
    w.providers.push(provider(
        "evil",
        json!({"type": "openai-compatible", "baseURL": "http://169.254.169.254/latest/meta-data", "models": [{"name": "m", "pricing": {"input": "0", "output": "0"}}]}),
    ));
    let c = w.compile();
    let p = one_problem(&c);
    assert_eq!(
        (p.field.as_str(), p.reason),
        ("spec.baseURL", Reason::Invalid)
    );
    assert!(
        p.message.contains("link-local or cloud-metadata"),
        "{}",
        p.message
    );
}

#[test]
fn route_timeouts_override_provider_timeouts_one_by_one() {
    let mut w = World::new();
    w.routes.push(route(
        "chat",
        "2026-01-01T00:00:00Z",
        json!({"model": "chat", "backends": [backend("openai", "gpt-4o-mini")], "timeouts": {"idle": "5s", "total": "1m30s"}}),
    ));
    let c = w.compile();
    assert_eq!(
        c.config.routes[0].backends[0].backend.timeouts,
        TimeoutsConfig {
            connect_ms: 2_000,
            first_token_ms: 60_000,
            idle_ms: 5_000,
            total_ms: 90_000
        }
    );
}

#[test]
fn broken_budgets_are_reported_by_field_and_left_out() {
    let mut w = World::new();
    w.routes.push(route(
        "chat",
        "2026-01-01T00:00:00Z",
        json!({"model": "chat", "backends": [backend("mock", "mock-chat")]}),
    ));
    w.budgets.push(budget(
        "monthly",
        json!({
            "scope": {"routes": ["chat", "nope"]},
            "limit": {"amount": "100.00", "period": "monthly", "timeZone": "Mars/Olympus"},
            "action": "downgrade",
            "downgradeTo": {"name": "cheap"},
            "alertThresholds": [50, 80],
        }),
    ));
    let c = w.compile();
    assert_eq!(
        summary(&c),
        vec![
            (
                "monthly".into(),
                "spec.downgradeTo.name".into(),
                Reason::RouteNotFound
            ),
            (
                "monthly".into(),
                "spec.limit.timeZone".into(),
                Reason::Invalid
            ),
            (
                "monthly".into(),
                "spec.scope.routes[1]".into(),
                Reason::RouteNotFound
            ),
        ]
    );
    assert!(c.config.budgets.is_empty());
}

#[test]
fn a_valid_budget_is_compiled_with_its_scope() {
    let mut w = World::new();
    w.routes.push(route(
        "chat",
        "2026-01-01T00:00:00Z",
        json!({"model": "chat", "backends": [backend("mock", "mock-chat")]}),
    ));
    w.budgets.push(budget(
        "research",
        json!({
            "scope": {"teams": ["research"], "keys": ["app"]},
            "limit": {"amount": "250.00", "period": "daily", "timeZone": "Europe/Berlin"},
            "action": "reject",
            "alertThresholds": [50, 80],
            "shadowMode": true,
        }),
    ));
    let c = w.compile();
    assert!(summary(&c).is_empty(), "{:?}", summary(&c));
    let b = &c.config.budgets[0];
    assert_eq!(b.routes.len(), 1);
    assert_eq!(b.teams, vec!["research".to_owned()]);
    assert_eq!(b.keys.len(), 1);
    assert!(b.keys[0].ends_with("/app"), "{:?}", b.keys);
    assert_eq!(b.limit.to_string(), "250.00");
    assert!(b.shadow_mode);
}

#[test]
fn output_does_not_depend_on_input_order() {
    let mut w = World::new();
    w.secrets = secrets(&["key-a", "key-b"]);
    w.providers[0] = openai(&["key-a", "key-b"]);
    for (name, model) in [("a", "alpha"), ("b", "beta"), ("c", "gamma")] {
        w.routes.push(route(
            name,
            "2026-01-01T00:00:00Z",
            json!({"model": model, "backends": [backend("mock", "mock-chat")]}),
        ));
    }
    let first = w.compile();
    w.routes.reverse();
    w.providers.reverse();
    let second = w.compile();
    assert_eq!(
        first.config.to_json().unwrap(),
        second.config.to_json().unwrap()
    );
    assert_eq!(first.config.hash().unwrap(), second.config.hash().unwrap());
    let names: Vec<_> = first
        .config
        .routes
        .iter()
        .map(|r| r.model.as_str())
        .collect();
    assert_eq!(names, vec!["alpha", "beta", "gamma"]);
}

#[test]
fn bedrock_aws_credentials_use_default_key_names() {
    let mut w = World::new();
    w.secrets
        .insert("team-a", "aws", ["AWS_ACCESS_KEY_ID".to_owned()]);
    w.providers.push(provider(
        "bedrock",
        json!({"type": "bedrock", "bedrock": {"region": "eu-west-1"}, "auth": {"aws": {"secretName": "aws"}}, "models": [{"name": "m", "pricing": {"input": "1", "output": "2"}}]}),
    ));
    let c = w.compile();
    let p = one_problem(&c);
    assert_eq!(
        (p.field.as_str(), p.reason),
        (
            "spec.auth.aws.secretAccessKeyKey",
            Reason::SecretKeyNotFound
        )
    );
    assert!(p.message.contains("AWS_SECRET_ACCESS_KEY"));

    w.secrets
        .insert("team-a", "aws", ["AWS_SECRET_ACCESS_KEY".to_owned()]);
    let c = w.compile();
    assert!(c.problems.is_empty(), "{:#?}", c.problems);
    let b = c
        .config
        .providers
        .iter()
        .find(|p| p.id == "team-a/bedrock")
        .unwrap();
    assert_eq!(
        b.base_url.as_deref(),
        Some("https://bedrock-runtime.eu-west-1.amazonaws.com")
    );
    assert_eq!(
        b.credentials,
        vec![Credential::Aws {
            access_key_id: "team-a__aws__AWS_ACCESS_KEY_ID".into(),
            secret_access_key: "team-a__aws__AWS_SECRET_ACCESS_KEY".into(),
            session_token: None,
        }]
    );
}

#[test]
fn a_lone_backoff_bound_moves_the_other_default() {
    let mut w = World::new();
    for (name, retry) in [
        ("slow", json!({"backoff": {"initial": "20s"}})),
        ("fast", json!({"backoff": {"max": "100ms"}})),
    ] {
        w.routes.push(route(
            name,
            "2026-01-01T00:00:00Z",
            json!({"model": name, "backends": [backend("mock", "mock-chat")], "retry": retry}),
        ));
    }
    let c = w.compile();
    let retry = |model: &str| {
        let r = &c
            .config
            .routes
            .iter()
            .find(|r| r.model == model)
            .unwrap()
            .retry;
        (r.backoff_initial_ms, r.backoff_max_ms)
    };
    assert_eq!(retry("slow"), (20_000, 20_000));
    assert_eq!(retry("fast"), (100, 100));
}

#[test]
fn a_zero_route_timeout_falls_through_to_the_provider() {
    let mut w = World::new();
    w.routes.push(route(
        "chat",
        "2026-01-01T00:00:00Z",
        json!({"model": "chat", "backends": [backend("openai", "gpt-4o-mini")], "timeouts": {"connect": "0s"}}),
    ));
    let c = w.compile();
    assert_eq!(
        c.config.routes[0].backends[0].backend.timeouts.connect_ms,
        2_000
    );
}

#[test]
fn secrets_in_a_forbidden_namespace_are_not_permitted_even_when_they_exist() {
    let mut w = World::new();
    w.secrets.forbid_namespace("team-a");
    let c = w.compile();
    let p = one_problem(&c);
    assert_eq!(
        (p.field.as_str(), p.reason),
        ("spec.auth.secretRefs[0].name", Reason::RefNotPermitted)
    );
    assert_eq!(
        p.reason.condition(),
        crate::conditions::ConditionType::ResolvedRefs
    );
    assert!(p.message.contains("--secret-namespaces"), "{}", p.message);
    assert!(
        c.config.providers.iter().all(|p| p.id != "team-a/openai"),
        "a provider whose only key is not permitted is left out"
    );
}

#[test]
fn listed_credentials_that_all_fail_exclude_even_an_optional_auth_provider() {
    let mut w = World::new();
    w.providers.push(provider(
        "vllm",
        json!({"type": "openai-compatible", "baseURL": "http://vllm:8000/v1", "auth": {"secretRefs": [{"name": "vllm", "key": "token"}]}, "models": [{"name": "m", "pricing": {"input": "0", "output": "0"}}]}),
    ));
    let c = w.compile();
    assert_eq!(one_problem(&c).reason, Reason::SecretNotFound);
    assert!(
        c.config.providers.iter().all(|p| p.id != "team-a/vllm"),
        "never sends requests without the key the user asked for"
    );
}

#[test]
fn over_long_gateway_secret_keys_are_refused() {
    let mut w = World::new();
    let long_key = "k".repeat(240);
    w.secrets.insert("team-a", "openai", [long_key.clone()]);
    w.providers[0] = openai(&[&long_key]);
    let c = w.compile();
    let p = one_problem(&c);
    assert_eq!(
        (p.field.as_str(), p.reason),
        ("spec.auth.secretRefs[0].key", Reason::Invalid)
    );
}

#[path = "cache_tests.rs"]
mod cache_tests;
#[path = "guardrails_tests.rs"]
mod guardrails_tests;
#[path = "rate_limit_tests.rs"]
mod rate_limits;
