//! Routing and resilience through the running gateway: weights, fallback on every kind of
//! backend failure, retries with Retry-After and a retry budget, passive health (ejection,
//! cooldown, readmission), panic mode, and a bounded chaos run.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a broken fixture should fail the test loudly

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use tollgate_gateway::mock_upstream::{Knobs, spawn};
use wiremock::{Mock, MockServer, ResponseTemplate, matchers::method};

fn completion(text: &str) -> Value {
    json!({"id": "c", "object": "chat.completion", "created": 1, "model": "m",
           "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
           "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}})
}

/// Providers `a` and `b` (keyless, OpenAI-compatible) and route `chat` with `route_spec`.
fn world(a: &str, b: &str, route_spec: &str) -> String {
    format!(
        r#"
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMProvider
metadata: {{name: a, namespace: default}}
spec: {{type: openai-compatible, baseURL: "{a}", models: [{{name: m, pricing: {{input: "0", output: "0"}}}}]}}
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMProvider
metadata: {{name: b, namespace: default}}
spec: {{type: openai-compatible, baseURL: "{b}", models: [{{name: m, pricing: {{input: "0", output: "0"}}}}]}}
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMRoute
metadata: {{name: chat, namespace: default}}
spec:
{route_spec}
"#
    )
}

const PRIMARY_WITH_FALLBACK: &str = "  model: chat\n  backends: [{providerRef: {name: a}, model: m}]\n  fallbacks: [{providerRef: {name: b}, model: m}]\n  retry: {attempts: 1}\n  timeouts: {connect: 500ms, firstToken: 400ms, total: 5s}";

fn chat_body() -> Value {
    json!({"model": "chat", "messages": [{"role": "user", "content": "hi"}]})
}

async fn ok_server(text: &str) -> MockServer {
    let s = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion(text)))
        .mount(&s)
        .await;
    s
}

async fn count(s: &MockServer) -> usize {
    s.received_requests().await.unwrap().len()
}

#[tokio::test]
async fn weights_split_traffic_as_configured() {
    let (a, b) = (ok_server("a").await, ok_server("b").await);
    let spec = "  model: chat\n  backends: [{providerRef: {name: a}, model: m, weight: 3}, {providerRef: {name: b}, model: m, weight: 1}]";
    let (g, _dir) = start_with(&world(&a.uri(), &b.uri(), spec)).await;
    for _ in 0..200 {
        assert_eq!(post(&g, "/v1/chat/completions", chat_body()).await.0, 200);
    }
    let (na, nb) = (count(&a).await, count(&b).await);
    println!("weights 3:1 over 200 requests: a={na} b={nb}");
    assert!((145..=155).contains(&na) && na + nb == 200, "a={na} b={nb}");
    g.shutdown().await;
}

#[tokio::test]
async fn a_slow_primary_times_out_to_the_fallback() {
    let slow = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(completion("slow"))
                .set_delay(Duration::from_secs(3)),
        )
        .mount(&slow)
        .await;
    let fb = ok_server("fallback").await;
    let (g, _dir) = start_with(&world(&slow.uri(), &fb.uri(), PRIMARY_WITH_FALLBACK)).await;
    let (status, headers, body) = post(&g, "/v1/chat/completions", chat_body()).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("fallback"));
    assert_eq!(
        (
            headers["x-tollgate-attempts"].to_str().unwrap(),
            headers["x-tollgate-fallback"].to_str().unwrap()
        ),
        ("2", "true")
    );
    g.shutdown().await;
}

