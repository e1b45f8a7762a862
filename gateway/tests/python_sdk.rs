//! The official OpenAI Python SDK against the real gateway (chat, stream, tool calls,
//! embeddings from the mock and from Gemini with the SDK's default base64 encoding, errors). Needs `python3` with the `openai` package: CI installs it; elsewhere
//! the test skips with a message (and fails under `CI=true`, so CI cannot pass by skipping).

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
