//! The gateway's own overhead: the same bounded load sent straight to the mock upstream
//! and through the gateway, on loopback. Prints throughput, client-side latency percentiles
//! both ways, and the gateway's `tollgate_gateway_overhead_seconds` mean. Run: `just bench`.

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
        "apiVersion: llm.tollgate.dev/v1alpha1\nkind: LLMProvider\nmetadata: {{name: up, namespace: bench}}\nspec: {{type: openai-compatible, baseURL: \"{base}\", models: [{{name: bench, pricing: {{input: \"1\", output: \"2\"}}}}]}}\n---\napiVersion: llm.tollgate.dev/v1alpha1\nkind: LLMRoute\nmetadata: {{name: chat, namespace: bench}}\nspec: {{model: chat, backends: [{{providerRef: {{name: up}}, model: bench}}]}}\n"
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

/// Sends up to REQUESTS requests with CONCURRENCY in flight; returns sorted latencies.
async fn load(url: String) -> (Vec<Duration>, Duration) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .unwrap();
    let body = json!({"model": "chat", "messages": [{"role": "user", "content": "Benchmark request with a few words of prompt."}]});
    let started = Instant::now();
    let mut latencies: Vec<Duration> = futures_util::stream::iter(0..REQUESTS)
        .map(|_| {
            let (client, url, body) = (client.clone(), url.clone(), body.clone());
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
    let find = |suffix: &str| {
        text.lines()
            .filter(|l| l.starts_with(&format!("{name}{suffix}")))
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
    g.shutdown().await;
}
