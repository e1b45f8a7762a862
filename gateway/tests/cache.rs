//! The response cache over real HTTP on 127.0.0.1, with the mock upstream counting what
//! reached the provider: repeats served once, streams replayed whole, teams kept apart,
//! `Cache-Control` honoured, cut streams not stored, TTL on a driven clock, two gateways
//! sharing Redis, and the semantic cache.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    path::Path,
    sync::{Arc, atomic::AtomicI64},
    time::Duration,
};

use common::{admin_text, api, http, sse_data, streamed_text, test_options, write_config};
use serde_json::{Value, json};
use tollgate_gateway::{
    budget::WallClock,
    cache::{CacheOptions, CacheStore},
    config::ConfigSource,
    mock_upstream::{self, Knobs, MockServer},
    server::{self, Options, PaysOptions, Running},
    state::{StateSettings, redis_server::RedisServer},
    usage::UsageSink,
};

const KEY_A1: &str = "tg-cache-team-a-0123456789abcdef01234567";
const KEY_A2: &str = "tg-cache-team-a-second-0123456789abcdef0";
const KEY_B: &str = "tg-cache-team-b-0123456789abcdef01234567";

fn key_secret(name: &str, team: &str, key: &str) -> String {
    format!(
        r#"
---
apiVersion: v1
kind: Secret
metadata:
  name: {name}
  namespace: default
  labels: {{tollgate.dev/client-key: "true"}}
  annotations: {{tollgate.dev/team: {team}}}
stringData: {{key: "{key}"}}"#
    )
}

/// A priced provider at the mock upstream `base` behind route `cached` (cache `cache`), an
/// embeddings route `embed` on the in-process mock, and three keys of teams a and b.
fn config(base: &str, cache: &str) -> String {
    format!(
        r#"
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMProvider
metadata: {{name: up, namespace: default}}
spec:
  type: openai-compatible
  baseURL: "{base}/v1"
  models: [{{name: m, pricing: {{input: "1", output: "2"}}}}]
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMProvider
metadata: {{name: mock, namespace: default}}
spec:
  type: mock
  models: [{{name: mock-embed, pricing: {{input: "0.02", output: "0"}}}}]
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMRoute
metadata: {{name: cached, namespace: default}}
spec:
  model: cached
  aliases: [cached-alias]
  backends: [{{providerRef: {{name: up}}, model: m}}]
  cache: {cache}
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMRoute
metadata: {{name: embed, namespace: default}}
spec:
  model: embed
  backends: [{{providerRef: {{name: mock}}, model: mock-embed}}]
{}{}{}"#,
        key_secret("a1", "team-a", KEY_A1),
        key_secret("a2", "team-a", KEY_A2),
        key_secret("b", "team-b", KEY_B),
    )
}

const EXACT: &str = "{ttl: 10m}";

struct Setup {
    g: Running,
    up: MockServer,
    _dir: tempfile::TempDir,
}

async fn setup_with(knobs: Knobs, cache: &str, options: impl FnOnce(Options) -> Options) -> Setup {
    let up = mock_upstream::spawn(knobs).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &config(&up.url(), cache));
    let g = server::start(options(test_options(ConfigSource::Dir(
        dir.path().to_path_buf(),
    ))))
    .await
    .unwrap();
    Setup { g, up, _dir: dir }
}

async fn setup(cache: &str) -> Setup {
    setup_with(Knobs::default(), cache, |o| o).await
}

fn ask(text: &str) -> Value {
    json!({"model": "cached", "messages": [{"role": "user", "content": text}], "max_tokens": 32})
}

fn streamed(text: &str) -> Value {
    let mut body = ask(text);
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    body
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", |v| v.to_str().unwrap())
    }

    fn cache(&self) -> &str {
        self.header("x-tollgate-cache")
    }
}

