//! The CRDs' CEL rules, evaluated with kube's client-side CEL engine (no API server runs
//! here): each rule accepts a valid object and rejects a broken one with its message.
//! Every rule also stays inside the API server's cost budget, or the CRD would be refused.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a broken fixture should fail the test loudly

use kube::{
    CustomResourceExt,
    core::cel::{Validator, compile_schema, estimate_rule_cost},
};
use serde_json::{Value, json};
use tollgate_crds::{LLMBudget, LLMProvider, LLMRoute};

fn schema<K: CustomResourceExt>() -> Value {
    let crd = K::crd();
    serde_json::to_value(
        crd.spec.versions[0]
            .schema
            .as_ref()
            .unwrap()
            .open_api_v3_schema
            .as_ref()
            .unwrap(),
    )
    .unwrap()
}

/// The CEL failures of `spec` as a `kind` object, as messages.
fn failures<K: CustomResourceExt>(spec: Value) -> Vec<String> {
    let object = json!({"apiVersion": "llm.tollgate.dev/v1alpha1", "kind": "X", "metadata": {"name": "x"}, "spec": spec});
    match Validator::new().validate(&schema::<K>(), &object, None) {
        Ok(()) => Vec::new(),
        Err(errors) => errors
            .into_vec()
            .into_iter()
            .map(|e| format!("{}: {}", e.field_path, e.message))
            .collect(),
    }
}

fn assert_rejects<K: CustomResourceExt>(spec: Value, message: &str) {
    let found = failures::<K>(spec.clone());
    assert!(
        found.iter().any(|f| f.contains(message)),
        "expected {message:?} for {spec}, got {found:?}"
    );
}

fn provider_spec() -> Value {
    json!({"type": "openai", "auth": {"secretRefs": [{"name": "s", "key": "k"}]}, "models": [{"name": "gpt-4o"}]})
}

fn route_spec() -> Value {
    json!({"model": "chat", "backends": [{"providerRef": {"name": "p"}, "model": "a"}]})
}

fn budget_spec() -> Value {
    json!({"limit": {"amount": "10", "period": "monthly"}, "action": "reject", "alertThresholds": [50, 80, 100]})
}

fn with(mut base: Value, patch: Value) -> Value {
    for (k, v) in patch.as_object().unwrap() {
        base[k] = v.clone();
    }
    base
}

#[test]
fn valid_objects_pass_every_rule() {
    assert_eq!(
        failures::<LLMProvider>(provider_spec()),
        Vec::<String>::new()
    );
    assert_eq!(failures::<LLMRoute>(route_spec()), Vec::<String>::new());
    assert_eq!(failures::<LLMBudget>(budget_spec()), Vec::<String>::new());
    let full_route = with(
        route_spec(),
        json!({
            "aliases": ["c"],
            "fallbacks": [{"providerRef": {"name": "q"}, "model": "b"}],
            "rules": [{"name": "r", "match": {"promptTokens": {"min": 1, "max": 2}}, "backends": [{"providerRef": {"name": "p"}, "model": "a"}]}],
            "retry": {"backoff": {"initial": "100ms", "max": "1s"}, "on": ["timeout"]},
            "timeouts": {"firstToken": "10s", "total": "1m"},
        }),
    );
    assert_eq!(failures::<LLMRoute>(full_route), Vec::<String>::new());
    let azure = json!({"type": "azure-openai", "baseURL": "https://x.openai.azure.com", "azure": {"deployments": [{"model": "gpt-4o", "deployment": "d"}]}, "auth": {"secretRefs": [{"name": "s", "key": "k"}]}, "models": [{"name": "gpt-4o"}]});
    assert_eq!(failures::<LLMProvider>(azure), Vec::<String>::new());
    let rolling = json!({"limit": {"amount": "10", "period": "rolling", "window": "24h"}, "action": "downgrade", "downgradeTo": {"name": "cheap"}, "scope": {"teams": ["a"]}});
    assert_eq!(failures::<LLMBudget>(rolling), Vec::<String>::new());
}

