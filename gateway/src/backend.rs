//! Providers, keys and backends resolved for the hot path. A snapshot builds them once per
//! reload; a request only follows references: no lookup by name, no string formatting, no
//! lock. Health and quota handles are `Arc`s a later snapshot takes over when the identity
//! (provider, key, model) is unchanged, so a reload keeps their state.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use bytes::Bytes;
use http::StatusCode;
use tollgate_crds::config::{BackendConfig, ProviderConfig};

use crate::{
    providers::{Adapter, Secret},
    resilience::{health::BackendHealth, quota::KeyQuota},
};

/// A provider ready to use.
#[derive(Debug)]
pub struct Provider {
    /// Its config.
    pub config: ProviderConfig,
    /// Its adapter.
    pub adapter: Adapter,
    /// Its keys; a keyless provider has one key without a secret.
    pub keys: Vec<Key>,
    next: AtomicUsize,
}

/// One credential of a provider and its own quota.
#[derive(Debug)]
pub struct Key {
    /// The secret, `None` for keyless providers.
    pub secret: Option<Secret>,
    /// The credential's quota, when the provider sets `limits`.
    pub quota: Option<Arc<KeyQuota>>,
}

impl Provider {
    /// A provider with these keys (at least one: pass one keyless key when it has none).
    pub fn new(config: ProviderConfig, adapter: Adapter, keys: Vec<Key>) -> Self {
        Self {
            config,
            adapter,
            keys,
            next: AtomicUsize::new(0),
        }
    }

    /// Where the next request starts looking for a key (round robin).
    pub fn next_key(&self) -> usize {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// Whether a request must know its prompt tokens for this provider's quota.
    pub fn limits_tokens(&self) -> bool {
        self.config
            .limits
            .as_ref()
            .is_some_and(|l| l.tokens_per_minute.is_some())
    }
}

/// Answers a request in process (the `mock` provider): status and body pieces.
pub type Respond = fn(&str, &[u8]) -> (StatusCode, Vec<Bytes>);

/// How a backend's requests travel.
#[derive(Clone, Debug)]
pub enum Transport {
    /// Over HTTP with this pooled client.
    Http(reqwest::Client),
    /// Answered in process.
    InProcess(Respond),
}

/// A backend (provider + model + timeouts) with its keys' health resolved.
#[derive(Debug)]
pub struct Backend {
    /// Its config.
    pub config: BackendConfig,
    /// Its provider.
    pub provider: Arc<Provider>,
    /// The model's context window, when its `LLMProvider` states one.
    pub context_window: Option<u32>,
    /// Passive health per key, in the order of `provider.keys`.
    pub health: Vec<Arc<BackendHealth>>,
    /// How requests travel.
    pub transport: Transport,
}

impl Backend {
    /// Whether a prompt of at most `prompt_bytes` bytes might not fit the context window (a
    /// token is at least one byte, so fewer bytes than the window always fit).
    pub fn window_may_overflow(&self, prompt_bytes: u64) -> bool {
        self.context_window
            .is_some_and(|w| u64::from(w) < prompt_bytes)
    }

    /// Whether `tokens` exceed the context window.
    pub fn too_long(&self, tokens: u64) -> bool {
        self.context_window.is_some_and(|w| tokens > u64::from(w))
    }

    /// Key `i` and its health.
    pub fn slot(&self, i: usize) -> Option<(&Key, &Arc<BackendHealth>)> {
        Some((self.provider.keys.get(i)?, self.health.get(i)?))
    }

    /// How many keys it can use.
    pub fn key_count(&self) -> usize {
        self.health.len().min(self.provider.keys.len())
    }
}

/// The health identity of a backend with one key: provider, key index and model. Built
/// only when a snapshot is built.
pub fn health_id(backend: &BackendConfig, key: usize) -> String {
    format!("{}#{key}/{}", backend.provider, backend.model)
}
