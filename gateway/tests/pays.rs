//! Who pays, end to end over real HTTP on 127.0.0.1: client keys (401/403, rotation without
//! a restart), the exact cost of each answer (header, SSE comment, metric, usage record),
//! and budgets (429, standings, restart hand-off, two replicas sharing one Redis).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{path::Path, time::Duration};

use common::{admin, admin_json, admin_text, api, http, start, test_options, write_config};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use tollgate_gateway::{
    config::ConfigSource,
    server::{self, Options, PaysOptions, Running},
    state::{StateSettings, redis_server::RedisServer},
    usage::UsageSink,
};

const KEY: &str = "tg-research-0123456789abcdef0123456789";
const ROTATED: &str = "tg-research-rotated-abcdef0123456789abcd";

fn keyed(key: &str) -> String {
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
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMRoute
metadata: {{name: embed, namespace: team-a}}
spec:
  model: embed
  backends: [{{providerRef: {{name: mock}}, model: mock-chat}}]
---
apiVersion: v1
kind: Secret
metadata:
  name: research-app
  namespace: team-a
  labels: {{tollgate.dev/client-key: "true"}}
  annotations: {{tollgate.dev/team: research, tollgate.dev/routes: chat}}
stringData: {{key: "{key}"}}
---{}"#,
        common::MOCK
    )
}

fn budget(limit: &str) -> String {
    format!(
        r#"
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMBudget
metadata: {{name: cap, namespace: default}}
spec:
  scope: {{routes: [demo]}}
  limit: {{amount: "{limit}", period: monthly, timeZone: Europe/Berlin}}
  action: reject
"#
    )
}

