//! The Responses door over real HTTP on 127.0.0.1: translated answers from the in-process
//! mock and from Anthropic and Gemini (the mock upstream), conversations continued with
//! `previous_response_id`, stored responses read and deleted only by the key that created
//! them, cost and metrics as for chat, a stream cut mid-way, and OpenAI passthrough. Every
//! answer and event is validated against the vendored Open Responses schema.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a broken fixture should fail the test loudly

mod common;

use common::*;
use serde_json::{Value, json};
use tollgate_gateway::{
    config::ConfigSource,
    mock_upstream::{Knobs, spawn},
    server::{self, Options, PaysOptions},
    state::{StateSettings, redis_server::RedisServer},
    usage::UsageSink,
};

/// The vendored schema's `ResponseResource` and `StreamingEvent`.
struct Schema {
    response: jsonschema::Validator,
    event: jsonschema::Validator,
}

impl Schema {
    fn load() -> Self {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/responses/open-responses-schema.json"
        );
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let rooted = |name: &str| {
            let mut d = doc.clone();
            d["$ref"] = json!(format!("#/components/schemas/{name}"));
            jsonschema::validator_for(&d).unwrap()
        };
        Self {
            response: rooted("ResponseResource"),
            event: rooted("StreamingEvent"),
        }
    }

    fn check(validator: &jsonschema::Validator, value: &Value) {
        let errors: Vec<String> = validator
            .iter_errors(value)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{errors:#?}\n{value:#}");
    }

    fn response(&self, value: &Value) {
        Self::check(&self.response, value);
    }

    fn event(&self, value: &Value) {
        Self::check(&self.event, value);
    }
}

/// POSTs to `/v1/responses` with an optional key; status, headers, body.
async fn create(
    g: &tollgate_gateway::server::Running,
    key: Option<&str>,
    body: Value,
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut req = http().post(api(g, "/v1/responses")).json(&body);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let r = req.send().await.unwrap();
    (
        r.status().as_u16(),
        r.headers().clone(),
        r.text().await.unwrap(),
    )
}