#[test]
fn provider_rules_reject_broken_specs() {
    let base = provider_spec();
    assert_rejects::<LLMProvider>(
        with(base.clone(), json!({"type": "openai-compatible"})),
        "baseURL is required",
    );
    assert_rejects::<LLMProvider>(
        json!({"type": "mock", "baseURL": "https://x", "models": [{"name": "m"}]}),
        "a mock provider answers in-process",
    );
    assert_rejects::<LLMProvider>(
        json!({"type": "anthropic", "models": [{"name": "m"}]}),
        "auth is required",
    );
    assert_rejects::<LLMProvider>(
        with(base.clone(), json!({"auth": {"aws": {"secretName": "a"}}})),
        "auth.aws only applies to type bedrock",
    );
    assert_rejects::<LLMProvider>(
        with(base.clone(), json!({"azure": {}})),
        "azure settings are required for, and only allowed with",
    );
    assert_rejects::<LLMProvider>(
        json!({"type": "bedrock", "auth": {"aws": {"secretName": "a"}}, "models": [{"name": "m"}]}),
        "bedrock settings are required",
    );
    assert_rejects::<LLMProvider>(
        json!({"type": "azure-openai", "baseURL": "https://x", "azure": {"deployments": [{"model": "other", "deployment": "d"}]}, "auth": {"secretRefs": [{"name": "s", "key": "k"}]}, "models": [{"name": "gpt-4o"}]}),
        "every azure.deployments[].model must be listed in models",
    );
    assert_rejects::<LLMProvider>(
        with(base.clone(), json!({"baseURL": "ftp://x"})),
        "absolute http or https URL",
    );
    for evil in [
        "http://169.254.169.254/",
        "http://metadata.google.internal/",
        "http://[fe80::1]/",
        "https://169.254.10.1:8443/v1",
        "http://METADATA.google.internal",
    ] {
        assert_rejects::<LLMProvider>(
            with(base.clone(), json!({"baseURL": evil})),
            "link-local or cloud-metadata",
        );
    }
    assert_eq!(
        failures::<LLMProvider>(with(
            base.clone(),
            json!({"baseURL": "http://10.0.0.5:8000/v1"})
        )),
        Vec::<String>::new()
    );
    assert_rejects::<LLMProvider>(
        with(
            base.clone(),
            json!({"headers": [{"name": "Authorization", "value": "x"}]}),
        ),
        "set by the gateway",
    );
    assert_rejects::<LLMProvider>(
        with(
            base.clone(),
            json!({"headers": [{"name": "x-a", "value": "1"}, {"name": "X-A", "value": "2"}]}),
        ),
        "headers[].name must be unique",
    );
    assert_rejects::<LLMProvider>(
        with(base, json!({"limits": {}})),
        "limits needs requestsPerMinute or tokensPerMinute",
    );
}

#[test]
fn route_rules_reject_broken_specs() {
    let base = route_spec();
    let b = |p: &str, m: &str| json!({"providerRef": {"name": p}, "model": m});
    assert_rejects::<LLMRoute>(
        with(base.clone(), json!({"aliases": ["chat"]})),
        "aliases must not repeat model",
    );
    assert_rejects::<LLMRoute>(
        with(base.clone(), json!({"fallbacks": [b("p", "a")]})),
        "fallbacks may not repeat a primary backend",
    );
    assert_rejects::<LLMRoute>(
        with(
            base.clone(),
            json!({"backends": [b("p", "a"), b("p", "a")]}),
        ),
        "backends must be unique",
    );
    assert_rejects::<LLMRoute>(
        with(
            base.clone(),
            json!({"fallbacks": [b("q", "a"), b("q", "a")]}),
        ),
        "fallbacks must be unique",
    );
    assert_rejects::<LLMRoute>(
        with(
            base.clone(),
            json!({"backends": [{"providerRef": {"name": "p"}, "model": "a", "weight": 0}]}),
        ),
        "at least one backend needs a non-zero weight",
    );
    let rule = |name: &str, m: Value| json!({"name": name, "match": m, "backends": [b("p", "a")]});
    assert_rejects::<LLMRoute>(
        with(base.clone(), json!({"rules": [rule("r", json!({}))]})),
        "a rule must match on something",
    );
    assert_rejects::<LLMRoute>(
        with(
            base.clone(),
            json!({"rules": [rule("r", json!({"promptTokens": {"min": 5, "max": 1}}))]}),
        ),
        "promptTokens.min must not exceed",
    );
    assert_rejects::<LLMRoute>(
        with(
            base.clone(),
            json!({"rules": [rule("r", json!({"promptTokens": {}}))]}),
        ),
        "promptTokens needs min or max",
    );
    assert_rejects::<LLMRoute>(
        with(
            base.clone(),
            json!({"timeouts": {"firstToken": "2m", "total": "1m"}}),
        ),
        "firstToken must not exceed timeouts.total",
    );
    assert_rejects::<LLMRoute>(
        with(
            base.clone(),
            json!({"retry": {"backoff": {"initial": "10s", "max": "1s"}}}),
        ),
        "backoff.initial must not exceed",
    );
    assert_rejects::<LLMRoute>(
        with(
            base.clone(),
            json!({"retry": {"on": ["timeout", "timeout"]}}),
        ),
        "retry.on must not repeat",
    );
    assert_rejects::<LLMRoute>(
        with(base.clone(), json!({"rateLimit": {}})),
        "rateLimit needs",
    );
    assert_rejects::<LLMRoute>(with(base, json!({"guardrails": {}})), "guardrails needs");
}

