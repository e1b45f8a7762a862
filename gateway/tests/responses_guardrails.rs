//! Route guardrails on the Responses door over real HTTP on 127.0.0.1: a blocked prompt never
//! reaches the provider; a redacted prompt (instructions, input items, tool output and the
//! stored conversation) reaches a translated backend and an OpenAI passthrough backend
//! redacted; a JSON answer is redacted for the client and in the stored response; an OpenAI
//! stream, which passes through unchecked, is refused on a route that checks answers.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a broken fixture should fail the test loudly

mod common;

use common::*;
use serde_json::{Value, json};
use tollgate_gateway::{
    mock_upstream::{Knobs, MockServer, spawn},
    server::Running,
};

const EMAIL: &str = "jane.doe@example.com";
const KEY: &str = "sk-proj-AbCdEfGhIjKlMnOpQrStUvWx0123";
const MAIL: &str = "[REDACTED:pii.email]";

/// A route `guarded` with one backend of provider type `kind` on the mock upstream.
fn manifests(kind: &str, base: &str, guardrails: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Secret
metadata: {{name: key, namespace: default}}
stringData: {{key: test-key}}
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMProvider
metadata: {{name: up, namespace: default}}
spec:
  type: {kind}
  baseURL: {base}
  auth: {{secretRefs: [{{name: key, key: key}}]}}
  models: [{{name: up-model, pricing: {{input: "1", output: "2"}}}}]
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMRoute
metadata: {{name: guarded, namespace: default}}
spec:
  model: guarded
  backends: [{{providerRef: {{name: up}}, model: up-model}}]
  guardrails: {guardrails}
"#
    )
}

/// The mock upstream answering `reply`, and a gateway routing `guarded` to it as `kind`.
async fn setup(
    kind: &str,
    guardrails: &str,
    reply: &str,
) -> (MockServer, Running, tempfile::TempDir) {
    let up = spawn(Knobs {
        reply: reply.into(),
        ..Knobs::default()
    })
    .await
    .unwrap();
    let base = format!("{}/v1", up.url());
    let (g, dir) = start_with(&manifests(kind, &base, guardrails)).await;
    (up, g, dir)
}

fn text_of(response: &Value) -> String {
    response["output"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "message")
        .flat_map(|i| i["content"].as_array().unwrap().clone())
        .map(|c| c["text"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_blocked_prompt_gets_400_naming_the_rule_and_never_reaches_the_provider() {
    for kind in ["openai-compatible", "openai"] {
        let (up, g, _dir) = setup(kind, "{pii: {secrets: block}}", "ok").await;
        // The secret hides in a tool's output, one of the items the model reads.
        let input = json!([
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "What did the tool say?"}]},
            {"type": "function_call", "call_id": "c1", "name": "lookup", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": format!("the key is {KEY}")},
        ]);
        let (status, _, body) = post(
            &g,
            "/v1/responses",
            json!({"model": "guarded", "input": input}),
        )
        .await;
        assert_eq!(status, 400, "{kind}: {body}");
        let error: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(error["error"]["code"], "content_policy_violation");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains("pii.secrets"), "{message}");
        assert!(!body.contains(KEY) && !body.contains("AbCdEf"), "{body}");
        assert_eq!(up.requests(), 0, "{kind}: the provider was not called");
        g.shutdown().await;
    }
}

