use std::time::Duration;

use pretty_assertions::assert_eq;
use tokio::time::Instant;

use super::*;

const SECOND: Duration = Duration::from_secs(1);

#[test]
fn no_limits_always_fit() {
    let now = Instant::now();
    let quota = KeyQuota::new(None, None, now);
    for _ in 0..10_000 {
        assert!(quota.try_acquire(now, 1_000_000));
    }
    quota.settle(now, 0, u64::MAX);
    assert!(quota.try_acquire(now, u64::MAX));
    assert_eq!(quota.ready_at(now, u64::MAX), now);
}

#[test]
fn requests_run_out_and_refill_continuously() {
    let t0 = Instant::now();
    // 60 rpm: one request per second.
    let quota = KeyQuota::new(Some(60), None, t0);
    for i in 0..60 {
        assert!(quota.try_acquire(t0, 0), "request {i}");
    }
    assert!(!quota.try_acquire(t0, 0));
    assert_eq!(quota.ready_at(t0, 0), t0 + SECOND);
    // Not a nanosecond early.
    assert!(!quota.try_acquire(t0 + SECOND - Duration::from_nanos(1), 0));
    assert!(quota.try_acquire(t0 + SECOND, 0));
    assert!(!quota.try_acquire(t0 + SECOND, 0));
    // 2.5s later, two more (and half of the next).
    let t1 = t0 + Duration::from_millis(3_500);
    assert!(quota.try_acquire(t1, 0));
    assert!(quota.try_acquire(t1, 0));
    assert!(!quota.try_acquire(t1, 0));
    assert_eq!(quota.ready_at(t1, 0), t1 + Duration::from_millis(500));
}

#[test]
fn refill_stops_at_the_limit() {
    let t0 = Instant::now();
    let quota = KeyQuota::new(Some(10), None, t0);
    let later = t0 + Duration::from_secs(3_600);
    let granted = (0..100).filter(|_| quota.try_acquire(later, 0)).count();
    assert_eq!(granted, 10);
}

#[test]
fn odd_rpm_refills_exactly() {
    let t0 = Instant::now();
    // 7 rpm: one request every 60/7 s = 8.571428572s (rounded up to the nanosecond).
    let quota = KeyQuota::new(Some(7), None, t0);
    assert_eq!((0..7).filter(|_| quota.try_acquire(t0, 0)).count(), 7);
    let ready = quota.ready_at(t0, 0);
    assert_eq!(ready - t0, Duration::from_nanos(8_571_428_572));
    assert!(!quota.try_acquire(ready - Duration::from_nanos(1), 0));
    assert!(quota.try_acquire(ready, 0));
}

#[test]
fn tokens_reserve_estimates() {
    let t0 = Instant::now();
    // 6000 tpm: 100 tokens per second.
    let quota = KeyQuota::new(None, Some(6_000), t0);
    assert!(quota.try_acquire(t0, 4_000));
    assert!(!quota.try_acquire(t0, 2_001));
    assert_eq!(quota.ready_at(t0, 2_001), t0 + Duration::from_millis(10));
    assert!(quota.try_acquire(t0, 2_000));
    assert!(!quota.try_acquire(t0, 1));
    assert_eq!(quota.ready_at(t0, 500), t0 + Duration::from_secs(5));
    assert!(quota.try_acquire(t0 + Duration::from_secs(5), 500));
}

#[test]
fn settle_refunds_overestimates_up_to_the_limit() {
    let t0 = Instant::now();
    let quota = KeyQuota::new(None, Some(6_000), t0);
    assert!(quota.try_acquire(t0, 5_000));
    // Only 1000 were used: 4000 come back.
    quota.settle(t0, 5_000, 1_000);
    assert!(quota.try_acquire(t0, 5_000));
    assert!(!quota.try_acquire(t0, 1));
    // A refund never overfills the bucket.
    let quota = KeyQuota::new(None, Some(6_000), t0);
    quota.settle(t0, 10_000, 0);
    assert_eq!(quota.ready_at(t0, 6_000), t0);
    assert!(quota.try_acquire(t0, 6_000));
    assert!(!quota.try_acquire(t0, 1));
}

#[test]
fn settle_charges_underestimates_as_debt() {
    let t0 = Instant::now();
    // 100 tokens per second.
    let quota = KeyQuota::new(None, Some(6_000), t0);
    assert!(quota.try_acquire(t0, 1_000));
    // The answer used 9000 tokens: 6000 - 9000 leaves 3000 in debt.
    quota.settle(t0, 1_000, 9_000);
    assert!(!quota.try_acquire(t0, 0));
    assert!(!quota.try_acquire(t0, 1));
    // The debt is repaid at 100/s: 30s, then 1s more for 100 tokens.
    assert_eq!(quota.ready_at(t0, 100), t0 + Duration::from_secs(31));
    assert!(!quota.try_acquire(t0 + Duration::from_secs(30), 100));
    assert!(quota.try_acquire(t0 + Duration::from_secs(31), 100));
}

