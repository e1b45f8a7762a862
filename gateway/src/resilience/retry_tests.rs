use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use pretty_assertions::assert_eq;

use super::*;

const MS: Duration = Duration::from_millis(1);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn jitter_spans_the_window() {
    let (initial, max) = (ms(100), ms(10_000));
    // retry 0: [0, 100ms); retry 3: [0, 800ms).
    assert_eq!(backoff_with(0, initial, max, None, 0.0), Duration::ZERO);
    assert_eq!(backoff_with(0, initial, max, None, 0.5), ms(50));
    let top = backoff_with(0, initial, max, None, 0.999_999);
    assert!(top < ms(100) && top > ms(99), "{top:?}");
    assert_eq!(backoff_with(3, initial, max, None, 0.0), Duration::ZERO);
    assert_eq!(backoff_with(3, initial, max, None, 0.25), ms(200));
    let top = backoff_with(3, initial, max, None, 0.999_999);
    assert!(top < ms(800) && top > ms(799), "{top:?}");
}

#[test]
fn window_is_capped_at_max() {
    let (initial, max) = (ms(100), ms(1_000));
    assert_eq!(backoff_with(4, initial, max, None, 0.5), ms(500));
    assert_eq!(backoff_with(10, initial, max, None, 0.5), ms(500));
    // Exponents that overflow stay at the cap.
    assert_eq!(backoff_with(40, initial, max, None, 0.5), ms(500));
    assert_eq!(backoff_with(u32::MAX, initial, max, None, 0.5), ms(500));
    assert_eq!(
        backoff_with(10, Duration::MAX, Duration::MAX, None, 0.0),
        Duration::ZERO
    );
}

#[test]
fn odd_units_are_clamped() {
    let (initial, max) = (ms(100), ms(1_000));
    assert_eq!(
        backoff_with(0, initial, max, None, f64::NAN),
        Duration::ZERO
    );
    assert_eq!(backoff_with(0, initial, max, None, -3.0), Duration::ZERO);
    assert_eq!(backoff_with(0, initial, max, None, 7.0), ms(100));
    assert_eq!(backoff_with(0, initial, max, None, f64::INFINITY), ms(100));
}

#[test]
fn retry_after_takes_precedence() {
    let (initial, max) = (ms(100), ms(1_000));
    for unit in [0.0, 0.5, 0.99] {
        assert_eq!(
            backoff_with(0, initial, max, Some(ms(1_234)), unit),
            ms(1_234)
        );
        assert_eq!(backoff_with(5, initial, max, Some(MS), unit), MS);
    }
    assert_eq!(backoff(2, initial, max, Some(ms(30_000))), ms(30_000));
}

#[test]
fn random_backoff_stays_in_the_window() {
    for retry in 0..8 {
        for _ in 0..200 {
            let delay = backoff(retry, ms(50), ms(2_000), None);
            assert!(delay < ms(50 << retry).min(ms(2_000)), "{retry}: {delay:?}");
        }
    }
}

/// Every request wants one retry; returns how many the budget allowed.
fn storm(budget: &RetryBudget, requests: u32) -> u32 {
    let mut allowed = 0;
    for _ in 0..requests {
        budget.on_request();
        if budget.try_retry() {
            allowed += 1;
        }
    }
    allowed
}

fn balance(budget: &RetryBudget) -> i64 {
    budget.milli_tokens.load(Ordering::Acquire)
}

#[test]
fn budget_caps_retries_at_the_percentage() {
    let budget = RetryBudget::new(20);
    assert_eq!(budget.percent(), 20);
    // 10 initial tokens (the first request's 0.2 is lost to the 10-token cap) plus
    // 999 * 0.2 = 199.8 deposited: 209 retries, 0.8 of a token left.
    assert_eq!(storm(&budget, 1000), 209);
    assert_eq!(balance(&budget), 800);
    // Steady state: one retry per five requests.
    assert_eq!(storm(&budget, 1000), 200);
}

#[test]
fn zero_percent_allows_only_the_initial_allowance() {
    let budget = RetryBudget::new(0);
    assert_eq!(storm(&budget, 1000), BUDGET_INITIAL_TOKENS as u32);
    assert_eq!(balance(&budget), 0);
    assert!(!budget.try_retry());
}

#[test]
fn hundred_percent_allows_a_retry_per_request() {
    let budget = RetryBudget::new(100);
    assert_eq!(storm(&budget, 1000), 1000);
}

#[test]
fn quiet_periods_bank_at_most_the_cap() {
    let budget = RetryBudget::new(50);
    for _ in 0..10_000 {
        budget.on_request();
    }
    assert_eq!(balance(&budget), BUDGET_MAX_TOKENS * 1000);
    let retries = std::iter::from_fn(|| budget.try_retry().then_some(())).count();
    assert_eq!(retries, BUDGET_MAX_TOKENS as usize);
}

#[test]
fn concurrent_withdrawals_never_overdraw() {
    let budget = RetryBudget::new(0);
    let allowed = AtomicU64::new(0);
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                for _ in 0..500 {
                    if budget.try_retry() {
                        allowed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    assert_eq!(
        allowed.load(Ordering::Relaxed),
        BUDGET_INITIAL_TOKENS as u64
    );
    assert_eq!(balance(&budget), 0);
}

#[test]
fn concurrent_storm_respects_the_budget() {
    let budget = RetryBudget::new(20);
    let allowed = AtomicU64::new(0);
    let (threads, per_thread) = (8u64, 2_000u64);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                for _ in 0..per_thread {
                    budget.on_request();
                    if budget.try_retry() {
                        allowed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let allowed = allowed.load(Ordering::Relaxed);
    let deposited_milli = threads * per_thread * 200;
    // Never more than the allowance plus what was deposited; the cap may only lose some.
    assert!(
        allowed <= BUDGET_INITIAL_TOKENS as u64 + deposited_milli / 1000,
        "{allowed}"
    );
    // Accounting is exact: what is left is what was put in minus what was taken, minus what
    // the cap discarded (so never more).
    let left = balance(&budget);
    assert!((0..=BUDGET_MAX_TOKENS * 1000).contains(&left), "{left}");
    assert!(
        left as u64 + allowed * 1000 <= BUDGET_INITIAL_TOKENS as u64 * 1000 + deposited_milli,
        "{left} {allowed}"
    );
    // Every retry attempt happened right after a deposit, so nearly a fifth were allowed.
    assert!(allowed >= threads * per_thread / 5 * 9 / 10, "{allowed}");
}