#[tokio::test]
async fn a_redacted_prompt_reaches_a_translated_backend_redacted() {
    let (up, g, _dir) = setup("openai-compatible", "{pii: {email: redact}}", "ok").await;
    let request = json!({"model": "guarded", "instructions": format!("Reply to {EMAIL}."),
        "input": [{"role": "user", "content": [{"type": "input_text", "text": format!("I am {EMAIL}")}]}]});
    let (status, _, body) = post(&g, "/v1/responses", request).await;
    assert_eq!(status, 200, "{body}");
    let sent = up.last_request().unwrap().body;
    assert_eq!(sent["messages"][0]["content"], format!("Reply to {MAIL}."));
    assert_eq!(
        sent["messages"][1]["content"][0]["text"],
        format!("I am {MAIL}")
    );
    assert!(!sent.to_string().contains(EMAIL), "{sent}");
    // The stored conversation holds the redacted prompt: continuing it sends no address.
    let first: Value = serde_json::from_str(&body).unwrap();
    let (status, _, body) = post(
        &g,
        "/v1/responses",
        json!({"model": "guarded", "previous_response_id": first["id"], "input": "and then?"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let sent = up.last_request().unwrap().body;
    assert_eq!(
        sent["messages"][0]["content"][0]["text"],
        format!("I am {MAIL}")
    );
    assert!(!sent.to_string().contains(EMAIL), "{sent}");
    g.shutdown().await;
}

#[tokio::test]
async fn the_stored_conversation_is_checked_when_it_is_sent_again() {
    // Answers are not checked here, so the stored answer keeps the address; the prompt
    // check redacts it when `previous_response_id` replays it to the backend.
    let reply = format!("Write to {EMAIL} today");
    let (up, g, _dir) = setup("openai-compatible", "{pii: {email: redact}}", &reply).await;
    let (status, _, body) = post(
        &g,
        "/v1/responses",
        json!({"model": "guarded", "input": "whom do I write to?"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let first: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(text_of(&first), reply);
    let (status, _, body) = post(
        &g,
        "/v1/responses",
        json!({"model": "guarded", "previous_response_id": first["id"], "input": "thanks"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let sent = up.last_request().unwrap().body;
    assert_eq!(sent["messages"][1]["role"], "assistant");
    assert_eq!(
        sent["messages"][1]["content"],
        format!("Write to {MAIL} today")
    );
    g.shutdown().await;
}

#[tokio::test]
async fn a_redacted_prompt_reaches_an_openai_passthrough_backend_with_every_other_field() {
    let (up, g, _dir) = setup("openai", "{pii: {email: redact}}", "ok").await;
    let request = json!({
        "model": "guarded", "instructions": "Be brief.", "previous_response_id": "resp_at_openai",
        "input": [{"role": "user", "content": [{"type": "input_text", "text": format!("I am {EMAIL}")},
            {"type": "input_image", "image_url": "https://example.com/a.png"}]}],
        "tools": [{"type": "web_search"}], "include": ["reasoning.encrypted_content"],
        "metadata": {"k": "v"}, "x_future_field": {"nested": [1, 2]},
    });
    let (status, _, body) = post(&g, "/v1/responses", request.clone()).await;
    assert_eq!(status, 200, "{body}");
    let sent = up.last_request().unwrap().body;
    let mut expected = request;
    expected["model"] = json!("up-model");
    expected["input"][0]["content"][0]["text"] = json!(format!("I am {MAIL}"));
    assert_eq!(sent, expected, "only the address and the model changed");

    // An unredacted request goes as it came.
    let clean = json!({"model": "guarded", "input": "Hello", "x_future_field": 1});
    let (status, _, body) = post(&g, "/v1/responses", clean.clone()).await;
    assert_eq!(status, 200, "{body}");
    let mut expected = clean;
    expected["model"] = json!("up-model");
    assert_eq!(up.last_request().unwrap().body, expected);
    g.shutdown().await;
}

#[tokio::test]
async fn json_answers_are_redacted_for_the_client_and_in_the_stored_response() {
    let reply = format!("Write to {EMAIL} or call +1 415 555 2671 today");
    let expected = format!("Write to {MAIL} or call [REDACTED:pii.phone] today");
    let guardrails = "{pii: {email: redact, phone: redact}, appliesTo: response}";
    for kind in ["openai-compatible", "openai"] {
        let (_up, g, _dir) = setup(kind, guardrails, &reply).await;
        let (status, _, body) = post(
            &g,
            "/v1/responses",
            json!({"model": "guarded", "input": "whom do I write to?"}),
        )
        .await;
        assert_eq!(status, 200, "{kind}: {body}");
        assert!(!body.contains(EMAIL), "{kind}: {body}");
        let answer: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(text_of(&answer), expected, "{kind}");
        if kind == "openai-compatible" {
            let url = api(
                &g,
                &format!("/v1/responses/{}", answer["id"].as_str().unwrap()),
            );
            let stored: Value = http().get(&url).send().await.unwrap().json().await.unwrap();
            assert_eq!(stored, answer, "the stored response is what the client got");
        }
        g.shutdown().await;
    }
}

#[tokio::test]
async fn openai_streams_are_refused_where_answers_are_checked_and_translated_ones_redacted() {
    let reply = format!("Write to {EMAIL} today");
    let guardrails = "{pii: {email: redact}, appliesTo: both}";
    let (up, g, _dir) = setup("openai", guardrails, &reply).await;
    let (status, _, body) = post(
        &g,
        "/v1/responses",
        json!({"model": "guarded", "input": "hi", "stream": true}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"]["param"], "stream");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("stream: false"),
        "{body}"
    );
    assert_eq!(up.requests(), 0, "the provider was not called");
    g.shutdown().await;

    let (_up, g, _dir) = setup("openai-compatible", guardrails, &reply).await;
    let (status, _, body) = post(
        &g,
        "/v1/responses",
        json!({"model": "guarded", "input": "hi", "stream": true}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(!body.contains(EMAIL), "{body}");
    let completed = body
        .split("\n\n")
        .find(|f| f.starts_with("event: response.completed"))
        .and_then(|f| f.lines().find_map(|l| l.strip_prefix("data: ")))
        .unwrap();
    let completed: Value = serde_json::from_str(completed).unwrap();
    let answer = &completed["response"];
    assert_eq!(text_of(answer), format!("Write to {MAIL} today"));
    let url = api(
        &g,
        &format!("/v1/responses/{}", answer["id"].as_str().unwrap()),
    );
    let stored: Value = http().get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(text_of(&stored), format!("Write to {MAIL} today"));
    g.shutdown().await;
}
