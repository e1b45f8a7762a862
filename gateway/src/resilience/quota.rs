//! A provider credential's own quota (`LLMProvider` `spec.limits`, per credential): requests
//! and tokens per minute, as token buckets refilled continuously.
//!
//! Buckets count in exact integers: one request (or token) is `NANOS_PER_MINUTE` units, so a
//! bucket of `per_minute` refills by exactly `per_minute` units per nanosecond. No float
//! drift, and tests can assert exact instants.

#![allow(
    clippy::disallowed_types,
    reason = "only keys with limits have a quota; its two buckets change together under a lock held for a few instructions"
)]

use std::sync::{
    Mutex, PoisonError,
    atomic::{AtomicU64, Ordering},
};
use std::time::Duration;

use tokio::time::Instant;

use super::after;

/// Units per request or token: a limit of `n` per minute refills `n` units per nanosecond.
const NANOS_PER_MINUTE: i128 = 60_000_000_000;

/// One continuously refilled bucket.
#[derive(Debug)]
struct Bucket {
    /// The limit per minute (at least 1).
    per_minute: i128,
    /// Scaled by `NANOS_PER_MINUTE`; negative is debt.
    level: i128,
    /// When `level` was last refilled.
    updated: Instant,
}

impl Bucket {
    /// A full bucket. A zero limit (the CRD forbids it) is treated as 1.
    fn new(per_minute: u32, now: Instant) -> Self {
        let per_minute = i128::from(per_minute.max(1));
        Self {
            per_minute,
            level: per_minute * NANOS_PER_MINUTE,
            updated: now,
        }
    }

    fn capacity(&self) -> i128 {
        self.per_minute * NANOS_PER_MINUTE
    }

    fn refill(&mut self, now: Instant) {
        if now <= self.updated {
            return;
        }
        let elapsed = i128::try_from((now - self.updated).as_nanos()).unwrap_or(i128::MAX);
        self.level = self
            .level
            .saturating_add(elapsed.saturating_mul(self.per_minute))
            .min(self.capacity());
        self.updated = now;
    }

    fn units(amount: u64) -> i128 {
        i128::from(amount) * NANOS_PER_MINUTE
    }

    /// The level `amount` needs. A request larger than the whole bucket needs a full bucket
    /// (and leaves it in debt): otherwise it could never be served.
    fn needed(&self, amount: u64) -> i128 {
        Self::units(amount).min(self.capacity())
    }

    fn has_room(&self, amount: u64) -> bool {
        self.level >= self.needed(amount)
    }

    fn take(&mut self, amount: u64) {
        self.level = self.level.saturating_sub(Self::units(amount));
    }

    /// Adds `units` back (or, negative, takes more), never above capacity.
    fn adjust(&mut self, units: i128) {
        self.level = self.level.saturating_add(units).min(self.capacity());
    }

    /// When `amount` fits, given a refill up to `now` already.
    fn ready_at(&self, now: Instant, amount: u64) -> Instant {
        let deficit = self.needed(amount) - self.level;
        if deficit <= 0 {
            return now;
        }
        // Round up: at the returned instant the amount fits.
        let nanos = (deficit + self.per_minute - 1) / self.per_minute;
        after(
            now,
            Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX)),
        )
    }
}

#[derive(Debug)]
struct Buckets {
    requests: Option<Bucket>,
    tokens: Option<Bucket>,
}

impl Buckets {
    fn refill(&mut self, now: Instant) {
        self.requests.iter_mut().for_each(|b| b.refill(now));
        self.tokens.iter_mut().for_each(|b| b.refill(now));
    }
}

/// A provider key's own quota: requests and tokens per minute (either may be unlimited), as
/// token buckets refilled continuously (`limit / 60` per second), starting full. A tiny mutex
/// per key guards the two buckets; it is held for a few instructions, never across an await.
#[derive(Debug)]
pub struct KeyQuota {
    buckets: Mutex<Buckets>,
    requests_per_minute: Option<u32>,
    tokens_per_minute: Option<u32>,
    /// The state key prefix of this credential's shared buckets (`pq:<provider>#<index>`).
    shared_key: String,
    /// With shared state: when (wall-clock milliseconds, the state's time) the shared
    /// requests bucket has room again, as last seen, so an exhausted key is skipped without
    /// asking the state until then.
    shared_ready_ms: AtomicU64,
}

