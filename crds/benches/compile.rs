//! How long the compile function takes for a large cluster, and how many bytes it writes
//! (plain and gzip-compressed, as the ConfigMap holds it): the operator recompiles the whole
//! config on every change, so this bounds its reconcile latency. Run: `just bench`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a broken fixture should fail the bench loudly

use std::time::Instant;

use serde_json::json;
use tollgate_crds::{
    LLMProvider, LLMRoute,
    catalog::PriceCatalogue,
    compile::{Inputs, SecretIndex, compile},
    mount::gzip_config,
};

const ROUNDS: u32 = 3;

fn main() {
    for (providers, routes) in [(50, 500), (50, 1_000), (500, 10_000)] {
        measure(providers, routes);
    }
}

#[allow(non_snake_case)] // the former constants, now per run
fn measure(PROVIDERS: usize, ROUTES: usize) {
    let mut secrets = SecretIndex::default();
    let providers: Vec<LLMProvider> = (0..PROVIDERS)
        .map(|i| {
            secrets.insert("bench", &format!("key-{i}"), ["a".to_owned(), "b".to_owned()]);
            serde_json::from_value(json!({
                "apiVersion": "llm.tollgate.dev/v1alpha1", "kind": "LLMProvider",
                "metadata": {"name": format!("p{i}"), "namespace": "bench"},
                "spec": {
                    "type": "openai",
                    "auth": {"secretRefs": [{"name": format!("key-{i}"), "key": "a"}, {"name": format!("key-{i}"), "key": "b"}]},
                    "models": [{"name": "m1", "pricing": {"input": "1", "output": "2"}}, {"name": "m2", "pricing": {"input": "3", "output": "4"}}],
                },
            }))
            .unwrap()
        })
        .collect();
    let routes: Vec<LLMRoute> = (0..ROUTES)
        .map(|i| {
            let b = |p: usize, m: &str| json!({"providerRef": {"name": format!("p{}", p % PROVIDERS)}, "model": m});
            serde_json::from_value(json!({
                "apiVersion": "llm.tollgate.dev/v1alpha1", "kind": "LLMRoute",
                "metadata": {"name": format!("r{i}"), "namespace": "bench"},
                "spec": {
                    "model": format!("model-{i}"),
                    "backends": [b(i, "m1"), b(i + 1, "m1")],
                    "fallbacks": [b(i + 2, "m2")],
                    "rules": [{"name": "long", "match": {"promptTokens": {"min": 10000}}, "backends": [b(i + 3, "m2")]}],
                },
            }))
            .unwrap()
        })
        .collect();
    let inputs = Inputs {
        providers: &providers,
        routes: &routes,
        budgets: &[],
        secrets: &secrets,
        catalogue: PriceCatalogue::builtin().unwrap(),
    };
    let mut best = f64::MAX;
    let mut best_gzip = f64::MAX;
    let mut size = 0;
    let mut packed = 0;
    for _ in 0..ROUNDS {
        let start = Instant::now();
        let compiled = compile(&inputs).unwrap();
        let text = compiled.config.to_json().unwrap();
        best = best.min(start.elapsed().as_secs_f64());
        assert!(compiled.problems.is_empty());
        size = text.len();
        let start = Instant::now();
        packed = gzip_config(&text).unwrap().len();
        best_gzip = best_gzip.min(start.elapsed().as_secs_f64());
    }
    println!(
        "compile: {PROVIDERS} providers, {ROUTES} routes -> {size} bytes of config ({packed} gzip); best of {ROUNDS}: compile+serialize {:.1} ms, gzip {:.1} ms",
        best * 1000.0,
        best_gzip * 1000.0
    );
}
