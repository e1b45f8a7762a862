//! `tollgate_cache_*`: what the response cache served, skipped and saved.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HitLabels {
    route: String,
    /// `exact` or `semantic`.
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    route: String,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SavedLabels {
    route: String,
    team: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabels {
    operation: &'static str,
}

/// The cache's metrics.
#[derive(Debug, Default)]
pub struct CacheMetrics {
    hits: Family<HitLabels, Counter>,
    misses: Family<RouteLabels, Counter>,
    bypasses: Family<ReasonLabels, Counter>,
    stores: Family<RouteLabels, Counter>,
    not_stored: Family<ReasonLabels, Counter>,
    errors: Family<OpLabels, Counter>,
    saved: Family<SavedLabels, Counter<f64, std::sync::atomic::AtomicU64>>,
    entries: Gauge,
    bytes: Gauge,
}

impl CacheMetrics {
    /// Registers every cache metric in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        registry.register(
            "tollgate_cache_hits",
            "Answers served from the cache, by route and kind (exact, semantic)",
            m.hits.clone(),
        );
        registry.register(
            "tollgate_cache_misses",
            "Requests to a cached route that found no stored answer",
            m.misses.clone(),
        );
        registry.register(
            "tollgate_cache_bypasses",
            "Requests that skipped the lookup, by reason (no-store, no-cache)",
            m.bypasses.clone(),
        );
        registry.register("tollgate_cache_stores", "Answers stored", m.stores.clone());
        registry.register(
            "tollgate_cache_not_stored",
            "Answers not stored, by reason (too-large, incomplete)",
            m.not_stored.clone(),
        );
        registry.register(
            "tollgate_cache_errors",
            "Cache operations that failed (shared state down, embeddings failed); the request is served without the cache",
            m.errors.clone(),
        );
        registry.register(
            "tollgate_cache_saved_usd",
            "What the answers served from the cache cost when they were fetched, by route and client-key team",
            m.saved.clone(),
        );
        registry.register(
            "tollgate_cache_entries",
            "Answers held by the in-process cache (0 with Redis)",
            m.entries.clone(),
        );
        registry.register(
            "tollgate_cache_bytes",
            "Bytes held by the in-process cache (0 with Redis)",
            m.bytes.clone(),
        );
        m
    }

    pub(super) fn hit(&self, route: &str, kind: &'static str, team: &str, saved_usd: f64) {
        self.hits
            .get_or_create(&HitLabels {
                route: route.to_owned(),
                kind,
            })
            .inc();
        self.saved
            .get_or_create(&SavedLabels {
                route: route.to_owned(),
                team: team.to_owned(),
            })
            .inc_by(saved_usd);
    }

    pub(super) fn miss(&self, route: &str) {
        self.misses
            .get_or_create(&RouteLabels {
                route: route.to_owned(),
            })
            .inc();
    }

    pub(super) fn bypass(&self, route: &str, reason: &'static str) {
        self.bypasses
            .get_or_create(&ReasonLabels {
                route: route.to_owned(),
                reason,
            })
            .inc();
    }

    pub(super) fn stored(&self, route: &str, size: Option<(u64, u64)>) {
        self.stores
            .get_or_create(&RouteLabels {
                route: route.to_owned(),
            })
            .inc();
        if let Some((entries, bytes)) = size {
            self.entries.set(i64::try_from(entries).unwrap_or(i64::MAX));
            self.bytes.set(i64::try_from(bytes).unwrap_or(i64::MAX));
        }
    }

    pub(super) fn not_stored(&self, route: &str, reason: &'static str) {
        self.not_stored
            .get_or_create(&ReasonLabels {
                route: route.to_owned(),
                reason,
            })
            .inc();
    }

    pub(super) fn error(&self, operation: &'static str) {
        self.errors.get_or_create(&OpLabels { operation }).inc();
    }
}
