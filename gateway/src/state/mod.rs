//! Shared state: counters, rolling windows and key-value entries with a time to live.
//!
//! Budgets, rate limits and provider key quotas ([`bucket`]) use it; the response cache
//! reuses it. Two backends behind one
//! closed enum (no `dyn` on the hot path):
//! - [`MemoryState`], the default: one gateway replica, nothing to run. Spend survives a
//!   restart through the operator hand-off (see `docs/state.md`), not through this store.
//! - [`RedisState`]: every replica shares one Redis; each check-and-reserve is one atomic
//!   Lua script, so N replicas admit exactly what one would.
//!
//! Amounts are integers (budgets count nano-USD), because Redis counts integers exactly and
//! money must never pass through a float. Times are milliseconds since the Unix epoch and
//! come from the caller, so tests drive a clock and all replicas bucket windows alike.
//! Every Redis call is bounded by a timeout: Redis being down is an error, never a hang.

pub mod bucket;
mod memory;
mod outage;
mod redis;
#[doc(hidden)]
pub mod redis_server;
#[cfg(test)]
mod tests;

use std::time::Duration;

pub use bucket::{BucketOp, Level, Taken};
pub use memory::MemoryState;
pub use outage::{FailMode, Outage};
pub use redis::RedisState;

/// Why a state operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Redis did not answer in time (down, overloaded, or unreachable).
    #[error("shared state (redis) did not answer within {0:?}")]
    Timeout(Duration),
    /// Redis answered with an error or the connection failed.
    #[error("shared state (redis) failed: {0}")]
    Redis(String),
    /// The in-process store holds as many key-value bytes as it may; entries free their
    /// space as their TTL runs out.
    #[error("the in-process shared state is full ({0} bytes of stored entries)")]
    Full(usize),
    /// A stored entry has another type than the operation expects (a key reused across kinds).
    #[error("shared state key {0:?} holds another kind of entry")]
    WrongKind(String),
}

/// The result of a check-and-reserve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// The amount fitted under the limit and is now counted; `total` includes it.
    Granted {
        /// The counter after the reservation.
        total: i64,
    },
    /// The amount did not fit; nothing was counted. `total` is the counter as it stands.
    Denied {
        /// The counter, unchanged.
        total: i64,
    },
}

impl Admission {
    /// Whether the amount was counted.
    pub fn granted(self) -> bool {
        matches!(self, Admission::Granted { .. })
    }

    /// The counter after the operation.
    pub fn total(self) -> i64 {
        match self {
            Admission::Granted { total } | Admission::Denied { total } => total,
        }
    }
}

/// A rolling window made of fixed buckets: the window covers the last `len_ms`, rounded
/// up to whole buckets, so amounts leave the window up to one bucket late (never early).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Length of the window.
    pub len_ms: u64,
    /// Width of one bucket; smaller is more precise and costs more entries.
    pub bucket_ms: u64,
}

impl Window {
    /// A window of `len_ms` with about 60 buckets (at least 1 ms each).
    pub fn new(len_ms: u64) -> Self {
        Self {
            len_ms: len_ms.max(1),
            bucket_ms: (len_ms / 60).max(1),
        }
    }

    /// Index of the bucket holding time `at_ms`.
    pub(crate) fn bucket(self, at_ms: u64) -> i64 {
        i64::try_from(at_ms / self.bucket_ms).unwrap_or(i64::MAX)
    }

    /// Number of buckets the window spans.
    pub(crate) fn buckets(self) -> i64 {
        i64::try_from(self.len_ms.div_ceil(self.bucket_ms)).unwrap_or(i64::MAX)
    }

    /// Oldest bucket index still inside the window at `now_ms`.
    pub(crate) fn oldest(self, now_ms: u64) -> i64 {
        self.bucket(now_ms).saturating_sub(self.buckets()) + 1
    }
}

/// Which backend and how to reach it (from the gateway's command line).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StateSettings {
    /// In-process (the default).
    Memory,
    /// A Redis server shared by every replica.
    Redis {
        /// `redis://[user:password@]host:port[/db]` (or `rediss://`).
        url: String,
        /// Longest wait for any one Redis operation, connecting included.
        timeout: Duration,
        /// Prefix of every key, so several gateways can share one Redis.
        prefix: String,
    },
}

/// The state store the gateway uses.
#[derive(Debug)]
pub enum StateStore {
    /// In-process.
    Memory(MemoryState),
    /// Shared through Redis (boxed: the connection and scripts outweigh the in-process map).
    Redis(Box<RedisState>),
}

impl StateStore {
    /// Builds the store; never connects (Redis connects on first use).
    pub fn new(settings: &StateSettings) -> Result<Self, StateError> {
        Ok(match settings {
            StateSettings::Memory => StateStore::Memory(MemoryState::new()),
            StateSettings::Redis {
                url,
                timeout,
                prefix,
            } => StateStore::Redis(Box::new(RedisState::new(url, *timeout, prefix)?)),
        })
    }