async fn send(g: &Running, key: &str, body: &Value, headers: &[(&str, &str)]) -> Answer {
    let mut req = http()
        .post(api(g, "/v1/chat/completions"))
        .bearer_auth(key)
        .json(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    Answer {
        status: r.status().as_u16(),
        headers: r.headers().clone(),
        body: r.text().await.unwrap(),
    }
}

fn chat_calls(up: &MockServer) -> usize {
    up.recorded()
        .iter()
        .filter(|r| r.path.ends_with("/chat/completions"))
        .count()
}

#[tokio::test]
async fn a_repeated_request_is_answered_once_upstream_then_from_the_cache_at_no_cost() {
    let dir = tempfile::tempdir().unwrap();
    let usage = dir.path().join("usage.jsonl");
    let usage_sink = UsageSink::File(usage.clone());
    let s = setup_with(Knobs::default(), EXACT, |o| Options {
        pays: PaysOptions {
            usage: usage_sink,
            ..PaysOptions::default()
        },
        ..o
    })
    .await;

    let first = send(&s.g, KEY_A1, &ask("hello cache"), &[]).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.cache(), "miss");
    let cost = first.header("x-tollgate-cost-usd").to_owned();
    assert_ne!(cost, "0");

    // The same question, fields reordered, another `user`, the route's alias: one answer.
    let again = json!({"max_tokens": 32, "user": "someone-else", "model": "cached-alias",
                       "messages": [{"content": "hello cache", "role": "user"}]});
    let second = send(&s.g, KEY_A1, &again, &[]).await;
    assert_eq!(second.status, 200, "{}", second.body);
    assert_eq!(second.cache(), "hit");
    assert_eq!(second.header("x-tollgate-cost-usd"), "0");
    assert_eq!(second.header("x-tollgate-route"), "default/cached");
    assert_eq!(second.header("x-tollgate-model"), "m");
    assert_eq!(second.body, first.body, "the stored answer, byte for byte");
    assert_eq!(chat_calls(&s.up), 1, "one upstream call for two answers");

    // A different parameter is a different answer.
    let mut hotter = ask("hello cache");
    hotter["temperature"] = json!(1.5);
    assert_eq!(send(&s.g, KEY_A1, &hotter, &[]).await.cache(), "miss");
    assert_eq!(chat_calls(&s.up), 2);

    let metrics = admin_text(&s.g, "/metrics").await;
    assert!(
        metrics.contains(r#"tollgate_cache_hits_total{route="default/cached",kind="exact"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"tollgate_cache_misses_total{route="default/cached"} 2"#),
        "{metrics}"
    );
    let saved =
        format!(r#"tollgate_cache_saved_usd_total{{route="default/cached",team="team-a"}} {cost}"#);
    assert!(metrics.contains(&saved), "{saved} in {metrics}");

    // The usage records: the miss with its cost, the hit at 0 with the cost it saved.
    let records = wait_for_records(&usage, 3).await;
    assert_eq!(records[0]["cache"], "miss");
    assert_eq!(records[1]["cache"], "hit");
    assert_eq!(records[1]["costUsd"], "0");
    assert_eq!(records[1]["costSavedUsd"].as_str().unwrap(), cost);
    assert_eq!(records[1]["team"], "team-a");
}

async fn wait_for_records(path: &Path, n: usize) -> Vec<Value> {
    for _ in 0..200 {
        if let Ok(text) = std::fs::read_to_string(path) {
            let lines: Vec<Value> = text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            if lines.len() >= n {
                return lines;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("fewer than {n} usage records in {}", path.display());
}

#[tokio::test]
async fn a_stream_is_replayed_as_the_same_frames_and_json_is_stored_apart() {
    let s = setup(EXACT).await;
    let first = send(&s.g, KEY_A1, &streamed("stream me"), &[]).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.cache(), "miss");
    let second = send(&s.g, KEY_A1, &streamed("stream me"), &[]).await;
    assert_eq!(second.cache(), "hit");
    assert_eq!(second.header("content-type"), "text/event-stream");
    assert_eq!(second.header("x-tollgate-cost-usd"), "0");
    assert_eq!(chat_calls(&s.up), 1);

    // Byte for byte, but for the cost comment, which is 0 on a hit.
    let cost = first
        .body
        .lines()
        .find(|l| l.starts_with(": x-tollgate-cost-usd="))
        .unwrap();
    assert_ne!(cost, ": x-tollgate-cost-usd=0");
    assert_eq!(
        second.body,
        first.body.replace(cost, ": x-tollgate-cost-usd=0")
    );
    // A complete stream: every chunk, the usage chunk, the end marker.
    let data = sse_data(&second.body);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    assert!(!streamed_text(&second.body).is_empty());
    let usage: Value = serde_json::from_str(&data[data.len() - 2]).unwrap();
    assert!(usage["usage"]["total_tokens"].as_u64().unwrap() > 0);

    // The same question without `stream` is another answer (JSON), fetched once.
    let json_answer = send(&s.g, KEY_A1, &ask("stream me"), &[]).await;
    assert_eq!(json_answer.cache(), "miss");
    assert_eq!(json_answer.header("content-type"), "application/json");
    assert_eq!(chat_calls(&s.up), 2);
    // And a stream without the usage chunk is another stream.
    let mut no_usage = streamed("stream me");
    no_usage.as_object_mut().unwrap().remove("stream_options");
    assert_eq!(send(&s.g, KEY_A1, &no_usage, &[]).await.cache(), "miss");
}

#[tokio::test]
async fn teams_never_see_each_others_answers() {
    let s = setup(EXACT).await;
    assert_eq!(
        send(&s.g, KEY_A1, &ask("secret plans"), &[]).await.cache(),
        "miss"
    );
    // Another key of the same team shares the answer.
    assert_eq!(
        send(&s.g, KEY_A2, &ask("secret plans"), &[]).await.cache(),
        "hit"
    );
    // Another team does not.
    assert_eq!(
        send(&s.g, KEY_B, &ask("secret plans"), &[]).await.cache(),
        "miss"
    );
    assert_eq!(chat_calls(&s.up), 2);
}

#[tokio::test]
async fn per_key_scope_keeps_keys_of_one_team_apart() {
    let s = setup("{ttl: 10m, scope: key}").await;
    assert_eq!(send(&s.g, KEY_A1, &ask("mine"), &[]).await.cache(), "miss");
    assert_eq!(send(&s.g, KEY_A1, &ask("mine"), &[]).await.cache(), "hit");
    assert_eq!(send(&s.g, KEY_A2, &ask("mine"), &[]).await.cache(), "miss");
    assert_eq!(chat_calls(&s.up), 2);
}

#[tokio::test]
async fn no_store_bypasses_and_no_cache_refreshes() {
    let s = setup(EXACT).await;
    let q = ask("fresh please");
    let bypass = send(&s.g, KEY_A1, &q, &[("cache-control", "no-store")]).await;
    assert_eq!(bypass.status, 200);
    assert_eq!(bypass.cache(), "bypass");
    // Nothing was stored.
    assert_eq!(send(&s.g, KEY_A1, &q, &[]).await.cache(), "miss");
    assert_eq!(send(&s.g, KEY_A1, &q, &[]).await.cache(), "hit");
    assert_eq!(chat_calls(&s.up), 2);
    // no-store on a stored answer: still fetched, and not served from the store.
    assert_eq!(
        send(&s.g, KEY_A1, &q, &[("cache-control", "no-store")])
            .await
            .cache(),
        "bypass"
    );
    assert_eq!(chat_calls(&s.up), 3);
    // no-cache: fetched again and stored again (the newer answer is served next).
    let refreshed = send(&s.g, KEY_A1, &q, &[("cache-control", "no-cache")]).await;
    assert_eq!(refreshed.cache(), "miss");
    assert_eq!(chat_calls(&s.up), 4);
    let next = send(&s.g, KEY_A1, &q, &[]).await;
    assert_eq!(next.cache(), "hit");
    assert_eq!(next.body, refreshed.body);
    assert_eq!(chat_calls(&s.up), 4);
}

#[tokio::test]
async fn a_cut_stream_or_a_failed_answer_is_not_stored() {
    let knobs = Knobs {
        disconnect_after: Some(2),
        ..Knobs::default()
    };
    let s = setup_with(knobs, EXACT, |o| o).await;
    for _ in 0..2 {
        let cut = send(&s.g, KEY_A1, &streamed("cut me"), &[]).await;
        assert_eq!(cut.cache(), "miss");
        assert!(!cut.body.contains("[DONE]"), "{}", cut.body);
    }
    assert_eq!(
        chat_calls(&s.up),
        2,
        "the cut stream was never served from the cache"
    );

    let failing = setup_with(
        Knobs {
            status: Some(500),
            ..Knobs::default()
        },
        EXACT,
        |o| o,
    )
    .await;
    for _ in 0..2 {
        assert_eq!(
            send(&failing.g, KEY_A1, &ask("fail"), &[]).await.status,
            502
        );
    }
    let metrics = admin_text(&failing.g, "/metrics").await;
    assert!(!metrics.contains("tollgate_cache_hits_total{"), "{metrics}");
}

#[tokio::test]
async fn an_answer_expires_after_its_ttl_on_the_gateway_clock() {
    let now = Arc::new(AtomicI64::new(1_800_000_000_000));
    let clock = WallClock::Manual(Arc::clone(&now));
    let s = setup_with(Knobs::default(), "{ttl: 1m}", |o| Options {
        pays: PaysOptions {
            clock,
            ..PaysOptions::default()
        },
        ..o
    })
    .await;
    assert_eq!(send(&s.g, KEY_A1, &ask("ttl"), &[]).await.cache(), "miss");
    now.fetch_add(59_000, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(send(&s.g, KEY_A1, &ask("ttl"), &[]).await.cache(), "hit");
    now.fetch_add(1_000, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(send(&s.g, KEY_A1, &ask("ttl"), &[]).await.cache(), "miss");
    assert_eq!(chat_calls(&s.up), 2);
}

#[tokio::test]
async fn an_answer_larger_than_max_entry_bytes_is_not_stored() {
    let knobs = Knobs {
        reply: "word ".repeat(400),
        ..Knobs::default()
    };
    let s = setup_with(knobs, "{ttl: 10m, maxEntryBytes: 1024}", |o| o).await;
    let mut big = ask("big");
    big["max_tokens"] = json!(1000);
    for _ in 0..2 {
        assert_eq!(send(&s.g, KEY_A1, &big, &[]).await.cache(), "miss");
    }
    assert_eq!(chat_calls(&s.up), 2);
    let metrics = admin_text(&s.g, "/metrics").await;
    assert!(
        metrics.contains(
            r#"tollgate_cache_not_stored_total{route="default/cached",reason="too-large"} 2"#
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn two_gateways_sharing_redis_share_the_exact_cache() {
    let Some(redis) = RedisServer::start("two_gateways_sharing_redis_share_the_exact_cache").await
    else {
        return;
    };
    let shared = |o: Options| Options {
        pays: PaysOptions {
            state: StateSettings::Redis {
                url: redis.url.clone(),
                timeout: Duration::from_secs(2),
                prefix: "cache-test:".to_owned(),
            },
            ..PaysOptions::default()
        },
        cache: CacheOptions {
            store: CacheStore::Shared,
            ..CacheOptions::default()
        },
        ..o
    };
    let s = setup_with(Knobs::default(), EXACT, shared).await;
    let second = server::start(shared(test_options(ConfigSource::Dir(
        s._dir.path().to_path_buf(),
    ))))
    .await
    .unwrap();
    let first = send(&s.g, KEY_A1, &streamed("shared"), &[]).await;
    assert_eq!(first.cache(), "miss");
    wait_for_redis_keys(&redis.url, 1).await;
    let replayed = send(&second, KEY_A2, &streamed("shared"), &[]).await;
    assert_eq!(
        replayed.cache(),
        "hit",
        "the other replica serves what the first stored"
    );
    assert_eq!(
        sse_data(&replayed.body).last().map(String::as_str),
        Some("[DONE]")
    );
    assert_eq!(streamed_text(&replayed.body), streamed_text(&first.body));
    assert_eq!(
        send(&second, KEY_B, &streamed("shared"), &[]).await.cache(),
        "miss"
    );
    assert_eq!(chat_calls(&s.up), 2);
}

/// Stores to Redis happen after the answer: wait (bounded) until `n` cache keys exist.
async fn wait_for_redis_keys(url: &str, n: usize) {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    for _ in 0..200 {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("cache-test:cache:*")
            .query_async(&mut conn)
            .await
            .unwrap();
        if keys.len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the answer never reached redis");
}

const SEMANTIC: &str = "{ttl: 10m, semantic: {embeddingRoute: {name: embed}, threshold: 0.9}}";

#[tokio::test]
async fn a_near_duplicate_prompt_is_served_from_the_semantic_cache() {
    let s = setup(SEMANTIC).await;
    let first = send(&s.g, KEY_A1, &ask("What is the capital of France?"), &[]).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.cache(), "miss");
    // Shares six of seven words (cosine ≈ 0.93 with the mock's embeddings): a hit.
    let near = send(
        &s.g,
        KEY_A1,
        &ask("Please, what is the capital of France?"),
        &[],
    )
    .await;
    assert_eq!(near.cache(), "hit");
    assert_eq!(near.body, first.body);
    assert_eq!(chat_calls(&s.up), 1);
    // A different question misses.
    let other = send(&s.g, KEY_A1, &ask("Write a haiku about autumn leaves"), &[]).await;
    assert_eq!(other.cache(), "miss");
    assert_eq!(chat_calls(&s.up), 2);
    // Another team misses the near duplicate.
    let team_b = send(
        &s.g,
        KEY_B,
        &ask("Please, what is the capital of France?"),
        &[],
    )
    .await;
    assert_eq!(team_b.cache(), "miss");
    assert_eq!(chat_calls(&s.up), 3);
    // Same prompt under another system prompt: another context, a miss.
    let mut framed = ask("Please, what is the capital of France?");
    framed["messages"] = json!([{"role": "system", "content": "answer in German"},
                                {"role": "user", "content": "Please, what is the capital of France?"}]);
    assert_eq!(send(&s.g, KEY_A1, &framed, &[]).await.cache(), "miss");
    let metrics = admin_text(&s.g, "/metrics").await;
    assert!(
        metrics.contains(r#"tollgate_cache_hits_total{route="default/cached",kind="semantic"} 1"#),
        "{metrics}"
    );
    // The embeddings went through the embeddings pipeline, metered like any request.
    assert!(
        metrics.contains(r#"gen_ai_operation_name="embeddings""#),
        "{metrics}"
    );
}

#[tokio::test]
async fn the_openai_python_sdk_reads_a_replayed_stream_as_complete() {
    let Some(python) = common::python_with_openai() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must provide python3 with the openai package (see .ci/run)"
        );
        println!("SKIPPED: no python3 with the `openai` package; `pip install openai` to run it");
        return;
    };
    let s = setup(EXACT).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/openai_cache.py");
    let base = api(&s.g, "/v1");
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .arg(script)
            .arg(base)
            .arg(KEY_A1)
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(chat_calls(&s.up), 1);
}

/// The Anthropic Messages door is cached in its own format: a repeat is one upstream call,
/// and a chat request with the same text is not answered with the Messages answer.
#[tokio::test]
async fn the_messages_door_is_cached_apart_from_chat() {
    let s = setup(EXACT).await;
    let body = json!({"model": "cached", "max_tokens": 32,
                      "messages": [{"role": "user", "content": "hello door"}]});
    let send_messages = |body: Value| {
        let url = api(&s.g, "/v1/messages");
        async move {
            let r = http()
                .post(url)
                .header("x-api-key", KEY_A1)
                .header("anthropic-version", "2023-06-01")
                .json(&body)
                .send()
                .await
                .unwrap();
            let cache = r.headers()["x-tollgate-cache"].to_str().unwrap().to_owned();
            let json: Value = r.json().await.unwrap();
            (cache, json)
        }
    };
    let (first_cache, first) = send_messages(body.clone()).await;
    assert_eq!(first_cache, "miss");
    assert_eq!(first["type"], "message", "{first}");
    let (second_cache, second) = send_messages(body).await;
    assert_eq!(second_cache, "hit");
    assert_eq!(second, first, "the hit is the stored Anthropic message");
    assert_eq!(chat_calls(&s.up), 1, "one upstream call for the two");
    let chat = send(&s.g, KEY_A1, &ask("hello door"), &[]).await;
    assert_eq!(
        chat.cache(),
        "miss",
        "a chat request never gets a Messages answer"
    );
    assert_eq!(chat.status, 200);
}

/// A prompt too large to hash on the async worker is keyed on the blocking pool, with the
/// same key: its repeat is a hit.
#[tokio::test]
async fn a_large_prompt_is_cached_like_a_small_one() {
    let s = setup(EXACT).await;
    let big = "lorem ipsum ".repeat(20_000);
    assert_eq!(send(&s.g, KEY_A1, &ask(&big), &[]).await.cache(), "miss");
    assert_eq!(send(&s.g, KEY_A1, &ask(&big), &[]).await.cache(), "hit");
    let mut other = big.clone();
    other.push('!');
    assert_eq!(send(&s.g, KEY_A1, &ask(&other), &[]).await.cache(), "miss");
    assert_eq!(chat_calls(&s.up), 2);
}
