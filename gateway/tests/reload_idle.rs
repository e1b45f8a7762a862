//! The config watcher must not re-trigger itself: reading the config produces open/access
//! events, which must neither reload an idle gateway nor reject (and log) one invalid write
//! again and again.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a broken fixture should fail the test loudly

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;
use tollgate_gateway::{
    config::ConfigSource,
    server::{self, Options},
};

/// How long the tests watch an idle gateway: many periodic re-checks (200 ms) long.
const WATCH: Duration = Duration::from_millis(1500);

fn rejections(metrics: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(r#"tollgate_config_reloads_total{result="rejected"} "#))
        .map_or(0, |n| n.trim().parse().unwrap())
}

#[tokio::test]
async fn an_idle_gateway_does_not_reload() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), MOCK);
    // No periodic re-check within the test: only file events could trigger a reload.
    let g = server::start(Options {
        recheck: Duration::from_secs(3600),
        ..test_options(ConfigSource::Dir(dir.path().to_path_buf()))
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before: Value = admin_json(&g, "/config/status").await;
    tokio::time::sleep(WATCH).await;
    let after: Value = admin_json(&g, "/config/status").await;
    assert_eq!(
        before["lastAttempt"], after["lastAttempt"],
        "an idle gateway with unchanged files reloaded"
    );
    g.shutdown().await;
}

#[tokio::test]
async fn one_invalid_write_is_rejected_once() {
    let (g, dir) = start_with(MOCK).await;
    write_raw_config(dir.path(), "{ this is not json");
    let mut status = Value::Null;
    for _ in 0..50 {
        status = admin_json(&g, "/config/status").await;
        if status["lastError"].is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(status["lastError"].is_string(), "{status}");
    tokio::time::sleep(WATCH).await;
    let metrics = admin_text(&g, "/metrics").await;
    assert_eq!(rejections(&metrics), 1, "{metrics}");

    // A real change is still picked up by the same watcher.
    write_config(dir.path(), MOCK);
    for _ in 0..50 {
        status = admin_json(&g, "/config/status").await;
        if status["lastError"].is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(status["lastError"].is_null(), "{status}");
    g.shutdown().await;
}