// === impl KeyQuota ===

impl KeyQuota {
    /// A full quota; `None` means no limit of that kind.
    pub fn new(
        requests_per_minute: Option<u32>,
        tokens_per_minute: Option<u32>,
        now: Instant,
    ) -> Self {
        Self {
            buckets: Mutex::new(Buckets {
                requests: requests_per_minute.map(|n| Bucket::new(n, now)),
                tokens: tokens_per_minute.map(|n| Bucket::new(n, now)),
            }),
            shared_ready_ms: AtomicU64::new(0),
            requests_per_minute,
            tokens_per_minute,
            shared_key: String::new(),
        }
    }

    /// The same quota, counted also in shared state under `key` when the gateway has a
    /// shared store (see `limits::quota`).
    pub fn shared_as(mut self, key: String) -> Self {
        self.shared_key = key;
        self
    }

    /// The shared state key prefix (empty when none was given).
    pub fn shared_key(&self) -> &str {
        &self.shared_key
    }

    /// Requests and tokens per minute.
    pub fn limits(&self) -> (Option<u32>, Option<u32>) {
        (self.requests_per_minute, self.tokens_per_minute)
    }

    /// Records that the shared requests bucket has no room before `at_ms`.
    pub fn shared_full_until(&self, at_ms: u64) {
        self.shared_ready_ms.fetch_max(at_ms, Ordering::Relaxed);
    }

    /// Milliseconds from `now_ms` until the shared requests bucket has room, as last seen.
    pub fn shared_full_for(&self, now_ms: u64) -> u64 {
        self.shared_ready_ms
            .load(Ordering::Relaxed)
            .saturating_sub(now_ms)
    }

    fn buckets(&self, now: Instant) -> std::sync::MutexGuard<'_, Buckets> {
        // Every statement leaves the buckets valid, so a poisoned lock is still usable.
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        buckets.refill(now);
        buckets
    }

    /// Reserves one request and `estimated_tokens`; false (and nothing reserved) when either
    /// bucket lacks room. An estimate larger than the whole tokens-per-minute limit is let
    /// through when the bucket is full, leaving it in debt.
    pub fn try_acquire(&self, now: Instant, estimated_tokens: u64) -> bool {
        let mut buckets = self.buckets(now);
        let Buckets { requests, tokens } = &mut *buckets;
        let fits = requests.as_ref().is_none_or(|b| b.has_room(1))
            && tokens.as_ref().is_none_or(|b| b.has_room(estimated_tokens));
        if fits {
            requests.iter_mut().for_each(|b| b.take(1));
            tokens.iter_mut().for_each(|b| b.take(estimated_tokens));
        }
        fits
    }

    /// Corrects the tokens bucket by `actual − estimated` once usage is known. Using more than
    /// estimated may leave it negative (debt, repaid by the refill before the next request
    /// fits); using less gives the difference back (never above the limit).
    pub fn settle(&self, now: Instant, estimated_tokens: u64, actual_tokens: u64) {
        let mut buckets = self.buckets(now);
        if let Some(tokens) = buckets.tokens.as_mut() {
            tokens.adjust(Bucket::units(estimated_tokens) - Bucket::units(actual_tokens));
        }
    }

    /// Gives back what [`try_acquire`](Self::try_acquire) took for a request that was never
    /// sent (never above the limits).
    pub fn release(&self, now: Instant, estimated_tokens: u64) {
        let mut buckets = self.buckets(now);
        if let Some(requests) = buckets.requests.as_mut() {
            requests.adjust(Bucket::units(1));
        }
        if let Some(tokens) = buckets.tokens.as_mut() {
            tokens.adjust(Bucket::units(estimated_tokens));
        }
    }

    /// When a request of `estimated_tokens` would fit (`now` when it fits already): for
    /// choosing the key that frees up first.
    pub fn ready_at(&self, now: Instant, estimated_tokens: u64) -> Instant {
        let buckets = self.buckets(now);
        let requests = buckets
            .requests
            .as_ref()
            .map_or(now, |b| b.ready_at(now, 1));
        let tokens = buckets
            .tokens
            .as_ref()
            .map_or(now, |b| b.ready_at(now, estimated_tokens));
        requests.max(tokens)
    }
}

#[cfg(test)]
#[path = "quota_tests.rs"]
mod tests;
