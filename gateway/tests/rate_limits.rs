//! Route rate limits end to end over real HTTP on 127.0.0.1: limits shared by two gateways
//! through one real Redis, token reservations settled to the real usage, per-key scoping,
//! and Redis dying and coming back under both fail modes. Time is a driven clock, so the
//! counts are exact however slow the machine.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use common::{admin_text, api, http, test_options, write_config};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use tollgate_gateway::{
    budget::WallClock,
    config::ConfigSource,
    server::{self, Options, PaysOptions, Running},
    state::{FailMode, StateSettings, redis_server::RedisServer},
};

const T0: i64 = 1_767_225_600_000;

fn limited(limits: &str) -> String {
    format!(
        r#"{}
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMRoute
metadata: {{name: limited, namespace: default}}
spec:
  model: limited
  backends: [{{providerRef: {{name: mock}}, model: mock-chat}}]
  {limits}
"#,
        common::MOCK
    )
}

fn clock() -> (WallClock, Arc<AtomicI64>) {
    let ms = Arc::new(AtomicI64::new(T0));
    (WallClock::Manual(Arc::clone(&ms)), ms)
}

/// Redis (with this timeout) or in-process. A busy test machine can take longer than a
/// short timeout, which would fail open and spoil exact counts: only the outage test uses one.
fn state(redis: Option<(&str, u64)>) -> StateSettings {
    match redis {
        Some((url, timeout_ms)) => StateSettings::Redis {
            url: url.to_owned(),
            timeout: Duration::from_millis(timeout_ms),
            prefix: "rl-test:".to_owned(),
        },
        None => StateSettings::Memory,
    }
}

async fn gateway(dir: &Path, state: StateSettings, clock: WallClock, mode: FailMode) -> Running {
    server::start(Options {
        pays: PaysOptions {
            state,
            clock,
            on_state_failure: mode,
            ..PaysOptions::default()
        },
        ..test_options(ConfigSource::Dir(dir.to_path_buf()))
    })
    .await
    .unwrap()
}

async fn chat(g: &Running, key: Option<&str>, body: &Value) -> (u16, HeaderMap, String) {
    let mut req = http()
        .post(api(g, "/v1/chat/completions"))
        .timeout(Duration::from_secs(10))
        .json(body);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.text().await.unwrap())
}

fn hi() -> Value {
    json!({"model": "limited", "messages": [{"role": "user", "content": "hi"}]})
}

fn header(h: &HeaderMap, name: &str) -> String {
    h.get(name)
        .unwrap_or_else(|| panic!("no {name} in {h:?}"))
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_sharing_redis_admit_exactly_sixty_per_minute() {
    let Some(redis) = RedisServer::start("two_gateways_sharing_redis_admit_exactly_sixty").await
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &limited("rateLimit: {requestsPerMinute: 60}"));
    let (clock, ms) = clock();
    let shared = state(Some((&redis.url, 5_000)));
    let a = gateway(dir.path(), shared.clone(), clock.clone(), FailMode::Closed).await;
    let b = gateway(dir.path(), shared, clock, FailMode::Closed).await;

    // 2 × 8 concurrent clients, 5 requests each: 80 requests for a limit of 60.
    let (a, b) = (Arc::new(a), Arc::new(b));
    let mut tasks = Vec::new();
    for i in 0..16 {
        let g = Arc::clone(if i % 2 == 0 { &a } else { &b });
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for _ in 0..5 {
                out.push(chat(&g, None, &hi()).await);
            }
            out
        }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.extend(t.await.unwrap());
    }
    let admitted: Vec<_> = answers.iter().filter(|(s, _, _)| *s == 200).collect();
    let refused: Vec<_> = answers.iter().filter(|(s, _, _)| *s == 429).collect();
    assert_eq!((admitted.len(), refused.len()), (60, 20));

    // Admitted answers say what is left; together they counted 59 down to 0.
    let mut remaining: Vec<u64> = admitted
        .iter()
        .map(|(_, h, _)| header(h, "x-ratelimit-remaining-requests").parse().unwrap())
        .collect();
    remaining.sort_unstable();
    assert_eq!(remaining, (0..60).collect::<Vec<u64>>());
    assert_eq!(header(&admitted[0].1, "x-ratelimit-limit-requests"), "60");

    let (_, h, body) = refused[0];
    assert_eq!(header(h, "retry-after"), "1");
    assert_eq!(header(h, "x-ratelimit-limit-requests"), "60");
    assert_eq!(header(h, "x-ratelimit-remaining-requests"), "0");
    assert_eq!(header(h, "x-ratelimit-reset-requests"), "1m0s");
    let error: Value = serde_json::from_str(body).unwrap();
    assert_eq!(error["error"]["code"], "rate_limit_exceeded");
    assert_eq!(error["error"]["type"], "requests");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("limit 60 requests per minute"),
        "{body}"
    );

    // One second later exactly one more fits, whichever replica it reaches.
    ms.fetch_add(1_000, Ordering::SeqCst);
    assert_eq!(chat(&b, None, &hi()).await.0, 200);
    assert_eq!(chat(&a, None, &hi()).await.0, 429);
    let metrics = admin_text(&a, "/metrics").await;
    assert!(
        metrics.contains(
            "tollgate_rate_limited_total{route=\"default/limited\",scope=\"route\",limit=\"requests\"}"
        ),
        "{metrics}"
    );
}

