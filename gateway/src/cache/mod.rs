//! The response cache (`LLMRoute.spec.cache`): a repeated request is answered from a stored
//! answer without an upstream call, without reserving budget, at no cost.
//!
//! - **Keyed** by a hash of the request's canonical form ([`key`]), prefixed by the route and
//!   the caller's team (or key, per `scope`), so one tenant never sees another's answers.
//! - **Stored** only when complete and successful: a JSON answer after it is encoded, a stream
//!   through the pipeline's frame tap ([`replay::Recorder`]) once its end marker was sent. A
//!   stream is replayed as the same frames; a JSON request is served only from a stored JSON
//!   answer and a stream request only from a stored stream (the format is part of the key).
//! - **Where**: in process (moka, bounded by bytes) or in Redis through the shared state layer,
//!   so replicas share answers. The semantic index ([`semantic`]) is per replica either way.
//! - **Client control**: `Cache-Control: no-store` skips lookup and store (`bypass`),
//!   `no-cache` skips the lookup and stores the fresh answer (`miss`). Every answer of a cached
//!   route carries `x-tollgate-cache: hit|miss|bypass`.
//!
//! A failing store (Redis down) never fails a request: it is served as a miss, with a metric
//! and a log line.

mod entry;
pub mod key;
mod metrics;
mod replay;
pub mod semantic;
mod store;

use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, header};
use rust_decimal::Decimal;
use sha2::Digest;
use tollgate_crds::config::CacheScope;

pub use metrics::CacheMetrics;

use self::{
    entry::{Entry, Format},
    key::Key,
    store::Store,
};
use crate::{
    budget::WallClock,
    identity::Identity,
    pipeline::{Operation, Shared, encode::FrameTap, respond::Served},
    routing::RouteRuntime,
    state::{StateError, StateSettings, StateStore},
};

/// The response header that says how the cache served an answer.
pub const CACHE_HEADER: &str = "x-tollgate-cache";

/// Where stored answers live.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CacheStore {
    /// In this process.
    #[default]
    Memory,
    /// In the shared state (Redis, when `--redis-url` is given; else in process).
    Shared,
}

/// Gateway-wide cache settings (per-route settings come from the config).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheOptions {
    /// In process or shared.
    pub store: CacheStore,
    /// Most bytes of answers held in process.
    pub max_bytes: u64,
    /// Most bytes of prompt vectors held by the semantic index.
    pub semantic_max_bytes: u64,
}

impl Default for CacheOptions {
    fn default() -> Self {
        Self {
            store: CacheStore::Memory,
            max_bytes: 256 << 20,
            semantic_max_bytes: 64 << 20,
        }
    }
}

/// The response cache, shared by every request.
#[derive(Debug)]
pub struct Cache {
    store: Store,
    index: semantic::Index,
    clock: WallClock,
}

impl Cache {
    /// Builds the cache; with [`CacheStore::Shared`] and Redis state settings, answers go to
    /// Redis (connected on first use).
    pub fn new(
        options: &CacheOptions,
        state: &StateSettings,
        clock: WallClock,
    ) -> Result<Self, StateError> {
        let store = match (options.store, state) {
            (CacheStore::Shared, StateSettings::Redis { .. }) => {
                Store::Shared(Arc::new(StateStore::new(state)?))
            }
            _ => Store::memory(options.max_bytes),
        };
        Ok(Self {
            store,
            index: semantic::Index::new(options.semantic_max_bytes),
            clock,
        })
    }

    /// `"memory"` or `"redis"`.
    pub fn kind(&self) -> &'static str {
        match self.store {
            Store::Memory(_) => "memory",
            Store::Shared(_) => "redis",
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.clock.now().as_millisecond()).unwrap_or(0)
    }
}

/// What the lookup found.
pub enum Lookup {
    /// The stored answer, ready to send.
    Hit(Response<Body>),
    /// Serve from the providers; then store through the [`Pending`].
    Miss(Pending),
}

/// What a request on a cached route carries from lookup to store.
#[derive(Default)]
pub struct Pending {
    header: Option<&'static str>,
    store: Option<Box<ToStore>>,
}