#[test]
fn budget_rules_reject_broken_specs() {
    let base = budget_spec();
    assert_rejects::<LLMBudget>(
        with(base.clone(), json!({"alertThresholds": [80, 50]})),
        "strictly ascending",
    );
    assert_rejects::<LLMBudget>(
        with(base.clone(), json!({"alertThresholds": [50, 50]})),
        "strictly ascending",
    );
    assert_rejects::<LLMBudget>(
        with(base.clone(), json!({"action": "downgrade"})),
        "downgradeTo is required for, and only allowed with",
    );
    assert_rejects::<LLMBudget>(
        with(base.clone(), json!({"downgradeTo": {"name": "x"}})),
        "downgradeTo is required for, and only allowed with",
    );
    assert_rejects::<LLMBudget>(
        with(
            base.clone(),
            json!({"action": "downgrade", "downgradeTo": {"name": "a"}, "scope": {"routes": ["a"]}}),
        ),
        "outside the budget's scope",
    );
    assert_rejects::<LLMBudget>(
        with(
            base.clone(),
            json!({"limit": {"amount": "1", "period": "rolling"}}),
        ),
        "window is required",
    );
    assert_rejects::<LLMBudget>(
        with(
            base.clone(),
            json!({"limit": {"amount": "1", "period": "daily", "window": "1h"}}),
        ),
        "window is required for, and only allowed with",
    );
    assert_rejects::<LLMBudget>(
        with(
            base.clone(),
            json!({"limit": {"amount": "1", "period": "rolling", "window": "1h", "timeZone": "UTC"}}),
        ),
        "timeZone only applies",
    );
    assert_rejects::<LLMBudget>(
        with(base, json!({"scope": {}})),
        "scope needs routes, teams or keys",
    );
}

/// Walks a schema, yielding each node that carries `x-kubernetes-validations`.
fn rule_nodes<'a>(node: &'a Value, path: String, out: &mut Vec<(String, &'a Value)>) {
    if node.get("x-kubernetes-validations").is_some() {
        out.push((path.clone(), node));
    }
    if let Some(props) = node.get("properties").and_then(Value::as_object) {
        for (k, v) in props {
            rule_nodes(v, format!("{path}.{k}"), out);
        }
    }
    if let Some(items) = node.get("items") {
        rule_nodes(items, format!("{path}[]"), out);
    }
}

#[test]
fn every_rule_fits_the_api_servers_cost_budget() {
    let mut checked = 0;
    for (kind, schema) in [
        ("LLMProvider", schema::<LLMProvider>()),
        ("LLMRoute", schema::<LLMRoute>()),
        ("LLMBudget", schema::<LLMBudget>()),
    ] {
        let mut nodes = Vec::new();
        rule_nodes(&schema, String::new(), &mut nodes);
        for (path, node) in nodes {
            let compiled = compile_schema(node);
            for rule in node["x-kubernetes-validations"].as_array().unwrap() {
                let rule = rule["rule"].as_str().unwrap();
                let warnings = estimate_rule_cost(rule, &compiled);
                assert!(warnings.is_empty(), "{kind} {path}: {rule}: {warnings:?}");
                checked += 1;
            }
        }
    }
    assert!(checked >= 30, "found only {checked} rules");
}
