//! The official OpenAI and Anthropic Python SDKs against the real gateway. OpenAI: chat,
//! stream, tool calls, embeddings from the mock and from Gemini with the SDK's default base64
//! encoding, errors. Anthropic (`/v1/messages`): text, streams, tool calls and results, token
//! counting, against the in-process mock, an OpenAI-compatible backend and an Anthropic
//! backend (both the mock upstream). Needs `python3` with the `openai` and `anthropic`
//! packages: CI installs them; elsewhere the tests skip with a message (and fail under
//! `CI=true`, so CI cannot pass by skipping).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a broken fixture should fail the test loudly

mod common;

use std::process::Command;

use common::*;

#[tokio::test]
async fn the_openai_python_sdk_works_against_the_gateway() {
    let Some(python) = python_with_openai() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must provide python3 with the openai package (see .ci/run)"
        );
        println!(
            "SKIP python_sdk: no python3 with the `openai` package; `pip install openai` to run it"
        );
        return;
    };
    // Gemini answers embeddings as floats; the SDK asks for base64 by default.
    let gemini = tollgate_gateway::mock_upstream::spawn(Default::default())
        .await
        .unwrap();
    let (g, _dir) = start_with(&format!(
        "{MOCK}\n---\n{}",
        gemini_embeddings_route(&gemini.url())
    ))
    .await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/openai_sdk.py");
    let base = api(&g, "/v1");
    let output =
        tokio::task::spawn_blocking(move || Command::new(python).arg(script).arg(base).output())
            .await
            .unwrap()
            .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "SDK checks failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("openai SDK checks passed"), "{stdout}");
    g.shutdown().await;
}

/// An OpenAI-compatible route `compat` and an Anthropic route `claude`, both on the mock
/// upstream at `base`.
fn sdk_routes(base: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Secret
metadata: {{name: up-keys, namespace: default}}
stringData: {{key: test-key}}
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMProvider
metadata: {{name: compat, namespace: default}}
spec:
  type: openai-compatible
  baseURL: {base}/v1
  auth: {{secretRefs: [{{name: up-keys, key: key}}]}}
  models: [{{name: llama-3.1-8b, pricing: {{input: "0.1", output: "0.2"}}}}]
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMProvider
metadata: {{name: anthropic, namespace: default}}
spec:
  type: anthropic
  baseURL: {base}
  auth: {{secretRefs: [{{name: up-keys, key: key}}]}}
  models: [{{name: claude-haiku-4-5, pricing: {{input: "1", output: "5"}}}}]
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMRoute
metadata: {{name: compat, namespace: default}}
spec:
  model: compat
  backends: [{{providerRef: {{name: compat}}, model: llama-3.1-8b}}]
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMRoute
metadata: {{name: claude, namespace: default}}
spec:
  model: claude
  backends: [{{providerRef: {{name: anthropic}}, model: claude-haiku-4-5}}]
"#
    )
}

#[tokio::test]
async fn the_anthropic_python_sdk_works_against_the_gateway() {
    let Some(python) = python_with("anthropic") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must provide python3 with the anthropic package (see .ci/run)"
        );
        println!(
            "SKIP python_sdk: no python3 with the `anthropic` package; `pip install anthropic` to run it"
        );
        return;
    };
    let upstream = tollgate_gateway::mock_upstream::spawn(Default::default())
        .await
        .unwrap();
    let (g, _dir) = start_with(&format!("{MOCK}\n---\n{}", sdk_routes(&upstream.url()))).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/anthropic_sdk.py");
    let base = api(&g, "");
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .arg(base)
            .args(["demo", "compat", "claude"])
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "SDK checks failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("anthropic SDK checks passed"), "{stdout}");
    g.shutdown().await;
}