/// The events of a Responses stream as (event name, data), each checked against the schema
/// and its `type` and `sequence_number`.
fn events(schema: &Schema, body: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for frame in body.split("\n\n").filter(|f| !f.trim().is_empty()) {
        if frame.starts_with(':') {
            continue;
        }
        let name = frame
            .lines()
            .find_map(|l| l.strip_prefix("event: "))
            .unwrap();
        let data: Value = serde_json::from_str(
            frame
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .unwrap(),
        )
        .unwrap();
        schema.event(&data);
        assert_eq!(data["type"], name);
        assert_eq!(data["sequence_number"], json!(out.len()));
        out.push((name.to_owned(), data));
    }
    out
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

fn weather_tool() -> Value {
    json!([{"type": "function", "name": "get_weather", "description": "Weather by city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}])
}

/// Text, a stream, a tool round trip and a continued conversation against `model`.
async fn conversation(g: &tollgate_gateway::server::Running, model: &str) {
    let schema = Schema::load();
    let (status, headers, body) = create(
        g,
        None,
        json!({"model": model, "instructions": "Be brief.", "input": "Hello", "max_output_tokens": 200}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(headers.contains_key("x-tollgate-cost-usd"), "{headers:?}");
    let first: Value = serde_json::from_str(&body).unwrap();
    schema.response(&first);
    assert_eq!(first["status"], "completed");
    assert!(!text_of(&first).is_empty(), "{first}");
    let usage = &first["usage"];
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["input_tokens"].as_u64().unwrap() + usage["output_tokens"].as_u64().unwrap()
    );

    // A stream in the documented order, ending in response.completed with the same text.
    let (status, _, body) = create(
        g,
        None,
        json!({"model": model, "input": "Hello", "stream": true, "max_output_tokens": 200}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let evs = events(&schema, &body);
    let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(&names[..2], ["response.created", "response.in_progress"]);
    assert_eq!(*names.last().unwrap(), "response.completed", "{names:?}");
    let deltas: String = evs
        .iter()
        .filter(|(n, _)| n == "response.output_text.delta")
        .map(|(_, d)| d["delta"].as_str().unwrap().to_owned())
        .collect();
    let done = &evs.last().unwrap().1["response"];
    schema.response(done);
    assert_eq!(deltas, text_of(done));
    assert!(
        done["usage"]["output_tokens"].as_u64().unwrap() > 0,
        "{done}"
    );
    assert!(body.contains(": x-tollgate-cost-usd="), "{body}");

    // A tool call, answered with function_call_output in a continued conversation.
    let (status, _, body) = create(
        g,
        None,
        json!({"model": model, "input": "Weather in Paris?", "tools": weather_tool(), "max_output_tokens": 200}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let called: Value = serde_json::from_str(&body).unwrap();
    schema.response(&called);
    let call = called["output"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "function_call")
        .unwrap_or_else(|| panic!("no function call: {called}"))
        .clone();
    assert_eq!(call["name"], "get_weather");
    serde_json::from_str::<Value>(call["arguments"].as_str().unwrap()).unwrap();
    let (status, _, body) = create(
        g,
        None,
        json!({"model": model, "previous_response_id": called["id"], "tools": weather_tool(), "max_output_tokens": 200,
            "input": [{"type": "function_call_output", "call_id": call["call_id"], "output": "sunny"}]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let answered: Value = serde_json::from_str(&body).unwrap();
    schema.response(&answered);
    assert_eq!(answered["previous_response_id"], called["id"]);
    assert_eq!(answered["status"], "completed");
    assert!(!text_of(&answered).is_empty(), "{answered}");
}

#[tokio::test]
async fn the_mock_backend_answers_and_continues_conversations() {
    let (g, _dir) = start_with(MOCK).await;
    conversation(&g, "demo").await;

    // The mock repeats the last user text: the continued conversation reached it whole.
    let (_, _, body) = create(&g, None, json!({"model": "demo", "input": "first words"})).await;
    let first: Value = serde_json::from_str(&body).unwrap();
    let (_, _, body) = create(
        &g,
        None,
        json!({"model": "demo", "previous_response_id": first["id"], "input": [{"role": "user", "content": "second words"}]}),
    )
    .await;
    let second: Value = serde_json::from_str(&body).unwrap();
    assert!(
        text_of(&second).ends_with("You said: second words"),
        "{second}"
    );
    let metrics = admin_text(&g, "/metrics").await;
    assert!(
        metrics.contains("gen_ai_operation_name=\"chat\""),
        "{metrics}"
    );
    assert!(
        metrics.contains("tollgate_cost_usd_total{route=\"default/demo\""),
        "{metrics}"
    );
    g.shutdown().await;
}

#[tokio::test]
async fn stored_responses_are_read_and_deleted_by_id() {
    let (g, _dir) = start_with(MOCK).await;
    let schema = Schema::load();
    let (_, _, body) = create(&g, None, json!({"model": "demo", "input": "keep me"})).await;
    let created: Value = serde_json::from_str(&body).unwrap();
    let id = created["id"].as_str().unwrap();
    let url = api(&g, &format!("/v1/responses/{id}"));
    let got: Value = http().get(&url).send().await.unwrap().json().await.unwrap();
    schema.response(&got);
    assert_eq!(got, created);

    let deleted = http().delete(&url).send().await.unwrap();
    assert_eq!(deleted.status(), 200);
    let deleted: Value = deleted.json().await.unwrap();
    assert_eq!(
        deleted,
        json!({"id": id, "object": "response", "deleted": true})
    );
    let gone = http().get(&url).send().await.unwrap();
    assert_eq!(gone.status(), 404);
    let gone: Value = gone.json().await.unwrap();
    assert_eq!(gone["error"]["code"], "response_not_found");
    assert_eq!(http().delete(&url).send().await.unwrap().status(), 404);

    // store: false keeps nothing, so it cannot be continued either.
    let (_, _, body) = create(
        &g,
        None,
        json!({"model": "demo", "input": "forget me", "store": false}),
    )
    .await;
    let unstored: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(unstored["store"], false);
    let url = api(
        &g,
        &format!("/v1/responses/{}", unstored["id"].as_str().unwrap()),
    );
    assert_eq!(http().get(&url).send().await.unwrap().status(), 404);
    let (status, _, body) = create(
        &g,
        None,
        json!({"model": "demo", "previous_response_id": unstored["id"], "input": "again"}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let err: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(err["error"]["param"], "previous_response_id");
    g.shutdown().await;
}

const KEY_A: &str = "tg-research-0123456789abcdef0123456789";
const KEY_B: &str = "tg-support-abcdef0123456789abcdef012345";

fn keyed() -> String {
    let secret = |name: &str, team: &str, key: &str| {
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: team-a\n  labels: {{tollgate.dev/client-key: \"true\"}}\n  annotations: {{tollgate.dev/team: {team}}}\nstringData: {{key: \"{key}\"}}\n"
        )
    };
    format!(
        r#"
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMProvider
metadata: {{name: mock, namespace: team-a}}
spec:
  type: mock
  models: [{{name: mock-chat, pricing: {{input: "0.15", output: "0.60"}}}}]
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMRoute
metadata: {{name: chat, namespace: team-a}}
spec:
  model: chat
  backends: [{{providerRef: {{name: mock}}, model: mock-chat}}]
---
{}---
{}"#,
        secret("research-app", "research", KEY_A),
        secret("support-app", "support", KEY_B)
    )
}

#[tokio::test]
async fn a_stored_response_is_visible_only_to_the_key_that_created_it() {
    let (g, _dir) = start_with(&keyed()).await;
    let (status, _, body) = create(
        &g,
        Some(KEY_A),
        json!({"model": "chat", "input": "secret plans"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let id = serde_json::from_str::<Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = api(&g, &format!("/v1/responses/{id}"));
    let get = |key: Option<&'static str>| {
        let mut req = http().get(&url);
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(get(Some(KEY_A)).await, 200);
    assert_eq!(get(Some(KEY_B)).await, 404);
    assert_eq!(get(None).await, 404);
    // Nor can another key continue it or delete it.
    let (status, _, body) = create(
        &g,
        Some(KEY_B),
        json!({"model": "chat", "previous_response_id": id, "input": "tell me"}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let deleted = http().delete(&url).bearer_auth(KEY_B).send().await.unwrap();
    assert_eq!(deleted.status(), 404);
    assert_eq!(get(Some(KEY_A)).await, 200);
    g.shutdown().await;
}

fn upstream_route(kind: &str, base: &str, model: &str, headers: &str) -> String {
    let azure = if kind == "azure-openai" {
        "  azure: {}\n"
    } else {
        ""
    };
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
{azure}  auth: {{secretRefs: [{{name: key, key: key}}]}}
  models: [{{name: {model}, pricing: {{input: "1", output: "2"}}}}]
  headers: [{headers}]
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMRoute
metadata: {{name: responses, namespace: default}}
spec:
  model: responses
  backends: [{{providerRef: {{name: up}}, model: {model}}}]
"#
    )
}

#[tokio::test]
async fn anthropic_and_gemini_backends_answer_through_the_responses_door() {
    for (kind, model) in [
        ("anthropic", "claude-haiku-4-5"),
        ("gemini", "gemini-2.5-flash"),
    ] {
        let up = spawn(Knobs::default()).await.unwrap();
        let (g, _dir) = start_with(&upstream_route(kind, &up.url(), model, "")).await;
        conversation(&g, "responses").await;
        // Built-in tools are refused before anything is sent.
        let before = up.requests();
        let (status, _, body) = create(
            &g,
            None,
            json!({"model": "responses", "input": "news?", "tools": [{"type": "web_search"}]}),
        )
        .await;
        assert_eq!(status, 400, "{body}");
        let err: Value = serde_json::from_str(&body).unwrap();
        let message = err["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("`web_search`") && message.contains(kind),
            "{message}"
        );
        assert_eq!(up.requests(), before);
        g.shutdown().await;
    }
}

#[tokio::test]
async fn a_stream_cut_mid_way_ends_with_response_failed_not_completed() {
    let schema = Schema::load();
    let up = spawn(Knobs::default()).await.unwrap();
    let (g, _dir) = start_with(&upstream_route(
        "anthropic",
        &up.url(),
        "claude-haiku-4-5",
        "{name: x-mock-disconnect-after, value: \"5\"}",
    ))
    .await;
    let (status, _, body) = create(
        &g,
        None,
        json!({"model": "responses", "input": "Hello", "stream": true, "max_output_tokens": 200}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let evs = events(&schema, &body);
    let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        &names[names.len() - 2..],
        ["response.failed", "error"],
        "{names:?}"
    );
    assert!(!names.contains(&"response.completed"));
    assert_eq!(evs[evs.len() - 2].1["response"]["status"], "failed");
    g.shutdown().await;
}

#[tokio::test]
async fn openai_backends_get_the_request_whole_and_their_answer_untouched() {
    for (kind, suffix, path) in [
        ("openai", "/v1", "/v1/responses"),
        ("azure-openai", "", "/openai/v1/responses"),
    ] {
        let up = spawn(Knobs::default()).await.unwrap();
        let (g, _dir) = start_with(&upstream_route(
            kind,
            &format!("{}{suffix}", up.url()),
            "gpt-4.1",
            "",
        ))
        .await;
        let request = json!({
            "model": "responses", "input": "Hello", "instructions": "Be brief.",
            "tools": [{"type": "web_search"}, {"type": "function", "name": "f", "parameters": {"type": "object", "properties": {}}}],
            "tool_choice": "none", "previous_response_id": "resp_at_openai", "include": ["reasoning.encrypted_content"],
            "reasoning": {"effort": "low", "summary": "auto"}, "background": false, "truncation": "auto",
            "metadata": {"k": "v"}, "x_future_field": {"nested": [1, 2]},
        });
        let (status, headers, body) = create(&g, None, request.clone()).await;
        assert_eq!(status, 200, "{body}");
        assert!(headers.contains_key("x-tollgate-cost-usd"), "{headers:?}");
        let sent = up.last_request().unwrap();
        assert_eq!(sent.path, path);
        let mut expected = request.clone();
        expected["model"] = json!("gpt-4.1");
        assert_eq!(
            sent.body, expected,
            "every field passes through, only the model changes"
        );
        let auth = if kind == "azure-openai" {
            "api-key"
        } else {
            "authorization"
        };
        assert!(sent.headers.contains_key(auth), "{:?}", sent.headers);
        let answer: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(answer["id"], format!("resp_mock{}", up.requests()));
        assert_eq!(answer["previous_response_id"], "resp_at_openai");
        g.shutdown().await;
    }
}

#[tokio::test]
async fn replicas_sharing_redis_continue_each_others_conversations() {
    let Some(redis) =
        RedisServer::start("replicas_sharing_redis_continue_each_others_conversations").await
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), MOCK);
    let start = || {
        server::start(Options {
            pays: PaysOptions {
                state: StateSettings::Redis {
                    url: redis.url.clone(),
                    timeout: std::time::Duration::from_secs(2),
                    prefix: "responses-test:".to_owned(),
                },
                ..PaysOptions::default()
            },
            ..test_options(ConfigSource::Dir(dir.path().to_path_buf()))
        })
    };
    let (a, b) = (start().await.unwrap(), start().await.unwrap());
    // Streamed on one replica (stored when the stream ends), continued on the other.
    let (status, _, body) = create(
        &a,
        None,
        json!({"model": "demo", "input": "remember", "stream": true}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let id = body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .find_map(|d| d["response"]["id"].as_str().map(str::to_owned))
        .unwrap();
    let mut stored = 0;
    for _ in 0..100 {
        stored = http()
            .get(api(&b, &format!("/v1/responses/{id}")))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        if stored == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(stored, 200, "the other replica reads the stored response");
    let (status, _, body) = create(
        &b,
        None,
        json!({"model": "demo", "previous_response_id": id, "input": "and now"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let next: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(next["previous_response_id"], json!(id));
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn budgets_and_the_usage_log_apply_as_for_chat() {
    let dir = tempfile::tempdir().unwrap();
    let budget = "---\napiVersion: llm.tollgate.dev/v1alpha1\nkind: LLMBudget\nmetadata: {name: cap, namespace: default}\nspec:\n  scope: {routes: [demo]}\n  limit: {amount: \"0.0001\", period: monthly, timeZone: UTC}\n  action: reject\n";
    write_config(dir.path(), &format!("{MOCK}{budget}"));
    let usage_file = dir.path().join("usage.jsonl");
    let g = server::start(Options {
        pays: PaysOptions {
            usage: UsageSink::File(usage_file.clone()),
            ..PaysOptions::default()
        },
        ..test_options(ConfigSource::Dir(dir.path().to_path_buf()))
    })
    .await
    .unwrap();
    let (status, headers, body) = create(
        &g,
        None,
        json!({"model": "demo", "input": "hi", "max_output_tokens": 16}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let cost = headers["x-tollgate-cost-usd"].to_str().unwrap().to_owned();
    // The reservation for 1000 output tokens (0.0006 USD) does not fit the budget.
    let (status, _, body) = create(
        &g,
        None,
        json!({"model": "demo", "input": "hi", "max_output_tokens": 1000}),
    )
    .await;
    assert_eq!(status, 429, "{body}");
    let err: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(err["error"]["code"], "budget_exceeded");
    g.shutdown().await;
    let mut records = String::new();
    for _ in 0..100 {
        records = std::fs::read_to_string(&usage_file).unwrap_or_default();
        if !records.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let record: Value = serde_json::from_str(records.lines().next().unwrap()).unwrap();
    assert_eq!(record["operation"], "chat");
    assert_eq!(record["route"], "default/demo");
    assert_eq!(record["status"], "ok");
    assert_eq!(
        record["costUsd"].to_string().trim_matches('"'),
        cost,
        "{record}"
    );
}

#[tokio::test]
async fn openai_streams_pass_through_and_a_cut_one_ends_with_an_error_event() {
    let schema = Schema::load();
    let up = spawn(Knobs::default()).await.unwrap();
    let base = format!("{}/v1", up.url());
    let (g, _dir) = start_with(&upstream_route("openai", &base, "gpt-4.1", "")).await;
    let (status, _, body) = create(
        &g,
        None,
        json!({"model": "responses", "input": "Hello", "stream": true, "tools": weather_tool(), "tool_choice": "none", "x_future_field": 1}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(up.last_request().unwrap().body["x_future_field"], 1);
    let evs = events(&schema, &body);
    let (name, done) = evs.last().unwrap();
    assert_eq!(name, "response.completed");
    assert_eq!(
        done["response"]["id"],
        format!("resp_mock{}", up.requests()),
        "the upstream's own events"
    );
    assert!(
        body.contains(": x-tollgate-cost-usd="),
        "usage metered: {body}"
    );
    g.shutdown().await;

    let (g, _dir) = start_with(&upstream_route(
        "openai",
        &base,
        "gpt-4.1",
        "{name: x-mock-disconnect-after, value: \"4\"}",
    ))
    .await;
    let (status, _, body) = create(
        &g,
        None,
        json!({"model": "responses", "input": "Hello", "stream": true}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let evs = events(&schema, &body);
    let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(*names.last().unwrap(), "error", "{names:?}");
    assert!(!names.contains(&"response.completed"));
    g.shutdown().await;
}