/// Sends `body` until it is admitted: a refused request changes nothing (all or none), so
/// retrying only waits for the previous answer's settlement, which runs after it.
async fn admitted_eventually(g: &Running, body: &Value) -> (HeaderMap, String) {
    for _ in 0..100 {
        let (status, h, text) = chat(g, None, body).await;
        if status == 200 {
            return (h, text);
        }
        assert_eq!(status, 429, "{text}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("never admitted: the reservation was not settled");
}

#[tokio::test]
async fn token_reservations_settle_to_the_real_usage() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &limited("rateLimit: {tokensPerMinute: 1000}"));
    let (clock, _ms) = clock();
    let g = gateway(dir.path(), state(None), clock, FailMode::Open).await;
    // max_tokens 600: about 610 tokens reserved, so a second one fits only once the first
    // has given back what it did not use.
    let body = json!({"model": "limited", "max_tokens": 600, "messages": [{"role": "user", "content": "hi"}]});
    let (status, h, text) = chat(&g, None, &body).await;
    assert_eq!(status, 200, "{text}");
    let reserved = 1000
        - header(&h, "x-ratelimit-remaining-tokens")
            .parse::<i64>()
            .unwrap();
    assert!(
        reserved > 600,
        "prompt estimate plus max_tokens: {reserved}"
    );
    let used = serde_json::from_str::<Value>(&text).unwrap()["usage"]["total_tokens"]
        .as_i64()
        .unwrap();
    assert!(used < reserved);

    let (h, _) = admitted_eventually(&g, &body).await;
    assert_eq!(
        header(&h, "x-ratelimit-remaining-tokens")
            .parse::<i64>()
            .unwrap(),
        1000 - used - reserved,
        "the first answer counts its real usage, not its reservation"
    );
}

#[tokio::test]
async fn a_stream_settles_its_tokens_when_it_ends() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &limited("rateLimit: {tokensPerMinute: 1000}"));
    let (clock, _ms) = clock();
    let g = gateway(dir.path(), state(None), clock, FailMode::Open).await;
    let body = json!({"model": "limited", "stream": true, "stream_options": {"include_usage": true}, "max_tokens": 600, "messages": [{"role": "user", "content": "hi"}]});
    let (status, h, text) = chat(&g, None, &body).await;
    assert_eq!(status, 200, "{text}");
    let reserved = 1000
        - header(&h, "x-ratelimit-remaining-tokens")
            .parse::<i64>()
            .unwrap();
    let used = common::sse_data(&text)
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .find_map(|v| v["usage"]["total_tokens"].as_i64())
        .expect("a usage chunk");
    assert!(used < reserved);
    let (h, _) = admitted_eventually(&g, &body).await;
    assert_eq!(
        header(&h, "x-ratelimit-remaining-tokens")
            .parse::<i64>()
            .unwrap(),
        1000 - used - reserved
    );
}

const ALICE: &str = "tg-alice-0123456789abcdef0123456789abcd";
const BOB: &str = "tg-bob-0123456789abcdef0123456789abcdef0";
const CAROL: &str = "tg-carol-0123456789abcdef0123456789abcde";

