#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};
use tollgate_crds::{
    LLMProvider, LLMRoute,
    catalog::PriceCatalogue,
    compile::{Reason, SecretIndex},
};

use super::*;

/// A provider with 64 KB of random header values (gzip halves it, no more), created at
/// second `created` of the day.
fn noisy(i: usize, seed: &mut u64) -> LLMProvider {
    let headers: Vec<Value> = (0..16)
        .map(|j| {
            let value: String = (0..250)
                .map(|_| {
                    *seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    format!("{:016x}", *seed >> 1)
                })
                .collect();
            json!({"name": format!("x-h{j}"), "value": value})
        })
        .collect();
    serde_json::from_value(json!({
        "apiVersion": "llm.tollgate.dev/v1alpha1", "kind": "LLMProvider",
        "metadata": {"name": format!("big-{i}"), "namespace": "team-noisy",
                     "creationTimestamp": format!("2026-01-01T00:00:{i:02}Z")},
        "spec": {"type": "openai-compatible", "baseURL": "http://vllm:8000/v1", "headers": headers,
                 "models": [{"name": "m", "pricing": {"input": "0", "output": "0"}}]},
    }))
    .unwrap()
}

#[test]
fn the_newest_objects_are_left_out_until_the_rest_fits() {
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut providers: Vec<LLMProvider> = (0..40).map(|i| noisy(i, &mut seed)).collect();
    providers.push(
        serde_json::from_value(json!({
            "apiVersion": "llm.tollgate.dev/v1alpha1", "kind": "LLMProvider",
            "metadata": {"name": "mock", "namespace": "team-a", "creationTimestamp": "2025-01-01T00:00:00Z"},
            "spec": {"type": "mock", "models": [{"name": "m", "pricing": {"input": "0", "output": "0"}}]},
        }))
        .unwrap(),
    );
    let routes: Vec<LLMRoute> = vec![
        serde_json::from_value(json!({
            "apiVersion": "llm.tollgate.dev/v1alpha1", "kind": "LLMRoute",
            "metadata": {"name": "chat", "namespace": "team-a", "creationTimestamp": "2025-01-01T00:00:00Z"},
            "spec": {"model": "chat", "backends": [{"providerRef": {"name": "mock"}, "model": "m"}]},
        }))
        .unwrap(),
    ];
    let catalogue = PriceCatalogue::default();
    let secrets = SecretIndex::default();
    let inputs = Inputs {
        providers: &providers,
        routes: &routes,
        budgets: &[],
        secrets: &secrets,
        catalogue: &catalogue,
    };

    let fitted = compile_to_fit(&inputs, |_| {}).unwrap();
    let text = fitted.text.unwrap();
    assert!(text.file().1.len() <= CONFIG_MAP_DATA_LIMIT);
    let left: Vec<&str> = fitted
        .compiled
        .problems
        .iter()
        .filter(|p| p.reason == Reason::ConfigTooLarge)
        .map(|p| p.object.name.as_str())
        .collect();
    assert_eq!(left.len(), fitted.left_out);
    // Only the newest: big-39, big-38, … down to some big-k, never an older one.
    let mut expected: Vec<String> = (40 - left.len()..40).map(|i| format!("big-{i}")).collect();
    expected.sort();
    let mut got: Vec<String> = left.iter().map(|s| s.to_string()).collect();
    got.sort();
    assert_eq!(got, expected);
    assert!(
        (1..20).contains(&left.len()),
        "about as many as do not fit are left out, not more: {}",
        left.len()
    );
    assert!(fitted.compiles <= 6, "{} compiles", fitted.compiles);
    assert_eq!(
        fitted.compiled.config.routes.len(),
        1,
        "team-a's route serves"
    );
    assert_eq!(
        fitted.compiled.problems.len(),
        left.len(),
        "nobody else has a problem"
    );
}

#[test]
fn a_config_that_fits_is_compiled_once() {
    let catalogue = PriceCatalogue::default();
    let secrets = SecretIndex::default();
    let inputs = Inputs {
        providers: &[],
        routes: &[],
        budgets: &[],
        secrets: &secrets,
        catalogue: &catalogue,
    };
    let fitted = compile_to_fit(&inputs, |_| {}).unwrap();
    assert!(fitted.text.is_ok());
    assert_eq!((fitted.left_out, fitted.compiles), (0, 1));
}

#[test]
fn when_nothing_can_make_it_fit_no_object_is_blamed() {
    let catalogue = PriceCatalogue::default();
    let secrets = SecretIndex::default();
    let routes: Vec<LLMRoute> = vec![
        serde_json::from_value(json!({
            "apiVersion": "llm.tollgate.dev/v1alpha1", "kind": "LLMRoute",
            "metadata": {"name": "chat", "namespace": "team-a"},
            "spec": {"model": "chat", "backends": [{"providerRef": {"name": "mock"}, "model": "m"}]},
        }))
        .unwrap(),
    ];
    let inputs = Inputs {
        providers: &[],
        routes: &routes,
        budgets: &[],
        secrets: &secrets,
        catalogue: &catalogue,
    };
    // Something compile does not produce (as client keys are) is too large by itself.
    let mut seed = 1_u64;
    let noise: String = (0..120_000)
        .map(|_| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            format!("{:016x}", seed >> 1)
        })
        .collect();
    let fitted = compile_to_fit(&inputs, |c| {
        c.config.keyed_namespaces = vec![noise.clone()];
    })
    .unwrap();
    assert!(matches!(fitted.text, Err(RenderError::TooLarge { .. })));
    assert_eq!(fitted.left_out, 0);
    assert!(
        fitted
            .compiled
            .problems
            .iter()
            .all(|p| p.reason != Reason::ConfigTooLarge),
        "{:?}",
        fitted.compiled.problems
    );
}