/// Everything needed to store the answer, owned (a stream stores after the handler returned).
struct ToStore {
    shared_cache: Arc<Cache>,
    metrics: Arc<crate::metrics::Metrics>,
    route: Arc<str>,
    key: Key,
    ttl_ms: u64,
    max_bytes: u64,
    semantic: Option<SemanticInsert>,
}

/// The prompt to remember in the semantic index once its answer is stored.
struct SemanticInsert {
    scope: Key,
    vector: Box<[f32]>,
    max_entries: usize,
}

/// `Cache-Control` directives a client may send.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Directive {
    Normal,
    NoCache,
    NoStore,
}

fn directive(headers: &HeaderMap) -> Directive {
    let mut d = Directive::Normal;
    for value in headers.get_all(header::CACHE_CONTROL) {
        for token in value.to_str().unwrap_or("").split(',') {
            let token = token.trim();
            if token.eq_ignore_ascii_case("no-store") {
                return Directive::NoStore;
            }
            if token.eq_ignore_ascii_case("no-cache") {
                d = Directive::NoCache;
            }
        }
    }
    d
}

/// Who shares answers with this caller, as hashed into the key: the team (scope `team`),
/// else the client key (a key without a team is its own scope), else the route's anonymous
/// callers. The kind is part of it, so a team named like a key id shares nothing with it.
fn scope_label(scope: CacheScope, identity: &Identity) -> String {
    match (scope, &identity.team, &identity.key_id) {
        (CacheScope::Team, Some(team), _) => format!("team:{team}"),
        (_, _, Some(key)) => format!("key:{key}"),
        _ => "anonymous".to_owned(),
    }
}

/// Prompts above this many bytes are hashed on the blocking pool: the key is O(bytes) of
/// JSON encoding and SHA-256, milliseconds for a prompt of several MB.
const INLINE_KEY_BYTES: u64 = 64 * 1024;

/// The exact key, `None` when the operation is never cached.
async fn exact_key<O: Operation>(req: &O::Request, mut hasher: sha2::Sha256) -> Option<Key> {
    if O::prompt_bytes(req) <= INLINE_KEY_BYTES {
        return O::cache_key(req, &mut hasher).then(|| hasher.finalize().into());
    }
    let owned = req.clone();
    tokio::task::spawn_blocking(move || {
        O::cache_key(&owned, &mut hasher).then(|| hasher.finalize().into())
    })
    .await
    .ok()
    .flatten()
}

/// Looks the request up: a stored answer (exact, then semantic), or what storing the fresh
/// answer needs. Routes without `cache` cost one branch.
pub async fn lookup<O: Operation>(
    shared: &Shared,
    route: &RouteRuntime,
    identity: &Identity,
    req: &O::Request,
    headers: &HeaderMap,
    request_id: &str,
) -> Lookup {
    let Some(policy) = route.config.cache.as_ref() else {
        return Lookup::Miss(Pending::default());
    };
    let metrics = &shared.metrics.cache;
    let directive = directive(headers);
    if directive == Directive::NoStore {
        metrics.bypass(&route.id, "no-store");
        return Lookup::Miss(Pending::bypass());
    }
    let scope = scope_label(policy.scope, identity);
    let mut hasher = key::scoped(&route.id, &scope, O::NAME);
    key::guardrails(&mut hasher, route.config.guardrails.as_ref());
    let Some(key) = exact_key::<O>(req, hasher).await else {
        metrics.bypass(&route.id, "uncacheable");
        return Lookup::Miss(Pending::bypass());
    };
    let cache = &shared.cache;
    let now = cache.now_ms();
    let mut pending = ToStore {
        shared_cache: Arc::clone(cache),
        metrics: Arc::clone(&shared.metrics),
        route: Arc::clone(&route.id),
        key,
        ttl_ms: policy.ttl_ms,
        max_bytes: policy.max_entry_bytes,
        semantic: None,
    };
    if directive == Directive::NoCache {
        metrics.bypass(&route.id, "no-cache");
        return Lookup::Miss(Pending::miss(pending));
    }
    if let Some(entry) = get(cache, metrics, &key, now).await {
        return Lookup::Hit(replay::hit::<O>(
            shared, route, identity, &entry, "exact", request_id,
        ));
    }
    if let Some(s) = &policy.semantic {
        let mut context = key::scoped(&route.id, &scope, O::NAME);
        key::guardrails(&mut context, route.config.guardrails.as_ref());
        if let Some(text) = O::semantic_prompt(req, &mut context) {
            let scope_key: Key = context.finalize().into();
            match semantic::embed(shared, &s.embedding_route, &text, headers, request_id).await {
                Ok(vector) => {
                    if let Some((found, similarity)) =
                        cache.index.search(&scope_key, &vector, s.threshold, now)
                        && let Some(entry) = get(cache, metrics, &found, now).await
                    {
                        tracing::debug!(similarity, "semantic cache hit");
                        return Lookup::Hit(replay::hit::<O>(
                            shared, route, identity, &entry, "semantic", request_id,
                        ));
                    }
                    pending.semantic = Some(SemanticInsert {
                        scope: scope_key,
                        vector,
                        max_entries: s.max_entries as usize,
                    });
                }
                Err(e) => {
                    metrics.error("embed");
                    tracing::warn!(error = %e, route = %route.id, "semantic cache lookup skipped");
                }
            }
        }
    }
    metrics.miss(&route.id);
    Lookup::Miss(Pending::miss(pending))
}

