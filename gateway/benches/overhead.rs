//! The gateway's own overhead: the same bounded load sent straight to the mock upstream
//! and through the gateway, on loopback. Prints throughput, client-side latency percentiles
//! both ways, and the gateway's `tollgate_gateway_overhead_seconds` mean. Then the response
//! cache: hits (answered without the upstream), what a miss adds over an uncached route, and
//! the semantic index's brute-force search; and rate-limited routes (in-process state).
//! Run: `just bench`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a broken setup should fail the bench loudly

use std::{collections::BTreeMap, time::Duration};

use futures_util::StreamExt;
use serde_json::json;
use tokio::time::Instant;
use tollgate_crds::{
    catalog::PriceCatalogue, config::CONFIG_FILE, manifests::Manifests, mount::write_atomic,
};
use tollgate_gateway::{
    config::ConfigSource,
    mock_upstream::{self, Knobs, MockServer},
    server::{self, Options},
};

const REQUESTS: usize = 4000;
const CONCURRENCY: usize = 16;
const TIME_LIMIT: Duration = Duration::from_secs(60);

/// The mock-upstream test double, speaking OpenAI's format, as the fast upstream.
async fn upstream() -> (String, MockServer) {
    let server = mock_upstream::spawn(Knobs::default()).await.unwrap();
    (format!("{}/v1", server.url()), server)
}

fn config(dir: &std::path::Path, base: &str) {
    let yaml = format!(
        "apiVersion: llm.tollgate.dev/v1alpha1\nkind: LLMProvider\nmetadata: {{name: up, namespace: bench}}\nspec: {{type: openai-compatible, baseURL: \"{base}\", models: [{{name: bench, pricing: {{input: \"1\", output: \"2\"}}}}]}}\n---\napiVersion: llm.tollgate.dev/v1alpha1\nkind: LLMRoute\nmetadata: {{name: chat, namespace: bench}}\nspec: {{model: chat, backends: [{{providerRef: {{name: up}}, model: bench}}]}}\n---\napiVersion: llm.tollgate.dev/v1alpha1\nkind: LLMRoute\nmetadata: {{name: cached, namespace: bench}}\nspec: {{model: cached, backends: [{{providerRef: {{name: up}}, model: bench}}], cache: {{ttl: 1h}}}}\n---\napiVersion: llm.tollgate.dev/v1alpha1\nkind: LLMRoute\nmetadata: {{name: limited, namespace: bench}}\nspec: {{model: limited, backends: [{{providerRef: {{name: up}}, model: bench}}], rateLimits: [{{requestsPerMinute: 4000000000, tokensPerMinute: 4000000000}}, {{per: key, requestsPerMinute: 4000000000}}]}}\n---\napiVersion: llm.tollgate.dev/v1alpha1\nkind: LLMRoute\nmetadata: {{name: rpm, namespace: bench}}\nspec: {{model: rpm, backends: [{{providerRef: {{name: up}}, model: bench}}], rateLimits: [{{requestsPerMinute: 4000000000}}, {{per: key, requestsPerMinute: 4000000000}}]}}\n"
    );
    let mut m = Manifests::default();
    let mut errors = Vec::new();
    m.add_text(std::path::Path::new("bench.yaml"), &yaml, &mut errors);
    let compiled = m.compile(PriceCatalogue::builtin().unwrap()).unwrap();
    assert!(errors.is_empty() && compiled.problems.is_empty());
    let files = BTreeMap::from([(
        CONFIG_FILE.to_string(),
        compiled.config.to_json().unwrap().into_bytes(),
    )]);
    write_atomic(&dir.join("config"), &files, 0o644).unwrap();
}

/// The benchmark's request to `model`; `unique` makes every prompt different (cache misses).
fn body(model: &str, unique: Option<usize>) -> serde_json::Value {
    let suffix = unique.map(|i| format!(" #{i}")).unwrap_or_default();
    json!({"model": model, "messages": [{"role": "user", "content": format!("Benchmark request with a few words of prompt.{suffix}")}]})
}

/// Sends up to REQUESTS requests with CONCURRENCY in flight; returns sorted latencies.
async fn load(url: String) -> (Vec<Duration>, Duration) {
    load_with(url, |_| body("chat", None)).await
}