fn chat(model: &str) -> Value {
    json!({"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]})
}

async fn call(
    g: &Running,
    key: Option<&str>,
    body: &Value,
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut req = http().post(api(g, "/v1/chat/completions")).json(body);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.text().await.unwrap())
}

fn usd(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// The cost of a JSON answer at the MOCK prices (0.15 input, 0.60 output per million).
fn expected_cost(answer: &Value) -> Decimal {
    let prompt = Decimal::from(answer["usage"]["prompt_tokens"].as_u64().unwrap());
    let completion = Decimal::from(answer["usage"]["completion_tokens"].as_u64().unwrap());
    (prompt * usd("0.15") + completion * usd("0.60")) / Decimal::from(1_000_000)
}

async fn start_pays(dir: &Path, pays: PaysOptions) -> Running {
    server::start(Options {
        pays,
        ..test_options(ConfigSource::Dir(dir.to_path_buf()))
    })
    .await
    .unwrap()
}

fn redis_pays(url: &str) -> PaysOptions {
    PaysOptions {
        state: StateSettings::Redis {
            url: url.to_owned(),
            timeout: Duration::from_secs(2),
            prefix: "pays-test:".to_owned(),
        },
        ..PaysOptions::default()
    }
}

async fn spent(g: &Running) -> Decimal {
    let report = admin_json(g, "/budgets").await;
    usd(report["budgets"][0]["spent"].as_str().unwrap())
}

#[tokio::test]
async fn keys_gate_their_namespace_answer_401_and_403_and_rotate_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &keyed(KEY));
    let usage_file = dir.path().join("usage.jsonl");
    let g = start_pays(
        dir.path(),
        PaysOptions {
            usage: UsageSink::File(usage_file.clone()),
            ..PaysOptions::default()
        },
    )
    .await;

    let (status, headers, body) = call(&g, None, &chat("chat")).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(headers["www-authenticate"], "Bearer");
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"]["code"], "invalid_api_key");
    assert_eq!(call(&g, Some("tg-guess"), &chat("chat")).await.0, 401);
    let (status, _, body) = call(&g, Some(KEY), &chat("chat")).await;
    assert_eq!(status, 200, "{body}");
    // The key may call `chat` only.
    let (status, _, body) = call(&g, Some(KEY), &chat("embed")).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("permission_error"), "{body}");
    // The quickstart's namespace has no keys: no key needed, placeholders ignored.
    assert_eq!(call(&g, None, &chat("demo")).await.0, 200);
    assert_eq!(call(&g, Some("sk-placeholder"), &chat("demo")).await.0, 200);

    // Rotation: the Secret now holds another key; the gateway reloads, no restart.
    write_config(dir.path(), &keyed(ROTATED));
    let mut refused = false;
    for _ in 0..100 {
        if call(&g, Some(KEY), &chat("chat")).await.0 == 401 {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(refused, "the old key still works after the rotation");
    assert_eq!(call(&g, Some(ROTATED), &chat("chat")).await.0, 200);

    // Usage records name the key and team, never the key itself.
    drop(g);
    let mut records = String::new();
    for _ in 0..100 {
        records = std::fs::read_to_string(&usage_file).unwrap_or_default();
        if records.lines().count() >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !records.contains(KEY) && !records.contains(ROTATED),
        "{records}"
    );
    let first: Value = serde_json::from_str(records.lines().next().unwrap()).unwrap();
    assert_eq!(first["keyId"], "team-a/research-app");
    assert_eq!(first["team"], "research");
    assert_eq!(first["route"], "team-a/chat");
    assert_eq!(first["status"], "ok");
}

#[tokio::test]
async fn every_answer_carries_its_exact_cost() {
    let (g, _dir) = common::start_with(common::MOCK).await;
    let (status, headers, body) = call(&g, None, &chat("demo")).await;
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    let header = headers["x-tollgate-cost-usd"].to_str().unwrap();
    assert_eq!(usd(header), expected_cost(&answer));

    // A stream: the cost is an SSE comment right before [DONE]; the client did not ask for
    // usage, so the usage chunk the gateway metered is not forwarded.
    let mut streamed = chat("demo");
    streamed["stream"] = json!(true);
    let (status, headers, body) = call(&g, None, &streamed).await;
    assert_eq!(status, 200);
    assert!(headers.get("x-tollgate-cost-usd").is_none());
    let comment = body
        .lines()
        .find_map(|l| l.strip_prefix(": x-tollgate-cost-usd="))
        .unwrap_or_else(|| panic!("no cost comment in {body}"));
    assert!(usd(comment) > Decimal::ZERO);
    assert!(
        body.ends_with(&format!(
            ": x-tollgate-cost-usd={comment}\n\ndata: [DONE]\n\n"
        )),
        "{body}"
    );
    assert!(!body.contains("\"usage\""), "{body}");

    let metrics = admin_text(&g, "/metrics").await;
    assert!(
        metrics.contains("tollgate_cost_usd_total{route=\"default/demo\",provider=\"default/mock\",model=\"mock-chat\",team=\"\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_reject_budget_answers_429_and_never_lets_spend_pass_its_limit() {
    let (g, _dir) = common::start_with(&format!("{}{}", common::MOCK, budget("0.0002"))).await;
    let mut costs = Decimal::ZERO;
    let mut refused = None;
    for _ in 0..200 {
        let (status, headers, body) = call(&g, None, &chat("demo")).await;
        if status == 429 {
            refused = Some(body);
            break;
        }
        assert_eq!(status, 200, "{body}");
        costs += usd(headers["x-tollgate-cost-usd"].to_str().unwrap());
    }
    let body: Value = serde_json::from_str(&refused.expect("the budget never refused")).unwrap();
    assert_eq!(body["error"]["code"], "budget_exceeded");
    assert_eq!(body["error"]["type"], "insufficient_quota");
    // Settlements run after the answer: wait until the counter holds the exact sum.
    let mut last = Decimal::ZERO;
    for _ in 0..100 {
        last = spent(&g).await;
        if last == costs {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(last, costs, "spend is the sum of the answers' costs");
    assert!(last <= usd("0.0002"));
    let report = admin_json(&g, "/budgets").await;
    assert_eq!(report["state"], "memory");
    let b = &report["budgets"][0];
    assert_eq!(b["id"], "default/cap");
    assert_eq!(usd(b["remaining"].as_str().unwrap()), usd("0.0002") - last);
    assert!(b["periodStart"].as_str().unwrap().ends_with(":00:00Z"));
}

#[tokio::test]
async fn an_in_process_gateway_restarted_with_the_operators_seed_keeps_its_spend() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &format!("{}{}", common::MOCK, budget("0.0002")));
    let first = start(dir.path()).await;
    for _ in 0..3 {
        assert_eq!(call(&first, None, &chat("demo")).await.0, 200);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // What the operator persists in LLMBudget.status.
    let before = admin_json(&first, "/budgets").await["budgets"][0].clone();
    first.shutdown().await;

    let second = start(dir.path()).await;
    assert_eq!(
        spent(&second).await,
        Decimal::ZERO,
        "in-process counters start empty"
    );
    let seed = json!({"seeds": [{"id": "default/cap", "periodStart": before["periodStart"], "spent": before["spent"]}]});
    let answer: Value = http()
        .post(admin(&second, "/budgets/seed"))
        .json(&seed)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["applied"], 1);
    assert_eq!(spent(&second).await, usd(before["spent"].as_str().unwrap()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_sharing_redis_never_overshoot_and_a_restart_keeps_the_spend() {
    let Some(redis) = RedisServer::start("two_gateways_sharing_redis_never_overshoot").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &format!("{}{}", common::MOCK, budget("0.0005")));
    let a = start_pays(dir.path(), redis_pays(&redis.url)).await;
    let b = start_pays(dir.path(), redis_pays(&redis.url)).await;

    // 2 × 16 concurrent clients, 10 requests each at most: far more than the budget allows.
    let mut tasks = Vec::new();
    for i in 0..32 {
        let target = api(if i % 2 == 0 { &a } else { &b }, "/v1/chat/completions");
        tasks.push(tokio::spawn(async move {
            let mut costs = Decimal::ZERO;
            let mut refused = 0;
            for _ in 0..10 {
                let r = http()
                    .post(&target)
                    .json(&chat("demo"))
                    .send()
                    .await
                    .unwrap();
                match r.status().as_u16() {
                    200 => costs += usd(r.headers()["x-tollgate-cost-usd"].to_str().unwrap()),
                    429 => refused += 1,
                    other => panic!("status {other}"),
                }
            }
            (costs, refused)
        }));
    }
    let (mut costs, mut refused) = (Decimal::ZERO, 0);
    for t in tasks {
        let (c, r) = t.await.unwrap();
        costs += c;
        refused += r;
    }
    assert!(refused > 0, "the budget never refused");
    let mut seen = (Decimal::ZERO, Decimal::ZERO);
    for _ in 0..100 {
        seen = (spent(&a).await, spent(&b).await);
        if seen.0 == costs {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Both replicas see one counter, equal to what was served, within the limit (every
    // answer here costs less than its reservation, so the documented overshoot bound is 0).
    assert_eq!(seen, (costs, costs));
    assert!(costs <= usd("0.0005"), "{costs}");
    assert_eq!(admin_json(&a, "/budgets").await["state"], "redis");

    // A restarted replica starts from the shared spend.
    a.shutdown().await;
    let restarted = start_pays(dir.path(), redis_pays(&redis.url)).await;
    assert_eq!(spent(&restarted).await, costs);
    drop(b);
}

#[tokio::test]
async fn a_full_downgrade_budget_sends_requests_to_its_cheaper_route() {
    let yaml = format!(
        r#"{}
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMRoute
metadata: {{name: cheap, namespace: default}}
spec:
  model: cheap
  backends: [{{providerRef: {{name: mock}}, model: mock-chat}}]
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMBudget
metadata: {{name: cap, namespace: default}}
spec:
  scope: {{routes: [demo]}}
  limit: {{amount: "0.0001", period: daily}}
  action: downgrade
  downgradeTo: {{name: cheap}}
"#,
        common::MOCK
    );
    let (g, _dir) = common::start_with(&yaml).await;
    let mut routes = Vec::new();
    for _ in 0..20 {
        let (status, headers, body) = call(&g, None, &chat("demo")).await;
        assert_eq!(status, 200, "{body}");
        routes.push(headers["x-tollgate-route"].to_str().unwrap().to_owned());
    }
    assert_eq!(routes[0], "default/demo");
    assert_eq!(routes.last().unwrap(), "default/cheap", "{routes:?}");
    let metrics = admin_text(&g, "/metrics").await;
    assert!(
        metrics.contains(
            "tollgate_budget_decisions_total{budget=\"default/cap\",decision=\"downgraded\"}"
        ),
        "{metrics}"
    );
}
