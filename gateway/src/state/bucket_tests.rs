//! The bucket arithmetic with a driven clock, as one table run against the in-process store
//! and a real Redis (the Lua script must agree with the Rust to the unit).

use std::time::Duration;

use super::*;
use crate::state::{StateSettings, StateStore, redis_server::RedisServer};

const T0: u64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

fn op(key: &str, per_minute: u32, tokens: i64) -> BucketOp {
    BucketOp {
        key: key.to_owned(),
        per_minute,
        tokens,
    }
}

async fn take(s: &StateStore, ops: &[BucketOp], now: u64) -> Taken {
    s.buckets_take(ops, now).await.unwrap()
}

async fn sixty_per_minute_admits_sixty_then_one_per_second(s: &StateStore) {
    let rpm = [op("rpm", 60, 1)];
    for i in 0..60 {
        let t = take(s, &rpm, T0).await;
        assert!(t.granted, "request {i}");
        assert_eq!(t.levels[0].remaining(), 59 - i);
    }
    let refused = take(s, &rpm, T0).await;
    assert!(!refused.granted);
    assert_eq!(refused.levels[0].ready_in_ms(1), 1_000);
    assert_eq!(refused.levels[0].full_in_ms(), 60_000);
    // Not a millisecond early.
    assert!(!take(s, &rpm, T0 + 999).await.granted);
    assert!(take(s, &rpm, T0 + 1_000).await.granted);
    assert!(!take(s, &rpm, T0 + 1_000).await.granted);
    // A minute later the bucket is full again, and no fuller.
    let t = take(s, &rpm, T0 + 3_600_000).await;
    assert_eq!(t.levels[0].remaining(), 59);
}

async fn a_take_is_all_or_none(s: &StateStore) {
    let both = [op("a-req", 10, 1), op("a-tok", 100, 80)];
    assert!(take(s, &both, T0).await.granted);
    // Requests have room, tokens do not: nothing is taken from either.
    let refused = take(s, &both, T0).await;
    assert!(!refused.granted);
    assert_eq!(
        refused.levels[0].remaining(),
        9,
        "the request was not counted"
    );
    assert_eq!(refused.levels[1].remaining(), 20);
    // 80 - 20 = 60 tokens short at 100/min: 36 s.
    assert_eq!(refused.levels[1].ready_in_ms(80), 36_000);
}

async fn adjusting_settles_a_reservation(s: &StateStore) {
    let reserve = [op("tpm", 1_000, 600)];
    assert!(take(s, &reserve, T0).await.granted);
    assert!(!take(s, &[op("tpm", 1_000, 500)], T0).await.granted);
    // The answer used 200 tokens, not 600: 400 come back, and 500 now fit.
    let after = s
        .buckets_adjust(&[op("tpm", 1_000, 400)], T0)
        .await
        .unwrap();
    assert_eq!(after[0].remaining(), 800);
    assert!(take(s, &[op("tpm", 1_000, 500)], T0).await.granted);
    // Another used 900 more than reserved: the bucket owes them, and refills first.
    let after = s
        .buckets_adjust(&[op("tpm", 1_000, -900)], T0)
        .await
        .unwrap();
    assert_eq!(after[0].units, -600 * UNITS_PER_TOKEN);
    assert_eq!(after[0].remaining(), 0);
    assert_eq!(after[0].ready_in_ms(1), 36_060);
    // Giving back never fills above the limit.
    let after = s
        .buckets_adjust(&[op("tpm", 1_000, 1_000_000)], T0)
        .await
        .unwrap();
    assert_eq!(after[0].remaining(), 1_000);
}

async fn an_amount_above_the_limit_needs_a_full_bucket(s: &StateStore) {
    let big = [op("big", 100, 250)];
    let t = take(s, &big, T0).await;
    assert!(t.granted, "a full bucket admits it");
    assert_eq!(t.levels[0].units, -150 * UNITS_PER_TOKEN);
    let refused = take(s, &big, T0 + 60_000).await;
    assert!(!refused.granted, "the debt is repaid first");
    assert_eq!(refused.levels[0].ready_in_ms(250), 90_000);
    assert!(take(s, &big, T0 + 150_000).await.granted);
}

async fn large_limits_stay_exact(s: &StateStore) {
    // Near the largest limit and amount: one unit off would show.
    let limit = u32::MAX;
    let t = take(s, &[op("huge", limit, i64::from(u32::MAX) - 1)], T0).await;
    assert!(t.granted);
    assert_eq!(t.levels[0].units, UNITS_PER_TOKEN);
    let t = take(s, &[op("huge", limit, 1)], T0 + 7).await;
    assert_eq!(t.levels[0].units, 7 * i64::from(limit));
}

async fn a_clock_behind_refills_nothing(s: &StateStore) {
    let rpm = [op("skew", 60, 1)];
    for _ in 0..60 {
        assert!(take(s, &rpm, T0 + 5_000).await.granted);
    }
    // Another replica's clock is 5 s behind: no refill, no negative refill either.
    assert!(!take(s, &rpm, T0).await.granted);
    assert!(take(s, &rpm, T0 + 6_000).await.granted);
}

async fn run_table(s: &StateStore) {
    sixty_per_minute_admits_sixty_then_one_per_second(s).await;
    a_take_is_all_or_none(s).await;
    adjusting_settles_a_reservation(s).await;
    an_amount_above_the_limit_needs_a_full_bucket(s).await;
    large_limits_stay_exact(s).await;
    a_clock_behind_refills_nothing(s).await;
}

#[tokio::test]
async fn buckets_in_memory() {
    run_table(&StateStore::new(&StateSettings::Memory).unwrap()).await;
}

#[tokio::test]
async fn buckets_in_redis_match_memory() {
    let Some(redis) = RedisServer::start("buckets_in_redis_match_memory").await else {
        return;
    };
    let store = StateStore::new(&StateSettings::Redis {
        url: redis.url.clone(),
        timeout: Duration::from_secs(2),
        prefix: "bucket-test:".to_owned(),
    })
    .unwrap();
    run_table(&store).await;
}

#[test]
fn a_full_bucket_is_not_stored() {
    let o = op("k", 60, 1);
    assert_eq!(keep_ms(60 * UNITS_PER_TOKEN, &o), 0);
    assert_eq!(keep_ms(59 * UNITS_PER_TOKEN, &o), 1_000);
}