#[tokio::test]
async fn a_429_falls_back_and_cools_the_key_for_its_retry_after() {
    let limited = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "30").set_body_json(json!({"error": {"message": "slow down", "type": "requests", "code": "rate_limit_exceeded"}})))
        .mount(&limited)
        .await;
    let fb = ok_server("fallback").await;
    let (g, _dir) = start_with(&world(&limited.uri(), &fb.uri(), PRIMARY_WITH_FALLBACK)).await;
    for _ in 0..5 {
        let (status, _, body) = post(&g, "/v1/chat/completions", chat_body()).await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(
        count(&limited).await,
        1,
        "the rate-limited key is cooled down for its Retry-After"
    );
    assert_eq!(count(&fb).await, 5);
    let backends: Value = admin_json(&g, "/debug/backends").await;
    let a = backends["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["id"].as_str().unwrap().starts_with("default/a"))
        .unwrap()
        .clone();
    assert_eq!(a["state"], "open", "{a}");
    g.shutdown().await;
}

#[tokio::test]
async fn retries_honour_retry_after_on_the_same_backend() {
    let up = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after-ms", "50").set_body_json(json!({"error": {"message": "later", "type": "requests", "code": "rate_limit_exceeded"}})))
        .up_to_n_times(1)
        .mount(&up)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion("second try")))
        .mount(&up)
        .await;
    let spec =
        "  model: chat\n  backends: [{providerRef: {name: a}, model: m}]\n  retry: {attempts: 2}";
    let (g, _dir) = start_with(&world(&up.uri(), "http://127.0.0.1:9", spec)).await;
    let (status, headers, body) = post(&g, "/v1/chat/completions", chat_body()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["x-tollgate-attempts"], "2");
    assert_eq!(count(&up).await, 2);
    let metrics = admin_text(&g, "/metrics").await;
    assert!(
        metrics.contains(r#"tollgate_retries_total{route="default/chat",reason="rate_limited"} 1"#),
        "{metrics}"
    );
    g.shutdown().await;
}

#[tokio::test]
async fn the_retry_budget_caps_extra_load_during_an_outage() {
    let down = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&down)
        .await;
    let spec = "  model: chat\n  backends: [{providerRef: {name: a}, model: m}]\n  retry: {attempts: 3, budgetPercent: 10, backoff: {initial: 1ms, max: 2ms}}";
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &world(&down.uri(), "http://127.0.0.1:9", spec));
    let mut health = test_health();
    health.failure_threshold = 100_000; // keep ejection out of this test
    let g = start_with_health(dir.path(), health).await;
    let requests = 60;
    for _ in 0..requests {
        assert_eq!(post(&g, "/v1/chat/completions", chat_body()).await.0, 502);
    }
    let upstream = count(&down).await;
    println!(
        "retry budget: {requests} requests caused {upstream} upstream calls (unbounded retries: {})",
        requests * 3
    );
    assert!(
        upstream < requests * 3 / 2,
        "retries were capped: {upstream}"
    );
    assert!(upstream > requests, "some retries happened: {upstream}");
    g.shutdown().await;
}

#[tokio::test]
async fn a_flapping_backend_is_ejected_and_readmitted_after_its_cooldown() {
    let flaky = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(3)
        .mount(&flaky)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion("recovered")))
        .mount(&flaky)
        .await;
    let fb = ok_server("fallback").await;
    // A cooldown long enough that a slow CI machine cannot outrun it between requests.
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        &world(&flaky.uri(), &fb.uri(), PRIMARY_WITH_FALLBACK),
    );
    let mut health = test_health();
    health.base_cooldown = Duration::from_millis(1500);
    let g = start_with_health(dir.path(), health).await;
    for _ in 0..3 {
        assert_eq!(post(&g, "/v1/chat/completions", chat_body()).await.0, 200);
    }
    assert_eq!(count(&flaky).await, 3);
    // Ejected (threshold 3): the next requests go straight to the fallback.
    let (_, headers, _) = post(&g, "/v1/chat/completions", chat_body()).await;
    assert_eq!(
        (
            headers["x-tollgate-attempts"].to_str().unwrap(),
            headers["x-tollgate-fallback"].to_str().unwrap()
        ),
        ("1", "true")
    );
    assert_eq!(count(&flaky).await, 3, "no traffic to an ejected backend");
    let metrics = admin_text(&g, "/metrics").await;
    assert!(metrics.contains("tollgate_ejections_total{"), "{metrics}");
    // After the cooldown a trial request readmits it.
    tokio::time::sleep(Duration::from_millis(1800)).await;
    let (status, headers, body) = post(&g, "/v1/chat/completions", chat_body()).await;
    assert_eq!(status, 200);
    assert!(body.contains("recovered"), "{body}");
    assert_eq!(headers["x-tollgate-fallback"], "false");
    let backends: Value = admin_json(&g, "/debug/backends").await;
    assert!(
        backends["backends"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["id"].as_str().unwrap().starts_with("default/a") && b["state"] == "closed"),
        "{backends}"
    );
    g.shutdown().await;
}

