//! The attempt loop's edge cases through the running gateway: huge prompts, prompts no
//! window fits, adapters that cannot express a request, retries that could never be sent,
//! and streams cut after their first chunk.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a broken fixture should fail the test loudly

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use tollgate_gateway::{
    config::ConfigSource,
    mock_upstream::{Knobs, spawn},
    server::{self, Options},
};
use wiremock::{Mock, MockServer, ResponseTemplate, matchers::method};

/// The quickstart's shape: the in-process mock provider, a model with a context window.
fn mock_route(window: u32) -> String {
    format!(
        r#"
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMProvider
metadata: {{name: mock, namespace: default}}
spec:
  type: mock
  models: [{{name: mock-chat, contextWindow: {window}, pricing: {{input: "0", output: "0"}}}}]
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMRoute
metadata: {{name: chat, namespace: default}}
spec: {{model: chat, backends: [{{providerRef: {{name: mock}}, model: mock-chat}}]}}
"#
    )
}

/// The sum of a metric's samples whose line contains every one of `labels`.
fn metric(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && labels.iter().all(|want| l.contains(want)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Two 10 MB one-word prompts used to be tokenized on the async workers for many seconds,
/// stalling every request and `/healthz`. The gateway runs on its own two-worker runtime
/// here, so the client's runtime keeps time while the gateway's may not.
#[test]
fn huge_prompts_do_not_stall_other_requests() {
    let gateway_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &mock_route(128_000));
    let g = gateway_rt.block_on(async {
        server::start(Options {
            max_body: 32 * 1024 * 1024,
            recheck: Duration::from_secs(60),
            ..test_options(ConfigSource::Dir(dir.path().to_path_buf()))
        })
        .await
        .unwrap()
    });
    let client_rt = tokio::runtime::Runtime::new().unwrap();
    client_rt.block_on(async {
        let big = json!({"model": "chat", "messages": [{"role": "user", "content": "a".repeat(10_000_000)}]});
        let bigs: Vec<_> = (0..2)
            .map(|_| {
                let (url, body) = (api(&g, "/v1/chat/completions"), big.clone());
                tokio::spawn(async move {
                    let r = http().post(url).json(&body).send().await.unwrap();
                    (r.status().as_u16(), r.text().await.unwrap())
                })
            })
            .collect();
        // While the big prompts arrive and are sized, small requests keep being answered.
        // The bound is a liveness bound, thousands of times a normal answer's time; the
        // stall it guards against lasted many seconds.
        let probe = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        for _ in 0..20 {
            let r = probe.get(admin(&g, "/healthz")).send().await;
            assert!(
                r.is_ok_and(|r| r.status() == 200),
                "/healthz must answer while huge prompts are in flight"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for big in bigs {
            let (status, body) = big.await.unwrap();
            assert_eq!(status, 400, "{body}");
            assert!(body.contains("context_length_exceeded"), "{body}");
        }
    });
    gateway_rt.block_on(g.shutdown());
}

#[tokio::test]
async fn a_prompt_no_window_fits_is_refused_without_panic_mode() {
    let (g, _dir) = start_with(&mock_route(50)).await;
    let text = "many words of prompt ".repeat(100);
    let (status, _, body) = post(
        &g,
        "/v1/chat/completions",
        json!({"model": "chat", "messages": [{"role": "user", "content": text}]}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], "context_length_exceeded", "{body}");
    let metrics = admin_text(&g, "/metrics").await;
    assert_eq!(
        metric(&metrics, "tollgate_panic_mode_total", &[]),
        0.0,
        "a prompt too long is not an ejected backend: {metrics}"
    );
    // A prompt that fits is still served.
    let (status, _, body) = post(
        &g,
        "/v1/chat/completions",
        json!({"model": "chat", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    g.shutdown().await;
}

#[tokio::test]
async fn a_backend_that_cannot_express_the_request_is_skipped() {
    let yaml = r#"
apiVersion: v1
kind: Secret
metadata: {name: aws, namespace: default}
stringData: {AWS_ACCESS_KEY_ID: AKIDTEST, AWS_SECRET_ACCESS_KEY: secret}
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMProvider
metadata: {name: br, namespace: default}
spec:
  type: bedrock
  baseURL: http://127.0.0.1:9
  bedrock: {region: us-east-1}
  auth: {aws: {secretName: aws}}
  models: [{name: m, pricing: {input: "1", output: "2"}}]
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMProvider
metadata: {name: mock, namespace: default}
spec: {type: mock, models: [{name: m, pricing: {input: "0", output: "0"}}]}
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMRoute
metadata: {name: chat, namespace: default}
spec:
  model: chat
  backends: [{providerRef: {name: br}, model: m, weight: 1}, {providerRef: {name: mock}, model: m, weight: 1}]
"#;
    let (g, _dir) = start_with(yaml).await;
    let body = json!({"model": "chat", "response_format": {"type": "json_object"},
                      "messages": [{"role": "user", "content": "JSON please"}]});
    for _ in 0..6 {
        let (status, headers, text) = post(&g, "/v1/chat/completions", body.clone()).await;
        assert_eq!(
            status, 200,
            "Bedrock has no json_object mode; mock has: {text}"
        );
        assert_eq!(headers["x-tollgate-provider"], "default/mock");
        assert_eq!(
            headers["x-tollgate-attempts"], "1",
            "a refusal is not an attempt"
        );
    }
    g.shutdown().await;
}

#[tokio::test]
async fn a_backend_no_one_can_express_the_request_for_answers_400() {
    let yaml = r#"
apiVersion: v1
kind: Secret
metadata: {name: aws, namespace: default}
stringData: {AWS_ACCESS_KEY_ID: AKIDTEST, AWS_SECRET_ACCESS_KEY: secret}
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMProvider
metadata: {name: br, namespace: default}
spec:
  type: bedrock
  baseURL: http://127.0.0.1:9
  bedrock: {region: us-east-1}
  auth: {aws: {secretName: aws}}
  models: [{name: m, pricing: {input: "1", output: "2"}}]
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMRoute
metadata: {name: chat, namespace: default}
spec: {model: chat, backends: [{providerRef: {name: br}, model: m}]}
"#;
    let (g, _dir) = start_with(yaml).await;
    let (status, _, text) = post(
        &g,
        "/v1/chat/completions",
        json!({"model": "chat", "response_format": {"type": "json_object"},
               "messages": [{"role": "user", "content": "JSON please"}]}),
    )
    .await;
    assert_eq!(status, 400, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["error"]["param"], "response_format", "{text}");
    g.shutdown().await;
}

#[tokio::test]
async fn a_retry_the_cooled_only_key_could_not_send_is_neither_counted_nor_slept_for() {
    let limited = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).set_body_json(
            json!({"error": {"message": "slow down", "type": "requests", "code": "rate_limit_exceeded"}}),
        ))
        .mount(&limited)
        .await;
    let fallback = spawn(Knobs::default()).await.unwrap();
    let yaml = format!(
        r#"
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMProvider
metadata: {{name: a, namespace: default}}
spec: {{type: openai-compatible, baseURL: "{}", models: [{{name: m, pricing: {{input: "0", output: "0"}}}}]}}
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMProvider
metadata: {{name: b, namespace: default}}
spec: {{type: openai-compatible, baseURL: "{}/v1", models: [{{name: m, pricing: {{input: "0", output: "0"}}}}]}}
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMRoute
metadata: {{name: chat, namespace: default}}
spec:
  model: chat
  backends: [{{providerRef: {{name: a}}, model: m}}]
  fallbacks: [{{providerRef: {{name: b}}, model: m}}]
  retry: {{attempts: 3, on: [rate-limited]}}
"#,
        limited.uri(),
        fallback.url()
    );
    let (g, _dir) = start_with(&yaml).await;
    let (status, headers, body) = post(
        &g,
        "/v1/chat/completions",
        json!({"model": "chat", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["x-tollgate-fallback"], "true");
    assert_eq!(
        headers["x-tollgate-attempts"], "2",
        "one attempt on the limited key, one on the fallback"
    );
    let sent = limited.received_requests().await.unwrap().len();
    let metrics = admin_text(&g, "/metrics").await;
    let counted = metric(&metrics, "tollgate_retries_total", &["rate_limited"]);
    assert_eq!(
        counted as usize,
        sent - 1,
        "retries counted must be retries sent: {metrics}"
    );
    g.shutdown().await;
}

#[tokio::test]
async fn a_stream_cut_after_its_first_chunk_is_not_a_successful_attempt() {
    let up = spawn(Knobs {
        disconnect_after: Some(2),
        ..Knobs::default()
    })
    .await
    .unwrap();
    let yaml = format!(
        r#"
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMProvider
metadata: {{name: a, namespace: default}}
spec: {{type: openai-compatible, baseURL: "{}/v1", models: [{{name: m, pricing: {{input: "0", output: "0"}}}}]}}
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMRoute
metadata: {{name: chat, namespace: default}}
spec: {{model: chat, backends: [{{providerRef: {{name: a}}, model: m}}]}}
"#,
        up.url()
    );
    let (g, _dir) = start_with(&yaml).await;
    let (status, _, body) = post(
        &g,
        "/v1/chat/completions",
        json!({"model": "chat", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        !body.contains("[DONE]"),
        "the cut stream ends with an error: {body}"
    );
    let metrics = admin_text(&g, "/metrics").await;
    assert_eq!(
        metric(
            &metrics,
            "tollgate_attempts_total",
            &["outcome=\"success\""]
        ),
        0.0,
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "tollgate_attempts_total", &[]),
        1.0,
        "the attempt is recorded once, as the failure it was: {metrics}"
    );
    g.shutdown().await;
}
