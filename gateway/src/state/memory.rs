//! The in-process backend: one map behind one lock. Operations are short and never await,
//! so a plain mutex is the right tool. Expired entries are swept every few thousand writes,
//! so keys of past periods cannot pile up.

#![allow(
    clippy::disallowed_types,
    reason = "counters change on every request; a short critical section without awaits is the in-process store"
)]

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Mutex, MutexGuard, PoisonError},
};

use super::{
    Admission, StateError, Window,
    bucket::{self, BucketOp, Level, Stored, Taken},
};

/// Writes between two sweeps of expired entries.
const SWEEP_EVERY: u64 = 4096;

/// Most bytes of key-value entries held at once (stored Responses conversations): the map
/// lives in the gateway's own memory, so a flood of large entries must not grow it without
/// end before their TTL frees them. Over it, a write is refused (the caller serves without
/// storing) after expired entries are swept, at most once a second.
pub const MAX_KV_BYTES: usize = 256 << 20;

/// In-process counters, windows and key-value entries.
#[derive(Debug)]
pub struct MemoryState {
    inner: Mutex<Inner>,
    /// Most bytes of key-value entries ([`MAX_KV_BYTES`] unless a test sets less).
    kv_limit: usize,
}

impl Default for MemoryState {
    fn default() -> Self {
        Self::with_kv_limit(MAX_KV_BYTES)
    }
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    writes: u64,
    /// Bytes of the `Bytes` entries, expired ones included until swept.
    kv_bytes: usize,
    /// When a full store last swept expired entries.
    full_sweep_ms: u64,
}

#[derive(Debug)]
struct Entry {
    value: Value,
    /// Milliseconds since the epoch after which the entry is gone.
    expires_ms: u64,
}

#[derive(Debug)]
enum Value {
    Counter(i64),
    Window(BTreeMap<i64, i64>),
    Bytes(Vec<u8>),
    Bucket(Stored),
}

/// Whether `amount` may be added to `total` under `limit` (shared with the Redis scripts).
pub(super) fn admits(total: i64, amount: i64, limit: i64) -> bool {
    total < limit && total.saturating_add(amount) <= limit
}

impl MemoryState {
    /// An empty store whose key-value entries may hold at most `kv_limit` bytes.
    pub fn with_kv_limit(kv_limit: usize) -> Self {
        Self {
            inner: Mutex::default(),
            kv_limit,
        }
    }

    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn counter_get(&self, key: &str, now_ms: u64) -> Result<i64, StateError> {
        let inner = self.lock();
        match inner.live(key, now_ms) {
            None => Ok(0),
            Some(Value::Counter(v)) => Ok(*v),
            Some(_) => Err(StateError::WrongKind(key.to_owned())),
        }
    }

    pub(super) fn counter_add(
        &self,
        key: &str,
        amount: i64,
        ttl_ms: u64,
        now_ms: u64,
    ) -> Result<i64, StateError> {
        let mut inner = self.lock();
        let counter = inner.counter(key, ttl_ms, now_ms)?;
        *counter = counter.saturating_add(amount);
        Ok(*counter)
    }

    pub(super) fn counter_reserve(
        &self,
        key: &str,
        amount: i64,
        limit: i64,
        ttl_ms: u64,
        now_ms: u64,
    ) -> Result<Admission, StateError> {
        let mut inner = self.lock();
        let counter = inner.counter(key, ttl_ms, now_ms)?;
        if !admits(*counter, amount, limit) {
            return Ok(Admission::Denied { total: *counter });
        }
        *counter = counter.saturating_add(amount);
        Ok(Admission::Granted { total: *counter })
    }

    pub(super) fn counter_raise(
        &self,
        key: &str,
        floor: i64,
        ttl_ms: u64,
        now_ms: u64,
    ) -> Result<i64, StateError> {
        let mut inner = self.lock();
        let counter = inner.counter(key, ttl_ms, now_ms)?;
        *counter = (*counter).max(floor);
        Ok(*counter)
    }

