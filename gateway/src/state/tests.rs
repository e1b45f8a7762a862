//! One behaviour table, run against the in-process store and against a real Redis.

use std::{sync::Arc, time::Duration};

use super::{Admission, StateError, StateSettings, StateStore, Window, redis_server::RedisServer};

const T0: u64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
const HOUR: u64 = 3_600_000;

fn memory() -> StateStore {
    StateStore::new(&StateSettings::Memory).unwrap()
}

fn redis(url: &str, prefix: &str) -> StateStore {
    StateStore::new(&StateSettings::Redis {
        url: url.to_owned(),
        timeout: Duration::from_secs(2),
        prefix: prefix.to_owned(),
    })
    .unwrap()
}

async fn reserve_admits_up_to_the_limit_and_settles(s: &StateStore) {
    let r = s.counter_reserve("b", 60, 100, HOUR, T0).await.unwrap();
    assert_eq!(r, Admission::Granted { total: 60 });
    // 60 + 50 > 100: refused, and nothing is counted.
    let r = s.counter_reserve("b", 50, 100, HOUR, T0).await.unwrap();
    assert_eq!(r, Admission::Denied { total: 60 });
    assert_eq!(s.counter_get("b", T0).await.unwrap(), 60);
    // Exactly up to the limit is allowed.
    assert!(
        s.counter_reserve("b", 40, 100, HOUR, T0)
            .await
            .unwrap()
            .granted()
    );
    // At the limit even a zero estimate is refused.
    assert!(
        !s.counter_reserve("b", 0, 100, HOUR, T0)
            .await
            .unwrap()
            .granted()
    );
    // Settling: the real cost was 25 less than reserved.
    assert_eq!(s.counter_add("b", -25, HOUR, T0).await.unwrap(), 75);
    assert!(
        s.counter_reserve("b", 25, 100, HOUR, T0)
            .await
            .unwrap()
            .granted()
    );
}

async fn raise_only_raises(s: &StateStore) {
    assert_eq!(s.counter_raise("r", 500, HOUR, T0).await.unwrap(), 500);
    assert_eq!(s.counter_raise("r", 200, HOUR, T0).await.unwrap(), 500);
    assert_eq!(s.counter_add("r", 1, HOUR, T0).await.unwrap(), 501);
}

async fn windows_forget_old_amounts(s: &StateStore) {
    let w = Window {
        len_ms: 60_000,
        bucket_ms: 10_000,
    };
    assert_eq!(s.window_add("w", 30, w, T0, T0).await.unwrap(), 30);
    let later = T0 + 30_000;
    assert_eq!(s.window_add("w", 20, w, later, later).await.unwrap(), 50);
    let r = s.window_reserve("w", 60, 100, w, later).await.unwrap();
    assert_eq!(r, Admission::Denied { total: 50 });
    // Settling into the reservation's bucket: the 20 reserved at `later` cost 15.
    assert_eq!(s.window_add("w", -5, w, later, later).await.unwrap(), 45);
    // 60 s after T0 the first bucket has left the window; the second is still in it.
    let after = T0 + 60_000;
    assert_eq!(s.window_get("w", w, after).await.unwrap(), 15);
    assert!(
        s.window_reserve("w", 85, 100, w, after)
            .await
            .unwrap()
            .granted()
    );
    // A settlement for a bucket that already left the window is dropped.
    assert_eq!(s.window_add("w", -30, w, T0, after).await.unwrap(), 100);
    assert_eq!(s.window_get("w", w, after + 120_000).await.unwrap(), 0);
}

async fn kv_round_trips(s: &StateStore) {
    assert_eq!(s.kv_get("k", T0).await.unwrap(), None);
    s.kv_set("k", b"\x00answer", HOUR, T0).await.unwrap();
    assert_eq!(
        s.kv_get("k", T0).await.unwrap().as_deref(),
        Some(&b"\x00answer"[..])
    );
}

async fn a_key_keeps_its_kind(s: &StateStore) {
    s.kv_set("kind", b"x", HOUR, T0).await.unwrap();
    let err = s.counter_add("kind", 1, HOUR, T0).await.unwrap_err();
    assert!(
        matches!(err, StateError::WrongKind(_) | StateError::Redis(_)),
        "{err:?}"
    );
}

/// 40 concurrent reservations of 10 against a limit of 200, spread over `stores` (replicas):
/// exactly 20 are admitted and the counter ends at the limit.
async fn concurrent_reservations_never_overshoot(stores: Vec<Arc<StateStore>>) {
    let mut tasks = Vec::new();
    for i in 0..40 {
        let s = Arc::clone(&stores[i % stores.len()]);
        tasks.push(tokio::spawn(async move {
            s.counter_reserve("c", 10, 200, HOUR, T0).await.unwrap()
        }));
    }
    let mut granted = 0;
    for t in tasks {
        granted += usize::from(t.await.unwrap().granted());
    }
    assert_eq!(granted, 20);
    assert_eq!(stores[0].counter_get("c", T0).await.unwrap(), 200);
}

