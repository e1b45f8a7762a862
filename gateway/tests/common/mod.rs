//! Test helpers: a real gateway on 127.0.0.1 fed a config directory laid out like the
//! mounted ConfigMap and Secret.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // shared by several test binaries

use std::{
    collections::BTreeMap,
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

use tollgate_crds::{
    catalog::PriceCatalogue, config::CONFIG_FILE, manifests::Manifests, mount::write_atomic,
};
use tollgate_gateway::{
    config::ConfigSource,
    server::{self, Options, Running},
};

/// Compiles `yaml` and writes `dir/config` and `dir/secrets` like kubelet would.
pub fn write_config(dir: &Path, yaml: &str) {
    let mut m = Manifests::default();
    let mut errors = Vec::new();
    m.add_text(Path::new("test.yaml"), yaml, &mut errors);
    assert!(errors.is_empty(), "{errors:?}");
    let compiled = m.compile(PriceCatalogue::builtin().unwrap()).unwrap();
    assert!(compiled.problems.is_empty(), "{:?}", compiled.problems);
    let config = BTreeMap::from([(
        CONFIG_FILE.to_string(),
        compiled.config.to_json().unwrap().into_bytes(),
    )]);
    write_atomic(&dir.join("config"), &config, 0o644).unwrap();
    write_atomic(
        &dir.join("secrets"),
        &m.gateway_secret_data(&compiled.config),
        0o600,
    )
    .unwrap();
}

/// Writes raw config text (possibly invalid) as the ConfigMap's file.
pub fn write_raw_config(dir: &Path, text: &str) {
    let config = BTreeMap::from([(CONFIG_FILE.to_string(), text.as_bytes().to_vec())]);
    write_atomic(&dir.join("config"), &config, 0o644).unwrap();
}

/// Health settings with short cooldowns, so ejection tests finish quickly.
pub fn test_health() -> tollgate_gateway::resilience::health::HealthSettings {
    tollgate_gateway::resilience::health::HealthSettings {
        failure_threshold: 3,
        base_cooldown: Duration::from_millis(400),
        max_cooldown: Duration::from_secs(5),
    }
}

/// The options every test gateway starts from (loopback, ephemeral ports, test health);
/// a test overrides only what it is about.
pub fn test_options(source: ConfigSource) -> Options {
    Options {
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: "127.0.0.1:0".parse().unwrap(),
        source,
        drain_timeout: Duration::from_secs(5),
        max_body: 1024 * 1024,
        recheck: Duration::from_millis(200),
        health: test_health(),
        limits: Default::default(),
        pays: Default::default(),
        cache: Default::default(),
    }
}

/// A gateway serving `dir`.
pub async fn start(dir: &Path) -> Running {
    server::start(test_options(ConfigSource::Dir(dir.to_path_buf())))
        .await
        .unwrap()
}

/// A gateway serving `dir` with these health settings.
pub async fn start_with_health(
    dir: &Path,
    health: tollgate_gateway::resilience::health::HealthSettings,
) -> Running {
    server::start(Options {
        health,
        ..test_options(ConfigSource::Dir(dir.to_path_buf()))
    })
    .await
    .unwrap()
}

/// A gateway serving `yaml` from a fresh temp dir (kept alive by the returned guard).
pub async fn start_with(yaml: &str) -> (Running, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), yaml);
    (start(dir.path()).await, dir)
}

