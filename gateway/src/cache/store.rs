//! Where stored answers live: in process (moka, bounded by bytes, a TTL per entry) or in the
//! shared state's Redis, so every replica serves what any one stored (Redis bounds itself:
//! give it a `maxmemory` with an LRU policy, see `docs/cache.md`).

use std::{sync::Arc, time::Duration};

use moka::{Expiry, sync::Cache as Moka};

use super::{entry::Entry, key::Key};
use crate::state::{StateError, StateStore};

/// The answer store.
pub(super) enum Store {
    /// In this process.
    Memory(Moka<Key, Arc<Entry>>),
    /// In the shared state (Redis).
    Shared(Arc<StateStore>),
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Store::Memory(_) => "Store::Memory",
            Store::Shared(_) => "Store::Shared",
        })
    }
}

/// Each entry expires after its own TTL (routes differ).
struct ByEntry;

impl Expiry<Key, Arc<Entry>> for ByEntry {
    #[allow(
        clippy::disallowed_types,
        reason = "moka's trait names its own clock's instant; the argument is not used"
    )]
    fn expire_after_create(
        &self,
        _key: &Key,
        entry: &Arc<Entry>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        // The route's TTL on moka's clock; the expiry check on read uses the gateway's
        // clock (which tests drive), so either ends the entry.
        Some(Duration::from_millis(entry.ttl_ms.max(1)))
    }
}

/// The Redis key of an answer (the state layer adds its prefix).
fn redis_key(key: &Key) -> String {
    format!("cache:{}", hex::encode(key))
}

impl Store {
    /// An in-process store holding at most `max_bytes`.
    pub(super) fn memory(max_bytes: u64) -> Self {
        Store::Memory(
            Moka::builder()
                .max_capacity(max_bytes)
                .weigher(|_, e: &Arc<Entry>| u32::try_from(e.weight()).unwrap_or(u32::MAX))
                .expire_after(ByEntry)
                .build(),
        )
    }

    /// The answer stored under `key`, unless expired at `now_ms`.
    pub(super) async fn get(
        &self,
        key: &Key,
        now_ms: u64,
    ) -> Result<Option<Arc<Entry>>, StateError> {
        let entry = match self {
            Store::Memory(m) => m.get(key),
            Store::Shared(s) => s
                .kv_get(&redis_key(key), now_ms)
                .await?
                .and_then(|bytes| Entry::decode(&bytes))
                .map(Arc::new),
        };
        Ok(entry.filter(|e| e.expires_ms > now_ms))
    }

    /// Stores `entry` (in the background for Redis: the answer does not wait for it).
    pub(super) fn put(
        &self,
        key: Key,
        entry: Entry,
        now_ms: u64,
        on_error: impl FnOnce(StateError) + Send + 'static,
    ) {
        match self {
            Store::Memory(m) => m.insert(key, Arc::new(entry)),
            Store::Shared(s) => {
                let s = Arc::clone(s);
                let ttl_ms = entry.expires_ms.saturating_sub(now_ms).max(1);
                tokio::spawn(async move {
                    if let Err(e) = s
                        .kv_set(&redis_key(&key), &entry.encode(), ttl_ms, now_ms)
                        .await
                    {
                        on_error(e);
                    }
                });
            }
        }
    }

    /// Entries and bytes held in process (`None` for Redis).
    pub(super) fn size(&self) -> Option<(u64, u64)> {
        match self {
            Store::Memory(m) => Some((m.entry_count(), m.weighted_size())),
            Store::Shared(_) => None,
        }
    }
}