    /// `"memory"` or `"redis"`, for logs, metrics and `/budgets`.
    pub fn kind(&self) -> &'static str {
        match self {
            StateStore::Memory(_) => "memory",
            StateStore::Redis(_) => "redis",
        }
    }

    /// Whether every replica sees the same counters.
    pub fn shared(&self) -> bool {
        matches!(self, StateStore::Redis(_))
    }

    /// The counter's value (0 when absent or expired).
    pub async fn counter_get(&self, key: &str, now_ms: u64) -> Result<i64, StateError> {
        match self {
            StateStore::Memory(m) => m.counter_get(key, now_ms),
            StateStore::Redis(r) => r.counter_get(key).await,
        }
    }

    /// Adds `amount` (may be negative) and returns the new value; the counter expires
    /// `ttl_ms` after this write.
    pub async fn counter_add(
        &self,
        key: &str,
        amount: i64,
        ttl_ms: u64,
        now_ms: u64,
    ) -> Result<i64, StateError> {
        match self {
            StateStore::Memory(m) => m.counter_add(key, amount, ttl_ms, now_ms),
            StateStore::Redis(r) => r.counter_add(key, amount, ttl_ms).await,
        }
    }

    /// Atomically: if the counter is below `limit` and `counter + amount <= limit`, adds
    /// `amount`; otherwise changes nothing.
    pub async fn counter_reserve(
        &self,
        key: &str,
        amount: i64,
        limit: i64,
        ttl_ms: u64,
        now_ms: u64,
    ) -> Result<Admission, StateError> {
        match self {
            StateStore::Memory(m) => m.counter_reserve(key, amount, limit, ttl_ms, now_ms),
            StateStore::Redis(r) => r.counter_reserve(key, amount, limit, ttl_ms).await,
        }
    }

    /// Raises the counter to at least `floor` (a restarted gateway's spend seed); returns
    /// the value after.
    pub async fn counter_raise(
        &self,
        key: &str,
        floor: i64,
        ttl_ms: u64,
        now_ms: u64,
    ) -> Result<i64, StateError> {
        match self {
            StateStore::Memory(m) => m.counter_raise(key, floor, ttl_ms, now_ms),
            StateStore::Redis(r) => r.counter_raise(key, floor, ttl_ms).await,
        }
    }

    /// The sum of the window at `now_ms`.
    pub async fn window_get(
        &self,
        key: &str,
        window: Window,
        now_ms: u64,
    ) -> Result<i64, StateError> {
        match self {
            StateStore::Memory(m) => m.window_get(key, window, now_ms),
            StateStore::Redis(r) => r.window_get(key, window, now_ms).await,
        }
    }

    /// Adds `amount` (may be negative) to the bucket of `at_ms` (a reservation's time, so a
    /// settlement corrects the bucket it reserved in); dropped when that bucket has already
    /// left the window. Returns the window's sum at `now_ms`.
    pub async fn window_add(
        &self,
        key: &str,
        amount: i64,
        window: Window,
        at_ms: u64,
        now_ms: u64,
    ) -> Result<i64, StateError> {
        match self {
            StateStore::Memory(m) => m.window_add(key, amount, window, at_ms, now_ms),
            StateStore::Redis(r) => r.window_add(key, amount, window, at_ms, now_ms).await,
        }
    }

    /// Atomically: if the window's sum is below `limit` and `sum + amount <= limit`, adds
    /// `amount` to the current bucket; otherwise changes nothing.
    pub async fn window_reserve(
        &self,
        key: &str,
        amount: i64,
        limit: i64,
        window: Window,
        now_ms: u64,
    ) -> Result<Admission, StateError> {
        match self {
            StateStore::Memory(m) => m.window_reserve(key, amount, limit, window, now_ms),
            StateStore::Redis(r) => r.window_reserve(key, amount, limit, window, now_ms).await,
        }
    }

    /// Takes every bucket's amount, all or none (see [`bucket`]).
    pub async fn buckets_take(&self, ops: &[BucketOp], now_ms: u64) -> Result<Taken, StateError> {
        match self {
            StateStore::Memory(m) => m.buckets(ops, true, now_ms),
            StateStore::Redis(r) => r.buckets(ops, true, now_ms).await,
        }
    }

    /// Gives each bucket its amount back (negative: charges more), never above its limit.
    pub async fn buckets_adjust(
        &self,
        ops: &[BucketOp],
        now_ms: u64,
    ) -> Result<Vec<Level>, StateError> {
        match self {
            StateStore::Memory(m) => m.buckets(ops, false, now_ms),
            StateStore::Redis(r) => r.buckets(ops, false, now_ms).await,
        }
        .map(|t| t.levels)
    }

    /// The value stored under `key`, unless absent or expired.
    pub async fn kv_get(&self, key: &str, now_ms: u64) -> Result<Option<Vec<u8>>, StateError> {
        match self {
            StateStore::Memory(m) => m.kv_get(key, now_ms),
            StateStore::Redis(r) => r.kv_get(key).await,
        }
    }

    /// Stores `value` under `key` for `ttl_ms`.
    pub async fn kv_set(
        &self,
        key: &str,
        value: &[u8],
        ttl_ms: u64,
        now_ms: u64,
    ) -> Result<(), StateError> {
        match self {
            StateStore::Memory(m) => m.kv_set(key, value, ttl_ms, now_ms),
            StateStore::Redis(r) => r.kv_set(key, value, ttl_ms).await,
        }
    }

    /// Removes the entry under `key`; whether a live one was there.
    pub async fn kv_delete(&self, key: &str, now_ms: u64) -> Result<bool, StateError> {
        match self {
            StateStore::Memory(m) => m.kv_delete(key, now_ms),
            StateStore::Redis(r) => r.kv_delete(key).await,
        }
    }
}