#[test]
fn zero_estimate_still_waits_out_a_debt() {
    let t0 = Instant::now();
    let quota = KeyQuota::new(None, Some(60), t0);
    quota.settle(t0, 0, 120);
    // -60 tokens at 1/s.
    assert!(!quota.try_acquire(t0, 0));
    assert_eq!(quota.ready_at(t0, 0), t0 + Duration::from_secs(60));
    assert!(quota.try_acquire(t0 + Duration::from_secs(60), 0));
}

#[test]
fn oversized_requests_wait_for_a_full_bucket() {
    let t0 = Instant::now();
    let quota = KeyQuota::new(None, Some(1_000), t0);
    // Larger than the whole limit: let through when full, or it could never run.
    assert!(quota.try_acquire(t0, 5_000));
    // 4000 in debt, plus a full bucket for the next oversized one: 5000 tokens at 1000/min.
    assert_eq!(quota.ready_at(t0, 5_000), t0 + Duration::from_secs(300));
    assert!(!quota.try_acquire(t0 + Duration::from_secs(299), 5_000));
    assert!(quota.try_acquire(t0 + Duration::from_secs(300), 5_000));
}

#[test]
fn both_limits_must_have_room() {
    let t0 = Instant::now();
    let quota = KeyQuota::new(Some(2), Some(1_000), t0);
    assert!(quota.try_acquire(t0, 600));
    // Tokens lack room: the request is not reserved either.
    assert!(!quota.try_acquire(t0, 600));
    assert!(quota.try_acquire(t0, 400));
    // Requests lack room now (2 used), whatever the tokens; one refills every 30s.
    assert!(!quota.try_acquire(t0, 0));
    assert_eq!(quota.ready_at(t0, 0), t0 + Duration::from_secs(30));
    // ready_at is the later of the two.
    let quota = KeyQuota::new(Some(60), Some(60), t0);
    assert!(quota.try_acquire(t0, 60));
    // Requests: 59 left, ready now; tokens: 10 needed at 1/s.
    assert_eq!(quota.ready_at(t0, 10), t0 + Duration::from_secs(10));
    let quota = KeyQuota::new(Some(1), Some(6_000), t0);
    assert!(quota.try_acquire(t0, 10));
    // Tokens have room; the request refills in 60s.
    assert_eq!(quota.ready_at(t0, 10), t0 + Duration::from_secs(60));
}

#[test]
fn a_failed_acquire_reserves_nothing() {
    let t0 = Instant::now();
    let quota = KeyQuota::new(Some(3), Some(100), t0);
    assert!(quota.try_acquire(t0, 100));
    // Refused for lack of tokens, five times: no request is taken.
    for _ in 0..5 {
        assert!(!quota.try_acquire(t0, 1));
    }
    // The two remaining requests are still there (requests without tokens fit).
    assert!(quota.try_acquire(t0, 0));
    assert!(quota.try_acquire(t0, 0));
    assert!(!quota.try_acquire(t0, 0));
}

#[test]
fn time_going_backwards_is_harmless() {
    let t0 = Instant::now() + Duration::from_secs(10);
    let quota = KeyQuota::new(Some(60), None, t0);
    for _ in 0..60 {
        assert!(quota.try_acquire(t0, 0));
    }
    // An earlier `now` (racing callers) neither refills nor breaks anything.
    let earlier = t0 - Duration::from_secs(5);
    assert!(!quota.try_acquire(earlier, 0));
    assert_eq!(quota.ready_at(earlier, 0), earlier + SECOND);
    assert!(quota.try_acquire(t0 + SECOND, 0));
}

#[test]
fn zero_limits_are_treated_as_one() {
    let t0 = Instant::now();
    let quota = KeyQuota::new(Some(0), None, t0);
    assert!(quota.try_acquire(t0, 0));
    assert!(!quota.try_acquire(t0, 0));
    assert_eq!(quota.ready_at(t0, 0), t0 + Duration::from_secs(60));
}

#[test]
fn huge_debt_is_capped_at_the_horizon() {
    let t0 = Instant::now();
    let quota = KeyQuota::new(None, Some(1), t0);
    quota.settle(t0, 0, u64::MAX);
    assert_eq!(quota.ready_at(t0, 1), t0 + super::super::MAX_HORIZON);
}