#[tokio::test]
async fn memory_backend_behaves() {
    let s = memory();
    reserve_admits_up_to_the_limit_and_settles(&s).await;
    raise_only_raises(&s).await;
    windows_forget_old_amounts(&s).await;
    kv_round_trips(&s).await;
    a_key_keeps_its_kind(&s).await;
    concurrent_reservations_never_overshoot(vec![Arc::new(memory())]).await;
}

#[tokio::test]
async fn memory_entries_expire_with_the_callers_clock() {
    let s = memory();
    s.counter_add("e", 7, 1_000, T0).await.unwrap();
    s.kv_set("v", b"1", 1_000, T0).await.unwrap();
    assert_eq!(s.counter_get("e", T0 + 999).await.unwrap(), 7);
    assert_eq!(s.counter_get("e", T0 + 1_000).await.unwrap(), 0);
    assert_eq!(s.kv_get("v", T0 + 1_000).await.unwrap(), None);
    // An expired counter starts again from zero.
    assert_eq!(s.counter_add("e", 2, 1_000, T0 + 5_000).await.unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_backend_behaves_like_memory() {
    let Some(server) = RedisServer::start("redis_backend_behaves_like_memory").await else {
        return;
    };
    let s = redis(&server.url, "t1:");
    reserve_admits_up_to_the_limit_and_settles(&s).await;
    raise_only_raises(&s).await;
    windows_forget_old_amounts(&s).await;
    kv_round_trips(&s).await;
    a_key_keeps_its_kind(&s).await;
    // Two stores = two gateway replicas sharing one Redis.
    let replicas = vec![
        Arc::new(redis(&server.url, "t2:")),
        Arc::new(redis(&server.url, "t2:")),
    ];
    concurrent_reservations_never_overshoot(replicas).await;
    // Prefixes keep gateways apart.
    assert_eq!(s.counter_get("c", T0).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_is_an_error_not_a_hang() {
    let Some(mut server) = RedisServer::start("redis_down_is_an_error_not_a_hang").await else {
        return;
    };
    let s = StateStore::new(&StateSettings::Redis {
        url: server.url.clone(),
        timeout: Duration::from_millis(300),
        prefix: String::new(),
    })
    .unwrap();
    assert!(s.counter_add("x", 1, HOUR, T0).await.is_ok());
    server.kill();
    // The bound here only keeps a broken build from hanging CI; the store's own timeout is
    // what answers.
    let result = tokio::time::timeout(
        Duration::from_secs(30),
        s.counter_reserve("x", 1, 10, HOUR, T0),
    )
    .await
    .expect("the store answers on its own");
    assert!(
        matches!(result, Err(StateError::Timeout(_) | StateError::Redis(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_redis_url_never_shows_in_errors_or_debug() {
    let s = redis("redis://user:hunter2@127.0.0.1:1", "p:");
    assert!(!format!("{s:?}").contains("hunter2"));
    let bad = StateStore::new(&StateSettings::Redis {
        url: "not a url :hunter2".to_owned(),
        timeout: Duration::from_secs(1),
        prefix: String::new(),
    })
    .unwrap_err();
    assert!(!bad.to_string().contains("hunter2"));
}

/// Stored entries are bounded in memory: past the limit a write is refused (the caller
/// serves without storing), and space comes back as entries are deleted or expire.
#[tokio::test]
async fn in_process_key_value_entries_are_bounded_in_bytes() {
    let s = StateStore::Memory(super::MemoryState::with_kv_limit(1000));
    let now = 1_000_000;
    s.kv_set("a", &[1; 600], 10_000, now).await.unwrap();
    let full = s.kv_set("b", &[2; 600], 10_000, now).await;
    assert!(matches!(full, Err(StateError::Full(1000))), "{full:?}");
    // Replacing an entry counts only the difference.
    s.kv_set("a", &[3; 900], 10_000, now).await.unwrap();
    assert!(s.kv_delete("a", now).await.unwrap());
    s.kv_set("b", &[2; 600], 1_000, now).await.unwrap();
    assert_eq!(
        s.kv_get("b", now).await.unwrap().map(|v| v.len()),
        Some(600)
    );
    // Once "b" has expired, a full store sweeps it and takes the new entry.
    let later = now + 2_000;
    s.kv_set("c", &[4; 700], 10_000, later).await.unwrap();
    assert_eq!(
        s.kv_get("c", later).await.unwrap().map(|v| v.len()),
        Some(700)
    );
}