    pub(super) fn window_get(
        &self,
        key: &str,
        window: Window,
        now_ms: u64,
    ) -> Result<i64, StateError> {
        let inner = self.lock();
        match inner.live(key, now_ms) {
            None => Ok(0),
            Some(Value::Window(buckets)) => Ok(sum(buckets, window, now_ms)),
            Some(_) => Err(StateError::WrongKind(key.to_owned())),
        }
    }

    pub(super) fn window_add(
        &self,
        key: &str,
        amount: i64,
        window: Window,
        at_ms: u64,
        now_ms: u64,
    ) -> Result<i64, StateError> {
        let mut inner = self.lock();
        let buckets = inner.window(key, window, now_ms)?;
        let bucket = window.bucket(at_ms);
        if bucket >= window.oldest(now_ms) {
            let slot = buckets.entry(bucket).or_insert(0);
            *slot = slot.saturating_add(amount);
        }
        Ok(sum(buckets, window, now_ms))
    }

    pub(super) fn window_reserve(
        &self,
        key: &str,
        amount: i64,
        limit: i64,
        window: Window,
        now_ms: u64,
    ) -> Result<Admission, StateError> {
        let mut inner = self.lock();
        let buckets = inner.window(key, window, now_ms)?;
        let total = sum(buckets, window, now_ms);
        if !admits(total, amount, limit) {
            return Ok(Admission::Denied { total });
        }
        let slot = buckets.entry(window.bucket(now_ms)).or_insert(0);
        *slot = slot.saturating_add(amount);
        Ok(Admission::Granted {
            total: total.saturating_add(amount),
        })
    }

    /// Takes (`take`) or adjusts every bucket of `ops` at once: a take changes nothing
    /// unless every bucket has room.
    pub(super) fn buckets(
        &self,
        ops: &[BucketOp],
        take: bool,
        now_ms: u64,
    ) -> Result<Taken, StateError> {
        let mut inner = self.lock();
        let mut levels = Vec::with_capacity(ops.len());
        for op in ops {
            let stored = match inner.live(&op.key, now_ms) {
                None => None,
                Some(Value::Bucket(s)) => Some(*s),
                Some(_) => return Err(StateError::WrongKind(op.key.clone())),
            };
            levels.push(bucket::refill(stored, op, now_ms));
        }
        let granted = !take
            || ops
                .iter()
                .zip(&levels)
                .all(|(op, s)| bucket::fits(s.units, op));
        let mut out = Vec::with_capacity(ops.len());
        for (op, mut s) in ops.iter().zip(levels) {
            if granted {
                s.units = bucket::apply(s.units, op, take);
                inner.wrote(now_ms);
                let keep = bucket::keep_ms(s.units, op);
                let replaced = if keep == 0 {
                    inner.entries.remove(&op.key)
                } else {
                    inner.entries.insert(
                        op.key.clone(),
                        Entry {
                            value: Value::Bucket(s),
                            expires_ms: now_ms.saturating_add(keep),
                        },
                    )
                };
                inner.forget(replaced.as_ref());
            }
            out.push(Level {
                units: s.units,
                per_minute: op.per_minute,
            });
        }
        Ok(Taken {
            granted,
            levels: out,
        })
    }

    pub(super) fn kv_get(&self, key: &str, now_ms: u64) -> Result<Option<Vec<u8>>, StateError> {
        let inner = self.lock();
        match inner.live(key, now_ms) {
            None => Ok(None),
            Some(Value::Bytes(b)) => Ok(Some(b.clone())),
            Some(_) => Err(StateError::WrongKind(key.to_owned())),
        }
    }

    pub(super) fn kv_set(
        &self,
        key: &str,
        value: &[u8],
        ttl_ms: u64,
        now_ms: u64,
    ) -> Result<(), StateError> {
        let mut inner = self.lock();
        let old = match inner.entries.get(key).map(|e| &e.value) {
            Some(Value::Bytes(b)) => b.len(),
            _ => 0,
        };
        let fits = |inner: &Inner| inner.kv_bytes - old + value.len() <= self.kv_limit;
        if !fits(&inner) && now_ms.saturating_sub(inner.full_sweep_ms) >= 1000 {
            inner.full_sweep_ms = now_ms;
            inner.sweep(now_ms);
        }
        if !fits(&inner) {
            return Err(StateError::Full(self.kv_limit));
        }
        inner.wrote(now_ms);
        let replaced = inner.entries.insert(
            key.to_owned(),
            Entry {
                value: Value::Bytes(value.to_vec()),
                expires_ms: now_ms.saturating_add(ttl_ms),
            },
        );
        inner.forget(replaced.as_ref());
        inner.kv_bytes += value.len();
        Ok(())
    }

