//! The official OpenAI Python SDK's Responses API (`client.responses.create` and
//! `client.responses.stream`) against the real gateway: the in-process mock, Anthropic and
//! Gemini (translated) and OpenAI (passed through), all on loopback. Needs `python3` with the
//! `openai` package: CI installs it; elsewhere the test skips with a message (and fails under
//! `CI=true`, so CI cannot pass by skipping).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a broken fixture should fail the test loudly

mod common;

use std::process::Command;

use common::*;

fn python_with_openai() -> Option<String> {
    ["python3", "python"]
        .into_iter()
        .find(|python| {
            Command::new(python)
                .args(["-c", "import openai"])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .map(str::to_owned)
}

/// A provider of `kind` at `base` named `name`, behind the route `name`.
fn route(name: &str, kind: &str, base: &str, model: &str) -> String {
    format!(
        "---\napiVersion: llm.tollgate.dev/v1alpha1\nkind: LLMProvider\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  type: {kind}\n  baseURL: {base}\n  auth: {{secretRefs: [{{name: key, key: key}}]}}\n  models: [{{name: {model}, pricing: {{input: \"1\", output: \"2\"}}}}]\n---\napiVersion: llm.tollgate.dev/v1alpha1\nkind: LLMRoute\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  model: {name}\n  backends: [{{providerRef: {{name: {name}}}, model: {model}}}]\n"
    )
}

#[tokio::test]
async fn the_openai_python_sdk_responses_api_works_against_the_gateway() {
    let Some(python) = python_with_openai() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must provide python3 with the openai package (see .ci/run)"
        );
        println!(
            "SKIPPED: responses_sdk: no python3 with the `openai` package; `pip install openai` to run it"
        );
        return;
    };
    let up = tollgate_gateway::mock_upstream::spawn(Default::default())
        .await
        .unwrap();
    let url = up.url();
    let yaml = format!(
        "{MOCK}\n---\napiVersion: v1\nkind: Secret\nmetadata: {{name: key, namespace: default}}\nstringData: {{key: test-key}}\n{}{}{}",
        route("claude", "anthropic", &url, "claude-haiku-4-5"),
        route("gem", "gemini", &url, "gemini-2.5-flash"),
        route("gpt", "openai", &format!("{url}/v1"), "gpt-4.1"),
    );
    let (g, _dir) = start_with(&yaml).await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/sdk/openai_responses_sdk.py"
    );
    let base = api(&g, "/v1");
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .arg(base)
            .args(["demo", "claude", "gem", "gpt:passthrough"])
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "SDK Responses checks failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("openai SDK Responses checks passed"),
        "{stdout}"
    );
    g.shutdown().await;
}