#[tokio::test]
async fn when_everything_is_ejected_the_soonest_backend_is_still_tried() {
    let flaky = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(3)
        .mount(&flaky)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion("back")))
        .mount(&flaky)
        .await;
    let spec =
        "  model: chat\n  backends: [{providerRef: {name: a}, model: m}]\n  retry: {attempts: 1}";
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &world(&flaky.uri(), "http://127.0.0.1:9", spec));
    let mut health = test_health();
    health.base_cooldown = Duration::from_secs(30);
    let g = start_with_health(dir.path(), health).await;
    for _ in 0..3 {
        assert_eq!(post(&g, "/v1/chat/completions", chat_body()).await.0, 503);
    }
    // The only backend is ejected; panic mode sends the request anyway instead of "no backend".
    let (status, _, body) = post(&g, "/v1/chat/completions", chat_body()).await;
    assert_eq!(status, 200, "{body}");
    let metrics = admin_text(&g, "/metrics").await;
    assert!(metrics.contains("tollgate_panic_mode_total{"), "{metrics}");
    g.shutdown().await;
}

#[tokio::test]
async fn chaos_the_primary_dies_and_returns_under_load_and_no_client_request_fails() {
    let mut primary = Some(spawn(Knobs::default()).await.unwrap());
    let primary_addr = primary.as_ref().unwrap().addr;
    let fallback = spawn(Knobs::default()).await.unwrap();
    let spec = "  model: chat\n  backends: [{providerRef: {name: a}, model: m}]\n  fallbacks: [{providerRef: {name: b}, model: m}]\n  retry: {attempts: 1}\n  timeouts: {connect: 300ms, firstToken: 2s, total: 5s}";
    let (g, _dir) = start_with(&world(
        &format!("{}/v1", primary.as_ref().unwrap().url()),
        &format!("{}/v1", fallback.url()),
        spec,
    ))
    .await;
    let url = api(&g, "/v1/chat/completions");
    let client = http();
    let (mut ok, mut failed, mut fell_back) = (0usize, 0usize, 0usize);
    let started = tokio::time::Instant::now();
    for i in 0..300 {
        if started.elapsed() > Duration::from_secs(60) {
            break;
        }
        if i == 80
            && let Some(p) = primary.take()
        {
            p.shutdown().await;
        }
        if i == 200 {
            primary = Some(
                tollgate_gateway::mock_upstream::spawn_on(primary_addr, Knobs::default())
                    .await
                    .unwrap(),
            );
        }
        let r = client.post(&url).json(&json!({"model": "chat", "stream": i % 2 == 0, "messages": [{"role": "user", "content": "chaos"}]})).send().await.unwrap();
        let fb = r
            .headers()
            .get("x-tollgate-fallback")
            .is_some_and(|v| v == "true");
        let status = r.status();
        let text = r.text().await.unwrap();
        if status == 200 && !text.contains("\"error\"") {
            ok += 1;
        } else {
            failed += 1;
        }
        fell_back += usize::from(fb);
    }
    println!(
        "chaos: {} requests, {failed} failed, {fell_back} answered by the fallback",
        ok + failed
    );
    assert_eq!(failed, 0);
    assert!(fell_back > 0, "the outage was noticed");
    if let Some(p) = primary {
        p.shutdown().await;
    }
    g.shutdown().await;
}