    pub(super) fn kv_delete(&self, key: &str, now_ms: u64) -> Result<bool, StateError> {
        let mut inner = self.lock();
        let live = inner.live(key, now_ms).is_some();
        match inner.entries.remove(key) {
            Some(Entry {
                value: Value::Bytes(b),
                ..
            }) => {
                inner.kv_bytes -= b.len();
                Ok(live)
            }
            Some(other) => {
                inner.entries.insert(key.to_owned(), other);
                Err(StateError::WrongKind(key.to_owned()))
            }
            None => Ok(false),
        }
    }
}

impl Inner {
    fn live(&self, key: &str, now_ms: u64) -> Option<&Value> {
        self.entries
            .get(key)
            .filter(|e| e.expires_ms > now_ms)
            .map(|e| &e.value)
    }

    /// Counts a write and sweeps expired entries now and then.
    fn wrote(&mut self, now_ms: u64) {
        self.writes += 1;
        if self.writes.is_multiple_of(SWEEP_EVERY) {
            self.sweep(now_ms);
        }
    }

    /// Drops expired entries.
    fn sweep(&mut self, now_ms: u64) {
        let mut freed = 0;
        self.entries.retain(|_, e| {
            let live = e.expires_ms > now_ms;
            if !live && let Value::Bytes(b) = &e.value {
                freed += b.len();
            }
            live
        });
        self.kv_bytes -= freed;
    }

    /// Un-counts the bytes of an entry that left the map.
    fn forget(&mut self, gone: Option<&Entry>) {
        if let Some(Entry {
            value: Value::Bytes(b),
            ..
        }) = gone
        {
            self.kv_bytes -= b.len();
        }
    }

    /// The live entry under `key`, or a fresh one made by `fresh`; its expiry becomes
    /// `now + ttl`.
    fn entry(
        &mut self,
        key: &str,
        ttl_ms: u64,
        now_ms: u64,
        fresh: impl FnOnce() -> Value,
    ) -> &mut Value {
        self.wrote(now_ms);
        let entry = self.entries.entry(key.to_owned()).or_insert(Entry {
            value: Value::Counter(0),
            expires_ms: 0,
        });
        if entry.expires_ms <= now_ms {
            entry.value = fresh();
        }
        entry.expires_ms = now_ms.saturating_add(ttl_ms);
        &mut entry.value
    }

    fn counter(&mut self, key: &str, ttl_ms: u64, now_ms: u64) -> Result<&mut i64, StateError> {
        match self.entry(key, ttl_ms, now_ms, || Value::Counter(0)) {
            Value::Counter(v) => Ok(v),
            _ => Err(StateError::WrongKind(key.to_owned())),
        }
    }

    /// The window's buckets with those that left the window dropped; the entry lives as
    /// long as the window.
    fn window(
        &mut self,
        key: &str,
        window: Window,
        now_ms: u64,
    ) -> Result<&mut BTreeMap<i64, i64>, StateError> {
        match self.entry(
            key,
            window.len_ms,
            now_ms,
            || Value::Window(BTreeMap::new()),
        ) {
            Value::Window(buckets) => {
                let oldest = window.oldest(now_ms);
                buckets.retain(|b, _| *b >= oldest);
                Ok(buckets)
            }
            _ => Err(StateError::WrongKind(key.to_owned())),
        }
    }
}

fn sum(buckets: &BTreeMap<i64, i64>, window: Window, now_ms: u64) -> i64 {
    let oldest = window.oldest(now_ms);
    buckets
        .range(oldest..)
        .fold(0i64, |acc, (_, v)| acc.saturating_add(*v))
}
