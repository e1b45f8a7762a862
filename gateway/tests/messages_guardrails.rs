//! Route guardrails on the Anthropic Messages door over real HTTP on 127.0.0.1: a blocked
//! prompt never reaches the provider and is refused in Anthropic's error shape; a redacted
//! prompt is what both an Anthropic backend (passthrough body) and an OpenAI-compatible one
//! (translated) receive; JSON answers are redacted from either; an Anthropic stream is
//! refused when answers are checked, a translated one is filtered.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a broken fixture should fail the test loudly
#![allow(clippy::disallowed_types, reason = "the fake upstream's request log")]

mod common;

use std::sync::{Arc, Mutex};

use axum::{Router, body::Bytes, extract::State, routing::post};
use common::*;
use serde_json::{Value, json};
use tollgate_gateway::mock_upstream::{Knobs, MockServer, spawn};

const EMAIL: &str = "jane.doe@example.com";
const KEY: &str = "sk-proj-AbCdEfGhIjKlMnOpQrStUvWx0123";
const REDACTED: &str = "[REDACTED:pii.email]";

/// The bodies the fake Anthropic API received, exactly.
type Received = Arc<Mutex<Vec<Bytes>>>;

/// A fake Anthropic API answering a `message` whose text carries [`EMAIL`] (and a thinking
/// block, which answer checks leave alone).
async fn anthropic_upstream() -> (String, Received) {
    async fn messages(State(r): State<Received>, body: Bytes) -> axum::response::Response {
        use axum::response::IntoResponse;
        r.lock().unwrap().push(body);
        let message = json!({"id": "msg_1", "type": "message", "role": "assistant",
            "model": "claude-sonnet-4-5", "content": [
                {"type": "thinking", "thinking": "hm", "signature": "sig"},
                {"type": "text", "text": format!("Write to {EMAIL} today")}],
            "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": 5, "output_tokens": 7}});
        ([("content-type", "application/json")], message.to_string()).into_response()
    }
    let received = Received::default();
    let app = Router::new()
        .route("/v1/messages", post(messages))
        .with_state(Arc::clone(&received));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), received)
}

/// Routes `claude` (Anthropic) and `compat` (OpenAI-compatible), both with `guardrails`.
fn manifests(anthropic: &str, compat: &str, guardrails: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Secret
metadata: {{name: keys, namespace: default}}
stringData: {{anthropic: sk-ant-upstream}}
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMProvider
metadata: {{name: anthropic, namespace: default}}
spec:
  type: anthropic
  baseURL: {anthropic}
  auth: {{secretRefs: [{{name: keys, key: anthropic}}]}}
  models: [{{name: claude-sonnet-4-5, pricing: {{input: "3", output: "15"}}}}]
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMProvider
metadata: {{name: compat, namespace: default}}
spec:
  type: openai-compatible
  baseURL: {compat}/v1
  models: [{{name: llama, pricing: {{input: "0.1", output: "0.2"}}}}]
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMRoute
metadata: {{name: claude, namespace: default}}
spec:
  model: claude
  backends: [{{providerRef: {{name: anthropic}}, model: claude-sonnet-4-5}}]
  guardrails: {guardrails}
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMRoute
metadata: {{name: compat, namespace: default}}
spec:
  model: compat
  backends: [{{providerRef: {{name: compat}}, model: llama}}]
  guardrails: {guardrails}
"#
    )
}

struct Setup {
    gateway: tollgate_gateway::server::Running,
    anthropic: Received,
    compat: MockServer,
    _dir: tempfile::TempDir,
}

async fn setup(guardrails: &str, reply: &str) -> Setup {
    let (anthropic_url, anthropic) = anthropic_upstream().await;
    let compat = spawn(Knobs {
        reply: reply.into(),
        ..Knobs::default()
    })
    .await
    .unwrap();
    let (gateway, dir) = start_with(&manifests(&anthropic_url, &compat.url(), guardrails)).await;
    Setup {
        gateway,
        anthropic,
        compat,
        _dir: dir,
    }
}