async fn get(cache: &Cache, metrics: &CacheMetrics, key: &Key, now: u64) -> Option<Arc<Entry>> {
    match cache.store.get(key, now).await {
        Ok(found) => found,
        Err(e) => {
            metrics.error("get");
            tracing::warn!(error = %e, "cache lookup failed; serving as a miss");
            None
        }
    }
}

impl Pending {
    fn bypass() -> Self {
        Self {
            header: Some("bypass"),
            store: None,
        }
    }

    fn miss(store: ToStore) -> Self {
        Self {
            header: Some("miss"),
            store: Some(Box::new(store)),
        }
    }

    /// The usage record's `cache` value: `miss` or `bypass` on a cached route.
    pub fn usage_label(&self) -> Option<&'static str> {
        self.header
    }

    /// Stores a complete JSON answer that cost `cost` (unknown: 0 saved per hit).
    pub fn store_json(&mut self, served: &Served<'_>, body: &Bytes, cost: Option<Decimal>) {
        if let Some(s) = self.store.take() {
            s.store(
                Format::Json,
                served.provider,
                served.model,
                cost,
                vec![body.clone()],
            );
        }
    }

    /// The tap that records a stream and stores it once it ended complete.
    pub fn tap(&mut self, served: &Served<'_>) -> Option<Box<dyn FrameTap>> {
        let s = self.store.take()?;
        Some(Box::new(replay::Recorder::new(*s, served)))
    }

    /// Adds `x-tollgate-cache` to the answer of a cached route.
    pub fn mark(&self, mut response: Response<Body>) -> Response<Body> {
        if let Some(h) = self.header {
            response
                .headers_mut()
                .insert(CACHE_HEADER, HeaderValue::from_static(h));
        }
        response
    }
}

impl ToStore {
    fn store(
        self,
        format: Format,
        provider: &str,
        model: &str,
        cost: Option<Decimal>,
        parts: Vec<Bytes>,
    ) {
        let entry = Entry {
            format,
            provider: provider.to_owned(),
            model: model.to_owned(),
            cost_usd: cost.unwrap_or_default(),
            expires_ms: 0,
            ttl_ms: self.ttl_ms,
            parts,
        };
        let size: u64 = entry.parts.iter().map(|p| p.len() as u64).sum();
        if size > self.max_bytes {
            self.metrics.cache.not_stored(&self.route, "too-large");
            return;
        }
        let cache = &self.shared_cache;
        let now = cache.now_ms();
        let expires_ms = now.saturating_add(self.ttl_ms);
        let metrics = Arc::clone(&self.metrics);
        cache.store.put(
            self.key,
            Entry {
                expires_ms,
                ..entry
            },
            now,
            move |e| {
                metrics.cache.error("put");
                tracing::warn!(error = %e, "cache store failed");
            },
        );
        if let Some(s) = self.semantic {
            cache
                .index
                .insert(s.scope, s.vector, self.key, expires_ms, s.max_entries, now);
        }
        self.metrics.cache.stored(&self.route, cache.store.size());
    }
}

#[cfg(test)]
mod tests;