pub fn http() -> reqwest::Client {
    tollgate_gateway::install_crypto_provider();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

pub fn api(g: &Running, path: &str) -> String {
    format!("http://{}{path}", g.api_addr)
}

pub fn admin(g: &Running, path: &str) -> String {
    format!("http://{}{path}", g.admin_addr)
}

/// GETs an admin endpoint as JSON.
pub async fn admin_json(g: &Running, path: &str) -> serde_json::Value {
    http()
        .get(admin(g, path))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// GETs an admin endpoint as text.
pub async fn admin_text(g: &Running, path: &str) -> String {
    http()
        .get(admin(g, path))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// POSTs JSON; returns status, headers and body text.
pub async fn post(
    g: &Running,
    path: &str,
    body: serde_json::Value,
) -> (u16, reqwest::header::HeaderMap, String) {
    let r = http().post(api(g, path)).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.text().await.unwrap())
}

/// The `data:` payloads of an SSE body.
pub fn sse_data(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter_map(|event| {
            event
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .map(str::to_owned)
        })
        .collect()
}

/// Content text joined from streamed chunks.
pub fn streamed_text(body: &str) -> String {
    sse_data(body)
        .iter()
        .filter(|d| *d != "[DONE]")
        .filter_map(|d| serde_json::from_str::<serde_json::Value>(d).ok())
        .flat_map(|v| v["choices"].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["delta"]["content"].as_str().map(str::to_owned))
        .collect()
}

pub const MOCK: &str = r#"
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMProvider
metadata: {name: mock, namespace: default}
spec:
  type: mock
  models: [{name: mock-chat, pricing: {input: "0.15", output: "0.60"}}]
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMRoute
metadata: {name: demo, namespace: default}
spec:
  model: demo
  aliases: [gpt-4o-mini]
  backends: [{providerRef: {name: mock}, model: mock-chat}]
"#;

/// How many streams the slow server completed and how many the peer cut.
#[derive(Debug, Default)]
pub struct StreamCounts {
    pub completed: AtomicUsize,
    pub aborted: AtomicUsize,
}

impl StreamCounts {
    pub fn completed(&self) -> usize {
        self.completed.load(Ordering::SeqCst)
    }
    pub fn aborted(&self) -> usize {
        self.aborted.load(Ordering::SeqCst)
    }
}

/// An OpenAI-compatible server streaming `n` events `gap` apart; counts finished and cut streams.
pub async fn slow_stream_server(n: usize, gap: Duration) -> (String, Arc<StreamCounts>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let counts = Arc::new(StreamCounts::default());
    let c = Arc::clone(&counts);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let c = Arc::clone(&c);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let _ = socket.read(&mut buf).await;
                let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
                let mut events: Vec<String> = (0..n)
                    .map(|i| format!("data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"slow\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"w{i} \"}},\"finish_reason\":null}}]}}\n\n"))
                    .collect();
                events.push("data: [DONE]\n\n".to_owned());
                let mut ok = socket.write_all(head.as_bytes()).await.is_ok();
                for event in events {
                    let chunk = format!("{:x}\r\n{event}\r\n", event.len());
                    ok = ok
                        && socket.write_all(chunk.as_bytes()).await.is_ok()
                        && socket.flush().await.is_ok();
                    if !ok {
                        break;
                    }
                    tokio::time::sleep(gap).await;
                }
                ok = ok && socket.write_all(b"0\r\n\r\n").await.is_ok();
                if ok { &c.completed } else { &c.aborted }.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    (format!("http://{addr}"), counts)
}

/// A provider and route `slow` in front of `base`.
pub fn slow_route(base: &str) -> String {
    format!(
        r#"
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMProvider
metadata: {{name: slow, namespace: default}}
spec:
  type: openai-compatible
  baseURL: {base}
  models: [{{name: slow, pricing: {{input: "0", output: "0"}}}}]
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMRoute
metadata: {{name: old, namespace: default}}
spec:
  model: old
  backends: [{{providerRef: {{name: slow}}, model: slow}}]
"#
    )
}

/// A Gemini provider at `base` (the mock upstream) behind the embeddings route `emb`.
pub fn gemini_embeddings_route(base: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: key, namespace: default}}\nstringData: {{key: test-key}}\n---\napiVersion: llm.tollgate.dev/v1alpha1\nkind: LLMProvider\nmetadata: {{name: gem, namespace: default}}\nspec:\n  type: gemini\n  baseURL: {base}\n  auth: {{secretRefs: [{{name: key, key: key}}]}}\n  models: [{{name: gemini-embedding-001, pricing: {{input: \"0\", output: \"0\"}}}}]\n---\napiVersion: llm.tollgate.dev/v1alpha1\nkind: LLMRoute\nmetadata: {{name: emb, namespace: default}}\nspec:\n  model: emb\n  backends: [{{providerRef: {{name: gem}}, model: gemini-embedding-001}}]\n"
    )
}

/// A Python with the `openai` package, if any.
pub fn python_with_openai() -> Option<String> {
    python_with("openai")
}

/// A Python that can import `package`, if any.
pub fn python_with(package: &str) -> Option<String> {
    for python in ["python3", "python"] {
        let ok = std::process::Command::new(python)
            .args(["-c", &format!("import {package}")])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if ok {
            return Some(python.to_owned());
        }
    }
    None
}