/// POSTs `body` (exact text) to `/v1/messages`.
async fn send(s: &Setup, body: String) -> (u16, String) {
    let r = http()
        .post(api(&s.gateway, "/v1/messages"))
        .header("anthropic-version", "2023-06-01")
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// A request with `text` in the system prompt, a user text block, a tool call's input and
/// a tool result, plus a signed thinking block and (for Anthropic, as translation refuses
/// it) a field the gateway does not know.
fn request(model: &str, text: &str, stream: bool) -> String {
    let future = if model == "claude" {
        r#""x_future":{"n":[1.50]},"#
    } else {
        ""
    };
    format!(
        r#"{{"model":"{model}","max_tokens":64,"stream":{stream},{future}"system":[{{"type":"text","text":"Owner: {text}","cache_control":{{"type":"ephemeral"}}}}],"messages":[{{"role":"user","content":[{{"type":"text","text":"Mail {text} please"}}]}},{{"role":"assistant","content":[{{"type":"thinking","thinking":"ok","signature":"EqQB=="}},{{"type":"tool_use","id":"t1","name":"send","input":{{"to":"{text}"}}}}]}},{{"role":"user","content":[{{"type":"tool_result","tool_use_id":"t1","content":"sent to {text}"}}]}}]}}"#
    )
}

#[tokio::test]
async fn a_blocked_prompt_is_an_anthropic_400_naming_the_rule_and_no_provider_is_called() {
    let s = setup("{pii: {secrets: block}}", "ok").await;
    for (model, tail) in [("claude", KEY), ("compat", "fine")] {
        // The key hides in a tool result on one route, in the system prompt on the other.
        let body = request(model, "x", false)
            .replace("sent to x", &format!("sent to {KEY}"))
            .replace("Owner: x", &format!("Owner: {tail}"));
        let (status, answer) = send(&s, body).await;
        assert_eq!(status, 400, "{answer}");
        let error: Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(error["type"], "error", "Anthropic's shape: {answer}");
        assert_eq!(error["error"]["type"], "invalid_request_error");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains("pii.secrets"), "{message}");
        assert!(!answer.contains("AbCdEf"), "never the text: {answer}");
    }
    // Counting sends the prompt to Anthropic too: refused the same way.
    let r = http()
        .post(api(&s.gateway, "/v1/messages/count_tokens"))
        .header("content-type", "application/json")
        .body(request("claude", KEY, false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let error: Value = r.json().await.unwrap();
    assert_eq!(error["type"], "error");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("pii.secrets"),
        "{error}"
    );
    assert!(
        s.anthropic.lock().unwrap().is_empty(),
        "Anthropic not called"
    );
    assert_eq!(s.compat.requests(), 0, "the compatible backend not called");
    s.gateway.shutdown().await;
}

#[tokio::test]
async fn a_redacted_prompt_is_what_anthropic_and_a_translated_backend_receive() {
    let s = setup("{pii: {email: redact}}", "ok").await;

    // Nothing to redact: the Anthropic backend gets the client's bytes, model aside.
    let clean = request("claude", "nobody", false);
    let (status, answer) = send(&s, clean.clone()).await;
    assert_eq!(status, 200, "{answer}");
    let got = s.anthropic.lock().unwrap()[0].clone();
    assert_eq!(
        std::str::from_utf8(&got).unwrap(),
        clean.replacen(r#""model":"claude""#, r#""model":"claude-sonnet-4-5""#, 1),
        "an unredacted request passes byte for byte"
    );

    let (status, answer) = send(&s, request("claude", EMAIL, false)).await;
    assert_eq!(status, 200, "{answer}");
    let got = s.anthropic.lock().unwrap()[1].clone();
    let text = std::str::from_utf8(&got).unwrap();
    assert!(!text.contains(EMAIL), "{text}");
    let v: Value = serde_json::from_slice(&got).unwrap();
    assert_eq!(v["model"], "claude-sonnet-4-5");
    assert_eq!(v["system"][0]["text"], format!("Owner: {REDACTED}"));
    assert_eq!(v["system"][0]["cache_control"]["type"], "ephemeral");
    assert_eq!(
        v["messages"][0]["content"][0]["text"],
        format!("Mail {REDACTED} please")
    );
    assert_eq!(v["messages"][1]["content"][0]["signature"], "EqQB==");
    assert_eq!(v["messages"][1]["content"][1]["input"]["to"], REDACTED);
    assert_eq!(
        v["messages"][2]["content"][0]["content"],
        format!("sent to {REDACTED}")
    );
    assert_eq!(v["x_future"], json!({"n": [1.5]}), "unknown fields kept");
    assert_eq!(v["max_tokens"], 64);

    let (status, answer) = send(&s, request("compat", EMAIL, false)).await;
    assert_eq!(status, 200, "{answer}");
    let up = s.compat.last_request().unwrap().body;
    assert!(!up.to_string().contains(EMAIL), "{up}");
    assert_eq!(up["messages"][0]["content"], format!("Owner: {REDACTED}"));
    assert!(
        up.to_string().contains(&format!("Mail {REDACTED} please")),
        "{up}"
    );
    s.gateway.shutdown().await;
}

#[tokio::test]
async fn json_answers_are_redacted_and_an_anthropic_stream_is_refused() {
    let reply = format!("Write to {EMAIL} today");
    let s = setup("{pii: {email: redact}, appliesTo: response}", &reply).await;
    let expected = format!("Write to {REDACTED} today");

    // From Anthropic (passed through) and from a translated backend alike.
    for model in ["claude", "compat"] {
        let (status, answer) = send(&s, request(model, "hi", false)).await;
        assert_eq!(status, 200, "{answer}");
        let m: Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(m["type"], "message", "{answer}");
        let texts: Vec<&Value> = m["content"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["type"] == "text")
            .map(|b| &b["text"])
            .collect();
        assert_eq!(texts, [&json!(expected)], "{answer}");
        assert!(!answer.contains(EMAIL), "{answer}");
    }

    // A raw Anthropic stream would skip the answer check: refused before the call.
    let (status, answer) = send(&s, request("claude", "hi", true)).await;
    assert_eq!(status, 400, "{answer}");
    let error: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(error["type"], "error");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("stream"),
        "{answer}"
    );
    assert_eq!(
        s.anthropic.lock().unwrap().len(),
        1,
        "only the JSON request"
    );

    // A translated stream passes the filters.
    let (status, answer) = send(&s, request("compat", "hi", true)).await;
    assert_eq!(status, 200, "{answer}");
    let text: String = sse_data(&answer)
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| v["delta"]["text"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(text, expected, "{answer}");
    s.gateway.shutdown().await;
}