#[tokio::test]
async fn exhausted_timeouts_give_a_clear_504_and_a_silent_stream_is_cut() {
    let slow = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(completion("late"))
                .set_delay(Duration::from_secs(3)),
        )
        .mount(&slow)
        .await;
    let spec = "  model: chat\n  backends: [{providerRef: {name: a}, model: m}]\n  retry: {attempts: 1}\n  timeouts: {firstToken: 300ms}";
    let (g, _dir) = start_with(&world(&slow.uri(), "http://127.0.0.1:9", spec)).await;
    let (status, _, body) = post(&g, "/v1/chat/completions", chat_body()).await;
    assert_eq!(status, 504, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"]["code"],
        "upstream_timeout"
    );
    g.shutdown().await;

    // A stream whose chunks stop coming for longer than `idle` ends with an error event.
    let (base, _) = slow_stream_server(5, Duration::from_millis(700)).await;
    let yaml = slow_route(&base).replace(
        "  model: old\n",
        "  model: old\n  timeouts: {idle: 250ms}\n",
    );
    let (g, _dir) = start_with(&yaml).await;
    let (status, _, body) = post(
        &g,
        "/v1/chat/completions",
        json!({"model": "old", "stream": true, "messages": [{"role": "user", "content": "go"}]}),
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.contains("w0"), "{body}");
    assert!(
        body.contains("upstream_timeout") && !body.contains("[DONE]"),
        "{body}"
    );
    g.shutdown().await;
}

#[tokio::test]
async fn keys_are_balanced_and_each_keys_quota_is_honoured() {
    let (a, b) = (ok_server("a").await, ok_server("fallback").await);
    let yaml = format!(
        r#"
apiVersion: v1
kind: Secret
metadata: {{name: keys, namespace: default}}
stringData: {{one: key-one, two: key-two}}
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMProvider
metadata: {{name: a, namespace: default}}
spec:
  type: openai-compatible
  baseURL: "{}"
  auth: {{secretRefs: [{{name: keys, key: one}}, {{name: keys, key: two}}]}}
  limits: {{requestsPerMinute: 1}}
  models: [{{name: m, pricing: {{input: "0", output: "0"}}}}]
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMProvider
metadata: {{name: b, namespace: default}}
spec: {{type: openai-compatible, baseURL: "{}", models: [{{name: m, pricing: {{input: "0", output: "0"}}}}]}}
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMRoute
metadata: {{name: chat, namespace: default}}
spec:
  model: chat
  backends: [{{providerRef: {{name: a}}, model: m}}]
  fallbacks: [{{providerRef: {{name: b}}, model: m}}]
"#,
        a.uri(),
        b.uri()
    );
    let (g, _dir) = start_with(&yaml).await;
    for _ in 0..3 {
        assert_eq!(post(&g, "/v1/chat/completions", chat_body()).await.0, 200);
    }
    let mut keys: Vec<String> = a
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.headers["authorization"].to_str().unwrap().to_owned())
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        vec!["Bearer key-one", "Bearer key-two"],
        "one request per key per minute"
    );
    assert_eq!(
        count(&b).await,
        1,
        "with both keys over quota, the fallback answers"
    );
    g.shutdown().await;
}

#[tokio::test]
async fn a_prompt_too_long_for_a_models_context_window_goes_to_one_that_fits() {
    let (small, large) = (ok_server("small").await, ok_server("large").await);
    let spec = "  model: chat\n  backends: [{providerRef: {name: a}, model: m}]\n  fallbacks: [{providerRef: {name: b}, model: m}]";
    let yaml = world(&small.uri(), &large.uri(), spec).replacen(
        "models: [{name: m, ",
        "models: [{name: m, contextWindow: 50, ",
        1,
    );
    let (g, _dir) = start_with(&yaml).await;
    let (status, _, body) = post(&g, "/v1/chat/completions", chat_body()).await;
    assert_eq!(status, 200);
    assert!(
        body.contains("small"),
        "a short prompt fits the small window: {body}"
    );
    let long = "word ".repeat(200);
    let (status, headers, body) = post(
        &g,
        "/v1/chat/completions",
        json!({"model": "chat", "messages": [{"role": "user", "content": long}]}),
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.contains("large"), "{body}");
    assert_eq!(
        headers["x-tollgate-attempts"], "1",
        "the small model was skipped, not tried"
    );
    assert_eq!(count(&small).await, 1);
    g.shutdown().await;
}
