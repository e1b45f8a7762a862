//! Provider keys never reach clients: upstream error bodies that echo the key (any status,
//! not only 401) are scrubbed before they are quoted, and a YAML error in a `-f` manifest
//! holding a Secret is reported without its text in `/config/status`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a broken fixture should fail the test loudly

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use tollgate_gateway::{
    config::ConfigSource,
    server::{self, Options},
};
use wiremock::{Mock, MockServer, ResponseTemplate, matchers::path};

const KEY: &str = "sk-live-TOPSECRET-0123456789";

fn route(base: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: k, namespace: default}}\nstringData: {{key: {KEY}}}\n---\napiVersion: llm.tollgate.dev/v1alpha1\nkind: LLMProvider\nmetadata: {{name: p, namespace: default}}\nspec: {{type: openai-compatible, baseURL: \"{base}\", auth: {{secretRefs: [{{name: k, key: key}}]}}, models: [{{name: m, pricing: {{input: \"0\", output: \"0\"}}}}]}}\n---\napiVersion: llm.tollgate.dev/v1alpha1\nkind: LLMRoute\nmetadata: {{name: r, namespace: default}}\nspec: {{model: r, backends: [{{providerRef: {{name: p}}, model: m}}]}}\n"
    )
}

#[tokio::test]
async fn upstream_errors_that_echo_the_key_are_scrubbed_for_every_status() {
    for status in [400, 403, 500] {
        let up = MockServer::start().await;
        Mock::given(path("/chat/completions"))
            .respond_with(ResponseTemplate::new(status).set_body_json(json!({
                "error": {"message": format!("request with key {KEY} refused"), "type": "invalid_request_error"}
            })))
            .mount(&up)
            .await;
        let (g, _dir) = start_with(&route(&up.uri())).await;
        let (code, _, body) = post(
            &g,
            "/v1/chat/completions",
            json!({"model": "r", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
        assert!(code >= 400, "{status}: {code} {body}");
        assert!(!body.contains("TOPSECRET"), "{status}: {body}");
        assert!(body.contains("refused"), "the rest is still quoted: {body}");
        g.shutdown().await;
    }
}

#[tokio::test]
async fn a_yaml_error_next_to_a_secret_is_not_quoted_in_config_status() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("all.yaml");
    std::fs::write(&file, MOCK).unwrap();
    let g = server::start(Options {
        ..test_options(ConfigSource::Manifests(vec![file.clone()]))
    })
    .await
    .unwrap();
    std::fs::write(
        &file,
        format!("{MOCK}---\napiVersion: v1\nkind: Secret\nmetadata: {{name: k}}\nstringData:\n  key: {KEY}: \"oops\n"),
    )
    .unwrap();
    let mut status = Value::Null;
    for _ in 0..50 {
        status = admin_json(&g, "/config/status").await;
        if status["lastError"].is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let error = status["lastError"].as_str().unwrap_or_default();
    assert!(error.contains("line"), "{status}");
    assert!(!error.contains("TOPSECRET"), "{status}");
    g.shutdown().await;
}