fn keyed_route() -> String {
    let key = |name: &str, value: &str| {
        format!(
            "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: team-a\n  labels: {{tollgate.dev/client-key: \"true\"}}\n  annotations: {{tollgate.dev/team: research}}\nstringData: {{key: \"{value}\"}}\n"
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
metadata: {{name: limited, namespace: team-a}}
spec:
  model: limited
  backends: [{{providerRef: {{name: mock}}, model: mock-chat}}]
  rateLimits:
    - {{per: key, requestsPerMinute: 2}}
    - {{per: team, requestsPerMinute: 5}}
{}{}{}"#,
        key("alice", ALICE),
        key("bob", BOB),
        key("carol", CAROL)
    )
}

#[tokio::test]
async fn one_key_exhausted_does_not_limit_another_but_their_team_limit_holds() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &keyed_route());
    let (clock, _ms) = clock();
    let g = gateway(dir.path(), state(None), clock, FailMode::Open).await;
    let statuses = async |key| {
        let mut out = Vec::new();
        for _ in 0..3 {
            out.push(chat(&g, Some(key), &hi()).await.0);
        }
        out
    };
    assert_eq!(statuses(ALICE).await, vec![200, 200, 429]);
    assert_eq!(
        statuses(BOB).await,
        vec![200, 200, 429],
        "Bob has his own two"
    );
    // The team's five: four used (refused requests count nothing), so Carol gets one.
    assert_eq!(statuses(CAROL).await, vec![200, 429, 429]);
    let (_, h, body) = chat(&g, Some(CAROL), &hi()).await;
    assert!(body.contains("per client-key team"), "{body}");
    assert_eq!(
        header(&h, "x-ratelimit-limit-requests"),
        "5",
        "the tighter limit"
    );
    let metrics = admin_text(&g, "/metrics").await;
    assert!(
        metrics.contains("scope=\"key\",limit=\"requests\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("scope=\"team\",limit=\"requests\"} 3"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_fails_open_or_closed_as_configured_and_recovers() {
    let Some(mut redis) = RedisServer::start("redis_down_fails_open_or_closed").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // `limited` has a rate limit; `demo` has a budget instead: the fail mode covers both.
    let budget = "---\napiVersion: llm.tollgate.dev/v1alpha1\nkind: LLMBudget\nmetadata: {name: cap, namespace: default}\nspec:\n  scope: {routes: [demo]}\n  limit: {amount: \"100\", period: daily}\n  action: reject\n";
    write_config(
        dir.path(),
        &format!("{}{budget}", limited("rateLimit: {requestsPerMinute: 60}")),
    );
    let (clock, _ms) = clock();
    let short = state(Some((&redis.url, 300)));
    let open = gateway(dir.path(), short.clone(), clock.clone(), FailMode::Open).await;
    let closed = gateway(dir.path(), short, clock, FailMode::Closed).await;
    let (status, h, _) = chat(&open, None, &hi()).await;
    assert_eq!(
        (status, header(&h, "x-ratelimit-remaining-requests")),
        (200, "59".into())
    );

    redis.kill();
    // Every call is bounded by the client's 10 s timeout; the gateway gives up on Redis
    // after its 300 ms state timeout, so none of them comes near it.
    for _ in 0..3 {
        let (status, h, body) = chat(&open, None, &hi()).await;
        assert_eq!(status, 200, "fail open serves: {body}");
        assert!(
            h.get("x-ratelimit-remaining-requests").is_none(),
            "unchecked"
        );
        let (status, h, body) = chat(&closed, None, &hi()).await;
        assert_eq!(status, 503, "fail closed refuses: {body}");
        assert_eq!(header(&h, "retry-after"), "1");
        let error: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(error["error"]["code"], "state_unavailable");
    }
    let demo = json!({"model": "demo", "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(
        chat(&open, None, &demo).await.0,
        200,
        "budgets fail open too"
    );
    assert_eq!(chat(&closed, None, &demo).await.0, 503, "and closed");
    assert!(
        admin_text(&closed, "/metrics")
            .await
            .contains("tollgate_state_failures_total{check=\"budget\",mode=\"fail_closed\"} 1")
    );
    assert!(
        admin_text(&open, "/metrics")
            .await
            .contains("tollgate_state_failures_total{check=\"rate_limit\",mode=\"fail_open\"} 3")
    );
    assert!(
        admin_text(&closed, "/metrics")
            .await
            .contains("tollgate_state_failures_total{check=\"rate_limit\",mode=\"fail_closed\"} 3")
    );

    // Redis is back (empty): both reconnect and count again.
    redis.restart().await;
    for g in [&open, &closed] {
        let mut recovered = None;
        for _ in 0..100 {
            let (status, h, _) = chat(g, None, &hi()).await;
            if status == 200 && h.get("x-ratelimit-remaining-requests").is_some() {
                recovered = Some(h);
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(recovered.is_some(), "the gateway did not recover");
    }
}

/// Provider `limited` (3 requests a minute on its one key) first, provider `spare` (no
/// limits) behind it.
const QUOTA: &str = r#"
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMProvider
metadata: {name: limited, namespace: default}
spec:
  type: mock
  limits: {requestsPerMinute: 3}
  models: [{name: mock-chat, pricing: {input: "0", output: "0"}}]
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMProvider
metadata: {name: spare, namespace: default}
spec:
  type: mock
  models: [{name: mock-chat, pricing: {input: "0", output: "0"}}]
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMRoute
metadata: {name: quota, namespace: default}
spec:
  model: quota
  backends:
    - {providerRef: {name: limited}, model: mock-chat, priority: 0}
    - {providerRef: {name: spare}, model: mock-chat, priority: 1}
"#;

/// Which provider served each of `n` requests, alternating between `gateways`.
async fn served_by(gateways: &[&Running], n: usize) -> Vec<String> {
    let body = json!({"model": "quota", "messages": [{"role": "user", "content": "hi"}]});
    let mut out = Vec::new();
    for i in 0..n {
        let (status, h, text) = chat(gateways[i % gateways.len()], None, &body).await;
        assert_eq!(status, 200, "{text}");
        out.push(header(&h, "x-tollgate-provider"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_key_quota_is_shared_by_two_gateways() {
    let Some(redis) = RedisServer::start("a_provider_key_quota_is_shared").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), QUOTA);
    let (clock, ms) = clock();
    let shared = state(Some((&redis.url, 5_000)));
    let a = gateway(dir.path(), shared.clone(), clock.clone(), FailMode::Open).await;
    let b = gateway(dir.path(), shared, clock, FailMode::Open).await;
    let limited = |v: &[String]| v.iter().filter(|p| *p == "default/limited").count();

    // Three requests a minute on the key, whichever replica sends them; the rest go to the
    // next backend instead (each replica alone would have allowed three).
    let first = served_by(&[&a, &b], 10).await;
    assert_eq!(limited(&first), 3, "{first:?}");
    assert_eq!(&first[..3], ["default/limited"; 3]);

    // 20 s later (a third of a minute) the key has room for one more request in all.
    ms.fetch_add(20_000, Ordering::SeqCst);
    let later = served_by(&[&b, &a], 4).await;
    assert_eq!(limited(&later), 1, "{later:?}");
}

#[tokio::test]
async fn without_shared_state_a_provider_key_quota_counts_per_gateway() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), QUOTA);
    let (clock, _ms) = clock();
    let a = gateway(dir.path(), state(None), clock.clone(), FailMode::Open).await;
    let b = gateway(dir.path(), state(None), clock, FailMode::Open).await;
    let served = served_by(&[&a, &b], 10).await;
    let limited = served.iter().filter(|p| *p == "default/limited").count();
    assert_eq!(limited, 6, "three per replica, as documented: {served:?}");
}

#[tokio::test]
async fn the_anthropic_messages_door_is_limited_too_with_its_own_error_shape() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &limited("rateLimit: {requestsPerMinute: 1}"));
    let (clock, _ms) = clock();
    let g = gateway(dir.path(), state(None), clock, FailMode::Open).await;
    let send = async || {
        let r = http()
            .post(api(&g, "/v1/messages"))
            .header("anthropic-version", "2023-06-01")
            .json(&json!({"model": "limited", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        (status, headers, r.text().await.unwrap())
    };
    let (status, h, body) = send().await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(header(&h, "x-ratelimit-remaining-requests"), "0");
    let (status, h, body) = send().await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(header(&h, "retry-after"), "60");
    assert_eq!(header(&h, "x-ratelimit-limit-requests"), "1");
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["type"], "error", "{body}");
    assert_eq!(error["error"]["type"], "rate_limit_error", "{body}");
}
