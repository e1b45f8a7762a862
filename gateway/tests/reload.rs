//! Hot reload: a kubelet-style swap of the config directory while a stream is in flight.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a broken fixture should fail the test loudly

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

async fn models(g: &tollgate_gateway::server::Running) -> Vec<String> {
    let v: Value = http()
        .get(api(g, "/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_swap_mid_stream_loses_no_request_and_new_requests_use_the_new_routes() {
    let (base, _) = slow_stream_server(10, Duration::from_millis(80)).await;
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &slow_route(&base));
    let g = start(dir.path()).await;
    let first_hash = admin_json(&g, "/config/status").await["hash"].clone();

    let url = api(&g, "/v1/chat/completions");
    let in_flight = tokio::spawn(async move {
        let r = http().post(url).json(&json!({"model": "old", "stream": true, "messages": [{"role": "user", "content": "go"}]})).send().await.unwrap();
        r.text().await.unwrap()
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    write_config(dir.path(), MOCK);

    let mut swapped = false;
    for _ in 0..50 {
        if models(&g).await == vec!["demo", "gpt-4o-mini"] {
            swapped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(swapped, "the new config was picked up within 5s");
    let body = in_flight.await.unwrap();
    assert!(
        body.ends_with("data: [DONE]\n\n"),
        "the in-flight stream finished on its old config: {body}"
    );
    assert_eq!(
        streamed_text(&body),
        (0..10).map(|i| format!("w{i} ")).collect::<String>()
    );

    let (status, _, _) = post(
        &g,
        "/v1/chat/completions",
        json!({"model": "demo", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _, _) = post(
        &g,
        "/v1/chat/completions",
        json!({"model": "old", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(status, 404, "the old route is gone");
    let status: Value = admin_json(&g, "/config/status").await;
    assert_ne!(status["hash"], first_hash);
    g.shutdown().await;
}

#[tokio::test]
async fn an_invalid_config_is_rejected_and_the_last_good_one_keeps_serving() {
    let (g, dir) = start_with(MOCK).await;
    let good = admin_json(&g, "/config/status").await["hash"].clone();
    write_raw_config(
        dir.path(),
        r#"{"version":1,"providers":[],"routes":[{"id":"x/y","model":"m","backends":[{"provider":"x/missing","model":"m","timeouts":{"connectMs":1,"firstTokenMs":1,"idleMs":1,"totalMs":1},"weight":1,"priority":0}],"retry":{"attempts":1,"backoffInitialMs":1,"backoffMaxMs":1,"on":[],"budgetPercent":0}}],"budgets":[],"sources":[]}"#,
    );
    let mut status = Value::Null;
    for _ in 0..50 {
        status = admin_json(&g, "/config/status").await;
        if status["lastError"].is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        status["lastError"]
            .as_str()
            .unwrap_or_default()
            .contains("x/missing does not exist"),
        "{status}"
    );
    assert_eq!(status["hash"], good, "still serving the last good config");
    let (code, _, _) = post(
        &g,
        "/v1/chat/completions",
        json!({"model": "demo", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(code, 200);
    let metrics = admin_text(&g, "/metrics").await;
    assert!(
        metrics.contains(r#"tollgate_config_reloads_total{result="rejected"}"#),
        "{metrics}"
    );
    g.shutdown().await;
}

#[tokio::test]
async fn a_config_naming_a_key_the_secret_volume_lacks_yet_waits_instead_of_failing() {
    let (g, dir) = start_with(MOCK).await;
    let good = admin_json(&g, "/config/status").await["hash"].clone();
    // The ConfigMap volume is updated before the Secret volume, as kubelet may do.
    let yaml = format!(
        "{MOCK}---\napiVersion: v1\nkind: Secret\nmetadata: {{name: k, namespace: default}}\nstringData: {{key: new-key}}\n---\napiVersion: llm.tollgate.dev/v1alpha1\nkind: LLMProvider\nmetadata: {{name: p, namespace: default}}\nspec: {{type: openai-compatible, baseURL: \"http://127.0.0.1:9/v1\", auth: {{secretRefs: [{{name: k, key: key}}]}}, models: [{{name: m, pricing: {{input: \"0\", output: \"0\"}}}}]}}\n"
    );
    let mut m = tollgate_crds::manifests::Manifests::default();
    let mut errors = Vec::new();
    m.add_text(std::path::Path::new("t.yaml"), &yaml, &mut errors);
    let compiled = m
        .compile(tollgate_crds::catalog::PriceCatalogue::builtin().unwrap())
        .unwrap();
    write_raw_config(dir.path(), &compiled.config.to_json().unwrap());
    let mut status = Value::Null;
    for _ in 0..50 {
        status = admin_json(&g, "/config/status").await;
        if status["waitingFor"].is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        status["waitingFor"]
            .as_str()
            .unwrap_or_default()
            .contains("default__k__key"),
        "{status}"
    );
    assert!(status["lastError"].is_null(), "not a rejection: {status}");
    assert_eq!(status["hash"], good, "still serving the previous config");

    // The Secret volume catches up.
    tollgate_crds::mount::write_atomic(
        &dir.path().join("secrets"),
        &m.gateway_secret_data(&compiled.config),
        0o600,
    )
    .unwrap();
    for _ in 0..50 {
        status = admin_json(&g, "/config/status").await;
        if status["hash"] != good {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_ne!(status["hash"], good, "{status}");
    assert!(status["waitingFor"].is_null(), "{status}");
    g.shutdown().await;
}

#[tokio::test]
async fn a_rotated_key_is_picked_up_without_a_restart() {
    use wiremock::{Mock, MockServer, ResponseTemplate, matchers::header};
    let up = MockServer::start().await;
    let ok = json!({"id": "c", "object": "chat.completion", "created": 1, "model": "m", "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}]});
    Mock::given(header("authorization", "Bearer new-key"))
        .respond_with(ResponseTemplate::new(200).set_body_json(ok))
        .mount(&up)
        .await;
    Mock::given(header("authorization", "Bearer old-key"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&up)
        .await;
    let yaml = |key: &str| {
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: k, namespace: default}}\nstringData: {{key: {key}}}\n---\napiVersion: llm.tollgate.dev/v1alpha1\nkind: LLMProvider\nmetadata: {{name: p, namespace: default}}\nspec: {{type: openai-compatible, baseURL: \"{}\", auth: {{secretRefs: [{{name: k, key: key}}]}}, models: [{{name: m, pricing: {{input: \"0\", output: \"0\"}}}}]}}\n---\napiVersion: llm.tollgate.dev/v1alpha1\nkind: LLMRoute\nmetadata: {{name: r, namespace: default}}\nspec: {{model: r, backends: [{{providerRef: {{name: p}}, model: m}}]}}\n",
            up.uri()
        )
    };
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &yaml("old-key"));
    let g = start(dir.path()).await;
    let req = json!({"model": "r", "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(
        post(&g, "/v1/chat/completions", req.clone()).await.0,
        502,
        "our key was refused: not the client's fault"
    );
    write_config(dir.path(), &yaml("new-key"));
    let mut code = 0;
    for _ in 0..50 {
        code = post(&g, "/v1/chat/completions", req.clone()).await.0;
        if code == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(code, 200);
    g.shutdown().await;
}
