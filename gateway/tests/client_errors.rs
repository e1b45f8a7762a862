//! What a client sees when its request is wrong: OpenAI-shaped JSON with the right status,
//! naming the field in the API's words (not the gateway's Rust types), and quoting only a
//! bounded amount of what the client sent.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a broken fixture should fail the test loudly

mod common;

use common::*;
use serde_json::{Value, json};

#[tokio::test]
async fn a_wrongly_shaped_field_is_named_with_its_path_and_param() {
    let (g, _dir) = start_with(MOCK).await;
    let (status, _, body) = post(
        &g,
        "/v1/chat/completions",
        json!({"model": "demo", "messages": [{"role": "user", "content": 5}]}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"]["param"], "messages[0].content", "{body}");
    assert_eq!(error["error"]["type"], "invalid_request_error");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains("messages[0].content"), "{message}");
    assert!(
        !message.contains("untagged") && !message.contains("enum Content"),
        "{message}"
    );

    let (status, _, body) = post(
        &g,
        "/v1/embeddings",
        json!({"model": "demo", "input": "x", "dimensions": "many"}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"]["param"], "dimensions", "{body}");
    g.shutdown().await;
}

#[tokio::test]
async fn a_huge_model_name_is_not_echoed_whole() {
    let (g, _dir) = start_with(MOCK).await;
    let model = "m".repeat(900 * 1024);
    let (status, _, body) = post(
        &g,
        "/v1/chat/completions",
        json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(status, 404);
    assert!(body.len() < 4096, "a {} byte answer", body.len());
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"]["code"], "model_not_found");
    g.shutdown().await;
}

#[tokio::test]
async fn a_wrong_method_is_an_openai_shaped_405() {
    let (g, _dir) = start_with(MOCK).await;
    let r = http()
        .get(api(&g, "/v1/chat/completions"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    let error: Value = r.json().await.unwrap();
    assert_eq!(error["error"]["type"], "invalid_request_error", "{error}");
    assert_eq!(error["error"]["code"], "method_not_allowed", "{error}");
    g.shutdown().await;
}

#[tokio::test]
async fn a_connect_failure_does_not_reveal_the_upstream_url() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let yaml = format!(
        "apiVersion: llm.tollgate.dev/v1alpha1\nkind: LLMProvider\nmetadata: {{name: p, namespace: default}}\nspec: {{type: openai-compatible, baseURL: \"http://127.0.0.1:{port}/internal-xyz\", models: [{{name: m, pricing: {{input: \"0\", output: \"0\"}}}}]}}\n---\napiVersion: llm.tollgate.dev/v1alpha1\nkind: LLMRoute\nmetadata: {{name: r, namespace: default}}\nspec: {{model: r, backends: [{{providerRef: {{name: p}}, model: m}}]}}\n"
    );
    let (g, _dir) = start_with(&yaml).await;
    let (status, _, body) = post(
        &g,
        "/v1/chat/completions",
        json!({"model": "r", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("upstream_unreachable"), "{body}");
    assert!(
        !body.contains("internal-xyz") && !body.contains(&port.to_string()),
        "{body}"
    );
    g.shutdown().await;
}

#[tokio::test]
async fn mock_embeddings_are_bounded_in_inputs() {
    let (g, _dir) = start_with(MOCK).await;
    let inputs = vec!["a"; tollgate_gateway::providers::mock::MAX_EMBEDDING_INPUTS + 1];
    let (status, _, body) = post(
        &g,
        "/v1/embeddings",
        json!({"model": "demo", "input": inputs}),
    )
    .await;
    assert_eq!(status, 400, "{}", &body[..body.len().min(300)]);
    assert!(body.contains("at most 2048"), "{body}");
    g.shutdown().await;
}

#[tokio::test]
async fn an_empty_manifest_does_not_replace_a_good_config() {
    use std::time::Duration;
    use tollgate_gateway::{
        config::ConfigSource,
        server::{self, Options},
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gateway.yaml");
    std::fs::write(&file, MOCK).unwrap();
    let g = server::start(Options {
        ..test_options(ConfigSource::Manifests(vec![file.clone()]))
    })
    .await
    .unwrap();
    let good = admin_json(&g, "/config/status").await["hash"].clone();
    assert!(good.is_string());
    std::fs::write(&file, "# nothing here yet\n").unwrap();
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
            .contains("empty config"),
        "{status}"
    );
    assert_eq!(status["hash"], good, "the good config keeps serving");
    let (code, _, _) = post(
        &g,
        "/v1/chat/completions",
        json!({"model": "demo", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(code, 200);
    g.shutdown().await;
}