/// [`load`] with the `i`-th request's body from `make`.
async fn load_with(
    url: String,
    make: impl Fn(usize) -> serde_json::Value,
) -> (Vec<Duration>, Duration) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .unwrap();
    let started = Instant::now();
    let mut latencies: Vec<Duration> = futures_util::stream::iter(0..REQUESTS)
        .map(|i| {
            let (client, url, body) = (client.clone(), url.clone(), make(i));
            async move {
                if started.elapsed() > TIME_LIMIT {
                    return None;
                }
                let t = Instant::now();
                let r = client.post(url).json(&body).send().await.ok()?;
                let ok = r.status().is_success();
                r.bytes().await.ok()?;
                ok.then(|| t.elapsed())
            }
        })
        .buffer_unordered(CONCURRENCY)
        .filter_map(|x| async move { x })
        .collect()
        .await;
    latencies.sort();
    (latencies, started.elapsed())
}

fn pct(v: &[Duration], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i].as_secs_f64() * 1e6
}

fn metric_sum_count(text: &str, name: &str) -> (f64, f64) {
    route_sum_count(text, name, "")
}

/// `_sum` and `_count` of histogram `name` over the series whose labels contain `labels`.
fn route_sum_count(text: &str, name: &str, labels: &str) -> (f64, f64) {
    let find = |suffix: &str| {
        text.lines()
            .filter(|l| l.starts_with(&format!("{name}{suffix}")) && l.contains(labels))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    (find("_sum"), find("_count"))
}

#[tokio::main]
async fn main() {
    tollgate_gateway::install_crypto_provider();
    let (base, _upstream) = upstream().await;
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), &base);
    let g = server::start(Options {
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: "127.0.0.1:0".parse().unwrap(),
        source: ConfigSource::Dir(dir.path().to_path_buf()),
        drain_timeout: Duration::from_secs(5),
        max_body: 1 << 20,
        recheck: Duration::from_secs(60),
        health: tollgate_gateway::resilience::health::HealthSettings::default(),
        limits: Default::default(),
        pays: Default::default(),
        cache: Default::default(),
    })
    .await
    .unwrap();

    // Warm both paths, then measure.
    load(format!("{base}/chat/completions")).await;
    let (direct, _) = load(format!("{base}/chat/completions")).await;
    let (via, wall) = load(format!("http://{}/v1/chat/completions", g.api_addr)).await;
    let metrics = reqwest::get(format!("http://{}/metrics", g.admin_addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (sum, count) = metric_sum_count(&metrics, "tollgate_gateway_overhead_seconds");
    println!(
        "overhead bench: {} requests, {CONCURRENCY} in flight, loopback, debug={}",
        via.len(),
        cfg!(debug_assertions)
    );
    println!(
        "  direct to upstream:  p50 {:>8.0} µs   p99 {:>8.0} µs",
        pct(&direct, 0.5),
        pct(&direct, 0.99)
    );
    println!(
        "  through the gateway: p50 {:>8.0} µs   p99 {:>8.0} µs   {:.0} req/s",
        pct(&via, 0.5),
        pct(&via, 0.99),
        via.len() as f64 / wall.as_secs_f64()
    );
    println!(
        "  tollgate_gateway_overhead_seconds (handler time not spent awaiting the upstream): mean {:.1} µs over {count} requests",
        if count > 0.0 {
            sum / count * 1e6
        } else {
            f64::NAN
        }
    );
    cache_bench(&g).await;
    limits_bench(&g).await;
    g.shutdown().await;
    semantic_search_bench();
}

async fn metrics_text(g: &server::Running) -> String {
    reqwest::get(format!("http://{}/metrics", g.admin_addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Cache hits, and a miss against the same requests on an uncached route.
async fn cache_bench(g: &server::Running) {
    let url = format!("http://{}/v1/chat/completions", g.api_addr);
    // Hits: one request stored, then the same request again and again.
    load_with(url.clone(), |_| body("cached", None)).await;
    let (hits, wall) = load_with(url.clone(), |_| body("cached", None)).await;
    println!(
        "  cache hit:           p50 {:>8.0} µs   p99 {:>8.0} µs   {:.0} req/s (no upstream call)",
        pct(&hits, 0.5),
        pct(&hits, 0.99),
        hits.len() as f64 / wall.as_secs_f64()
    );
    // Misses: every prompt unique, the same prompts to an uncached and a cached route, in
    // alternating rounds so drift hits both alike.
    let before = metrics_text(g).await;
    let (mut plain, mut missed) = (Vec::new(), Vec::new());
    for round in 0..2 {
        let offset = round * REQUESTS;
        plain.extend(
            load_with(url.clone(), |i| body("chat", Some(offset + i)))
                .await
                .0,
        );
        missed.extend(
            load_with(url.clone(), |i| body("cached", Some(offset + i)))
                .await
                .0,
        );
    }
    plain.sort();
    missed.sort();
    let after = metrics_text(g).await;
    let mean = |route: &str| {
        let label = format!("route=\"bench/{route}\"");
        let name = "tollgate_gateway_overhead_seconds";
        let (s1, c1) = route_sum_count(&before, name, &label);
        let (s2, c2) = route_sum_count(&after, name, &label);
        (s2 - s1) / (c2 - c1) * 1e6
    };
    println!(
        "  uncached route:      p50 {:>8.0} µs   p99 {:>8.0} µs   gateway overhead mean {:.1} µs",
        pct(&plain, 0.5),
        pct(&plain, 0.99),
        mean("chat")
    );
    println!(
        "  cache miss (stored): p50 {:>8.0} µs   p99 {:>8.0} µs   gateway overhead mean {:.1} µs (key, lookup; the store follows the answer)",
        pct(&missed, 0.5),
        pct(&missed, 0.99),
        mean("cached")
    );
}

/// The semantic index's brute-force search at its largest default scope.
fn semantic_search_bench() {
    use tollgate_gateway::cache::semantic::{Index, normalized};
    const DIMS: usize = 1536;
    const ENTRIES: usize = 1000;
    let index = Index::new(1 << 30);
    let mut seed = 1u64;
    let mut vector = || {
        let v: Vec<f32> = (0..DIMS)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5
            })
            .collect();
        normalized(&v).unwrap()
    };
    for i in 0..ENTRIES {
        let mut answer = [0u8; 32];
        answer[..8].copy_from_slice(&(i as u64).to_le_bytes());
        index.insert([7; 32], vector(), answer, u64::MAX, ENTRIES, 0);
    }
    let query = vector();
    let rounds = 200;
    let t = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(index.search(&[7; 32], &query, 0.95, 1));
    }
    println!(
        "  semantic search: {ENTRIES} prompts × {DIMS} dims, brute force: {:.0} µs per lookup",
        t.elapsed().as_secs_f64() / f64::from(rounds) * 1e6
    );
}

/// The gateway's own time on rate-limited routes (limits far above the load, so every
/// request is checked and admitted).
async fn limits_bench(g: &server::Running) {
    let url = format!("http://{}/v1/chat/completions", g.api_addr);
    let routes = [
        ("rpm", "requests per minute, route + per key"),
        ("limited", "the same + tokens per minute (prompt tokenized)"),
    ];
    let mut runs = Vec::new();
    for (model, _) in routes {
        runs.push(load_with(url.clone(), |_| body(model, None)).await);
    }
    let metrics = reqwest::get(format!("http://{}/metrics", g.admin_addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for ((model, what), (latencies, wall)) in routes.iter().zip(&runs) {
        let (sum, count) = route_sum_count(
            &metrics,
            "tollgate_gateway_overhead_seconds",
            &format!("route=\"bench/{model}\""),
        );
        println!(
            "  rate limits ({what}; in-process state): p50 {:>8.0} µs   p99 {:>8.0} µs   {:.0} req/s, overhead mean {:.1} µs over {count} requests",
            pct(latencies, 0.5),
            pct(latencies, 0.99),
            latencies.len() as f64 / wall.as_secs_f64(),
            if count > 0.0 {
                sum / count * 1e6
            } else {
                f64::NAN
            }
        );
    }
}
